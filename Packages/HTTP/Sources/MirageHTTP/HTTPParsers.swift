import MirageDevices

/// An incremental request parser (RFC 9112), for servers and for tests and
/// fuzzing of the wire format on its own. Append bytes as they arrive and
/// call `next` until it returns nil. After a thrown error the parser stays
/// finished: the byte stream's framing is lost.
public struct HTTPRequestParser: Sendable {
    /// One step of a request.
    public enum Event: Sendable {
        /// A complete request head; body events follow, then `end`.
        case head(HTTPRequestHead)
        /// Body bytes (chunked coding removed), a slice of the parser's buffer.
        case body(ArraySlice<UInt8>)
        /// The message is complete; `trailers` from a chunked body, if any.
        case end(trailers: HTTPFields)
    }

    var parser: MessageParser

    /// A parser enforcing `limits`.
    public init(limits: HTTPLimits = .server) {
        parser = MessageParser(role: .request, limits: limits)
    }

    /// Adds received bytes (copied).
    public mutating func append(_ bytes: Span<UInt8>) { parser.append(bytes) }

    /// The next event, nil when more bytes are needed.
    public mutating func next() throws(HTTPError) -> Event? {
        switch try parser.next() {
        case .requestHead(let h): return .head(h)
        case .body(let b): return .body(b)
        case .end(let t): return .end(trailers: t)
        case .responseHead, nil: return nil
        }
    }

    /// The peer closed: nil at a message boundary, else `truncatedMessage`.
    public mutating func finish() throws(HTTPError) {
        _ = try parser.finish()
    }

    /// Bytes held and not yet consumed.
    public var bufferedCount: Int { parser.bufferedCount }
}

/// An incremental response parser (RFC 9112) for clients. Tell it the
/// method of every request sent, in order (`expectResponse`), so it knows
/// which responses have no body.
public struct HTTPResponseParser: Sendable {
    /// One step of a response.
    public enum Event: Sendable {
        /// A response head: interim (1xx) or final. After a final one, body
        /// events follow, then `end`; after 101 (or a 2xx to CONNECT) the
        /// connection carries another protocol (`takeRemaining`).
        case head(HTTPResponseHead)
        /// Body bytes (chunked coding removed).
        case body(ArraySlice<UInt8>)
        /// The response is complete.
        case end(trailers: HTTPFields)
    }

    var parser: MessageParser

    /// A parser enforcing `limits`.
    public init(limits: HTTPLimits = .client) {
        parser = MessageParser(role: .response, limits: limits)
    }

    /// A request with `method` was sent.
    public mutating func expectResponse(to method: HTTPMethod) { parser.expectResponse(to: method) }

    /// Adds received bytes (copied).
    public mutating func append(_ bytes: Span<UInt8>) { parser.append(bytes) }

    /// The next event, nil when more bytes are needed.
    public mutating func next() throws(HTTPError) -> Event? {
        switch try parser.next() {
        case .responseHead(let h): return .head(h)
        case .body(let b): return .body(b)
        case .end(let t): return .end(trailers: t)
        case .requestHead, nil: return nil
        }
    }

    /// The peer closed: the end of a close-delimited body, nil at a message
    /// boundary, or `truncatedMessage`.
    public mutating func finish() throws(HTTPError) -> Event? {
        switch try parser.finish() {
        case .end(let t): return .end(trailers: t)
        default: return nil
        }
    }

    /// Bytes after a 101 or CONNECT response, taken out of the parser.
    public mutating func takeRemaining() -> [UInt8] { parser.takeRemaining() }

    /// Responses still expected.
    public var outstandingResponses: Int { parser.outstandingResponses }
}

/// Writes messages in HTTP/1.1 syntax (RFC 9112).
public enum HTTPSerializer {
    /// `method SP target SP version CRLF fields CRLF`.
    public static func writeHead(_ head: HTTPRequestHead, into out: inout [UInt8]) {
        out.append(contentsOf: head.method.description.utf8)
        out.append(ASCII.space)
        out.append(contentsOf: head.target.utf8)
        out.append(ASCII.space)
        writeVersion(head.version, into: &out)
        out.append(ASCII.cr)
        out.append(ASCII.lf)
        head.fields.write(to: &out)
        out.append(ASCII.cr)
        out.append(ASCII.lf)
    }

    /// `version SP code SP reason CRLF fields CRLF`.
    public static func writeHead(_ head: HTTPResponseHead, into out: inout [UInt8]) {
        writeVersion(head.version, into: &out)
        out.append(ASCII.space)
        ASCII.appendDecimal(head.status.code, to: &out)
        out.append(ASCII.space)
        out.append(contentsOf: head.status.reason.utf8)
        out.append(ASCII.cr)
        out.append(ASCII.lf)
        head.fields.write(to: &out)
        out.append(ASCII.cr)
        out.append(ASCII.lf)
    }

    /// One chunk (RFC 9112 §7.1): size in hex, CRLF, data, CRLF. Nothing
    /// for empty data (an empty chunk would end the body).
    public static func writeChunk(_ data: Span<UInt8>, into out: inout [UInt8]) {
        guard !data.isEmpty else { return }
        ASCII.appendHex(data.count, to: &out)
        out.append(ASCII.cr)
        out.append(ASCII.lf)
        out.append(span: data)
        out.append(ASCII.cr)
        out.append(ASCII.lf)
    }

    /// The last chunk and the trailer section.
    public static func writeLastChunk(trailers: HTTPFields, into out: inout [UInt8]) {
        out.append(0x30)
        out.append(ASCII.cr)
        out.append(ASCII.lf)
        trailers.write(to: &out)
        out.append(ASCII.cr)
        out.append(ASCII.lf)
    }

    static func writeVersion(_ version: HTTPVersion, into out: inout [UInt8]) {
        ASCII.append("HTTP/", to: &out)
        out.append(UInt8(truncatingIfNeeded: version.major) &+ 0x30)
        out.append(ASCII.dot)
        out.append(UInt8(truncatingIfNeeded: version.minor) &+ 0x30)
    }
}
