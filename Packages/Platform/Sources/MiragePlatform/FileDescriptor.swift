import CMiragePlatform
import Glibc
import MirageDevices

/// The descriptor calls the platform makes, with EINTR retried a bounded
/// number of times and failures reported as `-errno` or `DeviceError`.
enum FileDescriptor {
    /// Consecutive EINTR answers tolerated before a call gives up with EINTR.
    static let maximumInterruptedRetries = 64

    /// Closes `fd`. EINTR is not retried: Linux releases the descriptor
    /// before it reports EINTR, so a retry could close a reused number.
    /// Partial writes and EINTRs tolerated for one `writeAll` before giving up.
    static let maximumWriteAttempts = 64

    /// Writes all of `bytes` to `fd`, retrying partial writes and EINTR a
    /// bounded number of times. Returns the bytes written and, when not all
    /// were, the errno that stopped it (ENOSPC for a write of zero, EINTR
    /// when the attempts ran out).
    static func writeAll(_ fd: Int32, _ bytes: Span<UInt8>) -> (written: Int, error: Int32?) {
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return (0, nil) }
            var written = 0
            for _ in 0..<maximumWriteAttempts where written < raw.count {
                let n = Glibc.write(fd, base + written, raw.count - written)
                if n > 0 {
                    written += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    return (written, n < 0 ? errno : ENOSPC)
                }
            }
            return (written, written < raw.count ? EINTR : nil)
        }
    }

    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// The `DeviceError` for a shim's negative return value.
    static func error(_ call: String, _ negated: Int) -> DeviceError {
        .system(call: call, errno: Int32(truncatingIfNeeded: -negated))
    }

    /// The `DeviceError` for a shim's negative return value.
    static func error(_ call: String, _ negated: Int32) -> DeviceError {
        .system(call: call, errno: -negated)
    }
}
