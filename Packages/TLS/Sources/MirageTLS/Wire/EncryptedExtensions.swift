/// EncryptedExtensions (RFC 8446 §4.3.1): the server's extensions that are
/// not needed to set up keys.
public struct EncryptedExtensions: HandshakeMessage {
    /// encrypted_extensions(8)
    public static let handshakeType = HandshakeType.encryptedExtensions
    /// The extensions, in wire order.
    public var extensions: [Extension]

    /// EncryptedExtensions from its extensions.
    public init(extensions: [Extension]) { self.extensions = extensions }

    /// Parses the body: one extension list, nothing after it.
    public init(parsing body: [UInt8]) throws(TLSError) {
        var r = ByteReader(body)
        extensions = try parseExtensions(&r)
        try r.expectEnd("EncryptedExtensions")
    }

    /// The encoded body.
    public func encodeBody() -> [UInt8] {
        var out: [UInt8] = []
        extensions.encode(into: &out)
        return out
    }
}
