import MirageDNS
import Testing

@Suite struct DomainNameTests {
    @Test("presentation text parses to wire form", arguments: [
        ("www.example.com.", "03777777076578616D706C6503636F6D00"),
        (".", "00"),
        ("a\\.b.c.", "03612E62016300"),
        ("\\046.", "012E00"),
        ("\\065\\066.", "02414200"),
        ("a\\ b.", "03612062 00"),
        ("\\\\.", "015C00"),
    ])
    func parsesPresentation(text: String, wire: String) throws {
        #expect(try DomainName(text).wire == hex(wire))
    }

    @Test("relative names take the origin; @ is the origin")
    func relativeNames() throws {
        let origin = name("example.com.")
        #expect(try DomainName("www", origin: origin) == name("www.example.com."))
        #expect(try DomainName("@", origin: origin) == origin)
        #expect(try DomainName("a.b", origin: origin).wire == hex("0161016207 6578616D706C65 03636F6D 00"))
        #expect(throws: DNSError.syntax(reason: "relative name without an origin")) { try DomainName("www") }
        #expect(throws: DNSError.syntax(reason: "\"@\" without an origin")) { try DomainName("@") }
    }

    @Test("bad presentation text is refused with its reason", arguments: [
        ("", DNSError.syntax(reason: "empty name")),
        ("a..b.", .syntax(reason: "empty label in a name")),
        (".a.", .syntax(reason: "empty label in a name")),
        ("a\\", .syntax(reason: "backslash at the end of a name")),
        ("a\\25", .syntax(reason: "\\DDD escape needs three digits")),
        ("a\\256.", .syntax(reason: "\\DDD escape over 255")),
        (String(repeating: "a", count: 64) + ".", .labelTooLong(length: 64)),
        (Array(repeating: String(repeating: "a", count: 63), count: 4).joined(separator: ".") + ".", .nameTooLong(length: 256)),
    ])
    func refusesBadText(text: String, error: DNSError) {
        #expect(throws: error) { try DomainName(text) }
    }

    @Test("the longest name, 255 bytes, is accepted")
    func longestName() throws {
        let text = Array(repeating: String(repeating: "a", count: 63), count: 3).joined(separator: ".") + "." + String(repeating: "b", count: 61) + "."
        let n = try DomainName(text)
        #expect(n.wire.count == 255)
        #expect(n.description == text)
        #expect(n.wildcard() == nil)
    }

    @Test("description escapes special and non-printable bytes", arguments: [
        ("0161 00", "a."),
        ("03612E62 00", "a\\.b."),
        ("03 20 40 24 00", "\\032\\@\\$."),
        ("04 00 FF 22 3B 00", "\\000\\255\\\"\\;."),
        ("02 28 29 00", "\\(\\)."),
        ("00", "."),
    ])
    func describes(wire: String, text: String) throws {
        let n = try DomainName(wire: hex(wire))
        #expect(n.description == text)
        // And the text reads back to the same bytes.
        #expect(try DomainName(text).wire == n.wire)
    }

    @Test("init(wire:) validates", arguments: [
        ("", DNSError.truncated(offset: 0, needed: 1)),
        ("03 6162", DNSError.truncated(offset: 3, needed: 2)),
        ("0161", DNSError.truncated(offset: 2, needed: 1)),
        ("40" + String(repeating: "61", count: 64) + "00", DNSError.labelTooLong(length: 64)),
        ("0161 00 00", DNSError.trailingBytes(count: 1)),
    ])
    func validatesWire(wire: String, error: DNSError) {
        #expect(throws: error) { try DomainName(wire: hex(wire)) }
    }

    @Test("equality and hashing fold ASCII case only (RFC 4343)")
    func caseInsensitive() {
        let a = name("WWW.Example.COM."), b = name("www.example.com.")
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        #expect(Set([a, b]).count == 1)
        #expect(a.wire != b.wire, "the original case is kept")
        // Only A-Z fold: 0xC1 and 0xE1 (Á/á in Latin-1) differ, as do "@" (0x40) and "`" (0x60).
        #expect(try! DomainName(wire: [1, 0xC1, 0]) != DomainName(wire: [1, 0xE1, 0]))
        #expect(try! DomainName(wire: [1, 0x40, 0]) != DomainName(wire: [1, 0x60, 0]))
        #expect(try! DomainName(wire: [1, 0x5B, 0]) != DomainName(wire: [1, 0x7B, 0]))
        #expect(name("a.b.") != name("ab."))
    }

    @Test("every pair of bytes compares and hashes as RFC 4343 folding says, in short and long names")
    func everyBytePair() throws {
        func fold(_ b: UInt8) -> UInt8 { (0x41...0x5A).contains(b) ? b + 0x20 : b }
        for position in [0, 4, 9] {
            for b in 0...255 {
                for c in 0...255 {
                    var x: [UInt8] = [10] + Array(repeating: 0x61, count: 10) + [0]
                    var y = x
                    x[1 + position] = UInt8(b)
                    y[1 + position] = UInt8(c)
                    let p = try DomainName(wire: x), q = try DomainName(wire: y)
                    let same = fold(UInt8(b)) == fold(UInt8(c))
                    if (p == q) != same { Issue.record("bytes \(b), \(c) at \(position)") }
                    if same && p.hashValue != q.hashValue { Issue.record("hash of \(b), \(c) at \(position)") }
                }
            }
        }
        // A short name takes the byte-by-byte path.
        #expect(name("aB.") == name("Ab."))
        #expect(name("a[.") != name("a{."))
    }

    @Test("canonical order is RFC 4034 §6.1's example")
    func canonicalOrder() {
        let ordered = ["example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.", "zABC.a.EXAMPLE.",
                       "z.example.", "\\001.z.example.", "*.z.example.", "\\200.z.example."].map(name)
        for i in 0..<ordered.count {
            for j in 0..<ordered.count {
                #expect((ordered[i] < ordered[j]) == (i < j), "\(ordered[i]) vs \(ordered[j])")
            }
        }
        #expect(ordered.reversed().sorted() == ordered)
        #expect(DomainName.root < name("a."))
    }

    @Test("labels, parent, subdomains and wildcards")
    func structure() throws {
        let n = name("www.Example.com.")
        #expect(n.labelCount == 3)
        #expect(n.labels == [Array("www".utf8), Array("Example".utf8), Array("com".utf8)])
        #expect(try DomainName(labels: n.labels) == n)
        #expect(n.parent() == name("example.com."))
        #expect(DomainName.root.parent() == nil)
        #expect(DomainName.root.labelCount == 0)
        #expect(n.isSubdomain(of: name("EXAMPLE.com.")))
        #expect(n.isSubdomain(of: n))
        #expect(n.isSubdomain(of: .root))
        #expect(!n.isSubdomain(of: name("ample.com.")), "whole labels only")
        #expect(!name("example.com.").isSubdomain(of: n))
        #expect(name("WWW.Example.com.").lowercased.wire == name("www.example.com.").wire)
        #expect(name("*.example.com.").isWildcard)
        #expect(!name("a*.example.com.").isWildcard)
        #expect(name("example.com.").wildcard() == name("*.example.com."))
        #expect(try n.prepending(label: Array("a".utf8)) == name("a.www.example.com."))
        #expect(throws: DNSError.labelTooLong(length: 64)) { try n.prepending(label: Array(repeating: 97, count: 64)) }
        #expect(throws: DNSError.syntax(reason: "empty label")) { try DomainName(labels: [[]]) }
    }
}
