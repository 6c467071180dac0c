import Crypto
import Foundation
import MirageTLSCrypto
import Testing
import X509

@Suite("X509 certified key loading")
struct X509CertifiedKeyTests {
    /// The key signs a message the provider verifies against the chain's leaf.
    func signsForLeaf(_ certified: CertifiedKey) throws {
        let message = Array("TLS 1.3, server CertificateVerify".utf8)
        let signature = try certified.key.sign(message, scheme: .ecdsaSecp256r1SHA256)
        try SwiftCryptoProvider().verify(signature: signature, scheme: .ecdsaSecp256r1SHA256, message: message,
                                         certificate: certified.chain[0])
    }

    @Test("a chain PEM and a PKCS#8 key load; serverNames are the leaf's SAN DNS names")
    func loadChain() throws {
        let pki = try TestPKI()
        let leaf = try TestPKI.leafWithKey(issuer: pki.intermediate, dnsNames: ["www.example.com", "*.example.org"],
                                           ipAddresses: [[192, 0, 2, 1]])
        let chainPEM = PEM.encode(leaf.der, label: "CERTIFICATE") + PEM.encode(pki.intermediate.der, label: "CERTIFICATE")
        let certified = try CertifiedKey.load(certificateChainPEM: chainPEM, privateKeyPEM: leaf.key.pemRepresentation)
        #expect(certified.chain == [leaf.der, pki.intermediate.der])
        #expect(certified.serverNames == ["www.example.com", "*.example.org"])
        #expect(certified.matches(serverName: "a.example.org"))
        #expect(!certified.matches(serverName: "192.0.2.1"))
        try signsForLeaf(certified)
    }

    @Test("a SEC1 EC PRIVATE KEY loads too")
    func loadSEC1() throws {
        let pki = try TestPKI()
        let leaf = try TestPKI.leafWithKey(issuer: pki.intermediate)
        let sec1 = PEM.encode(Array(leaf.key.derRepresentation), label: "EC PRIVATE KEY")
        let certified = try CertifiedKey.load(certificateChainPEM: PEM.encode(leaf.der, label: "CERTIFICATE"),
                                              privateKeyPEM: sec1)
        try signsForLeaf(certified)
    }

    @Test("a key that is not the leaf's is a configuration error")
    func mismatchedKey() throws {
        let pki = try TestPKI()
        let leaf = try TestPKI.leafWithKey(issuer: pki.intermediate)
        #expect {
            _ = try CertifiedKey.load(certificateChainPEM: PEM.encode(leaf.der, label: "CERTIFICATE"),
                                      privateKeyPEM: P256.Signing.PrivateKey().pemRepresentation)
        } throws: { error in
            guard case .configuration(let detail) = error as? TLSError else { return false }
            return detail.contains("does not belong")
        }
    }

    @Test("a chain PEM whose certificate does not parse, or no key block, is a configuration error")
    func brokenInputs() throws {
        let pki = try TestPKI()
        let leaf = try TestPKI.leafWithKey(issuer: pki.intermediate)
        let garbage = PEM.encode([0x30, 0x03, 0x02, 0x01, 0x05], label: "CERTIFICATE")
        #expect(throws: TLSError.self) {
            _ = try CertifiedKey.load(certificateChainPEM: garbage, privateKeyPEM: leaf.key.pemRepresentation)
        }
        #expect(throws: TLSError.self) {
            _ = try CertifiedKey.load(certificateChainPEM: PEM.encode(leaf.der, label: "CERTIFICATE"),
                                      privateKeyPEM: PEM.encode(leaf.der, label: "CERTIFICATE"))
        }
    }

    @Test("files load like text")
    func loadFiles() throws {
        let made = try DevelopmentCertificate.generate(names: ["localhost"], ipAddresses: ["127.0.0.1"])
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("x509-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let certificatePath = directory.appendingPathComponent("cert.pem").path
        let keyPath = directory.appendingPathComponent("key.pem").path
        try made.certificatePEM.write(toFile: certificatePath, atomically: true, encoding: .utf8)
        try made.privateKeyPEM.write(toFile: keyPath, atomically: true, encoding: .utf8)
        let certified = try CertifiedKey.load(certificateChainFile: certificatePath, privateKeyFile: keyPath)
        #expect(certified.chain == [made.certificateDER])
        #expect(certified.serverNames == ["localhost"])
        #expect(throws: TLSError.self) {
            _ = try CertifiedKey.load(certificateChainFile: directory.appendingPathComponent("none").path,
                                      privateKeyFile: keyPath)
        }
    }

    @Test("DevelopmentCertificate.make gives a key that signs for its certificate, named for SNI")
    func makeDevelopmentKey() async throws {
        let made = try DevelopmentCertificate.make(names: ["localhost", "mirage.test"], ipAddresses: ["127.0.0.1"],
                                                   now: TestPKI.now)
        #expect(made.key.serverNames == ["localhost", "mirage.test"])
        #expect(made.key.matches(serverName: "MIRAGE.test"))
        #expect(try PEM.certificates(made.certificatePEM) == made.key.chain)
        #expect(made.sha256Fingerprint == DevelopmentCertificate.fingerprint(made.key.chain[0]))
        try signsForLeaf(made.key)
        // Trusting the certificate itself is enough for our verifier.
        let verifier = X509CertificateVerifier(roots: TrustRoots(certificates: made.key.chain), clock: { TestPKI.now })
        #expect(await verifier.evaluate(.init(chain: made.key.chain, serverName: "127.0.0.1", peerIsServer: true)) == .trusted)
    }
}
