import Crypto
import Foundation
import MirageTLS
import MirageTLSCrypto
import X509
import _CryptoExtras

/// Certified keys of each type the engine signs with, issued by a TestPKI
/// root (X509TestPKI.swift), for the engine tests.
enum TestCredentials {
    /// A leaf key type.
    enum KeyType: String, CaseIterable, Sendable {
        case ed25519, p256, rsa2048
    }

    static func makeAuthority() throws -> TestPKI.Authority { try TestPKI.root("MirageSwift Engine Test CA") }

    /// A leaf for `names` of key type `type`, signed by `authority`, with its TLS signing key.
    static func makeLeaf(_ type: KeyType, authority: TestPKI.Authority, names: [String] = ["localhost"]) throws -> CertifiedKey {
        let publicKey: Certificate.PublicKey
        let signingKey: PrivateSigningKey
        switch type {
        case .ed25519:
            let key = Curve25519.Signing.PrivateKey()
            publicKey = .init(key.publicKey)
            signingKey = PrivateSigningKey(key)
        case .p256:
            let key = P256.Signing.PrivateKey()
            publicKey = .init(key.publicKey)
            signingKey = PrivateSigningKey(key)
        case .rsa2048:
            let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            publicKey = .init(key.publicKey)
            signingKey = PrivateSigningKey(key)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey,
            notValidBefore: TestPKI.longAgo, notValidAfter: TestPKI.farAhead,
            issuer: authority.certificate.subject, subject: TestPKI.name(names.first ?? "leaf"),
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectAlternativeNames(names.map { GeneralName.dnsName($0) })
            },
            issuerPrivateKey: .init(authority.key))
        return CertifiedKey(chain: [TestPKI.der(certificate), authority.der], key: signingKey, serverNames: names)
    }

    /// One cached CA and one leaf per key type (RSA key generation is slow).
    nonisolated(unsafe) static let shared: (authority: TestPKI.Authority, leaves: [KeyType: CertifiedKey]) = {
        let authority = try! makeAuthority()
        var leaves: [KeyType: CertifiedKey] = [:]
        for type in KeyType.allCases { leaves[type] = try! makeLeaf(type, authority: authority) }
        return (authority, leaves)
    }()

    static func leaf(_ type: KeyType) -> CertifiedKey { shared.leaves[type]! }
}
