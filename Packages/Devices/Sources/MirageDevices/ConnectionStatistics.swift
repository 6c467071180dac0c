/// What a stack knows about one TCP connection's progress: the figures
/// Linux's `TCP_INFO` gives, in the same units from every stack, for the
/// application and for tracing. Figures a stack does not track are nil or 0.
public struct ConnectionStatistics: Hashable, Sendable {
    /// Segments sent, retransmissions included.
    public var segmentsSent: UInt64 = 0
    /// Segments received.
    public var segmentsReceived: UInt64 = 0
    /// Segments sent again (timeouts, fast retransmit).
    public var retransmissions: UInt64 = 0
    /// Data bytes the peer acknowledged.
    public var bytesAcknowledged: UInt64 = 0
    /// Data bytes received in order.
    public var bytesReceived: UInt64 = 0
    /// Bytes sent and not yet acknowledged.
    public var bytesInFlight: Int = 0
    /// The congestion window, in bytes.
    public var congestionWindow: Int = 0
    /// The slow-start threshold, in bytes.
    public var slowStartThreshold: Int = 0
    /// The window the peer offers, in bytes.
    public var sendWindow: Int = 0
    /// The window we offer, in bytes.
    public var receiveWindow: Int = 0
    /// The largest segment we send (the effective send MSS).
    public var maximumSegmentSize: Int = 0
    /// Smoothed round-trip time (RFC 6298), once sampled.
    public var smoothedRTT: Interval?
    /// Round-trip time variation, once sampled.
    public var rttVariation: Interval?
    /// The current retransmission timeout.
    public var retransmissionTimeout: Interval?

    /// All zero.
    public init() {}
}
