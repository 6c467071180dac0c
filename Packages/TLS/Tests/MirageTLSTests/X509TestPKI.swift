import Crypto
import Foundation
import MirageTLSCrypto
import SwiftASN1
import X509

/// Certificates made in the test with swift-certificates: a root CA,
/// intermediates and leaves with chosen names, validity and usages.
struct TestPKI {
    /// The verification time of every test: 2025-06-15T00:00:00Z.
    static let now = Date(timeIntervalSince1970: 1_749_945_600)
    /// 2025-06-01T00:00:00Z, two weeks before `now`.
    static let past = Date(timeIntervalSince1970: 1_748_736_000)
    /// 2025-07-01T00:00:00Z, two weeks after `now`.
    static let future = Date(timeIntervalSince1970: 1_751_328_000)
    /// 2024-06-15T00:00:00Z and 2026-06-15T00:00:00Z: a year either side.
    static let longAgo = Date(timeIntervalSince1970: 1_718_409_600)
    static let farAhead = Date(timeIntervalSince1970: 1_781_481_600)

    /// A certificate with its key.
    struct Authority {
        let key: P256.Signing.PrivateKey
        let certificate: Certificate
        var der: [UInt8] { TestPKI.der(certificate) }
    }

    static func name(_ commonName: String) -> DistinguishedName {
        try! DistinguishedName {
            OrganizationName("MirageSwift Tests")
            CommonName(commonName)
        }
    }

    static func der(_ certificate: Certificate) -> [UInt8] {
        var serializer = DER.Serializer()
        try! serializer.serialize(certificate)
        return serializer.serializedBytes
    }

    /// A self-signed root CA.
    static func root(_ commonName: String = "Test Root") throws -> Authority {
        let key = P256.Signing.PrivateKey()
        let subject = name(commonName)
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: longAgo, notValidAfter: farAhead, issuer: subject, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(key.publicKey))
            },
            issuerPrivateKey: .init(key))
        return Authority(key: key, certificate: certificate)
    }

    /// An intermediate CA issued by `issuer`.
    static func intermediate(_ commonName: String, issuer: Authority,
                             notBefore: Date = longAgo, notAfter: Date = farAhead) throws -> Authority {
        let key = P256.Signing.PrivateKey()
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: notBefore, notValidAfter: notAfter,
            issuer: issuer.certificate.subject, subject: name(commonName),
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(key.publicKey))
                AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: .init(issuer.key.publicKey)).keyIdentifier)
            },
            issuerPrivateKey: .init(issuer.key))
        return Authority(key: key, certificate: certificate)
    }

    /// A leaf issued by `issuer`. nil `keyUsage`/`extendedKeyUsage` leaves the extension out.
    static func leaf(
        _ commonName: String = "leaf", issuer: Authority,
        dnsNames: [String] = ["www.example.com"], ipAddresses: [[UInt8]] = [],
        notBefore: Date = longAgo, notAfter: Date = farAhead,
        keyUsage: KeyUsage? = KeyUsage(digitalSignature: true),
        extendedKeyUsage: [ExtendedKeyUsage.Usage]? = [.serverAuth],
        extra: Certificate.Extension? = nil
    ) throws -> [UInt8] {
        try leafWithKey(commonName, issuer: issuer, dnsNames: dnsNames, ipAddresses: ipAddresses, notBefore: notBefore,
                        notAfter: notAfter, keyUsage: keyUsage, extendedKeyUsage: extendedKeyUsage, extra: extra).der
    }

    /// `leaf(…)` with its private key.
    static func leafWithKey(
        _ commonName: String = "leaf", issuer: Authority,
        dnsNames: [String] = ["www.example.com"], ipAddresses: [[UInt8]] = [],
        notBefore: Date = longAgo, notAfter: Date = farAhead,
        keyUsage: KeyUsage? = KeyUsage(digitalSignature: true),
        extendedKeyUsage: [ExtendedKeyUsage.Usage]? = [.serverAuth],
        extra: Certificate.Extension? = nil
    ) throws -> (der: [UInt8], key: P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        var names: [GeneralName] = dnsNames.map { .dnsName($0) }
        names += ipAddresses.map { .ipAddress(ASN1OctetString(contentBytes: $0[...])) }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: notBefore, notValidAfter: notAfter,
            issuer: issuer.certificate.subject, subject: name(commonName),
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                if let keyUsage { Critical(keyUsage) }
                if let extendedKeyUsage { try ExtendedKeyUsage(extendedKeyUsage) }
                SubjectAlternativeNames(names)
                if let extra { extra }
                AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: .init(issuer.key.publicKey)).keyIdentifier)
            },
            issuerPrivateKey: .init(issuer.key))
        return (der(certificate), key)
    }

    /// The usual hierarchy: root → intermediate → leaf.
    let root: Authority
    let intermediate: Authority

    init() throws {
        root = try Self.root()
        intermediate = try Self.intermediate("Test Intermediate", issuer: root)
    }

    /// A verifier trusting only `root`, at `now`.
    func verifier(roots: [Authority]? = nil) -> X509CertificateVerifier {
        X509CertificateVerifier(roots: TrustRoots(certificates: (roots ?? [root]).map { $0.der }),
                                clock: { TestPKI.now })
    }
}
