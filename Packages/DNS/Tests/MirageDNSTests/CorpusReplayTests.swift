import Foundation
import MirageDNS
import Testing

/// Replays the checked-in fuzz corpus, `Corpus/<target>/`, through the same
/// functions the libFuzzer targets run (FuzzDNS.swift). A broken promise
/// traps and takes the test process down: every file must get through
/// without one. Named seeds were made with dnspython or by hand; files with
/// SHA-1 names are units `Scripts/fuzz run TARGET SECONDS --grow` kept;
/// `regress-*` files are past bugs, each noted in `regressions`.
struct CorpusReplayTests {
    static let testFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let corpus = testFolder.appendingPathComponent("Corpus")
    static let targetNames = fuzzTargets.map { $0.name }

    /// Past bugs the corpus keeps as regression cases: file → what went wrong.
    static let regressions: [String: String] = [:]

    /// What some seeds must give, per target: records decoded, or the error.
    static let expected: [String: [String: (records: Int, error: DNSError?)]] = [
        "dns-message": [
            "query-a-edns": (0, nil),
            "response-cname-glue": (7, nil),
            "nxdomain-soa": (1, nil),
            "query-do-cookie": (0, nil),
            "badvers": (0, nil),
            "response-every-type": (24, nil),
            "response-tc-many-a": (40, nil),
            "axfr-zone": (9, nil),
            "bad-compression-loop": (0, .compressionLoop(offset: 12)),
            "bad-forward-pointer": (0, .badPointer(offset: 12, target: 14)),
            "bad-lying-count": (0, .truncated(offset: 19, needed: 1)),
            "bad-two-opt": (0, .duplicateOPT),
            "bad-rdlength": (0, .badRecordData(type: 1, reason: "1 bytes after the fields")),
        ],
        "dns-zone": [
            "realistic": (29, nil),
            "every-type": (21, nil),
            "directives-includes": (11, nil),
            "escapes-quotes": (5, nil),
            "soa-minimum-no-ttl": (4, nil),
            "crlf": (3, nil),
            "include-self": (0, .zone(file: "inc", line: 2, reason: "$INCLUDE nested deeper than 10 files (does a file include itself?)")),
            "bad-unclosed-paren": (0, .zone(file: "zone", line: 2, reason: "'(' not closed before the end of the file")),
            "bad-nested-paren": (0, .zone(file: "zone", line: 2, reason: "nested '(' (the '(' on line 2 is still open)")),
            "bad-ttl-units": (0, .zone(file: "zone", line: 1, reason: "bad TTL '1h30': a number without a unit after one with a unit")),
            "bad-class": (0, .zone(file: "zone", line: 1, reason: "class CH: only class IN is supported")),
            "bad-no-ttl": (0, .zone(file: "zone", line: 1,
                                    reason: "no TTL: none on this record, no $TTL before it and no earlier record with one (RFC 2308 §4)")),
            "bad-include-missing": (0, .zone(file: "zone", line: 1, reason: "cannot read $INCLUDE file 'nothere': no such key in the store")),
            "bad-generic-length": (0, .zone(file: "zone", line: 2, reason: "bad TYPE65280 data: \\# length 3 but 2 bytes of data")),
            "bad-unterminated-quote": (0, .zone(file: "zone", line: 2, reason: "quoted string not closed before the end of the file")),
            "bad-meta-type": (0, .zone(file: "zone", line: 2,
                                       reason: "type ANY is a meta type, which cannot be stored in a zone (RFC 6895 §3.1)")),
        ],
    ]

    static func run(_ target: String) -> (Span<UInt8>) -> FuzzReport {
        fuzzTargets.first { $0.name == target }!.run
    }

    static func files(of target: String) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: corpus.appendingPathComponent(target), includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    @Test("every corpus file runs without a trap", arguments: targetNames)
    func replay(target: String) throws {
        let files = try Self.files(of: target)
        #expect(!files.isEmpty, "no corpus for \(target)")
        #expect(files.count <= 200, "corpus over 200 files: Scripts/fuzz minimize \(target)")
        let run = Self.run(target)
        var decoded = 0
        for url in files {
            let bytes = [UInt8](try Data(contentsOf: url))
            let report = run(bytes.span)
            decoded += report.decoded
            let name = url.lastPathComponent
            if let e = Self.expected[target]?[name] {
                #expect(report.records == e.records, "\(name): \(report)")
                #expect(report.error == e.error, "\(name): \(report)")
            }
        }
        #expect(decoded > 0, "nothing in the \(target) corpus decodes")
    }

    @Test("every named seed is in the corpus")
    func seedsPresent() throws {
        for (target, seeds) in Self.expected {
            let names = Set(try Self.files(of: target).map(\.lastPathComponent))
            for name in seeds.keys { #expect(names.contains(name), "\(target)/\(name) missing") }
        }
    }

    @Test("every regression case is in the corpus, and every regress-* file is noted")
    func regressionsPresent() throws {
        var names: Set<String> = []
        for target in Self.targetNames { names.formUnion(try Self.files(of: target).map(\.lastPathComponent)) }
        for name in Self.regressions.keys { #expect(names.contains(name), "\(name) missing") }
        for name in names where name.hasPrefix("regress-") { #expect(Self.regressions[name] != nil, "\(name) not noted") }
    }
}
