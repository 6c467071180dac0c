import Foundation
import MirageDevices
import MirageHTTP
import MiragePlatform
import MirageTLSCrypto
import MirageTestNetwork
import Testing

#if canImport(Glibc)
import Glibc
#endif

// MirageTLS against OpenSSL 3 and curl: our client (TLSStack over
// SocketStack) against `openssl s_server`, our server against `openssl
// s_client`, over every group × suite × certificate key type, with data
// both ways; curl fetching slides from `mirage-www --tls`; MirageHTTP's
// client over TLS against `openssl s_server -www`; a HelloRetryRequest;
// ALPN; and certificates that must be refused, each for its own reason.
// Certificates come from a test CA that openssl makes in a scratch folder.

/// One cell of the interop matrix.
struct TLSMatrixCase: Sendable, CustomTestStringConvertible {
    var group: NamedGroup
    var suite: CipherSuite
    var leaf: LeafKind
    var testDescription: String { "\(group) \(suite) \(leaf.rawValue)" }

    static let all: [TLSMatrixCase] = [NamedGroup.x25519, .secp256r1].flatMap { group in
        CipherSuite.tls13.flatMap { suite in LeafKind.allCases.map { TLSMatrixCase(group: group, suite: suite, leaf: $0) } }
    }
}

@Suite("MirageTLS against openssl and curl", .serialized, .interop(tools: ["openssl", "curl", "sh", "ss"], needsRoot: false))
struct TLSInteropTests {
    @Test("our client against openssl s_server: handshake, the suite and group asked for, data both ways", arguments: TLSMatrixCase.all)
    func clientAgainstOpenSSL(_ c: TLSMatrixCase) throws {
        let pki = try testPKI()
        let (server, port) = try startOpenSSLServer(
            certificate: pki.certificate(c.leaf.rawValue), key: pki.key(c.leaf.rawValue),
            extra: ["-ciphersuites", c.suite.opensslName, "-groups", c.group.opensslName, "-rev", "-brief"])
        defer { _ = server.terminate(grace: 2) }
        let loop = try EventLoop()
        var client = TLSClientConfiguration(serverName: "localhost")
        client.keyShareGroups = [c.group]  // no HelloRetryRequest here; see helloRetryRequest
        let stack = try makeTLSStack(loop: loop, client: client, caPEM: pki.caPEM)
        let message = "hello from MirageTLS\n"
        let probe = TLSClientProbe(stack: stack, loop: loop, message: message, closeAfter: message.utf8.count)
        let record = try probe.run(port: port, serverName: "localhost")
        #expect(record.connected, "no handshake: \(String(describing: record.failure)); s_server: \(server.output())")
        #expect(record.failure == nil, "\(String(describing: record.failure))")
        #expect(record.negotiated?.cipherSuite == c.suite)
        #expect(record.negotiated?.group == c.group)
        #expect(record.negotiated?.usedHelloRetryRequest == false)
        // s_server -rev answers each line reversed.
        #expect(record.text == "SLTegariM morf olleh\n", "received \(record.text.debugDescription)")
        #expect(server.wait(timeout: 10) != nil, "s_server did not end after our close")
        let said = server.output()
        let out = said.stdout + said.stderr  // -brief writes its summary to stderr
        #expect(out.contains("Ciphersuite: \(c.suite.opensslName)"), "\(out)")
        #expect(out.contains("Protocol version: TLSv1.3"), "\(out)")
    }

    @Test("openssl s_client against our server: verified chain, the suite and group asked for, data both ways", arguments: TLSMatrixCase.all)
    func serverAgainstOpenSSL(_ c: TLSMatrixCase) throws {
        let pki = try testPKI()
        let loop = try EventLoop()
        let stack = try makeTLSStack(loop: loop, server: TLSServerConfiguration(certificates: [pki.certifiedKey(c.leaf.rawValue)]))
        let probe = TLSEchoServerProbe(stack: stack, loop: loop)
        let port = try probe.listen()
        let client = try startOpenSSLClient(
            port: port, caFile: pki.certificate("ca"), input: "hello from s_client\n",
            extra: ["-ciphersuites", c.suite.opensslName, "-groups", c.group.opensslName])
        defer { _ = client.terminate(grace: 2) }
        try runLoop(loop, seconds: 20) { !client.isRunning }
        let out = client.output().stdout
        #expect(client.status == 0, "s_client: \(client.output())")
        #expect(probe.accepted == 1)
        #expect(probe.record.negotiated?.cipherSuite == c.suite)
        #expect(probe.record.negotiated?.group == c.group)
        #expect(probe.record.text == "hello from s_client\n", "\(probe.record.text.debugDescription)")
        #expect(out.contains("Cipher is \(c.suite.opensslName)"), "\(out)")
        #expect(out.contains("Server Temp Key: \(c.group.opensslTempKey)"), "\(out)")
        #expect(out.contains("Peer signature type: \(c.leaf.opensslSignatureType)"), "\(out)")
        #expect(out.contains("Verify return code: 0 (ok)"), "\(out)")
        #expect(out.contains("echo: hello from s_client"), "\(out)")
        #expect(stack.statistics.handshakesCompleted == 1 && stack.statistics.handshakesFailed == 0, "\(stack.statistics)")
    }

    @Test("KeyUpdate both ways: ours asks s_server for its own, and its answer arrives under its new keys")
    func keyUpdate() throws {
        let pki = try testPKI()
        let (server, port) = try startOpenSSLServer(
            certificate: pki.certificate("ecdsa"), key: pki.key("ecdsa"), extra: ["-rev", "-msg"])
        defer { _ = server.terminate(grace: 2) }
        let loop = try EventLoop()
        let stack = try makeTLSStack(loop: loop, client: TLSClientConfiguration(serverName: "localhost"), caPEM: pki.caPEM)
        let message = "keys updated\n"
        let probe = TLSClientProbe(stack: stack, loop: loop, message: message, closeAfter: message.utf8.count)
        probe.updateKeysFirst = true
        let record = try probe.run(port: port, serverName: "localhost")
        #expect(record.failure == nil, "\(String(describing: record.failure))")
        #expect(record.text == "detadpu syek\n", "received \(record.text.debugDescription)")
        #expect(server.wait(timeout: 10) != nil, "s_server did not end after our close")
        let out = server.output().stdout
        // -msg: "<<<" what s_server read (our KeyUpdate), ">>>" what it sent (its own).
        #expect(out.contains("<<< TLS 1.3, Handshake [length 0005], KeyUpdate"), "\(out)")
        #expect(out.contains(">>> TLS 1.3, Handshake [length 0005], KeyUpdate"), "\(out)")
    }

    @Test("HelloRetryRequest: our client offers an X25519 share only, s_server takes P-256 only")
    func helloRetryRequest() throws {
        let pki = try testPKI()
        let (server, port) = try startOpenSSLServer(
            certificate: pki.certificate("ecdsa"), key: pki.key("ecdsa"), extra: ["-groups", "P-256", "-rev", "-msg"])
        defer { _ = server.terminate(grace: 2) }
        let loop = try EventLoop()
        var client = TLSClientConfiguration(serverName: "localhost")
        client.groups = [.x25519, .secp256r1]
        client.keyShareGroups = [.x25519]
        let stack = try makeTLSStack(loop: loop, client: client, caPEM: pki.caPEM)
        let probe = TLSClientProbe(stack: stack, loop: loop, message: "abc\n", closeAfter: 4)
        let record = try probe.run(port: port, serverName: "localhost")
        #expect(record.failure == nil, "\(String(describing: record.failure)); \(server.output())")
        #expect(record.negotiated?.group == .secp256r1)
        #expect(record.negotiated?.usedHelloRetryRequest == true)
        #expect(record.text == "cba\n")
        _ = server.wait(timeout: 10)
        // -msg shows both of our ClientHellos: the first, and the one after the retry request.
        let hellos = server.output().stdout.components(separatedBy: ", ClientHello").count - 1
        #expect(hellos == 2, "\(server.output().stdout)")
    }

    @Test("ALPN: our client gets http/1.1 from s_server; s_client gets it from our server; no protocol in common fails")
    func alpn() throws {
        let pki = try testPKI()
        // Our client offers two, s_server knows one.
        let (server, port) = try startOpenSSLServer(
            certificate: pki.certificate("ecdsa"), key: pki.key("ecdsa"), extra: ["-alpn", "http/1.1", "-rev"])
        defer { _ = server.terminate(grace: 2) }
        let loop = try EventLoop()
        var client = TLSClientConfiguration(serverName: "localhost")
        client.applicationProtocols = ["mirage/1", "http/1.1"]
        let stack = try makeTLSStack(loop: loop, client: client, caPEM: pki.caPEM)
        let record = try TLSClientProbe(stack: stack, loop: loop, message: "x\n", closeAfter: 2).run(port: port, serverName: "localhost")
        #expect(record.negotiated?.applicationProtocol == "http/1.1", "\(String(describing: record.failure))")

        // s_client against our server, which speaks http/1.1 only.
        var settings = TLSServerConfiguration(certificates: [try pki.certifiedKey("ecdsa")])
        settings.applicationProtocols = ["http/1.1"]
        let serverLoop = try EventLoop()
        let ours = try makeTLSStack(loop: serverLoop, server: settings)
        let probe = TLSEchoServerProbe(stack: ours, loop: serverLoop)
        let ourPort = try probe.listen()
        let good = try startOpenSSLClient(port: ourPort, caFile: pki.certificate("ca"), input: "hi\n", extra: ["-alpn", "h2,http/1.1"])
        defer { _ = good.terminate(grace: 2) }
        try runLoop(serverLoop, seconds: 20) { !good.isRunning }
        #expect(good.output().stdout.contains("ALPN protocol: http/1.1"), "\(good.output())")
        #expect(probe.record.negotiated?.applicationProtocol == "http/1.1")

        let bad = try startOpenSSLClient(port: ourPort, caFile: pki.certificate("ca"), input: "hi\n", extra: ["-alpn", "h2"])
        defer { _ = bad.terminate(grace: 2) }
        try runLoop(serverLoop, seconds: 20) { !bad.isRunning }
        #expect(bad.status != 0)
        #expect(bad.output().stderr.contains("no application protocol"), "\(bad.output())")
        #expect(probe.accepted == 1, "the failed handshake never reaches the application")
        #expect(ours.statistics.handshakesFailed == 1 && ours.statistics.alertsSent == 1, "\(ours.statistics)")
    }

    /// The certificates our client must refuse, the failure it must name,
    /// and the alert s_server must report.
    static let refusals: [(leaf: String, serverName: String, expected: String, alert: String)] = [
        ("expired", "localhost", "expired", "certificate expired"),
        ("ecdsa", "wrong.example.test", "hostnameMismatch", "bad certificate"),
        ("untrusted", "localhost", "untrustedRoot", "unknown ca"),
        ("clientonly", "localhost", "missingExtendedKeyUsage", "unsupported certificate"),
    ]

    @Test("our client refuses a bad certificate with an error naming the cause, and tells s_server with the right alert",
          arguments: 0..<TLSInteropTests.refusals.count)
    func refusesBadCertificates(_ index: Int) throws {
        let refusal = Self.refusals[index]
        let pki = try testPKI()
        let (server, port) = try startOpenSSLServer(certificate: pki.certificate(refusal.leaf), key: pki.key(refusal.leaf), extra: ["-rev"])
        defer { _ = server.terminate(grace: 2) }
        let loop = try EventLoop()
        let stack = try makeTLSStack(loop: loop, client: TLSClientConfiguration(serverName: "localhost"), caPEM: pki.caPEM)
        let record = try TLSClientProbe(stack: stack, loop: loop, message: "x\n", closeAfter: 2)
            .run(port: port, serverName: refusal.serverName)
        #expect(!record.connected)
        #expect(record.closed == .aborted)
        let failure = try #require(record.failure, "no failure reported")
        guard case .badCertificate(let cause) = failure else {
            Issue.record("expected a certificate failure, got \(failure)")
            return
        }
        let name: String
        switch cause {
        case .expired: name = "expired"
        case .hostnameMismatch: name = "hostnameMismatch"
        case .untrustedRoot: name = "untrustedRoot"
        case .missingExtendedKeyUsage: name = "missingExtendedKeyUsage"
        default: name = "\(cause)"
        }
        #expect(name == refusal.expected, "\(cause)")
        #expect(stack.statistics.handshakesFailed == 1 && stack.statistics.alertsSent == 1, "\(stack.statistics)")
        _ = server.wait(timeout: 10)
        let said = server.output()
        #expect((said.stdout + said.stderr).contains("alert \(refusal.alert)"), "s_server: \(said)")
    }

    @Test("MirageHTTP's client over TLSStack fetches the status page of openssl s_server -www")
    func httpClientOverTLS() throws {
        let pki = try testPKI()
        let (server, port) = try startOpenSSLServer(certificate: pki.certificate("rsa"), key: pki.key("rsa"), extra: ["-www"])
        defer { _ = server.terminate(grace: 2) }
        let loop = try EventLoop()
        let stack = try makeTLSStack(loop: loop, client: TLSClientConfiguration(serverName: "localhost"), caPEM: pki.caPEM)
        let client = HTTPClient(stack: stack, timers: loop, clock: loop)
        let collector = TLSResponseCollector(loop: loop)
        try client.request(HTTPRequestHead(method: .get, target: "/"), to: Endpoint(.v4(.loopback), port), handler: collector)
        try loop.run(until: loop.now() + .seconds(20))
        #expect(collector.failure == nil, "\(String(describing: collector.failure))")
        #expect(collector.status == 200)
        let page = String(decoding: collector.body, as: UTF8.self)
        #expect(page.contains("New, TLSv1.3, Cipher is TLS_AES_"), "\(page)")
        #expect(stack.statistics.handshakesCompleted == 1)
    }

    @Test("curl --tlsv1.3 fetches slides from mirage-www --tls --cert --key over the kernel's sockets")
    func curlAgainstMirageWWW() throws {
        let pki = try testPKI()
        let www = try startTLSWWW(["--tls", "--cert", pki.certificate("ecdsa"), "--key", pki.key("ecdsa"), "--port", "0"])
        defer { _ = www.process.terminate(grace: 5) }
        let port = try #require(www.url.split(separator: ":").last.flatMap { UInt16($0.prefix { $0 != "/" }) }, "\(www.url)")
        for slide in ["/slides/1.html", "/slides/2.html"] {
            let out = try runCommand(
                ["curl", "-sS", "--fail", "--tlsv1.3", "--cacert", pki.certificate("ca"), "-w", "\\n%{http_version} %{ssl_verify_result}",
                 "https://localhost:\(port)\(slide)"], timeout: 30)
            #expect(out.succeeded, "\(out)")
            let expected = try String(contentsOfFile: siteFile(slide), encoding: .utf8)
            #expect(out.stdout.hasPrefix(expected), "\(slide): \(out.stdout.prefix(200))")
            #expect(out.stdout.hasSuffix("\n1.1 0"), "\(out.stdout.suffix(40))")
        }
        // An untrusting curl is refused by curl itself (our certificate is
        // not its CA's), and mirage-www counts the failed handshake.
        let refused = try runCommand(["curl", "-sS", "--tlsv1.3", "https://localhost:\(port)/"], timeout: 30)
        #expect(refused.status == 60, "\(refused)")
        waitForStatusLine(www.process, containing: ["tls 2 handshakes (0 resumed), 1 failed"], timeout: 10)
        let stopped = www.process.terminate(grace: 10)
        #expect(stopped == 0, "\(www.process.output())")
    }

    @Test("mirage-www --tls with a development certificate prints its fingerprint, which is what curl sees")
    func developmentCertificate() throws {
        let www = try startTLSWWW(["--tls", "--port", "0"])
        defer { _ = www.process.terminate(grace: 5) }
        let line = try #require(www.process.output().stdout.split(separator: "\n").first { $0.hasPrefix("tls: SHA-256 fingerprint ") })
        let printed = line.dropFirst("tls: SHA-256 fingerprint ".count)
        let port = try #require(www.url.split(separator: ":").last.flatMap { UInt16($0.prefix { $0 != "/" }) })
        let seen = try runCommand(["sh", "-c", "openssl s_client -connect 127.0.0.1:\(port) -tls1_3 </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"], timeout: 30)
        #expect(seen.stdout.uppercased().contains(printed.uppercased()), "printed \(printed); s_client: \(seen.stdout)")
        let page = try runCommand(["curl", "-sS", "-k", "--tlsv1.3", "https://127.0.0.1:\(port)/slides/1.html"], timeout: 30)
        #expect(page.succeeded && page.stdout.contains("<html"), "\(page)")
    }
}

@Suite("mirage-www --tls over MirageTCPIP", .serialized, .interop(tools: ["ip", "openssl", "curl"]))
struct TLSTapInteropTests {
    @Test("curl in a namespace fetches a slide over HTTPS from mirage-www --tls on a tap device")
    func curlOverTap() throws {
        let pki = try testPKI()
        try withKernelSideTap(net: 78, linkSuffix: "t") { ns, tap in
            let www = try startTLSWWW(["--net", "tap", "--tap", tap, "--ipv4", "10.199.78.2/24", "--tls",
                                       "--cert", pki.certificate("ecdsa"), "--key", pki.key("ecdsa")], in: ns)
            defer { _ = www.process.terminate(grace: 5) }
            let out = try ns.exec(["curl", "-sS", "--fail", "--tlsv1.3", "--cacert", pki.certificate("ca"),
                                   "--resolve", "localhost:443:10.199.78.2", "https://localhost/slides/1.html"], timeout: 60)
            #expect(out.succeeded, "\(out)")
            let expected = try String(contentsOfFile: siteFile("/slides/1.html"), encoding: .utf8)
            #expect(out.stdout == expected, "\(out.stdout.prefix(200))")
            // By address too: the certificate names 10.199.78.2.
            let byAddress = try ns.exec(["curl", "-sS", "--fail", "--tlsv1.3", "--cacert", pki.certificate("ca"),
                                         "https://10.199.78.2/slides/2.html"], timeout: 60)
            #expect(byAddress.succeeded, "\(byAddress)")
            waitForStatusLine(www.process, containing: ["tls 2 handshakes (0 resumed), 0 failed"], timeout: 10)
            #expect(www.process.terminate(grace: 10) == 0, "\(www.process.output())")
        }
    }
}

/// Runs `loop` in short slices until `done` or `seconds` pass (the loop
/// may also be stopped by a handler; it is simply run again).
func runLoop(_ loop: EventLoop, seconds: Int64, until done: () -> Bool) throws {
    let deadline = loop.now() + .seconds(seconds)
    while !done() && loop.now() < deadline {
        try loop.run(until: loop.now() + .milliseconds(50))
    }
    // What the peer's last records caused (close, connectionClosed).
    try loop.run(until: loop.now() + .milliseconds(100))
}

/// A running mirage-www and the URL it printed.
struct RunningTLSWWW {
    var process: SpawnedProcess
    var url: String
}

/// Starts mirage-www with `arguments` and waits for "serving https://".
func startTLSWWW(_ arguments: [String], in ns: TestNamespace? = nil) throws -> RunningTLSWWW {
    let binary = try #require(ExampleBinary.path("mirage-www"), "mirage-www must be built next to the tests")
    let argv = [binary] + arguments
    let process = try ns.map { ns throws -> SpawnedProcess in try ns.spawn(argv) } ?? SpawnedProcess(argv)
    try process.waitForOutput(containing: "serving https://", timeout: 30)
    let line = try #require(process.output().stdout.split(separator: "\n").first { $0.hasPrefix("serving https://") })
    return RunningTLSWWW(process: process, url: String(line.dropFirst("serving ".count).prefix { $0 != " " }))
}

/// A file of the deck's source folder.
func siteFile(_ path: String) -> String {
    ExampleBinary.packageRoot + "/Examples/www/Sources/MirageWWWSite/Site" + path
}

/// Collects one response and stops the loop.
final class TLSResponseCollector: HTTPClientHandler {
    let loop: EventLoop
    var status: Int?
    var body: [UInt8] = []
    var failure: HTTPError?

    init(loop: EventLoop) { self.loop = loop }

    func responseReceived(_ head: HTTPResponseHead, request: HTTPClientRequestID) { status = head.status.code }

    func bodyReceived(_ bytes: Span<UInt8>, request: HTTPClientRequestID) {
        body.append(span: bytes)
    }

    func responseEnded(_ request: HTTPClientRequestID, trailers: HTTPFields) { loop.stop() }

    func requestFailed(_ request: HTTPClientRequestID, error: HTTPError) {
        failure = error
        loop.stop()
    }
}
