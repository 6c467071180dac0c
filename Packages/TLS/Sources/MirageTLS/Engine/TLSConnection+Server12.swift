import MirageDevices

// The TLS 1.2 server (RFC 5246 §7.3): ServerHello Certificate
// ServerKeyExchange [CertificateRequest] ServerHelloDone, then the client's
// [Certificate] ClientKeyExchange [CertificateVerify] ChangeCipherSpec
// Finished, answered by [NewSessionTicket] ChangeCipherSpec Finished. With a
// ticket that opens (RFC 5077 §3.1): ServerHello [NewSessionTicket]
// ChangeCipherSpec Finished, then the client's ChangeCipherSpec Finished.

extension TLSConnection {
    /// The ALPN protocol a server picks (RFC 7301 §3.2: its own preference;
    /// no overlap is fatal); nil when either side has none.
    static func serverChosenProtocol(offered: [[UInt8]]?, _ configuration: TLSServerConfiguration) throws(TLSError) -> String? {
        guard let offered, !configuration.applicationProtocols.isEmpty else { return nil }
        guard let chosen = configuration.applicationProtocols.first(where: { offered.contains(Array($0.utf8)) }) else {
            throw .noApplicationProtocol
        }
        return chosen
    }

    /// The curve of an ECDSA key, from the scheme it signs with (each of our
    /// ECDSA schemes names its curve); nil for other keys.
    static func ecdsaCurve(of key: any SigningKey) -> NamedGroup? {
        if key.signatureSchemes.contains(.ecdsaSecp256r1SHA256) { return .secp256r1 }
        if key.signatureSchemes.contains(.ecdsaSecp384r1SHA384) { return .secp384r1 }
        return nil
    }

    /// A ClientHello to be answered with TLS 1.2: the client does not offer
    /// TLS 1.3, or we do not speak it.
    func serverReceivedClientHello12(_ hello: ClientHello, raw: [UInt8], offer: ClientOffer,
                                     configuration: TLSServerConfiguration) throws(TLSError) {
        // RFC 8446 §4.2.1: with supported_versions, legacy_version is ignored.
        let offersTLS12 = offer.versions.isEmpty ? hello.legacyVersion >= .tls12 : offer.versions.contains(.tls12)
        guard offersTLS12, configuration.versions.contains(.tls12) else {
            throw .protocolVersion("the client offers no version we speak (its hello says 0x\(String(hello.legacyVersion.rawValue, radix: 16)))")
        }
        // RFC 7507 §3: a client falling back to a version below our best.
        if hello.cipherSuites.contains(.fallbackSCSV), configuration.versions.contains(.tls13) {
            throw .inappropriateFallback
        }
        guard hello.legacyCompressionMethods.contains(0) else {
            throw .illegalParameter("the ClientHello does not offer the null compression method")
        }
        var extendedMasterSecret = false
        var secureRenegotiation = hello.cipherSuites.contains(.emptyRenegotiationInfoSCSV)
        var pointFormats = false
        var ticket: [UInt8]?
        for ext in hello.extensions {
            switch ext.type {
            case .extendedMasterSecret:
                guard ext.data.isEmpty else { throw .decodeError("extended_master_secret with data") }
                extendedMasterSecret = true
            case .renegotiationInfo:
                // RFC 5746 §3.6: on an initial handshake the field must be empty.
                guard try RenegotiationInfo(parsing: ext.data).renegotiatedConnection.isEmpty else {
                    throw .handshakeFailure("renegotiation_info is not empty on an initial handshake")
                }
                secureRenegotiation = true
            case .ecPointFormats:
                guard try ECPointFormatList(parsing: ext.data).formats.contains(0) else {
                    throw .illegalParameter("ec_point_formats without the uncompressed format")  // RFC 8422 §5.1.2
                }
                pointFormats = true
            case .sessionTicket:
                ticket = ext.data
            default:
                break
            }
        }
        guard secureRenegotiation else {
            throw .handshakeFailure("the client signals no secure renegotiation (RFC 5746)")
        }
        // RFC 7627 §5.3: a server that requires the extended master secret aborts without it.
        guard extendedMasterSecret else {
            throw .handshakeFailure("the client does not offer the extended master secret (RFC 7627), which is required")
        }

        // A certificate, a suite for its key and a scheme both accept. SNI's
        // choice first, then the others (a server with ECDSA and RSA chains
        // serves clients of either).
        guard !configuration.certificates.isEmpty else { throw .configuration("the server has no certificate") }
        var candidates: [CertifiedKey] = []
        if let name = offer.serverName, let named = configuration.certificates.first(where: { $0.matches(serverName: name) }) {
            candidates.append(named)
        }
        for certified in configuration.certificates where !candidates.contains(where: { $0 === certified }) {
            candidates.append(certified)
        }
        // RFC 5246 §7.4.1.4.1: without signature_algorithms the client
        // accepts only SHA-1, which we never sign with.
        let clientSchemes = offer.schemes ?? []
        // Our configured schemes, plus RSA PKCS#1 which only TLS 1.2 may use.
        let ourSchemes = configuration.signatureSchemes + TLSConnection.tls12OnlySchemes
        var choice: (CertifiedKey, CipherSuite, SignatureScheme)?
        for certified in candidates {
            // RFC 8422 §5.1: an ECDSA certificate's curve must be one the
            // client's supported_groups names (Ed25519 goes by signature_algorithms).
            if let groups = offer.groups, let curve = TLSConnection.ecdsaCurve(of: certified.key), !groups.contains(curve) { continue }
            guard let authentication = TLSConnection.authentication(of: certified.key),
                  let suite = configuration.cipherSuites.first(where: {
                      $0.version == .tls12 && $0.tls12Authentication == authentication && hello.cipherSuites.contains($0)
                  }),
                  let scheme = certified.key.signatureSchemes.first(where: {
                      clientSchemes.contains($0) && SignatureScheme.tls12.contains($0) && ourSchemes.contains($0)
                  })
            else { continue }
            choice = (certified, suite, scheme)
            break
        }
        guard let (certified, fullSuite, scheme) = choice else {
            throw .handshakeFailure("no TLS 1.2 ECDHE AEAD suite and signature scheme in common with our certificates")
        }
        // RFC 8422 §4: without supported_groups the client takes any curve.
        let clientGroups = offer.groups ?? configuration.groups
        guard let group = configuration.groups.first(where: { clientGroups.contains($0) && crypto.supportedGroups.contains($0) }) else {
            throw .handshakeFailure("no group in common")
        }
        let applicationProtocol = try TLSConnection.serverChosenProtocol(offered: offer.protocols, configuration)
        // RFC 5077 §3.4: a ticket that opens, with a session ID to echo, resumes.
        var resumed: SessionState?
        var renewTicket = true
        if let ticket, !ticket.isEmpty, !hello.legacySessionID.isEmpty,
           let found = resumableSession12(ticket: ticket, hello: hello, offer: offer,
                                          applicationProtocol: applicationProtocol, configuration: configuration) {
            resumed = found.session
            renewTicket = found.renew
        }
        let suite = resumed?.suite ?? fullSuite
        guard let hash = suite.hash else { throw .internalError("suite without hash") }

        var serverRandom = randomBytes(32)
        if configuration.versions.contains(.tls13) {
            // RFC 8446 §4.1.3: a TLS 1.3 server that negotiates TLS 1.2 says so
            // in the last 8 bytes of its random.
            serverRandom.replaceSubrange(24..<32, with: ServerHello.downgradeTLS12Sentinel)
        }
        parameters = NegotiatedParameters(version: .tls12, cipherSuite: suite, group: group,
                                          applicationProtocol: applicationProtocol, serverName: offer.serverName)
        startTranscript(hash)
        appendTranscript(raw)
        var state = TLS12Handshake(clientRandom: hello.random, serverRandom: serverRandom, suite: suite, hash: hash)
        state.ticketPromised = ticket != nil && configuration.sessionTickets != nil && renewTicket

        var extensions: [Extension] = [
            Extension(type: .renegotiationInfo, data: RenegotiationInfo(renegotiatedConnection: []).encode()),
            Extension(type: .extendedMasterSecret, data: []),
        ]
        if pointFormats { extensions.append(Extension(type: .ecPointFormats, data: ECPointFormatList(formats: [0]).encode())) }
        if state.ticketPromised { extensions.append(Extension(type: .sessionTicket, data: [])) }
        if let applicationProtocol {
            extensions.append(Extension(type: .alpn, data: ProtocolNameList(protocols: [Array(applicationProtocol.utf8)]).encode()))
        }
        if let name = offer.serverName, certified.matches(serverName: name) {
            extensions.append(Extension(type: .serverName, data: []))  // RFC 6066 §3: the name was used
        }

        if let session = resumed {
            // Echoing the client's session ID accepts the ticket.
            state.resumed = true
            state.masterSecret = session.secret
            parameters?.resumed = true
            parameters?.group = nil
            parameters?.peerCertificates = session.peerCertificates
            installKeys12(&state)
            handshake12 = state
            try sendTranscribed(ServerHello(legacyVersion: .tls12, random: serverRandom, legacySessionIDEcho: hello.legacySessionID,
                                            cipherSuite: suite, legacyCompressionMethod: 0, extensions: extensions).encode())
            try requireRecordBoundary("ClientHello")
            if state.ticketPromised { try sendNewSessionTicket12(configuration) }
            try sendChangeCipherSpec12()
            try sendFinished12()
            phase = .tls12(.changeCipherSpec)
            return
        }

        let ours = try crypto.makeKeyExchange(group)
        state.keyExchange = ours
        handshake12 = state
        try sendTranscribed(ServerHello(legacyVersion: .tls12, random: serverRandom, legacySessionIDEcho: [],
                                        cipherSuite: suite, legacyCompressionMethod: 0, extensions: extensions).encode())
        try sendTranscribed(CertificateMessage12(chain: certified.chain).encode())
        let params = ServerKeyExchangeECDHE(group: group, publicKey: ours.publicKey, scheme: scheme, signature: []).params
        let content = ServerKeyExchangeECDHE.signedContent(clientRandom: hello.random, serverRandom: serverRandom, params: params)
        let signature = try certified.key.sign(content, scheme: scheme)
        try sendTranscribed(ServerKeyExchangeECDHE(group: group, publicKey: ours.publicKey, scheme: scheme, signature: signature).encode())
        if configuration.clientAuthentication != .none {
            let schemes = SignatureScheme.tls12.filter { crypto.supportedSignatureSchemes.contains($0) && ourSchemes.contains($0) }
            var requested = try state12()
            requested.requestedSchemes = schemes
            handshake12 = requested
            try sendTranscribed(CertificateRequest12(certificateTypes: [CertificateRequest12.ecdsaSign, CertificateRequest12.rsaSign],
                                                     schemes: schemes, authorities: []).encode())
        }
        try sendTranscribed(ServerHelloDone().encode())
        try requireRecordBoundary("ClientHello")
        phase = .tls12(configuration.clientAuthentication != .none ? .serverCertificate : .serverClientKeyExchange)
    }

    func server12ReceivedCertificate(_ message: CertificateMessage12, raw: [UInt8]) throws(TLSError) {
        let configuration = try serverConfiguration()
        appendTranscript(raw)
        phase = .tls12(.serverClientKeyExchange)
        guard !message.chain.isEmpty else {
            // RFC 5246 §7.4.6: a server that requires a certificate answers none with handshake_failure.
            if configuration.clientAuthentication == .required {
                throw .handshakeFailure("the client sent no certificate, and one is required")
            }
            return
        }
        var state = try state12()
        state.clientSentCertificate = true
        handshake12 = state
        parameters?.peerCertificates = message.chain
        awaitingVerification = true
        events.append(.verifyCertificates(CertificateVerificationRequest(chain: message.chain, serverName: nil, peerIsServer: false)))
    }

    func server12ReceivedClientKeyExchange(_ message: ClientKeyExchangeECDHE, raw: [UInt8]) throws(TLSError) {
        var state = try state12()
        guard let ours = state.keyExchange else { throw .internalError("no ECDHE key at ClientKeyExchange") }
        let preMasterSecret = try ours.sharedSecret(peerPublicKey: message.publicKey)
        state.keyExchange = nil
        handshake12 = state
        appendTranscript(raw)
        try deriveKeys12(preMasterSecret: preMasterSecret)
        phase = .tls12(state.clientSentCertificate ? .serverCertificateVerify : .changeCipherSpec)
    }

    func server12ReceivedCertificateVerify(_ message: CertificateVerify, raw: [UInt8]) throws(TLSError) {
        let state = try state12()
        guard state.requestedSchemes.contains(message.scheme) else {
            throw .illegalParameter("CertificateVerify uses \(message.scheme), which was not requested")
        }
        // §7.4.8: the signature covers every handshake message before this one.
        guard let transcript else { throw .internalError("no transcript") }
        try verifySignature12(message.signature, scheme: message.scheme, content: transcript.bytes)
        parameters?.peerSignatureScheme = message.scheme
        appendTranscript(raw)
        phase = .tls12(.changeCipherSpec)
    }

    func server12ReceivedFinished(_ message: Finished, raw: [UInt8]) throws(TLSError) {
        let configuration = try serverConfiguration()
        try verifyPeerFinished12(message, raw: raw)
        let state = try state12()
        if !state.resumed {
            if state.ticketPromised { try sendNewSessionTicket12(configuration) }
            try sendChangeCipherSpec12()
            try sendFinished12()
        }
        completeHandshake12()
    }
}
