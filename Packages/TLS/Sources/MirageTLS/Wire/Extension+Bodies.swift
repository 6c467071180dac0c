// Typed extension bodies. Each parses `Extension.data` with
// `init(parsing:)` (the data must be used up exactly) and `encode()` writes
// the data back. Vector bounds from the RFCs are decode errors.

/// A typed extension body: parses `Extension.data` and encodes it back.
public protocol ExtensionBody: Hashable, Sendable {
    /// Parses the extension data; it must be used up exactly.
    init(parsing data: [UInt8]) throws(TLSError)
    /// The encoded extension data.
    func encode() -> [UInt8]
}

extension Array where Element == Extension {
    /// The body of the extension of `type` parsed as `Body`, or nil when the
    /// extension is absent; throws what the body's parser throws.
    public func parse<Body: ExtensionBody>(_ type: ExtensionType, as body: Body.Type) throws(TLSError) -> Body? {
        guard let e = first(type) else { return nil }
        return try Body(parsing: e.data)
    }
}

/// server_name (RFC 6066 §3) in the client's form: a ServerNameList with one
/// host_name. The server acknowledges with empty data, which parses as
/// `hostName == nil` and encodes back to empty data.
public struct ServerNameList: ExtensionBody {
    /// name_type host_name(0), the only type defined.
    public static let hostNameType: UInt8 = 0
    /// The DNS name, ASCII, no trailing dot; nil for the server's empty acknowledgement.
    public var hostName: String?

    /// A server_name body.
    public init(hostName: String?) { self.hostName = hostName }

    /// Parses the data. Only host_name entries are understood; RFC 6066 §3:
    /// "The ServerNameList MUST NOT contain more than one name of the same
    /// name_type", so exactly one entry is accepted. An empty list, an empty
    /// name, another name_type or a byte outside printable ASCII (HostName is
    /// ASCII) throws `.decodeError`.
    public init(parsing data: [UInt8]) throws(TLSError) {
        if data.isEmpty {
            hostName = nil
            return
        }
        var r = ByteReader(data)
        var list = ByteReader(try r.readVector16())
        try r.expectEnd("server_name")
        let type = try list.readUInt8()
        guard type == Self.hostNameType else { throw .decodeError("server_name of name_type \(type)") }
        let name = try list.readVector16()
        guard !name.isEmpty else { throw .decodeError("server_name with an empty host_name") }
        guard list.isAtEnd else { throw .decodeError("server_name with more than one name") }
        guard name.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw .decodeError("server_name host_name is not printable ASCII")
        }
        hostName = String(decoding: name, as: UTF8.self)
    }

    /// The encoded data (empty for the server's acknowledgement).
    public func encode() -> [UInt8] {
        guard let hostName else { return [] }
        var out: [UInt8] = []
        out.appendVector16 { out in
            out.appendUInt8(Self.hostNameType)
            out.appendVector16 { $0.append(contentsOf: hostName.utf8) }
        }
        return out
    }
}

/// supported_groups (RFC 8446 §4.2.7): `NamedGroup named_group_list<2..2^16-1>`.
public struct SupportedGroupsList: ExtensionBody {
    /// The groups, in preference order.
    public var groups: [NamedGroup]

    /// A supported_groups body.
    public init(groups: [NamedGroup]) { self.groups = groups }

    /// Parses the data; an empty or odd-length list is a decode error.
    public init(parsing data: [UInt8]) throws(TLSError) {
        groups = try parseUInt16Vector(data, "supported_groups").map { NamedGroup(rawValue: $0) }
    }

    /// The encoded data.
    public func encode() -> [UInt8] { encodeUInt16Vector(groups.map { $0.rawValue }) }
}

/// signature_algorithms and signature_algorithms_cert (RFC 8446 §4.2.3):
/// `SignatureScheme supported_signature_algorithms<2..2^16-2>`.
public struct SignatureSchemeList: ExtensionBody {
    /// The schemes, in preference order.
    public var schemes: [SignatureScheme]

    /// A signature_algorithms body.
    public init(schemes: [SignatureScheme]) { self.schemes = schemes }

    /// Parses the data; an empty or odd-length list is a decode error.
    public init(parsing data: [UInt8]) throws(TLSError) {
        schemes = try parseUInt16Vector(data, "signature_algorithms").map { SignatureScheme(rawValue: $0) }
    }

    /// The encoded data.
    public func encode() -> [UInt8] { encodeUInt16Vector(schemes.map { $0.rawValue }) }
}

/// application_layer_protocol_negotiation (RFC 7301 §3.1):
/// `ProtocolName protocol_name_list<2..2^16-1>`, `opaque ProtocolName<1..2^8-1>`.
public struct ProtocolNameList: ExtensionBody {
    /// The protocol names ("h2", "http/1.1"), in preference order. The
    /// server's answer holds exactly one (checked by the engine).
    public var protocols: [[UInt8]]

    /// An ALPN body.
    public init(protocols: [[UInt8]]) { self.protocols = protocols }

    /// Parses the data: an empty list or an empty name is a decode error.
    public init(parsing data: [UInt8]) throws(TLSError) {
        var r = ByteReader(data)
        var list = ByteReader(try r.readVector16())
        try r.expectEnd("application_layer_protocol_negotiation")
        guard !list.isAtEnd else { throw .decodeError("ALPN with an empty protocol_name_list") }
        var protocols: [[UInt8]] = []
        // Each pass consumes at least 2 bytes, so the loop ends.
        while !list.isAtEnd {
            let name = try list.readVector8()
            guard !name.isEmpty else { throw .decodeError("ALPN with an empty protocol name") }
            protocols.append(name)
        }
        self.protocols = protocols
    }

    /// The encoded data.
    public func encode() -> [UInt8] {
        var out: [UInt8] = []
        out.appendVector16 { out in
            for p in protocols { out.appendVector8 { $0.append(contentsOf: p) } }
        }
        return out
    }
}

/// supported_versions in a ClientHello (RFC 8446 §4.2.1):
/// `ProtocolVersion versions<2..254>`.
public struct SupportedVersionsClient: ExtensionBody {
    /// The offered versions, in preference order.
    public var versions: [ProtocolVersion]

    /// A client supported_versions body.
    public init(versions: [ProtocolVersion]) { self.versions = versions }

    /// Parses the data; an empty or odd-length list is a decode error.
    public init(parsing data: [UInt8]) throws(TLSError) {
        var r = ByteReader(data)
        let list = try r.readVector8()
        try r.expectEnd("supported_versions")
        guard !list.isEmpty, list.count % 2 == 0 else {
            throw .decodeError("supported_versions list of \(list.count) bytes (even, at least 2)")
        }
        versions = readUInt16List(list).map { ProtocolVersion(rawValue: $0) }
    }

    /// The encoded data.
    public func encode() -> [UInt8] {
        var out: [UInt8] = []
        out.appendVector8 { out in for v in versions { out.appendUInt16(v.rawValue) } }
        return out
    }
}

/// supported_versions in a ServerHello or HelloRetryRequest (RFC 8446 §4.2.1):
/// the selected version.
public struct SupportedVersionsServer: ExtensionBody {
    /// The version the server selected (0x0304).
    public var selected: ProtocolVersion

    /// A server supported_versions body.
    public init(selected: ProtocolVersion) { self.selected = selected }

    /// Parses the data: exactly two bytes.
    public init(parsing data: [UInt8]) throws(TLSError) {
        var r = ByteReader(data)
        selected = ProtocolVersion(rawValue: try r.readUInt16())
        try r.expectEnd("supported_versions")
    }

    /// The encoded data.
    public func encode() -> [UInt8] {
        var out: [UInt8] = []
        out.appendUInt16(selected.rawValue)
        return out
    }
}

/// One key share (RFC 8446 §4.2.8): a group and `opaque key_exchange<1..2^16-1>`.
public struct KeyShareEntry: Hashable, Sendable {
    /// The group.
    public var group: NamedGroup
    /// The public value as on the wire (X25519: 32 bytes; P-256: 65, uncompressed).
    public var keyExchange: [UInt8]

    /// A key share from its group and public value.
    public init(group: NamedGroup, keyExchange: [UInt8]) {
        self.group = group
        self.keyExchange = keyExchange
    }

    /// Reads one entry; an empty key_exchange is a decode error.
    init(reading r: inout ByteReader) throws(TLSError) {
        group = NamedGroup(rawValue: try r.readUInt16())
        keyExchange = try r.readVector16()
        guard !keyExchange.isEmpty else { throw .decodeError("key_share entry with an empty key_exchange") }
    }

    /// Appends the entry.
    func encode(into out: inout [UInt8]) {
        out.appendUInt16(group.rawValue)
        out.appendVector16 { $0.append(contentsOf: keyExchange) }
    }
}

/// key_share in a ClientHello (RFC 8446 §4.2.8): `KeyShareEntry client_shares<0..2^16-1>`.
/// An empty list is allowed (the client asks for a HelloRetryRequest).
public struct KeyShareClientHello: ExtensionBody {
    /// The shares, in preference order.
    public var shares: [KeyShareEntry]

    /// A client key_share body.
    public init(shares: [KeyShareEntry]) { self.shares = shares }

    /// Parses the data. §4.2.8: "Clients MUST NOT offer multiple KeyShareEntry
    /// values for the same group" — servers MAY check and abort with
    /// illegal_parameter, which this does.
    public init(parsing data: [UInt8]) throws(TLSError) {
        var r = ByteReader(data)
        var list = ByteReader(try r.readVector16())
        try r.expectEnd("key_share")
        var shares: [KeyShareEntry] = []
        var groups: Set<UInt16> = []
        // Each pass consumes at least 5 bytes, so the loop ends.
        while !list.isAtEnd {
            let entry = try KeyShareEntry(reading: &list)
            guard groups.insert(entry.group.rawValue).inserted else {
                throw .illegalParameter("key_share offers \(entry.group) twice")
            }
            shares.append(entry)
        }
        self.shares = shares
    }

    /// The encoded data.
    public func encode() -> [UInt8] {
        var out: [UInt8] = []
        out.appendVector16 { out in for s in shares { s.encode(into: &out) } }
        return out
    }
}

/// key_share in a ServerHello (RFC 8446 §4.2.8): the one share the server chose.
public struct KeyShareServerHello: ExtensionBody {
    /// The server's share.
    public var share: KeyShareEntry

    /// A server key_share body.
    public init(share: KeyShareEntry) { self.share = share }

    /// Parses the data: one entry, nothing after.
    public init(parsing data: [UInt8]) throws(TLSError) {
        var r = ByteReader(data)
        share = try KeyShareEntry(reading: &r)
        try r.expectEnd("key_share")
    }

    /// The encoded data.
    public func encode() -> [UInt8] {
        var out: [UInt8] = []
        share.encode(into: &out)
        return out
    }
}

/// key_share in a HelloRetryRequest (RFC 8446 §4.2.8): the group the client must use.
public struct KeyShareHelloRetryRequest: ExtensionBody {
    /// The group the server asks for.
    public var selectedGroup: NamedGroup

    /// An HRR key_share body.
    public init(selectedGroup: NamedGroup) { self.selectedGroup = selectedGroup }

    /// Parses the data: exactly two bytes.
    public init(parsing data: [UInt8]) throws(TLSError) {
        var r = ByteReader(data)
        selectedGroup = NamedGroup(rawValue: try r.readUInt16())
        try r.expectEnd("key_share")
    }

    /// The encoded data.
    public func encode() -> [UInt8] {
        var out: [UInt8] = []
        out.appendUInt16(selectedGroup.rawValue)
        return out
    }
}

/// cookie (RFC 8446 §4.2.2): `opaque cookie<1..2^16-1>`, sent in a
/// HelloRetryRequest and echoed in the second ClientHello.
public struct Cookie: ExtensionBody {
    /// The cookie bytes.
    public var cookie: [UInt8]

    /// A cookie body.
    public init(cookie: [UInt8]) { self.cookie = cookie }

    /// Parses the data; an empty cookie is a decode error.
    public init(parsing data: [UInt8]) throws(TLSError) {
        var r = ByteReader(data)
        cookie = try r.readVector16()
        try r.expectEnd("cookie")
        guard !cookie.isEmpty else { throw .decodeError("empty cookie") }
    }

    /// The encoded data.
    public func encode() -> [UInt8] {
        var out: [UInt8] = []
        out.appendVector16 { $0.append(contentsOf: cookie) }
        return out
    }
}

/// psk_key_exchange_modes (RFC 8446 §4.2.9): `PskKeyExchangeMode ke_modes<1..255>`.
public struct PSKKeyExchangeModes: ExtensionBody {
    /// psk_ke(0)
    public static let pskKE: UInt8 = 0
    /// psk_dhe_ke(1)
    public static let pskDHEKE: UInt8 = 1
    /// The modes.
    public var modes: [UInt8]

    /// A psk_key_exchange_modes body.
    public init(modes: [UInt8]) { self.modes = modes }

    /// Parses the data; an empty list is a decode error.
    public init(parsing data: [UInt8]) throws(TLSError) {
        var r = ByteReader(data)
        modes = try r.readVector8()
        try r.expectEnd("psk_key_exchange_modes")
        guard !modes.isEmpty else { throw .decodeError("empty psk_key_exchange_modes") }
    }

    /// The encoded data.
    public func encode() -> [UInt8] {
        var out: [UInt8] = []
        out.appendVector8 { $0.append(contentsOf: modes) }
        return out
    }
}

/// A non-empty, even-length u16-length-prefixed list of u16 values.
private func parseUInt16Vector(_ data: [UInt8], _ what: String) throws(TLSError) -> [UInt16] {
    var r = ByteReader(data)
    let list = try r.readVector16()
    try r.expectEnd(what)
    guard !list.isEmpty, list.count % 2 == 0 else {
        throw .decodeError("\(what) list of \(list.count) bytes (even, at least 2)")
    }
    return readUInt16List(list)
}

/// A u16-length-prefixed list of u16 values.
private func encodeUInt16Vector(_ values: [UInt16]) -> [UInt8] {
    var out: [UInt8] = []
    out.appendVector16 { out in for v in values { out.appendUInt16(v) } }
    return out
}

// MARK: - TLS 1.2 extension bodies

/// renegotiation_info (RFC 5746 §3.2): `opaque renegotiated_connection<0..255>`.
/// Empty on an initial handshake, which is the only kind this library does
/// (§3.4, §3.6: a client sends it empty or the SCSV; a server echoes it empty).
public struct RenegotiationInfo: ExtensionBody {
    /// The previous handshake's verify_data (empty on an initial handshake).
    public var renegotiatedConnection: [UInt8]

    /// A renegotiation_info body (empty by default: an initial handshake).
    public init(renegotiatedConnection: [UInt8] = []) { self.renegotiatedConnection = renegotiatedConnection }

    /// Parses the data: one 1-byte-length vector filling it exactly.
    public init(parsing data: [UInt8]) throws(TLSError) {
        var r = ByteReader(data)
        renegotiatedConnection = try r.readVector8()
        try r.expectEnd("renegotiation_info")
    }

    /// The encoded data.
    public func encode() -> [UInt8] {
        var out: [UInt8] = []
        out.appendVector8 { $0.append(contentsOf: renegotiatedConnection) }
        return out
    }
}

/// ec_point_formats (RFC 8422 §5.1.2): `ECPointFormat ec_point_format_list<1..2^8-1>`.
/// Only uncompressed points are used (RFC 8422 §5.1.2: the other formats are
/// deprecated), but a peer's list is carried as it is.
public struct ECPointFormatList: ExtensionBody {
    /// ECPointFormat uncompressed(0), which every implementation MUST support (RFC 8422 §5.1.2).
    public static let uncompressed: UInt8 = 0
    /// The formats, in preference order.
    public var formats: [UInt8]

    /// An ec_point_formats body (`[uncompressed]` by default).
    public init(formats: [UInt8] = [ECPointFormatList.uncompressed]) { self.formats = formats }

    /// Parses the data; an empty list is a decode error.
    public init(parsing data: [UInt8]) throws(TLSError) {
        var r = ByteReader(data)
        formats = try r.readVector8()
        try r.expectEnd("ec_point_formats")
        guard !formats.isEmpty else { throw .decodeError("empty ec_point_formats") }
    }

    /// The encoded data.
    public func encode() -> [UInt8] {
        var out: [UInt8] = []
        out.appendVector8 { $0.append(contentsOf: formats) }
        return out
    }
}
