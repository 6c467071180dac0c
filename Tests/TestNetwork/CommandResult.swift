/// The outcome of `runCommand`: exit status and everything the program wrote.
public struct CommandResult: Sendable, CustomStringConvertible {
    /// The command as it was run (after tool resolution, before `ip netns exec`).
    public var argv: [String]
    /// The exit status; 128 + N when the program was killed by signal N.
    public var status: Int32
    /// Raw bytes written to standard output.
    public var stdoutBytes: [UInt8]
    /// Raw bytes written to standard error.
    public var stderrBytes: [UInt8]
    /// True when the hard timeout expired and the program was killed.
    public var timedOut: Bool

    /// Creates a result (used by the runner; handy for tests of parsers).
    public init(argv: [String], status: Int32, stdoutBytes: [UInt8], stderrBytes: [UInt8], timedOut: Bool) {
        self.argv = argv
        self.status = status
        self.stdoutBytes = stdoutBytes
        self.stderrBytes = stderrBytes
        self.timedOut = timedOut
    }

    /// Standard output decoded as UTF-8 (invalid bytes replaced).
    public var stdout: String { String(decoding: stdoutBytes, as: UTF8.self) }
    /// Standard error decoded as UTF-8 (invalid bytes replaced).
    public var stderr: String { String(decoding: stderrBytes, as: UTF8.self) }
    /// Exit status 0 and no timeout.
    public var succeeded: Bool { status == 0 && !timedOut }

    /// Returns `self` when the command succeeded, else throws `.commandFailed`.
    @discardableResult
    public func check() throws(TestNetworkError) -> CommandResult {
        guard succeeded else { throw .commandFailed(self) }
        return self
    }

    public var description: String {
        var text = "`\(argv.joined(separator: " "))` exited \(status)"
        if timedOut { text += " (killed: timed out)" }
        let out = stdout.trimmingSuffixWhitespace()
        let err = stderr.trimmingSuffixWhitespace()
        if !out.isEmpty { text += "\nstdout: \(out.prefix(2000))" }
        if !err.isEmpty { text += "\nstderr: \(err.prefix(2000))" }
        return text
    }
}

extension String {
    func trimmingSuffixWhitespace() -> String {
        var end = endIndex
        while end > startIndex, let last = self[index(before: end)].unicodeScalars.first,
              last == " " || last == "\n" || last == "\t" || last == "\r" {
            end = index(before: end)
        }
        return String(self[startIndex..<end])
    }
}
