import MirageDevices

/// What one connection knows about resumption (RFC 8446 §2.2, §4.2.11, §4.6.1).
struct ResumptionState {
    /// Client: the ticket offered in the ClientHello, until the ServerHello answers.
    var offeredTicket: TLS13Ticket?
    /// The handshake resumed a session: no Certificate or CertificateVerify.
    var resumed = false
    /// Server: the client listed psk_dhe_ke (§4.2.9), so tickets are worth sending.
    var clientAcceptsTickets = false
    /// resumption_master_secret, once derived (§7.1).
    var resumptionMasterSecret: [UInt8]?
    /// Server: NewSessionTickets sent on this connection (each one's nonce).
    var ticketsIssued = 0
}

/// The PSK a server accepted from a ClientHello.
struct AcceptedPSK {
    /// selected_identity.
    var index: UInt16
    /// What the ticket held.
    var state: SessionState
}

extension TLSConnection {
    /// Most NewSessionTickets sent after one handshake, whatever the configuration asks.
    static let maximumTicketsPerHandshake = 8
    /// How far the client's view of a ticket's age may stray from the
    /// server's (RFC 8446 §8.3 leaves the window to the server; it covers the
    /// round trip and clock drift).
    static let ticketAgeTolerance = Interval.seconds(10)
    /// Largest ticket a client keeps: real tickets are a few hundred bytes,
    /// and one must fit a ClientHello's extension block (§4.2).
    static let maximumStoredTicketLength = 16_384

    // MARK: Client

    /// Client: adds psk_key_exchange_modes (when it has a session cache) and,
    /// with a usable ticket, pre_shared_key as the last extension, its binder
    /// computed last over `transcriptPrefix` and the partial hello
    /// (§4.2.11.2). After a HelloRetryRequest (`retrySuite`), the same ticket
    /// is offered again with a fresh age and binder when its hash matches the
    /// retry's suite, and dropped otherwise (§4.1.4, §4.2.11).
    func offerResumption(_ hello: inout ClientHello, _ configuration: TLSClientConfiguration, transcriptPrefix: [UInt8],
                         retrySuite: CipherSuite?) {
        // §4.2.9, §4.2.11: TLS 1.3 extensions; a TLS 1.2-only hello carries
        // neither (and must not use up a ticket it cannot offer).
        guard let cache = configuration.sessionCache, configuration.versions.contains(.tls13) else { return }
        // §4.2.9: psk_dhe_ke only; psk_ke (no forward secrecy) is never offered.
        hello.extensions.append(Extension(type: .pskKeyExchangeModes,
                                          data: PSKKeyExchangeModes(modes: [PSKKeyExchangeModes.pskDHEKE]).encode()))
        if let retrySuite {
            if resumption.offeredTicket?.suite.hash != retrySuite.hash { resumption.offeredTicket = nil }
        } else if let ticket = cache.takeTLS13Ticket(serverName: configuration.serverName, now: now),
                  TLSConnection.offeredCipherSuites(configuration).contains(ticket.suite) {
            resumption.offeredTicket = ticket
        }
        guard let ticket = resumption.offeredTicket, let hash = ticket.suite.hash else { return }
        // §4.2.11.1: the age in milliseconds, plus ticket_age_add, mod 2^32.
        let age = max(0, (now - ticket.receivedAt).milliseconds)
        let identity = PSKIdentity(identity: ticket.ticket, obfuscatedTicketAge: UInt32(truncatingIfNeeded: age) &+ ticket.ageAdd)
        var offered = OfferedPSKs(identities: [identity], binders: [[UInt8](repeating: 0, count: hash.outputLength)])
        var extensionBytes = 0
        for ext in hello.extensions { extensionBytes += 4 + ext.data.count }
        let pskData = offered.encode()
        guard extensionBytes + 4 + pskData.count <= 0xFFFF else {
            resumption.offeredTicket = nil  // it cannot fit next to a large cookie
            return
        }
        hello.extensions.append(Extension(type: .preSharedKey, data: pskData))
        guard let partial = ClientHello.truncatedForBinders(hello.encode(), bindersLength: offered.bindersLength) else {
            hello.extensions.removeLast()
            resumption.offeredTicket = nil
            return
        }
        let binder = KeySchedule(suite: ticket.suite, crypto: crypto, psk: ticket.psk)
            .binder(transcriptHash: crypto.hash(hash, transcriptPrefix + partial))
        offered.binders = [binder]
        hello.extensions[hello.extensions.count - 1].data = offered.encode()
    }

    /// Client: the key schedule the ServerHello asks for: from the offered
    /// ticket's PSK when it carries pre_shared_key (then the handshake is
    /// resumed), else without PSK.
    func clientKeySchedule(_ hello: ServerHello) throws(TLSError) -> KeySchedule {
        guard let ext = hello.extensions.first(.preSharedKey) else {
            resumption.offeredTicket = nil
            return KeySchedule(suite: hello.cipherSuite, crypto: crypto)
        }
        guard let ticket = resumption.offeredTicket else { throw .unsupportedExtension(.preSharedKey) }
        let selected = try PreSharedKeyServerHello(parsing: ext.data).selectedIdentity
        // §4.2.11: an identity we did not offer, or a suite of another hash, is illegal_parameter.
        guard selected == 0 else { throw .illegalParameter("selected_identity \(selected) was not offered") }
        guard ticket.suite.hash == hello.cipherSuite.hash else {
            throw .illegalParameter("the server resumed with \(hello.cipherSuite), whose hash is not the ticket's")
        }
        resumption.resumed = true
        parameters?.resumed = true
        // The peer authenticated in the connection that issued the ticket (§2.2).
        parameters?.peerCertificates = ticket.peerCertificates
        return KeySchedule(suite: hello.cipherSuite, crypto: crypto, psk: ticket.psk)
    }

    /// Client: keeps a NewSessionTicket in the session cache (§4.6.1). A
    /// lifetime of 0 (discard now) or over 7 days (which a server must not
    /// send) keeps nothing, as does a client without a cache.
    func clientReceivedNewSessionTicket(_ message: NewSessionTicket) throws(TLSError) {
        let configuration = try clientConfiguration()
        guard let cache = configuration.sessionCache, let parameters, let hash = parameters.cipherSuite.hash,
              message.lifetime > 0, message.lifetime <= NewSessionTicket.maximumLifetime,
              message.ticket.count <= TLSConnection.maximumStoredTicketLength else { return }
        let psk = KeySchedule.resumptionPSK(crypto, hash, resumptionMasterSecret: try resumptionMasterSecret(),
                                            ticketNonce: message.nonce)
        cache.store(.tls13(TLS13Ticket(
            ticket: message.ticket, psk: psk, suite: parameters.cipherSuite, receivedAt: now, lifetime: message.lifetime,
            ageAdd: message.ageAdd, serverName: configuration.serverName,
            applicationProtocol: parameters.applicationProtocol, peerCertificates: parameters.peerCertificates)),
                    serverName: configuration.serverName)
    }

    /// resumption_master_secret over ClientHello…client Finished (§7.1),
    /// derived once: nothing enters the transcript after the client Finished.
    func resumptionMasterSecret() throws(TLSError) -> [UInt8] {
        if let secret = resumption.resumptionMasterSecret { return secret }
        guard var keySchedule = schedule, keySchedule.masterSecret != nil else { throw .internalError("no master secret") }
        let secret = keySchedule.deriveResumptionMasterSecret(transcriptHash: try transcriptHash())
        schedule = keySchedule
        resumption.resumptionMasterSecret = secret
        return secret
    }

    // MARK: Server

    /// Server: the PSK to resume with, if the ClientHello offers one we can
    /// take (§4.2.11): psk_dhe_ke offered (never psk_ke), a ticket that opens
    /// under `sessionTickets`, TLS 1.3 of the suite's hash, its age within
    /// `ticketAgeTolerance` of ours (§8.3), the same SNI name and ALPN
    /// protocol. A ticket that fails any of these is passed over (a full
    /// handshake, no alert); the binder of the one chosen must verify, else
    /// decrypt_error (§4.2.11). Call before the ClientHello enters the transcript.
    func acceptResumption(_ hello: ClientHello, raw: [UInt8], serverName: String?, suite: CipherSuite,
                          applicationProtocol: String?, configuration: TLSServerConfiguration) throws(TLSError) -> AcceptedPSK? {
        let modes = try hello.extensions.parse(.pskKeyExchangeModes, as: PSKKeyExchangeModes.self)
        resumption.clientAcceptsTickets = modes?.modes.contains(PSKKeyExchangeModes.pskDHEKE) ?? false
        guard let keys = configuration.sessionTickets, resumption.clientAcceptsTickets, let hash = suite.hash,
              let offered = try hello.extensions.parse(.preSharedKey, as: OfferedPSKs.self) else { return nil }
        for (index, identity) in offered.identities.enumerated() {
            guard let opened = keys.openTicket(identity.identity, now: now), let state = SessionState(decoding: opened.state),
                  state.version == .tls13, state.suite.hash == hash, state.secret.count == hash.outputLength else { continue }
            // §4.2.11.1, §8.3: the client's age (obfuscated minus age_add) against ours.
            let reported = Int64(identity.obfuscatedTicketAge &- state.ageAdd)
            let difference = reported - (now - opened.issued).milliseconds
            guard difference.magnitude <= UInt64(TLSConnection.ticketAgeTolerance.milliseconds) else { continue }
            guard TLSConnection.sameServerName(state.serverName, serverName),
                  state.applicationProtocol == applicationProtocol else { continue }
            guard let partial = ClientHello.truncatedForBinders(raw, bindersLength: offered.bindersLength) else {
                throw .decodeError("pre_shared_key binders longer than the ClientHello")
            }
            // After a HelloRetryRequest the transcript holds message_hash and the retry (§4.2.11.2).
            let binderHash = crypto.hash(hash, (transcript?.bytes ?? []) + partial)
            let expected = KeySchedule(suite: suite, crypto: crypto, psk: state.secret).binder(transcriptHash: binderHash)
            guard constantTimeEqual(expected, offered.binders[index]) else {
                throw .decryptError("the PSK binder does not verify")
            }
            return AcceptedPSK(index: UInt16(truncatingIfNeeded: index), state: state)
        }
        return nil
    }

    /// Server: records a resumption in the negotiated parameters.
    func noteResumed(_ accepted: AcceptedPSK) {
        resumption.resumed = true
        parameters?.resumed = true
        parameters?.peerCertificates = accepted.state.peerCertificates
    }

    /// Server: the ServerHello's pre_shared_key extension for `accepted`.
    static func preSharedKeyExtension(_ accepted: AcceptedPSK) -> Extension {
        Extension(type: .preSharedKey, data: PreSharedKeyServerHello(selectedIdentity: accepted.index).encode())
    }

    /// Server: after the client's Finished, sends `ticketsPerHandshake`
    /// NewSessionTickets (§4.6.1) when tickets are configured and the client
    /// can use them (psk_dhe_ke). Each has its own nonce, so its own PSK, and
    /// its own ticket_age_add from the entropy source.
    func issueSessionTickets() throws(TLSError) {
        guard case .server(let configuration) = role, let keys = configuration.sessionTickets, resumption.clientAcceptsTickets,
              let parameters, let hash = parameters.cipherSuite.hash else { return }
        let count = min(max(0, configuration.ticketsPerHandshake), TLSConnection.maximumTicketsPerHandshake)
        guard count > 0 else { return }
        let secret = try resumptionMasterSecret()
        for _ in 0..<count {
            let nonce = [UInt8(truncatingIfNeeded: resumption.ticketsIssued)]
            resumption.ticketsIssued += 1
            let ageAdd = randomBytes(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let state = SessionState(
                version: .tls13, suite: parameters.cipherSuite,
                secret: KeySchedule.resumptionPSK(crypto, hash, resumptionMasterSecret: secret, ticketNonce: nonce),
                applicationProtocol: parameters.applicationProtocol, serverName: parameters.serverName,
                peerCertificates: parameters.peerCertificates, ageAdd: ageAdd)
            // A peer chain too large for a ticket: no ticket rather than a truncated one.
            guard state.isEncodable else { return }
            let ticket = keys.seal(state.encode(), now: now)
            guard !ticket.isEmpty, ticket.count <= 0xFFFF else { return }
            try sendHandshake(outgoing(NewSessionTicket(lifetime: keys.ticketLifetime, ageAdd: ageAdd, nonce: nonce,
                                                        ticket: ticket, extensions: []).encode()))
        }
    }

    /// SNI names compare case-insensitively (RFC 6066 §3: DNS names); both
    /// absent also matches.
    static func sameServerName(_ a: String?, _ b: String?) -> Bool {
        func lowered(_ s: String?) -> [UInt8]? {
            guard let s else { return nil }
            return s.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
        }
        return lowered(a) == lowered(b)
    }
}
