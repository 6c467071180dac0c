/// The handshake transcript (RFC 8446 §4.4.1): the handshake messages so
/// far, header included, in order. It keeps the bytes and hashes on demand,
/// because the hash function is known only once the ServerHello picks the
/// suite, and a HelloRetryRequest rewrites the first ClientHello.
public struct TranscriptHash {
    /// The hash of the negotiated suite.
    public let algorithm: HashAlgorithm
    /// Every message appended so far, concatenated.
    public private(set) var bytes: [UInt8] = []

    /// An empty transcript for `algorithm`.
    public init(_ algorithm: HashAlgorithm) {
        self.algorithm = algorithm
    }

    /// Appends a handshake message exactly as sent or received, with its
    /// 4-byte header (§4.4.1: "including the type and length fields").
    public mutating func append(_ handshakeMessage: [UInt8]) {
        bytes.append(contentsOf: handshakeMessage)
    }

    /// Transcript-Hash(messages so far).
    public func current(_ crypto: any CryptoProvider) -> [UInt8] {
        crypto.hash(algorithm, bytes)
    }

    /// After a HelloRetryRequest, ClientHello1 is replaced by the synthetic
    /// message_hash(254) message: type, 3-byte length Hash.length, Hash(CH1)
    /// (§4.4.1). Call it when the transcript holds ClientHello1 only, before
    /// appending the HelloRetryRequest.
    public mutating func replaceWithMessageHash(_ crypto: any CryptoProvider) {
        let digest = crypto.hash(algorithm, bytes)
        var synthetic: [UInt8] = [HandshakeType.messageHash.rawValue, 0, 0, UInt8(truncatingIfNeeded: digest.count)]
        synthetic.append(contentsOf: digest)
        bytes = synthetic
    }
}
