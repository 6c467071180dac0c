import MirageDevices

/// A TLS 1.3 ticket a client holds (RFC 8446 §4.6.1) with what resuming
/// needs: the PSK derived from it and the original connection's parameters.
struct TLS13Ticket {
    /// The ticket, sent as the PSK identity.
    var ticket: [UInt8]
    /// HKDF-Expand-Label(resumption_master_secret, "resumption", ticket_nonce, Hash.length) (§4.6.1).
    var psk: [UInt8]
    /// The suite of the connection that received it; a resumption must use
    /// a suite with the same hash (§4.2.11).
    var suite: CipherSuite
    /// When it arrived (the driver's clock): its age is measured from here.
    var receivedAt: Instant
    /// ticket_lifetime in seconds (≤ 7 days).
    var lifetime: UInt32
    /// ticket_age_add.
    var ageAdd: UInt32
    /// The SNI name of the original connection.
    var serverName: String?
    /// The ALPN protocol of the original connection.
    var applicationProtocol: String?
    /// The server's certificates of the original connection (DER, leaf first).
    var peerCertificates: [[UInt8]]
}

/// A TLS 1.2 session a client can resume with a ticket (RFC 5077); the
/// TLS 1.2 engine fills and reads it.
struct TLS12Session {
    /// The suite of the session.
    var suite: CipherSuite
    /// The 48-byte master secret.
    var masterSecret: [UInt8]
    /// The ticket (RFC 5077 §3.3), opaque to the client.
    var ticket: [UInt8]
    /// When the ticket arrived.
    var receivedAt: Instant
    /// ticket_lifetime_hint in seconds (0: unspecified).
    var lifetime: UInt32
    /// The SNI name of the original connection.
    var serverName: String?
    /// The ALPN protocol of the original connection.
    var applicationProtocol: String?
    /// The server's certificates of the original connection.
    var peerCertificates: [[UInt8]]
}

/// Something a client can resume.
enum ResumableSession {
    /// A TLS 1.3 ticket (used once).
    case tls13(TLS13Ticket)
    /// A TLS 1.2 session with its ticket.
    case tls12(TLS12Session)
}

/// A client's session cache (RFC 8446 §4.6.1, RFC 5077): tickets by server
/// name, bounded, least recently used dropped first. Share one across the
/// connections of a client (set `TLSClientConfiguration.sessionCache`).
/// TLS 1.3 tickets are used once (RFC 8446 §C.4: reuse lets observers link
/// connections); a TLS 1.2 session stays until replaced or expired.
public final class TLSClientSessionCache {
    /// TLS 1.3 tickets kept per server name (a server sends a few per handshake).
    public static let maximumTicketsPerServer = 4
    /// The lifetime assumed for a TLS 1.2 ticket without a hint (RFC 5077 §3.3
    /// leaves it to the client): one hour.
    static let defaultTLS12Lifetime: UInt32 = 3600

    struct Entry {
        var key: String
        var session: ResumableSession
        /// Recency stamp: larger is more recent.
        var used: UInt64
    }

    /// Entries held at most.
    public let capacity: Int
    private var entries: [Entry] = []
    private var clock: UInt64 = 0

    /// A cache of at most `capacity` sessions (at least 1).
    public init(capacity: Int = 256) {
        self.capacity = max(1, capacity)
    }

    /// Sessions held now (expired ones included until next touched).
    public var count: Int { entries.count }

    /// Forgets every session.
    public func removeAll() { entries.removeAll() }

    static func key(_ serverName: String?) -> String { serverName ?? "" }

    private func tick() -> UInt64 {
        clock &+= 1
        return clock
    }

    /// Keeps `session` for `serverName`: a TLS 1.2 session replaces the
    /// previous one for that name; TLS 1.3 tickets add up to
    /// `maximumTicketsPerServer` (the oldest goes). The least recently used
    /// entry goes when the cache is full.
    func store(_ session: ResumableSession, serverName: String?) {
        let key = Self.key(serverName)
        switch session {
        case .tls12:
            entries.removeAll { entry in
                if entry.key == key, case .tls12 = entry.session { return true }
                return false
            }
        case .tls13:
            var indices: [Int] = []
            for (index, entry) in entries.enumerated() where entry.key == key {
                if case .tls13 = entry.session { indices.append(index) }
            }
            if indices.count >= Self.maximumTicketsPerServer,
               let oldest = indices.min(by: { entries[$0].used < entries[$1].used }) {
                entries.remove(at: oldest)
            }
        }
        if entries.count >= capacity, let lru = entries.indices.min(by: { entries[$0].used < entries[$1].used }) {
            entries.remove(at: lru)
        }
        entries.append(Entry(key: key, session: session, used: tick()))
    }

    /// A session to resume with `serverName` at `now`: the newest TLS 1.3
    /// ticket (removed: used once), else the TLS 1.2 session (kept). Expired
    /// entries for the name are dropped on the way.
    func take(serverName: String?, now: Instant) -> ResumableSession? {
        if let ticket = takeTLS13Ticket(serverName: serverName, now: now) { return .tls13(ticket) }
        return tls12Session(serverName: serverName, now: now).map { .tls12($0) }
    }

    /// The newest unexpired TLS 1.3 ticket for `serverName`, removed from the cache.
    func takeTLS13Ticket(serverName: String?, now: Instant) -> TLS13Ticket? {
        let key = Self.key(serverName)
        dropExpired(key: key, now: now)
        var best: Int?
        for (index, entry) in entries.enumerated() where entry.key == key {
            guard case .tls13 = entry.session else { continue }
            if let current = best, entries[current].used > entry.used { continue }
            best = index
        }
        guard let index = best, case .tls13(let ticket) = entries[index].session else { return nil }
        entries.remove(at: index)
        return ticket
    }

    /// The unexpired TLS 1.2 session for `serverName`, left in the cache
    /// (marked recently used).
    func tls12Session(serverName: String?, now: Instant) -> TLS12Session? {
        let key = Self.key(serverName)
        dropExpired(key: key, now: now)
        guard let index = entries.firstIndex(where: { entry in
            if entry.key == key, case .tls12 = entry.session { return true }
            return false
        }), case .tls12(let session) = entries[index].session else { return nil }
        entries[index].used = tick()
        return session
    }

    /// Forgets the TLS 1.2 session for `serverName` (the server refused it).
    func removeTLS12Session(serverName: String?) {
        let key = Self.key(serverName)
        entries.removeAll { entry in
            if entry.key == key, case .tls12 = entry.session { return true }
            return false
        }
    }

    private func dropExpired(key: String, now: Instant) {
        entries.removeAll { entry in
            guard entry.key == key else { return false }
            switch entry.session {
            case .tls13(let ticket):
                return Self.isExpired(receivedAt: ticket.receivedAt, lifetime: ticket.lifetime, now: now)
            case .tls12(let session):
                let lifetime = session.lifetime == 0 ? Self.defaultTLS12Lifetime : session.lifetime
                return Self.isExpired(receivedAt: session.receivedAt, lifetime: lifetime, now: now)
            }
        }
    }

    static func isExpired(receivedAt: Instant, lifetime: UInt32, now: Instant) -> Bool {
        now < receivedAt || now - receivedAt >= .seconds(Int64(lifetime))
    }
}
