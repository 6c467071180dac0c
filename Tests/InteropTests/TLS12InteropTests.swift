import Foundation
import MirageDevices
import MiragePlatform
import MirageTLSCrypto
import MirageTestNetwork
import Testing

#if canImport(Glibc)
import Glibc
#endif

// MirageTLS's TLS 1.2 against OpenSSL 3 and curl: our client (offering
// TLS 1.3 and 1.2) against `openssl s_server -tls1_2`, our server against
// `openssl s_client -tls1_2`, over every TLS 1.2 suite the certificate's
// key allows × X25519/P-256, data both ways, with the extended master
// secret and renegotiation_info checked from openssl's side; curl pinned to
// TLS 1.2 against `mirage-www --tls`; and the refusals: a TLS 1.1 client,
// a CBC-only client, and a ServerHello downgraded by a relay that hides
// our TLS 1.3 offer from a 1.3-capable s_server.

/// One cell of the TLS 1.2 matrix.
struct TLS12MatrixCase: Sendable, CustomTestStringConvertible {
    var group: NamedGroup
    var suite: CipherSuite
    var leaf: LeafKind
    var testDescription: String { "\(group) \(suite.opensslName) \(leaf.rawValue)" }

    /// ECDSA P-256 and Ed25519 leaves × the three ECDHE_ECDSA suites, RSA-2048 × the three ECDHE_RSA ones, × two groups.
    static let all: [TLS12MatrixCase] = [NamedGroup.x25519, .secp256r1].flatMap { group in
        LeafKind.allCases.flatMap { leaf in leaf.tls12Suites.map { TLS12MatrixCase(group: group, suite: $0, leaf: leaf) } }
    }
}

@Suite("MirageTLS 1.2 against openssl and curl", .serialized, .interop(tools: ["openssl", "curl", "sh", "ss"], needsRoot: false))
struct TLS12InteropTests {
    @Test("the TLS 1.2 matrix has 18 cells: 3 suites for each of 3 key types × 2 groups")
    func matrixSize() {
        #expect(TLS12MatrixCase.all.count == 18)
        #expect(Set(TLS12MatrixCase.all.map(\.suite)) == Set(CipherSuite.tls12))
    }

    @Test("our client (1.3 and 1.2 offered) against openssl s_server -tls1_2: suite, group, EMS, data both ways",
          arguments: TLS12MatrixCase.all)
    func clientAgainstOpenSSL12(_ c: TLS12MatrixCase) throws {
        let pki = try testPKI()
        let (server, port) = try startOpenSSLServer(
            certificate: pki.certificate(c.leaf.rawValue), key: pki.key(c.leaf.rawValue),
            extra: ["-cipher", c.suite.opensslName, "-groups", c.group.opensslName, "-rev", "-brief", "-trace"],
            versionFlags: ["-tls1_2"])
        defer { _ = server.terminate(grace: 2) }
        let loop = try EventLoop()
        let stack = try makeTLSStack(loop: loop, client: TLSClientConfiguration(serverName: "localhost"), caPEM: pki.caPEM)
        let message = "hello from MirageTLS 1.2\n"
        let probe = TLSClientProbe(stack: stack, loop: loop, message: message, closeAfter: message.utf8.count)
        let record = try probe.run(port: port, serverName: "localhost")
        #expect(record.connected, "no handshake: \(String(describing: record.failure)); s_server: \(server.output())")
        #expect(record.failure == nil, "\(String(describing: record.failure))")
        #expect(record.negotiated?.version == .tls12)
        #expect(record.negotiated?.cipherSuite == c.suite)
        #expect(record.negotiated?.group == c.group)
        #expect(record.negotiated?.resumed == false)
        #expect(record.text == "2.1 SLTegariM morf olleh\n", "received \(record.text.debugDescription)")
        #expect(server.wait(timeout: 10) != nil, "s_server did not end after our close")
        let said = server.output()
        let out = said.stdout + said.stderr  // -brief writes its summary to stderr, -trace to stdout
        #expect(out.contains("Protocol version: TLSv1.2"), "\(said.stderr)")
        #expect(out.contains("Ciphersuite: \(c.suite.opensslName)"), "\(said.stderr)")
        // Our ClientHello asked for the extended master secret and sent
        // renegotiation_info (or its SCSV); s_server's ServerHello agreed to both.
        let clientHello = opensslTraceMessages(said.stdout, named: "ClientHello").first ?? ""
        #expect(clientHello.contains("extended_master_secret(23)"), "\(clientHello)")
        #expect(clientHello.contains("renegotiate(65281)") || clientHello.contains("TLS_EMPTY_RENEGOTIATION_INFO_SCSV"),
                "\(clientHello)")
        let serverHello = opensslTraceMessages(said.stdout, named: "ServerHello").first ?? ""
        #expect(serverHello.contains("extended_master_secret(23)"), "\(serverHello)")
        #expect(serverHello.contains("renegotiate(65281)"), "\(serverHello)")
    }

    @Test("openssl s_client -tls1_2 against our server: verified chain, suite, group, EMS, secure renegotiation, data both ways",
          arguments: TLS12MatrixCase.all)
    func serverAgainstOpenSSL12(_ c: TLS12MatrixCase) throws {
        let pki = try testPKI()
        let loop = try EventLoop()
        let stack = try makeTLSStack(loop: loop, server: TLSServerConfiguration(certificates: [pki.certifiedKey(c.leaf.rawValue)]))
        let probe = TLSEchoServerProbe(stack: stack, loop: loop)
        let port = try probe.listen()
        // In TLS 1.2 the client's supported_groups also names the curves it
        // accepts for the server's ECDSA key (RFC 8422 §4, as RFC 4492 §4: a server MUST NOT
        // negotiate an ECC suite it cannot complete with the client's curves): s_client
        // offering X25519 alone refuses a P-256 certificate ("wrong curve"),
        // so it lists P-256 after X25519 there (see x25519OnlyClientAndP256Certificate).
        let groups = c.leaf == .ecdsaP256 && c.group == .x25519 ? "X25519:P-256" : c.group.opensslName
        let client = try startOpenSSLClient(
            port: port, caFile: pki.certificate("ca"), input: "hello from s_client 1.2\n",
            extra: ["-cipher", c.suite.opensslName, "-groups", groups], versionFlags: ["-tls1_2"])
        defer { _ = client.terminate(grace: 2) }
        try runLoop(loop, seconds: 20) { !client.isRunning }
        let out = client.output().stdout
        #expect(client.status == 0, "s_client: \(client.output())")
        #expect(probe.accepted == 1)
        #expect(probe.record.negotiated?.version == .tls12)
        #expect(probe.record.negotiated?.cipherSuite == c.suite)
        #expect(probe.record.negotiated?.group == c.group)
        #expect(probe.record.text == "hello from s_client 1.2\n", "\(probe.record.text.debugDescription)")
        #expect(out.contains("New, TLSv1.2, Cipher is \(c.suite.opensslName)"), "\(out)")
        #expect(out.contains("Server Temp Key: \(c.group.opensslTempKey)"), "\(out)")
        // RSA in TLS 1.2 may sign with PSS (RFC 8446 §4.2.3 applies rsa_pss_rsae to 1.2) or PKCS#1 v1.5.
        let signature = out.split(separator: "\n").first { $0.hasPrefix("Peer signature type: ") }.map(String.init) ?? ""
        let expectedSignatures = c.leaf == .rsa2048 ? ["RSA-PSS", "RSA"] : [c.leaf.opensslSignatureType]
        #expect(expectedSignatures.contains(String(signature.dropFirst("Peer signature type: ".count))), "\(out)")
        #expect(out.contains("Verify return code: 0 (ok)"), "\(out)")
        #expect(out.contains("Extended master secret: yes"), "\(out)")
        #expect(out.contains("Secure Renegotiation IS supported"), "\(out)")
        #expect(out.contains("echo: hello from s_client 1.2"), "\(out)")
        #expect(stack.statistics.handshakesCompleted == 1 && stack.statistics.handshakesFailed == 0, "\(stack.statistics)")
    }

    @Test("a TLS 1.2 client whose supported_groups (X25519 only) excludes our ECDSA certificate's curve gets handshake_failure, as from openssl s_server; with an Ed25519 chain too, it gets that one")
    func x25519OnlyClientAndP256Certificate() throws {
        let pki = try testPKI()
        // What OpenSSL's own server does with this client: "no shared cipher", handshake_failure.
        let (reference, referencePort) = try startOpenSSLServer(
            certificate: pki.certificate("ecdsa"), key: pki.key("ecdsa"), extra: ["-rev"], versionFlags: ["-tls1_2"])
        defer { _ = reference.terminate(grace: 2) }
        let toReference = try startOpenSSLClient(
            port: referencePort, caFile: pki.certificate("ca"), input: "hi\n", extra: ["-groups", "X25519"], versionFlags: ["-tls1_2"])
        defer { _ = toReference.terminate(grace: 2) }
        _ = toReference.wait(timeout: 20)
        #expect(toReference.output().stderr.contains("alert handshake failure"), "\(toReference.output())")

        let loop = try EventLoop()
        let stack = try makeTLSStack(loop: loop, server: TLSServerConfiguration(certificates: [pki.certifiedKey("ecdsa")]))
        let probe = TLSEchoServerProbe(stack: stack, loop: loop)
        let port = try probe.listen()
        let client = try runOpenSSLClient(
            serverLoop: loop, port: port, caFile: pki.certificate("ca"), input: "hi\n", extra: ["-groups", "X25519"],
            versionFlags: ["-tls1_2"])
        #expect(client.status != 0, "\(client.output())")
        #expect(client.output().stderr.contains("alert handshake failure"), "\(client.output())")
        #expect(probe.accepted == 0)

        // With an Ed25519 chain beside the ECDSA one, our server serves that client with it.
        let bothLoop = try EventLoop()
        let both = try makeTLSStack(
            loop: bothLoop, server: TLSServerConfiguration(certificates: [pki.certifiedKey("ecdsa"), pki.certifiedKey("ed25519")]))
        let bothProbe = TLSEchoServerProbe(stack: both, loop: bothLoop)
        let bothPort = try bothProbe.listen()
        let served = try runOpenSSLClient(
            serverLoop: bothLoop, port: bothPort, caFile: pki.certificate("ca"), input: "hi\n", extra: ["-groups", "X25519"],
            versionFlags: ["-tls1_2"])
        #expect(served.status == 0, "\(served.output())")
        #expect(served.output().stdout.contains("Peer signature type: ed25519"), "\(served.output())")
        #expect(served.output().stdout.contains("echo: hi"), "\(served.output())")
        #expect(bothProbe.record.negotiated?.group == .x25519)
    }

    @Test("curl --tlsv1.2 --tls-max 1.2 fetches slides from mirage-www --tls (ECDSA and RSA certificates)",
          arguments: [LeafKind.ecdsaP256, .rsa2048])
    func curlTLS12AgainstMirageWWW(_ leaf: LeafKind) throws {
        let pki = try testPKI()
        let www = try startTLSWWW(["--tls", "--cert", pki.certificate(leaf.rawValue), "--key", pki.key(leaf.rawValue), "--port", "0"])
        defer { _ = www.process.terminate(grace: 5) }
        let port = try #require(www.url.split(separator: ":").last.flatMap { UInt16($0.prefix { $0 != "/" }) }, "\(www.url)")
        for slide in ["/slides/1.html", "/slides/2.html"] {
            let out = try runCommand(
                ["curl", "-sS", "-v", "--fail", "--tlsv1.2", "--tls-max", "1.2", "--cacert", pki.certificate("ca"),
                 "-w", "\\n%{http_version} %{ssl_verify_result}", "https://localhost:\(port)\(slide)"], timeout: 30)
            #expect(out.succeeded, "\(out)")
            let expected = try String(contentsOfFile: siteFile(slide), encoding: .utf8)
            #expect(out.stdout.hasPrefix(expected), "\(slide): \(out.stdout.prefix(200))")
            #expect(out.stdout.hasSuffix("\n1.1 0"), "\(out.stdout.suffix(40))")
            // curl -v: "* SSL connection using TLSv1.2 / ECDHE-ECDSA-AES128-GCM-SHA256"
            let line = out.stderr.split(separator: "\n").first { $0.contains("SSL connection using") }.map(String.init) ?? ""
            #expect(line.contains("TLSv1.2 / "), "\(out.stderr)")
            #expect(leaf.tls12Suites.contains { line.hasSuffix(" / " + $0.opensslName) }, "\(line)")
        }
        waitForStatusLine(www.process, containing: ["tls 2 handshakes (0 resumed), 0 failed"], timeout: 10)
        let stopped = www.process.terminate(grace: 10)
        #expect(stopped == 0, "\(www.process.output())")
    }

    @Test("a TLS 1.1 client (openssl s_client -tls1_1) is refused with protocol_version")
    func refusesTLS11() throws {
        let pki = try testPKI()
        let loop = try EventLoop()
        let stack = try makeTLSStack(loop: loop, server: TLSServerConfiguration(certificates: [pki.certifiedKey("ecdsa")]))
        let probe = TLSEchoServerProbe(stack: stack, loop: loop)
        let port = try probe.listen()
        let client = try startOpenSSLClient(
            port: port, caFile: pki.certificate("ca"), input: "hi\n", extra: ["-cipher", "DEFAULT@SECLEVEL=0"],
            versionFlags: ["-tls1_1"])
        defer { _ = client.terminate(grace: 2) }
        try runLoop(loop, seconds: 20) { !client.isRunning }
        #expect(client.status != 0, "\(client.output())")
        // "…:tlsv1 alert protocol version:…SSL alert number 70"
        #expect(client.output().stderr.contains("alert protocol version"), "\(client.output())")
        #expect(probe.accepted == 0)
        #expect(stack.statistics.handshakesFailed == 1 && stack.statistics.alertsSent == 1, "\(stack.statistics)")
    }

    @Test("our server refuses a TLS 1.2 client that leaves out the extended master secret (RFC 7627) with handshake_failure")
    func serverRequiresExtendedMasterSecret() throws {
        let pki = try testPKI()
        let loop = try EventLoop()
        let stack = try makeTLSStack(loop: loop, server: TLSServerConfiguration(certificates: [pki.certifiedKey("ecdsa")]))
        let probe = TLSEchoServerProbe(stack: stack, loop: loop)
        let port = try probe.listen()
        let client = try runOpenSSLClient(
            serverLoop: loop, port: port, caFile: pki.certificate("ca"), input: "hi\n", extra: ["-trace"], versionFlags: ["-tls1_2"],
            environment: pki.withoutExtendedMasterSecret)
        let said = client.output()
        // The configuration took: s_client's ClientHello has no extended_master_secret.
        let hello = opensslTraceMessages(said.stdout, named: "ClientHello").first ?? ""
        #expect(!hello.isEmpty && !hello.contains("extended_master_secret"), "\(hello)")
        #expect(client.status != 0, "\(said)")
        #expect(said.stderr.contains("alert handshake failure"), "\(said)")
        #expect(probe.accepted == 0)
        #expect(stack.statistics.handshakesFailed == 1 && stack.statistics.alertsSent == 1, "\(stack.statistics)")
    }

    @Test("our client refuses an openssl s_server -tls1_2 that leaves out the extended master secret, with handshake_failure")
    func clientRequiresExtendedMasterSecret() throws {
        let pki = try testPKI()
        let (server, port) = try startOpenSSLServer(
            certificate: pki.certificate("ecdsa"), key: pki.key("ecdsa"), extra: ["-rev", "-trace"], versionFlags: ["-tls1_2"],
            environment: pki.withoutExtendedMasterSecret)
        defer { _ = server.terminate(grace: 2) }
        let loop = try EventLoop()
        let stack = try makeTLSStack(loop: loop, client: TLSClientConfiguration(serverName: "localhost"), caPEM: pki.caPEM)
        let record = try TLSClientProbe(stack: stack, loop: loop, message: "x\n", closeAfter: 2).run(port: port, serverName: "localhost")
        #expect(!record.connected)
        let failure = try #require(record.failure, "no failure reported")
        guard case .handshakeFailure = failure else {
            Issue.record("expected handshake_failure, got \(failure)")
            return
        }
        _ = server.wait(timeout: 10)
        let said = server.output()
        let serverHello = opensslTraceMessages(said.stdout, named: "ServerHello").first ?? ""
        #expect(!serverHello.isEmpty && !serverHello.contains("extended_master_secret"), "\(serverHello)")
        #expect(said.stdout.contains("handshake failure(40)"), "\(said)")
    }

    /// CBC-only TLS 1.2 offers (RFC 5246 suites this library refuses), each for the key type it would use.
    static let cbcOffers: [(leaf: String, cipher: String)] = [
        ("ecdsa", "ECDHE-ECDSA-AES128-SHA256"), ("rsa", "ECDHE-RSA-AES128-SHA256"), ("rsa", "ECDHE-RSA-AES256-SHA:AES128-SHA"),
    ]

    @Test("a CBC-only TLS 1.2 client is refused with handshake_failure", arguments: 0..<TLS12InteropTests.cbcOffers.count)
    func refusesCBCOnly(_ index: Int) throws {
        let offer = Self.cbcOffers[index]
        let pki = try testPKI()
        let loop = try EventLoop()
        let stack = try makeTLSStack(loop: loop, server: TLSServerConfiguration(certificates: [pki.certifiedKey(offer.leaf)]))
        let probe = TLSEchoServerProbe(stack: stack, loop: loop)
        let port = try probe.listen()
        let client = try startOpenSSLClient(
            port: port, caFile: pki.certificate("ca"), input: "hi\n", extra: ["-cipher", offer.cipher], versionFlags: ["-tls1_2"])
        defer { _ = client.terminate(grace: 2) }
        try runLoop(loop, seconds: 20) { !client.isRunning }
        #expect(client.status != 0, "\(client.output())")
        #expect(client.output().stderr.contains("alert handshake failure"), "\(client.output())")
        #expect(probe.accepted == 0)
        #expect(stack.statistics.handshakesFailed == 1 && stack.statistics.alertsSent == 1, "\(stack.statistics)")
    }

    @Test("the relay alone: passing our ClientHello unchanged, our client and s_server agree on TLS 1.3")
    func relayPassThrough() throws {
        let pki = try testPKI()
        let (server, port) = try startOpenSSLServer(
            certificate: pki.certificate("ecdsa"), key: pki.key("ecdsa"), extra: ["-rev"], versionFlags: [])
        defer { _ = server.terminate(grace: 2) }
        let relay = try TLSRelay(target: port) { _ in nil }
        let loop = try EventLoop()
        let stack = try makeTLSStack(loop: loop, client: TLSClientConfiguration(serverName: "localhost"), caPEM: pki.caPEM)
        let record = try TLSClientProbe(stack: stack, loop: loop, message: "relay\n", closeAfter: 6)
            .run(port: relay.port, serverName: "localhost")
        #expect(record.failure == nil, "\(String(describing: record.failure)); \(server.output())")
        #expect(record.negotiated?.version == .tls13)
        #expect(record.text == "yaler\n")
        #expect(relay.rewrites == 0)
        #expect(relay.wait(timeout: 10))
        #expect(relay.bytesRelayed > 0)
    }

    @Test("openssl s_client through the downgrading relay: the 1.3-capable s_server answers TLS 1.2 with the sentinel, s_client refuses")
    func relayDowngradesOpenSSL() throws {
        let pki = try testPKI()
        let (server, port) = try startOpenSSLServer(
            certificate: pki.certificate("ecdsa"), key: pki.key("ecdsa"), extra: ["-rev", "-trace"], versionFlags: [])
        defer { _ = server.terminate(grace: 2) }
        let relay = try TLSRelay(target: port, rewrite: TLSRelay.hidingTLS13)
        let client = try startOpenSSLClient(port: relay.port, caFile: pki.certificate("ca"), input: "hi\n", extra: [], versionFlags: [])
        defer { _ = client.terminate(grace: 2) }
        #expect(client.wait(timeout: 20) != nil)
        #expect(relay.rewrites == 1)
        #expect(client.status != 0, "\(client.output())")
        // OpenSSL names the sentinel check "inappropriate fallback" and sends illegal_parameter.
        #expect(client.output().stderr.contains("inappropriate fallback"), "\(client.output())")
        _ = server.wait(timeout: 10)
        let serverHello = opensslTraceMessages(server.output().stdout, named: "ServerHello").first ?? ""
        #expect(serverHello.contains("server_version=0x303"), "\(serverHello)")
        #expect(serverHello.contains(downgradeTLS12SentinelHex), "\(serverHello)")
    }

    @Test("our client refuses a downgraded ServerHello (TLS 1.2 with the RFC 8446 sentinel) with illegal_parameter")
    func refusesDowngradedServerHello() throws {
        let pki = try testPKI()
        let (server, port) = try startOpenSSLServer(
            certificate: pki.certificate("ecdsa"), key: pki.key("ecdsa"), extra: ["-rev", "-trace"], versionFlags: [])
        defer { _ = server.terminate(grace: 2) }
        let relay = try TLSRelay(target: port, rewrite: TLSRelay.hidingTLS13)
        let loop = try EventLoop()
        let stack = try makeTLSStack(loop: loop, client: TLSClientConfiguration(serverName: "localhost"), caPEM: pki.caPEM)
        let record = try TLSClientProbe(stack: stack, loop: loop, message: "x\n", closeAfter: 2)
            .run(port: relay.port, serverName: "localhost")
        #expect(relay.rewrites == 1, "the relay found no TLS 1.3 entry in our ClientHello")
        #expect(!record.connected)
        let failure = try #require(record.failure, "no failure reported")
        guard case .illegalParameter = failure else {
            Issue.record("expected illegal_parameter, got \(failure)")
            return
        }
        #expect(stack.statistics.handshakesFailed == 1 && stack.statistics.alertsSent == 1, "\(stack.statistics)")
        _ = server.wait(timeout: 10)
        let said = server.output()
        let serverHello = opensslTraceMessages(said.stdout, named: "ServerHello").first ?? ""
        #expect(serverHello.contains("server_version=0x303"), "\(serverHello)")
        #expect(serverHello.contains(downgradeTLS12SentinelHex), "\(serverHello)")
        // -trace prints the alert it received: "Level=fatal(2), description=illegal parameter(47)".
        #expect((said.stdout + said.stderr).contains("illegal parameter"), "\(said.stderr)")
    }
}
