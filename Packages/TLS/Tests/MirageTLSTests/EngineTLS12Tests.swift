import MirageDevices
@testable import MirageTLS
import MirageTLSCrypto
import Testing

/// TLS 1.2 (RFC 5246 with RFC 7627, RFC 5746, RFC 8422, RFC 5289/7905):
/// our client and server back to back, then misbehaving peers played by
/// rewriting one handshake message on its way out.
@Suite("Engine: TLS 1.2")
struct EngineTLS12Tests {
    typealias Tamper = EngineTrapTests.Tamper

    static func configurations(suite: CipherSuite? = nil, group: NamedGroup = .x25519, key: TestCredentials.KeyType = .p256,
                               clientVersions: [ProtocolVersion] = [.tls12],
                               serverVersions: [ProtocolVersion] = [.tls13, .tls12]) -> (TLSClientConfiguration, TLSServerConfiguration) {
        var client = TLSClientConfiguration(serverName: "localhost")
        client.versions = clientVersions
        if let suite { client.cipherSuites = [suite] }
        // P-256 is listed too: a TLS 1.2 server may only use an ECDSA P-256
        // certificate for a client that lists the curve (RFC 8422 §5.1).
        client.groups = group == .secp256r1 ? [group] : [group, .secp256r1]
        client.keyShareGroups = [group]
        var server = TLSServerConfiguration(certificates: [TestCredentials.leaf(key)])
        server.versions = serverVersions
        return (client, server)
    }

    /// Every TLS 1.2 suite with every certificate key its authentication takes.
    static let matrix: [(CipherSuite, NamedGroup, TestCredentials.KeyType)] = {
        var all: [(CipherSuite, NamedGroup, TestCredentials.KeyType)] = []
        for suite in CipherSuite.tls12 {
            let keys: [TestCredentials.KeyType] = suite.tls12Authentication == .rsa ? [.rsa2048] : [.p256, .ed25519]
            for group in [NamedGroup.x25519, .secp256r1] {
                for key in keys { all.append((suite, group, key)) }
            }
        }
        return all
    }()

    static func completedPair(_ client: TLSClientConfiguration, _ server: TLSServerConfiguration, chunk: Int = Int.max) -> ConnectionPair {
        let pair = ConnectionPair(client: client, server: server)
        pair.run(chunk: chunk)
        return pair
    }

    @Test("every TLS 1.2 suite × group × fitting key completes and carries data both ways", arguments: matrix)
    func handshakeMatrix(suite: CipherSuite, group: NamedGroup, key: TestCredentials.KeyType) throws {
        let (client, server) = Self.configurations(suite: suite, group: group, key: key)
        let pair = Self.completedPair(client, server)
        #expect(ConnectionPair.completed(pair.clientEvents))
        #expect(ConnectionPair.completed(pair.serverEvents))
        for side in [pair.client, pair.server] {
            #expect(side.negotiated?.version == .tls12)
            #expect(side.negotiated?.cipherSuite == suite)
            #expect(side.negotiated?.group == group)
            #expect(side.negotiated?.resumed == false)
        }
        #expect(pair.client.negotiated?.peerCertificates == TestCredentials.leaf(key).chain)
        let scheme = try #require(pair.client.negotiated?.peerSignatureScheme)
        #expect(TestCredentials.leaf(key).key.signatureSchemes.contains(scheme))
        #expect(pair.verificationRequests == [CertificateVerificationRequest(
            chain: TestCredentials.leaf(key).chain, serverName: "localhost", peerIsServer: true)])
        let request = Array("GET / HTTP/1.1\r\n\r\n".utf8)
        try pair.send(request, from: pair.client)
        #expect(ConnectionPair.data(pair.serverEvents) == request)
        let response = (0..<40_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try pair.send(response, from: pair.server)
        #expect(ConnectionPair.data(pair.clientEvents) == response)
        // Records after the handshake are AEAD-protected TLS 1.2 records of their real type.
        #expect(pair.server.isTLS12 && pair.client.isTLS12)
    }

    @Test("handshake and data survive every chunking", arguments: [1, 2, 5, 7, 300])
    func chunking(chunk: Int) throws {
        let (client, server) = Self.configurations(key: .rsa2048)
        let pair = Self.completedPair(client, server, chunk: chunk)
        #expect(ConnectionPair.completed(pair.clientEvents) && ConnectionPair.completed(pair.serverEvents))
        let message = (0..<20_000).map { UInt8(truncatingIfNeeded: $0) }
        try pair.send(message, from: pair.client, chunk: chunk)
        #expect(ConnectionPair.data(pair.serverEvents) == message)
    }

    @Test("both sides offering TLS 1.3 and 1.2 negotiate 1.3; a 1.2-only client gets 1.2 with the sentinel, which it accepts")
    func versionChoice() throws {
        let both = Self.configurations(clientVersions: [.tls13, .tls12])
        let modern = Self.completedPair(both.0, both.1)
        #expect(modern.client.negotiated?.version == .tls13)
        #expect(modern.server.negotiated?.version == .tls13)

        let (client, server) = Self.configurations(clientVersions: [.tls12])
        let pair = Self.completedPair(client, server)
        #expect(pair.client.negotiated?.version == .tls12)
        #expect(ConnectionPair.completed(pair.clientEvents))
        // The ServerHello's random ends in DOWNGRD\x01 (RFC 8446 §4.1.3): the
        // server speaks 1.3 and says it was asked for less.
        let serverHello = try Self.firstHandshake(.serverHello, in: pair.serverWire)
        let random = Array(try ServerHello(parsing: Array(serverHello.dropFirst(4))).random)
        #expect(Array(random[24..<32]) == ServerHello.downgradeTLS12Sentinel)

        // A server that speaks only 1.2 sends no sentinel.
        var plain = server
        plain.versions = [.tls12]
        let old = Self.completedPair(client, plain)
        let oldHello = try Self.firstHandshake(.serverHello, in: old.serverWire)
        let oldRandom = try ServerHello(parsing: Array(oldHello.dropFirst(4))).random
        #expect(Array(oldRandom[24..<32]) != ServerHello.downgradeTLS12Sentinel)
    }

    @Test("a downgraded ServerHello (TLS 1.3 stripped from our offer on the way) is refused by a 1.3-capable client")
    func downgradeSentinel() {
        let (client, server) = Self.configurations(clientVersions: [.tls13, .tls12])
        let pair = ConnectionPair(client: client, server: server)
        // An attacker rewrites supported_versions to 1.2 only; the server
        // (1.3-capable) answers 1.2 and marks its random.
        pair.clientToServer = { bytes in Self.replacingSupportedVersions(in: bytes) }
        pair.run()
        #expect(ConnectionPair.failure(pair.clientEvents)
            == .illegalParameter("the ServerHello carries the TLS 1.3 downgrade sentinel (RFC 8446 §4.1.3)"))
        #expect(!ConnectionPair.completed(pair.clientEvents))
        #expect(ConnectionPair.failure(pair.serverEvents) == .alertReceived(.illegalParameter))
    }

    /// The client's first record with supported_versions [1.3, 1.2] changed to
    /// [GREASE, 1.2] in place (same lengths), as an on-path attacker would.
    static func replacingSupportedVersions(in bytes: [UInt8]) -> [UInt8] {
        var out = bytes
        let pattern: [UInt8] = [0x00, 0x2B, 0x00, 0x05, 0x04, 0x03, 0x04, 0x03, 0x03]
        guard out.count >= pattern.count else { return out }
        for start in 0...(out.count - pattern.count) where Array(out[start..<(start + pattern.count)]) == pattern {
            out[start + 5] = 0x0A
            out[start + 6] = 0x0A
            break
        }
        return out
    }

    /// The first handshake message of `type` in a stream of plaintext records.
    static func firstHandshake(_ type: HandshakeType, in wire: [UInt8]) throws -> [UInt8] {
        var offset = 0
        while offset + 5 <= wire.count {
            let length = Int(wire[offset + 3]) << 8 | Int(wire[offset + 4])
            let fragment = Array(wire[(offset + 5)..<min(wire.count, offset + 5 + length)])
            if wire[offset] == ContentType.handshake.rawValue {
                var inner = 0
                while inner + 4 <= fragment.count {
                    let bodyLength = Int(fragment[inner + 1]) << 16 | Int(fragment[inner + 2]) << 8 | Int(fragment[inner + 3])
                    if fragment[inner] == type.rawValue {
                        return Array(fragment[inner..<min(fragment.count, inner + 4 + bodyLength)])
                    }
                    inner += 4 + bodyLength
                }
            }
            offset += 5 + length
        }
        throw TLSError.decodeError("no handshake message \(type.rawValue)")
    }

    static func handshakeTypes(in wire: [UInt8]) -> [UInt8] {
        var types: [UInt8] = []
        var offset = 0
        while offset + 5 <= wire.count {
            let length = Int(wire[offset + 3]) << 8 | Int(wire[offset + 4])
            if wire[offset] == ContentType.handshake.rawValue, offset + 5 < wire.count { types.append(wire[offset + 5]) }
            if wire[offset] == ContentType.changeCipherSpec.rawValue { types.append(0xCC) }
            offset += 5 + length
        }
        return types
    }

    @Test("the extended master secret is required by both sides (RFC 7627)")
    func extendedMasterSecretRequired() {
        var (client, server) = Self.configurations()
        var pair = ConnectionPair(client: client, server: server)
        pair.client.tamperWithOutgoingHandshake = EngineTrapTests.rewriteClientHello { hello in
            hello.extensions.removeAll { $0.type == .extendedMasterSecret }
        }
        pair.run()
        #expect(ConnectionPair.failure(pair.serverEvents)
            == .handshakeFailure("the client does not offer the extended master secret (RFC 7627), which is required"))
        #expect(ConnectionPair.failure(pair.clientEvents) == .alertReceived(.handshakeFailure))

        server.versions = [.tls12]
        client.versions = [.tls12]
        pair = ConnectionPair(client: client, server: server)
        pair.server.tamperWithOutgoingHandshake = EngineTrapTests.rewriteServerHello { hello in
            hello.extensions.removeAll { $0.type == .extendedMasterSecret }
        }
        pair.run()
        #expect(ConnectionPair.failure(pair.clientEvents)
            == .handshakeFailure("the server does not use the extended master secret (RFC 7627), which is required"))
    }

    @Test("secure renegotiation: the extension or the SCSV is required; a non-empty one fails the handshake")
    func renegotiationInfo() {
        let (client, server) = Self.configurations()
        let missing = ConnectionPair(client: client, server: server)
        missing.client.tamperWithOutgoingHandshake = EngineTrapTests.rewriteClientHello { hello in
            hello.extensions.removeAll { $0.type == .renegotiationInfo }
        }
        missing.run()
        #expect(ConnectionPair.failure(missing.serverEvents) == .handshakeFailure("the client signals no secure renegotiation (RFC 5746)"))

        let scsv = ConnectionPair(client: client, server: server)
        scsv.client.tamperWithOutgoingHandshake = EngineTrapTests.rewriteClientHello { hello in
            hello.extensions.removeAll { $0.type == .renegotiationInfo }
            hello.cipherSuites.append(.emptyRenegotiationInfoSCSV)
        }
        scsv.run()
        #expect(ConnectionPair.completed(scsv.serverEvents))

        let nonEmpty = ConnectionPair(client: client, server: server)
        nonEmpty.server.tamperWithOutgoingHandshake = EngineTrapTests.rewriteServerHello { hello in
            hello.extensions.removeAll { $0.type == .renegotiationInfo }
            hello.extensions.append(Extension(type: .renegotiationInfo, data: RenegotiationInfo(renegotiatedConnection: [1, 2]).encode()))
        }
        nonEmpty.run()
        #expect(ConnectionPair.failure(nonEmpty.clientEvents) == .handshakeFailure("renegotiation_info is not empty on an initial handshake"))
    }

    @Test("a TLS 1.1 hello gets protocol_version; a CBC-only one handshake_failure; a fallback SCSV inappropriate_fallback")
    func refusedHellos() {
        let (client, server) = Self.configurations()
        let old = ConnectionPair(client: client, server: server)
        old.client.tamperWithOutgoingHandshake = EngineTrapTests.rewriteClientHello { hello in
            hello.legacyVersion = .tls11
        }
        old.run()
        guard case .protocolVersion = ConnectionPair.failure(old.serverEvents) else {
            Issue.record("TLS 1.1: \(String(describing: ConnectionPair.failure(old.serverEvents)))")
            return
        }
        #expect(ConnectionPair.failure(old.clientEvents) == .alertReceived(.protocolVersion))

        let cbc = ConnectionPair(client: client, server: server)
        cbc.client.tamperWithOutgoingHandshake = EngineTrapTests.rewriteClientHello { hello in
            // TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA
            hello.cipherSuites = [CipherSuite(rawValue: 0xC027), CipherSuite(rawValue: 0xC009)]
        }
        cbc.run()
        #expect(ConnectionPair.failure(cbc.serverEvents)
            == .handshakeFailure("no TLS 1.2 ECDHE AEAD suite and signature scheme in common with our certificates"))
        #expect(ConnectionPair.failure(cbc.clientEvents) == .alertReceived(.handshakeFailure))

        let fallback = ConnectionPair(client: client, server: server)
        fallback.client.tamperWithOutgoingHandshake = EngineTrapTests.rewriteClientHello { hello in
            hello.cipherSuites.append(.fallbackSCSV)
        }
        fallback.run()
        #expect(ConnectionPair.failure(fallback.serverEvents) == .inappropriateFallback)
        #expect(ConnectionPair.failure(fallback.clientEvents) == .alertReceived(.inappropriateFallback))
    }

    @Test("an ECDSA P-256 certificate is not used for a client whose supported_groups lacks P-256 (RFC 8422 §5.1)")
    func certificateCurve() {
        var (client, server) = Self.configurations(group: .x25519, key: .p256)
        client.groups = [.x25519]
        let refused = Self.completedPair(client, server)
        #expect(ConnectionPair.failure(refused.serverEvents)
            == .handshakeFailure("no TLS 1.2 ECDHE AEAD suite and signature scheme in common with our certificates"))
        // With an Ed25519 chain beside it, the server picks that one instead.
        server.certificates.append(TestCredentials.leaf(.ed25519))
        let served = Self.completedPair(client, server)
        #expect(ConnectionPair.completed(served.clientEvents))
        #expect(served.client.negotiated?.peerCertificates == TestCredentials.leaf(.ed25519).chain)
        client.groups = [.x25519, .secp256r1]
        let both = Self.completedPair(client, server)
        #expect(both.client.negotiated?.peerCertificates == TestCredentials.leaf(.p256).chain)
    }

    @Test("renegotiation is refused with a no_renegotiation warning and the connection goes on")
    func renegotiationRefused() throws {
        let (client, server) = Self.configurations()
        let pair = Self.completedPair(client, server)
        #expect(ConnectionPair.completed(pair.serverEvents))
        // The client starts a renegotiation: a ClientHello under the current keys.
        let hello = ClientHello(legacyVersion: .tls12, random: [UInt8](repeating: 7, count: 32), legacySessionID: [],
                                cipherSuites: CipherSuite.tls12, legacyCompressionMethods: [0], extensions: [])
        try pair.client.sealRecord(.handshake, hello.encode())
        pair.run()
        #expect(ConnectionPair.failure(pair.serverEvents) == nil)
        #expect(ConnectionPair.failure(pair.clientEvents) == nil)
        // The server answered with a warning alert: one protected alert record.
        #expect(pair.serverWire.suffix(5 + 2 + 8 + 16).first == ContentType.alert.rawValue)
        try pair.send([1, 2, 3], from: pair.client)
        #expect(ConnectionPair.data(pair.serverEvents) == [1, 2, 3])

        // A server's HelloRequest is refused the same way.
        try pair.server.sealRecord(.handshake, HelloRequest().encode())
        pair.run()
        #expect(ConnectionPair.failure(pair.clientEvents) == nil)
        try pair.send([4], from: pair.server)
        #expect(ConnectionPair.data(pair.clientEvents) == [4])
        #expect(throws: TLSError.notReady("TLS 1.2 has no KeyUpdate")) { try pair.client.updateKeys(requestPeerUpdate: false) }
    }

    @Test("a bad ServerKeyExchange signature is decrypt_error; a wrong Finished is decrypt_error")
    func badSignatureAndFinished() {
        let (client, server) = Self.configurations()
        let pair = ConnectionPair(client: client, server: server)
        pair.server.tamperWithOutgoingHandshake = EngineTrapTests.on(.serverKeyExchange) { message in
            var changed = message
            changed[changed.count - 1] ^= 0x01
            return changed
        }
        pair.run()
        guard case .decryptError = ConnectionPair.failure(pair.clientEvents) else {
            Issue.record("signature: \(String(describing: ConnectionPair.failure(pair.clientEvents)))")
            return
        }
        #expect(ConnectionPair.failure(pair.serverEvents) == .alertReceived(.decryptError))

        let finished = ConnectionPair(client: client, server: server)
        finished.client.tamperWithOutgoingHandshake = EngineTrapTests.on(.finished) { message in
            var changed = message
            changed[changed.count - 1] ^= 0x80
            return changed
        }
        finished.run()
        #expect(ConnectionPair.failure(finished.serverEvents) == .decryptError("the peer's TLS 1.2 Finished does not verify"))
    }

    @Test("a ChangeCipherSpec before ServerKeyExchange is unexpected_message")
    func earlyChangeCipherSpec() {
        let (client, server) = Self.configurations()
        let pair = ConnectionPair(client: client, server: server)
        var injected = false
        pair.serverToClient = { bytes in
            guard !injected else { return bytes }
            injected = true
            return bytes + [ContentType.changeCipherSpec.rawValue, 0x03, 0x03, 0x00, 0x01, 0x01]
        }
        pair.run(chunk: 1)
        #expect(ConnectionPair.failure(pair.clientEvents) == .unexpectedMessage("change_cipher_spec out of place in a TLS 1.2 handshake"))
    }

    static func clientAuthPair(_ mode: ClientAuthentication, clientKey: TestCredentials.KeyType?) -> ConnectionPair {
        var (client, server) = Self.configurations(key: .p256)
        server.clientAuthentication = mode
        if let clientKey { client.certificates = [TestCredentials.leaf(clientKey)] }
        return Self.completedPair(client, server)
    }

    @Test("client certificates: required and sent (each key type) → the server sees chain and scheme",
          arguments: TestCredentials.KeyType.allCases)
    func clientCertificate(key: TestCredentials.KeyType) throws {
        let pair = Self.clientAuthPair(.required, clientKey: key)
        #expect(ConnectionPair.completed(pair.clientEvents) && ConnectionPair.completed(pair.serverEvents))
        #expect(pair.server.negotiated?.peerCertificates == TestCredentials.leaf(key).chain)
        let scheme = try #require(pair.server.negotiated?.peerSignatureScheme)
        #expect(TestCredentials.leaf(key).key.signatureSchemes.contains(scheme))
        #expect(pair.verificationRequests.contains(CertificateVerificationRequest(
            chain: TestCredentials.leaf(key).chain, serverName: nil, peerIsServer: false)))
    }

    @Test("client certificates: required and none → handshake_failure; optional and none → served without")
    func clientCertificateMissing() {
        let required = Self.clientAuthPair(.required, clientKey: nil)
        #expect(ConnectionPair.failure(required.serverEvents) == .handshakeFailure("the client sent no certificate, and one is required"))
        #expect(ConnectionPair.failure(required.clientEvents) == .alertReceived(.handshakeFailure))
        let optional = Self.clientAuthPair(.optional, clientKey: nil)
        #expect(ConnectionPair.completed(optional.serverEvents))
        #expect(optional.server.negotiated?.peerCertificates == [])
    }

    @Test("a client certificate the verifier rejects ends the server with the failure's alert")
    func clientCertificateRejected() {
        var (client, server) = Self.configurations(key: .p256)
        server.clientAuthentication = .required
        client.certificates = [TestCredentials.leaf(.ed25519)]
        let pair = ConnectionPair(client: client, server: server)
        pair.clientCertificateVerification = .rejected(.untrustedRoot(issuer: "CN=nobody"))
        pair.run()
        #expect(ConnectionPair.failure(pair.serverEvents) == .badCertificate(.untrustedRoot(issuer: "CN=nobody")))
        #expect(ConnectionPair.failure(pair.clientEvents) == .alertReceived(.unknownCA))
        #expect(!ConnectionPair.completed(pair.serverEvents))
    }

    @Test("warning alerts do not end a TLS 1.2 connection; a flood of them does")
    func warnings() throws {
        let (client, server) = Self.configurations()
        let pair = Self.completedPair(client, server)
        try pair.client.sendAlert(.userCanceled, level: .warning)
        try pair.client.sendAlert(.noRenegotiation, level: .warning)
        pair.run()
        #expect(ConnectionPair.failure(pair.serverEvents) == nil)
        for _ in 0..<40 { try pair.client.sendAlert(.noRenegotiation, level: .warning) }
        pair.run()
        guard case .unexpectedMessage = ConnectionPair.failure(pair.serverEvents) else {
            Issue.record("flood: \(String(describing: ConnectionPair.failure(pair.serverEvents)))")
            return
        }
    }
}

/// TLS 1.2 session tickets (RFC 5077): issued by a server with
/// SessionTicketKeys, kept by a client with a session cache, and resumed in
/// an abbreviated handshake — or, when the ticket does not open, a full one.
@Suite("Engine: TLS 1.2 session tickets")
struct EngineTLS12TicketTests {
    final class Setup {
        var client: TLSClientConfiguration
        var server: TLSServerConfiguration
        let cache = TLSClientSessionCache()
        let keys: SessionTicketKeys
        var now = Instant(nanoseconds: 1_000_000_000)

        init(suite: CipherSuite = .ecdheECDSAWithAES128GCMSHA256, key: TestCredentials.KeyType = .p256) {
            (client, server) = EngineTLS12Tests.configurations(suite: suite, key: key)
            keys = SessionTicketKeys(crypto: SwiftCryptoProvider(), entropy: SeededEntropy(seed: 77), ticketLifetime: 600)
            client.sessionCache = cache
            server.sessionTickets = keys
        }

        func connect(seed: UInt64, tamper: (([UInt8]) -> [UInt8])? = nil) -> ConnectionPair {
            let pair = ConnectionPair(client: client, server: server, seed: seed)
            pair.client.now = now
            pair.server.now = now
            pair.clientToServer = tamper
            pair.run()
            return pair
        }
    }

    @Test("a ticket from a full handshake resumes: no Certificate, no key exchange, same suite and peer certificates",
          arguments: [CipherSuite.ecdheECDSAWithAES128GCMSHA256, .ecdheECDSAWithChaCha20Poly1305SHA256, .ecdheECDSAWithAES256GCMSHA384])
    func resumes(suite: CipherSuite) throws {
        let setup = Setup(suite: suite)
        let first = setup.connect(seed: 1)
        #expect(ConnectionPair.completed(first.clientEvents) && first.client.negotiated?.resumed == false)
        #expect(setup.cache.count == 1)
        // The full handshake's server flights: ServerHello … ServerHelloDone, then
        // NewSessionTicket, CCS and the (encrypted) Finished.
        let firstTypes = EngineTLS12Tests.handshakeTypes(in: first.serverWire)
        #expect(firstTypes.prefix(6) == [2, 11, 12, 14, 4, 0xCC] && firstTypes.count == 7)

        setup.now = setup.now + .seconds(30)
        let second = setup.connect(seed: 2)
        #expect(ConnectionPair.completed(second.clientEvents) && ConnectionPair.completed(second.serverEvents))
        #expect(second.client.negotiated?.resumed == true)
        #expect(second.server.negotiated?.resumed == true)
        #expect(second.client.negotiated?.version == .tls12)
        #expect(second.client.negotiated?.cipherSuite == suite)
        #expect(second.client.negotiated?.peerCertificates == TestCredentials.leaf(.p256).chain)
        // Abbreviated: ServerHello, CCS, Finished — no Certificate, no
        // ServerKeyExchange, and no new ticket while this one is young.
        let secondTypes = EngineTLS12Tests.handshakeTypes(in: second.serverWire)
        #expect(secondTypes.prefix(2) == [2, 0xCC] && secondTypes.count == 3)
        #expect(second.verificationRequests.isEmpty)
        // The same ticket resumes again; past half its lifetime (600 s) the
        // server renews it, and the renewed one resumes in turn.
        for round in 3...5 {
            setup.now = setup.now + .seconds(round == 4 ? 300 : 10)
            let next = setup.connect(seed: UInt64(round))
            #expect(next.server.negotiated?.resumed == true, "connection \(round)")
            let renewed = EngineTLS12Tests.handshakeTypes(in: next.serverWire).contains(4)
            #expect(renewed == (round == 4), "connection \(round)")
        }
        try second.send([9, 8, 7], from: second.client)
        #expect(ConnectionPair.data(second.serverEvents) == [9, 8, 7])
        try second.send([6], from: second.server)
        #expect(ConnectionPair.data(second.clientEvents) == [6])
    }

    @Test("a forged ticket, an expired one, or a retired key gives a full handshake, not a failure")
    func fallsBack() throws {
        let setup = Setup()
        _ = setup.connect(seed: 1)
        // The client holds a forged ticket (one byte flipped): changing it on
        // the wire would change the transcript and fail the handshake anyway.
        var session = try #require(setup.cache.tls12Session(serverName: "localhost", now: setup.now))
        session.ticket[session.ticket.count / 2] ^= 0x01
        setup.cache.store(.tls12(session), serverName: "localhost")
        let forged = setup.connect(seed: 2)
        // The forged ticket went out in the ClientHello.
        let offered = (0...(forged.clientWire.count - session.ticket.count)).contains { start in
            Array(forged.clientWire[start..<(start + session.ticket.count)]) == session.ticket
        }
        #expect(offered)
        #expect(ConnectionPair.completed(forged.serverEvents))
        #expect(forged.server.negotiated?.resumed == false)
        #expect(forged.client.negotiated?.resumed == false)
        #expect(EngineTLS12Tests.handshakeTypes(in: forged.serverWire).contains(11))  // a Certificate: full handshake

        // The forged connection got a fresh ticket; let it expire on the server's clock only.
        setup.now = setup.now + .seconds(601)
        setup.client.sessionCache = setup.cache
        let pair = ConnectionPair(client: setup.client, server: setup.server, seed: 3)
        pair.client.now = Instant(nanoseconds: setup.now.nanoseconds - 600_000_000_000)  // the client still thinks it is fresh
        pair.server.now = setup.now
        pair.run()
        #expect(ConnectionPair.completed(pair.serverEvents))
        #expect(pair.server.negotiated?.resumed == false)
    }

    @Test("a client certificate is remembered in the ticket; without tickets on the server there is no NewSessionTicket")
    func clientCertificateAndNoTickets() {
        let setup = Setup()
        setup.server.clientAuthentication = .required
        setup.client.certificates = [TestCredentials.leaf(.ed25519)]
        _ = setup.connect(seed: 1)
        let resumed = setup.connect(seed: 2)
        #expect(resumed.server.negotiated?.resumed == true)
        #expect(resumed.server.negotiated?.peerCertificates == TestCredentials.leaf(.ed25519).chain)

        setup.server.sessionTickets = nil
        setup.cache.removeAll()
        let plain = setup.connect(seed: 3)
        #expect(ConnectionPair.completed(plain.clientEvents))
        #expect(!EngineTLS12Tests.handshakeTypes(in: plain.serverWire).contains(4))
        #expect(setup.cache.count == 0)
    }
}

/// What a read-only review of the TLS 1.2 and resumption code found; each
/// test failed (or trapped) before its fix.
@Suite("Engine: TLS 1.2 review regressions")
struct EngineTLS12ReviewTests {
    @Test("a client chain too large to seal gets an empty TLS 1.2 ticket, not a trap (RFC 5077 §3.3)")
    func hugeClientChainTicket() {
        var (client, server) = EngineTLS12Tests.configurations(suite: .ecdheECDSAWithAES128GCMSHA256)
        server.sessionTickets = SessionTicketKeys(crypto: SwiftCryptoProvider(), entropy: SeededEntropy(seed: 77), ticketLifetime: 600)
        server.clientAuthentication = .optional
        let cache = TLSClientSessionCache()
        client.sessionCache = cache
        let leaf = TestCredentials.leaf(.p256)
        let filler = 65_520 - leaf.chain[0].count - 32_768 - 10
        client.certificates = [CertifiedKey(chain: [leaf.chain[0], [UInt8](repeating: 0x30, count: 32_768),
                                                   [UInt8](repeating: 0x30, count: filler)], key: leaf.key)]
        let pair = ConnectionPair(client: client, server: server)
        pair.run()
        #expect(ConnectionPair.completed(pair.serverEvents) && ConnectionPair.completed(pair.clientEvents))
        #expect(cache.count == 0)  // the empty ticket is not kept
    }

    @Test("a TLS 1.2-only client offers no TLS 1.3 PSK and keeps its TLS 1.3 ticket")
    func tls12OnlyClientOffersNoPSK() throws {
        var (client, _) = EngineTLS12Tests.configurations()
        let cache = TLSClientSessionCache()
        cache.store(.tls13(TLS13Ticket(ticket: [1, 2, 3, 4], psk: [UInt8](repeating: 7, count: 32), suite: .aes128GCMSHA256,
                                       receivedAt: Instant(nanoseconds: 0), lifetime: 600, ageAdd: 0, serverName: "localhost",
                                       applicationProtocol: nil, peerCertificates: [])), serverName: "localhost")
        client.sessionCache = cache
        let connection = TLSConnection(client: client, crypto: SwiftCryptoProvider(), entropy: SeededEntropy(seed: 1))
        connection.now = Instant(nanoseconds: 1_000_000_000)
        connection.start()
        let wire = connection.takeOutput()
        let hello = try ClientHello(parsing: Array(wire[9...]))
        let types = hello.extensions.map { $0.type }
        #expect(!types.contains(.supportedVersions) && !types.contains(.pskKeyExchangeModes) && !types.contains(.preSharedKey))
        #expect(cache.count == 1)
    }

    @Test("renegotiation attempts in separate records are refused a few times, then end the connection")
    func renegotiationFlood() throws {
        let (client, server) = EngineTLS12Tests.configurations()
        let pair = EngineTLS12Tests.completedPair(client, server)
        let hello = ClientHello(random: [UInt8](repeating: 1, count: 32), legacySessionID: [],
                                cipherSuites: [.ecdheECDSAWithAES128GCMSHA256], legacyCompressionMethods: [0], extensions: []).encode()
        for _ in 0..<TLSConnection.maximumRefusedRenegotiations { try pair.client.sendHandshake(hello) }
        pair.run()
        #expect(ConnectionPair.failure(pair.serverEvents) == nil)
        for _ in 0..<200 { try pair.client.sendHandshake(hello) }
        pair.run()
        #expect(ConnectionPair.failure(pair.serverEvents)
            == .unexpectedMessage("5 renegotiation attempts; renegotiation is not supported"))
    }

    @Test("a HelloRequest during the handshake is ignored by the client and kept out of the transcript (RFC 5246 §7.4.1.1)")
    func helloRequestDuringHandshake() {
        let (client, server) = EngineTLS12Tests.configurations()
        let pair = ConnectionPair(client: client, server: server)
        var injected = false
        pair.serverToClient = { bytes in
            guard !injected else { return bytes }
            injected = true
            // A HelloRequest record ahead of the server's first flight.
            return [ContentType.handshake.rawValue, 0x03, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00] + bytes
        }
        pair.run()
        #expect(ConnectionPair.completed(pair.clientEvents) && ConnectionPair.completed(pair.serverEvents))
    }

    @Test("a resumed TLS 1.2 handshake that fails forgets the session (RFC 5246 §7.2)")
    func failedResumptionForgetsSession() {
        let setup = EngineTLS12TicketTests.Setup()
        _ = setup.connect(seed: 1)
        #expect(setup.cache.count == 1)
        let pair = ConnectionPair(client: setup.client, server: setup.server, seed: 2)
        pair.client.now = setup.now
        pair.server.now = setup.now
        pair.server.tamperWithOutgoingHandshake = EngineTrapTests.on(.finished) { message in
            var changed = message
            changed[changed.count - 1] ^= 1
            return changed
        }
        pair.run()
        #expect(ConnectionPair.failure(pair.clientEvents) == .decryptError("the peer's TLS 1.2 Finished does not verify"))
        #expect(setup.cache.count == 0)
    }

    @Test("a TLS 1.3 client refuses an RSA PKCS#1 CertificateVerify even when its configuration lists the scheme")
    func pkcs1CertificateVerifyRefused() {
        var client = TLSClientConfiguration(serverName: "localhost")
        client.signatureSchemes = [.rsaPKCS1SHA256, .rsaPSSRSAESHA256]
        let server = TLSServerConfiguration(certificates: [TestCredentials.leaf(.rsa2048)])
        let pair = ConnectionPair(client: client, server: server)
        pair.server.tamperWithOutgoingHandshake = EngineTrapTests.on(.certificateVerify) { message in
            var changed = message
            changed[4] = 0x04  // rsa_pss_rsae_sha256 (0x0804) → rsa_pkcs1_sha256 (0x0401)
            changed[5] = 0x01
            return changed
        }
        pair.run()
        #expect(ConnectionPair.failure(pair.clientEvents) == .illegalParameter("CertificateVerify uses rsa_pkcs1_sha256, which was not offered"))
    }
}
