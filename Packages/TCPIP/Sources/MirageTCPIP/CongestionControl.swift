import MirageDevices

/// A sender's congestion window (RFC 5681): slow start, congestion
/// avoidance by the configured algorithm (CUBIC, RFC 9438, or Reno's),
/// the window's response to loss, and the state of loss recovery — NewReno
/// fast recovery (RFC 6582) when the peer did not permit SACK, SACK-based
/// recovery (RFC 6675, the connection drives `SACKScoreboard`) when it did.
/// Bytes, not segments; the connection asks it what to send.
public struct CongestionControl: Sendable {
    /// Duplicate ACKs that trigger fast retransmit (RFC 5681 §3.2).
    public static let duplicateThreshold = 3

    /// The growth and decrease rules in use.
    public let algorithm: CongestionControlAlgorithm
    /// Sender maximum segment size.
    public let mss: Int
    /// Congestion window in bytes.
    public private(set) var congestionWindow: Int
    /// Slow-start threshold in bytes.
    public private(set) var slowStartThreshold: Int
    /// Duplicate ACKs seen in a row.
    public private(set) var duplicateAcks = 0
    /// In loss recovery until this is acknowledged ("recover", RFC 6582
    /// §3.2; RecoveryPoint, RFC 6675 §5).
    public private(set) var recoveryPoint: SequenceNumber?
    /// Whether the recovery in progress is RFC 6675's (SACK-based).
    public private(set) var sackRecovery = false
    /// After a timeout, no new recovery starts until this is acknowledged
    /// (RFC 6582 §3.2 step 1's "recover", RFC 6675 §5.1).
    public private(set) var timeoutRecoveryPoint: SequenceNumber?
    /// CUBIC's state (unused with NewReno).
    public private(set) var cubic = Cubic()
    /// Bytes acknowledged in Reno congestion avoidance not yet turned into window.
    private var acknowledgedInAvoidance = 0

    /// What the connection should do after an ACK.
    public enum Response: Equatable, Sendable {
        /// Nothing beyond sending what the window now allows.
        case none
        /// Retransmit the first unacknowledged segment now.
        case retransmit
    }

    /// A sender with the initial window of RFC 5681 §3.1 (RFC 6928's ten
    /// segments is Linux's default; we follow RFC 5681's formula for now).
    public init(mss: Int, algorithm: CongestionControlAlgorithm = .cubic,
                initialSlowStartThreshold: Int = Int(UInt32.max)) {
        precondition(mss > 0, "MSS must be positive")
        self.mss = mss
        self.algorithm = algorithm
        congestionWindow = mss > 2190 ? 2 * mss : (mss > 1095 ? 3 * mss : 4 * mss)
        slowStartThreshold = initialSlowStartThreshold
    }

    /// Whether in loss recovery (NewReno's or SACK-based).
    public var inRecovery: Bool { recoveryPoint != nil }

    /// Whether a new recovery may start: not in one, and not before the
    /// data outstanding at the last timeout is acknowledged.
    public var mayEnterRecovery: Bool { recoveryPoint == nil && timeoutRecoveryPoint == nil }

    /// An ACK that advanced SND.UNA by `acknowledged` bytes to
    /// `acknowledgment`, with `flightBefore` bytes outstanding before it;
    /// `now` and the smoothed `rtt` drive CUBIC's curve.
    public mutating func newAcknowledgment(_ acknowledged: Int, acknowledgment: SequenceNumber, flightBefore: Int,
                                           now: Instant, rtt: Interval) -> Response {
        duplicateAcks = 0  // RFC 6675 §5 step 1
        if let point = timeoutRecoveryPoint, !(acknowledgment < point) { timeoutRecoveryPoint = nil }
        if let recover = recoveryPoint {
            if !(acknowledgment < recover) {
                // Full acknowledgment ends recovery. RFC 6675 leaves cwnd at
                // ssthresh; NewReno deflates (RFC 6582 §3.2 step 3, option 1).
                if !sackRecovery {
                    congestionWindow = min(slowStartThreshold, max(flightBefore - acknowledged, mss) + mss)
                }
                recoveryPoint = nil
                sackRecovery = false
                return .none
            }
            // RFC 6675: the scoreboard decides what to send; cwnd stays.
            if sackRecovery { return .none }
            // Partial acknowledgment: retransmit the next hole, deflate by the
            // amount acknowledged, add back one MSS (RFC 6582 §3.2 step 4).
            congestionWindow = max(mss, congestionWindow - acknowledged + (acknowledged >= mss ? mss : 0))
            return .retransmit
        }
        if congestionWindow < slowStartThreshold {
            // Slow start, counting bytes (RFC 3465) without its per-ACK
            // limit L, as Linux does: receivers behind GRO or batching (ours
            // included) send one ACK for tens of segments, and L = 1 or 2
            // would then grow the window by one or two segments per batch.
            // Byte counting still defeats ACK division; the growth stops at
            // ssthresh.
            congestionWindow = min(congestionWindow + acknowledged, max(slowStartThreshold, congestionWindow))
            return .none
        }
        switch algorithm {
        case .cubic:
            cubic.congestionAvoidance(&congestionWindow, acknowledged: acknowledged, mss: mss, now: now, rtt: rtt)
        case .newReno:
            // Congestion avoidance: one MSS per window of data acknowledged.
            acknowledgedInAvoidance += acknowledged
            if acknowledgedInAvoidance >= congestionWindow {
                acknowledgedInAvoidance -= congestionWindow
                congestionWindow += mss
            }
        }
        return .none
    }

    /// A duplicate ACK (RFC 5681 §2's definition is the caller's to check)
    /// on a connection without SACK. `highestSent` is SND.NXT, recorded as
    /// the recovery point.
    public mutating func duplicateAcknowledgment(flight: Int, highestSent: SequenceNumber) -> Response {
        duplicateAcks += 1
        if inRecovery {
            // Each further duplicate means a segment left the network.
            congestionWindow += mss
            return .none
        }
        guard duplicateAcks == Self.duplicateThreshold, mayEnterRecovery else { return .none }
        decrease(flight: flight)
        congestionWindow = slowStartThreshold + 3 * mss
        recoveryPoint = highestSent
        return .retransmit
    }

    /// Counts a duplicate ACK as RFC 6675 §2 defines it (the caller's to
    /// check: it newly SACKs data), for SACK-based recovery.
    public mutating func sackDuplicateAcknowledgment() {
        if !inRecovery { duplicateAcks += 1 }
    }

    /// Enters SACK-based loss recovery (RFC 6675 §5 step 4): RecoveryPoint =
    /// HighData (`highestSent`), and ssthresh = cwnd = the algorithm's
    /// decrease of the window (step 4.2).
    public mutating func enterSACKRecovery(flight: Int, highestSent: SequenceNumber) {
        decrease(flight: flight)
        congestionWindow = slowStartThreshold
        recoveryPoint = highestSent
        sackRecovery = true
    }

    /// ssthresh on loss: FlightSize/2 for Reno (RFC 5681 §3.2 equation 4),
    /// max(cwnd·β_cubic, 2·MSS) for CUBIC (RFC 9438 §4.6).
    private mutating func decrease(flight: Int) {
        switch algorithm {
        case .newReno:
            slowStartThreshold = max(flight / 2, 2 * mss)
        case .cubic:
            slowStartThreshold = cubic.reduce(congestionWindow: congestionWindow, mss: mss)
        }
        acknowledgedInAvoidance = 0
    }

    /// The retransmission timer expired (RFC 5681 §3.1, equation 4; RFC
    /// 9438 §4.8): ssthresh decreased (not again when the loss was already
    /// being recovered, for CUBIC), one segment of window, out of recovery,
    /// and none until `highestSent` (SND.MAX) is acknowledged.
    public mutating func timeout(flight: Int, highestSent: SequenceNumber) {
        switch algorithm {
        case .newReno:
            decrease(flight: flight)
        case .cubic:
            // The window was already reduced for this loss if recovering.
            if !inRecovery { decrease(flight: flight) }
            cubic.timeout()
        }
        congestionWindow = mss
        duplicateAcks = 0
        recoveryPoint = nil
        sackRecovery = false
        timeoutRecoveryPoint = highestSent
        acknowledgedInAvoidance = 0
    }
}
