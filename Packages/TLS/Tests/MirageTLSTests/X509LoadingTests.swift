import Crypto
import Foundation
import MirageTLSCrypto
import Testing
import X509

@Suite("X509 PEM, trust roots and development certificates")
struct X509LoadingTests {
    @Test("PEM encode then parse gives back the bytes, label and all")
    func pemRoundTrip() throws {
        let der = (0..<200).map { UInt8($0 % 256) }
        let text = PEM.encode(der, label: "CERTIFICATE")
        #expect(text.hasPrefix("-----BEGIN CERTIFICATE-----\n"))
        #expect(text.split(separator: "\n").allSatisfy { $0.count <= 64 })
        #expect(try PEM.blocks(text) == [PEM.Block(label: "CERTIFICATE", der: der)])
    }

    @Test("a bundle with comments, CRLF and other blocks yields its certificates in order")
    func bundle() throws {
        let pki = try TestPKI()
        let text = "# Test Root\r\n" + PEM.encode(pki.root.der, label: "CERTIFICATE").replacingOccurrences(of: "\n", with: "\r\n")
            + "some explanatory text\n" + PEM.encode([1, 2, 3], label: "PRIVATE KEY")
            + PEM.encode(pki.intermediate.der, label: "CERTIFICATE")
        #expect(try PEM.certificates(text) == [pki.root.der, pki.intermediate.der])
        #expect(try PEM.privateKey(text).der == [1, 2, 3])
        let roots = try TrustRoots(pemBundle: text)
        #expect(roots.count == 2)
    }

    @Test("broken PEM is refused with a configuration error", arguments: [
        "-----BEGIN CERTIFICATE-----\nAAAA\n",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "-----BEGIN CERTIFICATE-----\nA*A=\n-----END CERTIFICATE-----\n",
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "no PEM here at all\n",
    ])
    func brokenPEM(text: String) {
        #expect {
            _ = try PEM.certificates(text)
        } throws: { error in
            guard case .configuration = error as? TLSError else { return false }
            return true
        }
    }

    @Test("a PEM bundle holding a certificate that does not parse is refused")
    func bundleWithGarbage() {
        let text = PEM.encode([0x30, 0x03, 0x02, 0x01, 0x05], label: "CERTIFICATE")
        #expect(throws: TLSError.self) { _ = try TrustRoots(pemBundle: text) }
    }

    @Test("TrustRoots(certificates:) skips what does not parse and counts it")
    func rootsSkipGarbage() throws {
        let pki = try TestPKI()
        let roots = TrustRoots(certificates: [pki.root.der, [0x30, 0x00]])
        #expect(roots.count == 1)
        #expect(roots.skippedCount == 1)
    }

    @Test("the system bundle loads when the file exists",
          .enabled(if: FileManager.default.fileExists(atPath: TrustRoots.systemBundlePath)))
    func systemBundle() throws {
        let roots = try TrustRoots.system()
        #expect(roots.count > 0)
        // Every root of a distribution's bundle should parse, and every block is a root.
        #expect(roots.skippedCount == 0)
        let text = try String(contentsOfFile: TrustRoots.systemBundlePath, encoding: .utf8)
        #expect(roots.count == text.components(separatedBy: "-----BEGIN CERTIFICATE-----").count - 1)
    }

    @Test("a missing bundle file is a configuration error")
    func missingBundle() {
        #expect(throws: TLSError.self) { _ = try TrustRoots.load(bundleAt: "/nonexistent/ca-bundle.crt") }
    }

    @Test("a development certificate carries the names, addresses, usages and 30-day validity asked for")
    func developmentCertificateContents() throws {
        let made = try DevelopmentCertificate.generate(names: ["localhost", "mirage.test"],
                                                       ipAddresses: ["127.0.0.1", "::1"], now: TestPKI.now)
        let certificate = try Certificate(derEncoded: made.certificateDER)
        #expect(certificate.issuer == certificate.subject)
        #expect(certificate.notValidAfter == TestPKI.now + 30 * 24 * 60 * 60)
        #expect(certificate.notValidBefore <= TestPKI.now)
        let names = try #require(try certificate.extensions.subjectAlternativeNames)
        #expect(Array(names) == [
            .dnsName("localhost"), .dnsName("mirage.test"),
            .ipAddress(.init(contentBytes: [127, 0, 0, 1])),
            .ipAddress(.init(contentBytes: Array(repeating: 0, count: 15) + [1])),
        ])
        #expect(try certificate.extensions.extendedKeyUsage.map(Array.init) == [.serverAuth])
        #expect(try certificate.extensions.keyUsage?.digitalSignature == true)
        #expect(try PEM.certificates(made.certificatePEM) == [made.certificateDER])
        #expect(try PEM.privateKey(made.privateKeyPEM).label == "PRIVATE KEY")
        // The certificate's key is the PEM key's.
        let key = try P256.Signing.PrivateKey(pemRepresentation: made.privateKeyPEM)
        #expect(certificate.publicKey == Certificate.PublicKey(key.publicKey))
    }

    @Test("a trusted development certificate verifies for its names and addresses only", arguments: [
        ("localhost", true), ("127.0.0.1", true), ("::1", true), ("example.com", false), ("127.0.0.2", false),
    ])
    func developmentCertificateVerifies(name: String, matches: Bool) async throws {
        let made = try DevelopmentCertificate.generate(names: ["localhost"], ipAddresses: ["127.0.0.1", "::1"],
                                                       now: TestPKI.now)
        let verifier = X509CertificateVerifier(roots: TrustRoots(certificates: [made.certificateDER]),
                                               clock: { TestPKI.now + 60 })
        let result = await verifier.evaluate(.init(chain: [made.certificateDER], serverName: name, peerIsServer: true))
        #expect(result == (matches ? .trusted : .rejected(.hostnameMismatch(expected: name))))
    }

    @Test("the fingerprint is SHA-256 as colon-separated upper-case hex")
    func fingerprintFormat() throws {
        let made = try DevelopmentCertificate.generate(names: ["localhost"], ipAddresses: [])
        let expected = SHA256.hash(data: made.certificateDER).map { String(format: "%02X", $0) }.joined(separator: ":")
        #expect(made.sha256Fingerprint == expected)
        #expect(made.sha256Fingerprint.count == 32 * 3 - 1)
        #expect(DevelopmentCertificate.fingerprint([]) ==
            "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55")
    }

    @Test("openssl prints the same fingerprint", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl")))
    func fingerprintMatchesOpenSSL() throws {
        let made = try DevelopmentCertificate.generate(names: ["localhost"], ipAddresses: ["127.0.0.1"])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["x509", "-noout", "-fingerprint", "-sha256"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(made.certificatePEM.utf8))
        try input.fileHandleForWriting.close()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        // e.g. "sha256 Fingerprint=AB:CD:…" (OpenSSL 3) or "SHA256 Fingerprint=…" (1.1)
        #expect(printed.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("Fingerprint=" + made.sha256Fingerprint))
    }

    @Test("openssl verify -x509_strict accepts the development certificate as its own anchor, for its name and address",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl")))
    func developmentCertificateOpenSSLVerify() throws {
        let made = try DevelopmentCertificate.generate(names: ["localhost"], ipAddresses: ["127.0.0.1"])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("dev-\(UUID().uuidString).pem").path
        try made.certificatePEM.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        func verify(_ extra: [String]) throws -> Int32 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = ["verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", path] + extra + [path]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus
        }
        #expect(try verify(["-verify_hostname", "localhost"]) == 0)
        #expect(try verify(["-verify_ip", "127.0.0.1"]) == 0)
        #expect(try verify(["-verify_hostname", "example.com"]) != 0)
    }

    @Test("generating without a name or with a bad address is a configuration error")
    func developmentCertificateErrors() {
        #expect(throws: TLSError.self) { _ = try DevelopmentCertificate.generate(names: [], ipAddresses: []) }
        #expect(throws: TLSError.self) { _ = try DevelopmentCertificate.generate(names: [], ipAddresses: ["300.1.1.1"]) }
        #expect(throws: TLSError.self) { _ = try DevelopmentCertificate.generate(names: ["bad name"], ipAddresses: []) }
    }
}
