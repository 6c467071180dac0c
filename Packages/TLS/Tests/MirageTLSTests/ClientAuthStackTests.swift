import MirageDevices
import MirageTLS
import MirageTLSCrypto
import Testing

/// A TLS server asking for client certificates and a client holding one,
/// over a PipeNetwork (as StackTests), each stack with its own verifier.
final class ClientAuthStackPair {
    let network = PipeNetwork()
    let clock = ManualClock()
    let timers: ManualTimerScheduler
    let serverBase: PipeStack
    let clientBase: PipeStack
    let server: TLSStack<PipeStack>
    let client: TLSStack<PipeStack>
    let serverVerifier = ScriptedVerifier()
    let clientVerifier = ScriptedVerifier()
    let serverApp = StackRecorder()
    let clientApp = StackRecorder()
    let port: UInt16 = 443
    let clientChain: [[UInt8]]

    init(_ mode: ClientAuthentication, clientKey: TestCredentials.KeyType?, serverHasVerifier: Bool = true) throws {
        timers = ManualTimerScheduler(clock: clock)
        serverBase = network.stack(IPv4Address(10, 0, 0, 1))
        clientBase = network.stack(IPv4Address(10, 0, 0, 2))
        var serverConfiguration = TLSServerConfiguration(certificates: [TestCredentials.leaf(.p256)])
        serverConfiguration.clientAuthentication = mode
        var clientConfiguration = TLSClientConfiguration(serverName: "localhost")
        if let clientKey { clientConfiguration.certificates = [ClientAuthCredentials.leaf(clientKey)] }
        clientChain = clientKey.map { ClientAuthCredentials.leaf($0).chain } ?? []
        clientVerifier.answer = .trusted
        server = TLSStack(base: serverBase, server: serverConfiguration, crypto: SwiftCryptoProvider(),
                          verifier: serverHasVerifier ? serverVerifier : nil, entropy: SeededEntropy(seed: 11),
                          timers: timers, clock: clock)
        client = TLSStack(base: clientBase, client: clientConfiguration, crypto: SwiftCryptoProvider(),
                          verifier: clientVerifier, entropy: SeededEntropy(seed: 12), timers: timers, clock: clock)
        serverApp.stack = server
        serverApp.echo = true
        clientApp.stack = client
        _ = try server.listen(port: port, address: nil, backlog: 8, handler: serverApp)
    }

    func connect() throws -> ConnectionID {
        try client.connect(to: Endpoint(.v4(IPv4Address(10, 0, 0, 1)), port), timeout: nil, handler: clientApp)
    }
}

@Suite("Client certificates through TLSStack")
struct ClientAuthStackTests {
    @Test("the server's verifier gets the client's chain (peerIsServer false, no name); the connection is accepted only after it answers")
    func serverVerifierPath() throws {
        let pair = try ClientAuthStackPair(.required, clientKey: .ed25519)
        let id = try pair.connect()
        pair.network.run()
        #expect(pair.clientVerifier.requests.map { $0.peerIsServer } == [true])
        #expect(pair.serverVerifier.requests == [CertificateVerificationRequest(
            chain: pair.clientChain, serverName: nil, peerIsServer: false)])
        #expect(pair.serverApp.accepted.isEmpty, "not accepted while the server's verifier has not answered")
        #expect(pair.server.handshakesInProgress == 1)

        let completion = try #require(pair.serverVerifier.held.first)
        completion(.trusted)
        pair.network.run()
        let serverID = try #require(pair.serverApp.accepted.first)
        #expect(pair.serverApp.accepted.count == 1)
        #expect(pair.server.negotiated(of: serverID)?.peerCertificates == pair.clientChain)
        #expect(pair.server.negotiated(of: serverID)?.peerSignatureScheme == .ed25519)
        #expect(pair.clientApp.established == [id])

        let ping = Array("hello from an authenticated client".utf8)
        #expect(try pair.client.write(ping.span, on: id) == ping.count)
        pair.network.run()
        #expect(pair.serverApp.received == ping)
        #expect(pair.clientApp.received == ping, "the server echoed")
        #expect(pair.server.statistics.handshakesCompleted == 1)
    }

    @Test("a client chain the server's verifier rejects: never accepted, the alert reaches the client")
    func serverVerifierRejects() throws {
        let pair = try ClientAuthStackPair(.required, clientKey: .p256)
        pair.serverVerifier.answer = .rejected(.untrustedRoot(issuer: "CN=Nobody"))
        _ = try pair.connect()
        pair.network.run()
        #expect(pair.serverApp.accepted.isEmpty && pair.serverApp.closed.isEmpty)
        #expect(pair.server.statistics.handshakesFailed == 1 && pair.server.statistics.alertsSent == 1)
        #expect(pair.server.handshakesInProgress == 0)
        // In TLS 1.3 the client is done before the server judges it; it then hears why.
        #expect(pair.clientApp.closed.count == 1)
        #expect(pair.clientApp.closed.first?.2 == .alertReceived(.unknownCA))
    }

    @Test("a server asking for certificates without a verifier refuses every client chain")
    func noServerVerifier() throws {
        let pair = try ClientAuthStackPair(.optional, clientKey: .p256, serverHasVerifier: false)
        _ = try pair.connect()
        pair.network.run()
        #expect(pair.serverApp.accepted.isEmpty)
        #expect(pair.server.statistics.handshakesFailed == 1)
        #expect(pair.clientApp.closed.first?.2 == .alertReceived(.badCertificate))
    }

    @Test("required and the client has no certificate: certificate_required, never accepted")
    func requiredWithoutCertificate() throws {
        let pair = try ClientAuthStackPair(.required, clientKey: nil)
        _ = try pair.connect()
        pair.network.run()
        #expect(pair.serverVerifier.requests.isEmpty)
        #expect(pair.serverApp.accepted.isEmpty)
        #expect(pair.server.statistics.handshakesFailed == 1)
        #expect(pair.clientApp.closed.first?.2 == .alertReceived(.certificateRequired))
    }

    @Test("optional and the client has no certificate: accepted with no peer certificates, the verifier is not asked")
    func optionalWithoutCertificate() throws {
        let pair = try ClientAuthStackPair(.optional, clientKey: nil)
        _ = try pair.connect()
        pair.network.run()
        let serverID = try #require(pair.serverApp.accepted.first)
        #expect(pair.serverVerifier.requests.isEmpty)
        #expect(pair.server.negotiated(of: serverID)?.peerCertificates == [])
    }
}
