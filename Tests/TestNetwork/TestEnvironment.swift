import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Facts about the machine a test runs on, and the run/skip decision for
/// interop tests.
///
/// The rule (GUIDE §3): on a laptop without root or without the peer program,
/// an interop test skips with a visible reason; with `CI=true` it always runs,
/// so a missing tool is a failure, never a silent skip. Use the `.interop`
/// trait, which applies this rule by itself:
///
/// ```swift
/// @Test(.interop(tools: ["ip", "ping"]))
/// func kernelPing() throws { … }
/// ```
public enum TestEnvironment {
    /// Directories searched after PATH: root's tools live there and a
    /// non-login PATH often lacks them.
    public static let extraToolDirectories = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]

    /// True when the effective user is root.
    public static var isRoot: Bool { geteuid() == 0 }

    /// True when the environment variable CI is exactly "true".
    public static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// The absolute path of `tool` (PATH, then /usr/sbin, /sbin), or nil.
    /// A name containing a slash is returned as is when it is executable.
    public static func toolPath(_ tool: String) -> String? {
        if tool.contains("/") { return access(tool, X_OK) == 0 ? tool : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + extraToolDirectories
        for directory in directories where !directory.isEmpty {
            let candidate = directory + "/" + tool
            var info = stat()
            if stat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return nil
    }

    /// The names in `tools` that cannot be found (see `toolPath`).
    public static func missingTools(_ tools: [String]) -> [String] {
        tools.filter { toolPath($0) == nil }
    }

    /// Why an interop test needing `tools` (and root, unless `needsRoot` is
    /// false) cannot run here, or nil when it can.
    public static func interopBlocker(tools: [String], needsRoot: Bool = true) -> String? {
        var reasons: [String] = []
        if needsRoot && !isRoot { reasons.append("not root") }
        let missing = missingTools(tools)
        if !missing.isEmpty {
            reasons.append("missing \(missing.joined(separator: ", ")) (Scripts/install-test-deps)")
        }
        return reasons.isEmpty ? nil : reasons.joined(separator: "; ")
    }

    /// Whether an interop test should run: always with CI=true, otherwise
    /// only when nothing blocks it. For `.enabled(if:)`; prefer `.interop`,
    /// which also records why a CI run could not do its job.
    public static func canRunInterop(tools: [String], needsRoot: Bool = true) -> Bool {
        isCI || interopBlocker(tools: tools, needsRoot: needsRoot) == nil
    }

    /// Throws `.notRoot` / `.toolNotFound` when the test cannot do its job;
    /// for tests that decide at run time (e.g. a peer found only in some
    /// configurations). A thrown error is recorded as the test's failure.
    public static func requireInterop(tools: [String], needsRoot: Bool = true) throws(TestNetworkError) {
        if needsRoot && !isRoot { throw .notRoot(operation: "this interop test") }
        if let tool = missingTools(tools).first { throw .toolNotFound(tool) }
    }

    /// Polls `condition` every `interval` seconds for at most `timeout`
    /// seconds; returns whether it became true. Always bounded.
    public static func waitUntil(
        timeout: Double, interval: Double = 0.05, _ condition: () throws -> Bool
    ) rethrows -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int64(timeout * 1000))
        while true {
            if try condition() { return true }
            if clock.now >= deadline { return false }
            usleep(UInt32(max(1, interval * 1_000_000)))
        }
    }
}
