// MirageTLS's primitives on Linux, over swift-crypto (BoringSSL underneath).
// Everything crosses the protocol as plain byte arrays; swift-crypto types
// stay inside this module.

import Crypto
import Foundation
import MirageTLS
import _CryptoExtras

/// The Linux `CryptoProvider`: SHA-256/384, HMAC, HKDF, AES-GCM and
/// ChaCha20-Poly1305, X25519 and P-256 key exchange, and CertificateVerify
/// signatures (Ed25519, ECDSA P-256, RSA-PSS) checked with the key of a DER
/// certificate.
public final class SwiftCryptoProvider: CryptoProvider {
    /// The smallest RSA modulus accepted in a peer's certificate, in bits.
    public let minimumRSAKeySize: Int

    /// Default for `minimumRSAKeySize`: 2048 bits, what current CA/Browser
    /// Forum rules and NIST SP 800-131A require of RSA keys.
    public static let defaultMinimumRSAKeySize = 2048
    /// The smallest modulus swift-crypto can work with at all; a provider
    /// built for RFC 8448's 1024-bit test certificate uses this.
    public static let smallestSupportedRSAKeySize = 1024

    /// A provider. `minimumRSAKeySize` is clamped to at least
    /// `smallestSupportedRSAKeySize`; lower it below the default only to
    /// check old test vectors.
    public init(minimumRSAKeySize: Int = SwiftCryptoProvider.defaultMinimumRSAKeySize) {
        self.minimumRSAKeySize = max(minimumRSAKeySize, SwiftCryptoProvider.smallestSupportedRSAKeySize)
    }

    /// Hash(data).
    public func hash(_ algorithm: HashAlgorithm, _ data: [UInt8]) -> [UInt8] {
        switch algorithm {
        case .sha256: return Array(SHA256.hash(data: data))
        case .sha384: return Array(SHA384.hash(data: data))
        }
    }

    /// HMAC(key, data) (RFC 2104).
    public func hmac(_ algorithm: HashAlgorithm, key: [UInt8], data: [UInt8]) -> [UInt8] {
        let symmetricKey = SymmetricKey(data: key)
        switch algorithm {
        case .sha256: return Array(HMAC<SHA256>.authenticationCode(for: data, using: symmetricKey))
        case .sha384: return Array(HMAC<SHA384>.authenticationCode(for: data, using: symmetricKey))
        }
    }

    /// HKDF-Extract(salt, IKM) = HMAC(salt, IKM) (RFC 5869 §2.2). An empty
    /// salt is the same as HashLen zeros, as HMAC pads its key with zeros.
    public func hkdfExtract(_ algorithm: HashAlgorithm, salt: [UInt8], inputKeyMaterial: [UInt8]) -> [UInt8] {
        hmac(algorithm, key: salt, data: inputKeyMaterial)
    }

    /// HKDF-Expand(PRK, info, L) (RFC 5869 §2.3). `length` must be at most
    /// 255 × HashLen (the engine asks for a hash length or a key/IV length).
    public func hkdfExpand(_ algorithm: HashAlgorithm, pseudorandomKey: [UInt8], info: [UInt8], length: Int) -> [UInt8] {
        precondition(length >= 0 && length <= 255 * algorithm.outputLength, "HKDF-Expand length \(length) out of range (RFC 5869 §2.3)")
        let output: SymmetricKey
        switch algorithm {
        case .sha256: output = HKDF<SHA256>.expand(pseudoRandomKey: pseudorandomKey, info: info, outputByteCount: length)
        case .sha384: output = HKDF<SHA384>.expand(pseudoRandomKey: pseudorandomKey, info: info, outputByteCount: length)
        }
        return output.withUnsafeBytes { Array($0) }
    }

    /// An AEAD key; `key` must be `algorithm.keyLength` bytes (the key
    /// schedule derives exactly that many, §7.3).
    public func makeAEADKey(_ algorithm: AEADAlgorithm, key: [UInt8]) -> any AEADKey {
        precondition(key.count == algorithm.keyLength, "\(algorithm) needs a \(algorithm.keyLength)-byte key, got \(key.count)")
        switch algorithm {
        case .aes128GCM, .aes256GCM: return AESGCMKey(key: key)
        case .chacha20Poly1305: return ChaChaPolyKey(key: key)
        }
    }

    /// A fresh ephemeral key for X25519 or secp256r1; `.handshakeFailure` for any other group.
    public func makeKeyExchange(_ group: NamedGroup) throws(TLSError) -> any KeyExchange {
        switch group {
        case .x25519: return X25519KeyExchange(Curve25519.KeyAgreement.PrivateKey())
        case .secp256r1: return P256KeyExchange(P256.KeyAgreement.PrivateKey())
        default: throw .handshakeFailure("key exchange group \(group) is not supported")
        }
    }

    /// A key exchange with a given private key instead of a fresh one: the
    /// 32-byte X25519 scalar (RFC 7748 §5) or the 32-byte P-256 scalar. For
    /// reproducing fixed test vectors such as RFC 8448's traces; a real
    /// handshake must use `makeKeyExchange(_:)`. `.illegalParameter` when the
    /// bytes are not a valid private key for `group`.
    public func makeKeyExchange(_ group: NamedGroup, privateKey: [UInt8]) throws(TLSError) -> any KeyExchange {
        switch group {
        case .x25519:
            guard privateKey.count == 32, let key = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: privateKey) else {
                throw .illegalParameter("X25519 private key must be 32 bytes, got \(privateKey.count)")
            }
            return X25519KeyExchange(key)
        case .secp256r1:
            guard privateKey.count == 32, let key = try? P256.KeyAgreement.PrivateKey(rawRepresentation: privateKey) else {
                throw .illegalParameter("not a valid P-256 private scalar")
            }
            return P256KeyExchange(key)
        default:
            throw .handshakeFailure("key exchange group \(group) is not supported")
        }
    }

    /// Verifies a CertificateVerify signature (RFC 8446 §4.4.3) with the key
    /// in the certificate's SubjectPublicKeyInfo.
    public func verify(signature: [UInt8], scheme: SignatureScheme, message: [UInt8], certificate: [UInt8]) throws(TLSError) {
        let key = try CertificatePublicKey(certificate: certificate, minimumRSAKeySize: minimumRSAKeySize)
        try key.verify(signature: signature, scheme: scheme, message: message)
    }

    /// X25519 first (fast, constant-time by design), then P-256.
    public var supportedGroups: [NamedGroup] { [.x25519, .secp256r1] }

    /// The schemes `verify` accepts: TLS 1.3's, then the rest of TLS 1.2's
    /// (PKCS#1 v1.5, P-384, PSS-SHA512) for ServerKeyExchange and TLS 1.2
    /// CertificateVerify.
    public var supportedSignatureSchemes: [SignatureScheme] { Self.verifiableSchemes }

    /// SignatureScheme.tls13 ∪ SignatureScheme.tls12, TLS 1.3's first.
    static let verifiableSchemes: [SignatureScheme] =
        SignatureScheme.tls13 + SignatureScheme.tls12.filter { !SignatureScheme.tls13.contains($0) }
}

/// AES-128-GCM or AES-256-GCM (the key length decides).
final class AESGCMKey: AEADKey {
    private let key: SymmetricKey
    init(key: [UInt8]) { self.key = SymmetricKey(data: key) }

    func seal(nonce: [UInt8], additionalData: [UInt8], plaintext: [UInt8]) -> [UInt8] {
        do {
            let box = try AES.GCM.seal(plaintext, using: key, nonce: AES.GCM.Nonce(data: nonce), authenticating: additionalData)
            return Array(box.ciphertext) + Array(box.tag)
        } catch {
            // Only a nonce of the wrong size gets here: the record layer always passes 12 bytes (§5.3).
            preconditionFailure("AES-GCM seal failed: \(error)")
        }
    }

    func seal(nonce: [UInt8], additionalData: [UInt8], plaintext: [UInt8], appendingTo output: inout [UInt8]) {
        do {
            let box = try AES.GCM.seal(plaintext, using: key, nonce: AES.GCM.Nonce(data: nonce), authenticating: additionalData)
            output.append(contentsOf: box.ciphertext)
            output.append(contentsOf: box.tag)
        } catch {
            preconditionFailure("AES-GCM seal failed: \(error)")
        }
    }

    func open(nonce: [UInt8], additionalData: [UInt8], ciphertextAndTag: [UInt8]) -> [UInt8]? {
        guard ciphertextAndTag.count >= aeadTagLength,
              let box = try? AES.GCM.SealedBox(
                  nonce: AES.GCM.Nonce(data: nonce),
                  ciphertext: ciphertextAndTag.dropLast(aeadTagLength),
                  tag: ciphertextAndTag.suffix(aeadTagLength))
        else { return nil }
        guard let plaintext = try? AES.GCM.open(box, using: key, authenticating: additionalData) else { return nil }
        return Array(plaintext)
    }
}

/// ChaCha20-Poly1305 (RFC 8439).
final class ChaChaPolyKey: AEADKey {
    private let key: SymmetricKey
    init(key: [UInt8]) { self.key = SymmetricKey(data: key) }

    func seal(nonce: [UInt8], additionalData: [UInt8], plaintext: [UInt8]) -> [UInt8] {
        do {
            let box = try ChaChaPoly.seal(plaintext, using: key, nonce: ChaChaPoly.Nonce(data: nonce), authenticating: additionalData)
            return Array(box.ciphertext) + Array(box.tag)
        } catch {
            preconditionFailure("ChaCha20-Poly1305 seal failed: \(error)")
        }
    }

    func seal(nonce: [UInt8], additionalData: [UInt8], plaintext: [UInt8], appendingTo output: inout [UInt8]) {
        do {
            let box = try ChaChaPoly.seal(plaintext, using: key, nonce: ChaChaPoly.Nonce(data: nonce), authenticating: additionalData)
            output.append(contentsOf: box.ciphertext)
            output.append(contentsOf: box.tag)
        } catch {
            preconditionFailure("ChaCha20-Poly1305 seal failed: \(error)")
        }
    }

    func open(nonce: [UInt8], additionalData: [UInt8], ciphertextAndTag: [UInt8]) -> [UInt8]? {
        guard ciphertextAndTag.count >= aeadTagLength,
              let box = try? ChaChaPoly.SealedBox(
                  nonce: ChaChaPoly.Nonce(data: nonce),
                  ciphertext: ciphertextAndTag.dropLast(aeadTagLength),
                  tag: ciphertextAndTag.suffix(aeadTagLength))
        else { return nil }
        guard let plaintext = try? ChaChaPoly.open(box, using: key, authenticating: additionalData) else { return nil }
        return Array(plaintext)
    }
}

/// Both AEADs of TLS 1.3 have 16-byte tags.
private let aeadTagLength = 16
