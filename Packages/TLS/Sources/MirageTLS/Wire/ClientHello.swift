/// ClientHello (RFC 8446 §4.1.2).
public struct ClientHello: HandshakeMessage {
    /// client_hello(1)
    public static let handshakeType = HandshakeType.clientHello
    /// Length of `random` (§4.1.2: 32 bytes).
    public static let randomLength = 32
    /// Longest legacy_session_id (§4.1.2: `opaque legacy_session_id<0..32>`).
    public static let maximumSessionIDLength = 32

    /// legacy_version: 0x0303 in TLS 1.3; the real versions are in supported_versions.
    public var legacyVersion: ProtocolVersion
    /// 32 random bytes.
    public var random: [UInt8]
    /// legacy_session_id, 0…32 bytes (non-empty in middlebox-compatibility mode, §D.4).
    public var legacySessionID: [UInt8]
    /// The offered suites, in the client's preference order (never empty).
    public var cipherSuites: [CipherSuite]
    /// legacy_compression_methods: exactly [0] from a TLS 1.3 client (checked by the engine).
    public var legacyCompressionMethods: [UInt8]
    /// The extensions, in wire order.
    public var extensions: [Extension]

    /// A ClientHello from its fields.
    public init(legacyVersion: ProtocolVersion = .tls12, random: [UInt8], legacySessionID: [UInt8],
                cipherSuites: [CipherSuite], legacyCompressionMethods: [UInt8] = [0], extensions: [Extension]) {
        self.legacyVersion = legacyVersion
        self.random = random
        self.legacySessionID = legacySessionID
        self.cipherSuites = cipherSuites
        self.legacyCompressionMethods = legacyCompressionMethods
        self.extensions = extensions
    }

    /// Parses a ClientHello body. Vector bounds of §4.1.2 are decode errors:
    /// session id over 32 bytes, an empty or odd-length cipher_suites, no
    /// compression method. A hello without an extension block (pre-TLS 1.3
    /// clients) parses with no extensions, so the engine can answer it with
    /// protocol_version. pre_shared_key anywhere but last is illegal_parameter
    /// (§4.2.11).
    public init(parsing body: [UInt8]) throws(TLSError) {
        var r = ByteReader(body)
        legacyVersion = ProtocolVersion(rawValue: try r.readUInt16())
        random = try r.readBytes(Self.randomLength)
        legacySessionID = try r.readVector8()
        guard legacySessionID.count <= Self.maximumSessionIDLength else {
            throw .decodeError("ClientHello legacy_session_id of \(legacySessionID.count) bytes (at most 32)")
        }
        let suites = try r.readVector16()
        guard !suites.isEmpty, suites.count % 2 == 0 else {
            throw .decodeError("ClientHello cipher_suites of \(suites.count) bytes (even, at least 2)")
        }
        cipherSuites = readUInt16List(suites).map { CipherSuite(rawValue: $0) }
        legacyCompressionMethods = try r.readVector8()
        guard !legacyCompressionMethods.isEmpty else {
            throw .decodeError("ClientHello without compression methods")
        }
        extensions = r.isAtEnd ? [] : try parseExtensions(&r)
        try r.expectEnd("ClientHello")
        if let index = extensions.firstIndex(where: { $0.type == .preSharedKey }), index != extensions.count - 1 {
            throw .illegalParameter("pre_shared_key is not the last extension of the ClientHello")
        }
    }

    /// The encoded body; always writes the extension block.
    public func encodeBody() -> [UInt8] {
        var out: [UInt8] = []
        out.appendUInt16(legacyVersion.rawValue)
        out.append(contentsOf: random)
        out.appendVector8 { $0.append(contentsOf: legacySessionID) }
        out.appendVector16 { out in for s in cipherSuites { out.appendUInt16(s.rawValue) } }
        out.appendVector8 { $0.append(contentsOf: legacyCompressionMethods) }
        extensions.encode(into: &out)
        return out
    }
}

/// Big-endian u16 values from bytes of even length (checked by the caller).
func readUInt16List(_ bytes: [UInt8]) -> [UInt16] {
    var values: [UInt16] = []
    values.reserveCapacity(bytes.count / 2)
    var i = 0
    while i + 1 < bytes.count {
        values.append(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]))
        i += 2
    }
    return values
}
