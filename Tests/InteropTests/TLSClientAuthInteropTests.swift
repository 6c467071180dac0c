import Foundation
import MirageDevices
import MiragePlatform
import MirageTLSCrypto
import MirageTestNetwork
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Client certificates both ways, in TLS 1.3 and 1.2. Our server asking
// for one (required or optional) from `openssl s_client -cert -key`, and
// refusing a client without one or with a server-only certificate, with the
// alert s_client reports; our client presenting one to `openssl s_server
// -Verify 1 -CAfile`, which prints the subject it verified, and failing
// with s_server's alert when it has none. The client certificate is the
// test PKI's `client` (CN=Mirage Test Client, EKU clientAuth).

@Suite("MirageTLS client certificates against openssl", .serialized, .interop(tools: ["openssl", "sh", "ss"], needsRoot: false))
struct TLSClientAuthInteropTests {
    /// Our server with the ECDSA leaf asking for client certificates, verified against the test CA.
    static func startServer(_ pki: TLSTestPKI, _ authentication: ClientAuthentication, version: ProtocolVersion)
        throws -> (loop: EventLoop, stack: TLSStack<SocketStack>, probe: TLSEchoServerProbe, port: UInt16)
    {
        var settings = TLSServerConfiguration(certificates: [try pki.certifiedKey("ecdsa")])
        settings.clientAuthentication = authentication
        settings.versions = [version]
        let loop = try EventLoop()
        let stack = try makeTLSStack(loop: loop, server: settings, caPEM: pki.caPEM)
        let probe = TLSEchoServerProbe(stack: stack, loop: loop)
        let port = try probe.listen()
        return (loop, stack, probe, port)
    }

    /// The DER of a PEM certificate file of the PKI.
    static func der(_ pki: TLSTestPKI, _ name: String) throws -> [UInt8] {
        try #require(pki.certifiedKey(name).chain.first)
    }

    @Test("our server requiring a certificate accepts s_client -cert -key and sees its chain", arguments: resumptionVersions)
    func serverAcceptsClientCertificate(_ version: ProtocolVersion) throws {
        let pki = try testPKI()
        let clientDER = try Self.der(pki, "client")
        let server = try Self.startServer(pki, .required, version: version)
        let client = try runOpenSSLClient(
            serverLoop: server.loop, port: server.port, caFile: pki.certificate("ca"), input: "signed\n",
            extra: ["-cert", pki.certificate("client"), "-key", pki.key("client"), "-msg"], versionFlags: [version.opensslFlag])
        let out = client.output().stdout
        #expect(client.status == 0, "\(client.output())")
        #expect(out.contains("echo: signed"), "\(out)")
        // -msg: our CertificateRequest arrived, s_client answered with its Certificate and CertificateVerify.
        #expect(opensslMessageCount(out, direction: "<<<", message: "CertificateRequest") == 1, "\(out)")
        #expect(opensslMessageCount(out, direction: ">>>", message: "Certificate") == 1, "\(out)")
        #expect(opensslMessageCount(out, direction: ">>>", message: "CertificateVerify") == 1, "\(out)")
        #expect(server.probe.accepted == 1)
        #expect(server.probe.record.negotiated?.version == version)
        #expect(server.probe.record.negotiated?.peerCertificates.first == clientDER)
        #expect(server.stack.statistics.handshakesCompleted == 1, "\(server.stack.statistics)")
    }

    @Test("our server requiring a certificate refuses s_client without one: certificate_required (1.3), handshake_failure (1.2)",
          arguments: resumptionVersions)
    func serverRefusesMissingClientCertificate(_ version: ProtocolVersion) throws {
        let pki = try testPKI()
        let server = try Self.startServer(pki, .required, version: version)
        let client = try runOpenSSLClient(
            serverLoop: server.loop, port: server.port, caFile: pki.certificate("ca"), input: "anonymous\n",
            extra: [], versionFlags: [version.opensslFlag])
        #expect(client.status != 0, "\(client.output())")
        let alert = version == .tls13 ? "alert certificate required" : "alert handshake failure"
        #expect(client.output().stderr.contains(alert), "\(client.output())")
        #expect(!client.output().stdout.contains("echo: anonymous"))
        #expect(server.probe.accepted == 0)
        #expect(server.stack.statistics.handshakesFailed == 1 && server.stack.statistics.alertsSent == 1,
                "\(server.stack.statistics)")
    }

    @Test("our server refuses a client certificate without the clientAuth EKU (unsupported_certificate)", arguments: resumptionVersions)
    func serverRefusesServerOnlyCertificate(_ version: ProtocolVersion) throws {
        let pki = try testPKI()
        let server = try Self.startServer(pki, .required, version: version)
        let client = try runOpenSSLClient(
            serverLoop: server.loop, port: server.port, caFile: pki.certificate("ca"), input: "wrong\n",
            extra: ["-cert", pki.certificate("ecdsa"), "-key", pki.key("ecdsa")], versionFlags: [version.opensslFlag])
        #expect(client.status != 0, "\(client.output())")
        #expect(client.output().stderr.contains("alert unsupported certificate"), "\(client.output())")
        #expect(server.probe.accepted == 0)
        #expect(server.stack.statistics.handshakesFailed == 1, "\(server.stack.statistics)")
    }

    @Test("our server with an optional certificate serves s_client without one, and with one sees it", arguments: resumptionVersions)
    func serverOptionalClientCertificate(_ version: ProtocolVersion) throws {
        let pki = try testPKI()
        let clientDER = try Self.der(pki, "client")
        let server = try Self.startServer(pki, .optional, version: version)
        let anonymous = try runOpenSSLClient(
            serverLoop: server.loop, port: server.port, caFile: pki.certificate("ca"), input: "anonymous\n",
            extra: ["-msg"], versionFlags: [version.opensslFlag])
        #expect(anonymous.status == 0, "\(anonymous.output())")
        #expect(anonymous.output().stdout.contains("echo: anonymous"), "\(anonymous.output())")
        #expect(opensslMessageCount(anonymous.output().stdout, direction: "<<<", message: "CertificateRequest") == 1)
        #expect(server.probe.record.negotiated?.peerCertificates == [])
        let signed = try runOpenSSLClient(
            serverLoop: server.loop, port: server.port, caFile: pki.certificate("ca"), input: "signed\n",
            extra: ["-cert", pki.certificate("client"), "-key", pki.key("client")], versionFlags: [version.opensslFlag])
        #expect(signed.status == 0, "\(signed.output())")
        #expect(server.probe.record.negotiated?.peerCertificates.first == clientDER)
        #expect(server.stack.statistics.handshakesCompleted == 2 && server.stack.statistics.handshakesFailed == 0,
                "\(server.stack.statistics)")
    }

    @Test("our client presents its certificate to openssl s_server -Verify 1, which verifies it", arguments: resumptionVersions)
    func clientPresentsCertificate(_ version: ProtocolVersion) throws {
        let pki = try testPKI()
        let (server, port) = try startOpenSSLServer(
            certificate: pki.certificate("ecdsa"), key: pki.key("ecdsa"),
            extra: ["-Verify", "1", "-CAfile", pki.certificate("ca"), "-verify_return_error", "-rev"],
            versionFlags: [version.opensslFlag])
        defer { _ = server.terminate(grace: 2) }
        let loop = try EventLoop()
        var client = TLSClientConfiguration(serverName: "localhost")
        client.certificates = [try pki.certifiedKey("client")]
        let stack = try makeTLSStack(loop: loop, client: client, caPEM: pki.caPEM)
        let record = try TLSClientProbe(stack: stack, loop: loop, message: "mutual\n", closeAfter: 7).run(port: port, serverName: "localhost")
        #expect(record.failure == nil, "\(String(describing: record.failure)); s_server: \(server.output())")
        #expect(record.negotiated?.version == version)
        #expect(record.text == "lautum\n", "\(record.text.debugDescription)")
        #expect(server.wait(timeout: 10) != nil)
        let said = server.output()
        let out = said.stdout + said.stderr
        #expect(out.contains("depth=0 CN = Mirage Test Client\nverify return:1"), "\(out)")
        #expect(out.contains("Peer certificate: CN = Mirage Test Client"), "\(out)")
        #expect(out.contains("Verification: OK"), "\(out)")
        #expect(out.contains("Protocol version: \(version.opensslName)"), "\(out)")
    }

    @Test("our client without a certificate is refused by s_server -Verify 1 with its alert", arguments: resumptionVersions)
    func clientWithoutCertificateRefused(_ version: ProtocolVersion) throws {
        let pki = try testPKI()
        let (server, port) = try startOpenSSLServer(
            certificate: pki.certificate("ecdsa"), key: pki.key("ecdsa"),
            extra: ["-Verify", "1", "-CAfile", pki.certificate("ca"), "-verify_return_error", "-rev"],
            versionFlags: [version.opensslFlag])
        defer { _ = server.terminate(grace: 2) }
        let loop = try EventLoop()
        let stack = try makeTLSStack(loop: loop, client: TLSClientConfiguration(serverName: "localhost"), caPEM: pki.caPEM)
        let record = try TLSClientProbe(stack: stack, loop: loop, message: "anonymous\n", closeAfter: 10)
            .run(port: port, serverName: "localhost")
        let expected: AlertDescription = version == .tls13 ? .certificateRequired : .handshakeFailure
        #expect(record.failure == .alertReceived(expected), "\(String(describing: record.failure))")
        #expect(record.received.isEmpty)
        _ = server.wait(timeout: 10)
        let said = server.output()
        #expect((said.stdout + said.stderr).contains("peer did not return a certificate"), "\(said)")
    }
}
