/// The send side of a TCP connection's data: bytes the application wrote,
/// from the oldest unacknowledged one (SND.UNA) on, kept until acknowledged
/// so they can be retransmitted. Bounded by `capacity`: `append` takes what
/// fits, which is the back-pressure `Stack.write` reports.
public struct TCPSendBuffer {
    private var ring: ByteRing
    /// The sequence number of the first byte held (SND.UNA for data).
    public private(set) var unacknowledged: SequenceNumber

    /// A buffer whose first byte will have sequence number `start`.
    public init(start: SequenceNumber, capacity: Int) {
        ring = ByteRing(capacity: capacity)
        unacknowledged = start
    }

    /// Bytes held, acknowledged or not yet sent.
    public var count: Int { ring.count }
    /// Room for more.
    public var freeSpace: Int { ring.freeSpace }
    /// The sequence number after the last byte held.
    public var end: SequenceNumber { unacknowledged + ring.count }

    /// Takes as much of `bytes` as fits; returns how much.
    public mutating func append(_ bytes: Span<UInt8>) -> Int { ring.append(bytes) }

    /// Writes the `length` bytes starting at sequence number `sequence`
    /// (which must be held) into `buffer` at `at`, for a segment.
    public func copy(from sequence: SequenceNumber, length: Int, into buffer: inout MutableSpan<UInt8>, at: Int) {
        ring.copy(from: sequence - unacknowledged, length: length, into: &buffer, at: at)
    }

    /// Drops the bytes before `acknowledgment`; returns how many. An
    /// acknowledgment outside the bytes held changes nothing (the caller
    /// decides what such an ACK means, RFC 9293 §3.10.7.4).
    @discardableResult
    public mutating func acknowledge(upTo acknowledgment: SequenceNumber) -> Int {
        let n = acknowledgment - unacknowledged
        guard n > 0, n <= ring.count else { return 0 }
        ring.discard(n)
        unacknowledged = acknowledgment
        return n
    }
}
