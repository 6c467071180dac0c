/// A request's start line and header fields (RFC 9112 §3, §5).
public struct HTTPRequestHead: Sendable {
    /// The method.
    public var method: HTTPMethod
    /// The request target as sent: origin-form (`/path?query`),
    /// absolute-form, authority-form (CONNECT) or `*` (OPTIONS).
    public var target: String
    /// The protocol version.
    public var version: HTTPVersion
    /// The header fields.
    public var fields: HTTPFields

    /// A request head. `target` must be non-empty visible ASCII.
    public init(method: HTTPMethod, target: String, version: HTTPVersion = .http1_1, fields: HTTPFields = HTTPFields()) {
        self.method = method
        self.target = target
        self.version = version
        self.fields = fields
    }

    /// The path part of an origin-form target (before `?`), still
    /// percent-encoded.
    public var path: Substring {
        guard let q = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return target[...] }
        return target[..<q]
    }

    /// The query (after `?`), or nil.
    public var query: Substring? {
        guard let q = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return nil }
        return target[target.index(after: q)...]
    }

    /// Whether the client allows the connection to stay open after this
    /// exchange (RFC 9112 §9.3): HTTP/1.1 unless `Connection: close`;
    /// HTTP/1.0 only with `Connection: keep-alive`.
    public var keepAlive: Bool {
        if fields.containsToken("close", in: "Connection") { return false }
        if version.minor >= 1 { return true }
        return fields.containsToken("keep-alive", in: "Connection")
    }
}

/// A response's status line and header fields (RFC 9112 §4).
public struct HTTPResponseHead: Sendable {
    /// The status.
    public var status: HTTPStatus
    /// The protocol version.
    public var version: HTTPVersion
    /// The header fields.
    public var fields: HTTPFields

    /// A response head.
    public init(status: HTTPStatus, version: HTTPVersion = .http1_1, fields: HTTPFields = HTTPFields()) {
        self.status = status
        self.version = version
        self.fields = fields
    }
}
