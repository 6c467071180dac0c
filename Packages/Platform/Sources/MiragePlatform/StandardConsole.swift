import Glibc
import MirageDevices

/// A console writing each line to standard error (or another descriptor)
/// with one `write(2)`, so lines from several threads do not interleave
/// (below PIPE_BUF bytes). Write failures are ignored: a console has nowhere
/// to report them.
public final class StandardConsole: Console, Sendable {
    /// Where the lines go.
    public let fileDescriptor: Int32

    /// A console on `fileDescriptor` (standard error by default).
    public init(fileDescriptor: Int32 = STDERR_FILENO) {
        self.fileDescriptor = fileDescriptor
    }

    public func log(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(UInt8(ascii: "\n"))
        // Failures are ignored: a console has nowhere to report them.
        _ = FileDescriptor.writeAll(fileDescriptor, bytes.span)
    }
}
