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
