import MirageDevices

// TLS 1.2 session tickets (RFC 5077): the server seals the session (master
// secret, suite, ALPN, SNI, client certificates) into a ticket with its
// rotating SessionTicketKeys; the client keeps it in its session cache and
// offers it in the next ClientHello's session_ticket extension.

extension TLSConnection {
    /// The session a client's ticket resumes, or nil for a full handshake:
    /// a ticket that does not open (forged, from a retired key, expired) is
    /// not an error (RFC 5077 §3.4), nor is one for another version, a suite
    /// the client no longer offers, another server name or another ALPN protocol.
    /// `renew` says whether to send a fresh ticket in the abbreviated
    /// handshake: only when this one is past half its lifetime or sealed
    /// under a retired key. Renewing every time would cost OpenSSL-based
    /// clients every other resumption: OpenSSL takes a new TLS 1.2 ticket as
    /// the end of the old session but hands the new one to its application
    /// only after a full handshake (its new-session callback).
    func resumableSession12(ticket: [UInt8], hello: ClientHello, offer: ClientOffer, applicationProtocol: String?,
                            configuration: TLSServerConfiguration) -> (session: SessionState, renew: Bool)? {
        guard let keys = configuration.sessionTickets, let (sealed, issued) = keys.openTicket(ticket, now: now),
              let session = SessionState(decoding: sealed), session.version == .tls12,
              session.suite.version == .tls12, hello.cipherSuites.contains(session.suite),
              configuration.cipherSuites.contains(session.suite),
              TLSConnection.sameServerName(session.serverName, offer.serverName),
              session.applicationProtocol == applicationProtocol,
              session.secret.count == TLS12KeySchedule.masterSecretLength
        else { return nil }
        // A session that authenticated a client must still satisfy a server
        // that now requires it.
        if configuration.clientAuthentication == .required, session.peerCertificates.isEmpty { return nil }
        let renew = !keys.isSealedWithCurrentKey(ticket) || now - issued > .seconds(Int64(keys.ticketLifetime / 2))
        return (session, renew)
    }

    /// Sends a NewSessionTicket sealing this session (RFC 5077 §3.3), before our ChangeCipherSpec.
    func sendNewSessionTicket12(_ configuration: TLSServerConfiguration) throws(TLSError) {
        guard let keys = configuration.sessionTickets, let parameters else { return }
        let state = try state12()
        let session = SessionState(version: .tls12, suite: state.suite, secret: state.masterSecret,
                                   applicationProtocol: parameters.applicationProtocol, serverName: parameters.serverName,
                                   peerCertificates: parameters.peerCertificates, ageAdd: 0)
        // A session that cannot be sealed into a ticket's 2^16-1 bytes (a huge
        // client chain) gets the empty ticket RFC 5077 §3.3 allows: the
        // NewSessionTicket was promised in the ServerHello.
        var ticket: [UInt8] = []
        if session.isEncodable {
            let sealed = keys.seal(session.encode(), now: now)
            if sealed.count <= 0xFFFF { ticket = sealed }
        }
        try sendTranscribed(NewSessionTicket12(lifetimeHint: ticket.isEmpty ? 0 : keys.ticketLifetime, ticket: ticket).encode())
    }

    /// Client: the TLS 1.2 session to offer from the cache, if any, and only
    /// for a suite still offered.
    func sessionToOffer12(_ configuration: TLSClientConfiguration, suites: [CipherSuite]) -> TLS12Session? {
        guard configuration.versions.contains(.tls12), let cache = configuration.sessionCache,
              let session = cache.tls12Session(serverName: configuration.serverName, now: now),
              suites.contains(session.suite), !session.ticket.isEmpty,
              session.ticket.count <= TLSConnection.maximumStoredTicketLength
        else { return nil }
        return session
    }

    /// Client: the server did not take our ticket; forget the session.
    func forgetOfferedSession12() {
        guard offeredSession12 != nil, case .client(let configuration) = role else { return }
        configuration.sessionCache?.removeTLS12Session(serverName: configuration.serverName)
    }

    /// Client: keeps the ticket for the next connection to this server.
    func storeSession12(ticket: NewSessionTicket12, state: TLS12Handshake) {
        guard case .client(let configuration) = role, let cache = configuration.sessionCache, let parameters else { return }
        // RFC 5077 §3.3: a lifetime hint of 0 leaves the lifetime to us (the
        // cache's default); none is kept longer than TLS 1.3 allows any ticket.
        let lifetime = min(ticket.lifetimeHint, NewSessionTicket.maximumLifetime)
        cache.store(.tls12(TLS12Session(suite: state.suite, masterSecret: state.masterSecret, ticket: ticket.ticket, receivedAt: now,
                                        lifetime: lifetime, serverName: parameters.serverName,
                                        applicationProtocol: parameters.applicationProtocol,
                                        peerCertificates: parameters.peerCertificates)),
                    serverName: parameters.serverName)
    }
}
