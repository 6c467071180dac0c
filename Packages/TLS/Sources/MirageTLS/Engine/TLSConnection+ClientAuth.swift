import MirageDevices

// Client certificates in TLS 1.3 (RFC 8446 §4.3.2, §4.4.2, §4.4.3): the
// server's CertificateRequest and what it does with the client's answer, and
// the client's choice of certificate. The hooks sit in +Server/+Client and
// in TLSConnection's phase switch; the logic lives here.

extension TLSConnection {
    // MARK: Server

    /// The schemes a server lists in its CertificateRequest: those it is
    /// configured for that TLS 1.3 allows in CertificateVerify (§4.2.3:
    /// no PKCS#1 v1.5, no SHA-1) and that the provider can verify.
    func clientCertificateSchemes(_ configuration: TLSServerConfiguration) -> [SignatureScheme] {
        configuration.signatureSchemes.filter {
            SignatureScheme.tls13.contains($0) && crypto.supportedSignatureSchemes.contains($0)
        }
    }

    /// Server: sends CertificateRequest after EncryptedExtensions when the
    /// configuration asks for client certificates (§4.3.2), and remembers
    /// the schemes it listed. Not on a resumed handshake: a server
    /// authenticating with a resumption PSK MUST NOT send it (§4.3.2).
    func sendCertificateRequestIfWanted(_ configuration: TLSServerConfiguration) throws(TLSError) {
        guard configuration.clientAuthentication != .none, parameters?.resumed != true else { return }
        let schemes = clientCertificateSchemes(configuration)
        guard !schemes.isEmpty else {
            throw .configuration("client authentication without a TLS 1.3 signature scheme to accept")
        }
        // §4.3.2: the context is empty in the main handshake (it only tells
        // post-handshake requests apart); signature_algorithms MUST be present.
        let request = CertificateRequest(context: [], extensions: [
            Extension(type: .signatureAlgorithms, data: SignatureSchemeList(schemes: schemes).encode()),
        ])
        try sendTranscribed(request.encode())
        requestedCertificateSchemes = schemes
    }

    /// Server: the phase after its flight — the client's Certificate when
    /// one was requested, else its Finished (whose expected value cannot
    /// change any more, so it was computed with the flight).
    func serverPhaseAfterFlight(expectedClientFinished: [UInt8]) -> Phase {
        requestedCertificateSchemes != nil ? .serverWaitClientCertificate : .serverWaitFinished(expected: expectedClientFinished)
    }

    /// Server: the client's Certificate (§4.4.2). An empty list is allowed by
    /// the protocol; `.required` refuses it with certificate_required
    /// (§4.4.2.4). A non-empty chain is handed to the driver to verify, and
    /// the handshake waits for its answer before the CertificateVerify.
    func serverReceivedCertificate(_ message: CertificateMessage, raw: [UInt8]) throws(TLSError) {
        let configuration = try serverConfiguration()
        // §4.4.2: the client echoes the request's context (empty here).
        guard message.context.isEmpty else {
            throw .illegalParameter("the client's Certificate carries a request context the server did not send")
        }
        // §4.4.2: entry extensions must answer extensions of the request; ours
        // offers none (status_request, signed_certificate_timestamp, …).
        for entry in message.entries {
            if let ext = entry.extensions.first { throw .unsupportedExtension(ext.type) }
        }
        appendTranscript(raw)
        guard !message.entries.isEmpty else {
            if configuration.clientAuthentication == .required { throw .certificateRequired }
            // §4.4.2.4: the server may go on without client authentication;
            // no CertificateVerify follows an empty Certificate (§4.4.3).
            phase = .serverWaitFinished(expected: try expectedClientFinished())
            return
        }
        let chain = message.entries.map { $0.data }
        parameters?.peerCertificates = chain
        phase = .serverWaitClientCertificateVerify
        awaitingVerification = true
        events.append(.verifyCertificates(CertificateVerificationRequest(chain: chain, serverName: nil, peerIsServer: false)))
    }

    /// Server: the client's CertificateVerify (§4.4.3), signed over the
    /// transcript through its Certificate with the client context string.
    func serverReceivedCertificateVerify(_ message: CertificateVerify, raw: [UInt8]) throws(TLSError) {
        // §4.4.3: the scheme MUST be one the CertificateRequest listed, and
        // a TLS 1.3 CertificateVerify scheme (no PKCS#1 v1.5, §4.2.3).
        guard let requested = requestedCertificateSchemes, requested.contains(message.scheme),
              SignatureScheme.tls13.contains(message.scheme) else {
            throw .illegalParameter("the client's CertificateVerify uses \(message.scheme), which was not requested")
        }
        guard let leaf = parameters?.peerCertificates.first else { throw .internalError("no client certificate") }
        let content = TLSConnection.signedContent(context: TLSConnection.clientSignatureContext, transcriptHash: try transcriptHash())
        // A wrong signature is decrypt_error (§4.4.3), thrown by the provider.
        try crypto.verify(signature: message.signature, scheme: message.scheme, message: content, certificate: leaf)
        parameters?.peerSignatureScheme = message.scheme
        appendTranscript(raw)
        phase = .serverWaitFinished(expected: try expectedClientFinished())
    }

    /// The client Finished the server expects, over the transcript so far
    /// (so it covers the client's Certificate and CertificateVerify, §4.4.4).
    func expectedClientFinished() throws(TLSError) -> [UInt8] {
        guard let schedule else { throw .internalError("no key schedule") }
        return schedule.finishedVerifyData(trafficSecret: clientHandshakeSecret, transcriptHash: try transcriptHash())
    }

    // MARK: Client

    /// Client: the certified key to answer a CertificateRequest with, and the
    /// scheme to sign with: the first configured certificate whose key offers
    /// a scheme the server listed that TLS 1.3 allows in CertificateVerify
    /// (§4.4.2.3), in the key's preference order. certificate_authorities
    /// and oid_filters are not consulted (the server decides on what it gets).
    /// TLS 1.2 passes its own `allowed` schemes and the CertificateRequest's
    /// certificate types, which the key's kind must be among (RFC 5246 §7.4.4).
    static func chooseClientCertificate(_ certificates: [CertifiedKey], requested: [SignatureScheme],
                                        allowed: [SignatureScheme] = SignatureScheme.tls13,
                                        certificateTypes: [UInt8]? = nil) -> (CertifiedKey, SignatureScheme)? {
        for certified in certificates where !certified.chain.isEmpty {
            if let types = certificateTypes {
                guard let authentication = authentication(of: certified.key),
                      types.contains(certificateType(of: authentication)) else { continue }
            }
            if let scheme = certified.key.signatureSchemes.first(where: {
                requested.contains($0) && allowed.contains($0)
            }) {
                return (certified, scheme)
            }
        }
        return nil
    }

    /// Client: its Certificate, and a CertificateVerify when the Certificate
    /// is not empty (§4.4.2, §4.4.3), before its Finished. No fitting
    /// certificate → an empty Certificate (§4.4.2.3).
    func sendClientCertificate(context: [UInt8], configuration: TLSClientConfiguration) throws(TLSError) {
        let chosen = TLSConnection.chooseClientCertificate(configuration.certificates,
                                                           requested: requestedCertificateSchemes ?? [])
        let entries = chosen?.0.chain.map { CertificateEntry(data: $0, extensions: []) } ?? []
        try sendTranscribed(CertificateMessage(context: context, entries: entries).encode())
        guard let chosen else { return }
        let (certified, scheme) = chosen
        let content = TLSConnection.signedContent(context: TLSConnection.clientSignatureContext, transcriptHash: try transcriptHash())
        let signature = try certified.key.sign(content, scheme: scheme)
        try sendTranscribed(CertificateVerify(scheme: scheme, signature: signature).encode())
    }
}
