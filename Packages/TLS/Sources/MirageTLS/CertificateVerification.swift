/// What the engine asks its driver to check about the peer's certificates.
/// Chain validation is asynchronous in swift-certificates while the engine is
/// not: the engine waits in a state of its own until
/// `TLSConnection.certificateVerificationCompleted(_:)` brings the answer.
public struct CertificateVerificationRequest: Sendable, Hashable {
    /// The peer's certificates in DER, leaf first, as received.
    public var chain: [[UInt8]]
    /// Client side: the host name or IP literal the leaf must be valid for
    /// (RFC 6125); nil on the server side, or when the client names no host.
    public var serverName: String?
    /// True when the peer is a server (EKU serverAuth), false for a client (clientAuth).
    public var peerIsServer: Bool
    /// A request.
    public init(chain: [[UInt8]], serverName: String?, peerIsServer: Bool) {
        self.chain = chain
        self.serverName = serverName
        self.peerIsServer = peerIsServer
    }
}

/// Why a certificate chain was rejected. Revocation is not checked.
public enum CertificateFailure: Error, Hashable, Sendable, CustomStringConvertible {
    /// The leaf or a certificate of the chain expired at the given time.
    case expired(notAfter: String)
    /// A certificate of the chain is not valid yet.
    case notYetValid(notBefore: String)
    /// The leaf is not valid for the expected host name or address.
    case hostnameMismatch(expected: String)
    /// No path to a trusted root; the issuer that could not be found.
    case untrustedRoot(issuer: String)
    /// The leaf's extended key usage does not allow this role (serverAuth/clientAuth).
    case missingExtendedKeyUsage(String)
    /// The leaf's key usage does not allow signatures.
    case badKeyUsage(String)
    /// A certificate could not be parsed.
    case malformed(String)
    /// The peer sent no certificate.
    case emptyChain
    /// Any other policy failure, as the verifier words it.
    case other(String)

    /// The alert this failure is reported with (RFC 8446 §6.2).
    public var alert: AlertDescription {
        switch self {
        case .expired: return .certificateExpired
        case .untrustedRoot: return .unknownCA
        case .missingExtendedKeyUsage, .badKeyUsage: return .unsupportedCertificate
        case .malformed: return .badCertificate
        case .emptyChain: return .decodeError
        case .notYetValid, .hostnameMismatch, .other: return .badCertificate
        }
    }

    public var description: String {
        switch self {
        case .expired(let notAfter): return "certificate expired (not valid after \(notAfter))"
        case .notYetValid(let notBefore): return "certificate not yet valid (not valid before \(notBefore))"
        case .hostnameMismatch(let expected): return "certificate is not valid for \(expected)"
        case .untrustedRoot(let issuer): return "untrusted root: no trusted issuer for \(issuer)"
        case .missingExtendedKeyUsage(let detail): return "extended key usage does not allow this use: \(detail)"
        case .badKeyUsage(let detail): return "key usage does not allow this use: \(detail)"
        case .malformed(let detail): return "malformed certificate: \(detail)"
        case .emptyChain: return "no certificate"
        case .other(let detail): return "certificate rejected: \(detail)"
        }
    }
}

/// The driver's answer to a `CertificateVerificationRequest`.
public enum CertificateVerificationResult: Sendable, Hashable {
    /// The chain is valid for the request.
    case trusted
    /// The chain is not; the failure names the cause.
    case rejected(CertificateFailure)
}

/// Validates certificate chains for a driver such as `TLSStack`.
public protocol CertificateVerifier: AnyObject {
    /// Checks `request` and calls `completion` exactly once: before returning
    /// or later, but always on the driver's own loop (an asynchronous
    /// implementation posts the answer back, e.g. with `EventLoop.execute`).
    func verify(_ request: CertificateVerificationRequest, completion: @escaping (CertificateVerificationResult) -> Void)
}
