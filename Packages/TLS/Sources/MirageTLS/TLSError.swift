/// Everything that ends a TLS connection or refuses a call. Each case maps to
/// the alert sent to the peer (`alert`), RFC 8446 §6.2.
public enum TLSError: Error, Hashable, Sendable {
    /// A message or record could not be parsed (decode_error).
    case decodeError(String)
    /// A field held a value the RFC forbids here (illegal_parameter).
    case illegalParameter(String)
    /// A message or record arrived that this state does not allow (unexpected_message).
    case unexpectedMessage(String)
    /// A record failed to decrypt or authenticate (bad_record_mac, §5.2).
    case badRecordMAC
    /// A record or its plaintext is longer than §5.1/§5.2 allow (record_overflow).
    case recordOverflow(length: Int)
    /// No acceptable parameters in common: suites, groups, schemes (handshake_failure).
    case handshakeFailure(String)
    /// The peer does not offer TLS 1.3, or offers a version we refuse (protocol_version).
    case protocolVersion(String)
    /// A required extension is missing (missing_extension, §9.2).
    case missingExtension(ExtensionType)
    /// An extension appeared in a message that must not carry it, or was not offered (unsupported_extension).
    case unsupportedExtension(ExtensionType)
    /// A Finished or CertificateVerify did not verify (decrypt_error).
    case decryptError(String)
    /// The peer's certificate chain was rejected; the case says why.
    case badCertificate(CertificateFailure)
    /// The client required a certificate and got none (certificate_required).
    case certificateRequired
    /// ALPN: no protocol in common (no_application_protocol, RFC 7301 §3.2).
    case noApplicationProtocol
    /// A client signalled a fallback (TLS_FALLBACK_SCSV) to a version below
    /// our best (inappropriate_fallback, RFC 7507 §3).
    case inappropriateFallback
    /// The SNI name matches no certificate and the server has no default (unrecognized_name).
    case unrecognizedName(String)
    /// The peer sent a fatal alert (or a warning other than close_notify/user_canceled).
    case alertReceived(AlertDescription)
    /// A buffer limit was reached (handshake message, queued records) — internal_error.
    case limitExceeded(String)
    /// The call is not possible in this state (write before the handshake, after close).
    case notReady(String)
    /// The connection has already ended.
    case closed
    /// The local configuration cannot work (no certificate on a server, no suites).
    case configuration(String)
    /// A primitive failed unexpectedly (internal_error).
    case internalError(String)

    /// The alert that tells the peer about this error (§6.2).
    public var alert: AlertDescription {
        switch self {
        case .decodeError: return .decodeError
        case .illegalParameter: return .illegalParameter
        case .unexpectedMessage: return .unexpectedMessage
        case .badRecordMAC: return .badRecordMAC
        case .recordOverflow: return .recordOverflow
        case .handshakeFailure: return .handshakeFailure
        case .protocolVersion: return .protocolVersion
        case .missingExtension: return .missingExtension
        case .unsupportedExtension: return .unsupportedExtension
        case .decryptError: return .decryptError
        case .badCertificate(let failure): return failure.alert
        case .certificateRequired: return .certificateRequired
        case .noApplicationProtocol: return .noApplicationProtocol
        case .unrecognizedName: return .unrecognizedName
        case .inappropriateFallback: return .inappropriateFallback
        case .alertReceived: return .closeNotify  // never answered: the connection is already gone
        case .limitExceeded, .notReady, .closed, .configuration, .internalError: return .internalError
        }
    }
}
