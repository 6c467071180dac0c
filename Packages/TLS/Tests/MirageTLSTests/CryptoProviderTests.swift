// SwiftCryptoProvider and PrivateSigningKey: HKDF against RFC 5869, key
// exchange checks (§4.2.8.2, §7.4.2), CertificateVerify signing and
// verification per scheme (§4.4.3), including RFC 8448's own RSA-PSS
// CertificateVerify, and private-key loading from PEM.

import Crypto
import Foundation
import MirageTLS
import MirageTLSCrypto
import SwiftASN1
import Testing
import X509
import _CryptoExtras

/// A self-signed DER certificate for `key`, made with swift-certificates.
func selfSignedCertificate(_ key: Certificate.PrivateKey, algorithm: Certificate.SignatureAlgorithm) throws -> [UInt8] {
    let name = try DistinguishedName { CommonName("crypto-test") }
    let now = Date()
    let certificate = try Certificate(
        version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
        notValidBefore: now - 60, notValidAfter: now + 3600, issuer: name, subject: name,
        signatureAlgorithm: algorithm, extensions: Certificate.Extensions(), issuerPrivateKey: key)
    var serializer = DER.Serializer()
    try serializer.serialize(certificate)
    return serializer.serializedBytes
}

/// One signing key of each kind with its certificate.
struct SigningFixture: CustomStringConvertible {
    let name: String
    let key: PrivateSigningKey
    let certificate: [UInt8]
    var description: String { name }

    static func make() throws -> [SigningFixture] {
        let ed25519 = try Curve25519.Signing.PrivateKey(pemRepresentation: CryptoTestKeys.ed25519PKCS8)
        let p256 = try P256.Signing.PrivateKey(pemRepresentation: CryptoTestKeys.p256PKCS8)
        let rsa = try _RSA.Signing.PrivateKey(pemRepresentation: CryptoTestKeys.rsaPKCS8)
        return [
            SigningFixture(name: "Ed25519", key: try PrivateSigningKey(pem: CryptoTestKeys.ed25519PKCS8),
                           certificate: try selfSignedCertificate(Certificate.PrivateKey(ed25519), algorithm: .ed25519)),
            SigningFixture(name: "P-256", key: try PrivateSigningKey(pem: CryptoTestKeys.p256PKCS8),
                           certificate: try selfSignedCertificate(Certificate.PrivateKey(p256), algorithm: .ecdsaWithSHA256)),
            SigningFixture(name: "RSA-2048", key: try PrivateSigningKey(pem: CryptoTestKeys.rsaPKCS1),
                           certificate: try selfSignedCertificate(Certificate.PrivateKey(rsa), algorithm: .sha256WithRSAEncryption)),
        ]
    }
}

/// The content a server's CertificateVerify signs (§4.4.3): 64 spaces, the
/// context string, a zero byte, the transcript hash.
func certificateVerifyContent(server: Bool, transcriptHash: [UInt8]) -> [UInt8] {
    let context = server ? "TLS 1.3, server CertificateVerify" : "TLS 1.3, client CertificateVerify"
    return [UInt8](repeating: 0x20, count: 64) + Array(context.utf8) + [0] + transcriptHash
}

@Suite struct CryptoProviderTests {
    let crypto = SwiftCryptoProvider()

    // MARK: Hashes and HKDF

    @Test func hkdfMatchesRFC5869TestCase1() {
        let ikm = [UInt8](repeating: 0x0b, count: 22)
        let salt: [UInt8] = Array(0x00...0x0c)
        let info: [UInt8] = Array(0xf0...0xf9)
        let prk = crypto.hkdfExtract(.sha256, salt: salt, inputKeyMaterial: ikm)
        #expect(prk == RFC8448.hex("077709362c2e32df0ddc3f0dc47bba63 90b6c73bb50f9c3122ec844ad7c2b3e5"))
        #expect(crypto.hkdfExpand(.sha256, pseudorandomKey: prk, info: info, length: 42)
            == RFC8448.hex("3cb25f25faacd57a90434f64d0362f2a 2d2d0a90cf1a5a4c5db02d56ecc4c5bf 34007208d5b887185865"))
    }

    @Test func hashesOfTheEmptyString() {
        #expect(crypto.hash(.sha256, []) == RFC8448.hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"))
        #expect(crypto.hash(.sha384, []).count == 48)
        #expect(crypto.hmac(.sha384, key: [1], data: [2]).count == 48)
    }

    // MARK: AEAD

    static let aeads: [AEADAlgorithm] = [.aes128GCM, .aes256GCM, .chacha20Poly1305]

    @Test(arguments: aeads)
    func aeadRoundTripAndTamper(_ algorithm: AEADAlgorithm) {
        let key = crypto.makeAEADKey(algorithm, key: [UInt8](repeating: 7, count: algorithm.keyLength))
        let nonce = [UInt8](repeating: 1, count: 12)
        let sealed = key.seal(nonce: nonce, additionalData: [1, 2], plaintext: Array("payload".utf8))
        #expect(sealed.count == 7 + 16)
        #expect(key.open(nonce: nonce, additionalData: [1, 2], ciphertextAndTag: sealed) == Array("payload".utf8))
        #expect(key.open(nonce: nonce, additionalData: [1, 3], ciphertextAndTag: sealed) == nil)
        #expect(key.open(nonce: [UInt8](repeating: 2, count: 12), additionalData: [1, 2], ciphertextAndTag: sealed) == nil)
        #expect(key.open(nonce: nonce, additionalData: [1, 2], ciphertextAndTag: Array(sealed.prefix(10))) == nil)
        #expect(key.open(nonce: [1, 2, 3], additionalData: [1, 2], ciphertextAndTag: sealed) == nil)
    }

    @Test func chaCha20Poly1305MatchesRFC8439AppendixA5() {
        let key = crypto.makeAEADKey(.chacha20Poly1305, key: RFC8448.hex("""
            1c 92 40 a5 eb 55 d3 8a f3 33 88 86 04 f6 b5 f0 47 39 17 c1 40 2b 80 09 9d ca 5c bc 20 70 75 c0
            """))
        let nonce = RFC8448.hex("00 00 00 00 01 02 03 04 05 06 07 08")
        let aad = RFC8448.hex("f3 33 88 86 00 00 00 00 00 00 4e 91")
        let ciphertext = RFC8448.hex("""
            64 a0 86 15 75 86 1a f4 60 f0 62 c7 9b e6 43 bd 5e 80 5c fd 34 5c f3 89 f1 08 67 0a c7 6c 8c b2
            4c 6c fc 18 75 5d 43 ee a0 9e e9 4e 38 2d 26 b0 bd b7 b7 3c 32 1b 01 00 d4 f0 3b 7f 35 58 94 cf
            33 2f 83 0e 71 0b 97 ce 98 c8 a8 4a bd 0b 94 81 14 ad 17 6e 00 8d 33 bd 60 f9 82 b1 ff 37 c8 55
            97 97 a0 6e f4 f0 ef 61 c1 86 32 4e 2b 35 06 38 36 06 90 7b 6a 7c 02 b0 f9 f6 15 7b 53 c8 67 e4
            b9 16 6c 76 7b 80 4d 46 a5 9b 52 16 cd e7 a4 e9 90 40 c5 a4 04 33 22 5e e2 82 a1 b0 a0 6c 52 3e
            af 45 34 d7 f8 3f a1 15 5b 00 47 71 8c bc 54 6a 0d 07 2b 04 b3 56 4e ea 1b 42 22 73 f5 48 27 1a
            0b b2 31 60 53 fa 76 99 19 55 eb d6 31 59 43 4e ce bb 4e 46 6d ae 5a 10 73 a6 72 76 27 09 7a 10
            49 e6 17 d9 1d 36 10 94 fa 68 f0 ff 77 98 71 30 30 5b ea ba 2e da 04 df 99 7b 71 4d 6c 6f 2c 29
            a6 ad 5c b4 02 2b 02 70 9b
            """)
        let tag = RFC8448.hex("ee ad 9d 67 89 0c bb 22 39 23 36 fe a1 85 1f 38")
        let plaintext = key.open(nonce: nonce, additionalData: aad, ciphertextAndTag: ciphertext + tag)
        #expect(plaintext.map { String(decoding: $0.prefix(25), as: UTF8.self) } == "Internet-Drafts are draft")
        #expect(plaintext?.count == ciphertext.count)
        if let plaintext {
            #expect(key.seal(nonce: nonce, additionalData: aad, plaintext: plaintext) == ciphertext + tag)
        }
    }

    // MARK: Key exchange

    @Test(arguments: [NamedGroup.x25519, .secp256r1])
    func freshKeysAgree(_ group: NamedGroup) throws {
        let a = try crypto.makeKeyExchange(group)
        let b = try crypto.makeKeyExchange(group)
        #expect(a.group == group)
        #expect(a.publicKey.count == (group == .x25519 ? 32 : 65))
        #expect(a.publicKey != b.publicKey)
        let secret = try a.sharedSecret(peerPublicKey: b.publicKey)
        #expect(secret.count == 32)
        #expect(try b.sharedSecret(peerPublicKey: a.publicKey) == secret)
    }

    @Test func unsupportedGroupIsAHandshakeFailure() {
        expectCryptoAlert(.handshakeFailure) { () throws(TLSError) in _ = try crypto.makeKeyExchange(.secp384r1) }
        #expect(crypto.supportedGroups == [.x25519, .secp256r1])
    }

    @Test func badX25519SharesAreIllegalParameters() throws {
        let key = try crypto.makeKeyExchange(.x25519)
        // Wrong lengths.
        for length in [0, 31, 33, 65] {
            expectCryptoAlert(.illegalParameter) { () throws(TLSError) in _ = try key.sharedSecret(peerPublicKey: [UInt8](repeating: 9, count: length)) }
        }
        // Small-order points give an all-zero shared secret (RFC 7748 §6.1), which §7.4.2 forbids:
        // 0, 1, and the point of order 8 with u = 0xe0eb7a7c… (RFC 7748 §7 and common test lists).
        let smallOrder: [[UInt8]] = [
            [UInt8](repeating: 0, count: 32),
            [1] + [UInt8](repeating: 0, count: 31),
            RFC8448.hex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        ]
        for point in smallOrder {
            expectCryptoAlert(.illegalParameter) { () throws(TLSError) in _ = try key.sharedSecret(peerPublicKey: point) }
        }
    }

    @Test func badP256SharesAreIllegalParameters() throws {
        let key = try crypto.makeKeyExchange(.secp256r1)
        let good = try crypto.makeKeyExchange(.secp256r1).publicKey
        // Compressed form (§4.2.8.2 allows only uncompressed), wrong prefix, wrong length, off the curve.
        var compressed = [UInt8](good.prefix(33))
        compressed[0] = 0x02 | (good[64] & 1)
        var wrongPrefix = good
        wrongPrefix[0] = 0x06
        var offCurve = good
        offCurve[64] ^= 0x01
        for share in [compressed, wrongPrefix, Array(good.prefix(64)), good + [0], offCurve, [UInt8](repeating: 0, count: 65)] {
            expectCryptoAlert(.illegalParameter) { () throws(TLSError) in _ = try key.sharedSecret(peerPublicKey: share) }
        }
        #expect(try key.sharedSecret(peerPublicKey: good).count == 32)
    }

    @Test func fixedPrivateKeysAreChecked() {
        expectCryptoAlert(.illegalParameter) { () throws(TLSError) in _ = try crypto.makeKeyExchange(.x25519, privateKey: [1, 2, 3]) }
        expectCryptoAlert(.illegalParameter) { () throws(TLSError) in _ = try crypto.makeKeyExchange(.secp256r1, privateKey: [UInt8](repeating: 0, count: 32)) }
    }

    // MARK: Signatures

    @Test func signAndVerifyEachScheme() throws {
        for fixture in try SigningFixture.make() {
            #expect(!fixture.key.signatureSchemes.isEmpty)
            for scheme in fixture.key.signatureSchemes {
                let message = certificateVerifyContent(server: true, transcriptHash: crypto.hash(.sha256, Array(fixture.name.utf8)))
                let signature = try fixture.key.sign(message, scheme: scheme)
                try crypto.verify(signature: signature, scheme: scheme, message: message, certificate: fixture.certificate)
                // Another message, the same signature: decrypt_error.
                var other = message
                other[other.count - 1] ^= 1
                expectCryptoAlert(.decryptError, "\(fixture) \(scheme) other message") { () throws(TLSError) in
                    try crypto.verify(signature: signature, scheme: scheme, message: other, certificate: fixture.certificate)
                }
                // A corrupted signature: decrypt_error as well.
                var corrupted = signature
                corrupted[corrupted.count / 2] ^= 0x10
                expectCryptoAlert(.decryptError, "\(fixture) \(scheme) corrupted") { () throws(TLSError) in
                    try crypto.verify(signature: corrupted, scheme: scheme, message: message, certificate: fixture.certificate)
                }
            }
        }
    }

    @Test func signingKeysOfferTheirSchemes() throws {
        let schemes = try SigningFixture.make().map { $0.key.signatureSchemes }
        // RSA: PSS first, then PKCS#1 v1.5 (TLS 1.2 only).
        #expect(schemes == [[.ed25519], [.ecdsaSecp256r1SHA256],
                            [.rsaPSSRSAESHA256, .rsaPSSRSAESHA384, .rsaPSSRSAESHA512, .rsaPKCS1SHA256, .rsaPKCS1SHA384, .rsaPKCS1SHA512]])
        // A scheme the key cannot sign with is refused.
        let rsa = try PrivateSigningKey(pem: CryptoTestKeys.rsaPKCS8)
        expectCryptoAlert(.handshakeFailure) { () throws(TLSError) in _ = try rsa.sign([1], scheme: .ecdsaSecp256r1SHA256) }
        expectCryptoAlert(.handshakeFailure) { () throws(TLSError) in _ = try rsa.sign([1], scheme: .ed25519) }
    }

    @Test func rsaPSSSignaturesUseASaltAsLongAsTheHash() throws {
        // Verified independently with swift-crypto: PSS with MGF1 and a salt of hash length
        // (RFC 8446 §4.2.3), for both hashes; a PSS signature is randomised, so two differ.
        let key = try PrivateSigningKey(pem: CryptoTestKeys.rsaPKCS1)
        let publicKey = try _RSA.Signing.PrivateKey(pemRepresentation: CryptoTestKeys.rsaPKCS1).publicKey
        let message: [UInt8] = Array("content".utf8)
        let s256 = try key.sign(message, scheme: .rsaPSSRSAESHA256)
        let s384 = try key.sign(message, scheme: .rsaPSSRSAESHA384)
        #expect(s256.count == 256 && s384.count == 256)
        #expect(try key.sign(message, scheme: .rsaPSSRSAESHA256) != s256)
        #expect(publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: s256), for: SHA256.hash(data: message), padding: .PSS))
        #expect(publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: s384), for: SHA384.hash(data: message), padding: .PSS))
        #expect(!publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: s384), for: SHA256.hash(data: message), padding: .PSS))
    }

    @Test func ecdsaSignaturesAreDEREncoded() throws {
        let key = try PrivateSigningKey(pem: CryptoTestKeys.p256PKCS8)
        let signature = try key.sign([1, 2, 3], scheme: .ecdsaSecp256r1SHA256)
        // ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }: 0x30, length, then two INTEGERs.
        #expect(signature.first == 0x30)
        #expect(Int(signature[1]) == signature.count - 2)
        #expect(signature[2] == 0x02)
        // The raw r||s form (64 bytes) is not accepted on the wire.
        let raw = try P256.Signing.ECDSASignature(derRepresentation: signature).rawRepresentation
        let certificate = try SigningFixture.make()[1].certificate
        expectCryptoAlert(.decryptError) { () throws(TLSError) in
            try crypto.verify(signature: Array(raw), scheme: .ecdsaSecp256r1SHA256, message: [1, 2, 3], certificate: certificate)
        }
    }

    @Test func aSchemeThatDoesNotFitTheKeyIsAnIllegalParameter() throws {
        let fixtures = try SigningFixture.make()
        let wrong: [(Int, SignatureScheme)] = [
            (0, .ecdsaSecp256r1SHA256), (0, .rsaPSSRSAESHA256),
            (1, .ed25519), (1, .rsaPSSRSAESHA256), (1, .ecdsaSecp384r1SHA384),
            (2, .ecdsaSecp256r1SHA256), (2, .ed25519), (2, .ecdsaSecp384r1SHA384),
        ]
        for (index, scheme) in wrong {
            let fixture = fixtures[index]
            let signature = try fixture.key.sign([1], scheme: fixture.key.signatureSchemes[0])
            expectCryptoAlert(.illegalParameter, "\(fixture) \(scheme)") { () throws(TLSError) in
                try crypto.verify(signature: signature, scheme: scheme, message: [1], certificate: fixture.certificate)
            }
        }
    }

    @Test func anUnreadableCertificateIsMalformed() {
        for bytes in [[], [0x30, 0x03, 0x02, 0x01, 0x01], Array(RFC8448.certificate.prefix(40))] as [[UInt8]] {
            expectCryptoAlert(.badCertificate) { () throws(TLSError) in
                try crypto.verify(signature: [1], scheme: .ed25519, message: [1], certificate: bytes)
            }
        }
    }

    // MARK: RFC 8448's CertificateVerify

    /// RFC 8448 §3's server certificate (the single entry of its Certificate message) and CertificateVerify.
    func rfc8448CertificateVerify() throws -> (certificate: [UInt8], verify: CertificateVerify, content: [UInt8]) {
        let certificateMessage = try CertificateMessage(parsing: Array(RFC8448.certificate.dropFirst(4)))
        let verify = try CertificateVerify(parsing: Array(RFC8448.certificateVerify.dropFirst(4)))
        let transcriptHash = crypto.hash(.sha256, RFC8448.clientHello + RFC8448.serverHello + RFC8448.encryptedExtensions + RFC8448.certificate)
        return (try #require(certificateMessage.entries.first).data, verify, certificateVerifyContent(server: true, transcriptHash: transcriptHash))
    }

    @Test func rfc8448ServerCertificateVerifyVerifies() throws {
        let (certificate, verify, content) = try rfc8448CertificateVerify()
        #expect(verify.scheme == .rsaPSSRSAESHA256)
        // The RFC's key is RSA-1024: accepted only when the floor is lowered for old vectors.
        let lenient = SwiftCryptoProvider(minimumRSAKeySize: 1024)
        try lenient.verify(signature: verify.signature, scheme: verify.scheme, message: content, certificate: certificate)
        // Signed for the server, not the client context string (§4.4.3).
        let clientContent = certificateVerifyContent(server: false, transcriptHash: Array(content.suffix(32)))
        expectCryptoAlert(.decryptError) { () throws(TLSError) in
            try lenient.verify(signature: verify.signature, scheme: verify.scheme, message: clientContent, certificate: certificate)
        }
        // And not with SHA-384.
        expectCryptoAlert(.decryptError) { () throws(TLSError) in
            try lenient.verify(signature: verify.signature, scheme: .rsaPSSRSAESHA384, message: content, certificate: certificate)
        }
    }

    @Test func rfc8448sRSA1024KeyIsRefusedByDefault() throws {
        let (certificate, verify, content) = try rfc8448CertificateVerify()
        #expect(crypto.minimumRSAKeySize == 2048)
        expectCryptoAlert(.badCertificate) { () throws(TLSError) in
            try crypto.verify(signature: verify.signature, scheme: verify.scheme, message: content, certificate: certificate)
        }
    }

    // MARK: Private key loading

    @Test func pkcs8AndSEC1FormsOfOneKeyAreTheSameKey() throws {
        let sec1 = try PrivateSigningKey(pem: CryptoTestKeys.p256SEC1WithParameters)
        let pkcs8 = try PrivateSigningKey(pem: CryptoTestKeys.p256PKCS8)
        #expect(sec1.signatureSchemes == [.ecdsaSecp256r1SHA256])
        #expect(sec1.subjectPublicKeyInfo == pkcs8.subjectPublicKeyInfo)
        let rsa1 = try PrivateSigningKey(pem: CryptoTestKeys.rsaPKCS1)
        let rsa8 = try PrivateSigningKey(pem: CryptoTestKeys.rsaPKCS8)
        #expect(rsa1.subjectPublicKeyInfo == rsa8.subjectPublicKeyInfo)
    }

    @Test func derLoadingMatchesPEMLoading() throws {
        for pem in [CryptoTestKeys.ed25519PKCS8, CryptoTestKeys.p256PKCS8, CryptoTestKeys.rsaPKCS1] {
            let document = try #require(try PEMDocument.parseMultiple(pemString: pem).last)
            let fromDER = try PrivateSigningKey(der: document.derBytes)
            #expect(fromDER.subjectPublicKeyInfo == (try PrivateSigningKey(pem: pem)).subjectPublicKeyInfo)
        }
    }

    @Test func aSigningKeyMatchesItsCertificate() throws {
        // The SPKI of the key equals the one in the certificate made from it.
        for fixture in try SigningFixture.make() {
            let certificate = try Certificate(derEncoded: fixture.certificate)
            var serializer = DER.Serializer()
            try serializer.serialize(certificate.publicKey)
            #expect(serializer.serializedBytes == fixture.key.subjectPublicKeyInfo, "\(fixture)")
        }
    }

    @Test func unusableKeysAreConfigurationErrors() {
        let bad: [(String, String)] = [
            ("P-384", CryptoTestKeys.p384SEC1),
            ("not PEM", "hello"),
            ("a certificate", "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n"),
            ("encrypted", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAMCAQE=\n-----END ENCRYPTED PRIVATE KEY-----\n"),
            ("truncated DER", "-----BEGIN PRIVATE KEY-----\nMAMCAQ==\n-----END PRIVATE KEY-----\n"),
        ]
        for (name, pem) in bad {
            do {
                _ = try PrivateSigningKey(pem: pem)
                Issue.record("\(name) was accepted")
            } catch {
                guard case .configuration = error else {
                    Issue.record("\(name): \(error)")
                    continue
                }
            }
        }
        expectCryptoAlert(.internalError) { () throws(TLSError) in _ = try PrivateSigningKey(der: [0x30, 0x00]) }
    }
}
