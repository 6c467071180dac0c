// pre_shared_key (RFC 8446 §4.2.11): the client's OfferedPsks and the
// server's selected identity. The binders are the last bytes of a
// ClientHello, which is what lets the binder cover "the ClientHello up to
// the binders" (§4.2.11.2).

/// One PskIdentity (§4.2.11): `opaque identity<1..2^16-1>; uint32 obfuscated_ticket_age`.
public struct PSKIdentity: Hashable, Sendable {
    /// The label: for a resumption PSK, the ticket.
    public var identity: [UInt8]
    /// The ticket's age in milliseconds plus ticket_age_add, mod 2^32 (§4.2.11.1).
    public var obfuscatedTicketAge: UInt32

    /// An identity from its fields.
    public init(identity: [UInt8], obfuscatedTicketAge: UInt32) {
        self.identity = identity
        self.obfuscatedTicketAge = obfuscatedTicketAge
    }
}

/// pre_shared_key in a ClientHello (§4.2.11): OfferedPsks =
/// `PskIdentity identities<7..2^16-1>; PskBinderEntry binders<33..2^16-1>`,
/// `opaque PskBinderEntry<32..255>`.
public struct OfferedPSKs: ExtensionBody {
    /// Shortest binder: HMAC-SHA-256 (§4.2.11: `PskBinderEntry<32..255>`).
    public static let minimumBinderLength = 32
    /// Identities a server reads from one offer; a longer list is a decode
    /// error (no client has a reason to offer more, and each costs a ticket
    /// decryption). Our own bound; RFC 8446 sets none below 2^16.
    public static let maximumIdentities = 16

    /// The identities, in the client's order.
    public var identities: [PSKIdentity]
    /// One binder per identity, in the same order.
    public var binders: [[UInt8]]

    /// An offer from its fields.
    public init(identities: [PSKIdentity], binders: [[UInt8]]) {
        self.identities = identities
        self.binders = binders
    }

    /// Parses the data. Empty lists, an empty identity, a binder outside
    /// 32…255 bytes or more than `maximumIdentities` are decode errors; as
    /// many binders as identities are required (illegal_parameter otherwise).
    public init(parsing data: [UInt8]) throws(TLSError) {
        var r = ByteReader(data)
        var identityList = ByteReader(try r.readVector16())
        var binderList = ByteReader(try r.readVector16())
        try r.expectEnd("pre_shared_key")
        identities = []
        binders = []
        // Each identity takes at least 7 bytes, each binder 33: both loops end.
        while !identityList.isAtEnd {
            let identity = try identityList.readVector16()
            guard !identity.isEmpty else { throw .decodeError("empty PSK identity") }
            identities.append(PSKIdentity(identity: identity, obfuscatedTicketAge: try identityList.readUInt32()))
            guard identities.count <= Self.maximumIdentities else {
                throw .decodeError("more than \(Self.maximumIdentities) PSK identities")
            }
        }
        while !binderList.isAtEnd {
            let binder = try binderList.readVector8()
            guard binder.count >= Self.minimumBinderLength else { throw .decodeError("PSK binder of \(binder.count) bytes") }
            binders.append(binder)
            guard binders.count <= Self.maximumIdentities else {
                throw .decodeError("more than \(Self.maximumIdentities) PSK binders")
            }
        }
        guard !identities.isEmpty, !binders.isEmpty else { throw .decodeError("pre_shared_key without identities or binders") }
        guard identities.count == binders.count else {
            throw .illegalParameter("\(identities.count) PSK identities but \(binders.count) binders")
        }
    }

    /// The encoded data.
    public func encode() -> [UInt8] {
        var out: [UInt8] = []
        out.appendVector16 { out in
            for identity in identities {
                out.appendVector16 { $0.append(contentsOf: identity.identity) }
                out.appendUInt32(identity.obfuscatedTicketAge)
            }
        }
        out.append(contentsOf: Self.encodeBinders(binders))
        return out
    }

    /// The binders field as it ends the ClientHello, length included.
    public static func encodeBinders(_ binders: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        out.appendVector16 { out in
            for binder in binders { out.appendVector8 { $0.append(contentsOf: binder) } }
        }
        return out
    }

    /// Bytes the binders field takes at the end of the ClientHello: what is
    /// cut off to get the partial ClientHello the binders sign (§4.2.11.2).
    public var bindersLength: Int {
        var total = 2
        for binder in binders { total += 1 + binder.count }
        return total
    }
}

/// pre_shared_key in a ServerHello (§4.2.11): `uint16 selected_identity`.
public struct PreSharedKeyServerHello: ExtensionBody {
    /// The index of the identity the server accepted, 0-based.
    public var selectedIdentity: UInt16

    /// A selected identity.
    public init(selectedIdentity: UInt16) { self.selectedIdentity = selectedIdentity }

    /// Parses the data: exactly two bytes.
    public init(parsing data: [UInt8]) throws(TLSError) {
        var r = ByteReader(data)
        selectedIdentity = try r.readUInt16()
        try r.expectEnd("pre_shared_key")
    }

    /// The encoded data.
    public func encode() -> [UInt8] {
        var out: [UInt8] = []
        out.appendUInt16(selectedIdentity)
        return out
    }
}

extension ClientHello {
    /// The encoded ClientHello (handshake header included) cut before its
    /// binders: the part the binders sign (§4.2.11.2). nil when the message
    /// does not end in a pre_shared_key extension whose binders take
    /// `bindersLength` bytes.
    static func truncatedForBinders(_ raw: [UInt8], bindersLength: Int) -> [UInt8]? {
        guard bindersLength > 0, bindersLength < raw.count else { return nil }
        return Array(raw[0..<(raw.count - bindersLength)])
    }
}
