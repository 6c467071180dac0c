// Private keys that sign CertificateVerify (RFC 8446 §4.4.3), loaded from the
// usual PEM/DER containers: PKCS#8 (RFC 5208/5958) for Ed25519, P-256 and RSA,
// SEC1 (RFC 5915) "EC PRIVATE KEY" and PKCS#1 (RFC 8017) "RSA PRIVATE KEY".

import Crypto
import Foundation
import MirageTLS
import SwiftASN1
import _CryptoExtras

/// An Ed25519, ECDSA P-256 or RSA private key, for a server's (or client's)
/// CertificateVerify. RSA keys list RSA-PSS (rsa_pss_rsae_*) first and then
/// PKCS#1 v1.5 (rsa_pkcs1_*), which only TLS 1.2 may use: TLS 1.3 forbids it
/// in CertificateVerify (RFC 8446 §4.2.3), so the TLS 1.3 engine keeps to
/// `SignatureScheme.tls13`.
public final class PrivateSigningKey: SigningKey {
    private enum Backing {
        case ed25519(Curve25519.Signing.PrivateKey)
        case p256(P256.Signing.PrivateKey)
        case rsa(_RSA.Signing.PrivateKey)
    }

    private let backing: Backing

    /// PEM labels of unencrypted private keys we read (RFC 7468 §10–11, and OpenSSL's SEC1/PKCS#1 labels).
    static let privateKeyLabels: Set<String> = ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"]

    /// Reads the first private key of a PEM text ("PRIVATE KEY", "EC PRIVATE
    /// KEY" or "RSA PRIVATE KEY"; other blocks such as "EC PARAMETERS" are
    /// skipped). Encrypted keys are refused. `.configuration` on failure.
    public convenience init(pem: String) throws(TLSError) {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: pem)
        } catch {
            throw .configuration("private key PEM cannot be read: \(error)")
        }
        if documents.contains(where: { $0.discriminator == "ENCRYPTED PRIVATE KEY" }) {
            throw .configuration("encrypted private keys are not supported; decrypt it first")
        }
        guard let document = documents.first(where: { Self.privateKeyLabels.contains($0.discriminator) }) else {
            throw .configuration("no PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY block in the PEM text")
        }
        try self.init(der: document.derBytes)
    }

    /// Reads a DER private key: PKCS#8 PrivateKeyInfo (Ed25519, P-256 or
    /// RSA), SEC1 ECPrivateKey (P-256) or PKCS#1 RSAPrivateKey, told apart by
    /// their structure. `.configuration` on failure.
    public init(der: [UInt8]) throws(TLSError) {
        let root: ASN1Node
        do {
            root = try DER.parse(der)
        } catch {
            throw .configuration("private key is not DER: \(error)")
        }
        guard let fields = sequenceChildren(root), fields.count >= 2 else {
            throw .configuration("private key is not an ASN.1 SEQUENCE")
        }
        switch fields[1].identifier {
        case .sequence:
            // PrivateKeyInfo ::= SEQUENCE { version, privateKeyAlgorithm AlgorithmIdentifier, privateKey OCTET STRING, … }
            backing = try Self.pkcs8(der, algorithm: fields[1])
        case .octetString:
            // ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING, [0] parameters OPTIONAL, [1] publicKey OPTIONAL }
            let parametersTag = ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific)
            if let parameters = fields.first(where: { $0.identifier == parametersTag }) {
                guard case .constructed(let inner) = parameters.content, let curveNode = Array(inner).first,
                      let curve = try? ASN1ObjectIdentifier(derEncoded: curveNode)
                else { throw .configuration("SEC1 EC key with unreadable curve parameters") }
                guard curve == KeyAlgorithmOID.prime256v1 else {
                    throw .configuration("EC key on curve \(curve): only P-256 is supported")
                }
            }
            do {
                backing = .p256(try P256.Signing.PrivateKey(derRepresentation: der))
            } catch {
                throw .configuration("bad SEC1 P-256 private key: \(error)")
            }
        case .integer:
            // RSAPrivateKey ::= SEQUENCE { version, modulus, publicExponent, privateExponent, … }
            backing = try Self.rsa(der)
        default:
            throw .configuration("unrecognised private key structure (not PKCS#8, SEC1 or PKCS#1)")
        }
    }

    private static func pkcs8(_ der: [UInt8], algorithm: ASN1Node) throws(TLSError) -> Backing {
        guard let parts = sequenceChildren(algorithm), let oidNode = parts.first,
              let oid = try? ASN1ObjectIdentifier(derEncoded: oidNode)
        else { throw .configuration("PKCS#8 key with an unreadable algorithm") }
        switch oid {
        case KeyAlgorithmOID.ed25519:
            do {
                return .ed25519(try Curve25519.Signing.PrivateKey(derRepresentation: der))
            } catch {
                throw .configuration("bad PKCS#8 Ed25519 private key: \(error)")
            }
        case KeyAlgorithmOID.ecPublicKey:
            guard parts.count == 2, let curve = try? ASN1ObjectIdentifier(derEncoded: parts[1]) else {
                throw .configuration("PKCS#8 EC key without a named curve")
            }
            guard curve == KeyAlgorithmOID.prime256v1 else {
                throw .configuration("EC key on curve \(curve): only P-256 is supported")
            }
            do {
                return .p256(try P256.Signing.PrivateKey(derRepresentation: der))
            } catch {
                throw .configuration("bad PKCS#8 P-256 private key: \(error)")
            }
        case KeyAlgorithmOID.rsaEncryption:
            return try rsa(der)
        default:
            throw .configuration("private key algorithm \(oid) is not supported (Ed25519, P-256 or RSA)")
        }
    }

    private static func rsa(_ der: [UInt8]) throws(TLSError) -> Backing {
        // swift-crypto refuses moduli under 2048 bits here, which is the policy we want for our own keys.
        do {
            return .rsa(try _RSA.Signing.PrivateKey(derRepresentation: der))
        } catch {
            throw .configuration("bad or too small RSA private key (2048 bits at least): \(error)")
        }
    }

    /// Wraps an Ed25519 key.
    public init(_ key: Curve25519.Signing.PrivateKey) { backing = .ed25519(key) }
    /// Wraps a P-256 key.
    public init(_ key: P256.Signing.PrivateKey) { backing = .p256(key) }
    /// Wraps an RSA key (signs with RSA-PSS, and PKCS#1 v1.5 for TLS 1.2).
    public init(_ key: _RSA.Signing.PrivateKey) { backing = .rsa(key) }

    /// ed25519, ecdsa_secp256r1_sha256, or rsa_pss_rsae_sha256, _sha384,
    /// _sha512 then (TLS 1.2 only) rsa_pkcs1_sha256, _sha384, _sha512.
    public var signatureSchemes: [SignatureScheme] {
        switch backing {
        case .ed25519: return [.ed25519]
        case .p256: return [.ecdsaSecp256r1SHA256]
        case .rsa: return Self.rsaSchemes
        }
    }

    /// What an RSA key signs with: PSS first (TLS 1.3 and 1.2), then PKCS#1
    /// v1.5 (TLS 1.2 only, RFC 5246 §7.4.1.4.1).
    static let rsaSchemes: [SignatureScheme] = [
        .rsaPSSRSAESHA256, .rsaPSSRSAESHA384, .rsaPSSRSAESHA512, .rsaPKCS1SHA256, .rsaPKCS1SHA384, .rsaPKCS1SHA512,
    ]

    /// The DER SubjectPublicKeyInfo of the matching public key (to compare
    /// with a certificate's).
    public var subjectPublicKeyInfo: [UInt8] {
        switch backing {
        case .ed25519(let key): return Array(key.publicKey.derRepresentation)
        case .p256(let key): return Array(key.publicKey.derRepresentation)
        case .rsa(let key): return Array(key.publicKey.derRepresentation)
        }
    }

    /// Signs `message` (the whole §4.4.3 content). `.handshakeFailure` for a
    /// scheme not in `signatureSchemes`; `.internalError` if the primitive fails.
    public func sign(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> [UInt8] {
        do {
            switch (backing, scheme) {
            case (.ed25519(let key), .ed25519):
                return Array(try key.signature(for: message))
            case (.p256(let key), .ecdsaSecp256r1SHA256):
                // DER-encoded ECDSA-Sig-Value on the wire (§4.2.3).
                return Array(try key.signature(for: SHA256.hash(data: message)).derRepresentation)
            case (.rsa(let key), .rsaPSSRSAESHA256):
                // RSASSA-PSS, MGF1 with the same hash, salt length = hash length (§4.2.3).
                return Array(try key.signature(for: SHA256.hash(data: message), padding: .PSS).rawRepresentation)
            case (.rsa(let key), .rsaPSSRSAESHA384):
                return Array(try key.signature(for: SHA384.hash(data: message), padding: .PSS).rawRepresentation)
            case (.rsa(let key), .rsaPSSRSAESHA512):
                return Array(try key.signature(for: SHA512.hash(data: message), padding: .PSS).rawRepresentation)
            case (.rsa(let key), .rsaPKCS1SHA256):
                // RSASSA-PKCS1-v1_5 (RFC 8017 §8.2): TLS 1.2's digitally-signed (RFC 5246 §4.7).
                return Array(try key.signature(for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5).rawRepresentation)
            case (.rsa(let key), .rsaPKCS1SHA384):
                return Array(try key.signature(for: SHA384.hash(data: message), padding: .insecurePKCS1v1_5).rawRepresentation)
            case (.rsa(let key), .rsaPKCS1SHA512):
                return Array(try key.signature(for: SHA512.hash(data: message), padding: .insecurePKCS1v1_5).rawRepresentation)
            default:
                break
            }
        } catch {
            throw .internalError("\(scheme) signing failed: \(error)")
        }
        throw .handshakeFailure("this key cannot sign with \(scheme) (it signs with \(signatureSchemes))")
    }
}
