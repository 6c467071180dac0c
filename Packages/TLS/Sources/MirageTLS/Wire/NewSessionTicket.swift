/// NewSessionTicket (RFC 8446 §4.6.1): a server sends it after the
/// handshake; a client with a session cache keeps the ticket to resume.
public struct NewSessionTicket: HandshakeMessage {
    /// new_session_ticket(4)
    public static let handshakeType = HandshakeType.newSessionTicket
    /// Longest ticket_lifetime a server may send: 7 days (§4.6.1).
    public static let maximumLifetime: UInt32 = 604_800

    /// ticket_lifetime in seconds.
    public var lifetime: UInt32
    /// ticket_age_add.
    public var ageAdd: UInt32
    /// ticket_nonce, `<0..255>`.
    public var nonce: [UInt8]
    /// The ticket, `<1..2^16-1>`.
    public var ticket: [UInt8]
    /// The extensions (early_data).
    public var extensions: [Extension]

    /// A NewSessionTicket from its fields.
    public init(lifetime: UInt32, ageAdd: UInt32, nonce: [UInt8], ticket: [UInt8], extensions: [Extension]) {
        self.lifetime = lifetime
        self.ageAdd = ageAdd
        self.nonce = nonce
        self.ticket = ticket
        self.extensions = extensions
    }

    /// Parses the body. An empty ticket violates its `<1..2^16-1>` bound:
    /// decode error. The lifetime limit is the engine's to enforce.
    public init(parsing body: [UInt8]) throws(TLSError) {
        var r = ByteReader(body)
        lifetime = try r.readUInt32()
        ageAdd = try r.readUInt32()
        nonce = try r.readVector8()
        ticket = try r.readVector16()
        guard !ticket.isEmpty else { throw .decodeError("NewSessionTicket with an empty ticket") }
        extensions = try parseExtensions(&r)
        try r.expectEnd("NewSessionTicket")
    }

    /// The encoded body.
    public func encodeBody() -> [UInt8] {
        var out: [UInt8] = []
        out.appendUInt32(lifetime)
        out.appendUInt32(ageAdd)
        out.appendVector8 { $0.append(contentsOf: nonce) }
        out.appendVector16 { $0.append(contentsOf: ticket) }
        extensions.encode(into: &out)
        return out
    }
}
