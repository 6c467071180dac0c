import Glibc
import MirageDevices

/// A console writing each line to standard error (or another descriptor)
/// with one `write(2)`, so lines from several threads do not interleave
/// (below PIPE_BUF bytes). Write failures are ignored: a console has nowhere
/// to report them.
public final class StandardConsole: Console, Sendable {
    /// Partial writes and EINTRs tolerated for one line before it is dropped.
    static let maximumWriteAttempts = 64

    /// Where the lines go.
    public let fileDescriptor: Int32

    /// A console on `fileDescriptor` (standard error by default).
    public init(fileDescriptor: Int32 = STDERR_FILENO) {
        self.fileDescriptor = fileDescriptor
    }

    public func log(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var written = 0
            for _ in 0..<Self.maximumWriteAttempts where written < raw.count {
                let n = Glibc.write(fileDescriptor, base + written, raw.count - written)
                if n > 0 {
                    written += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }
}
