/// Congestion control per RFC 5681 with NewReno's fast recovery (RFC 6582):
/// slow start and congestion avoidance, fast retransmit on the third
/// duplicate ACK, recovery until the data outstanding at loss is
/// acknowledged (partial ACKs retransmit the next hole), and the timeout
/// response. Bytes, not segments; the connection asks it what to send.
public struct NewReno: Sendable {
    /// Duplicate ACKs that trigger fast retransmit (RFC 5681 §3.2).
    public static let duplicateThreshold = 3

    /// Sender maximum segment size.
    public let mss: Int
    /// Congestion window in bytes.
    public private(set) var congestionWindow: Int
    /// Slow-start threshold in bytes.
    public private(set) var slowStartThreshold: Int
    /// Duplicate ACKs seen in a row.
    public private(set) var duplicateAcks = 0
    /// In fast recovery until this is acknowledged ("recover", RFC 6582 §3.2).
    public private(set) var recoveryPoint: SequenceNumber?
    /// Bytes acknowledged in congestion avoidance not yet turned into window.
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
    public init(mss: Int, initialSlowStartThreshold: Int = Int(UInt32.max)) {
        precondition(mss > 0, "MSS must be positive")
        self.mss = mss
        congestionWindow = mss > 2190 ? 2 * mss : (mss > 1095 ? 3 * mss : 4 * mss)
        slowStartThreshold = initialSlowStartThreshold
    }

    /// Whether in fast recovery.
    public var inRecovery: Bool { recoveryPoint != nil }

    /// An ACK that advanced SND.UNA by `acknowledged` bytes to
    /// `acknowledgment`, with `flightBefore` bytes outstanding before it.
    public mutating func newAcknowledgment(_ acknowledged: Int, acknowledgment: SequenceNumber, flightBefore: Int) -> Response {
        duplicateAcks = 0
        if let recover = recoveryPoint {
            if !(acknowledgment < recover) {
                // Full acknowledgment: deflate (RFC 6582 §3.2 step 3, option 1).
                congestionWindow = min(slowStartThreshold, max(flightBefore - acknowledged, mss) + mss)
                recoveryPoint = nil
                return .none
            }
            // Partial acknowledgment: retransmit the next hole, deflate by the
            // amount acknowledged, add back one MSS (step 4).
            congestionWindow = max(mss, congestionWindow - acknowledged + (acknowledged >= mss ? mss : 0))
            return .retransmit
        }
        if congestionWindow < slowStartThreshold {
            // Slow start: grow by at most one MSS per ACK (RFC 5681 §3.1, with
            // RFC 3465's L = 1).
            congestionWindow += min(acknowledged, mss)
        } else {
            // Congestion avoidance: one MSS per window of data acknowledged.
            acknowledgedInAvoidance += acknowledged
            if acknowledgedInAvoidance >= congestionWindow {
                acknowledgedInAvoidance -= congestionWindow
                congestionWindow += mss
            }
        }
        return .none
    }

    /// A duplicate ACK (RFC 5681 §2's definition is the caller's to check).
    /// `highestSent` is SND.NXT, recorded as the recovery point.
    public mutating func duplicateAcknowledgment(flight: Int, highestSent: SequenceNumber) -> Response {
        duplicateAcks += 1
        if inRecovery {
            // Each further duplicate means a segment left the network.
            congestionWindow += mss
            return .none
        }
        guard duplicateAcks == Self.duplicateThreshold else { return .none }
        slowStartThreshold = max(flight / 2, 2 * mss)
        congestionWindow = slowStartThreshold + 3 * mss
        recoveryPoint = highestSent
        return .retransmit
    }

    /// The retransmission timer expired (RFC 5681 §3.1, equation 4):
    /// ssthresh to half the flight, one segment of window, out of recovery.
    public mutating func timeout(flight: Int) {
        slowStartThreshold = max(flight / 2, 2 * mss)
        congestionWindow = mss
        duplicateAcks = 0
        recoveryPoint = nil
        acknowledgedInAvoidance = 0
    }
}
