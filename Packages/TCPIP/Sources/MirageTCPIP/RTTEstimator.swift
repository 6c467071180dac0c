import MirageDevices

/// The retransmission timeout of RFC 6298: smoothed RTT and its variation
/// from samples, RTO = SRTT + max(G, 4·RTTVAR) bounded below and above,
/// doubled on each expiry (§5.5) and recomputed from the next sample.
/// Karn's rule (§3: no samples from retransmitted segments) is the caller's:
/// it knows which segments were retransmitted; with timestamps (RFC 7323
/// §4.2) every acknowledged segment gives a sample.
public struct RTTEstimator: Sendable {
    /// The RTO before any sample (RFC 6298 §2.1: 1 s).
    public static let initialTimeout = Interval.seconds(1)
    /// The smallest RTO. RFC 6298 §2.4 says 1 s; Linux and most stacks use
    /// 200 ms, which we follow (the RFC allows it with a note on spurious
    /// retransmissions).
    public static let defaultMinimum = Interval.milliseconds(200)
    /// The largest RTO (§2.5: at least 60 s).
    public static let defaultMaximum = Interval.seconds(60)
    /// Clock granularity G: our clock is nanoseconds, timers fire within a
    /// millisecond or so.
    public static let granularity = Interval.milliseconds(1)

    /// Smoothed round-trip time, once sampled.
    public private(set) var smoothed: Interval?
    /// Round-trip time variation.
    public private(set) var variation: Interval = .zero
    /// Backoffs applied since the last sample.
    public private(set) var backoffs = 0
    let minimum: Interval
    let maximum: Interval

    /// An estimator with no samples.
    public init(minimum: Interval = RTTEstimator.defaultMinimum, maximum: Interval = RTTEstimator.defaultMaximum) {
        precondition(minimum.nanoseconds > 0 && minimum <= maximum, "invalid RTO bounds")
        self.minimum = minimum
        self.maximum = maximum
    }

    /// Folds in a round-trip sample (§2.2, §2.3 with α = 1/8, β = 1/4) and
    /// ends any backoff.
    public mutating func sample(_ rtt: Interval) {
        let r = max(rtt, .zero)
        if let srtt = smoothed {
            let error = Interval(nanoseconds: abs((srtt.nanoseconds - r.nanoseconds)))
            variation = Interval(nanoseconds: (3 * variation.nanoseconds + error.nanoseconds) / 4)
            smoothed = Interval(nanoseconds: (7 * srtt.nanoseconds + r.nanoseconds) / 8)
        } else {
            smoothed = r
            variation = Interval(nanoseconds: r.nanoseconds / 2)
        }
        backoffs = 0
    }

    /// The timer expired: double the timeout (§5.5), up to the maximum.
    public mutating func backOff() { backoffs += 1 }

    /// The current retransmission timeout.
    public var timeout: Interval {
        var base: Interval
        if let srtt = smoothed {
            base = srtt + max(Self.granularity, variation * 4)
            base = max(base, minimum)
        } else {
            base = max(Self.initialTimeout, minimum)
        }
        var rto = base
        for _ in 0..<min(backoffs, 32) {
            rto = rto * 2
            if rto >= maximum { return maximum }
        }
        return min(rto, maximum)
    }
}
