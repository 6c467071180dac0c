import MirageDevices
@testable import MirageTLS
import MirageTLSCrypto
import Testing

/// An entropy source that counts what it hands out (SeededEntropy underneath).
final class CountingEntropy: EntropySource {
    let inner: SeededEntropy
    var bytesDrawn = 0
    init(seed: UInt64) { inner = SeededEntropy(seed: seed) }
    func fill(_ buffer: inout MutableSpan<UInt8>) {
        bytesDrawn += buffer.count
        inner.fill(&buffer)
    }
}

@Suite("Resumption: ticket keys")
struct ResumptionTicketKeyTests {
    static let t0 = Instant(nanoseconds: 5_000_000_000_000)
    let crypto = SwiftCryptoProvider()
    let state = Array("a session state".utf8)

    @Test("a sealed ticket opens to its state until its lifetime ends")
    func roundTripAndExpiry() {
        let keys = SessionTicketKeys(crypto: crypto, entropy: SeededEntropy(seed: 1), ticketLifetime: 600)
        let ticket = keys.seal(state, now: Self.t0)
        #expect(ticket.count == state.count + SessionTicketKeys.overhead)
        #expect(keys.open(ticket, now: Self.t0) == state)
        #expect(keys.open(ticket, now: Self.t0 + .seconds(600)) == state)
        #expect(keys.open(ticket, now: Self.t0 + .seconds(601)) == nil)
        // Issued "in the future" (a clock that went back): refused.
        #expect(keys.open(ticket, now: Self.t0 + .seconds(-1)) == nil)
        #expect(keys.openTicket(ticket, now: Self.t0 + .seconds(3))?.issued == Self.t0)
    }

    @Test("a ticket changed in any bit, cut short or lengthened does not open")
    func forged() {
        let keys = SessionTicketKeys(crypto: crypto, entropy: SeededEntropy(seed: 1))
        let ticket = keys.seal(state, now: Self.t0)
        for index in ticket.indices {
            var changed = ticket
            changed[index] ^= 0x80
            #expect(keys.open(changed, now: Self.t0) == nil, "bit flipped at \(index)")
        }
        #expect(keys.open(Array(ticket.dropLast()), now: Self.t0) == nil)
        #expect(keys.open(ticket + [0], now: Self.t0) == nil)
        #expect(keys.open([], now: Self.t0) == nil)
        #expect(keys.open(Array(ticket.prefix(SessionTicketKeys.overhead - 1)), now: Self.t0) == nil)
        // Another server's keys (another key name) do not open it.
        let other = SessionTicketKeys(crypto: crypto, entropy: SeededEntropy(seed: 2))
        _ = other.seal(state, now: Self.t0)
        #expect(other.open(ticket, now: Self.t0) == nil)
    }

    @Test("keys come from the entropy source: the same seed seals the same ticket, another seed another")
    func keysFromEntropy() {
        let entropy = CountingEntropy(seed: 7)
        let keys = SessionTicketKeys(crypto: crypto, entropy: entropy)
        #expect(entropy.bytesDrawn == 0)
        let first = keys.seal(state, now: Self.t0)
        // Key name, AES-256 key and the ticket's nonce.
        #expect(entropy.bytesDrawn == SessionTicketKeys.keyNameLength + 32 + SessionTicketKeys.nonceLength)
        _ = keys.seal(state, now: Self.t0)
        #expect(entropy.bytesDrawn == SessionTicketKeys.keyNameLength + 32 + 2 * SessionTicketKeys.nonceLength)
        let same = SessionTicketKeys(crypto: crypto, entropy: SeededEntropy(seed: 7)).seal(state, now: Self.t0)
        let other = SessionTicketKeys(crypto: crypto, entropy: SeededEntropy(seed: 8)).seal(state, now: Self.t0)
        #expect(first == same)
        #expect(first != other)
        #expect(first.prefix(SessionTicketKeys.keyNameLength) != other.prefix(SessionTicketKeys.keyNameLength))
    }

    @Test("rotation: every rotationInterval a new key; old tickets open while they live; retired keys are dropped")
    func rotation() {
        let entropy = CountingEntropy(seed: 3)
        let keys = SessionTicketKeys(crypto: crypto, entropy: entropy, rotationInterval: .seconds(100), ticketLifetime: 300)
        let old = keys.seal(state, now: Self.t0)
        _ = keys.seal(state, now: Self.t0 + .seconds(99))
        #expect(keys.keyCount == 1)
        let fresh = keys.seal(state, now: Self.t0 + .seconds(100))
        #expect(keys.keyCount == 2)
        #expect(old.prefix(16) != fresh.prefix(16))
        #expect(keys.open(old, now: Self.t0 + .seconds(250)) == state)
        // The old key retired at t0+100: its last tickets live until t0+400.
        #expect(keys.open(fresh, now: Self.t0 + .seconds(390)) == state)
        #expect(keys.keyCount == 2)
        #expect(keys.open(fresh, now: Self.t0 + .seconds(401)) == nil)
        #expect(keys.keyCount == 1)
        // Forced rotations keep at most maximumRetiredKeys old keys.
        let ticket = keys.seal(state, now: Self.t0 + .seconds(402))
        for step in 1...SessionTicketKeys.maximumRetiredKeys {
            keys.rotate(now: Self.t0 + .seconds(402 + Int64(step)))
        }
        #expect(keys.open(ticket, now: Self.t0 + .seconds(410)) == state)
        keys.rotate(now: Self.t0 + .seconds(411))
        #expect(keys.keyCount == 1 + SessionTicketKeys.maximumRetiredKeys)
        #expect(keys.open(ticket, now: Self.t0 + .seconds(412)) == nil)
    }

    @Test("the lifetime is capped at 7 days (RFC 8446 §4.6.1)")
    func lifetimeCap() {
        let keys = SessionTicketKeys(crypto: crypto, entropy: SeededEntropy(seed: 1), ticketLifetime: 10_000_000)
        #expect(keys.ticketLifetime == 604_800)
    }
}

@Suite("Resumption: client session cache")
struct ResumptionCacheTests {
    static let t0 = Instant(nanoseconds: 9_000_000_000_000)

    static func ticket(_ tag: UInt8, lifetime: UInt32 = 3600, at time: Instant = t0) -> TLS13Ticket {
        TLS13Ticket(ticket: [tag], psk: [UInt8](repeating: tag, count: 32), suite: .aes128GCMSHA256, receivedAt: time,
                    lifetime: lifetime, ageAdd: 0, serverName: nil, applicationProtocol: nil, peerCertificates: [])
    }

    static func session12(_ tag: UInt8, lifetime: UInt32 = 0) -> TLS12Session {
        TLS12Session(suite: .ecdheECDSAWithAES128GCMSHA256, masterSecret: [UInt8](repeating: tag, count: 48), ticket: [tag],
                     receivedAt: t0, lifetime: lifetime, serverName: "a", applicationProtocol: nil, peerCertificates: [])
    }

    @Test("a TLS 1.3 ticket is taken once, newest first")
    func singleUse() {
        let cache = TLSClientSessionCache()
        cache.store(.tls13(Self.ticket(1)), serverName: "a")
        cache.store(.tls13(Self.ticket(2)), serverName: "a")
        #expect(cache.takeTLS13Ticket(serverName: "a", now: Self.t0)?.ticket == [2])
        #expect(cache.takeTLS13Ticket(serverName: "a", now: Self.t0)?.ticket == [1])
        #expect(cache.takeTLS13Ticket(serverName: "a", now: Self.t0) == nil)
        #expect(cache.count == 0)
    }

    @Test("entries are kept per server name, nil as \"\"")
    func perName() {
        let cache = TLSClientSessionCache()
        cache.store(.tls13(Self.ticket(1)), serverName: "a")
        cache.store(.tls13(Self.ticket(2)), serverName: nil)
        #expect(cache.takeTLS13Ticket(serverName: "b", now: Self.t0) == nil)
        #expect(cache.takeTLS13Ticket(serverName: "", now: Self.t0)?.ticket == [2])
        #expect(cache.takeTLS13Ticket(serverName: "a", now: Self.t0)?.ticket == [1])
    }

    @Test("bounded: the least recently used entry goes first; at most 4 tickets per name")
    func bounded() {
        let cache = TLSClientSessionCache(capacity: 3)
        cache.store(.tls12(Self.session12(1)), serverName: "a")
        cache.store(.tls13(Self.ticket(2)), serverName: "b")
        cache.store(.tls13(Self.ticket(3)), serverName: "c")
        // Using "a" makes "b" the least recently used.
        #expect(cache.tls12Session(serverName: "a", now: Self.t0)?.ticket == [1])
        cache.store(.tls13(Self.ticket(4)), serverName: "d")
        #expect(cache.count == 3)
        #expect(cache.takeTLS13Ticket(serverName: "b", now: Self.t0) == nil)
        #expect(cache.tls12Session(serverName: "a", now: Self.t0) != nil)

        let perServer = TLSClientSessionCache()
        for tag in UInt8(1)...10 { perServer.store(.tls13(Self.ticket(tag)), serverName: "x") }
        #expect(perServer.count == TLSClientSessionCache.maximumTicketsPerServer)
        #expect(perServer.takeTLS13Ticket(serverName: "x", now: Self.t0)?.ticket == [10])

        let zero = TLSClientSessionCache(capacity: 0)
        zero.store(.tls13(Self.ticket(1)), serverName: "a")
        zero.store(.tls13(Self.ticket(2)), serverName: "b")
        #expect(zero.count == 1)
    }

    @Test("expired entries are dropped; a TLS 1.2 session stays after use and is replaced by a newer one")
    func expiryAndTLS12() {
        let cache = TLSClientSessionCache()
        cache.store(.tls13(Self.ticket(1, lifetime: 10)), serverName: "a")
        #expect(cache.takeTLS13Ticket(serverName: "a", now: Self.t0 + .seconds(10)) == nil)
        #expect(cache.count == 0)
        cache.store(.tls12(Self.session12(1)), serverName: "a")
        cache.store(.tls12(Self.session12(2, lifetime: 100)), serverName: "a")
        #expect(cache.count == 1)
        guard case .tls12(let session)? = cache.take(serverName: "a", now: Self.t0) else {
            Issue.record("no TLS 1.2 session")
            return
        }
        #expect(session.ticket == [2])
        #expect(cache.count == 1)
        #expect(cache.tls12Session(serverName: "a", now: Self.t0 + .seconds(100)) == nil)
        // A TLS 1.3 ticket is preferred over the TLS 1.2 session.
        cache.store(.tls12(Self.session12(3)), serverName: "a")
        cache.store(.tls13(Self.ticket(4)), serverName: "a")
        guard case .tls13(let ticket)? = cache.take(serverName: "a", now: Self.t0) else {
            Issue.record("no TLS 1.3 ticket")
            return
        }
        #expect(ticket.ticket == [4])
        cache.removeTLS12Session(serverName: "a")
        #expect(cache.take(serverName: "a", now: Self.t0) == nil)
    }
}

@Suite("Resumption: session state and pre_shared_key bodies")
struct ResumptionWireTests {
    static let full = SessionState(version: .tls13, suite: .aes256GCMSHA384, secret: [UInt8](repeating: 7, count: 48),
                                   applicationProtocol: "h2", serverName: "example.com",
                                   peerCertificates: [[1, 2, 3], [4, 5]], ageAdd: 0xDEAD_BEEF)

    @Test("SessionState encodes and decodes every field, TLS 1.3 and TLS 1.2")
    func stateRoundTrip() {
        #expect(SessionState(decoding: Self.full.encode()) == Self.full)
        let tls12 = SessionState(version: .tls12, suite: .ecdheRSAWithAES128GCMSHA256, secret: [UInt8](repeating: 1, count: 48),
                                 applicationProtocol: nil, serverName: nil, peerCertificates: [])
        #expect(SessionState(decoding: tls12.encode()) == tls12)
        #expect(tls12.ageAdd == 0)
    }

    static let badStates: [(String, [UInt8])] = {
        let good = full.encode()
        var wrongFormat = good; wrongFormat[0] = 2
        var wrongVersion = good; wrongVersion[2] = 0x02  // 0x0302
        var mismatched = good; mismatched[3] = 0xC0; mismatched[4] = 0x2F  // a TLS 1.2 suite tagged TLS 1.3
        var unknownSuite = good; unknownSuite[3] = 0x13; unknownSuite[4] = 0x05
        var emptySecret = SessionState(version: .tls13, suite: .aes128GCMSHA256, secret: [1], applicationProtocol: nil,
                                       serverName: nil, peerCertificates: []).encode()
        emptySecret[5] = 0
        let tooMany = SessionState(version: .tls13, suite: .aes128GCMSHA256, secret: [1], applicationProtocol: nil, serverName: nil,
                                   peerCertificates: Array(repeating: [1], count: SessionState.maximumCertificates + 1))
        var rawTooMany: [UInt8] = Array(tooMany.encode().dropLast(3 + 4 * SessionState.maximumCertificates))
        rawTooMany.appendVector24 { out in for _ in 0...SessionState.maximumCertificates { out.appendVector24 { $0.append(1) } } }
        return [("empty", []), ("format", wrongFormat), ("version", wrongVersion), ("suite of another version", mismatched),
                ("unknown suite", unknownSuite), ("truncated", Array(good.dropLast())), ("trailing byte", good + [0]),
                ("empty secret", emptySecret), ("too many certificates", rawTooMany)]
    }()

    @Test("SessionState refuses what it did not write", arguments: badStates)
    func stateTraps(name: String, bytes: [UInt8]) {
        #expect(SessionState(decoding: bytes) == nil, "\(name)")
    }

    @Test("isEncodable bounds the certificates a ticket carries")
    func stateBounds() {
        var state = Self.full
        #expect(state.isEncodable)
        state.peerCertificates = [[UInt8](repeating: 1, count: SessionState.maximumCertificateBytes + 1)]
        #expect(!state.isEncodable)
        state.peerCertificates = Array(repeating: [1], count: SessionState.maximumCertificates + 1)
        #expect(!state.isEncodable)
    }

    @Test("OfferedPSKs and the ServerHello's selected identity round trip")
    func pskRoundTrip() throws {
        let offer = OfferedPSKs(identities: [PSKIdentity(identity: [1, 2, 3], obfuscatedTicketAge: 42),
                                             PSKIdentity(identity: [9], obfuscatedTicketAge: 0xFFFF_FFFF)],
                                binders: [[UInt8](repeating: 5, count: 32), [UInt8](repeating: 6, count: 48)])
        let encoded = offer.encode()
        #expect(try OfferedPSKs(parsing: encoded) == offer)
        #expect(encoded.suffix(offer.bindersLength) == ArraySlice(OfferedPSKs.encodeBinders(offer.binders)))
        #expect(try PreSharedKeyServerHello(parsing: [0, 1]).selectedIdentity == 1)
        #expect(PreSharedKeyServerHello(selectedIdentity: 3).encode() == [0, 3])
    }

    static let badOffers: [(String, [UInt8], AlertDescription)] = {
        let binder = [UInt8](repeating: 1, count: 32)
        func offer(_ identities: [[UInt8]], _ binders: [[UInt8]]) -> [UInt8] {
            var out: [UInt8] = []
            out.appendVector16 { out in for i in identities { out.appendVector16 { $0.append(contentsOf: i) }; out.appendUInt32(0) } }
            out.append(contentsOf: OfferedPSKs.encodeBinders(binders))
            return out
        }
        var truncated = offer([[1]], [binder]); truncated.removeLast()
        return [
            ("no identities", offer([], [binder]), .decodeError),
            ("no binders", offer([[1]], []), .decodeError),
            ("empty identity", offer([[]], [binder]), .decodeError),
            ("short binder", offer([[1]], [[UInt8](repeating: 1, count: 31)]), .decodeError),
            ("more binders than identities", offer([[1]], [binder, binder]), .illegalParameter),
            ("more identities than binders", offer([[1], [2]], [binder]), .illegalParameter),
            ("too many identities", offer(Array(repeating: [1], count: 17), Array(repeating: binder, count: 17)), .decodeError),
            ("truncated", truncated, .decodeError),
            ("trailing byte", offer([[1]], [binder]) + [0], .decodeError),
        ]
    }()

    @Test("OfferedPSKs refuses malformed offers with the right alert", arguments: badOffers)
    func pskTraps(name: String, bytes: [UInt8], alert: AlertDescription) {
        do {
            _ = try OfferedPSKs(parsing: bytes)
            Issue.record("\(name) parsed")
        } catch {
            #expect(error.alert == alert, "\(name)")
        }
    }

    @Test("a selected identity must be exactly two bytes", arguments: [[UInt8](), [0], [0, 0, 0]])
    func selectedIdentityTraps(bytes: [UInt8]) {
        #expect(throws: TLSError.self) { try PreSharedKeyServerHello(parsing: bytes) }
    }
}
