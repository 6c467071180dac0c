import MirageDevices

// TLS 1.2 (RFC 5246) as this library speaks it: ECDHE key exchange only,
// AEAD suites only, the extended master secret required (RFC 7627), secure
// renegotiation signalled (RFC 5746) and renegotiation itself refused.
// What both roles share lives here; the flights are in +Client12/+Server12.

/// Where a TLS 1.2 handshake stands: the message the peer owes next
/// (RFC 5246 §7.3's flights).
enum TLS12Step: Hashable {
    /// Client: the server's Certificate.
    case clientCertificate
    /// Client: ServerKeyExchange.
    case clientServerKeyExchange
    /// Client: CertificateRequest or ServerHelloDone.
    case clientCertificateRequestOrDone
    /// Client: ServerHelloDone after a CertificateRequest.
    case clientServerHelloDone
    /// Server: the client's Certificate (we asked for one).
    case serverCertificate
    /// Server: ClientKeyExchange.
    case serverClientKeyExchange
    /// Server: the client's CertificateVerify (it sent a certificate).
    case serverCertificateVerify
    /// Client: the NewSessionTicket the server promised (RFC 5077 §3.3).
    case newSessionTicket
    /// The peer's ChangeCipherSpec (a record, not a handshake message).
    case changeCipherSpec
    /// The peer's Finished.
    case finished
}

/// What a TLS 1.2 handshake carries from message to message.
struct TLS12Handshake {
    var clientRandom: [UInt8]
    var serverRandom: [UInt8]
    var suite: CipherSuite
    var hash: HashAlgorithm
    /// Our ephemeral ECDHE key.
    var keyExchange: (any KeyExchange)?
    /// Client: the ECDHE shared secret, from ServerKeyExchange until ClientKeyExchange.
    var preMasterSecret: [UInt8] = []
    /// Client: the ticket of a NewSessionTicket, stored once the handshake completes.
    var receivedTicket: NewSessionTicket12?
    var masterSecret: [UInt8] = []
    /// Keys for each direction, installed at each side's ChangeCipherSpec.
    var clientProtection: RecordProtection?
    var serverProtection: RecordProtection?
    /// Client: the schemes our signature_algorithms offered.
    var offeredSchemes: [SignatureScheme] = []
    /// Client: the server's CertificateRequest, if it sent one.
    var certificateRequest: CertificateRequest12?
    /// Server: the schemes our CertificateRequest listed (empty: none sent).
    var requestedSchemes: [SignatureScheme] = []
    /// Server: the client sent a non-empty Certificate, so a CertificateVerify follows.
    var clientSentCertificate = false
    /// An abbreviated handshake from a session ticket (RFC 5077 §3.1).
    var resumed = false
    /// Client: the server acknowledged session_ticket, so a NewSessionTicket
    /// precedes its ChangeCipherSpec. Server: we will send one.
    var ticketPromised = false
}

extension TLSConnection {
    /// Largest session ID (RFC 5246 §7.4.1.2).
    static let maximumSessionIDLength = 32
    /// Renegotiation attempts (and HelloRequests) refused on one connection
    /// before we end it: a peer that keeps asking gets nothing but our CPU.
    static let maximumRefusedRenegotiations = 4

    /// True once TLS 1.2 was negotiated (or is the only version a client offers).
    var isTLS12: Bool { parameters?.version == .tls12 }

    /// The TLS 1.2 state; only called on TLS 1.2 paths.
    func state12() throws(TLSError) -> TLS12Handshake {
        guard let handshake12 else { throw .internalError("no TLS 1.2 handshake state") }
        return handshake12
    }

    /// The authentication a signing key gives a TLS 1.2 suite (RFC 8422 §5.1:
    /// ECDSA suites also carry Ed25519), from the schemes the key signs with.
    static func authentication(of key: any SigningKey) -> TLS12Authentication? {
        key.signatureSchemes.lazy.compactMap { authentication(of: $0) }.first
    }

    /// The kind of key `scheme` signs with, as a TLS 1.2 suite names it.
    static func authentication(of scheme: SignatureScheme) -> TLS12Authentication? {
        switch scheme {
        case .ed25519, .ecdsaSecp256r1SHA256, .ecdsaSecp384r1SHA384: return .ecdsa
        case .rsaPSSRSAESHA256, .rsaPSSRSAESHA384, .rsaPSSRSAESHA512,
             .rsaPKCS1SHA256, .rsaPKCS1SHA384, .rsaPKCS1SHA512: return .rsa
        default: return nil
        }
    }

    /// The certificate type a TLS 1.2 CertificateRequest names for a key (RFC 5246 §7.4.4, RFC 8422 §5.5).
    static func certificateType(of authentication: TLS12Authentication) -> UInt8 {
        authentication == .rsa ? CertificateRequest12.rsaSign : CertificateRequest12.ecdsaSign
    }

    // MARK: Records

    /// A ChangeCipherSpec from a TLS 1.2 peer: the one byte 0x01, only where
    /// the handshake expects it and at a record boundary (RFC 5246 §7.1);
    /// the peer's keys take over from the next record.
    func handleChangeCipherSpec12(_ fragment: [UInt8]) throws(TLSError) {
        guard case .tls12(.changeCipherSpec) = phase else {
            throw .unexpectedMessage("change_cipher_spec out of place in a TLS 1.2 handshake")
        }
        guard fragment == [0x01] else { throw .decodeError("change_cipher_spec of \(fragment.count) bytes") }
        guard handshakeMessages.isEmpty else {
            throw .unexpectedMessage("change_cipher_spec inside a fragmented handshake message")
        }
        let state = try state12()
        guard let peer = isClient ? state.serverProtection : state.clientProtection else {
            throw .internalError("no TLS 1.2 keys at the peer's change_cipher_spec")
        }
        readProtection = peer
        phase = .tls12(.finished)
    }

    /// Sends our ChangeCipherSpec and moves our writing to the new keys.
    func sendChangeCipherSpec12() throws(TLSError) {
        let state = try state12()
        guard let own = isClient ? state.clientProtection : state.serverProtection else {
            throw .internalError("no TLS 1.2 keys at our change_cipher_spec")
        }
        appendPlainRecord(.changeCipherSpec, [0x01])
        writeProtection = own
    }

    /// Derives the master secret (RFC 7627 §4: from the session hash, the
    /// transcript through ClientKeyExchange) and both directions' keys.
    func deriveKeys12(preMasterSecret: [UInt8]) throws(TLSError) {
        var state = try state12()
        let sessionHash = try transcriptHash()
        state.masterSecret = TLS12KeySchedule.extendedMasterSecret(crypto, state.hash, preMasterSecret: preMasterSecret,
                                                                   sessionHash: sessionHash)
        installKeys12(&state)
        handshake12 = state
    }

    /// Both directions' record protection from the master secret (§6.3).
    func installKeys12(_ state: inout TLS12Handshake) {
        let keys = TLS12KeySchedule.recordProtections(crypto, suite: state.suite, masterSecret: state.masterSecret,
                                                      clientRandom: state.clientRandom, serverRandom: state.serverRandom)
        state.clientProtection = keys.client
        state.serverProtection = keys.server
    }

    /// Our Finished (§7.4.9): PRF(master, "client finished"/"server finished", Hash(handshake so far)), 12 bytes.
    func sendFinished12() throws(TLSError) {
        let state = try state12()
        let verifyData = TLS12KeySchedule.finishedVerifyData(crypto, state.hash, masterSecret: state.masterSecret,
                                                             isClient: isClient, handshakeHash: try transcriptHash())
        try sendTranscribed(Finished(verifyData: verifyData).encode())
    }

    /// Checks the peer's Finished in constant time (decrypt_error on a
    /// mismatch, decode_error for a length other than 12, §7.4.9).
    func verifyPeerFinished12(_ message: Finished, raw: [UInt8]) throws(TLSError) {
        let state = try state12()
        guard message.verifyData.count == TLS12KeySchedule.verifyDataLength else {
            throw .decodeError("TLS 1.2 Finished of \(message.verifyData.count) bytes")
        }
        let expected = TLS12KeySchedule.finishedVerifyData(crypto, state.hash, masterSecret: state.masterSecret,
                                                           isClient: !isClient, handshakeHash: try transcriptHash())
        guard constantTimeEqual(expected, message.verifyData) else {
            throw .decryptError("the peer's TLS 1.2 Finished does not verify")
        }
        try requireRecordBoundary("Finished")
        peerFinished = true
        appendTranscript(raw)
    }

    /// The handshake is done: application data may flow.
    func completeHandshake12() {
        phase = .connected
        // Neither the transcript nor the handshake state is needed any more
        // in TLS 1.2 (no exporter or resumption secret derives from it): an
        // idle connection keeps only its record keys.
        releaseHandshakeState()
        handshake12 = nil
        events.append(.handshakeCompleted)
    }

    // MARK: Messages

    /// A handshake message during a TLS 1.2 handshake.
    func handleHandshake12(_ step: TLS12Step, type: HandshakeType, body: [UInt8], raw: [UInt8]) throws(TLSError) {
        switch step {
        case .clientCertificate:
            guard type == .certificate else { throw unexpected(type, "Certificate") }
            try client12ReceivedCertificate(CertificateMessage12(parsing: body), raw: raw)
        case .clientServerKeyExchange:
            guard type == .serverKeyExchange else { throw unexpected(type, "ServerKeyExchange") }
            try client12ReceivedServerKeyExchange(ServerKeyExchangeECDHE(parsing: body), raw: raw)
        case .clientCertificateRequestOrDone:
            if type == .certificateRequest {
                try client12ReceivedCertificateRequest(CertificateRequest12(parsing: body), raw: raw)
            } else if type == .serverHelloDone {
                _ = try ServerHelloDone(parsing: body)
                try client12ReceivedServerHelloDone(raw: raw)
            } else {
                throw unexpected(type, "CertificateRequest or ServerHelloDone")
            }
        case .clientServerHelloDone:
            guard type == .serverHelloDone else { throw unexpected(type, "ServerHelloDone") }
            _ = try ServerHelloDone(parsing: body)
            try client12ReceivedServerHelloDone(raw: raw)
        case .newSessionTicket:
            guard type == .newSessionTicket else { throw unexpected(type, "NewSessionTicket") }
            try client12ReceivedNewSessionTicket(NewSessionTicket12(parsing: body), raw: raw)
        case .serverCertificate:
            guard type == .certificate else { throw unexpected(type, "Certificate") }
            try server12ReceivedCertificate(CertificateMessage12(parsing: body), raw: raw)
        case .serverClientKeyExchange:
            guard type == .clientKeyExchange else { throw unexpected(type, "ClientKeyExchange") }
            try server12ReceivedClientKeyExchange(ClientKeyExchangeECDHE(parsing: body), raw: raw)
        case .serverCertificateVerify:
            guard type == .certificateVerify else { throw unexpected(type, "CertificateVerify") }
            try server12ReceivedCertificateVerify(CertificateVerify(parsing: body), raw: raw)
        case .changeCipherSpec:
            // §7.1: the ChangeCipherSpec must come first; a Finished before it
            // would be read under the wrong keys.
            throw unexpected(type, "ChangeCipherSpec")
        case .finished:
            guard type == .finished else { throw unexpected(type, "Finished") }
            if isClient {
                try client12ReceivedFinished(Finished(parsing: body), raw: raw)
            } else {
                try server12ReceivedFinished(Finished(parsing: body), raw: raw)
            }
        }
    }

    /// A handshake message after a TLS 1.2 handshake: a renegotiation attempt
    /// (a client's ClientHello, a server's HelloRequest) gets a
    /// no_renegotiation warning and is otherwise ignored (RFC 5746 §4.2 and
    /// §4.4 allow refusing); anything else is unexpected.
    func handlePostHandshake12(type: HandshakeType, body: [UInt8]) throws(TLSError) {
        if isClient, type == .helloRequest {
            _ = try HelloRequest(parsing: body)
        } else if !isClient, type == .clientHello {
            _ = try ClientHello(parsing: body)
        } else {
            throw .unexpectedMessage("handshake message \(type.rawValue) after the TLS 1.2 handshake")
        }
        try countRefusedRenegotiation()
        guard !sentCloseNotify else { return }
        try sendAlert(.noRenegotiation, level: .warning)
    }

    /// Counts a refused renegotiation; handshake records do not reset it
    /// (unlike the empty-record count), so a flood ends the connection.
    func countRefusedRenegotiation() throws(TLSError) {
        refusedRenegotiations += 1
        guard refusedRenegotiations <= TLSConnection.maximumRefusedRenegotiations else {
            throw .unexpectedMessage("\(refusedRenegotiations) renegotiation attempts; renegotiation is not supported")
        }
    }

    /// RFC 5246 §7.4.1.1: a client ignores a HelloRequest while it
    /// negotiates (a TLS 1.2 server may send one at any time); it never
    /// enters the transcript. True when `type` was such a message.
    func ignoredHelloRequest(type: HandshakeType, body: [UInt8]) throws(TLSError) -> Bool {
        guard type == .helloRequest, case .client(let configuration) = role, configuration.versions.contains(.tls12) else {
            return false
        }
        switch phase {
        case .tls12, .clientWaitServerHello:
            _ = try HelloRequest(parsing: body)
            try countRefusedRenegotiation()
            return true
        default:
            return false
        }
    }

    /// A TLS 1.2 signature check with the peer's leaf certificate.
    func verifySignature12(_ signature: [UInt8], scheme: SignatureScheme, content: [UInt8]) throws(TLSError) {
        guard let leaf = parameters?.peerCertificates.first else { throw .internalError("no peer certificate") }
        try crypto.verify(signature: signature, scheme: scheme, message: content, certificate: leaf)
    }

    /// The last 8 bytes of a ServerHello.random naming a downgrade (RFC 8446 §4.1.3).
    static func downgradeSentinel(in random: [UInt8]) -> [UInt8]? {
        guard random.count == 32 else { return nil }
        let tail = Array(random[24..<32])
        if tail == ServerHello.downgradeTLS12Sentinel || tail == ServerHello.downgradeTLS11Sentinel { return tail }
        return nil
    }
}
