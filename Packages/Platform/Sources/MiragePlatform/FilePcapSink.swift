import Glibc
import MirageDevices

/// A `PcapSink` writing the capture to a file (created or truncated), one
/// `write(2)` per chunk `PcapWriter` hands over (the file header, then one
/// record per frame), so a capture cut short by a crash is readable up to
/// its last whole record.
///
/// `PcapSink.write` cannot fail, so the first failed write (disk full, I/O
/// error) is kept in `failure` and the sink stops writing: a capture with a
/// hole in the middle would be unreadable. Not thread-safe: use it from one
/// thread (the loop's, with `PcapInterface`).
public final class FilePcapSink: PcapSink {

    /// The capture file.
    public let path: String
    /// Bytes written so far.
    public private(set) var bytesWritten: UInt64 = 0
    /// The first write error; nothing is written after it.
    public private(set) var failure: DeviceError?
    /// -1 once closed.
    private var fd: Int32

    /// Creates (or truncates) `path`, mode 0644.
    public init(path: String) throws(DeviceError) {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .system(call: "open", errno: errno) }
        self.path = path
        self.fd = fd
    }

    deinit {
        if fd >= 0 { FileDescriptor.close(fd) }
    }

    /// Whether `close()` has been called.
    public var isClosed: Bool { fd < 0 }

    public func write(_ bytes: Span<UInt8>) {
        guard fd >= 0, failure == nil, bytes.count > 0 else { return }
        let fd = self.fd
        let result = FileDescriptor.writeAll(fd, bytes)
        bytesWritten &+= UInt64(result.written)
        if let code = result.error { failure = .system(call: "write", errno: code) }
    }

    /// Closes the file; later writes are ignored. Idempotent.
    public func close() {
        guard fd >= 0 else { return }
        FileDescriptor.close(fd)
        fd = -1
    }
}
