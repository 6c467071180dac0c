/// Which congestion control a connection uses for its window growth and
/// its response to loss; loss recovery itself is SACK-based (RFC 6675) when
/// the peer permits SACK and NewReno's (RFC 6582) otherwise.
public enum CongestionControlAlgorithm: Hashable, Sendable {
    /// CUBIC (RFC 9438): the default, as in Linux.
    case cubic
    /// Reno's additive increase (RFC 5681): one MSS per window acknowledged,
    /// ssthresh = FlightSize/2 on loss.
    case newReno
}
