/// Cuts a TCP byte stream into DNS messages: each is preceded by its
/// length as two bytes, most significant first (RFC 1035 §4.2.2, RFC 7766
/// §8). Fed any split of the stream, it yields the same messages.
public struct StreamFramer: Sendable {
    /// Length prefix size.
    public static let prefixSize = 2
    /// A frame can announce at most 65535 bytes, so the buffer never needs more.
    public static let maximumBuffered = prefixSize + 65535

    private var buffer: [UInt8] = []
    private var start = 0

    /// An empty framer.
    public init() {}

    /// Bytes received and not yet handed out as messages.
    public var bufferedCount: Int { buffer.count - start }

    /// Whether a whole message is waiting.
    public var hasMessage: Bool {
        guard let length = announcedLength else { return false }
        return bufferedCount - Self.prefixSize >= length
    }

    private var announcedLength: Int? {
        guard bufferedCount >= Self.prefixSize else { return nil }
        return Int(buffer[start]) << 8 | Int(buffer[start + 1])
    }

    /// Adds received bytes (copied: the stack's are borrowed). The framer
    /// does not refuse any: a caller that cannot process messages now
    /// pauses reading once `isFull`, which bounds the buffer to
    /// `maximumBuffered` plus one delivery.
    public mutating func append(_ bytes: Span<UInt8>) {
        compactIfUseful()
        buffer.reserveCapacity(buffer.count + bytes.count)
        for i in 0..<bytes.count { buffer.append(bytes[i]) }
    }

    /// Whether the caller should stop reading until messages are consumed.
    public var isFull: Bool { bufferedCount >= Self.maximumBuffered }

    /// Hands the next whole message, borrowed, to `body`, and consumes it;
    /// nil when no whole message is buffered. A message shorter than a DNS
    /// header is an error (the connection should be closed).
    public mutating func next<R>(_ body: (Span<UInt8>) -> R) throws(DNSError) -> R? {
        guard let length = announcedLength, bufferedCount - Self.prefixSize >= length else { return nil }
        guard length >= Header.size else {
            throw .frameTooShort(length: length)
        }
        let from = start + Self.prefixSize
        start = from + length
        let value = body(buffer.span.extracting(from..<(from + length)))
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        return value
    }

    /// Drops consumed bytes once they are most of the buffer.
    private mutating func compactIfUseful() {
        guard start > 0, start * 2 >= buffer.count else { return }
        buffer.removeSubrange(0..<start)
        start = 0
    }
}
