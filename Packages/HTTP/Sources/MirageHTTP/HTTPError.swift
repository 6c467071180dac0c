import MirageDevices

/// Everything that can go wrong in MirageHTTP: a peer's malformed or
/// oversized message, or a failure of the connection underneath.
///
/// A server answers a request error with `status` and closes the
/// connection (RFC 9112 §9.6: after a framing error the rest of the byte
/// stream cannot be trusted).
public enum HTTPError: Error, Equatable, Sendable {
    /// The request line or status line is not `token SP target SP version`
    /// (or `version SP status SP reason`), with single spaces.
    case malformedStartLine
    /// The method is not a token.
    case invalidMethod
    /// The request target has a byte outside VCHAR, or a form the method
    /// does not allow (RFC 9112 §3.2).
    case invalidTarget
    /// The protocol version is not `HTTP/DIGIT.DIGIT`.
    case malformedVersion
    /// A major version other than 1 (answered with 505).
    case unsupportedVersion(major: Int, minor: Int)
    /// The status code is not three digits.
    case invalidStatusCode
    /// A field name is empty or holds a non-token byte.
    case invalidFieldName
    /// Whitespace between a field name and the colon (RFC 9112 §5.1 MUST reject).
    case whitespaceBeforeColon
    /// A field line without a colon.
    case missingColon
    /// A field value holds a control character.
    case invalidFieldValue
    /// A field line starting with whitespace: obsolete line folding
    /// (RFC 9112 §5.2), rejected.
    case obsoleteLineFolding
    /// A CR not followed by LF.
    case bareCarriageReturn
    /// An LF not preceded by CR.
    case bareLineFeed
    /// The request line is longer than the limit (answered with 414).
    case requestLineTooLong(limit: Int)
    /// A field line is longer than the limit (431).
    case fieldLineTooLong(limit: Int)
    /// The head (start line and fields) is larger than the limit (431).
    case headerSectionTooLarge(limit: Int)
    /// More field lines than the limit (431).
    case tooManyFields(limit: Int)
    /// An HTTP/1.1 request without exactly one Host field (RFC 9112 §3.2).
    case invalidHost
    /// Content-Length is not a decimal number.
    case invalidContentLength
    /// Several Content-Length values that differ (RFC 9112 §6.3 rule 5).
    case conflictingContentLength
    /// Both Transfer-Encoding and Content-Length (RFC 9112 §6.1: a request
    /// smuggling vector; rejected).
    case contentLengthWithTransferEncoding
    /// A transfer coding other than chunked (answered with 501,
    /// RFC 9112 §6.1).
    case unsupportedTransferCoding
    /// Transfer-Encoding empty, with chunked twice, or in a request with
    /// chunked not last (RFC 9112 §6.3 rule 4).
    case invalidTransferEncoding
    /// Transfer-Encoding in an HTTP/1.0 message (RFC 9112 §6.1).
    case transferEncodingInHTTP10
    /// The body is larger than the limit (413).
    case bodyTooLarge(limit: Int)
    /// A chunk-size line that is not hex digits with optional extensions.
    case invalidChunkSize
    /// A chunk's data not followed by CRLF.
    case missingChunkTerminator
    /// A chunk-size line longer than the limit.
    case chunkLineTooLong(limit: Int)
    /// An `Expect` value other than `100-continue` (answered with 417).
    case unsupportedExpectation
    /// The connection ended in the middle of a message.
    case truncatedMessage
    /// No complete request head arrived within the header timeout (408).
    case headerTimeout
    /// The body stopped arriving for longer than the idle timeout.
    case bodyTimeout
    /// A response arrived that no request asked for.
    case unexpectedResponse
    /// The connection underneath failed (`CloseReason` from the stack).
    case connectionClosed(CloseReason)
    /// The stack refused a call.
    case device(DeviceError)
    /// The client's `NameResolver` could not turn `host` into addresses.
    case nameResolution(host: String, NameResolutionError)
    /// The application used the API wrongly (e.g. a body on a HEAD
    /// response, or writing after the end); the message says how.
    case misuse(String)

    /// The status a server answers this error with, or nil when no answer
    /// is due (the connection simply closes).
    public var status: HTTPStatus? {
        switch self {
        case .malformedStartLine, .invalidMethod, .invalidTarget, .malformedVersion, .invalidStatusCode,
             .invalidFieldName, .whitespaceBeforeColon, .missingColon, .invalidFieldValue, .obsoleteLineFolding,
             .bareCarriageReturn, .bareLineFeed, .invalidHost, .invalidContentLength, .conflictingContentLength,
             .contentLengthWithTransferEncoding, .invalidTransferEncoding, .transferEncodingInHTTP10, .invalidChunkSize,
             .missingChunkTerminator, .chunkLineTooLong:
            return .badRequest
        case .unsupportedTransferCoding: return .notImplemented
        case .unsupportedVersion: return .httpVersionNotSupported
        case .requestLineTooLong: return .uriTooLong
        case .fieldLineTooLong, .headerSectionTooLarge, .tooManyFields: return .requestHeaderFieldsTooLarge
        case .bodyTooLarge: return .contentTooLarge
        case .unsupportedExpectation: return .expectationFailed
        case .headerTimeout: return .requestTimeout
        case .truncatedMessage, .bodyTimeout, .unexpectedResponse, .connectionClosed, .device, .nameResolution, .misuse:
            return nil
        }
    }
}
