import MirageDevices
import MirageTLS
import MirageTLSCrypto
import Testing

// Resumption through TLSStack: the stack hands the engine its clock, so
// ticket ages and expiry follow the loop's time.

@Suite("Resumption: through TLSStack")
struct ResumptionStackTests {
    @Test("a second connection resumes (no certificate check); after the ticket lifetime on the stack's clock, none does")
    func stackResumes() throws {
        let network = PipeNetwork()
        let clock = ManualClock(start: Instant(nanoseconds: 1_000_000_000))
        let timers = ManualTimerScheduler(clock: clock)
        let serverBase = network.stack(IPv4Address(10, 0, 0, 1))
        let clientBase = network.stack(IPv4Address(10, 0, 0, 2))
        var serverConfiguration = TLSServerConfiguration(certificates: [TestCredentials.leaf(.p256)])
        serverConfiguration.sessionTickets = SessionTicketKeys(crypto: SwiftCryptoProvider(), entropy: SeededEntropy(seed: 5),
                                                               ticketLifetime: 600)
        var clientConfiguration = TLSClientConfiguration(serverName: "localhost")
        let cache = TLSClientSessionCache()
        clientConfiguration.sessionCache = cache
        let verifier = ScriptedVerifier()
        verifier.answer = .trusted
        let server = TLSStack(base: serverBase, server: serverConfiguration, crypto: SwiftCryptoProvider(), verifier: nil,
                              entropy: SeededEntropy(seed: 1), timers: timers, clock: clock)
        let client = TLSStack(base: clientBase, client: clientConfiguration, crypto: SwiftCryptoProvider(), verifier: verifier,
                              entropy: SeededEntropy(seed: 2), timers: timers, clock: clock)
        let serverApp = StackRecorder()
        serverApp.stack = server
        serverApp.echo = true
        let clientApp = StackRecorder()
        clientApp.stack = client
        _ = try server.listen(port: 443, address: nil, backlog: 8, handler: serverApp)
        func connect() throws -> ConnectionID {
            let id = try client.connect(to: Endpoint(.v4(IPv4Address(10, 0, 0, 1)), 443), timeout: nil, handler: clientApp)
            network.run()
            return id
        }

        let first = try connect()
        #expect(client.negotiated(of: first)?.resumed == false)
        #expect(verifier.requests.count == 1)
        #expect(cache.count == 2)

        _ = timers.run(until: clock.now() + .seconds(30))
        let second = try connect()
        #expect(clientApp.established == [first, second])
        #expect(client.negotiated(of: second)?.resumed == true)
        #expect(client.negotiated(of: second)?.peerCertificates == TestCredentials.leaf(.p256).chain)
        #expect(verifier.requests.count == 1, "a resumed handshake has no certificate to verify")
        let ping = Array("resumed".utf8)
        #expect(try client.write(ping.span, on: second) == ping.count)
        network.run()
        #expect(clientApp.received == ping, "the server echoed")

        _ = timers.run(until: clock.now() + .seconds(601))
        let third = try connect()
        #expect(clientApp.established == [first, second, third])
        #expect(client.negotiated(of: third)?.resumed == false)
        #expect(verifier.requests.count == 2)
    }
}
