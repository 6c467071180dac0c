/// A monotonic clock: never goes backwards, unaffected by wall-clock changes.
/// Backends: `clock_gettime(CLOCK_MONOTONIC)` on Linux, the TSC or a PV clock
/// on bare metal, a `ManualClock` in tests.
public protocol MonotonicClock: AnyObject {
    /// The current instant.
    func now() -> Instant
}

/// A wall clock, for certificate validity, logs and capture timestamps.
public protocol WallClock: AnyObject {
    /// The current calendar time.
    func wallTime() -> WallTime
}

/// A clock that moves only when told to: the explicit clock of
/// deterministic tests. It is both monotonic and wall clock (the wall time is
/// `wallOrigin` plus the monotonic reading).
public final class ManualClock: MonotonicClock, WallClock {
    /// The current reading.
    public private(set) var current: Instant
    /// Wall time at `Instant.zero`.
    public var wallOrigin: WallTime

    /// A clock reading `start`, whose wall time at the origin is `wallOrigin`.
    public init(start: Instant = .zero, wallOrigin: WallTime = WallTime(seconds: 1_700_000_000, nanoseconds: 0)) {
        current = start
        self.wallOrigin = wallOrigin
    }

    public func now() -> Instant { current }

    public func wallTime() -> WallTime {
        let total = UInt64(wallOrigin.nanoseconds) + current.nanoseconds % 1_000_000_000
        let seconds = wallOrigin.seconds &+ Int64(current.nanoseconds / 1_000_000_000) &+ Int64(total / 1_000_000_000)
        return WallTime(seconds: seconds, nanoseconds: UInt32(total % 1_000_000_000))
    }

    /// Moves the clock forward by `interval`; a negative interval is a
    /// programming error (monotonic clocks do not go back).
    public func advance(by interval: Interval) {
        precondition(interval.nanoseconds >= 0, "a monotonic clock cannot go back")
        current = current + interval
    }

    /// Sets the clock to `instant`, which must not be earlier than now.
    public func advance(to instant: Instant) {
        precondition(instant >= current, "a monotonic clock cannot go back")
        current = instant
    }
}
