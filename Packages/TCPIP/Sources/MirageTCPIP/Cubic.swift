import MirageDevices

/// CUBIC's window growth and reduction (RFC 9438) in integer arithmetic:
/// the core builds for bare metal without floating point, so time is in
/// milliseconds, windows in bytes, and C, β_cubic and α_cubic are ratios.
///
/// The curve (§4.2, Figure 1) is W_cubic(t) = C·(t − K)³ + W_max in
/// segments with t in seconds; in bytes and milliseconds that is
/// W_max + MSS·C·(t − K)³/10⁹, and K = ∛((W_max − cwnd_epoch)/C) (Figure 2)
/// becomes ∛((W_max − cwnd_epoch)·2.5·10⁹/MSS) milliseconds.
public struct Cubic: Sendable {
    /// C = 0.4 (§5): its numerator over `constantDenominator`.
    public static let constantNumerator: UInt64 = 4
    /// C's denominator.
    public static let constantDenominator: UInt64 = 10
    /// β_cubic = 0.7 (§4.6): the numerator over `betaDenominator`.
    public static let betaNumerator = 7
    /// β_cubic's denominator.
    public static let betaDenominator = 10
    /// α_cubic = 3(1 − β)/(1 + β) ≈ 0.5294 (§4.3) in units of 1/1024.
    public static let alphaScaled = 542
    /// The scale of `alphaScaled` (α = 1 is 1024).
    public static let alphaScale = 1024
    /// |t − K| is clamped to this many milliseconds (2000 s): the cube
    /// stays within UInt64 and the target is clamped to 1.5·cwnd anyway.
    public static let maximumCurveDistance: UInt64 = 2_000_000

    /// W_max: the window, in bytes, just before the last reduction (§4.7
    /// may lower it); 0 before any.
    public private(set) var maximumWindow = 0
    /// cwnd_prior: the window before the last reduction (§4.3 switches
    /// α_cubic to 1 once W_est reaches it).
    public private(set) var priorWindow = 0
    /// The start of the current congestion avoidance stage (t = 0), nil
    /// until the first ACK in congestion avoidance after a reduction.
    public private(set) var epochStart: Instant?
    /// K in milliseconds (§4.2, Figure 2).
    public private(set) var k: UInt64 = 0
    /// W_est in bytes: the window Reno would have (§4.3).
    public private(set) var estimatedWindow = 0
    /// Fractions of a byte not yet added to W_est and to cwnd.
    private var estimateRemainder = 0
    private var windowRemainder = 0

    /// No reduction yet.
    public init() {}

    /// ⌊∛n⌋ by Newton's iteration from above (no floating point).
    public static func cubeRoot(_ n: UInt64) -> UInt64 {
        guard n > 1 else { return n }
        let bits = UInt64.bitWidth - n.leadingZeroBitCount
        // 2^⌈bits/3⌉ ≥ ∛n, and ≤ 2^22 so x·x never overflows.
        var x: UInt64 = 1 << UInt64((bits + 2) / 3)
        while true {
            let y = (2 * x + n / (x * x)) / 3
            if y >= x { break }
            x = y
        }
        // Newton from above stops at ⌊∛n⌋ or one above it; settle exactly.
        while x * x * x > n { x -= 1 }
        // (x+1)³ may pass 2⁶⁴ near the top of the range: that is "above n".
        while true {
            let (square, o1) = (x + 1).multipliedReportingOverflow(by: x + 1)
            let (cube, o2) = square.multipliedReportingOverflow(by: x + 1)
            guard !o1, !o2, cube <= n else { return x }
            x += 1
        }
    }

    /// K for a window to regain of `deficit` bytes (Figure 2), in ms.
    public static func k(deficit: Int, mss: Int) -> UInt64 {
        guard deficit > 0 else { return 0 }
        let d = min(UInt64(deficit), UInt64(UInt32.max))
        // (W_max − cwnd_epoch)/(MSS·C) s³ = d·10/(4·MSS)·10⁹ ms³.
        return cubeRoot(d * (constantDenominator * 1_000_000_000 / constantNumerator) / UInt64(mss))
    }

    /// W_cubic at `t` ms into the epoch, in bytes (Figure 1), never below 0.
    public func window(at t: UInt64, mss: Int) -> Int {
        let above = t >= k
        let distance = min(above ? t - k : k - t, Self.maximumCurveDistance)
        // C·d³/10⁹ segments, in units of 1/1024 segment: d³·1024·4/10¹⁰.
        let cube = distance * distance * distance
        let scaled = cube / (Self.constantDenominator * 1_000_000_000 / (1024 * Self.constantNumerator))
        let bytes = Int((scaled * UInt64(mss)) >> 10)  // < 2^58: scaled < 2^42, MSS < 2^16
        return above ? maximumWindow + bytes : max(0, maximumWindow - bytes)
    }

    /// A congestion event (§4.6): remembers W_max with fast convergence
    /// (§4.7), ends the epoch, and returns ssthresh = max(cwnd·β, 2·MSS),
    /// which is also the new cwnd.
    public mutating func reduce(congestionWindow cwnd: Int, mss: Int) -> Int {
        // §4.7: a window below the last W_max means a new flow is taking
        // bandwidth; release some by lowering W_max further.
        if cwnd < maximumWindow {
            maximumWindow = cwnd * (Self.betaDenominator + Self.betaNumerator) / (2 * Self.betaDenominator)
        } else {
            maximumWindow = cwnd
        }
        priorWindow = cwnd
        epochStart = nil
        return max(cwnd * Self.betaNumerator / Self.betaDenominator, 2 * mss)
    }

    /// The retransmission timer expired (§4.8): the next congestion
    /// avoidance stage starts a new curve with K = 0 and W_max = the window
    /// at its start.
    public mutating func timeout() {
        epochStart = nil
        maximumWindow = 0
    }

    /// An ACK of `acknowledged` new bytes in congestion avoidance: grows
    /// `cwnd` towards the curve (§4.2–§4.5) or the Reno estimate (§4.3).
    /// `rtt` is the smoothed round-trip time; `now` the current time.
    public mutating func congestionAvoidance(_ cwnd: inout Int, acknowledged: Int, mss: Int, now: Instant,
                                             rtt: Interval) {
        guard acknowledged > 0, cwnd > 0 else { return }
        guard let start = epochStart, !(now < start) else {
            // A new epoch (§4.2): t = 0 now; cwnd_epoch = cwnd; W_est = cwnd_epoch (§4.3).
            epochStart = now
            if maximumWindow <= cwnd {
                // After a timeout, or when already above W_max: K = 0, W_max = cwnd (§4.8).
                maximumWindow = cwnd
                k = 0
            } else {
                k = Self.k(deficit: maximumWindow - cwnd, mss: mss)
            }
            estimatedWindow = cwnd
            estimateRemainder = 0
            windowRemainder = 0
            return
        }
        let t = UInt64((now - start).nanoseconds / 1_000_000)
        let rttMs = UInt64(max(0, rtt.nanoseconds / 1_000_000))
        // §4.3: W_est grows by α_cubic·segments_acked/cwnd segments, with
        // α_cubic = 1 once W_est has reached cwnd_prior.
        let alpha = estimatedWindow >= priorWindow ? Self.alphaScale : Self.alphaScaled
        estimateRemainder += alpha * acknowledged * mss
        let unit = Self.alphaScale * cwnd
        estimatedWindow += estimateRemainder / unit
        estimateRemainder %= unit
        if window(at: t, mss: mss) < estimatedWindow {
            // Reno-friendly region (§4.3): cwnd = W_est.
            cwnd = max(cwnd, estimatedWindow)
            return
        }
        // Concave and convex regions (§4.4, §4.5): the target is W_cubic one
        // RTT ahead, clamped to [cwnd, 1.5·cwnd] (§4.2); cwnd grows by
        // (target − cwnd)/cwnd per segment acknowledged.
        let target = min(max(window(at: t + rttMs, mss: mss), cwnd), cwnd + cwnd / 2)
        windowRemainder += (target - cwnd) * acknowledged
        cwnd += windowRemainder / cwnd
        windowRemainder %= cwnd
    }
}
