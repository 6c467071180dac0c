/// What went wrong while setting up or driving a test network.
public enum TestNetworkError: Error, CustomStringConvertible, Sendable {
    /// The operation needs root (network namespaces, veth, tap).
    case notRoot(operation: String)
    /// A program was not found in PATH, /usr/sbin or /sbin.
    case toolNotFound(String)
    /// `posix_spawn` or a pipe/file set-up failed with this errno.
    case spawnFailed(argv: [String], errno: Int32)
    /// A command ran but did not succeed (non-zero status or timeout).
    case commandFailed(CommandResult)
    /// A command's output did not have the expected shape.
    case unexpectedOutput(command: String, output: String)
    /// A namespace or link is still there after it should have been removed.
    case cleanupFailed(String)
    /// A bounded wait ran out before its condition held.
    case timedOut(String)
    /// Image bytes that `PNGImage` cannot read (not a PNG, corrupt, or a
    /// kind it does not decode).
    case badImage(String)
    /// Chromium ran but produced no screenshot of `url` (e.g. the page did
    /// not load: `reason` is Chromium's "Page load failed: net::…" line).
    case screenshotFailed(url: String, reason: String)

    public var description: String {
        switch self {
        case .notRoot(let operation):
            return "\(operation) needs root (euid is not 0)"
        case .toolNotFound(let tool):
            return "program '\(tool)' not found in PATH, /usr/sbin or /sbin"
        case .spawnFailed(let argv, let errno):
            return "could not start \(argv.joined(separator: " ")): errno \(errno)"
        case .commandFailed(let result):
            return "command failed: \(result)"
        case .unexpectedOutput(let command, let output):
            return "unexpected output from \(command): \(output)"
        case .cleanupFailed(let what):
            return "cleanup failed: \(what)"
        case .timedOut(let what):
            return "timed out waiting for \(what)"
        case .badImage(let what):
            return "cannot decode image: \(what)"
        case .screenshotFailed(let url, let reason):
            return "no screenshot of \(url): \(reason)"
        }
    }
}
