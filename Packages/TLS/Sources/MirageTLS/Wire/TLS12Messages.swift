// The TLS 1.2 handshake messages that TLS 1.3 does not share (RFC 5246 §7.4,
// ECDHE per RFC 8422 §5, tickets per RFC 5077 §3.3). ClientHello, ServerHello,
// CertificateVerify and Finished have the same structure in both versions and
// are reused as they are; the engine checks Finished's 12-byte length.

extension ServerHello {
    /// The last 8 bytes of a TLS 1.3 server's `random` when it negotiates
    /// TLS 1.2 (RFC 8446 §4.1.3: "DOWNGRD" then 01). A TLS 1.3 client that
    /// sees them in a TLS 1.2 ServerHello MUST abort with illegal_parameter.
    public static let downgradeTLS12Sentinel: [UInt8] = [0x44, 0x4F, 0x57, 0x4E, 0x47, 0x52, 0x44, 0x01]
    /// The same for TLS 1.1 and below (RFC 8446 §4.1.3: "DOWNGRD" then 00).
    public static let downgradeTLS11Sentinel: [UInt8] = [0x44, 0x4F, 0x57, 0x4E, 0x47, 0x52, 0x44, 0x00]
}

/// HelloRequest (RFC 5246 §7.4.1.1): a server's request to renegotiate, an
/// empty body. We never renegotiate; the engine answers no_renegotiation.
public struct HelloRequest: HandshakeMessage {
    /// hello_request(0)
    public static let handshakeType = HandshakeType.helloRequest

    /// A HelloRequest.
    public init() {}

    /// Parses the body: it must be empty (`struct { }`), else decode_error.
    public init(parsing body: [UInt8]) throws(TLSError) {
        guard body.isEmpty else { throw .decodeError("HelloRequest with a body of \(body.count) bytes") }
    }

    /// The encoded body: nothing.
    public func encodeBody() -> [UInt8] { [] }
}

/// ServerHelloDone (RFC 5246 §7.4.5): the end of the server's first flight,
/// an empty body.
public struct ServerHelloDone: HandshakeMessage {
    /// server_hello_done(14)
    public static let handshakeType = HandshakeType.serverHelloDone

    /// A ServerHelloDone.
    public init() {}

    /// Parses the body: it must be empty (`struct { }`), else decode_error.
    public init(parsing body: [UInt8]) throws(TLSError) {
        guard body.isEmpty else { throw .decodeError("ServerHelloDone with a body of \(body.count) bytes") }
    }

    /// The encoded body: nothing.
    public func encodeBody() -> [UInt8] { [] }
}

/// ServerKeyExchange for the ECDHE suites (RFC 8422 §5.4): ServerECDHParams
/// (curve_type named_curve, the group, the ephemeral point) and a
/// `digitally-signed` signature over client_random + server_random + params
/// (RFC 5246 §4.7, §7.4.3 with the TLS 1.2 SignatureAndHashAlgorithm, read
/// as a TLS 1.3 SignatureScheme code).
public struct ServerKeyExchangeECDHE: HandshakeMessage {
    /// server_key_exchange(12)
    public static let handshakeType = HandshakeType.serverKeyExchange
    /// ECCurveType named_curve(3), the only curve type allowed (RFC 8422 §5.4:
    /// explicit_prime and explicit_char2 are deprecated and MUST NOT be used).
    public static let namedCurveType: UInt8 = 3
    /// Longest ECPoint: `opaque point<1..2^8-1>` (RFC 8422 §5.4).
    public static let maximumPointLength = 255

    /// The (EC)DHE group of the server's ephemeral key.
    public var group: NamedGroup
    /// The server's ephemeral public key (X25519: 32 bytes; P-256: 65, uncompressed).
    public var publicKey: [UInt8]
    /// The scheme the signature was made with.
    public var scheme: SignatureScheme
    /// The signature, `opaque signature<0..2^16-1>`.
    public var signature: [UInt8]

    /// A ServerKeyExchange from its fields. `publicKey` must be 1…255 bytes.
    public init(group: NamedGroup, publicKey: [UInt8], scheme: SignatureScheme, signature: [UInt8]) {
        self.group = group
        self.publicKey = publicKey
        self.scheme = scheme
        self.signature = signature
    }

    /// The encoded ServerECDHParams, the part the signature covers:
    /// curve_type 3, the group (u16), the point `<1..255>`.
    public var params: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(4 + publicKey.count)
        out.appendUInt8(Self.namedCurveType)
        out.appendUInt16(group.rawValue)
        out.appendVector8 { $0.append(contentsOf: publicKey) }
        return out
    }

    /// What the server signs (RFC 8422 §5.4, RFC 5246 §7.4.3):
    /// ClientHello.random + ServerHello.random + ServerECDHParams.
    public static func signedContent(clientRandom: [UInt8], serverRandom: [UInt8], params: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(clientRandom.count + serverRandom.count + params.count)
        out.append(contentsOf: clientRandom)
        out.append(contentsOf: serverRandom)
        out.append(contentsOf: params)
        return out
    }

    /// Parses the body. A curve_type other than named_curve throws
    /// `.illegalParameter` (RFC 8422 §5.4 forbids the explicit curve types);
    /// an empty point (`<1..2^8-1>`) or a truncated or overlong body throws
    /// `.decodeError`. Whether the group and scheme were offered is the
    /// engine's to check.
    public init(parsing body: [UInt8]) throws(TLSError) {
        var r = ByteReader(body)
        let curveType = try r.readUInt8()
        guard curveType == Self.namedCurveType else {
            throw .illegalParameter("ServerKeyExchange curve_type \(curveType) (only named_curve(3), RFC 8422 §5.4)")
        }
        group = NamedGroup(rawValue: try r.readUInt16())
        publicKey = try r.readVector8()
        guard !publicKey.isEmpty else { throw .decodeError("ServerKeyExchange with an empty point") }
        scheme = SignatureScheme(rawValue: try r.readUInt16())
        signature = try r.readVector16()
        try r.expectEnd("ServerKeyExchange")
    }

    /// The encoded body: params, scheme, signature.
    public func encodeBody() -> [UInt8] {
        var out = params
        out.appendUInt16(scheme.rawValue)
        out.appendVector16 { $0.append(contentsOf: signature) }
        return out
    }
}

/// ClientKeyExchange for the ECDHE suites (RFC 8422 §5.7): ClientECDiffieHellmanPublic,
/// the client's ephemeral point `<1..2^8-1>` (always explicit: no fixed-ECDH client certificates).
public struct ClientKeyExchangeECDHE: HandshakeMessage {
    /// client_key_exchange(16)
    public static let handshakeType = HandshakeType.clientKeyExchange

    /// The client's ephemeral public key, in the group of the ServerKeyExchange.
    public var publicKey: [UInt8]

    /// A ClientKeyExchange from the client's point (1…255 bytes).
    public init(publicKey: [UInt8]) { self.publicKey = publicKey }

    /// Parses the body: the point vector and nothing after; an empty point is
    /// a decode error.
    public init(parsing body: [UInt8]) throws(TLSError) {
        var r = ByteReader(body)
        publicKey = try r.readVector8()
        try r.expectEnd("ClientKeyExchange")
        guard !publicKey.isEmpty else { throw .decodeError("ClientKeyExchange with an empty point") }
    }

    /// The encoded body.
    public func encodeBody() -> [UInt8] {
        var out: [UInt8] = []
        out.appendVector8 { $0.append(contentsOf: publicKey) }
        return out
    }
}

/// CertificateRequest in TLS 1.2 (RFC 5246 §7.4.4): certificate types,
/// signature schemes and acceptable CAs, no extensions.
public struct CertificateRequest12: HandshakeMessage {
    /// certificate_request(13), as in TLS 1.3 (the structure differs).
    public static let handshakeType = HandshakeType.certificateRequest
    /// ClientCertificateType rsa_sign(1) (RFC 5246 §7.4.4).
    public static let rsaSign: UInt8 = 1
    /// ClientCertificateType ecdsa_sign(64) (RFC 8422 §5.5).
    public static let ecdsaSign: UInt8 = 64

    /// certificate_types `<1..2^8-1>`.
    public var certificateTypes: [UInt8]
    /// supported_signature_algorithms `<2..2^16-2>`.
    public var schemes: [SignatureScheme]
    /// certificate_authorities: DER DistinguishedNames, each `<1..2^16-1>`, the list `<0..2^16-1>`.
    public var authorities: [[UInt8]]

    /// A CertificateRequest from its fields (types non-empty, schemes non-empty).
    public init(certificateTypes: [UInt8], schemes: [SignatureScheme], authorities: [[UInt8]] = []) {
        self.certificateTypes = certificateTypes
        self.schemes = schemes
        self.authorities = authorities
    }

    /// Parses the body. An empty type list, an empty or odd-length scheme
    /// list, an empty DistinguishedName, a lying length or trailing bytes
    /// throw `.decodeError`.
    public init(parsing body: [UInt8]) throws(TLSError) {
        var r = ByteReader(body)
        certificateTypes = try r.readVector8()
        guard !certificateTypes.isEmpty else { throw .decodeError("CertificateRequest with no certificate_types") }
        let schemeBytes = try r.readVector16()
        guard !schemeBytes.isEmpty, schemeBytes.count % 2 == 0 else {
            throw .decodeError("CertificateRequest supported_signature_algorithms of \(schemeBytes.count) bytes (even, at least 2)")
        }
        schemes = readUInt16List(schemeBytes).map { SignatureScheme(rawValue: $0) }
        var list = ByteReader(try r.readVector16())
        try r.expectEnd("CertificateRequest")
        var authorities: [[UInt8]] = []
        // Each pass consumes at least 3 bytes, so the loop ends.
        while !list.isAtEnd {
            let name = try list.readVector16()
            guard !name.isEmpty else { throw .decodeError("CertificateRequest with an empty DistinguishedName") }
            authorities.append(name)
        }
        self.authorities = authorities
    }

    /// The encoded body.
    public func encodeBody() -> [UInt8] {
        var out: [UInt8] = []
        out.appendVector8 { $0.append(contentsOf: certificateTypes) }
        out.appendVector16 { out in for s in schemes { out.appendUInt16(s.rawValue) } }
        out.appendVector16 { out in
            for name in authorities { out.appendVector16 { $0.append(contentsOf: name) } }
        }
        return out
    }
}

/// Certificate in TLS 1.2 (RFC 5246 §7.4.2): the chain, leaf first, with no
/// request context and no per-certificate extensions.
public struct CertificateMessage12: HandshakeMessage {
    /// certificate(11), as in TLS 1.3 (the structure differs).
    public static let handshakeType = HandshakeType.certificate

    /// The DER certificates, leaf first; empty only from a client without one (§7.4.6).
    public var chain: [[UInt8]]

    /// A Certificate from its chain.
    public init(chain: [[UInt8]]) { self.chain = chain }

    /// Parses the body: `ASN.1Cert certificate_list<0..2^24-1>` with each
    /// `opaque ASN.1Cert<1..2^24-1>`. An empty certificate, a lying length or
    /// trailing bytes throw `.decodeError`.
    public init(parsing body: [UInt8]) throws(TLSError) {
        var r = ByteReader(body)
        var list = ByteReader(try r.readVector24())
        try r.expectEnd("Certificate")
        var chain: [[UInt8]] = []
        // Each pass consumes at least 4 bytes, so the loop ends.
        while !list.isAtEnd {
            let certificate = try list.readVector24()
            guard !certificate.isEmpty else { throw .decodeError("Certificate with an empty ASN.1Cert") }
            chain.append(certificate)
        }
        self.chain = chain
    }

    /// The encoded body.
    public func encodeBody() -> [UInt8] {
        var out: [UInt8] = []
        out.appendVector24 { out in
            for certificate in chain { out.appendVector24 { $0.append(contentsOf: certificate) } }
        }
        return out
    }
}

/// NewSessionTicket in TLS 1.2 (RFC 5077 §3.3): a lifetime hint and an
/// opaque ticket.
public struct NewSessionTicket12: HandshakeMessage {
    /// new_session_ticket(4), as in TLS 1.3 (the structure differs).
    public static let handshakeType = HandshakeType.newSessionTicket

    /// ticket_lifetime_hint in seconds; 0 means unspecified (RFC 5077 §3.3).
    public var lifetimeHint: UInt32
    /// The ticket, `opaque ticket<0..2^16-1>`; empty when the server decided
    /// not to issue one after all (RFC 5077 §3.3).
    public var ticket: [UInt8]

    /// A NewSessionTicket from its fields (ticket ≤ 65 535 bytes).
    public init(lifetimeHint: UInt32, ticket: [UInt8]) {
        self.lifetimeHint = lifetimeHint
        self.ticket = ticket
    }

    /// Parses the body: the hint, the ticket vector, nothing after.
    public init(parsing body: [UInt8]) throws(TLSError) {
        var r = ByteReader(body)
        lifetimeHint = try r.readUInt32()
        ticket = try r.readVector16()
        try r.expectEnd("NewSessionTicket")
    }

    /// The encoded body.
    public func encodeBody() -> [UInt8] {
        var out: [UInt8] = []
        out.appendUInt32(lifetimeHint)
        out.appendVector16 { $0.append(contentsOf: ticket) }
        return out
    }
}
