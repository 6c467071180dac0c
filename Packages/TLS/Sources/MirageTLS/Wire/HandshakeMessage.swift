// The handshake framing (RFC 8446 §4): msg_type (1 byte), length (3 bytes),
// then the message body.

/// A TLS 1.3 handshake message type with its codec: `init(parsing:)` reads a
/// body (the bytes after the 4-byte header), `encodeBody()` writes one, and
/// `encode()` adds the header.
public protocol HandshakeMessage: Hashable, Sendable {
    /// The msg_type of this message.
    static var handshakeType: HandshakeType { get }
    /// Parses a body; throws `.decodeError` for bytes that do not fit the
    /// structure and `.illegalParameter` for a forbidden value.
    init(parsing body: [UInt8]) throws(TLSError)
    /// The encoded body, without the handshake header.
    func encodeBody() -> [UInt8]
}

/// Size of the handshake header: msg_type + uint24 length (§4).
public let handshakeHeaderSize = 4

extension HandshakeMessage {
    /// The whole message: 4-byte handshake header, then the body — the bytes
    /// that go on the wire and into the transcript hash.
    public func encode() -> [UInt8] {
        encodeHandshake(type: Self.handshakeType, body: encodeBody())
    }
}

/// Frames `body` as a handshake message of `type` (4-byte header + body).
public func encodeHandshake(type: HandshakeType, body: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(handshakeHeaderSize + body.count)
    out.appendUInt8(type.rawValue)
    out.appendUInt24(body.count)
    out.append(contentsOf: body)
    return out
}
