import Foundation
import MirageDNS
import MiragePlatform
import MirageTestNetwork
import Testing

// Our zone loading (ZoneFileParser + Zone's load-time checks) against BIND's
// named-checkzone (bind9-utils) on the zone files in DNSZones/checkzone/:
// `good-*.zone` must load and `bad-*.zone` must be refused, by both, except
// the few files listed in `DNSZoneCheckTests.differences`, where BIND
// decides otherwise on purpose and NSD's nsd-checkzone sides with us.
// Every file is loaded with origin example.com.; `*.inc` files are only
// reached through `$INCLUDE` (named-checkzone runs with -w in the folder, our
// loader reads the folder as a DirectoryKeyValueStore).

@Suite("Zone files: our loader and named-checkzone agree", .interop(tools: ["named-checkzone"], needsRoot: false))
struct DNSZoneCheckTests {
    static let folder: String = {
        let tests = (#filePath as NSString).deletingLastPathComponent
        return tests + "/DNSZones/checkzone"
    }()

    static let origin = "example.com."

    /// The zone files, sorted.
    static let zoneFiles: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { $0.hasSuffix(".zone") }.sorted()
    }()

    /// Files where BIND's verdict differs from ours, and why ours is what it is.
    static let differences: [String: String] = [
        "bad-out-of-zone.zone":
            "BIND ignores out-of-zone data with a warning; the issue asks for it to be refused, as NSD does",
        "bad-nested-paren.zone":
            "BIND accepts nested parentheses; RFC 1035 §5.1 has no nesting and NSD refuses it, as we do",
        "bad-generate.zone":
            "$GENERATE is BIND's own directive; NSD does not know it either",
        "good-quoted-newline.zone":
            "RFC 1035 §5.1 lets a quoted string contain a line end and NSD accepts it; BIND does not",
    ]

    /// Why each bad file is refused (a part of our error's text), so that a
    /// file refused for another reason than the one it was written for fails.
    static let refusals: [String: String] = [
        "bad-a-address.zone": "bad A data",
        "bad-class-chaos.zone": "only class IN",
        "bad-close-paren.zone": "')' without an opening '('",
        "bad-cname-and-other-data.zone": "CNAME and other data",
        "bad-generate.zone": "unknown directive '$GENERATE'",
        "bad-generic-length.zone": "length 3 but 2 bytes",
        "bad-include-error.zone": "broken.inc:3: bad A data",
        "bad-include-missing.zone": "cannot read $INCLUDE file 'no-such-file.inc'",
        "bad-label-too-long.zone": "label of 64 bytes",
        "bad-meta-type.zone": "meta type",
        "bad-missing-soa.zone": "no SOA",
        "bad-name-too-long.zone": "name of 265 bytes",
        "bad-nested-paren.zone": "nested '('",
        "bad-no-owner.zone": "no previous owner",
        "bad-no-ttl.zone": "no TTL",
        "bad-ns-without-address.zone": "no address record",
        "bad-out-of-zone.zone": "outside the zone",
        "bad-ttl-letters.zone": "bad TTL '12x'",
        "bad-ttl-unit.zone": "bad TTL '1h30'",
        "bad-two-soa.zone": "second SOA",
        "bad-unclosed-paren.zone": "'(' not closed",
        "bad-unknown-type.zone": "unknown record type 'FOO'",
        "bad-unterminated-quote.zone": "quoted string not closed",
    ]

    /// Whether the file's name says it should load.
    static func shouldLoad(_ file: String) -> Bool { file.hasPrefix("good-") }

    /// Our verdict: nil when the zone loads, else the error.
    static func ourError(_ file: String) throws -> DNSError? {
        let store = try DirectoryKeyValueStore(root: folder)
        do {
            _ = try Zone.load(file: file, origin: try DomainName(origin), store: store)
            return nil
        } catch {
            return error
        }
    }

    /// `named-checkzone -q -w FOLDER example.com FILE`: exit 0 when it loads.
    static func bind(_ file: String) throws -> CommandResult {
        try runCommand(["named-checkzone", "-q", "-w", folder, "example.com", file], timeout: 30)
    }

    @Test("the folder holds good and bad zone files, and every listed difference exists")
    func folderContents() {
        #expect(Self.zoneFiles.filter { $0.hasPrefix("good-") }.count >= 10, "\(Self.zoneFiles)")
        #expect(Self.zoneFiles.filter { $0.hasPrefix("bad-") }.count >= 10, "\(Self.zoneFiles)")
        #expect(Self.zoneFiles.allSatisfy { $0.hasPrefix("good-") || $0.hasPrefix("bad-") })
        for file in Self.differences.keys { #expect(Self.zoneFiles.contains(file), "\(file) missing") }
        for file in Self.refusals.keys { #expect(Self.zoneFiles.contains(file), "\(file) missing") }
    }

    @Test("good files load and bad ones are refused, by us and by named-checkzone", arguments: zoneFiles)
    func sameVerdict(file: String) throws {
        let ours = try Self.ourError(file)
        let expected = Self.shouldLoad(file)
        #expect((ours == nil) == expected, "ours: \(ours.map { "\($0)" } ?? "loaded")")
        if let ours {
            // A refusal names the file it is about (the zone or its include).
            guard case .zone(let errorFile, let line, _) = ours else {
                Issue.record("not a .zone error: \(ours)")
                return
            }
            #expect(errorFile == file || errorFile.hasSuffix(".inc"), "\(ours)")
            #expect(line >= 0)
            #expect("\(ours)".contains(Self.refusals[file] ?? "(no reason listed in refusals)"), "\(ours)")
        }
        guard Self.differences[file] == nil else { return }
        let bind = try Self.bind(file)
        #expect(!bind.timedOut)
        #expect(bind.succeeded == expected, "named-checkzone: \(bind)")
    }

    @Test("where BIND differs, it still does, and NSD's nsd-checkzone agrees with us",
          .interop(tools: ["named-checkzone", "nsd-checkzone"], needsRoot: false),
          arguments: differences.keys.sorted())
    func documentedDifference(file: String) throws {
        let expected = Self.shouldLoad(file)
        #expect((try Self.ourError(file) == nil) == expected)
        let bind = try Self.bind(file)
        #expect(bind.succeeded == !expected, "named-checkzone now agrees with us: drop \(file) from `differences`. \(bind)")
        // nsd-checkzone reads $INCLUDE relative to its working directory; none of these files includes.
        let nsd = try runCommand(["nsd-checkzone", "example.com", Self.folder + "/" + file], timeout: 30)
        #expect(!nsd.timedOut)
        #expect(nsd.succeeded == expected, "nsd-checkzone: \(nsd)")
    }

    @Test("an error inside an included file names that file and its line")
    func includeErrorLocation() throws {
        #expect(try Self.ourError("bad-include-error.zone")
            == .zone(file: "broken.inc", line: 3, reason: "bad A data: bad IPv4 address"))
    }
}
