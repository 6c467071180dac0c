/// KeyUpdate (RFC 8446 §4.6.3): one byte, update_not_requested(0) or
/// update_requested(1).
public struct KeyUpdate: HandshakeMessage {
    /// key_update(24)
    public static let handshakeType = HandshakeType.keyUpdate
    /// True when the peer must answer with its own KeyUpdate.
    public var requestUpdate: Bool

    /// A KeyUpdate.
    public init(requestUpdate: Bool) { self.requestUpdate = requestUpdate }

    /// Parses the one-byte body. §4.6.3: any value but 0 or 1 MUST be answered
    /// with illegal_parameter; a body of another length is a decode error.
    public init(parsing body: [UInt8]) throws(TLSError) {
        var r = ByteReader(body)
        let value = try r.readUInt8()
        try r.expectEnd("KeyUpdate")
        switch value {
        case 0: requestUpdate = false
        case 1: requestUpdate = true
        default: throw .illegalParameter("KeyUpdate request_update value \(value)")
        }
    }

    /// The encoded body.
    public func encodeBody() -> [UInt8] { [requestUpdate ? 1 : 0] }
}
