/// Cuts the handshake byte stream into messages (RFC 8446 §5.1): a message
/// may span several records and a record may hold several messages. Feed it
/// the plaintext of each handshake record with `append`, then call `next()`
/// until it returns nil.
public struct HandshakeReassembler {
    /// Default limit on one message, header included: 64 KiB of body, more
    /// than any certificate chain seen in practice. RFC 8446 allows 2^24-1 but
    /// every implementation caps it (§4: lengths are uint24).
    public static let defaultMaximumMessageSize = 65_536 + handshakeHeaderSize

    /// The largest message accepted, 4-byte header included.
    public let maximumMessageSize: Int
    private var buffer = ByteQueue()

    /// A reassembler that rejects messages larger than `maximumMessageSize`
    /// bytes (header included) with `.decodeError` as soon as their header arrives.
    public init(maximumMessageSize: Int = HandshakeReassembler.defaultMaximumMessageSize) {
        self.maximumMessageSize = maximumMessageSize
    }

    /// Adds the bytes of one handshake record (or any part of the stream).
    /// Call `next()` until nil after each append: a too-large message is
    /// detected there, which bounds what is buffered to one message plus one
    /// appended fragment.
    public mutating func append(_ fragment: [UInt8]) {
        buffer.append(fragment)
    }

    /// The next complete message: its type, its body and its raw bytes (the
    /// 4-byte header and body, for the transcript); nil when more bytes are
    /// needed. Throws `.decodeError` when a header announces a message larger
    /// than `maximumMessageSize`; nothing is consumed then.
    public mutating func next() throws(TLSError) -> (type: HandshakeType, body: [UInt8], raw: [UInt8])? {
        guard buffer.count >= handshakeHeaderSize else { return nil }
        let type = HandshakeType(rawValue: buffer[0])
        let length = Int(buffer[1]) << 16 | Int(buffer[2]) << 8 | Int(buffer[3])
        let total = handshakeHeaderSize + length
        guard total <= maximumMessageSize else {
            throw .decodeError("handshake message of \(total) bytes is larger than the limit of \(maximumMessageSize)")
        }
        guard buffer.count >= total else { return nil }
        let raw = buffer.take(total)
        return (type, Array(raw[handshakeHeaderSize...]), raw)
    }

    /// True when no partial message is buffered. A key change must fall on a
    /// record boundary (§5.1): the engine checks this after ServerHello,
    /// Finished and KeyUpdate and fails with unexpected_message otherwise.
    public var isEmpty: Bool { buffer.count == 0 }

    /// Bytes buffered and not yet returned.
    public var bufferedCount: Int { buffer.count }
}
