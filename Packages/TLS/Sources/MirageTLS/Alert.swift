/// An alert's level (RFC 8446 §6). In TLS 1.3 every alert but close_notify
/// and user_canceled is fatal whatever its level says.
public struct AlertLevel: RawRepresentable, Hashable, Sendable {
    /// The wire value.
    public var rawValue: UInt8
    /// An alert level from its wire value.
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// warning(1)
    public static let warning = AlertLevel(rawValue: 1)
    /// fatal(2)
    public static let fatal = AlertLevel(rawValue: 2)
}

/// An alert description (RFC 8446 §6, with the registry's later additions).
/// Unknown values from a peer are kept as they are.
public struct AlertDescription: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The wire value.
    public var rawValue: UInt8
    /// An alert description from its wire value.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// close_notify(0): the sender will send no more (§6.1).
    public static let closeNotify = AlertDescription(rawValue: 0)
    /// unexpected_message(10)
    public static let unexpectedMessage = AlertDescription(rawValue: 10)
    /// bad_record_mac(20)
    public static let badRecordMAC = AlertDescription(rawValue: 20)
    /// record_overflow(22)
    public static let recordOverflow = AlertDescription(rawValue: 22)
    /// handshake_failure(40)
    public static let handshakeFailure = AlertDescription(rawValue: 40)
    /// bad_certificate(42)
    public static let badCertificate = AlertDescription(rawValue: 42)
    /// unsupported_certificate(43)
    public static let unsupportedCertificate = AlertDescription(rawValue: 43)
    /// certificate_revoked(44)
    public static let certificateRevoked = AlertDescription(rawValue: 44)
    /// certificate_expired(45)
    public static let certificateExpired = AlertDescription(rawValue: 45)
    /// certificate_unknown(46)
    public static let certificateUnknown = AlertDescription(rawValue: 46)
    /// illegal_parameter(47)
    public static let illegalParameter = AlertDescription(rawValue: 47)
    /// unknown_ca(48)
    public static let unknownCA = AlertDescription(rawValue: 48)
    /// access_denied(49)
    public static let accessDenied = AlertDescription(rawValue: 49)
    /// decode_error(50)
    public static let decodeError = AlertDescription(rawValue: 50)
    /// decrypt_error(51)
    public static let decryptError = AlertDescription(rawValue: 51)
    /// protocol_version(70)
    public static let protocolVersion = AlertDescription(rawValue: 70)
    /// insufficient_security(71)
    public static let insufficientSecurity = AlertDescription(rawValue: 71)
    /// internal_error(80)
    public static let internalError = AlertDescription(rawValue: 80)
    /// inappropriate_fallback(86)
    public static let inappropriateFallback = AlertDescription(rawValue: 86)
    /// user_canceled(90)
    public static let userCanceled = AlertDescription(rawValue: 90)
    /// no_renegotiation(100): TLS 1.2's refusal of a renegotiation, a warning
    /// (RFC 5246 §7.2.2); reserved in TLS 1.3.
    public static let noRenegotiation = AlertDescription(rawValue: 100)
    /// missing_extension(109)
    public static let missingExtension = AlertDescription(rawValue: 109)
    /// unsupported_extension(110)
    public static let unsupportedExtension = AlertDescription(rawValue: 110)
    /// unrecognized_name(112)
    public static let unrecognizedName = AlertDescription(rawValue: 112)
    /// bad_certificate_status_response(113)
    public static let badCertificateStatusResponse = AlertDescription(rawValue: 113)
    /// unknown_psk_identity(115)
    public static let unknownPSKIdentity = AlertDescription(rawValue: 115)
    /// certificate_required(116)
    public static let certificateRequired = AlertDescription(rawValue: 116)
    /// no_application_protocol(120)
    public static let noApplicationProtocol = AlertDescription(rawValue: 120)

    /// Every alert RFC 8446 §6 defines, and TLS 1.2's no_renegotiation.
    public static let all: [AlertDescription] = [
        .closeNotify, .unexpectedMessage, .badRecordMAC, .recordOverflow, .handshakeFailure, .badCertificate,
        .unsupportedCertificate, .certificateRevoked, .certificateExpired, .certificateUnknown, .illegalParameter,
        .unknownCA, .accessDenied, .decodeError, .decryptError, .protocolVersion, .insufficientSecurity,
        .internalError, .inappropriateFallback, .userCanceled, .noRenegotiation, .missingExtension, .unsupportedExtension,
        .unrecognizedName, .badCertificateStatusResponse, .unknownPSKIdentity, .certificateRequired,
        .noApplicationProtocol,
    ]

    public var description: String {
        switch self {
        case .closeNotify: return "close_notify"
        case .unexpectedMessage: return "unexpected_message"
        case .badRecordMAC: return "bad_record_mac"
        case .recordOverflow: return "record_overflow"
        case .handshakeFailure: return "handshake_failure"
        case .badCertificate: return "bad_certificate"
        case .unsupportedCertificate: return "unsupported_certificate"
        case .certificateRevoked: return "certificate_revoked"
        case .certificateExpired: return "certificate_expired"
        case .certificateUnknown: return "certificate_unknown"
        case .illegalParameter: return "illegal_parameter"
        case .unknownCA: return "unknown_ca"
        case .accessDenied: return "access_denied"
        case .decodeError: return "decode_error"
        case .decryptError: return "decrypt_error"
        case .protocolVersion: return "protocol_version"
        case .insufficientSecurity: return "insufficient_security"
        case .internalError: return "internal_error"
        case .inappropriateFallback: return "inappropriate_fallback"
        case .userCanceled: return "user_canceled"
        case .noRenegotiation: return "no_renegotiation"
        case .missingExtension: return "missing_extension"
        case .unsupportedExtension: return "unsupported_extension"
        case .unrecognizedName: return "unrecognized_name"
        case .badCertificateStatusResponse: return "bad_certificate_status_response"
        case .unknownPSKIdentity: return "unknown_psk_identity"
        case .certificateRequired: return "certificate_required"
        case .noApplicationProtocol: return "no_application_protocol"
        default: return "alert(\(rawValue))"
        }
    }
}

/// An alert message: two bytes, level then description (§6).
public struct Alert: Hashable, Sendable {
    /// The level byte.
    public var level: AlertLevel
    /// What happened.
    public var description: AlertDescription
    /// An alert.
    public init(level: AlertLevel, description: AlertDescription) {
        self.level = level
        self.description = description
    }
    /// The two bytes of the alert record's plaintext.
    public var bytes: [UInt8] { [level.rawValue, description.rawValue] }
    /// Parses an alert's plaintext; anything but exactly two bytes is a decode error.
    public init(parsing bytes: [UInt8]) throws(TLSError) {
        guard bytes.count == 2 else { throw .decodeError("alert of \(bytes.count) bytes (2 expected)") }
        level = AlertLevel(rawValue: bytes[0])
        description = AlertDescription(rawValue: bytes[1])
    }
}
