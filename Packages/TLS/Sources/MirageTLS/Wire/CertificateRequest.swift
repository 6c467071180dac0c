/// CertificateRequest (RFC 8446 §4.3.2).
public struct CertificateRequest: HandshakeMessage {
    /// certificate_request(13)
    public static let handshakeType = HandshakeType.certificateRequest
    /// certificate_request_context: empty during the handshake; echoed in the client's Certificate.
    public var context: [UInt8]
    /// The extensions; signature_algorithms MUST be among them (checked by the engine).
    public var extensions: [Extension]

    /// A CertificateRequest from its fields.
    public init(context: [UInt8], extensions: [Extension]) {
        self.context = context
        self.extensions = extensions
    }

    /// Parses the body: `opaque certificate_request_context<0..2^8-1>`, then
    /// `Extension extensions<2..2^16-1>` — an empty list is a decode error.
    public init(parsing body: [UInt8]) throws(TLSError) {
        var r = ByteReader(body)
        context = try r.readVector8()
        extensions = try parseExtensions(&r)
        guard !extensions.isEmpty else { throw .decodeError("CertificateRequest without extensions") }
        try r.expectEnd("CertificateRequest")
    }

    /// The encoded body.
    public func encodeBody() -> [UInt8] {
        var out: [UInt8] = []
        out.appendVector8 { $0.append(contentsOf: context) }
        extensions.encode(into: &out)
        return out
    }
}
