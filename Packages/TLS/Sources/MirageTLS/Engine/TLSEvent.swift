/// What a `TLSConnection` reports to its driver, in order, through `nextEvent()`.
public enum TLSEvent: Sendable, Hashable {
    /// The peer's certificates need checking; the handshake waits until the
    /// driver calls `certificateVerificationCompleted(_:)`.
    case verifyCertificates(CertificateVerificationRequest)
    /// Both Finished messages verified: application data may flow.
    case handshakeCompleted
    /// Decrypted application data, in order.
    case applicationData([UInt8])
    /// The peer sent close_notify: it will send nothing more (RFC 8446 §6.1).
    case closeNotify
    /// The connection failed; terminal. When an alert should tell the peer,
    /// it is already in the output.
    case failed(TLSError)
}

/// What the handshake settled on.
public struct NegotiatedParameters: Sendable, Hashable {
    /// TLS 1.3 or TLS 1.2.
    public var version: ProtocolVersion
    /// The cipher suite.
    public var cipherSuite: CipherSuite
    /// The (EC)DHE group.
    public var group: NamedGroup?
    /// The ALPN protocol both sides chose, if any.
    public var applicationProtocol: String?
    /// The SNI host name the client sent (on a server) or asked for (on a client).
    public var serverName: String?
    /// The peer's certificates in DER, leaf first (empty when it sent none).
    public var peerCertificates: [[UInt8]]
    /// The scheme of the peer's CertificateVerify.
    public var peerSignatureScheme: SignatureScheme?
    /// True when the server sent a HelloRetryRequest.
    public var usedHelloRetryRequest: Bool
    /// True when the handshake resumed an earlier session (a TLS 1.3 PSK
    /// from a ticket, or a TLS 1.2 session ticket) instead of authenticating anew.
    public var resumed: Bool = false
    /// Parameters as negotiated.
    public init(version: ProtocolVersion, cipherSuite: CipherSuite, group: NamedGroup? = nil, applicationProtocol: String? = nil,
                serverName: String? = nil, peerCertificates: [[UInt8]] = [], peerSignatureScheme: SignatureScheme? = nil,
                usedHelloRetryRequest: Bool = false) {
        self.version = version
        self.cipherSuite = cipherSuite
        self.group = group
        self.applicationProtocol = applicationProtocol
        self.serverName = serverName
        self.peerCertificates = peerCertificates
        self.peerSignatureScheme = peerSignatureScheme
        self.usedHelloRetryRequest = usedHelloRetryRequest
    }
}
