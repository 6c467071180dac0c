import MirageDevices
@testable import MirageTLS
import MirageTLSCrypto
import Testing

/// A server's ticket keys and a client's session cache shared by the
/// connections of one test, with a clock the test moves.
final class ResumptionFixture {
    let keys: SessionTicketKeys
    let cache: TLSClientSessionCache
    var client: TLSClientConfiguration
    var server: TLSServerConfiguration
    var seed: UInt64 = 10

    init(suite: CipherSuite = .aes128GCMSHA256, rotationInterval: Interval = .seconds(3600), ticketLifetime: UInt32 = 7200) {
        keys = SessionTicketKeys(crypto: SwiftCryptoProvider(), entropy: SeededEntropy(seed: 99),
                                 rotationInterval: rotationInterval, ticketLifetime: ticketLifetime)
        cache = TLSClientSessionCache()
        (client, server) = EngineHandshakeTests.configurations(suite: suite)
        client.sessionCache = cache
        server.sessionTickets = keys
    }

    /// Types of the handshake messages a connection sends, in order.
    final class Recorder {
        var types: [UInt8] = []
    }

    /// One connection at `now`, run to the end of the handshake; `serverSent`
    /// lists the server's handshake message types.
    func connect(at now: Instant, tamperClient: (([UInt8]) -> [UInt8])? = nil) -> (pair: ConnectionPair, serverSent: Recorder) {
        seed += 2
        let pair = ConnectionPair(client: client, server: server, seed: seed)
        pair.client.now = now
        pair.server.now = now
        let recorder = Recorder()
        pair.server.tamperWithOutgoingHandshake = { message in
            if let type = message.first { recorder.types.append(type) }
            return message
        }
        pair.client.tamperWithOutgoingHandshake = tamperClient
        pair.run()
        return (pair, recorder)
    }

    /// The cached TLS 1.3 tickets for "localhost", taken out.
    func takeAll(now: Instant) -> [TLS13Ticket] {
        var tickets: [TLS13Ticket] = []
        while let ticket = cache.takeTLS13Ticket(serverName: "localhost", now: now) { tickets.append(ticket) }
        return tickets
    }
}

@Suite("Resumption: TLS 1.3 engines back to back")
struct ResumptionEngineTests {
    static let t0 = Instant(nanoseconds: 1_000_000_000_000)

    @Test("full handshake, then a resumed one, for every TLS 1.3 suite", arguments: CipherSuite.tls13)
    func fullThenResumed(suite: CipherSuite) throws {
        let fixture = ResumptionFixture(suite: suite)
        let (first, firstSent) = fixture.connect(at: Self.t0)
        #expect(ConnectionPair.completed(first.clientEvents) && ConnectionPair.completed(first.serverEvents))
        #expect(first.client.negotiated?.resumed == false)
        #expect(first.server.negotiated?.resumed == false)
        #expect(firstSent.types.contains(HandshakeType.certificate.rawValue))
        // Two NewSessionTickets (the default) after the client's Finished, both kept.
        #expect(firstSent.types.filter { $0 == HandshakeType.newSessionTicket.rawValue }.count == 2)
        #expect(fixture.cache.count == 2)

        let (second, secondSent) = fixture.connect(at: Self.t0 + .seconds(5))
        #expect(ConnectionPair.completed(second.clientEvents) && ConnectionPair.completed(second.serverEvents))
        #expect(second.client.negotiated?.resumed == true)
        #expect(second.server.negotiated?.resumed == true)
        #expect(second.client.negotiated?.cipherSuite == suite)
        // No Certificate or CertificateVerify from the server, and nothing to verify.
        #expect(secondSent.types == [HandshakeType.serverHello.rawValue, HandshakeType.encryptedExtensions.rawValue,
                                     HandshakeType.finished.rawValue, HandshakeType.newSessionTicket.rawValue,
                                     HandshakeType.newSessionTicket.rawValue])
        #expect(second.verificationRequests.isEmpty)
        // The server's certificates come from the ticket's original connection.
        #expect(second.client.negotiated?.peerCertificates == TestCredentials.leaf(.p256).chain)
        #expect(second.client.negotiated?.peerSignatureScheme == nil)
        // One ticket used, two new ones stored.
        #expect(fixture.cache.count == 3)
        let request = Array("ping".utf8)
        try second.send(request, from: second.client)
        #expect(ConnectionPair.data(second.serverEvents) == request)
        try second.send(Array("pong".utf8), from: second.server)
        #expect(ConnectionPair.data(second.clientEvents) == Array("pong".utf8))
    }

    @Test("a resumed connection's tickets resume again, keeping the original certificates")
    func chainedResumption() throws {
        let fixture = ResumptionFixture()
        _ = fixture.connect(at: Self.t0)
        _ = fixture.takeAll(now: Self.t0).first.map { fixture.cache.store(.tls13($0), serverName: "localhost") }
        let (second, _) = fixture.connect(at: Self.t0 + .seconds(1))
        #expect(second.client.negotiated?.resumed == true)
        #expect(fixture.cache.count == 2)
        let (third, thirdSent) = fixture.connect(at: Self.t0 + .seconds(2))
        #expect(third.client.negotiated?.resumed == true)
        #expect(!thirdSent.types.contains(HandshakeType.certificate.rawValue))
        #expect(third.client.negotiated?.peerCertificates == TestCredentials.leaf(.p256).chain)
    }

    @Test("a ticket with a flipped bit does not open: a full handshake, no alert", arguments: [0, 20, 40, -1])
    func forgedTicket(position: Int) throws {
        let fixture = ResumptionFixture()
        _ = fixture.connect(at: Self.t0)
        var tickets = fixture.takeAll(now: Self.t0)
        try #require(!tickets.isEmpty)
        let index = position < 0 ? tickets[0].ticket.count - 1 : position
        tickets[0].ticket[index] ^= 0x04
        fixture.cache.store(.tls13(tickets[0]), serverName: "localhost")
        let (second, sent) = fixture.connect(at: Self.t0 + .seconds(1))
        #expect(ConnectionPair.completed(second.clientEvents) && ConnectionPair.completed(second.serverEvents))
        #expect(second.client.negotiated?.resumed == false)
        #expect(second.server.negotiated?.resumed == false)
        #expect(sent.types.contains(HandshakeType.certificate.rawValue))
        #expect(second.verificationRequests.count == 1)
    }

    @Test("an expired ticket: the client drops it, and a server refuses one still offered")
    func expiredTicket() throws {
        let fixture = ResumptionFixture(ticketLifetime: 60)
        _ = fixture.connect(at: Self.t0)
        #expect(fixture.cache.count == 2)
        // The client's cache: past the lifetime the server announced, nothing is offered.
        let late = Self.t0 + .seconds(61)
        let (second, _) = fixture.connect(at: late)
        #expect(second.client.negotiated?.resumed == false)
        #expect(ConnectionPair.completed(second.serverEvents))
        // A client that believes the ticket is fresh: the server's lifetime check refuses it.
        _ = fixture.takeAll(now: late)
        let (third, _) = fixture.connect(at: late + .seconds(1))
        #expect(third.client.negotiated?.resumed == false)
        var stale = try #require(fixture.takeAll(now: late + .seconds(1)).first)
        stale.lifetime = 100_000  // the client would keep it; its age agrees with the server's
        fixture.cache.store(.tls13(stale), serverName: "localhost")
        let (fourth, sent) = fixture.connect(at: late + .seconds(200))
        #expect(ConnectionPair.completed(fourth.serverEvents))
        #expect(fourth.server.negotiated?.resumed == false)
        #expect(sent.types.contains(HandshakeType.certificate.rawValue))
    }

    @Test("rotation: a ticket of the previous key still opens within its lifetime; a retired key's does not")
    func rotatedKeys() throws {
        let fixture = ResumptionFixture(rotationInterval: .seconds(100), ticketLifetime: 7200)
        _ = fixture.connect(at: Self.t0)
        #expect(fixture.keys.keyCount == 1)
        // 150 s later the server seals under a new key; the old ticket still resumes.
        let (second, _) = fixture.connect(at: Self.t0 + .seconds(150))
        #expect(second.server.negotiated?.resumed == true)
        #expect(fixture.keys.keyCount == 2)

        // A ticket whose key was retired beyond the kept ones: a full handshake.
        let later = Self.t0 + .seconds(160)
        for step in 1...(SessionTicketKeys.maximumRetiredKeys + 1) {
            fixture.keys.rotate(now: later + .seconds(Int64(step)))
        }
        let (third, sent) = fixture.connect(at: later + .seconds(10))
        #expect(ConnectionPair.completed(third.serverEvents))
        #expect(third.server.negotiated?.resumed == false)
        #expect(sent.types.contains(HandshakeType.certificate.rawValue))
    }

    @Test("a wrong binder ends the handshake with decrypt_error")
    func badBinder() throws {
        let fixture = ResumptionFixture()
        _ = fixture.connect(at: Self.t0)
        // The binder is the ClientHello's last bytes (§4.2.11): flip its last bit.
        let (pair, _) = fixture.connect(at: Self.t0 + .seconds(1)) { message in
            var changed = message
            if message.first == HandshakeType.clientHello.rawValue { changed[changed.count - 1] ^= 0x01 }
            return changed
        }
        let serverFailure = try #require(ConnectionPair.failure(pair.serverEvents))
        #expect(serverFailure.alert == .decryptError)
        #expect(ConnectionPair.failure(pair.clientEvents) == .alertReceived(.decryptError))
    }

    @Test("a ticket whose claimed age is off by more than the tolerance: a full handshake")
    func ageOutsideWindow() throws {
        let fixture = ResumptionFixture()
        _ = fixture.connect(at: Self.t0)
        var ticket = try #require(fixture.takeAll(now: Self.t0).first)
        ticket.ageAdd &+= 20_000  // the client now claims 20 s more than it is
        fixture.cache.store(.tls13(ticket), serverName: "localhost")
        let (second, _) = fixture.connect(at: Self.t0 + .seconds(1))
        #expect(ConnectionPair.completed(second.serverEvents))
        #expect(second.server.negotiated?.resumed == false)
        // Within the window (5 s off) it resumes.
        _ = fixture.takeAll(now: Self.t0 + .seconds(1))
        let (third, _) = fixture.connect(at: Self.t0 + .seconds(2))
        #expect(third.client.negotiated?.resumed == false)  // the cache was emptied: full
        var near = try #require(fixture.takeAll(now: Self.t0 + .seconds(2)).first)
        near.ageAdd &+= 5_000
        fixture.cache.store(.tls13(near), serverName: "localhost")
        let (fourth, _) = fixture.connect(at: Self.t0 + .seconds(3))
        #expect(fourth.server.negotiated?.resumed == true)
    }

    @Test("a ticket for another SNI name or another ALPN protocol: a full handshake")
    func nameAndProtocolMustMatch() throws {
        let fixture = ResumptionFixture()
        fixture.client.applicationProtocols = ["h2", "http/1.1"]
        fixture.server.applicationProtocols = ["h2", "http/1.1"]
        _ = fixture.connect(at: Self.t0)
        let tickets = fixture.takeAll(now: Self.t0)
        try #require(tickets.count == 2)
        // Offered under another name.
        fixture.cache.store(.tls13(tickets[0]), serverName: "other.example")
        fixture.client.serverName = "other.example"
        let (renamed, _) = fixture.connect(at: Self.t0 + .seconds(1))
        #expect(ConnectionPair.completed(renamed.serverEvents))
        #expect(renamed.server.negotiated?.resumed == false)
        // Same name, but the server now prefers another protocol.
        fixture.client.serverName = "localhost"
        fixture.cache.removeAll()
        fixture.cache.store(.tls13(tickets[1]), serverName: "localhost")
        fixture.server.applicationProtocols = ["http/1.1", "h2"]
        let (other, _) = fixture.connect(at: Self.t0 + .seconds(1))
        #expect(other.server.negotiated?.applicationProtocol == "http/1.1")
        #expect(other.server.negotiated?.resumed == false)
    }

    @Test("a HelloRetryRequest: the second ClientHello offers the ticket again with a new binder, and resumes")
    func helloRetryRequestWithPSK() throws {
        let fixture = ResumptionFixture()
        _ = fixture.connect(at: Self.t0)
        fixture.client.groups = [.x25519, .secp256r1]
        fixture.client.keyShareGroups = [.x25519]
        fixture.server.groups = [.secp256r1]
        let (pair, sent) = fixture.connect(at: Self.t0 + .seconds(1))
        #expect(ConnectionPair.completed(pair.clientEvents) && ConnectionPair.completed(pair.serverEvents))
        #expect(pair.client.negotiated?.usedHelloRetryRequest == true)
        #expect(pair.client.negotiated?.resumed == true)
        #expect(pair.server.negotiated?.resumed == true)
        #expect(!sent.types.contains(HandshakeType.certificate.rawValue))
    }

    @Test("a server without ticket keys ignores the offer and issues none; a client without a cache is offered none")
    func resumptionOff() throws {
        let fixture = ResumptionFixture()
        _ = fixture.connect(at: Self.t0)
        fixture.server.sessionTickets = nil
        let (pair, sent) = fixture.connect(at: Self.t0 + .seconds(1))
        #expect(ConnectionPair.completed(pair.serverEvents))
        #expect(pair.server.negotiated?.resumed == false)
        #expect(!sent.types.contains(HandshakeType.newSessionTicket.rawValue))

        // No cache: no psk_key_exchange_modes, so the server sends no tickets (§4.2.9).
        fixture.server.sessionTickets = fixture.keys
        fixture.client.sessionCache = nil
        let (plain, plainSent) = fixture.connect(at: Self.t0 + .seconds(2))
        #expect(ConnectionPair.completed(plain.clientEvents))
        #expect(!plainSent.types.contains(HandshakeType.newSessionTicket.rawValue))
    }

    @Test("ticketsPerHandshake sets how many tickets follow the handshake (capped)", arguments: [0, 1, 3, 100])
    func ticketCount(count: Int) {
        let fixture = ResumptionFixture()
        fixture.server.ticketsPerHandshake = count
        let (pair, sent) = fixture.connect(at: Self.t0)
        #expect(ConnectionPair.completed(pair.clientEvents))
        let expected = min(count, TLSConnection.maximumTicketsPerHandshake)
        #expect(sent.types.filter { $0 == HandshakeType.newSessionTicket.rawValue }.count == expected)
        #expect(fixture.cache.count == min(expected, TLSClientSessionCache.maximumTicketsPerServer))
    }

    /// Rewrites one extension of the client's ClientHello (before it enters the client's transcript).
    static func rewriteClientHello(_ type: ExtensionType, _ change: @escaping ([UInt8]) -> [UInt8]) -> ([UInt8]) -> [UInt8] {
        { message in
            guard message.first == HandshakeType.clientHello.rawValue,
                  var hello = try? ClientHello(parsing: Array(message.dropFirst(4))),
                  let index = hello.extensions.firstIndex(where: { $0.type == type }) else { return message }
            hello.extensions[index].data = change(hello.extensions[index].data)
            return hello.encode()
        }
    }

    @Test("a client offering only psk_ke gets a full handshake and no tickets (psk_dhe_ke only, §4.2.9)")
    func pskKEOnly() throws {
        let fixture = ResumptionFixture()
        _ = fixture.connect(at: Self.t0)
        let (pair, sent) = fixture.connect(at: Self.t0 + .seconds(1), tamperClient: Self.rewriteClientHello(.pskKeyExchangeModes) { _ in
            PSKKeyExchangeModes(modes: [PSKKeyExchangeModes.pskKE]).encode()
        })
        #expect(ConnectionPair.completed(pair.clientEvents) && ConnectionPair.completed(pair.serverEvents))
        #expect(pair.server.negotiated?.resumed == false)
        #expect(sent.types.contains(HandshakeType.certificate.rawValue))
        #expect(!sent.types.contains(HandshakeType.newSessionTicket.rawValue))
    }

    /// Ways to spoil the client's pre_shared_key, with the alert each earns.
    enum MalformedOffer: String, CaseIterable, Sendable {
        case identityWithoutBinder, shortBinder, truncated

        var alert: AlertDescription {
            self == .identityWithoutBinder ? .illegalParameter : .decodeError
        }

        func apply(_ data: [UInt8]) -> [UInt8] {
            guard var offer = try? OfferedPSKs(parsing: data) else { return data }
            switch self {
            case .identityWithoutBinder:
                offer.identities.append(PSKIdentity(identity: [1, 2, 3], obfuscatedTicketAge: 0))
                var out: [UInt8] = []
                out.appendVector16 { out in
                    for identity in offer.identities {
                        out.appendVector16 { $0.append(contentsOf: identity.identity) }
                        out.appendUInt32(identity.obfuscatedTicketAge)
                    }
                }
                return out + OfferedPSKs.encodeBinders(offer.binders)
            case .shortBinder:
                offer.binders[0].removeLast()
                return offer.encode()
            case .truncated:
                return Array(data.dropLast())
            }
        }
    }

    @Test("a malformed pre_shared_key ends the handshake with the right alert", arguments: MalformedOffer.allCases)
    func malformedOffer(_ kind: MalformedOffer) throws {
        let fixture = ResumptionFixture()
        _ = fixture.connect(at: Self.t0)
        let (pair, _) = fixture.connect(at: Self.t0 + .seconds(1), tamperClient: Self.rewriteClientHello(.preSharedKey) { kind.apply($0) })
        #expect(ConnectionPair.failure(pair.serverEvents)?.alert == kind.alert)
        #expect(ConnectionPair.failure(pair.clientEvents) == .alertReceived(kind.alert))
    }

    @Test("a ServerHello with pre_shared_key when none was offered is unsupported_extension")
    func unsolicitedPSK() throws {
        var (client, server) = EngineHandshakeTests.configurations()
        client.sessionCache = nil
        server.sessionTickets = nil
        let pair = ConnectionPair(client: client, server: server)
        pair.server.tamperWithOutgoingHandshake = { message in
            guard message.first == HandshakeType.serverHello.rawValue,
                  var hello = try? ServerHello(parsing: Array(message.dropFirst(4))) else { return message }
            hello.extensions.insert(Extension(type: .preSharedKey, data: [0, 0]), at: 0)
            return hello.encode()
        }
        pair.run()
        #expect(ConnectionPair.failure(pair.clientEvents) == .unsupportedExtension(.preSharedKey))
    }

    @Test("a ServerHello selecting an identity that was not offered is illegal_parameter")
    func selectedIdentityOutOfRange() throws {
        let fixture = ResumptionFixture()
        _ = fixture.connect(at: Self.t0)
        let pair = ConnectionPair(client: fixture.client, server: fixture.server, seed: 500)
        pair.client.now = Self.t0 + .seconds(1)
        pair.server.now = Self.t0 + .seconds(1)
        pair.server.tamperWithOutgoingHandshake = { message in
            guard message.first == HandshakeType.serverHello.rawValue,
                  var hello = try? ServerHello(parsing: Array(message.dropFirst(4))),
                  let index = hello.extensions.firstIndex(where: { $0.type == .preSharedKey }) else { return message }
            hello.extensions[index].data = [0, 1]
            return hello.encode()
        }
        pair.run()
        #expect(ConnectionPair.failure(pair.clientEvents)?.alert == .illegalParameter)
    }
}
