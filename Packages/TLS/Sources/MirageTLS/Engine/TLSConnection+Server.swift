import MirageDevices

extension TLSConnection {
    func serverConfiguration() throws(TLSError) -> TLSServerConfiguration {
        guard case .server(let configuration) = role else { throw .internalError("not a server") }
        return configuration
    }

    /// What a ClientHello offers, read once.
    struct ClientOffer {
        var versions: [ProtocolVersion] = []
        var groups: [NamedGroup]?
        var shares: [KeyShareEntry]?
        var schemes: [SignatureScheme]?
        var serverName: String?
        var protocols: [[UInt8]]?
        var cookie: [UInt8]?
        var earlyData = false
    }

    func readOffer(_ hello: ClientHello) throws(TLSError) -> ClientOffer {
        var offer = ClientOffer()
        for (index, ext) in hello.extensions.enumerated() {
            switch ext.type {
            case .supportedVersions: offer.versions = try SupportedVersionsClient(parsing: ext.data).versions
            case .supportedGroups: offer.groups = try SupportedGroupsList(parsing: ext.data).groups
            case .keyShare: offer.shares = try KeyShareClientHello(parsing: ext.data).shares
            case .signatureAlgorithms: offer.schemes = try SignatureSchemeList(parsing: ext.data).schemes
            case .serverName: offer.serverName = try ServerNameList(parsing: ext.data).hostName
            case .alpn: offer.protocols = try ProtocolNameList(parsing: ext.data).protocols
            case .cookie: offer.cookie = try Cookie(parsing: ext.data).cookie
            case .earlyData: offer.earlyData = true
            case .preSharedKey:
                // §4.2.11: pre_shared_key must be the last extension; the
                // offer itself is read by acceptResumption.
                guard index == hello.extensions.count - 1 else {
                    throw .illegalParameter("pre_shared_key is not the last extension")
                }
                // §4.2.9: a PSK offer needs psk_key_exchange_modes.
                guard hello.extensions.first(.pskKeyExchangeModes) != nil else {
                    throw .missingExtension(.pskKeyExchangeModes)
                }
            default: break  // unknown or unused: ignored (§4.2)
            }
        }
        return offer
    }

    func serverReceivedClientHello(_ hello: ClientHello, raw: [UInt8], retry: RetryState?) throws(TLSError) {
        let configuration = try serverConfiguration()
        let offer = try readOffer(hello)
        if retry == nil, !(offer.versions.contains(.tls13) && configuration.versions.contains(.tls13)) {
            try serverReceivedClientHello12(hello, raw: raw, offer: offer, configuration: configuration)
            return
        }
        guard offer.versions.contains(.tls13) else {
            throw .protocolVersion("the client does not offer TLS 1.3")
        }
        // §4.1.2: a TLS 1.3 ClientHello has exactly the null compression method.
        guard hello.legacyCompressionMethods == [0] else {
            throw .illegalParameter("legacy_compression_methods is not exactly [null]")
        }
        guard let clientSchemes = offer.schemes else { throw .missingExtension(.signatureAlgorithms) }
        // §9.2: without a PSK, supported_groups and key_share are both required.
        guard let clientGroups = offer.groups else { throw .missingExtension(.supportedGroups) }
        guard let shares = offer.shares else { throw .missingExtension(.keyShare) }
        for share in shares where !clientGroups.contains(share.group) {
            throw .illegalParameter("a key share for \(share.group), which supported_groups does not offer")
        }

        let suite: CipherSuite
        var chosenShare: KeyShareEntry?
        if let retry {
            // §4.1.2: the second ClientHello repeats the first but for the
            // key share, the cookie and early_data (which it must drop).
            guard !offer.earlyData else { throw .illegalParameter("early_data after a HelloRetryRequest") }
            guard hello.cipherSuites.contains(retry.suite) else {
                throw .illegalParameter("the second ClientHello dropped the cipher suite \(retry.suite)")
            }
            guard hello.legacySessionID == retry.firstHello.legacySessionID, hello.random == retry.firstHello.random else {
                throw .illegalParameter("the second ClientHello changed its random or session ID")
            }
            guard shares.count == 1, shares[0].group == retry.group else {
                throw .illegalParameter("the second ClientHello has no single key share for \(retry.group)")
            }
            suite = retry.suite
            chosenShare = shares[0]
            // Early data could only precede the first hello (§4.2.10).
            skippingEarlyData = false
        } else {
            guard let chosen = configuration.cipherSuites.first(where: { hello.cipherSuites.contains($0) && $0.version == .tls13 }) else {
                throw .handshakeFailure("no cipher suite in common")
            }
            suite = chosen
            chosenShare = configuration.groups.lazy.compactMap { group in shares.first { $0.group == group } }.first
            skippingEarlyData = offer.earlyData
        }
        guard let hash = suite.hash else { throw .internalError("suite without hash") }

        // Certificate by SNI, then a scheme both sides take (§4.4.2.2).
        guard !configuration.certificates.isEmpty else { throw .configuration("the server has no certificate") }
        let certified = offer.serverName.flatMap { name in configuration.certificates.first { $0.matches(serverName: name) } }
            ?? configuration.certificates[0]
        guard let scheme = certified.key.signatureSchemes.first(where: {
            // §4.4.3: never a TLS 1.2-only scheme (RSA PKCS#1) in CertificateVerify.
            clientSchemes.contains($0) && configuration.signatureSchemes.contains($0) && SignatureScheme.tls13.contains($0)
        }) else {
            throw .handshakeFailure("no signature scheme in common with the certificate's key")
        }
        let applicationProtocol = try TLSConnection.serverChosenProtocol(offered: offer.protocols, configuration)

        guard let share = chosenShare else {
            // No usable share: ask for our most preferred group the client supports (§4.1.4).
            guard let group = configuration.groups.first(where: { clientGroups.contains($0) && crypto.supportedGroups.contains($0) }) else {
                throw .handshakeFailure("no group in common")
            }
            try sendHelloRetryRequest(hello, raw: raw, suite: suite, hash: hash, group: group, configuration: configuration)
            return
        }

        let accepted = try acceptResumption(hello, raw: raw, serverName: offer.serverName, suite: suite,
                                            applicationProtocol: applicationProtocol, configuration: configuration)
        let ours = try crypto.makeKeyExchange(share.group)
        let shared = try ours.sharedSecret(peerPublicKey: share.keyExchange)
        parameters = NegotiatedParameters(version: .tls13, cipherSuite: suite, group: share.group,
                                          applicationProtocol: applicationProtocol, serverName: offer.serverName,
                                          peerCertificates: [], peerSignatureScheme: nil, usedHelloRetryRequest: retry != nil)
        if let accepted { noteResumed(accepted) }
        if transcript == nil { startTranscript(hash) }
        appendTranscript(raw)
        var serverHello = ServerHello(
            legacyVersion: .tls12, random: randomBytes(32), legacySessionIDEcho: hello.legacySessionID,
            cipherSuite: suite, legacyCompressionMethod: 0,
            extensions: [
                // The order RFC 8448's traces show; the RFC itself sets none.
                Extension(type: .keyShare, data: KeyShareServerHello(share: KeyShareEntry(group: ours.group, keyExchange: ours.publicKey)).encode()),
                Extension(type: .supportedVersions, data: SupportedVersionsServer(selected: .tls13).encode()),
            ])
        if let accepted { serverHello.extensions.insert(TLSConnection.preSharedKeyExtension(accepted), at: 0) }
        let serverHelloRaw = outgoing(serverHello.encode())
        appendTranscript(serverHelloRaw)
        try requireRecordBoundary("ClientHello")
        appendPlainRecord(.handshake, serverHelloRaw)
        if configuration.middleboxCompatibility && !hello.legacySessionID.isEmpty { sendChangeCipherSpecOnce() }

        var keySchedule = KeySchedule(suite: suite, crypto: crypto, psk: accepted?.state.secret)
        let secrets = keySchedule.deriveHandshakeSecrets(sharedSecret: shared, transcriptHash: try transcriptHash())
        clientHandshakeSecret = secrets.client
        serverHandshakeSecret = secrets.server
        writeProtection = RecordProtection(suite: suite, secret: secrets.server, crypto: crypto)

        var encrypted: [Extension] = []
        if let applicationProtocol {
            encrypted.append(Extension(type: .alpn, data: ProtocolNameList(protocols: [Array(applicationProtocol.utf8)]).encode()))
        }
        if accepted == nil && offer.serverName != nil && !certified.serverNames.isEmpty && certified.matches(serverName: offer.serverName ?? "") {
            encrypted.append(Extension(type: .serverName, data: []))  // RFC 6066 §3: the name was used
        }
        try sendTranscribed(EncryptedExtensions(extensions: encrypted).encode())
        try sendCertificateRequestIfWanted(configuration)
        if accepted == nil {  // a resumed handshake authenticates with the PSK (§2.2)
            try sendTranscribed(CertificateMessage(
                context: [], entries: certified.chain.map { CertificateEntry(data: $0, extensions: []) }).encode())
            let content = TLSConnection.signedContent(context: TLSConnection.serverSignatureContext, transcriptHash: try transcriptHash())
            let signature = try certified.key.sign(content, scheme: scheme)
            try sendTranscribed(CertificateVerify(scheme: scheme, signature: signature).encode())
        }
        let verifyData = keySchedule.finishedVerifyData(trafficSecret: secrets.server, transcriptHash: try transcriptHash())
        try sendTranscribed(Finished(verifyData: verifyData).encode())

        let application = keySchedule.deriveApplicationSecrets(transcriptHash: try transcriptHash())
        schedule = keySchedule
        clientApplicationSecret = application.client
        serverApplicationSecret = application.server
        let expectedClientFinished = keySchedule.finishedVerifyData(trafficSecret: secrets.client, transcriptHash: try transcriptHash())
        writeProtection = RecordProtection(suite: suite, secret: application.server, crypto: crypto)
        readProtection = RecordProtection(suite: suite, secret: secrets.client, crypto: crypto)
        // The client's 0-RTT records (never accepted) come before its handshake records.
        phase = serverPhaseAfterFlight(expectedClientFinished: expectedClientFinished)
    }

    func sendHelloRetryRequest(_ hello: ClientHello, raw: [UInt8], suite: CipherSuite, hash: HashAlgorithm, group: NamedGroup,
                               configuration: TLSServerConfiguration) throws(TLSError) {
        startTranscript(hash)
        appendTranscript(raw)
        transcript?.replaceWithMessageHash(crypto)
        let retryRequest = ServerHello(
            legacyVersion: .tls12, random: ServerHello.helloRetryRequestRandom, legacySessionIDEcho: hello.legacySessionID,
            cipherSuite: suite, legacyCompressionMethod: 0,
            extensions: [
                Extension(type: .supportedVersions, data: SupportedVersionsServer(selected: .tls13).encode()),
                Extension(type: .keyShare, data: KeyShareHelloRetryRequest(selectedGroup: group).encode()),
            ])
        let retryRaw = outgoing(retryRequest.encode())
        appendTranscript(retryRaw)
        try requireRecordBoundary("ClientHello")
        appendPlainRecord(.handshake, retryRaw)
        if configuration.middleboxCompatibility && !hello.legacySessionID.isEmpty { sendChangeCipherSpecOnce() }
        // Rejected early data of the first flight may still arrive (§4.2.10).
        phase = .serverWaitClientHello(RetryState(group: group, suite: suite, firstHello: hello))
    }

    func serverReceivedFinished(_ message: Finished, raw: [UInt8], expected: [UInt8]) throws(TLSError) {
        try checkFinishedLength(message)
        guard constantTimeEqual(expected, message.verifyData) else {
            throw .decryptError("the client's Finished does not verify")
        }
        guard let suite = parameters?.cipherSuite else { throw .internalError("no suite") }
        peerFinished = true
        appendTranscript(raw)
        try requireRecordBoundary("client Finished")
        readProtection = RecordProtection(suite: suite, secret: clientApplicationSecret, crypto: crypto)
        phase = .connected
        try issueSessionTickets()
        releaseHandshakeState()
        events.append(.handshakeCompleted)
    }
}
