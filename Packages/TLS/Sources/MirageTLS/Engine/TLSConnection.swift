import MirageDevices

/// A TLS 1.3 connection (RFC 8446), client or server, as a sans-I/O state
/// machine: the driver feeds it the bytes that arrive (`receive`) and the
/// application's calls (`write`, `close`, `updateKeys`), then sends
/// `takeOutput()` to the peer and acts on `nextEvent()`. It opens no socket,
/// reads no clock and draws randomness only from the entropy source given.
///
/// Certificate validation is a waiting state: after the peer's Certificate
/// message the connection reports `.verifyCertificates` and processes
/// nothing more until `certificateVerificationCompleted(_:)`.
public final class TLSConnection {
    /// Plaintext handshake and alert records carry legacy_record_version
    /// 0x0303, except a first ClientHello's, which says 0x0301 for old
    /// middleboxes (§5.1).
    static let recordVersion = ProtocolVersion.tls12
    /// Largest payload of one record (§5.1: 2^14).
    static let maximumFragment = 16_384
    /// Records sealed under one key before we update it ourselves. AES-GCM
    /// is safe for 2^24.5 full records (§5.5); we stay well below.
    static let keyUpdateThreshold: UInt64 = 1 << 24
    /// Early data a server skips when a client attempts 0-RTT we never
    /// offered (§4.2.10: trial decryption, bounded).
    static let maximumSkippedEarlyData = 65_536
    /// Context strings of CertificateVerify's signed content (§4.4.3).
    static let serverSignatureContext = Array("TLS 1.3, server CertificateVerify".utf8)
    static let clientSignatureContext = Array("TLS 1.3, client CertificateVerify".utf8)

    /// The side of the connection.
    enum Role {
        case client(TLSClientConfiguration)
        case server(TLSServerConfiguration)
    }

    /// What the client has sent, kept until the ServerHello answers it.
    struct ClientHelloSent {
        /// The hello as sent (rebuilt after a HelloRetryRequest).
        var hello: ClientHello
        /// One ephemeral key per share offered.
        var shares: [any KeyExchange]
        /// The suite a HelloRetryRequest chose; the ServerHello must repeat it (§4.1.4).
        var retrySuite: CipherSuite?
    }

    /// What a server remembers across its HelloRetryRequest.
    struct RetryState {
        /// The group the HelloRetryRequest asked for.
        var group: NamedGroup
        /// The suite it chose.
        var suite: CipherSuite
        /// The first ClientHello, for the checks on the second.
        var firstHello: ClientHello
    }

    /// The phase of the handshake, each case carrying what that phase needs.
    enum Phase {
        /// Client: `start()` not called yet.
        case clientStart
        /// Client: ClientHello sent, waiting for ServerHello or HelloRetryRequest.
        case clientWaitServerHello(ClientHelloSent)
        /// Client: handshake keys in use, waiting for EncryptedExtensions.
        case clientWaitEncryptedExtensions
        /// Client: waiting for CertificateRequest or Certificate.
        case clientWaitCertificate(requestContext: [UInt8]?)
        /// Client: waiting for the server's CertificateVerify.
        case clientWaitCertificateVerify(requestContext: [UInt8]?)
        /// Client: waiting for the server's Finished.
        case clientWaitFinished(requestContext: [UInt8]?)
        /// Server: waiting for a ClientHello (the second one after a HelloRetryRequest).
        case serverWaitClientHello(RetryState?)
        /// Server: its flight sent, waiting for the client's Finished.
        case serverWaitFinished(expected: [UInt8])
        /// Server: CertificateRequest sent, waiting for the client's Certificate.
        case serverWaitClientCertificate
        /// Server: waiting for the client's CertificateVerify (after verification).
        case serverWaitClientCertificateVerify
        /// A TLS 1.2 handshake (RFC 5246), at the step named.
        case tls12(TLS12Step)
        /// Handshake complete.
        case connected
        /// Failed or closed both ways: nothing more is processed.
        case ended
    }

    let role: Role
    let crypto: any CryptoProvider
    let entropy: any EntropySource
    let limits: TLSLimits
    var phase: Phase

    var records = RecordReassembler()
    var handshakeMessages: HandshakeReassembler
    var readProtection: RecordProtection?
    var writeProtection: RecordProtection?
    var transcript: TranscriptHash?
    /// Handshake messages seen before the suite (and so the hash) is known.
    var pendingTranscript: [[UInt8]] = []
    var schedule: KeySchedule?
    var clientHandshakeSecret: [UInt8] = []
    var serverHandshakeSecret: [UInt8] = []
    var clientApplicationSecret: [UInt8] = []
    var serverApplicationSecret: [UInt8] = []

    var parameters: NegotiatedParameters?
    /// The TLS 1.2 handshake in progress (nil for TLS 1.3 and once complete).
    var handshake12: TLS12Handshake?
    /// Renegotiations (and HelloRequests) refused so far.
    var refusedRenegotiations = 0
    /// Client: the TLS 1.2 session whose ticket the ClientHello offers.
    var offeredSession12: TLS12Session?
    /// The driver's monotonic time, set before each call that may need it:
    /// ticket ages and expiry are measured with it (the core reads no clock).
    public var now = Instant(nanoseconds: 0)
    var output: [UInt8] = []
    var events: [TLSEvent] = []
    var eventHead = 0
    /// True while the driver checks the peer's certificates.
    var awaitingVerification = false
    /// The dummy ChangeCipherSpec went out (at most once, §D.4).
    var sentChangeCipherSpec = false
    /// The peer's Finished arrived: a ChangeCipherSpec is no longer allowed (§5).
    var peerFinished = false
    var sentCloseNotify = false
    var receivedCloseNotify = false
    /// The signature_algorithms of the handshake's CertificateRequest: the
    /// server's list once sent, the client's copy once received; nil: none.
    var requestedCertificateSchemes: [SignatureScheme]?
    /// Server: bytes of undecryptable 0-RTT records skipped so far.
    var skippedEarlyData = 0
    /// Server: the client announced early data we will not take.
    var skippingEarlyData = false
    /// Records in a row that carried nothing (CCS, empty application data).
    var emptyRecords = 0
    /// The peer asked for our KeyUpdate; one answers any number of requests
    /// received together (§4.6.3), sent once the batch is processed.
    var owesKeyUpdate = false
    /// Client: the extension types of the ClientHello sent; the server may
    /// only answer those (§4.2).
    var offeredExtensions: [ExtensionType] = []
    /// Largest plaintext per record we send: ours, or less when the peer set
    /// a record_size_limit (RFC 8449 §4).
    var sendFragmentLimit = TLSConnection.maximumFragment
    /// Tickets offered, accepted and issued (TLSConnection+Resumption.swift).
    var resumption = ResumptionState()
    /// Tests only (`@testable`): rewrites each handshake message this side
    /// sends before it enters the transcript, to play a misbehaving peer.
    var tamperWithOutgoingHandshake: (([UInt8]) -> [UInt8])?

    /// A client connection; call `start()` to produce the ClientHello.
    public convenience init(client configuration: TLSClientConfiguration, crypto: any CryptoProvider, entropy: any EntropySource) {
        self.init(role: .client(configuration), limits: configuration.limits, phase: .clientStart, crypto: crypto, entropy: entropy)
    }

    /// A server connection; it waits for the client's hello.
    public convenience init(server configuration: TLSServerConfiguration, crypto: any CryptoProvider, entropy: any EntropySource) {
        self.init(role: .server(configuration), limits: configuration.limits, phase: .serverWaitClientHello(nil),
                  crypto: crypto, entropy: entropy)
    }

    init(role: Role, limits: TLSLimits, phase: Phase, crypto: any CryptoProvider, entropy: any EntropySource) {
        self.role = role
        self.limits = limits
        self.phase = phase
        self.crypto = crypto
        self.entropy = entropy
        handshakeMessages = HandshakeReassembler(maximumMessageSize: limits.maximumHandshakeMessageSize)
    }

    // MARK: - The driver's side

    /// True once both Finished messages are verified.
    public var isHandshakeComplete: Bool {
        if case .connected = phase { return true }
        return false
    }

    /// True when the connection failed or both sides closed.
    public var isEnded: Bool {
        if case .ended = phase { return true }
        return false
    }

    /// What the handshake settled on; complete once the handshake is.
    public var negotiated: NegotiatedParameters? { parameters }

    /// True when records wait to be sent.
    public var hasOutput: Bool { !output.isEmpty }

    /// Bytes waiting to be sent.
    public var pendingOutputCount: Int { output.count }

    /// Takes the records to send, in order.
    public func takeOutput() -> [UInt8] {
        let taken = output
        output = []
        return taken
    }

    /// The next event, or nil when there is none.
    public func nextEvent() -> TLSEvent? {
        guard eventHead < events.count else {
            if !events.isEmpty { events.removeAll(keepingCapacity: true); eventHead = 0 }
            return nil
        }
        let event = events[eventHead]
        eventHead += 1
        return event
    }

    /// Client: queues the ClientHello. Does nothing on a server or when called twice.
    public func start() {
        guard case .clientStart = phase, case .client(let configuration) = role else { return }
        do throws(TLSError) {
            try sendClientHello(configuration)
        } catch {
            fail(error)
        }
    }

    /// Feeds bytes received from the peer, in any chunking.
    public func receive(_ bytes: Span<UInt8>) {
        if case .ended = phase { return }
        if receivedCloseNotify { return }  // §6.1: data after close_notify is ignored
        records.append(bytes)
        process()
    }

    /// Encrypts application data; the whole span is taken (split into records
    /// of at most `limits.maximumRecordPlaintext` bytes).
    public func write(_ plaintext: Span<UInt8>) throws(TLSError) {
        guard case .connected = phase else {
            if case .ended = phase { throw .closed }
            throw .notReady("the handshake is not complete")
        }
        guard !sentCloseNotify else { throw .closed }
        let fragment = max(1, min(limits.maximumRecordPlaintext, sendFragmentLimit))
        var offset = 0
        while offset < plaintext.count {
            let end = min(plaintext.count, offset + fragment)
            var chunk = [UInt8]()
            chunk.append(span: plaintext.extracting(offset..<end))
            try sealRecord(.applicationData, chunk)
            offset = end
            try updateKeysIfWorn()
        }
    }

    /// Queues close_notify (once): we send nothing more; the peer may still.
    public func close() {
        guard !sentCloseNotify else { return }
        if case .ended = phase { return }
        sentCloseNotify = true
        do throws(TLSError) {
            try sendAlert(.closeNotify, level: .warning)
        } catch {
            fail(error)
            return
        }
        // Before the handshake completes, closing abandons it: nothing we
        // would send next (a Finished) may follow close_notify (§6.1).
        if receivedCloseNotify || !isHandshakeComplete {
            phase = .ended
            awaitingVerification = false
        }
    }

    /// Sends a KeyUpdate and moves our sending keys on (§4.6.3); with
    /// `requestPeerUpdate` the peer is asked to do the same.
    public func updateKeys(requestPeerUpdate: Bool) throws(TLSError) {
        guard case .connected = phase else { throw .notReady("key update before the handshake completed") }
        guard !sentCloseNotify else { throw .closed }
        guard !isTLS12 else { throw .notReady("TLS 1.2 has no KeyUpdate") }
        try sendKeyUpdate(request: requestPeerUpdate)
    }

    /// The driver's answer to `.verifyCertificates`; processing resumes.
    public func certificateVerificationCompleted(_ result: CertificateVerificationResult) {
        guard awaitingVerification else { return }
        awaitingVerification = false
        if case .rejected(let failure) = result {
            fail(.badCertificate(failure))
            return
        }
        process()
    }

    // MARK: - Records in

    /// Works through buffered records and handshake messages until more
    /// bytes are needed, the driver must verify certificates, or the end.
    func process() {
        do throws(TLSError) {
            defer { sendOwedKeyUpdate() }
            while true {
                if case .ended = phase { return }
                // §6.1: whatever follows close_notify is ignored.
                if receivedCloseNotify { return }
                if awaitingVerification {
                    // The peer's next flight waits in `records`, bounded (§ limits).
                    if records.bufferedCount > limits.maximumBufferedWhileVerifying {
                        throw .limitExceeded("\(records.bufferedCount) bytes buffered while verifying certificates")
                    }
                    return
                }
                if let message = try handshakeMessages.next() {
                    try handleHandshake(type: message.type, body: message.body, raw: message.raw)
                    continue
                }
                guard let record = try records.next() else { return }
                try handleRecord(record.header, record.fragment)
            }
        } catch {
            fail(error)
        }
    }

    func handleRecord(_ header: RecordHeader, _ fragment: [UInt8]) throws(TLSError) {
        if header.contentType == .changeCipherSpec, isTLS12 {
            try handleChangeCipherSpec12(fragment)
            return
        }
        if header.contentType == .changeCipherSpec {
            // §5: one byte 0x01, unprotected, between the first ClientHello
            // and the peer's Finished, is dropped; anything else is fatal.
            guard fragment == [0x01], !peerFinished, isPastFirstClientHello, handshakeMessages.isEmpty else {
                throw .unexpectedMessage("change_cipher_spec outside the handshake's compatibility window")
            }
            try countEmptyRecord()
            return
        }
        let contentType: ContentType
        let plaintext: [UInt8]
        if header.contentType == .alert, let protection = readProtection, !protection.isTLS12, protection.sequenceNumber == 0,
           !isHandshakeComplete, !peerFinished {
            // A peer that fails before it has keys (on the very message that
            // gave us ours) can only send its alert in the clear; take it.
            try handleAlert(Alert(parsing: fragment))
            return
        }
        if var protection = readProtection {
            // TLS 1.2 records keep their real content type outside (RFC 5246 §6.2.3.3).
            guard header.contentType == .applicationData || protection.isTLS12 else {
                throw .unexpectedMessage("unprotected \(header.contentType.rawValue) record after keys changed")
            }
            do throws(TLSError) {
                (contentType, plaintext) = try protection.open(header: header, fragment: fragment)
            } catch {
                if error == .badRecordMAC, skippingEarlyData {
                    // §4.2.10: rejected 0-RTT data is skipped by trial decryption, up to a limit.
                    skippedEarlyData += fragment.count
                    guard skippedEarlyData <= TLSConnection.maximumSkippedEarlyData else { throw .badRecordMAC }
                    return
                }
                throw error
            }
            readProtection = protection
            skippingEarlyData = false
        } else {
            guard header.contentType == .handshake || header.contentType == .alert else {
                if header.contentType == .applicationData, skippingEarlyData {
                    skippedEarlyData += fragment.count
                    guard skippedEarlyData <= TLSConnection.maximumSkippedEarlyData else {
                        throw .unexpectedMessage("too much early data")
                    }
                    return
                }
                throw .unexpectedMessage("content type \(header.contentType.rawValue) before encryption")
            }
            // §5.1: an unprotected record carries at most 2^14 bytes.
            guard fragment.count <= RecordHeader.maximumPlaintextLength else { throw .recordOverflow(length: fragment.count) }
            contentType = header.contentType
            plaintext = fragment
        }
        // §5.1: handshake messages may not be interleaved with other record types.
        if contentType != .handshake, !handshakeMessages.isEmpty {
            throw .unexpectedMessage("record of type \(contentType.rawValue) inside a fragmented handshake message")
        }
        switch contentType {
        case .handshake:
            guard !plaintext.isEmpty else { throw .unexpectedMessage("empty handshake record") }
            emptyRecords = 0
            handshakeMessages.append(plaintext)
        case .alert:
            try handleAlert(Alert(parsing: plaintext))
        case .applicationData:
            guard case .connected = phase else {
                throw .unexpectedMessage("application data before the handshake completed")
            }
            if plaintext.isEmpty {
                try countEmptyRecord()
            } else {
                emptyRecords = 0
                events.append(.applicationData(plaintext))
            }
        default:
            throw .unexpectedMessage("unknown content type \(contentType.rawValue)")
        }
    }

    var isPastFirstClientHello: Bool {
        switch phase {
        case .clientStart: return false
        case .serverWaitClientHello(let retry): return retry != nil
        default: return true
        }
    }

    func countEmptyRecord() throws(TLSError) {
        emptyRecords += 1
        if emptyRecords > limits.maximumEmptyRecords {
            throw .unexpectedMessage("\(emptyRecords) records in a row without content")
        }
    }

    func handleAlert(_ alert: Alert) throws(TLSError) {
        if alert.description == .closeNotify, !isHandshakeComplete {
            // A peer closing before the handshake completed ends it: nothing
            // more can follow (§6.1), and the handshake cannot finish.
            phase = .ended
            awaitingVerification = false
            events.append(.failed(.alertReceived(.closeNotify)))
            return
        }
        if alert.description == .closeNotify {
            receivedCloseNotify = true
            events.append(.closeNotify)
            if sentCloseNotify { phase = .ended }
            return
        }
        if alert.description == .userCanceled {
            return  // §6.1: a close_notify should follow
        }
        if isTLS12, alert.level == .warning {
            // RFC 5246 §7.2: a warning does not end a TLS 1.2 connection
            // (no_renegotiation answering nothing we asked, for one); a run
            // of them is cut off like other empty records.
            try countEmptyRecord()
            return
        }
        // §6: every other alert is fatal in TLS 1.3, whatever its level.
        let error = TLSError.alertReceived(alert.description)
        phase = .ended
        events.append(.failed(error))
    }

    // MARK: - Handshake messages

    func handleHandshake(type: HandshakeType, body: [UInt8], raw: [UInt8]) throws(TLSError) {
        if try ignoredHelloRequest(type: type, body: body) { return }
        switch phase {
        case .clientStart, .ended:
            throw .unexpectedMessage("handshake message \(type.rawValue) before start")
        case .clientWaitServerHello(let sent):
            guard type == .serverHello else { throw unexpected(type, "ServerHello") }
            try clientReceivedServerHello(ServerHello(parsing: body), raw: raw, sent: sent)
        case .clientWaitEncryptedExtensions:
            guard type == .encryptedExtensions else { throw unexpected(type, "EncryptedExtensions") }
            try clientReceivedEncryptedExtensions(EncryptedExtensions(parsing: body), raw: raw)
        case .clientWaitCertificate(let requestContext):
            if type == .certificateRequest, requestContext == nil {
                let request = try CertificateRequest(parsing: body)
                try clientReceivedCertificateRequest(request, raw: raw)
            } else if type == .certificate {
                try clientReceivedCertificate(CertificateMessage(parsing: body), raw: raw, requestContext: requestContext)
            } else {
                throw unexpected(type, "Certificate")
            }
        case .clientWaitCertificateVerify(let requestContext):
            guard type == .certificateVerify else { throw unexpected(type, "CertificateVerify") }
            try clientReceivedCertificateVerify(CertificateVerify(parsing: body), raw: raw, requestContext: requestContext)
        case .clientWaitFinished(let requestContext):
            guard type == .finished else { throw unexpected(type, "Finished") }
            try clientReceivedFinished(Finished(parsing: body), raw: raw, requestContext: requestContext)
        case .serverWaitClientHello(let retry):
            guard type == .clientHello else { throw unexpected(type, "ClientHello") }
            try serverReceivedClientHello(ClientHello(parsing: body), raw: raw, retry: retry)
        case .serverWaitFinished(let expected):
            guard type == .finished else { throw unexpected(type, "Finished") }
            try serverReceivedFinished(Finished(parsing: body), raw: raw, expected: expected)
        case .serverWaitClientCertificate:
            guard type == .certificate else { throw unexpected(type, "Certificate") }
            try serverReceivedCertificate(CertificateMessage(parsing: body), raw: raw)
        case .serverWaitClientCertificateVerify:
            guard type == .certificateVerify else { throw unexpected(type, "CertificateVerify") }
            try serverReceivedCertificateVerify(CertificateVerify(parsing: body), raw: raw)
        case .tls12(let step):
            try handleHandshake12(step, type: type, body: body, raw: raw)
        case .connected:
            if isTLS12 {
                try handlePostHandshake12(type: type, body: body)
            } else {
                try handlePostHandshake(type: type, body: body)
            }
        }
    }

    func unexpected(_ type: HandshakeType, _ wanted: String) -> TLSError {
        .unexpectedMessage("handshake message \(type.rawValue) where \(wanted) was expected")
    }

    func handlePostHandshake(type: HandshakeType, body: [UInt8]) throws(TLSError) {
        switch type {
        case .keyUpdate:
            let update = try KeyUpdate(parsing: body)
            // §4.6.3: a KeyUpdate must end its record, as every key change does.
            try requireRecordBoundary("KeyUpdate")
            let peerSecret = isClient ? serverApplicationSecret : clientApplicationSecret
            guard let schedule, let suite = parameters?.cipherSuite else { throw .internalError("no key schedule") }
            let next = schedule.nextApplicationSecret(peerSecret)
            if isClient { serverApplicationSecret = next } else { clientApplicationSecret = next }
            readProtection = RecordProtection(suite: suite, secret: next, crypto: crypto)
            if update.requestUpdate { owesKeyUpdate = true }
        case .newSessionTicket where isClient:
            try clientReceivedNewSessionTicket(NewSessionTicket(parsing: body))
        default:
            throw .unexpectedMessage("handshake message \(type.rawValue) after the handshake")
        }
    }

    var isClient: Bool {
        if case .client = role { return true }
        return false
    }

    /// §5.1: a key change must fall on a record boundary.
    func requireRecordBoundary(_ message: String) throws(TLSError) {
        guard handshakeMessages.isEmpty else {
            throw .unexpectedMessage("\(message) is not at the end of its record")
        }
    }

    // MARK: - Records out

    func appendPlainRecord(_ type: ContentType, _ payload: [UInt8], version: ProtocolVersion = TLSConnection.recordVersion) {
        var offset = 0
        repeat {
            let end = min(payload.count, offset + TLSConnection.maximumFragment)
            output.appendUInt8(type.rawValue)
            output.appendUInt16(version.rawValue)
            output.appendUInt16(UInt16(end - offset))
            output.append(contentsOf: payload[offset..<end])
            offset = end
        } while offset < payload.count
    }

    func sealRecord(_ type: ContentType, _ payload: [UInt8]) throws(TLSError) {
        guard var protection = writeProtection else {
            appendPlainRecord(type, payload)
            return
        }
        try protection.seal(contentType: type, plaintext: payload, padding: 0, appendingTo: &output)
        writeProtection = protection
    }

    /// A handshake message on its way out, after the test hook if there is one.
    func outgoing(_ message: [UInt8]) -> [UInt8] {
        guard let tamperWithOutgoingHandshake else { return message }
        return tamperWithOutgoingHandshake(message)
    }

    /// Sends handshake bytes under the current keys, split into records of at most 2^14.
    func sendHandshake(_ message: [UInt8]) throws(TLSError) {
        guard writeProtection != nil else {
            appendPlainRecord(.handshake, message)
            return
        }
        var offset = 0
        while offset < message.count {
            let end = min(message.count, offset + TLSConnection.maximumFragment)
            try sealRecord(.handshake, Array(message[offset..<end]))
            offset = end
        }
    }

    /// A handshake message of ours: through the test hook, into the
    /// transcript, and out under the current keys.
    func sendTranscribed(_ message: [UInt8]) throws(TLSError) {
        let message = outgoing(message)
        appendTranscript(message)
        try sendHandshake(message)
    }

    func sendChangeCipherSpecOnce() {
        guard !sentChangeCipherSpec else { return }
        sentChangeCipherSpec = true
        appendPlainRecord(.changeCipherSpec, [0x01])
    }

    func sendAlert(_ description: AlertDescription, level: AlertLevel) throws(TLSError) {
        try sealRecord(.alert, Alert(level: level, description: description).bytes)
    }

    func sendKeyUpdate(request: Bool) throws(TLSError) {
        guard let schedule, let suite = parameters?.cipherSuite else { throw .internalError("no key schedule") }
        try sendHandshake(KeyUpdate(requestUpdate: request).encode())
        let own = isClient ? clientApplicationSecret : serverApplicationSecret
        let next = schedule.nextApplicationSecret(own)
        if isClient { clientApplicationSecret = next } else { serverApplicationSecret = next }
        writeProtection = RecordProtection(suite: suite, secret: next, crypto: crypto)
    }

    func sendOwedKeyUpdate() {
        guard owesKeyUpdate else { return }
        owesKeyUpdate = false
        guard case .connected = phase, !sentCloseNotify else { return }
        do throws(TLSError) {
            try sendKeyUpdate(request: false)
        } catch {
            fail(error)
        }
    }

    func updateKeysIfWorn() throws(TLSError) {
        // TLS 1.2 cannot change keys without renegotiation, which we refuse.
        if isTLS12 { return }
        if let protection = writeProtection, protection.sequenceNumber >= TLSConnection.keyUpdateThreshold {
            try sendKeyUpdate(request: false)
        }
    }

    /// Frees what only the handshake needed once it is complete: the
    /// transcript (every handshake message, certificates included) and the
    /// handshake traffic secrets. An idle connection keeps its record keys,
    /// its application secrets (KeyUpdate) and the resumption secret.
    func releaseHandshakeState() {
        transcript = nil
        pendingTranscript = []
        clientHandshakeSecret = []
        serverHandshakeSecret = []
        offeredExtensions = []
        resumption.offeredTicket = nil
        offeredSession12 = nil
        if !isClient { resumption.resumptionMasterSecret = nil }  // tickets are issued at completion only
    }

    /// Ends the connection: the alert goes out (unless the peer's alert ended
    /// it) and `.failed` is reported once.
    func fail(_ error: TLSError) {
        if case .ended = phase { return }
        // RFC 5246 §7.2: a session whose resumption fails is not offered again.
        if handshake12?.resumed == true { forgetOfferedSession12() }
        if case .alertReceived = error {} else if !sentCloseNotify {
            if (try? sendAlert(error.alert, level: .fatal)) == nil {
                appendPlainRecord(.alert, Alert(level: .fatal, description: error.alert).bytes)
            }
        }
        phase = .ended
        awaitingVerification = false
        events.append(.failed(error))
    }

    // MARK: - Shared handshake pieces

    func appendTranscript(_ raw: [UInt8]) {
        if transcript != nil {
            transcript?.append(raw)
        } else {
            pendingTranscript.append(raw)
        }
    }

    /// Starts the transcript once the suite is known, with the messages so far.
    func startTranscript(_ hash: HashAlgorithm) {
        var fresh = TranscriptHash(hash)
        for message in pendingTranscript { fresh.append(message) }
        pendingTranscript = []
        transcript = fresh
    }

    func transcriptHash() throws(TLSError) -> [UInt8] {
        guard let transcript else { throw .internalError("no transcript") }
        return transcript.current(crypto)
    }

    /// The content CertificateVerify signs (§4.4.3): 64 spaces, the context
    /// string, a zero byte, then the transcript hash.
    static func signedContent(context: [UInt8], transcriptHash: [UInt8]) -> [UInt8] {
        var content = [UInt8](repeating: 0x20, count: 64)
        content += context
        content.append(0)
        content += transcriptHash
        return content
    }

    /// `count` bytes from the entropy source. Filled here rather than with
    /// `EntropySource.bytes(_:)`, which traps when called through an
    /// existential under Embedded Swift 6.3 (seen in Scripts/check-embedded).
    func randomBytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var span = out.mutableSpan
        entropy.fill(&span)
        _ = consume span
        return out
    }

    /// A Finished is as long as the suite's hash (§4.4.4); another length
    /// is malformed rather than wrong.
    func checkFinishedLength(_ message: Finished) throws(TLSError) {
        guard let hash = parameters?.cipherSuite.hash, message.verifyData.count == hash.outputLength else {
            throw .decodeError("Finished of \(message.verifyData.count) bytes")
        }
    }
}
