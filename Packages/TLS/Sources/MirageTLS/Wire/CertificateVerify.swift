/// CertificateVerify (RFC 8446 §4.4.3): a signature over the transcript hash.
public struct CertificateVerify: HandshakeMessage {
    /// certificate_verify(15)
    public static let handshakeType = HandshakeType.certificateVerify
    /// The scheme the signature was made with.
    public var scheme: SignatureScheme
    /// The signature bytes, `opaque signature<0..2^16-1>`.
    public var signature: [UInt8]

    /// A CertificateVerify from its fields.
    public init(scheme: SignatureScheme, signature: [UInt8]) {
        self.scheme = scheme
        self.signature = signature
    }

    /// Parses the body: scheme, then the signature vector, nothing after.
    public init(parsing body: [UInt8]) throws(TLSError) {
        var r = ByteReader(body)
        scheme = SignatureScheme(rawValue: try r.readUInt16())
        signature = try r.readVector16()
        try r.expectEnd("CertificateVerify")
    }

    /// The encoded body.
    public func encodeBody() -> [UInt8] {
        var out: [UInt8] = []
        out.appendUInt16(scheme.rawValue)
        out.appendVector16 { $0.append(contentsOf: signature) }
        return out
    }
}
