import Testing

/// A test or suite trait for interop tests (see `TestEnvironment`).
///
/// - Not CI and blocked (not root, or a tool missing): the test is skipped,
///   and the skip message says exactly what is missing.
/// - CI=true and blocked: the test is not skipped; it records an issue that
///   says what is missing, and fails without running its body.
/// - Not blocked: the body runs.
///
/// On a suite it applies to every test in it. Combine with `.serialized`
/// for suites whose tests share fixed names or addresses.
public struct InteropTrait: TestTrait, SuiteTrait, TestScoping {
    /// The programs the test needs (looked up in PATH, /usr/sbin, /sbin).
    public let tools: [String]
    /// Whether the test needs root (namespaces, veth, tap do).
    public let needsRoot: Bool
    private let blocker: String?
    private let condition: ConditionTrait
    private let sourceLocation: SourceLocation

    /// Evaluates the environment now (at test discovery).
    public init(tools: [String], needsRoot: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) {
        self.tools = tools
        self.needsRoot = needsRoot
        self.sourceLocation = sourceLocation
        let blocker = TestEnvironment.interopBlocker(tools: tools, needsRoot: needsRoot)
        self.blocker = blocker
        var needs = needsRoot ? ["root"] : []
        needs += tools
        let reason = "interop test needs \(needs.joined(separator: ", ")): \(blocker ?? "available")"
        self.condition = .enabled(
            if: TestEnvironment.isCI || blocker == nil, Comment(rawValue: reason), sourceLocation: sourceLocation)
    }

    public var isRecursive: Bool { true }

    /// Skips (by way of a condition trait) when not CI and blocked.
    public func prepare(for test: Test) async throws {
        try await condition.prepare(for: test)
    }

    /// In CI, a blocked test records why and does not run its body.
    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        if let blocker {
            Issue.record(
                "CI=true, so this interop test must run, but it cannot: \(blocker)",
                sourceLocation: sourceLocation)
            return
        }
        try await function()
    }
}

extension Trait where Self == InteropTrait {
    /// Runs the test where root (unless `needsRoot: false`) and `tools` are
    /// available; skips with the reason elsewhere, except under CI=true,
    /// where it fails with the reason instead.
    public static func interop(
        tools: [String], needsRoot: Bool = true, sourceLocation: SourceLocation = #_sourceLocation
    ) -> Self {
        InteropTrait(tools: tools, needsRoot: needsRoot, sourceLocation: sourceLocation)
    }
}
