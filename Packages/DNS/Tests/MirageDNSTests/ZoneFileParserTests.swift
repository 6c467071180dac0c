import MirageDNS
import MirageDevices
import Testing

/// Parses `text` as a zone file for `origin`, with `includes` as the key-value store.
func parseZone(
    _ text: String, file: String = "zone", origin: String = "example.com.", defaultTTL: UInt32? = nil,
    includes: [String: String] = [:]
) throws(DNSError) -> [ZoneFileEntry] {
    let store = MemoryKeyValueStore(includes.mapValues { Array($0.utf8) })
    return try ZoneFileParser.parse(Array(text.utf8), file: file, origin: name(origin), defaultTTL: defaultTTL, includes: store)
}

/// The error parsing `text` gives, or nil.
func zoneError(
    _ text: String, file: String = "zone", origin: String = "example.com.", defaultTTL: UInt32? = nil,
    includes: [String: String] = [:]
) -> DNSError? {
    do { _ = try parseZone(text, file: file, origin: origin, defaultTTL: defaultTTL, includes: includes) } catch { return error }
    return nil
}

/// Entries as "owner TTL TYPE data", the way a zone dump reads.
func dump(_ entries: [ZoneFileEntry]) -> [String] {
    entries.map { "\($0.record.name) \($0.record.ttl) \($0.record.type) \($0.record.data.presentation)" }
}

/// Where each entry came from, as "file:line".
func origins(_ entries: [ZoneFileEntry]) -> [String] {
    entries.map { "\($0.file):\($0.line)" }
}

/// Directives, names and the fields a line may leave out.
struct ZoneFileParserTests {
    @Test("relative names get the origin, absolute names stay, '@' is the origin, also in data")
    func names() throws {
        let e = try parseZone("""
            $TTL 300
            @ NS ns
            www A 192.0.2.1
            host.example.org. A 192.0.2.2
            mail MX 10 @
            alias CNAME www.example.net.
            """)
        #expect(dump(e) == [
            "example.com. 300 NS ns.example.com.",
            "www.example.com. 300 A 192.0.2.1",
            "host.example.org. 300 A 192.0.2.2",
            "mail.example.com. 300 MX 10 example.com.",
            "alias.example.com. 300 CNAME www.example.net.",
        ])
        #expect(e.allSatisfy { $0.record.class == .in })
    }

    @Test("$ORIGIN changes the origin for the lines after it; a relative $ORIGIN is relative to the current one")
    func origin() throws {
        let e = try parseZone("""
            $TTL 60
            a A 192.0.2.1
            $ORIGIN sub.example.com.
            b A 192.0.2.2
            @ A 192.0.2.3
            $ORIGIN deeper
            c A 192.0.2.4
            $origin example.net.
            d A 192.0.2.5
            """)
        #expect(dump(e) == [
            "a.example.com. 60 A 192.0.2.1",
            "b.sub.example.com. 60 A 192.0.2.2",
            "sub.example.com. 60 A 192.0.2.3",
            "c.deeper.sub.example.com. 60 A 192.0.2.4",
            "d.example.net. 60 A 192.0.2.5",
        ])
    }

    @Test("a line starting with a blank takes the previous owner, also after $ORIGIN and $TTL")
    func omittedOwner() throws {
        let e = try parseZone("$TTL 60\na A 192.0.2.1\n  A 192.0.2.2\n\tAAAA 2001:db8::1\n$ORIGIN example.net.\n  A 192.0.2.3\n")
        #expect(dump(e) == [
            "a.example.com. 60 A 192.0.2.1",
            "a.example.com. 60 A 192.0.2.2",
            "a.example.com. 60 AAAA 2001:db8::1",
            "a.example.com. 60 A 192.0.2.3",
        ])
    }

    @Test("TTL and class may come in either order, each optional; class IN in any case or as CLASS1")
    func ttlAndClass() throws {
        let e = try parseZone("""
            a 100 IN A 192.0.2.1
            b IN 200 A 192.0.2.2
            c in A 192.0.2.3
            d 300 A 192.0.2.4
            e CLASS1 400 A 192.0.2.5
            f a 192.0.2.6
            """)
        #expect(e.map(\.record.ttl) == [100, 200, 200, 300, 400, 400])
        #expect(e.allSatisfy { $0.record.class == .in && $0.record.type == .a })
    }

    @Test("TTL units (BIND's extension, NSD accepts it): sums of s, m, h, d, w in any case", arguments: [
        ("0", 0), ("3600", 3600), ("1h30m", 5400), ("1H", 3600), ("2d", 172_800), ("1w", 604_800),
        ("1w2d3h4m5s", 788_645), ("90s", 90), ("1w1w", 1_209_600), ("2147483647", 2_147_483_647),
        ("0h", 0), ("10M", 600),
    ] as [(String, UInt32)])
    func ttlUnits(text: String, seconds: UInt32) throws {
        let e = try parseZone("a \(text) A 192.0.2.1\n")
        #expect(e.first?.record.ttl == seconds)
        #expect(try ZoneFileParser.ttl(Array(text.utf8)) == seconds)
    }

    @Test("an omitted TTL is the $TTL in force (RFC 2308 §4)")
    func dollarTTL() throws {
        let e = try parseZone("$TTL 1h\na A 192.0.2.1\nb 60 A 192.0.2.2\nc A 192.0.2.3\n$TTL 7\nd A 192.0.2.4\n")
        #expect(e.map(\.record.ttl) == [3600, 60, 3600, 7])
    }

    @Test("before any $TTL, an omitted TTL is the previous explicit one, as BIND and NSD (simdzone) do")
    func previousTTL() throws {
        let e = try parseZone("a 60 A 192.0.2.1\nb A 192.0.2.2\nc 90 A 192.0.2.3\n  A 192.0.2.4\n$TTL 5\ne A 192.0.2.5\n")
        #expect(e.map(\.record.ttl) == [60, 60, 90, 90, 5])
    }

    @Test("defaultTTL fills in before any record or $TTL gives a TTL, and is then overridden")
    func defaultTTL() throws {
        let e = try parseZone("a A 192.0.2.1\nb 60 A 192.0.2.2\nc A 192.0.2.3\n", defaultTTL: 1234)
        #expect(e.map(\.record.ttl) == [1234, 60, 60])
        let soa = try parseZone("@ SOA ns hm 1 2 3 4 5\n", defaultTTL: 1234)
        #expect(soa.map(\.record.ttl) == [1234])
    }

    @Test("an SOA with no TTL available takes its MINIMUM, which then is the default (BIND's rule)")
    func soaMinimum() throws {
        let e = try parseZone("@ SOA ns hm 1 2 3 4 300\n NS ns\nns 600 A 192.0.2.1\na A 192.0.2.2\n")
        #expect(e.map(\.record.ttl) == [300, 300, 600, 300])
    }

    @Test("the generic forms: TYPEnnn for any type, \\# data for known and unknown types (RFC 3597 §5)")
    func generic() throws {
        let e = try parseZone("""
            $TTL 60
            a TYPE65280 \\# 4 0A000001
            b TYPE1 192.0.2.2
            c A \\# 4 C0000203
            d TYPE65281 \\# 0
            e TYPE16 \\# 6 05 68656C6C6F
            f type65282 \\# ( 2
                 ab cd )
            """)
        #expect(e.map(\.record.data) == [
            .unknown(type: RecordType(rawValue: 65280), data: [10, 0, 0, 1]),
            .a(IPv4Address(192, 0, 2, 2)),
            .a(IPv4Address(192, 0, 2, 3)),
            .unknown(type: RecordType(rawValue: 65281), data: []),
            .txt([Array("hello".utf8)]),
            .unknown(type: RecordType(rawValue: 65282), data: [0xAB, 0xCD]),
        ])
    }

    @Test("escapes in owner names: \\. inside a label, \\DDD, escaped blank; a quoted owner")
    func escapedNames() throws {
        let e = try parseZone("$TTL 1\na\\.b A 192.0.2.1\n\\065\\098c A 192.0.2.2\nsp\\ ace A 192.0.2.3\n\"quoted\" A 192.0.2.4\n")
        #expect(e[0].record.name.labels == [Array("a.b".utf8), Array("example".utf8), Array("com".utf8)])
        #expect(e[1].record.name == name("abc.example.com."))
        #expect(e[1].record.name.labels[0] == Array("Abc".utf8))
        #expect(e[2].record.name.labels[0] == Array("sp ace".utf8))
        #expect(e[3].record.name == name("quoted.example.com."))
    }

    @Test("quoted strings with escapes and parentheses across lines reach the data")
    func quotedData() throws {
        let e = try parseZone("""
            $TTL 1
            t TXT ( "v=spf1 -all" ; first
                    "a \\"quoted\\" word; (not a comment)"
                    "\\255\\000" plain )
            """)
        #expect(e.map(\.record.data) == [.txt([
            Array("v=spf1 -all".utf8), Array("a \"quoted\" word; (not a comment)".utf8), [255, 0], Array("plain".utf8),
        ])])
        #expect(e[0].line == 2)
    }

    @Test("each entry records its file and the line it starts on")
    func lines() throws {
        let e = try parseZone("$TTL 1\n\n; c\n@ SOA ns hm (\n 1 2 3 4 5 )\n\nwww A 192.0.2.1\n", file: "main.zone")
        #expect(origins(e) == ["main.zone:4", "main.zone:7"])
    }

    @Test("$INCLUDE reads the store's key with the current origin; its records name the included file and its lines")
    func include() throws {
        let e = try parseZone("""
            $TTL 60
            a A 192.0.2.1
            $INCLUDE hosts.inc
            b A 192.0.2.3
            """, file: "main", includes: ["hosts.inc": "\n; hosts\nh1 A 192.0.2.2\n"])
        #expect(dump(e) == ["a.example.com. 60 A 192.0.2.1", "h1.example.com. 60 A 192.0.2.2", "b.example.com. 60 A 192.0.2.3"])
        #expect(origins(e) == ["main:2", "hosts.inc:3", "main:4"])
    }

    @Test("$INCLUDE with an origin; the include's $ORIGIN and owner do not leak back (RFC 1035 §5.1)")
    func includeScope() throws {
        let e = try parseZone("""
            $TTL 60
            a A 192.0.2.1
            $INCLUDE "sub zone.inc" sub
              A 192.0.2.9
            $INCLUDE sub\\032zone.inc other.example.net.
            b A 192.0.2.10
            """, includes: ["sub zone.inc": "  A 192.0.2.2\nx A 192.0.2.3\n$ORIGIN elsewhere.\ny A 192.0.2.4\n"])
        #expect(dump(e) == [
            "a.example.com. 60 A 192.0.2.1",
            "a.example.com. 60 A 192.0.2.2",  // the includer's owner carries in
            "x.sub.example.com. 60 A 192.0.2.3",
            "y.elsewhere. 60 A 192.0.2.4",
            "a.example.com. 60 A 192.0.2.9",  // owner and origin revert
            "a.example.com. 60 A 192.0.2.2",
            "x.other.example.net. 60 A 192.0.2.3",
            "y.elsewhere. 60 A 192.0.2.4",
            "b.example.com. 60 A 192.0.2.10",
        ])
    }

    @Test("$TTL in an included file applies after it, in the includer too (RFC 2308 §4; BIND and NSD agree)")
    func includeTTL() throws {
        let e = try parseZone("$TTL 60\n$INCLUDE t\na A 192.0.2.1\n", includes: ["t": "$TTL 5\nb A 192.0.2.2\n"])
        #expect(e.map(\.record.ttl) == [5, 5])
    }

    @Test("includes nest up to maximumIncludeDepth files")
    func nestedIncludes() throws {
        var files: [String: String] = [:]
        for depth in 1...ZoneFileParser.maximumIncludeDepth {
            let next = depth < ZoneFileParser.maximumIncludeDepth ? "$INCLUDE f\(depth + 1)\n" : ""
            files["f\(depth)"] = "h\(depth) A 192.0.2.\(depth)\n" + next
        }
        let e = try parseZone("$TTL 1\n$INCLUDE f1\n", includes: files)
        #expect(e.count == ZoneFileParser.maximumIncludeDepth)
        #expect(e.last.map { "\($0.file):\($0.line)" } == "f\(ZoneFileParser.maximumIncludeDepth):1")
    }

    @Test("directive names are case-insensitive")
    func directiveCase() throws {
        #expect(try parseZone("$ttl 9\n$Origin example.org.\na A 192.0.2.1\n").map { "\($0.record.name) \($0.record.ttl)" }
            == ["a.example.org. 9"])
    }
}
