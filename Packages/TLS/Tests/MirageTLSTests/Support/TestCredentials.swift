import Crypto
import Foundation
import MirageTLS
import MirageTLSCrypto
import SwiftASN1
import X509
import _CryptoExtras

/// Certificates and keys made in the test with swift-certificates: a CA and
/// leaves of each key type the engine signs with.
enum TestCredentials {
    /// A leaf key type.
    enum KeyType: String, CaseIterable, Sendable {
        case ed25519, p256, rsa2048
    }

    /// A CA that signs leaves.
    struct Authority {
        let key: P256.Signing.PrivateKey
        let certificate: Certificate
        var der: [UInt8] { TestCredentials.der(certificate) }
    }

    static func der(_ certificate: Certificate) -> [UInt8] {
        var serializer = DER.Serializer()
        // Serialising a certificate we just built cannot fail.
        try! serializer.serialize(certificate)
        return serializer.serializedBytes
    }

    static func makeAuthority(name: String = "MirageSwift Test CA", now: Date = Date()) throws -> Authority {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName { CommonName(name) }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now - 3600, notValidAfter: now + 30 * 86400,
            issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(key))
        return Authority(key: key, certificate: certificate)
    }

    /// A leaf for `names` signed by `authority`, with its TLS signing key.
    static func makeLeaf(_ type: KeyType, authority: Authority, names: [String] = ["localhost"], now: Date = Date()) throws -> CertifiedKey {
        let publicKey: Certificate.PublicKey
        let signingKey: PrivateSigningKey
        switch type {
        case .ed25519:
            let key = Curve25519.Signing.PrivateKey()
            publicKey = .init(key.publicKey)
            // PKCS#8 OneAsymmetricKey for Ed25519 (RFC 8410 §7).
            let der: [UInt8] = [0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]
                + Array(key.rawRepresentation)
            signingKey = try PrivateSigningKey(der: der)
        case .p256:
            let key = P256.Signing.PrivateKey()
            publicKey = .init(key.publicKey)
            signingKey = try PrivateSigningKey(pem: key.pemRepresentation)
        case .rsa2048:
            let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            publicKey = .init(key.publicKey)
            signingKey = try PrivateSigningKey(pem: key.pemRepresentation)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey,
            notValidBefore: now - 3600, notValidAfter: now + 7 * 86400,
            issuer: authority.certificate.subject, subject: try DistinguishedName { CommonName(names.first ?? "leaf") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectAlternativeNames(names.map { GeneralName.dnsName($0) })
            },
            issuerPrivateKey: .init(authority.key))
        return CertifiedKey(chain: [der(certificate), authority.der], key: signingKey, serverNames: names)
    }

    /// One cached CA and one leaf per key type (RSA key generation is slow).
    nonisolated(unsafe) static let shared: (authority: Authority, leaves: [KeyType: CertifiedKey]) = {
        let authority = try! makeAuthority()
        var leaves: [KeyType: CertifiedKey] = [:]
        for type in KeyType.allCases { leaves[type] = try! makeLeaf(type, authority: authority) }
        return (authority, leaves)
    }()

    static func leaf(_ type: KeyType) -> CertifiedKey { shared.leaves[type]! }
}
