import MirageDevices
@testable import MirageTLS
import MirageTLSCrypto
import Testing

@Suite("Engine: client and server back to back")
struct EngineHandshakeTests {
    static func configurations(suite: CipherSuite = .aes128GCMSHA256, group: NamedGroup = .x25519,
                               key: TestCredentials.KeyType = .p256) -> (TLSClientConfiguration, TLSServerConfiguration) {
        var client = TLSClientConfiguration(serverName: "localhost")
        client.cipherSuites = [suite]
        client.groups = [group]
        client.keyShareGroups = [group]
        let server = TLSServerConfiguration(certificates: [TestCredentials.leaf(key)])
        return (client, server)
    }

    static let matrix: [(CipherSuite, NamedGroup, TestCredentials.KeyType)] = {
        var all: [(CipherSuite, NamedGroup, TestCredentials.KeyType)] = []
        for suite in CipherSuite.tls13 {
            for group in [NamedGroup.x25519, .secp256r1] {
                for key in TestCredentials.KeyType.allCases { all.append((suite, group, key)) }
            }
        }
        return all
    }()

    @Test("every suite × group × certificate key completes and carries data both ways", arguments: matrix)
    func handshakeMatrix(suite: CipherSuite, group: NamedGroup, key: TestCredentials.KeyType) throws {
        let (client, server) = Self.configurations(suite: suite, group: group, key: key)
        let pair = ConnectionPair(client: client, server: server)
        pair.run()
        #expect(ConnectionPair.completed(pair.clientEvents))
        #expect(ConnectionPair.completed(pair.serverEvents))
        #expect(pair.client.negotiated?.cipherSuite == suite)
        #expect(pair.server.negotiated?.cipherSuite == suite)
        #expect(pair.client.negotiated?.group == group)
        #expect(pair.client.negotiated?.usedHelloRetryRequest == false)
        #expect(pair.client.negotiated?.peerCertificates == TestCredentials.leaf(key).chain)
        #expect(pair.server.negotiated?.serverName == "localhost")
        #expect(pair.verificationRequests == [CertificateVerificationRequest(
            chain: TestCredentials.leaf(key).chain, serverName: "localhost", peerIsServer: true)])
        let request = Array("GET / HTTP/1.1\r\n\r\n".utf8)
        try pair.send(request, from: pair.client)
        #expect(ConnectionPair.data(pair.serverEvents) == request)
        let response = [UInt8](repeating: 0x61, count: 40_000)
        try pair.send(response, from: pair.server)
        #expect(ConnectionPair.data(pair.clientEvents) == response)
    }

    @Test("the handshake and data survive every chunking of the records", arguments: [1, 2, 3, 5, 7, 64, 1000])
    func chunking(chunk: Int) throws {
        let (client, server) = Self.configurations(key: .ed25519)
        let pair = ConnectionPair(client: client, server: server)
        pair.run(chunk: chunk)
        #expect(ConnectionPair.completed(pair.clientEvents))
        #expect(ConnectionPair.completed(pair.serverEvents))
        let message = (0..<20_000).map { UInt8(truncatingIfNeeded: $0) }
        try pair.send(message, from: pair.client, chunk: chunk)
        #expect(ConnectionPair.data(pair.serverEvents) == message)
    }

    @Test("a client whose share the server does not take gets a HelloRetryRequest and completes")
    func helloRetryRequest() throws {
        var (client, server) = Self.configurations()
        client.groups = [.x25519, .secp256r1]
        client.keyShareGroups = [.x25519]
        server.groups = [.secp256r1]
        let pair = ConnectionPair(client: client, server: server)
        pair.run()
        #expect(ConnectionPair.completed(pair.clientEvents))
        #expect(ConnectionPair.completed(pair.serverEvents))
        #expect(pair.client.negotiated?.usedHelloRetryRequest == true)
        #expect(pair.server.negotiated?.usedHelloRetryRequest == true)
        #expect(pair.client.negotiated?.group == .secp256r1)
        try pair.send([1, 2, 3], from: pair.server)
        #expect(ConnectionPair.data(pair.clientEvents) == [1, 2, 3])
    }

    @Test("ALPN: the server's preference among the client's offers; no overlap is no_application_protocol")
    func alpn() {
        var (client, server) = Self.configurations()
        client.applicationProtocols = ["http/1.1", "h2"]
        server.applicationProtocols = ["h2", "http/1.1"]
        let pair = ConnectionPair(client: client, server: server)
        pair.run()
        #expect(pair.client.negotiated?.applicationProtocol == "h2")
        #expect(pair.server.negotiated?.applicationProtocol == "h2")

        server.applicationProtocols = ["imap"]
        let refused = ConnectionPair(client: client, server: server)
        refused.run()
        #expect(ConnectionPair.failure(refused.serverEvents) == .noApplicationProtocol)
        #expect(ConnectionPair.failure(refused.clientEvents) == .alertReceived(.noApplicationProtocol))
    }

    @Test("SNI picks the certificate for the name; other names get the first")
    func sniSelection() throws {
        let authority = TestCredentials.shared.authority
        let first = try TestCredentials.makeLeaf(.p256, authority: authority, names: ["a.test"])
        let second = try TestCredentials.makeLeaf(.ed25519, authority: authority, names: ["b.test", "*.wild.test"])
        for (name, expected) in [("b.test", second), ("x.wild.test", second), ("a.test", first), ("other.test", first)] {
            var client = TLSClientConfiguration(serverName: name)
            client.groups = [.x25519]
            let pair = ConnectionPair(client: client, server: TLSServerConfiguration(certificates: [first, second]))
            pair.run()
            #expect(pair.client.negotiated?.peerCertificates == expected.chain, "\(name)")
        }
    }

    @Test("a rejected chain ends the handshake with the failure's alert on both sides")
    func rejectedCertificate() {
        let (client, server) = Self.configurations()
        let pair = ConnectionPair(client: client, server: server)
        pair.verification = .rejected(.expired(notAfter: "2020-01-01"))
        pair.run()
        #expect(ConnectionPair.failure(pair.clientEvents) == .badCertificate(.expired(notAfter: "2020-01-01")))
        #expect(ConnectionPair.failure(pair.serverEvents) == .alertReceived(.certificateExpired))
        #expect(!ConnectionPair.completed(pair.clientEvents))
        #expect(!ConnectionPair.completed(pair.serverEvents))
    }

    @Test("KeyUpdate both ways, with and without a request for the peer's")
    func keyUpdate() throws {
        let (client, server) = Self.configurations(suite: .chacha20Poly1305SHA256)
        let pair = ConnectionPair(client: client, server: server)
        pair.run()
        try pair.client.updateKeys(requestPeerUpdate: true)
        try pair.send([1], from: pair.client)
        try pair.send([2], from: pair.server)
        try pair.server.updateKeys(requestPeerUpdate: false)
        try pair.send([3], from: pair.server)
        try pair.send([4], from: pair.client)
        #expect(ConnectionPair.data(pair.serverEvents) == [1, 4])
        #expect(ConnectionPair.data(pair.clientEvents) == [2, 3])
        #expect(ConnectionPair.failure(pair.clientEvents) == nil)
        #expect(ConnectionPair.failure(pair.serverEvents) == nil)
    }

    @Test("close_notify: each side reports the peer's, and writes after our own are refused")
    func closeNotify() throws {
        let (client, server) = Self.configurations()
        let pair = ConnectionPair(client: client, server: server)
        pair.run()
        pair.client.close()
        pair.run()
        #expect(pair.serverEvents.last == .closeNotify)
        #expect(throws: TLSError.closed) { try pair.client.write([1].span) }
        try pair.send([9], from: pair.server)  // half-close: the server may still send
        #expect(ConnectionPair.data(pair.clientEvents) == [9])
        pair.server.close()
        pair.run()
        #expect(pair.clientEvents.last == .closeNotify)
        #expect(pair.client.isEnded && pair.server.isEnded)
    }

    @Test("write before the handshake is refused, not queued")
    func writeTooEarly() {
        let (client, _) = Self.configurations()
        let connection = TLSConnection(client: client, crypto: SwiftCryptoProvider(), entropy: SeededEntropy(seed: 3))
        connection.start()
        #expect(throws: TLSError.self) { try connection.write([1].span) }
    }
}

@Suite("Engine: the tls-engine fuzz harness")
struct EngineFuzzHarnessTests {
    static func run(_ program: [UInt8]) -> FuzzReport { fuzzEngine(program.span) }

    @Test("undisturbed, both sides complete over FuzzCrypto, also byte by byte and through a HelloRetryRequest")
    func completes() {
        for program: [UInt8] in [
            [0, 7, 0, 7, 0, 7, 0, 6, 2, 6, 3, 7, 0, 7, 0],
            [1, 7, 0, 7, 0, 7, 0, 7, 0, 6, 2, 7, 0],
            [0] + Array(repeating: [UInt8]([0, 15, 1, 15]), count: 128).flatMap { $0 },
        ] {
            let report = Self.run(program)
            #expect(report.decoded == 2, "\(report)")
            #expect(report.error == nil, "\(report)")
        }
    }

    @Test("a bit flipped in the server's flight ends the handshake with an alert, not with different data")
    func flipped() {
        let report = Self.run([0, 7, 0, 3, 40, 7, 0, 7, 0])
        #expect(report.error != nil, "\(report)")
        #expect(report.decoded == 0)
    }
}
