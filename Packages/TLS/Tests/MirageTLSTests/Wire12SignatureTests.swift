// TLS 1.2 signatures in MirageTLSCrypto: RSA PKCS#1 v1.5 signing (RFC 5246
// §4.7, RFC 8017 §8.2) checked byte for byte against OpenSSL, and
// verification of every scheme in SignatureScheme.tls12, including ECDSA
// P-384 and RSA-PSS with SHA-512.

import Crypto
import MirageTLS
import MirageTLSCrypto
import Testing
import X509
import _CryptoExtras

@Suite("Wire12: TLS 1.2 signatures")
struct Wire12SignatureTests {
    let crypto = SwiftCryptoProvider()
    let message = Array("TLS 1.2 ServerKeyExchange".utf8)

    /// `openssl dgst -sha256|-sha384|-sha512 -sign` with CryptoTestKeys.rsaPKCS1 over `message`
    /// (OpenSSL 3.0.19): PKCS#1 v1.5 is deterministic, so ours must be these bytes.
    static let opensslPKCS1: [(SignatureScheme, [UInt8])] = [
        (.rsaPKCS1SHA256, RFC8448.hex("""
            7e6986fc9f0bedd8087829665b05f712da9ee47ac214627e4425886ce28dff2c3022cbf237038762a3801b1f54e2e4184bdf706513ee05c4
            fb8ebc34774dbe200644105275815b4004e1920e3ddf390ac1c6797fea55ce4bbaed8baf5c44409bd729df2986d7aaab7b4f18902ff7d902
            467bb12062abf066ae9bcd5f9b2af9f193776afb9f224873b888d87c83f64e6351538538170a50d695a0f19acbbd3cf84b6aeb9721b9252a
            e3da78db800e14f71204c3e5017aed91cdb373ce3105d182bde9b8866ee2040b9edfa42ca23b7b5bb10e37bff6426a00f73f1eaafc047473
            9d668b078ab0985c06d7b6b761b74d260a420bc60e2b0f48fc9c4a28412713f3
            """)),
        (.rsaPKCS1SHA384, RFC8448.hex("""
            1b65611351e831e53d5934129d60e36f76319532d715097e881361861e5b8e34df25d42814b7844648e3f098339f9bf3514c9622860bdaf0
            c39d2726b82c2501d4eaa406039e18523f0687c74a14729ce48c2522968e7ac50a126c3f8c1c54e0d58ef89c005f3f11be9cfbc341b3e8e7
            5913f36ddc9d3d1ec21f2fb23d2b660c7ade445174850f038b4afccc1d4e5a06b4cfe4df92cbc8a2da36f6917006b632193f7bc276a5b690
            c099adfb5cb1409bc6914811744c64b3e57e88097839f8a68ff4fb825014fa7d0b8ed0273067276f88ac68b7af23f1256b3de8e69c717e6e
            24efa506300a623d3b4b5e625a0c0311dfb66598a6a11dc810b37200ff9dda2c
            """)),
        (.rsaPKCS1SHA512, RFC8448.hex("""
            4bca6b769a1e745fe2343afdfad308e25dfebeccb83f3be0da5fda059337cf8d50de153885526dc97f0a764de8f4f75788c3ed62d856d8ca
            71bd380436718b71cab52b2f8e00a58e093e8da99cc43ebd31a39e56aff2bfb87467a930fc10fe19a6741386eb37c74a02350842424480ed
            79365d5ffba8b050ee1966472cb5afa8c85837c197148a081483861dc8764a75f878c846727c742978be0df2369c4ee09bf0250ec86f31c7
            33b65a54a8a5b1ec4f754a5e3d7515cf8ef09307ce46db04e1e2174a533d840aee19ed586e64557f55834124a8f6998b3362e1f3f8566e69
            f911005b28878fa290d7514b548d73a6c8e051f1892604cb51e49beb76aea763
            """)),
    ]

    @Test("RSA PKCS#1 v1.5 signatures are OpenSSL's bytes, and verify", arguments: 0..<3)
    func pkcs1MatchesOpenSSL(_ index: Int) throws {
        let (scheme, expected) = Self.opensslPKCS1[index]
        let key = try PrivateSigningKey(pem: CryptoTestKeys.rsaPKCS1)
        #expect(try key.sign(message, scheme: scheme) == expected)
        let certificate = try SigningFixture.make()[2].certificate
        try crypto.verify(signature: expected, scheme: scheme, message: message, certificate: certificate)
        var other = message
        other[0] ^= 1
        expectCryptoAlert(.decryptError) { () throws(TLSError) in
            try crypto.verify(signature: expected, scheme: scheme, message: other, certificate: certificate)
        }
        // The same signature under PSS, or another PKCS#1 hash, does not verify.
        for wrong in [SignatureScheme.rsaPSSRSAESHA256, .rsaPKCS1SHA256, .rsaPKCS1SHA384, .rsaPKCS1SHA512] where wrong != scheme {
            expectCryptoAlert(.decryptError, "\(wrong)") { () throws(TLSError) in
                try crypto.verify(signature: expected, scheme: wrong, message: message, certificate: certificate)
            }
        }
    }

    @Test("RSA-PSS with SHA-512 signs and verifies")
    func pssSHA512() throws {
        let fixture = try SigningFixture.make()[2]
        let signature = try fixture.key.sign(message, scheme: .rsaPSSRSAESHA512)
        try crypto.verify(signature: signature, scheme: .rsaPSSRSAESHA512, message: message, certificate: fixture.certificate)
        let publicKey = try _RSA.Signing.PrivateKey(pemRepresentation: CryptoTestKeys.rsaPKCS1).publicKey
        #expect(publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA512.hash(data: message), padding: .PSS))
    }

    @Test("ECDSA P-384 with SHA-384 verifies against a P-384 certificate; other schemes do not fit it")
    func p384() throws {
        let key = P384.Signing.PrivateKey()
        let certificate = try selfSignedCertificate(Certificate.PrivateKey(key), algorithm: .ecdsaWithSHA384)
        let signature = Array(try key.signature(for: SHA384.hash(data: message)).derRepresentation)
        try crypto.verify(signature: signature, scheme: .ecdsaSecp384r1SHA384, message: message, certificate: certificate)
        var other = message
        other[1] ^= 1
        expectCryptoAlert(.decryptError) { () throws(TLSError) in
            try crypto.verify(signature: signature, scheme: .ecdsaSecp384r1SHA384, message: other, certificate: certificate)
        }
        expectCryptoAlert(.decryptError) { () throws(TLSError) in
            try crypto.verify(signature: [0x30, 0x00], scheme: .ecdsaSecp384r1SHA384, message: message, certificate: certificate)
        }
        for wrong in [SignatureScheme.ecdsaSecp256r1SHA256, .ed25519, .rsaPKCS1SHA384, .rsaPSSRSAESHA384] {
            expectCryptoAlert(.illegalParameter, "\(wrong)") { () throws(TLSError) in
                try crypto.verify(signature: signature, scheme: wrong, message: message, certificate: certificate)
            }
        }
    }

    @Test("the provider verifies TLS 1.3's schemes and every TLS 1.2 scheme, each once")
    func supportedSchemes() {
        let schemes = crypto.supportedSignatureSchemes
        #expect(Array(schemes.prefix(SignatureScheme.tls13.count)) == SignatureScheme.tls13)
        #expect(Set(schemes.map(\.rawValue)) == Set((SignatureScheme.tls13 + SignatureScheme.tls12).map(\.rawValue)))
        #expect(schemes.count == Set(schemes.map(\.rawValue)).count)
    }

    @Test("each key signs every scheme it lists, and each verifies against its certificate (TLS 1.2 content)")
    func everyListedScheme() throws {
        let content = ServerKeyExchangeECDHE.signedContent(
            clientRandom: [UInt8](repeating: 1, count: 32), serverRandom: [UInt8](repeating: 2, count: 32),
            params: ServerKeyExchangeECDHE(group: .x25519, publicKey: [UInt8](repeating: 9, count: 32), scheme: .ed25519, signature: []).params)
        var verified = 0
        for fixture in try SigningFixture.make() {
            for scheme in fixture.key.signatureSchemes {
                #expect(SignatureScheme.tls12.contains(scheme))
                let signature = try fixture.key.sign(content, scheme: scheme)
                try crypto.verify(signature: signature, scheme: scheme, message: content, certificate: fixture.certificate)
                verified += 1
            }
        }
        #expect(verified == 8)
    }
}
