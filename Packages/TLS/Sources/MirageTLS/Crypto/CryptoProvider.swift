// The primitives the engine needs, behind small class-bound protocols so a
// provider other than swift-crypto (MirageTLSCrypto) can be slotted in on
// the unikernel. Plain byte arrays only: no Data, no provider types.

/// An AEAD key ready for use (RFC 5116): seals and opens records.
public protocol AEADKey: AnyObject {
    /// Encrypts `plaintext`; returns ciphertext followed by the tag.
    func seal(nonce: [UInt8], additionalData: [UInt8], plaintext: [UInt8]) -> [UInt8]
    /// Decrypts and authenticates; nil when the tag does not verify.
    func open(nonce: [UInt8], additionalData: [UInt8], ciphertextAndTag: [UInt8]) -> [UInt8]?
    /// `seal`, with ciphertext and tag appended to `output` (the record
    /// being built) rather than returned: a provider can spare the copies on
    /// the bulk path. The default appends what `seal` returns.
    func seal(nonce: [UInt8], additionalData: [UInt8], plaintext: [UInt8], appendingTo output: inout [UInt8])
}

extension AEADKey {
    /// The default: `seal`, then one append.
    public func seal(nonce: [UInt8], additionalData: [UInt8], plaintext: [UInt8], appendingTo output: inout [UInt8]) {
        output.append(contentsOf: seal(nonce: nonce, additionalData: additionalData, plaintext: plaintext))
    }
}

/// One side's ephemeral key for a (EC)DHE group (RFC 8446 §4.2.8).
public protocol KeyExchange: AnyObject {
    /// The group of the key.
    var group: NamedGroup { get }
    /// The key_exchange bytes as sent (X25519: 32 bytes; P-256: 65, uncompressed).
    var publicKey: [UInt8] { get }
    /// The shared secret with the peer's key_exchange bytes; `.illegalParameter`
    /// for a point that is malformed or not on the curve (§4.2.8.2).
    func sharedSecret(peerPublicKey: [UInt8]) throws(TLSError) -> [UInt8]
}

/// A private key that signs CertificateVerify (§4.4.3).
public protocol SigningKey: AnyObject {
    /// The schemes this key can sign with, in preference order.
    var signatureSchemes: [SignatureScheme] { get }
    /// Signs `message` (the whole content to be signed, §4.4.3) with `scheme`.
    func sign(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> [UInt8]
}

/// The cryptographic primitives of a TLS implementation.
public protocol CryptoProvider: AnyObject {
    /// Hash(data).
    func hash(_ algorithm: HashAlgorithm, _ data: [UInt8]) -> [UInt8]
    /// HMAC(key, data) (RFC 2104).
    func hmac(_ algorithm: HashAlgorithm, key: [UInt8], data: [UInt8]) -> [UInt8]
    /// HKDF-Extract(salt, IKM) (RFC 5869 §2.2).
    func hkdfExtract(_ algorithm: HashAlgorithm, salt: [UInt8], inputKeyMaterial: [UInt8]) -> [UInt8]
    /// HKDF-Expand(PRK, info, L) (RFC 5869 §2.3).
    func hkdfExpand(_ algorithm: HashAlgorithm, pseudorandomKey: [UInt8], info: [UInt8], length: Int) -> [UInt8]
    /// An AEAD key of `algorithm.keyLength` bytes.
    func makeAEADKey(_ algorithm: AEADAlgorithm, key: [UInt8]) -> any AEADKey
    /// A fresh ephemeral key for `group`; `.handshakeFailure` for a group the provider lacks.
    func makeKeyExchange(_ group: NamedGroup) throws(TLSError) -> any KeyExchange
    /// Verifies `signature` over `message` with the public key of the DER
    /// certificate `certificate`: `.illegalParameter` when the scheme does not
    /// fit the key, `.decryptError` when the signature is wrong,
    /// `.badCertificate(.malformed)` when the certificate cannot be read.
    func verify(signature: [UInt8], scheme: SignatureScheme, message: [UInt8], certificate: [UInt8]) throws(TLSError)
    /// The groups `makeKeyExchange` supports.
    var supportedGroups: [NamedGroup] { get }
    /// The schemes `verify` supports.
    var supportedSignatureSchemes: [SignatureScheme] { get }
}
