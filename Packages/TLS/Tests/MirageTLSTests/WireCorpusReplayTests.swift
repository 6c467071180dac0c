import Foundation
import MirageTLS
import Testing

/// Replays the checked-in fuzz corpus, `Corpus/<target>/`, through the same
/// functions the libFuzzer targets run (FuzzTLS.swift). A broken promise
/// traps and takes the test process down: every file must get through
/// without one. Named seeds are RFC 8448 §3/§5 messages and records, or made
/// by hand; files with SHA-1 names are units `Scripts/fuzz run TARGET
/// SECONDS --grow` kept; `regress-*` files are past bugs, each noted in
/// `regressions`.
@Suite("Wire: fuzz corpus replay")
struct WireCorpusReplayTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Corpus")
    static let targetNames = fuzzTargets.map { $0.name }

    /// Past bugs the corpus keeps as regression cases: file → what went wrong.
    static let regressions: [String: String] = [
        "regress-inject-past-end": "tls-engine harness: an inject operation whose argument byte was the input's last read past the end (a harness bug, not the engine's)",
    ]

    /// What some seeds must give: records cut, handshake messages cut,
    /// messages that parsed, and the alert of the error the reassembler stopped on.
    struct Expected: Sendable {
        var records = 0
        var messages: Int
        var decoded: Int
        var alert: AlertDescription? = nil
    }

    static let expected: [String: [String: Expected]] = [
        "tls-handshake": [
            "rfc8448-client-hello": .init(messages: 1, decoded: 1),
            "rfc8448-server-hello": .init(messages: 1, decoded: 1),
            "rfc8448-encrypted-extensions": .init(messages: 1, decoded: 1),
            "rfc8448-certificate": .init(messages: 1, decoded: 1),
            "rfc8448-certificate-verify": .init(messages: 1, decoded: 1),
            "rfc8448-server-finished": .init(messages: 1, decoded: 1),
            "rfc8448-client-finished": .init(messages: 1, decoded: 1),
            "rfc8448-new-session-ticket": .init(messages: 1, decoded: 1),
            "rfc8448-hrr-client-hello-1": .init(messages: 1, decoded: 1),
            "rfc8448-hello-retry-request": .init(messages: 1, decoded: 1),
            "rfc8448-hrr-client-hello-2": .init(messages: 1, decoded: 1),
            "rfc8448-hrr-server-hello": .init(messages: 1, decoded: 1),
            "rfc8448-server-flight": .init(messages: 4, decoded: 4),
            "key-updates": .init(messages: 2, decoded: 2),
            "certificate-request": .init(messages: 1, decoded: 1),
            "encrypted-extensions-alpn": .init(messages: 1, decoded: 1),
            "bad-keyupdate-2": .init(messages: 1, decoded: 0),
            "bad-duplicate-extension": .init(messages: 1, decoded: 0),
            "bad-too-large": .init(messages: 0, decoded: 0, alert: .decodeError),
            "tls12-server-flight": .init(messages: 4, decoded: 4),
            "tls12-client-flight": .init(messages: 4, decoded: 4),
            "tls12-ticket-hello-request": .init(messages: 3, decoded: 3),
        ],
        "tls-record": [
            "rfc8448-client-hello-record": .init(records: 1, messages: 1, decoded: 1),
            "rfc8448-server-hello-ccs": .init(records: 2, messages: 1, decoded: 1),
            "rfc8448-server-flight-split": .init(records: 3, messages: 4, decoded: 4),
            "rfc8448-hrr-flight": .init(records: 4, messages: 3, decoded: 3),
            "application-data-and-alert": .init(records: 3, messages: 0, decoded: 0),
            "bad-overflow": .init(records: 0, messages: 0, decoded: 0, alert: .recordOverflow),
            "bad-unknown-type": .init(records: 1, messages: 1, decoded: 1, alert: .unexpectedMessage),
            "bad-empty-handshake": .init(records: 0, messages: 0, decoded: 0, alert: .decodeError),
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

    @Test("every corpus file runs without a trap, and the named seeds give what they should", arguments: targetNames)
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
                #expect(report.messages == e.messages, "\(name): \(report)")
                #expect(report.decoded == e.decoded, "\(name): \(report)")
                #expect(report.error?.alert == e.alert, "\(name): \(report)")
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
