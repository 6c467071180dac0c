/// Finished (RFC 8446 §4.4.4): `opaque verify_data[Hash.length]`, the whole body.
/// The length is checked against the suite's hash by the engine (decode_error
/// there, since only it knows the hash).
public struct Finished: HandshakeMessage {
    /// finished(20)
    public static let handshakeType = HandshakeType.finished
    /// The HMAC over the transcript.
    public var verifyData: [UInt8]

    /// A Finished from its verify_data.
    public init(verifyData: [UInt8]) { self.verifyData = verifyData }

    /// Takes the whole body as verify_data.
    public init(parsing body: [UInt8]) throws(TLSError) {
        verifyData = body
    }

    /// The encoded body: verify_data.
    public func encodeBody() -> [UInt8] { verifyData }
}
