import MirageDevices

/// A request method (RFC 9110 §9). The registered methods are cases; any
/// other token is carried as `other`.
public enum HTTPMethod: Hashable, Sendable, CustomStringConvertible {
    case get, head, post, put, delete, connect, options, trace, patch
    /// Another method token, as received (methods are case-sensitive).
    case other(String)

    /// The method from its token bytes.
    init(token span: borrowing Span<UInt8>, _ range: Range<Int>) {
        switch range.count {
        case 3:
            if Self.matches(span, range, "GET") { self = .get; return }
            if Self.matches(span, range, "PUT") { self = .put; return }
        case 4:
            if Self.matches(span, range, "POST") { self = .post; return }
            if Self.matches(span, range, "HEAD") { self = .head; return }
        case 5:
            if Self.matches(span, range, "PATCH") { self = .patch; return }
            if Self.matches(span, range, "TRACE") { self = .trace; return }
        case 6:
            if Self.matches(span, range, "DELETE") { self = .delete; return }
        case 7:
            if Self.matches(span, range, "OPTIONS") { self = .options; return }
            if Self.matches(span, range, "CONNECT") { self = .connect; return }
        default: break
        }
        self = .other(String(decoding: Bytes.copy(span, range), as: UTF8.self))
    }

    private static func matches(_ span: borrowing Span<UInt8>, _ range: Range<Int>, _ name: StaticString) -> Bool {
        let p = name.utf8Start
        var i = 0
        for index in range {
            if span[index] != p[i] { return false }
            i += 1
        }
        return true
    }

    /// The method token.
    public var description: String {
        switch self {
        case .get: "GET"
        case .head: "HEAD"
        case .post: "POST"
        case .put: "PUT"
        case .delete: "DELETE"
        case .connect: "CONNECT"
        case .options: "OPTIONS"
        case .trace: "TRACE"
        case .patch: "PATCH"
        case .other(let token): token
        }
    }

    /// Whether `token` is a valid method (a non-empty token, RFC 9110 §9.1).
    public static func isValid(_ token: String) -> Bool {
        !token.isEmpty && token.utf8.allSatisfy(ASCII.isTokenCharacter)
    }
}

/// A protocol version: HTTP/1.0 or HTTP/1.1 here (RFC 9112 §2.3).
public struct HTTPVersion: Hashable, Sendable, CustomStringConvertible {
    /// The major version; always 1 for messages this module parses.
    public var major: Int
    /// The minor version.
    public var minor: Int

    /// A version.
    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// HTTP/1.0 (RFC 1945).
    public static let http1_0 = HTTPVersion(major: 1, minor: 0)
    /// HTTP/1.1 (RFC 9112).
    public static let http1_1 = HTTPVersion(major: 1, minor: 1)

    public var description: String { "HTTP/\(major).\(minor)" }
}

/// Small byte-copy helpers for the parser.
enum Bytes {
    /// `span[range]` copied into an array.
    static func copy(_ span: borrowing Span<UInt8>, _ range: Range<Int>) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(range.count)
        out.append(span: span.extracting(range))
        return out
    }

    /// `span[range]` as a string (UTF-8, invalid sequences replaced).
    static func string(_ span: borrowing Span<UInt8>, _ range: Range<Int>) -> String {
        span.extracting(range).withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self) }
    }
}
