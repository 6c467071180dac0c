import MirageDevices

/// A token bucket limiting the ICMP errors a host generates (RFC 1812
/// §4.3.2.8; RFC 1122 §3.2.2 asks hosts to limit them too).
public struct ICMPRateLimiter: Sendable {
    /// Tokens added per second.
    public let ratePerSecond: Int
    /// The most tokens saved up.
    public let burst: Int
    private var tokens: Int
    private var lastRefill: Instant

    /// A full bucket.
    public init(ratePerSecond: Int = 100, burst: Int = 50, now: Instant = .zero) {
        precondition(ratePerSecond > 0 && burst > 0, "invalid ICMP rate limit")
        self.ratePerSecond = ratePerSecond
        self.burst = burst
        tokens = burst
        lastRefill = now
    }

    /// Takes a token if one is there.
    public mutating func allow(now: Instant) -> Bool {
        let elapsed = now - lastRefill
        if elapsed.nanoseconds > 0 {
            let nanosPerToken = Int64(1_000_000_000 / ratePerSecond)
            let earned = elapsed.nanoseconds / max(1, nanosPerToken)
            if earned > 0 {
                tokens = Int(min(Int64(burst), Int64(tokens) + earned))
                lastRefill = lastRefill + Interval(nanoseconds: earned * nanosPerToken)
            }
        }
        guard tokens > 0 else { return false }
        tokens -= 1
        return true
    }
}
