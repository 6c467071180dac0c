import MirageDevices

extension TLSConnection {
    /// Extensions a server may put in EncryptedExtensions when we offered them (§4.2 table).
    static let encryptedExtensionsAllowed: Set<ExtensionType> = [
        .serverName, .maxFragmentLength, .supportedGroups, .useSRTP, .heartbeat, .alpn,
        .clientCertificateType, .serverCertificateType, .earlyData, .recordSizeLimit,
    ]

    // MARK: ClientHello

    func clientConfiguration() throws(TLSError) -> TLSClientConfiguration {
        guard case .client(let configuration) = role else { throw .internalError("not a client") }
        return configuration
    }

    /// The SNI name: a host name, never an IP literal (RFC 6066 §3).
    static func sniName(_ serverName: String?) -> String? {
        guard let serverName, !serverName.isEmpty, IPAddress(serverName) == nil else { return nil }
        return serverName
    }

    func sendClientHello(_ configuration: TLSClientConfiguration) throws(TLSError) {
        let suites = TLSConnection.offeredCipherSuites(configuration)
        guard !suites.isEmpty, configuration.cipherSuites.allSatisfy({ $0.aead != nil }) else {
            throw .configuration("the client offers no (or an unknown) cipher suite for its versions")
        }
        let offersTLS13 = configuration.versions.contains(.tls13)
        let shareGroups = configuration.keyShareGroups.filter { configuration.groups.contains($0) }
        guard !configuration.groups.isEmpty else { throw .configuration("the client offers no group") }
        var shares: [any KeyExchange] = []
        if offersTLS13 {
            for group in shareGroups.isEmpty ? [configuration.groups[0]] : shareGroups {
                shares.append(try crypto.makeKeyExchange(group))
            }
        }
        offeredSession12 = sessionToOffer12(configuration, suites: suites)
        // RFC 5077 §3.4: a client offering a TLS 1.2 ticket sends a session
        // ID, to recognise the server's acceptance in its echo.
        let sessionID = configuration.middleboxCompatibility || offeredSession12 != nil ? randomBytes(32) : []
        var hello = ClientHello(
            legacyVersion: .tls12,
            random: randomBytes(32),
            legacySessionID: sessionID,
            cipherSuites: suites,
            legacyCompressionMethods: [0],
            extensions: clientHelloExtensions(configuration, shares: shares, cookie: nil))
        offerResumption(&hello, configuration, transcriptPrefix: [], retrySuite: nil)
        let raw = outgoing(hello.encode())
        let sentHello = noteSent(hello, raw: raw)
        appendTranscript(raw)
        // §5.1: the first ClientHello's record may say TLS 1.0 for old middleboxes.
        appendPlainRecord(.handshake, raw, version: .tls10)
        parameters = NegotiatedParameters(version: offersTLS13 ? .tls13 : .tls12, cipherSuite: suites[0],
                                          serverName: configuration.serverName)
        phase = .clientWaitServerHello(ClientHelloSent(hello: sentHello, shares: shares, retrySuite: nil))
    }

    /// The hello as it went out: the one built, unless a test rewrote it.
    func noteSent(_ hello: ClientHello, raw: [UInt8]) -> ClientHello {
        var result = hello
        if tamperWithOutgoingHandshake != nil, let parsed = try? ClientHello(parsing: Array(raw.dropFirst(4))) { result = parsed }
        offeredExtensions = result.extensions.map { $0.type }
        return result
    }

    func clientHelloExtensions(_ configuration: TLSClientConfiguration, shares: [any KeyExchange], cookie: [UInt8]?) -> [Extension] {
        var extensions: [Extension] = []
        if let name = TLSConnection.sniName(configuration.serverName) {
            extensions.append(Extension(type: .serverName, data: ServerNameList(hostName: name).encode()))
        }
        let offersTLS13 = configuration.versions.contains(.tls13)
        if offersTLS13 {
            // Without TLS 1.3 the hello is a plain TLS 1.2 one: no supported_versions (RFC 8446 §4.2.1).
            let versions = [ProtocolVersion.tls13, .tls12].filter { configuration.versions.contains($0) }
            extensions.append(Extension(type: .supportedVersions, data: SupportedVersionsClient(versions: versions).encode()))
        }
        extensions.append(Extension(type: .supportedGroups, data: SupportedGroupsList(groups: configuration.groups).encode()))
        extensions.append(Extension(type: .signatureAlgorithms,
                                    data: SignatureSchemeList(schemes: TLSConnection.offeredSignatureSchemes(configuration)).encode()))
        // Certificates may be signed with schemes CertificateVerify may not use (RSA PKCS#1, §4.2.3).
        extensions.append(Extension(type: .signatureAlgorithmsCert,
                                    data: SignatureSchemeList(schemes: SignatureScheme.certificates).encode()))
        if offersTLS13 {
            let entries = shares.map { KeyShareEntry(group: $0.group, keyExchange: $0.publicKey) }
            extensions.append(Extension(type: .keyShare, data: KeyShareClientHello(shares: entries).encode()))
        }
        if configuration.versions.contains(.tls12) {
            extensions += tls12ClientHelloExtensions(ticket: offeredSession12?.ticket)
        }
        if !configuration.applicationProtocols.isEmpty {
            extensions.append(Extension(type: .alpn, data: ProtocolNameList(
                protocols: configuration.applicationProtocols.map { Array($0.utf8) }).encode()))
        }
        if let cookie {
            extensions.append(Extension(type: .cookie, data: Cookie(cookie: cookie).encode()))
        }
        return extensions
    }

    // MARK: ServerHello and HelloRetryRequest

    func clientReceivedServerHello(_ hello: ServerHello, raw: [UInt8], sent: ClientHelloSent) throws(TLSError) {
        let configuration = try clientConfiguration()
        guard let versions = hello.extensions.first(.supportedVersions) else {
            // Without supported_versions the server chose TLS 1.2 or older (RFC 8446 §4.2.1).
            try clientReceivedServerHello12(hello, raw: raw, sent: sent, configuration: configuration)
            return
        }
        let selected = try SupportedVersionsServer(parsing: versions.data).selected
        // §4.2.1: TLS 1.2 is never selected through supported_versions.
        guard selected == .tls13, configuration.versions.contains(.tls13) else {
            throw .illegalParameter("the server selected version 0x\(String(selected.rawValue, radix: 16)), which was not offered")
        }
        guard hello.legacyVersion == .tls12 else { throw .illegalParameter("ServerHello legacy_version is not 0x0303") }
        guard hello.legacySessionIDEcho == sent.hello.legacySessionID else {
            throw .illegalParameter("legacy_session_id_echo differs from the session ID sent")
        }
        guard sent.hello.cipherSuites.contains(hello.cipherSuite), hello.cipherSuite.version == .tls13, let hash = hello.cipherSuite.hash else {
            throw .illegalParameter("the server chose cipher suite \(hello.cipherSuite), which was not offered")
        }
        guard hello.legacyCompressionMethod == 0 else { throw .illegalParameter("compression method is not null") }
        if let retrySuite = sent.retrySuite, retrySuite != hello.cipherSuite {
            // §4.1.4: the ServerHello must carry the suite the HelloRetryRequest chose.
            throw .illegalParameter("cipher suite changed from \(retrySuite) after the HelloRetryRequest to \(hello.cipherSuite)")
        }
        if hello.isHelloRetryRequest {
            try clientReceivedHelloRetryRequest(hello, raw: raw, sent: sent, configuration: configuration, hash: hash)
            return
        }
        for ext in hello.extensions where ext.type != .keyShare && ext.type != .supportedVersions && ext.type != .preSharedKey {
            // pre_shared_key is checked against our offer by clientKeySchedule (§4.2).
            throw .unsupportedExtension(ext.type)
        }
        guard let keyShareExtension = hello.extensions.first(.keyShare) else { throw .missingExtension(.keyShare) }
        let share = try KeyShareServerHello(parsing: keyShareExtension.data).share
        guard let ours = sent.shares.first(where: { $0.group == share.group }) else {
            throw .illegalParameter("the server's key share is for \(share.group), which got no share from us")
        }
        let shared = try ours.sharedSecret(peerPublicKey: share.keyExchange)
        parameters?.cipherSuite = hello.cipherSuite
        parameters?.group = share.group
        if transcript == nil { startTranscript(hash) }
        appendTranscript(raw)
        var keySchedule = try clientKeySchedule(hello)
        let secrets = keySchedule.deriveHandshakeSecrets(sharedSecret: shared, transcriptHash: try transcriptHash())
        schedule = keySchedule
        clientHandshakeSecret = secrets.client
        serverHandshakeSecret = secrets.server
        try requireRecordBoundary("ServerHello")
        readProtection = RecordProtection(suite: hello.cipherSuite, secret: secrets.server, crypto: crypto)
        // From here our records (an alert, then our Finished) are protected;
        // the ChangeCipherSpec alone goes in the clear.
        writeProtection = RecordProtection(suite: hello.cipherSuite, secret: secrets.client, crypto: crypto)
        _ = configuration
        phase = .clientWaitEncryptedExtensions
    }

    func clientReceivedHelloRetryRequest(_ hello: ServerHello, raw: [UInt8], sent: ClientHelloSent,
                                         configuration: TLSClientConfiguration, hash: HashAlgorithm) throws(TLSError) {
        guard sent.retrySuite == nil else {
            throw .unexpectedMessage("a second HelloRetryRequest")  // §4.1.4
        }
        var selectedGroup: NamedGroup?
        var cookie: [UInt8]?
        for ext in hello.extensions {
            switch ext.type {
            case .supportedVersions: break
            case .keyShare: selectedGroup = try KeyShareHelloRetryRequest(parsing: ext.data).selectedGroup
            case .cookie: cookie = try Cookie(parsing: ext.data).cookie
            default: throw .unsupportedExtension(ext.type)
            }
        }
        guard selectedGroup != nil || cookie != nil else {
            throw .illegalParameter("a HelloRetryRequest that would change nothing")  // §4.1.4
        }
        var shares = sent.shares
        if let group = selectedGroup {
            guard configuration.groups.contains(group) else {
                throw .illegalParameter("the HelloRetryRequest asks for \(group), which was not offered")
            }
            guard !shares.contains(where: { $0.group == group }) else {
                throw .illegalParameter("the HelloRetryRequest asks for \(group), which already had a share")
            }
            shares = [try crypto.makeKeyExchange(group)]
        }
        parameters?.usedHelloRetryRequest = true
        // §4.4.1: the transcript continues from message_hash(ClientHello1).
        startTranscript(hash)
        transcript?.replaceWithMessageHash(crypto)
        appendTranscript(raw)
        var second = sent.hello
        second.extensions = clientHelloExtensions(configuration, shares: shares, cookie: cookie)
        offerResumption(&second, configuration, transcriptPrefix: transcript?.bytes ?? [], retrySuite: hello.cipherSuite)
        // The peer chose the cookie's size: the rebuilt extension block must
        // still fit its 16-bit length (§4.2), or the hello cannot be sent.
        var extensionBytes = 0
        for ext in second.extensions { extensionBytes += 4 + ext.data.count }
        guard extensionBytes <= 0xFFFF else {
            throw .illegalParameter("a HelloRetryRequest cookie of \(cookie?.count ?? 0) bytes does not fit a ClientHello")
        }
        let secondRaw = outgoing(second.encode())
        second = noteSent(second, raw: secondRaw)
        appendTranscript(secondRaw)
        try requireRecordBoundary("HelloRetryRequest")
        if configuration.middleboxCompatibility { sendChangeCipherSpecOnce() }
        appendPlainRecord(.handshake, secondRaw)
        phase = .clientWaitServerHello(ClientHelloSent(hello: second, shares: shares, retrySuite: hello.cipherSuite))
    }

    // MARK: Encrypted server flight

    func clientReceivedEncryptedExtensions(_ message: EncryptedExtensions, raw: [UInt8]) throws(TLSError) {
        let configuration = try clientConfiguration()
        for ext in message.extensions {
            // §4.2: only extensions the client offered may come back
            // (unsupported_extension); an offered one that does not belong
            // in EncryptedExtensions is illegal_parameter.
            guard offeredExtensions.contains(ext.type) else { throw .unsupportedExtension(ext.type) }
            guard TLSConnection.encryptedExtensionsAllowed.contains(ext.type) else {
                throw .illegalParameter("\(ext.type) is not allowed in EncryptedExtensions")
            }
            switch ext.type {
            case .serverName:
                guard ext.data.isEmpty else { throw .decodeError("server_name in EncryptedExtensions must be empty") }
            case .alpn:
                parameters?.applicationProtocol = try serverChosenProtocol(ext.data, configuration)
            case .supportedGroups:
                break  // the server's preferences, informational (§4.2.7)
            case .recordSizeLimit:
                // RFC 8449 §4: a limit of at least 64 on the plaintext we
                // send, counting the content type byte in TLS 1.3.
                var reader = ByteReader(ext.data)
                let limit = Int(try reader.readUInt16())
                try reader.expectEnd("record_size_limit")
                guard limit >= 64 else { throw .illegalParameter("record_size_limit below 64") }
                sendFragmentLimit = min(TLSConnection.maximumFragment, limit - 1)
            default:
                throw .unsupportedExtension(ext.type)  // only ones we never offer remain
            }
        }
        appendTranscript(raw)
        // A resumed handshake has no Certificate or CertificateVerify (§2.2).
        phase = resumption.resumed ? .clientWaitFinished(requestContext: nil) : .clientWaitCertificate(requestContext: nil)
    }

    func clientReceivedCertificateRequest(_ request: CertificateRequest, raw: [UInt8]) throws(TLSError) {
        // §4.3.2: signature_algorithms is required; the context is empty during the handshake.
        guard let schemes = request.extensions.first(.signatureAlgorithms) else { throw .missingExtension(.signatureAlgorithms) }
        requestedCertificateSchemes = try SignatureSchemeList(parsing: schemes.data).schemes
        guard request.context.isEmpty else { throw .illegalParameter("certificate_request_context must be empty in the handshake") }
        appendTranscript(raw)
        phase = .clientWaitCertificate(requestContext: request.context)
    }

    func clientReceivedCertificate(_ message: CertificateMessage, raw: [UInt8], requestContext: [UInt8]?) throws(TLSError) {
        let configuration = try clientConfiguration()
        guard message.context.isEmpty else { throw .illegalParameter("a server Certificate with a request context") }
        // §4.4.2.4: a server must send a certificate.
        guard !message.entries.isEmpty else { throw .decodeError("the server sent an empty Certificate message") }
        // §4.4.2: entry extensions must answer ones we offered; we offer
        // neither status_request nor signed_certificate_timestamp.
        for entry in message.entries {
            if let ext = entry.extensions.first { throw .unsupportedExtension(ext.type) }
        }
        let chain = message.entries.map { $0.data }
        parameters?.peerCertificates = chain
        appendTranscript(raw)
        phase = .clientWaitCertificateVerify(requestContext: requestContext)
        if configuration.verifiesCertificates {
            awaitingVerification = true
            events.append(.verifyCertificates(CertificateVerificationRequest(
                chain: chain, serverName: configuration.serverName, peerIsServer: true)))
        }
    }

    func clientReceivedCertificateVerify(_ message: CertificateVerify, raw: [UInt8], requestContext: [UInt8]?) throws(TLSError) {
        let configuration = try clientConfiguration()
        // §4.4.3: RSA in CertificateVerify is PSS only, whatever the configuration lists for TLS 1.2.
        guard configuration.signatureSchemes.contains(message.scheme), SignatureScheme.tls13.contains(message.scheme) else {
            throw .illegalParameter("CertificateVerify uses \(message.scheme), which was not offered")
        }
        guard let leaf = parameters?.peerCertificates.first else { throw .internalError("no certificate") }
        let content = TLSConnection.signedContent(context: TLSConnection.serverSignatureContext, transcriptHash: try transcriptHash())
        try crypto.verify(signature: message.signature, scheme: message.scheme, message: content, certificate: leaf)
        parameters?.peerSignatureScheme = message.scheme
        appendTranscript(raw)
        phase = .clientWaitFinished(requestContext: requestContext)
    }

    func clientReceivedFinished(_ message: Finished, raw: [UInt8], requestContext: [UInt8]?) throws(TLSError) {
        let configuration = try clientConfiguration()
        guard let schedule, let suite = parameters?.cipherSuite else { throw .internalError("no key schedule") }
        let expected = schedule.finishedVerifyData(trafficSecret: serverHandshakeSecret, transcriptHash: try transcriptHash())
        try checkFinishedLength(message)
        guard constantTimeEqual(expected, message.verifyData) else {
            throw .decryptError("the server's Finished does not verify")
        }
        peerFinished = true
        appendTranscript(raw)
        var keySchedule = schedule
        let application = keySchedule.deriveApplicationSecrets(transcriptHash: try transcriptHash())
        self.schedule = keySchedule
        clientApplicationSecret = application.client
        serverApplicationSecret = application.server
        try requireRecordBoundary("server Finished")
        readProtection = RecordProtection(suite: suite, secret: application.server, crypto: crypto)

        // Our flight: [CCS], [Certificate], Finished under the handshake keys (§4.4).
        if configuration.middleboxCompatibility { sendChangeCipherSpecOnce() }
        if let requestContext {
            try sendClientCertificate(context: requestContext, configuration: configuration)
        }
        let verifyData = schedule.finishedVerifyData(trafficSecret: clientHandshakeSecret, transcriptHash: try transcriptHash())
        try sendTranscribed(Finished(verifyData: verifyData).encode())
        writeProtection = RecordProtection(suite: suite, secret: application.client, crypto: crypto)
        phase = .connected
        if configuration.sessionCache != nil {
            // Tickets come later; the secret they need is over the transcript
            // that is about to be freed (§7.1, ClientHello…client Finished).
            _ = try resumptionMasterSecret()
        }
        releaseHandshakeState()
        events.append(.handshakeCompleted)
    }
}
