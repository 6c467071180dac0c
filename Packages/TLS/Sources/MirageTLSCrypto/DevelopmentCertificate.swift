import Crypto
import Foundation
import SwiftASN1
import X509

/// A self-signed certificate for development servers (`mirage-www --tls`
/// without `--cert`): ECDSA P-256, the given DNS names and IP addresses as
/// subjectAltName, serverAuth, valid for `validity` from the given time.
///
/// It is marked as a CA (basicConstraints cA, keyCertSign) so the one
/// certificate can be its own trust anchor: swift-certificates (RFC5280Policy)
/// only accepts a self-signed end-entity found in the trust store when it is
/// a CA, and OpenSSL/curl accept it with `--cacert`. Clients recognise it by
/// the SHA-256 fingerprint the server prints.
public enum DevelopmentCertificate {
    /// How long a development certificate is valid.
    public static let validity: TimeInterval = 30 * 24 * 60 * 60
    /// notBefore is set this far before the given time, so a client whose
    /// clock is slightly behind still accepts a certificate made just now.
    public static let clockSkewAllowance: TimeInterval = 60 * 60
    /// The organisation in the subject, so the certificate says what it is.
    public static let organization = "MirageSwift development certificate"

    /// Everything a development certificate consists of, before it becomes a
    /// `CertifiedKey` (a program may also write the PEM files out).
    public struct Material: Sendable {
        /// The certificate, DER.
        public var certificateDER: [UInt8]
        /// The certificate, PEM.
        public var certificatePEM: String
        /// The private key, PKCS#8 PEM (`PRIVATE KEY`).
        public var privateKeyPEM: String
        /// SHA-256 of the DER as colon-separated upper-case hex, as
        /// `openssl x509 -noout -fingerprint -sha256` prints it.
        public var sha256Fingerprint: String
    }

    /// A fresh key and a self-signed certificate for `names` and `ipAddresses`
    /// (IPv4 or IPv6 literals), valid for `validity` from `now`. Throws
    /// `.configuration` when both lists are empty or an address does not parse.
    public static func generate(names: [String], ipAddresses: [String], now: Date = Date()) throws(TLSError) -> Material {
        guard !names.isEmpty || !ipAddresses.isEmpty else {
            throw .configuration("a development certificate needs a name or an address")
        }
        var alternativeNames: [GeneralName] = []
        for name in names {
            guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw .configuration("\(name.debugDescription) is not an ASCII DNS name")
            }
            alternativeNames.append(.dnsName(name))
        }
        for address in ipAddresses {
            guard let bytes = ipAddressBytes(address) else {
                throw .configuration("\(address.debugDescription) is not an IPv4 or IPv6 address")
            }
            alternativeNames.append(.ipAddress(ASN1OctetString(contentBytes: bytes[...])))
        }
        let key = P256.Signing.PrivateKey()
        let der: [UInt8]
        do {
            let subject = try DistinguishedName {
                OrganizationName(organization)
                CommonName(names.first ?? ipAddresses.first ?? "localhost")
            }
            let certificate = try Certificate(
                version: .v3,
                serialNumber: .init(),
                publicKey: .init(key.publicKey),
                notValidBefore: now - clockSkewAllowance,
                notValidAfter: now + validity,
                issuer: subject,
                subject: subject,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
                    try ExtendedKeyUsage([.serverAuth])
                    SubjectAlternativeNames(alternativeNames)
                    SubjectKeyIdentifier(hash: .init(key.publicKey))
                },
                issuerPrivateKey: .init(key)
            )
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            der = serializer.serializedBytes
        } catch {
            throw .internalError("building the development certificate failed: \(error)")
        }
        return Material(
            certificateDER: der,
            certificatePEM: PEM.encode(der, label: PEM.certificateLabel),
            privateKeyPEM: key.pemRepresentation,
            sha256Fingerprint: fingerprint(der)
        )
    }

    /// A development certificate ready for `TLSServerConfiguration`: the
    /// certified key (serverNames = `names`), its PEM and its SHA-256
    /// fingerprint to print. `now` is the start of the 30 days.
    public static func make(
        names: [String], ipAddresses: [String], now: Date = Date()
    ) throws(TLSError) -> (key: CertifiedKey, certificatePEM: String, sha256Fingerprint: String) {
        let material = try generate(names: names, ipAddresses: ipAddresses, now: now)
        let key = CertifiedKey(
            chain: [material.certificateDER],
            key: try PrivateSigningKey(pem: material.privateKeyPEM),
            serverNames: names
        )
        return (key, material.certificatePEM, material.sha256Fingerprint)
    }

    /// SHA-256 of `der` as `AB:CD:…` (upper-case, colon-separated).
    public static func fingerprint(_ der: [UInt8]) -> String {
        let hexDigits = Array("0123456789ABCDEF")
        return SHA256.hash(data: der).map { byte in
            String([hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]])
        }.joined(separator: ":")
    }
}
