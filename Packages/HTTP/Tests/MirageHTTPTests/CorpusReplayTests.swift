import Foundation
import MirageHTTP
import Testing

/// Replays the checked-in fuzz corpus, `Corpus/<target>/`, through the same
/// functions the libFuzzer targets run (FuzzHTTP.swift). A broken promise
/// traps and takes the test process down: every file must get through
/// without one. Named seeds were written by hand (byte 0 steers the run, see
/// `FuzzControl`); files with SHA-1 names are units `Scripts/fuzz run
/// TARGET SECONDS --grow` kept; `regress-*` files are past bugs, each noted
/// in `regressions`.
struct CorpusReplayTests {
    static let testFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let corpus = testFolder.appendingPathComponent("Corpus")
    static let targetNames = fuzzTargets.map { $0.name }

    /// Past bugs the corpus keeps as regression cases.
    static let regressions: [String: String] = [
        "regress-bare-cr-split": "a CR last in a piece of input was not checked against the byte after it (5d41e7c)",
        "regress-error-after-early-answer": "a malformed body after an early, finished answer queued a second response (39ef4c2)",
        "regress-head-error-body": "an error response to a HEAD request (a bad chunk in its body) carried a body (c90b13e)",
        "regress-content-length-empty-element": "Content-Length \",100\" was read as 100 (empty list elements skipped); now refused",
    ]

    /// What some seeds must parse to (http-request): complete messages and
    /// the parser's error.
    static let expected: [String: (messages: Int, error: HTTPError?)] = [
        "get-simple": (1, nil),
        "pipelined-keep-alive": (4, nil),
        "chunked-extensions-trailers-streamed": (2, nil),
        "leading-crlf-absolute-form-options": (3, nil),
        "smuggle-cl-te": (1, .contentLengthWithTransferEncoding),
        "smuggle-te-cl": (0, .contentLengthWithTransferEncoding),
        "smuggle-duplicate-cl": (0, .conflictingContentLength),
        "smuggle-cl-list": (0, .conflictingContentLength),
        "smuggle-te-chunked-not-last": (0, .invalidTransferEncoding),
        "smuggle-te-obs-fold": (0, .obsoleteLineFolding),
        "smuggle-space-before-colon": (0, .whitespaceBeforeColon),
        "smuggle-bare-lf": (0, .bareLineFeed),
        "smuggle-chunk-size-overflow": (1, .invalidChunkSize),
        "smuggle-http10-te": (0, .transferEncodingInHTTP10),
        "te-gzip": (0, .unsupportedTransferCoding),
        "http2-version": (0, .unsupportedVersion(major: 2, minor: 0)),
        "two-hosts": (0, .invalidHost),
        "nul-in-value": (0, .invalidFieldValue),
        "small-limits-too-many-fields": (0, .tooManyFields(limit: 6)),
        "small-limits-chunked-over-body-limit": (1, .bodyTooLarge(limit: 64)),
        "small-limits-long-target": (0, .requestLineTooLong(limit: 64)),
        "regress-bare-cr-split": (0, .bareCarriageReturn),
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
        var served = 0
        for url in files {
            let bytes = [UInt8](try Data(contentsOf: url))
            let report = run(bytes.span)
            served += report.responses
            let name = url.lastPathComponent
            if target == "http-request", let e = Self.expected[name] {
                #expect(report.messages == e.messages, "\(name): \(report)")
                #expect(report.error == e.error, "\(name): \(report)")
            }
        }
        if target == "http-request" { #expect(served > 0) }
    }

    @Test("every regression case is in the corpus, and every regress-* file is noted")
    func regressionsPresent() throws {
        let names = Set(try Self.files(of: "http-request").map(\.lastPathComponent) + Self.files(of: "http-response").map(\.lastPathComponent))
        for name in Self.regressions.keys { #expect(names.contains(name), "\(name) missing") }
        for name in names where name.hasPrefix("regress-") { #expect(Self.regressions[name] != nil, "\(name) not noted") }
    }
}
