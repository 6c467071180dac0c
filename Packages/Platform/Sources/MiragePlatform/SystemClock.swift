import Glibc
import MirageDevices

/// The host's clocks: `CLOCK_MONOTONIC` for `Instant` (time since boot,
/// never going back, unaffected by wall-clock changes) and `CLOCK_REALTIME`
/// for `WallTime`. Stateless, so one instance can be shared by any threads.
public final class SystemClock: MonotonicClock, WallClock, Sendable {
    /// The host clocks.
    public init() {}

    public func now() -> Instant { Self.monotonicNow() }

    public func wallTime() -> WallTime { Self.realtimeNow() }

    /// `CLOCK_MONOTONIC`. clock_gettime cannot fail for a valid clock and
    /// pointer; the reading is clamped rather than trusted blindly.
    static func monotonicNow() -> Instant {
        var ts = timespec()
        _ = clock_gettime(CLOCK_MONOTONIC, &ts)
        let seconds = UInt64(clamping: ts.tv_sec)
        let nanoseconds = UInt64(clamping: ts.tv_nsec)
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return Instant(nanoseconds: .max) }
        let (total, overflow2) = scaled.addingReportingOverflow(nanoseconds)
        return Instant(nanoseconds: overflow2 ? .max : total)
    }

    /// `CLOCK_REALTIME`.
    static func realtimeNow() -> WallTime {
        var ts = timespec()
        _ = clock_gettime(CLOCK_REALTIME, &ts)
        let nanoseconds = UInt32(clamping: min(max(ts.tv_nsec, 0), 999_999_999))
        return WallTime(seconds: Int64(ts.tv_sec), nanoseconds: nanoseconds)
    }
}
