/// A certificate chain and the private key of its leaf.
public final class CertifiedKey {
    /// DER certificates, leaf first.
    public let chain: [[UInt8]]
    /// The leaf's private key.
    public let key: any SigningKey
    /// The DNS names (possibly `*.` wildcards) this chain is chosen for by SNI
    /// on a server; the loader fills them from the leaf's subjectAltName.
    public let serverNames: [String]
    /// A certified key.
    public init(chain: [[UInt8]], key: any SigningKey, serverNames: [String] = []) {
        self.chain = chain
        self.key = key
        self.serverNames = serverNames
    }

    /// True when this chain is for `name` (exact, case-insensitive, or a
    /// `*.` wildcard covering exactly one left-most label, RFC 6125 §6.4.3).
    public func matches(serverName name: String) -> Bool {
        let wanted = asciiLowercased(name)
        for candidate in serverNames {
            let pattern = asciiLowercased(candidate)
            if pattern == wanted { return true }
            if pattern.hasPrefix("*."), let dot = wanted.firstIndex(of: ".") {
                if wanted[wanted.index(after: dot)...] == pattern.dropFirst(2) && dot != wanted.startIndex { return true }
            }
        }
        return false
    }
}

private func asciiLowercased(_ s: String) -> String {
    var bytes = Array(s.utf8)
    for i in bytes.indices where bytes[i] >= 0x41 && bytes[i] <= 0x5A { bytes[i] |= 0x20 }
    return String(decoding: bytes, as: UTF8.self)
}

/// Limits on what a connection buffers, with the defaults a server of many
/// connections can afford.
public struct TLSLimits: Hashable, Sendable {
    /// Largest handshake message accepted (a certificate chain fits easily);
    /// larger ones end the handshake (RFC 8446 leaves the bound to us: 2^24−1 on the wire).
    public var maximumHandshakeMessageSize = 65_536
    /// Bytes of peer records held while certificate verification is pending.
    public var maximumBufferedWhileVerifying = 65_536
    /// Plaintext bytes in one record we send (≤ 2^14, §5.1).
    public var maximumRecordPlaintext = 16_384
    /// Consecutive records without progress (empty handshake-free records,
    /// middlebox CCS) tolerated before unexpected_message.
    public var maximumEmptyRecords = 32
    /// Default limits.
    public init() {}
}

/// Whether a server asks clients for a certificate (RFC 8446 §4.3.2,
/// RFC 5246 §7.4.4).
public enum ClientAuthentication: Hashable, Sendable {
    /// No CertificateRequest is sent.
    case none
    /// A certificate is requested; a client that sends none is still served.
    case optional
    /// A certificate is required: without one the handshake fails
    /// (certificate_required in TLS 1.3, handshake_failure in TLS 1.2).
    case required
}

/// A client's settings. The defaults are safe: TLS 1.3 preferred and 1.2
/// accepted (AEAD suites with ECDHE only), X25519 then P-256, certificates verified.
public struct TLSClientConfiguration {
    /// The host to name in SNI and to verify the certificate for; an IP
    /// literal is verified against the certificate's IP addresses and not
    /// sent in SNI (RFC 6066 §3). nil: no SNI and no name check.
    public var serverName: String?
    /// ALPN protocol names offered, in preference order (empty: no ALPN).
    public var applicationProtocols: [String] = []
    /// Protocol versions offered: TLS 1.3 and TLS 1.2 (nothing older exists here).
    public var versions: [ProtocolVersion] = [.tls13, .tls12]
    /// Cipher suites offered, in preference order; TLS 1.3 suites serve
    /// TLS 1.3, the ECDHE ones TLS 1.2.
    public var cipherSuites: [CipherSuite] = CipherSuite.tls13 + CipherSuite.tls12
    /// Client certificates: the first whose key can sign with a scheme the
    /// server's CertificateRequest accepts is sent; none fits → an empty
    /// Certificate (the server decides).
    public var certificates: [CertifiedKey] = []
    /// Groups offered in supported_groups, in preference order.
    public var groups: [NamedGroup] = [.x25519, .secp256r1]
    /// Groups that get a key share in the first ClientHello (others need a HelloRetryRequest).
    public var keyShareGroups: [NamedGroup] = [.x25519]
    /// Signature schemes accepted for CertificateVerify.
    public var signatureSchemes: [SignatureScheme] = SignatureScheme.tls13
    /// Certificates are verified unless this is false (tests only; never in production).
    public var verifiesCertificates = true
    /// Sends a 32-byte legacy session ID and a dummy ChangeCipherSpec (RFC 8446 §D.4).
    public var middleboxCompatibility = true
    /// Tickets received are kept here and offered to resume later
    /// connections to the same server name (nil: no resumption).
    public var sessionCache: TLSClientSessionCache? = nil
    /// Buffer limits.
    public var limits = TLSLimits()
    /// A client configuration for `serverName`.
    public init(serverName: String?) { self.serverName = serverName }
}

/// A server's settings.
public struct TLSServerConfiguration {
    /// Certificate chains; SNI picks the first whose `serverNames` match,
    /// else the first one (the default).
    public var certificates: [CertifiedKey]
    /// ALPN protocol names supported, in the server's preference order. When a
    /// client offers ALPN and none matches, the handshake fails with
    /// no_application_protocol (RFC 7301 §3.2).
    public var applicationProtocols: [String] = []
    /// Protocol versions accepted; a client whose best is older than all of
    /// them gets protocol_version.
    public var versions: [ProtocolVersion] = [.tls13, .tls12]
    /// Cipher suites accepted, in the server's preference order (TLS 1.3
    /// suites for TLS 1.3; for TLS 1.2 those matching the certificate's key).
    public var cipherSuites: [CipherSuite] = CipherSuite.tls13 + CipherSuite.tls12
    /// Whether clients are asked for a certificate (verified by the driver
    /// through `.verifyCertificates` with `peerIsServer == false`).
    public var clientAuthentication: ClientAuthentication = .none
    /// Groups accepted, in preference order (a client's share for a less
    /// preferred group is still taken rather than costing a round trip).
    public var groups: [NamedGroup] = [.x25519, .secp256r1]
    /// Signature schemes the server signs with, in preference order.
    public var signatureSchemes: [SignatureScheme] = SignatureScheme.tls13
    /// Sends a dummy ChangeCipherSpec after the ServerHello when the client
    /// used a legacy session ID (RFC 8446 §D.4).
    public var middleboxCompatibility = true
    /// Seals the session tickets issued to clients (shared by all connections
    /// of the server). nil: no tickets are issued, and offered PSKs and
    /// tickets are ignored (a full handshake).
    public var sessionTickets: SessionTicketKeys? = nil
    /// NewSessionTickets sent after a TLS 1.3 handshake when `sessionTickets`
    /// is set (at most 8).
    public var ticketsPerHandshake: Int = 2
    /// Buffer limits.
    public var limits = TLSLimits()
    /// A server configuration with its certificates.
    public init(certificates: [CertifiedKey]) { self.certificates = certificates }
}
