/// A point on a monotonic clock, in nanoseconds since an arbitrary origin
/// (boot, or the start of a test). The bare-metal target has no `Clock`, so
/// every core measures time with this type and receives it as an argument.
public struct Instant: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// Nanoseconds since the clock's origin.
    public var nanoseconds: UInt64

    /// The instant `nanoseconds` after the origin.
    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    /// The origin of the clock.
    public static let zero = Instant(nanoseconds: 0)

    public static func < (a: Instant, b: Instant) -> Bool { a.nanoseconds < b.nanoseconds }

    /// The instant `interval` later, saturating at the ends of the range
    /// instead of trapping.
    public static func + (a: Instant, b: Interval) -> Instant {
        if b.nanoseconds >= 0 {
            let (sum, overflow) = a.nanoseconds.addingReportingOverflow(UInt64(b.nanoseconds))
            return Instant(nanoseconds: overflow ? .max : sum)
        }
        let magnitude = b.nanoseconds.magnitude
        return Instant(nanoseconds: a.nanoseconds >= magnitude ? a.nanoseconds - magnitude : 0)
    }

    /// The interval from `b` to `a`, saturating.
    public static func - (a: Instant, b: Instant) -> Interval {
        if a >= b {
            let d = a.nanoseconds - b.nanoseconds
            return Interval(nanoseconds: d > UInt64(Int64.max) ? .max : Int64(d))
        }
        let d = b.nanoseconds - a.nanoseconds
        return Interval(nanoseconds: d > UInt64(Int64.max) ? .min : -Int64(d))
    }

    public var description: String { "\(nanoseconds)ns" }

    /// The earlier of two optional deadlines (nil: no deadline), as every
    /// core computes its next timer from several.
    public static func earlier(_ a: Instant?, _ b: Instant?) -> Instant? {
        guard let a else { return b }
        guard let b else { return a }
        return b < a ? b : a
    }
}

/// A signed span of time in nanoseconds (about ±292 years).
public struct Interval: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// The length in nanoseconds; negative for an interval backwards.
    public var nanoseconds: Int64

    /// An interval of `nanoseconds`.
    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// No time at all.
    public static let zero = Interval(nanoseconds: 0)
    /// `n` nanoseconds.
    public static func nanoseconds(_ n: Int64) -> Interval { Interval(nanoseconds: n) }
    /// `n` microseconds, saturating.
    public static func microseconds(_ n: Int64) -> Interval { Interval(saturatingProduct: n, 1_000) }
    /// `n` milliseconds, saturating.
    public static func milliseconds(_ n: Int64) -> Interval { Interval(saturatingProduct: n, 1_000_000) }
    /// `n` seconds, saturating.
    public static func seconds(_ n: Int64) -> Interval { Interval(saturatingProduct: n, 1_000_000_000) }

    init(saturatingProduct n: Int64, _ unit: Int64) {
        let (p, overflow) = n.multipliedReportingOverflow(by: unit)
        nanoseconds = overflow ? (n < 0 ? .min : .max) : p
    }

    /// Whole milliseconds, rounded towards zero.
    public var milliseconds: Int64 { nanoseconds / 1_000_000 }

    public static func < (a: Interval, b: Interval) -> Bool { a.nanoseconds < b.nanoseconds }
    public static func + (a: Interval, b: Interval) -> Interval {
        let (s, o) = a.nanoseconds.addingReportingOverflow(b.nanoseconds)
        return Interval(nanoseconds: o ? (b.nanoseconds < 0 ? .min : .max) : s)
    }
    public static func * (a: Interval, k: Int64) -> Interval { Interval(saturatingProduct: a.nanoseconds, k) }

    public var description: String { "\(nanoseconds)ns" }
}

/// Calendar time as seconds and nanoseconds since the Unix epoch (UTC).
/// Only certificates, logs and pcap timestamps need it; protocol timers use
/// `Instant`.
public struct WallTime: Comparable, Hashable, Sendable {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    public var seconds: Int64
    /// Nanoseconds within the second, 0..<1_000_000_000.
    public var nanoseconds: UInt32

    /// A wall time; `nanoseconds` must be below one second.
    public init(seconds: Int64, nanoseconds: UInt32) {
        precondition(nanoseconds < 1_000_000_000, "nanoseconds must be below one second")
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public static func < (a: WallTime, b: WallTime) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }
}
