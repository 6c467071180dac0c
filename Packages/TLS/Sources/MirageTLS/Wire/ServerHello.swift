/// ServerHello, and HelloRetryRequest, which shares its structure and is
/// told apart by its `random` value (RFC 8446 §4.1.3, §4.1.4).
public struct ServerHello: HandshakeMessage {
    /// server_hello(2), also for HelloRetryRequest.
    public static let handshakeType = HandshakeType.serverHello
    /// The `random` of a HelloRetryRequest: SHA-256 of "HelloRetryRequest" (§4.1.3).
    public static let helloRetryRequestRandom: [UInt8] = [
        0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
        0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
    ]

    /// legacy_version: 0x0303 in TLS 1.3.
    public var legacyVersion: ProtocolVersion
    /// 32 random bytes, or `helloRetryRequestRandom`.
    public var random: [UInt8]
    /// legacy_session_id_echo: the client's legacy_session_id (§4.1.3, checked by the engine).
    public var legacySessionIDEcho: [UInt8]
    /// The selected suite.
    public var cipherSuite: CipherSuite
    /// legacy_compression_method: 0 in TLS 1.3 (checked by the engine).
    public var legacyCompressionMethod: UInt8
    /// The extensions, in wire order.
    public var extensions: [Extension]

    /// A ServerHello from its fields.
    public init(legacyVersion: ProtocolVersion = .tls12, random: [UInt8], legacySessionIDEcho: [UInt8],
                cipherSuite: CipherSuite, legacyCompressionMethod: UInt8 = 0, extensions: [Extension]) {
        self.legacyVersion = legacyVersion
        self.random = random
        self.legacySessionIDEcho = legacySessionIDEcho
        self.cipherSuite = cipherSuite
        self.legacyCompressionMethod = legacyCompressionMethod
        self.extensions = extensions
    }

    /// True for a HelloRetryRequest (§4.1.3: random equals the special value).
    public var isHelloRetryRequest: Bool { random == Self.helloRetryRequestRandom }

    /// Parses a ServerHello (or HelloRetryRequest) body. A session id echo over
    /// 32 bytes is a decode error; a hello without an extension block (a
    /// TLS 1.2 server) parses with no extensions so the engine can answer it
    /// with protocol_version.
    public init(parsing body: [UInt8]) throws(TLSError) {
        var r = ByteReader(body)
        legacyVersion = ProtocolVersion(rawValue: try r.readUInt16())
        random = try r.readBytes(ClientHello.randomLength)
        legacySessionIDEcho = try r.readVector8()
        guard legacySessionIDEcho.count <= ClientHello.maximumSessionIDLength else {
            throw .decodeError("ServerHello legacy_session_id_echo of \(legacySessionIDEcho.count) bytes (at most 32)")
        }
        cipherSuite = CipherSuite(rawValue: try r.readUInt16())
        legacyCompressionMethod = try r.readUInt8()
        extensions = r.isAtEnd ? [] : try parseExtensions(&r)
        try r.expectEnd("ServerHello")
    }

    /// The encoded body; always writes the extension block.
    public func encodeBody() -> [UInt8] {
        var out: [UInt8] = []
        out.appendUInt16(legacyVersion.rawValue)
        out.append(contentsOf: random)
        out.appendVector8 { $0.append(contentsOf: legacySessionIDEcho) }
        out.appendUInt16(cipherSuite.rawValue)
        out.appendUInt8(legacyCompressionMethod)
        extensions.encode(into: &out)
        return out
    }
}
