// The public key of a DER certificate, for CertificateVerify (RFC 8446 §4.4.3).
// The SubjectPublicKeyInfo is found with swift-asn1 and handed to swift-crypto's
// key types; swift-certificates' `Certificate` is not used here because it
// insists on RSA moduli of 2048 bits and more, and RFC 8448's traces (which
// the tests reproduce) use a 1024-bit key. The policy floor is
// `SwiftCryptoProvider.minimumRSAKeySize` instead.

import Crypto
import Foundation
import MirageTLS
import SwiftASN1
import _CryptoExtras

/// Object identifiers of the key algorithms we read.
enum KeyAlgorithmOID {
    /// id-ecPublicKey (RFC 5480 §2.1.1)
    static let ecPublicKey: ASN1ObjectIdentifier = [1, 2, 840, 10045, 2, 1]
    /// secp256r1 / prime256v1 (RFC 5480 §2.1.1.1)
    static let prime256v1: ASN1ObjectIdentifier = [1, 2, 840, 10045, 3, 1, 7]
    /// secp384r1 (RFC 5480 §2.1.1.1)
    static let secp384r1: ASN1ObjectIdentifier = [1, 3, 132, 0, 34]
    /// rsaEncryption (RFC 8017 §A.1)
    static let rsaEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 1]
    /// id-RSASSA-PSS (RFC 4055 §3.1): a PSS-only key, i.e. rsa_pss_pss_*, which we do not support
    static let rsassaPSS: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 10]
    /// id-Ed25519 (RFC 8410 §3)
    static let ed25519: ASN1ObjectIdentifier = [1, 3, 101, 112]
}

/// A public key that can check CertificateVerify signatures.
enum CertificatePublicKey {
    case ed25519(Curve25519.Signing.PublicKey)
    case p256(P256.Signing.PublicKey)
    case p384(P384.Signing.PublicKey)
    case rsa(_RSA.Signing.PublicKey)
    /// A key we can parse no further (another curve, RSASSA-PSS, …): no scheme fits it.
    case unsupported(String)

    /// Reads the SubjectPublicKeyInfo of a DER X.509 certificate (RFC 5280 §4.1).
    init(certificate der: [UInt8], minimumRSAKeySize: Int) throws(TLSError) {
        let spki: ASN1Node
        do {
            spki = try Self.subjectPublicKeyInfo(of: DER.parse(der))
        } catch {
            throw .badCertificate(.malformed("cannot find the certificate's public key: \(error)"))
        }
        try self.init(subjectPublicKeyInfo: spki, minimumRSAKeySize: minimumRSAKeySize)
    }

    /// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue };
    /// TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature,
    /// issuer, validity, subject, subjectPublicKeyInfo, … }.
    private static func subjectPublicKeyInfo(of certificate: ASN1Node) throws(TLSError) -> ASN1Node {
        guard let outer = sequenceChildren(certificate), let tbsNode = outer.first,
              var tbs = sequenceChildren(tbsNode)
        else { throw .badCertificate(.malformed("certificate is not a SEQUENCE of SEQUENCE")) }
        if let first = tbs.first, first.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
            tbs.removeFirst()
        }
        // serialNumber, signature, issuer, validity, subject, then the key.
        let spkiIndex = 5
        guard tbs.count > spkiIndex, tbs[spkiIndex].identifier == .sequence else {
            throw .badCertificate(.malformed("TBSCertificate has no subjectPublicKeyInfo"))
        }
        return tbs[spkiIndex]
    }

    /// SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }.
    init(subjectPublicKeyInfo spki: ASN1Node, minimumRSAKeySize: Int) throws(TLSError) {
        guard let parts = sequenceChildren(spki), parts.count == 2,
              let algorithm = sequenceChildren(parts[0]), let oidNode = algorithm.first,
              let oid = try? ASN1ObjectIdentifier(derEncoded: oidNode),
              let bits = try? ASN1BitString(derEncoded: parts[1])
        else { throw .badCertificate(.malformed("malformed SubjectPublicKeyInfo")) }
        let keyBytes = Array(bits.bytes)
        switch oid {
        case KeyAlgorithmOID.ed25519:
            guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: keyBytes) else {
                throw .badCertificate(.malformed("bad Ed25519 public key"))
            }
            self = .ed25519(key)
        case KeyAlgorithmOID.ecPublicKey:
            guard algorithm.count == 2, let curve = try? ASN1ObjectIdentifier(derEncoded: algorithm[1]) else {
                throw .badCertificate(.malformed("EC public key without a named curve"))
            }
            if curve == KeyAlgorithmOID.secp384r1 {
                guard let key = try? P384.Signing.PublicKey(x963Representation: keyBytes) else {
                    throw .badCertificate(.malformed("bad P-384 public key"))
                }
                self = .p384(key)
                return
            }
            guard curve == KeyAlgorithmOID.prime256v1 else {
                self = .unsupported("EC key on curve \(curve)")
                return
            }
            guard let key = try? P256.Signing.PublicKey(x963Representation: keyBytes) else {
                throw .badCertificate(.malformed("bad P-256 public key"))
            }
            self = .p256(key)
        case KeyAlgorithmOID.rsaEncryption:
            // unsafeDERRepresentation accepts ≥ 1024 bits; our own floor is applied next.
            guard let key = try? _RSA.Signing.PublicKey(unsafeDERRepresentation: Array(spki.encodedBytes)) else {
                throw .badCertificate(.malformed("bad RSA public key"))
            }
            guard key.keySizeInBits >= minimumRSAKeySize else {
                throw .badCertificate(.other("RSA key of \(key.keySizeInBits) bits (at least \(minimumRSAKeySize) required)"))
            }
            self = .rsa(key)
        case KeyAlgorithmOID.rsassaPSS:
            self = .unsupported("RSASSA-PSS key (rsa_pss_pss_* schemes)")
        default:
            self = .unsupported("key algorithm \(oid)")
        }
    }

    /// Checks `signature` over `message` for `scheme`: `.illegalParameter` when
    /// the scheme does not fit this key (§4.4.3: it must be one the key can
    /// use), `.decryptError` when the signature does not verify (§4.4.3 MUST).
    func verify(signature: [UInt8], scheme: SignatureScheme, message: [UInt8]) throws(TLSError) {
        let valid: Bool
        switch (self, scheme) {
        case (.ed25519(let key), .ed25519):
            valid = key.isValidSignature(signature, for: message)
        case (.p256(let key), .ecdsaSecp256r1SHA256):
            // The wire carries the DER-encoded ECDSA-Sig-Value (§4.2.3).
            guard let parsed = try? P256.Signing.ECDSASignature(derRepresentation: signature) else {
                throw .decryptError("ECDSA signature is not a DER ECDSA-Sig-Value")
            }
            valid = key.isValidSignature(parsed, for: SHA256.hash(data: message))
        case (.p384(let key), .ecdsaSecp384r1SHA384):
            guard let parsed = try? P384.Signing.ECDSASignature(derRepresentation: signature) else {
                throw .decryptError("ECDSA signature is not a DER ECDSA-Sig-Value")
            }
            valid = key.isValidSignature(parsed, for: SHA384.hash(data: message))
        case (.rsa(let key), .rsaPSSRSAESHA256):
            // PSS with MGF1 over the same hash, salt length = hash length (§4.2.3).
            valid = key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: message), padding: .PSS)
        case (.rsa(let key), .rsaPSSRSAESHA384):
            valid = key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA384.hash(data: message), padding: .PSS)
        case (.rsa(let key), .rsaPSSRSAESHA512):
            valid = key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA512.hash(data: message), padding: .PSS)
        case (.rsa(let key), .rsaPKCS1SHA256):
            // RSASSA-PKCS1-v1_5 (RFC 8017 §8.2): TLS 1.2 only; the TLS 1.3 engine never passes it here.
            valid = key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5)
        case (.rsa(let key), .rsaPKCS1SHA384):
            valid = key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA384.hash(data: message), padding: .insecurePKCS1v1_5)
        case (.rsa(let key), .rsaPKCS1SHA512):
            valid = key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA512.hash(data: message), padding: .insecurePKCS1v1_5)
        default:
            throw .illegalParameter("signature scheme \(scheme) does not fit the certificate's \(keyDescription)")
        }
        guard valid else { throw .decryptError("\(scheme) signature does not verify") }
    }

    /// What kind of key this is, for messages.
    var keyDescription: String {
        switch self {
        case .ed25519: return "Ed25519 key"
        case .p256: return "P-256 key"
        case .p384: return "P-384 key"
        case .rsa(let key): return "RSA-\(key.keySizeInBits) key"
        case .unsupported(let what): return what
        }
    }
}

/// The children of a constructed SEQUENCE node, or nil for anything else.
func sequenceChildren(_ node: ASN1Node) -> [ASN1Node]? {
    guard node.identifier == .sequence, case .constructed(let children) = node.content else { return nil }
    return Array(children)
}
