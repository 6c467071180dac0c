/// The bounds a parser enforces on a peer's messages. Every one of them
/// stops a peer from making us hold unbounded memory or time.
public struct HTTPLimits: Hashable, Sendable {
    /// The longest request line. RFC 9112 §3 recommends supporting at
    /// least 8000 octets; beyond the limit the request gets 414.
    public var maximumRequestLineLength: Int = 8192
    /// The longest status line or field line (431 when a request's is longer).
    public var maximumFieldLineLength: Int = 8192
    /// The largest head: start line, field lines and line ends (431).
    public var maximumHeaderSectionSize: Int = 32 * 1024
    /// The most field lines in a head or trailer section (431).
    public var maximumFieldCount: Int = 100
    /// The largest body (413). `Int.max` for none.
    public var maximumBodySize: Int = 8 * 1024 * 1024
    /// The longest chunk-size line, extensions included (RFC 9112 §7.1.1
    /// lets a recipient limit them).
    public var maximumChunkLineLength: Int = 4096
    /// Empty lines tolerated before a request line (RFC 9112 §2.2 SHOULD
    /// ignore at least one).
    public var maximumLeadingEmptyLines: Int = 4

    /// The defaults.
    public init() {}

    /// The defaults for a server reading requests.
    public static let server = HTTPLimits()

    /// The defaults for a client reading responses: no body limit, since
    /// bodies are streamed to the application rather than held.
    public static var client: HTTPLimits {
        var l = HTTPLimits()
        l.maximumBodySize = Int.max
        return l
    }
}
