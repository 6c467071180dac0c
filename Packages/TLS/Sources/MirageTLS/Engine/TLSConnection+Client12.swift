import MirageDevices

// The TLS 1.2 client (RFC 5246 §7.3): ServerHello → Certificate →
// ServerKeyExchange → [CertificateRequest] → ServerHelloDone, answered by
// [Certificate] ClientKeyExchange [CertificateVerify] ChangeCipherSpec
// Finished; then the server's [NewSessionTicket] ChangeCipherSpec Finished.
// Resuming from a ticket (RFC 5077 §3.1) skips to the server's
// [NewSessionTicket] ChangeCipherSpec Finished, which we answer with ours.

extension TLSConnection {
    /// Schemes only TLS 1.2 signs with: RSA PKCS#1 v1.5, which a TLS 1.2
    /// server with an RSA key may need for its ServerKeyExchange (RFC 8446
    /// §4.2.3 allows offering them for TLS 1.2; a TLS 1.3 CertificateVerify may not use them).
    static let tls12OnlySchemes: [SignatureScheme] = [.rsaPKCS1SHA256, .rsaPKCS1SHA384, .rsaPKCS1SHA512]

    /// The signature schemes a client offers: its configured list, then, when
    /// it offers TLS 1.2, the TLS 1.2-only ones.
    static func offeredSignatureSchemes(_ configuration: TLSClientConfiguration) -> [SignatureScheme] {
        var schemes = configuration.signatureSchemes
        if configuration.versions.contains(.tls12) {
            for scheme in tls12OnlySchemes where !schemes.contains(scheme) { schemes.append(scheme) }
        }
        return schemes
    }

    /// The cipher suites a client offers: those of the versions it offers.
    static func offeredCipherSuites(_ configuration: TLSClientConfiguration) -> [CipherSuite] {
        configuration.cipherSuites.filter { suite in suite.version.map { configuration.versions.contains($0) } ?? false }
    }

    /// The extensions only a TLS 1.2 server reads: the extended master
    /// secret (RFC 7627 §5.1), an empty renegotiation_info (RFC 5746 §3.4),
    /// uncompressed points (RFC 8422 §5.1.2) and session_ticket (RFC 5077
    /// §3.2: empty, or the ticket of the session we try to resume).
    func tls12ClientHelloExtensions(ticket: [UInt8]?) -> [Extension] {
        [
            Extension(type: .ecPointFormats, data: ECPointFormatList(formats: [0]).encode()),
            Extension(type: .extendedMasterSecret, data: []),
            Extension(type: .renegotiationInfo, data: RenegotiationInfo(renegotiatedConnection: []).encode()),
            Extension(type: .sessionTicket, data: ticket ?? []),
        ]
    }

    /// The ALPN protocol a server chose, checked against what we offered
    /// (RFC 7301 §3.1: exactly one, one of ours).
    func serverChosenProtocol(_ data: [UInt8], _ configuration: TLSClientConfiguration) throws(TLSError) -> String {
        let list = try ProtocolNameList(parsing: data).protocols
        guard list.count == 1, let chosen = configuration.applicationProtocols.first(where: { Array($0.utf8) == list[0] }) else {
            throw .illegalParameter("the server chose an ALPN protocol that was not offered")
        }
        return chosen
    }

    /// A ServerHello without supported_versions: the server chose TLS 1.2 or older.
    func clientReceivedServerHello12(_ hello: ServerHello, raw: [UInt8], sent: ClientHelloSent,
                                     configuration: TLSClientConfiguration) throws(TLSError) {
        guard configuration.versions.contains(.tls12) else {
            throw .protocolVersion("the server chose a version below TLS 1.3 (no supported_versions)")
        }
        guard hello.legacyVersion >= .tls12 else {
            throw .protocolVersion("the server chose version 0x\(String(hello.legacyVersion.rawValue, radix: 16)), below TLS 1.2")
        }
        guard hello.legacyVersion == .tls12 else {
            // A TLS 1.3 server says so in supported_versions (RFC 8446 §4.2.1).
            throw .illegalParameter("ServerHello version 0x\(String(hello.legacyVersion.rawValue, radix: 16)) without supported_versions")
        }
        guard sent.retrySuite == nil, !hello.isHelloRetryRequest else {
            throw .illegalParameter("a TLS 1.2 ServerHello after a HelloRetryRequest")
        }
        // RFC 8446 §4.1.3: a client that offered TLS 1.3 and is answered with
        // TLS 1.2 must refuse a server random that says "downgraded".
        if configuration.versions.contains(.tls13), TLSConnection.downgradeSentinel(in: hello.random) != nil {
            throw .illegalParameter("the ServerHello carries the TLS 1.3 downgrade sentinel (RFC 8446 §4.1.3)")
        }
        let suite = hello.cipherSuite
        guard sent.hello.cipherSuites.contains(suite), suite.version == .tls12, let hash = suite.hash else {
            throw .illegalParameter("the server chose cipher suite \(suite), which was not offered for TLS 1.2")
        }
        guard hello.legacyCompressionMethod == 0 else { throw .illegalParameter("compression method is not null") }

        var extendedMasterSecret = false
        var secureRenegotiation = false
        var ticketPromised = false
        for ext in hello.extensions {
            // RFC 5246 §7.4.1.4: only extensions the client offered may come
            // back; renegotiation_info also answers the SCSV (RFC 5746 §3.6).
            let signalled = ext.type == .renegotiationInfo && sent.hello.cipherSuites.contains(.emptyRenegotiationInfoSCSV)
            guard offeredExtensions.contains(ext.type) || signalled else { throw .unsupportedExtension(ext.type) }
            switch ext.type {
            case .renegotiationInfo:
                // RFC 5746 §3.4: on an initial handshake the field must be empty.
                guard try RenegotiationInfo(parsing: ext.data).renegotiatedConnection.isEmpty else {
                    throw .handshakeFailure("renegotiation_info is not empty on an initial handshake")
                }
                secureRenegotiation = true
            case .extendedMasterSecret:
                guard ext.data.isEmpty else { throw .decodeError("extended_master_secret with data") }
                extendedMasterSecret = true
            case .ecPointFormats:
                // RFC 8422 §5.2: the uncompressed form must be among them.
                guard try ECPointFormatList(parsing: ext.data).formats.contains(0) else {
                    throw .illegalParameter("ec_point_formats without the uncompressed format")
                }
            case .sessionTicket:
                guard ext.data.isEmpty else { throw .decodeError("a ServerHello session_ticket with data (RFC 5077 §3.2)") }
                ticketPromised = true
            case .alpn:
                parameters?.applicationProtocol = try serverChosenProtocol(ext.data, configuration)
            case .serverName:
                guard ext.data.isEmpty else { throw .decodeError("server_name in ServerHello must be empty") }
            default:
                // Offered for TLS 1.3 only (key_share, supported_versions, …).
                throw .unsupportedExtension(ext.type)
            }
        }
        // RFC 7627 §5.2: a client that requires the extended master secret
        // aborts when the server does not use it.
        guard extendedMasterSecret else {
            throw .handshakeFailure("the server does not use the extended master secret (RFC 7627), which is required")
        }
        guard secureRenegotiation else {
            throw .handshakeFailure("the server does not support secure renegotiation (RFC 5746)")
        }

        parameters?.version = .tls12
        parameters?.cipherSuite = suite
        parameters?.group = nil
        startTranscript(hash)
        appendTranscript(raw)
        var state = TLS12Handshake(clientRandom: sent.hello.random, serverRandom: hello.random, suite: suite, hash: hash)
        state.offeredSchemes = TLSConnection.offeredSignatureSchemes(configuration)
        state.ticketPromised = ticketPromised
        if let session = offeredSession12, !sent.hello.legacySessionID.isEmpty,
           hello.legacySessionIDEcho == sent.hello.legacySessionID {
            // RFC 5077 §3.4: the echoed session ID accepts the ticket; the
            // session's suite must be kept (RFC 5246 §7.4.1.3).
            guard session.suite == suite else {
                throw .illegalParameter("a resumed session changed its cipher suite to \(suite)")
            }
            state.resumed = true
            state.masterSecret = session.masterSecret
            installKeys12(&state)
            parameters?.resumed = true
            parameters?.peerCertificates = session.peerCertificates
            handshake12 = state
            phase = .tls12(ticketPromised ? .newSessionTicket : .changeCipherSpec)
            return
        }
        forgetOfferedSession12()
        handshake12 = state
        phase = .tls12(.clientCertificate)
    }

    func client12ReceivedCertificate(_ message: CertificateMessage12, raw: [UInt8]) throws(TLSError) {
        let configuration = try clientConfiguration()
        // ECDHE suites always authenticate the server (RFC 8422 §2).
        guard !message.chain.isEmpty else { throw .decodeError("the server sent an empty Certificate message") }
        parameters?.peerCertificates = message.chain
        appendTranscript(raw)
        phase = .tls12(.clientServerKeyExchange)
        if configuration.verifiesCertificates {
            awaitingVerification = true
            events.append(.verifyCertificates(CertificateVerificationRequest(
                chain: message.chain, serverName: configuration.serverName, peerIsServer: true)))
        }
    }

    func client12ReceivedServerKeyExchange(_ message: ServerKeyExchangeECDHE, raw: [UInt8]) throws(TLSError) {
        let configuration = try clientConfiguration()
        var state = try state12()
        guard configuration.groups.contains(message.group), crypto.supportedGroups.contains(message.group) else {
            throw .illegalParameter("the server chose group \(message.group), which was not offered")
        }
        guard state.offeredSchemes.contains(message.scheme), SignatureScheme.tls12.contains(message.scheme),
              let authentication = state.suite.tls12Authentication,
              TLSConnection.authentication(of: message.scheme) == authentication
        else {
            throw .illegalParameter("ServerKeyExchange signed with \(message.scheme), not offered or not for \(state.suite)")
        }
        // RFC 5246 §7.4.3 / RFC 8422 §5.4: the signature covers both randoms and the parameters.
        let content = ServerKeyExchangeECDHE.signedContent(clientRandom: state.clientRandom, serverRandom: state.serverRandom,
                                                            params: message.params)
        try verifySignature12(message.signature, scheme: message.scheme, content: content)
        parameters?.peerSignatureScheme = message.scheme
        parameters?.group = message.group
        let ours = try crypto.makeKeyExchange(message.group)
        state.preMasterSecret = try ours.sharedSecret(peerPublicKey: message.publicKey)
        state.keyExchange = ours
        handshake12 = state
        appendTranscript(raw)
        phase = .tls12(.clientCertificateRequestOrDone)
    }

    func client12ReceivedCertificateRequest(_ message: CertificateRequest12, raw: [UInt8]) throws(TLSError) {
        var state = try state12()
        state.certificateRequest = message
        handshake12 = state
        appendTranscript(raw)
        phase = .tls12(.clientServerHelloDone)
    }

    func client12ReceivedServerHelloDone(raw: [UInt8]) throws(TLSError) {
        let configuration = try clientConfiguration()
        appendTranscript(raw)
        try requireRecordBoundary("ServerHelloDone")
        let state = try state12()
        guard let ours = state.keyExchange, !state.preMasterSecret.isEmpty else {
            throw .internalError("no ECDHE key at ServerHelloDone")
        }
        var signer: (CertifiedKey, SignatureScheme)?
        if let request = state.certificateRequest {
            // §7.4.6: with no suitable certificate, an empty list.
            // RFC 5246 §7.4.4: a key of a certificate type the server names,
            // signing with a scheme it accepts.
            signer = TLSConnection.chooseClientCertificate(configuration.certificates, requested: request.schemes,
                                                           allowed: SignatureScheme.tls12,
                                                           certificateTypes: request.certificateTypes)
            try sendTranscribed(CertificateMessage12(chain: signer?.0.chain ?? []).encode())
        }
        try sendTranscribed(ClientKeyExchangeECDHE(publicKey: ours.publicKey).encode())
        try deriveKeys12(preMasterSecret: state.preMasterSecret)
        if let (certified, scheme) = signer {
            // §7.4.8: the signature covers every handshake message so far.
            guard let transcript else { throw .internalError("no transcript") }
            let signature = try certified.key.sign(transcript.bytes, scheme: scheme)
            try sendTranscribed(CertificateVerify(scheme: scheme, signature: signature).encode())
        }
        try sendChangeCipherSpec12()
        try sendFinished12()
        var done = try state12()
        done.preMasterSecret = []
        done.keyExchange = nil
        handshake12 = done
        phase = .tls12(state.ticketPromised ? .newSessionTicket : .changeCipherSpec)
    }

    func client12ReceivedNewSessionTicket(_ message: NewSessionTicket12, raw: [UInt8]) throws(TLSError) {
        var state = try state12()
        // RFC 5077 §3.3: an empty ticket means the server will not issue one this time.
        state.receivedTicket = message.ticket.isEmpty ? nil : message
        handshake12 = state
        appendTranscript(raw)
        phase = .tls12(.changeCipherSpec)
    }

    func client12ReceivedFinished(_ message: Finished, raw: [UInt8]) throws(TLSError) {
        try verifyPeerFinished12(message, raw: raw)
        let state = try state12()
        if state.resumed {
            // §7.3: in an abbreviated handshake the server finishes first.
            try sendChangeCipherSpec12()
            try sendFinished12()
        }
        if let ticket = state.receivedTicket {
            storeSession12(ticket: ticket, state: state)
        }
        completeHandshake12()
    }
}
