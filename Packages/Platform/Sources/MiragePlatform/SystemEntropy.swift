import CMiragePlatform
import Glibc
import MirageDevices

/// Random bytes from the kernel's CSPRNG through `getrandom(2)` (flags 0:
/// blocks only until the pool is first initialised at boot). Short reads
/// (possible above 256 bytes when a signal arrives) and EINTR are retried.
/// Stateless, so one instance can be shared by any threads.
public final class SystemEntropy: EntropySource, Sendable {
    /// Calls that return no bytes (EINTR) tolerated in a row before giving up.
    static let maximumFruitlessCalls = 1_000

    /// The kernel's generator.
    public init() {}

    /// Fills `buffer`. `EntropySource.fill` cannot report failure, and
    /// handing out predictable bytes where randomness was asked for (keys,
    /// ISNs, DNS IDs) would be a silent security hole, so a kernel that
    /// refuses `getrandom` (ENOSYS before Linux 3.17, a seccomp filter, or a
    /// thousand EINTRs in a row) stops the program instead.
    public func fill(_ buffer: inout MutableSpan<UInt8>) {
        guard buffer.count > 0 else { return }
        buffer.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            var filled = 0
            var fruitless = 0
            while filled < raw.count {
                let n = mirage_getrandom(base + filled, raw.count - filled)
                if n > 0 {
                    filled += n
                    fruitless = 0
                    continue
                }
                fruitless += 1
                let code = Int32(truncatingIfNeeded: -n)
                precondition(n < 0 ? code == EINTR : true, "getrandom failed with errno \(code): no entropy available")
                precondition(fruitless < Self.maximumFruitlessCalls, "getrandom made no progress")
            }
        }
    }
}
