import MirageDevices

/// How a message body we send is delimited.
public enum HTTPBodyLength: Hashable, Sendable {
    /// Exactly this many bytes (`Content-Length`).
    case known(Int)
    /// Streamed: chunked in HTTP/1.1. A response to an HTTP/1.0 client
    /// ends when the connection closes; an HTTP/1.0 request cannot stream.
    case streamed
}

/// The server side of one HTTP/1.1 connection as a sans-I/O state machine
/// (RFC 9112): bytes and timer expiries in; request events, bytes to send
/// and "close now" out. It opens no socket and reads no clock.
///
/// One exchange at a time: a pipelined request is parsed only once the
/// response before it is complete, so responses go out in order (RFC 9112
/// §9.3.2) and the bytes waiting meanwhile are bounded by
/// `maximumBufferedInput` (`wantsInput` turns false).
///
/// Drive it like this: `receive` the bytes, then call `nextEvent` until it
/// returns nil; answer each request with `startResponse`, `writeBody` and
/// `finishResponse`; send `output` and `consumeOutput` what was sent; close
/// the connection when `shouldClose`. Call `timerFired` at `nextDeadline`.
public struct HTTPServerConnection: Sendable {
    /// Limits and timeouts.
    public struct Configuration: Hashable, Sendable {
        /// Parser limits.
        public var limits: HTTPLimits = .server
        /// A request head must be complete this long after its first byte
        /// (slow-header attacks); otherwise 408 and close.
        public var headerTimeout: Interval = .seconds(10)
        /// An idle keep-alive connection, or a request body that stops
        /// arriving, is closed after this long.
        public var idleTimeout: Interval = .seconds(60)
        /// Pipelined bytes held while a response is in progress; beyond it
        /// the connection stops reading (`wantsInput` is false).
        public var maximumBufferedInput: Int = 64 * 1024
        /// Requests served on one connection before it closes (nil: no limit).
        public var maximumRequestsPerConnection: Int? = nil
        /// The defaults.
        public init() {}
    }

    /// What the connection has for the application.
    public enum Event: Sendable {
        /// A request began; answer it with `startResponse`.
        case request(HTTPRequestHead)
        /// Body bytes of the current request.
        case body(ArraySlice<UInt8>)
        /// The current request's body is complete.
        case end(trailers: HTTPFields)
        /// A 101 response was sent: the connection now carries another
        /// protocol, starting with `leftover`; this state machine is done.
        case upgraded(leftover: [UInt8])
        /// The peer sent something invalid or too slow; an error response
        /// was queued if one is due, and the connection closes after it.
        case failed(HTTPError)
    }

    private enum Reading: Sendable, Equatable {
        /// Between requests (or waiting for a head to complete).
        case head
        /// Reading the current request's body.
        case body
        /// The request is complete; waiting for its response to finish.
        case responding
        /// Nothing more is read: an error, a close, or an upgrade.
        case stopped
    }

    private enum Writing: Sendable, Equatable {
        /// No response started for the current request.
        case idle
        /// Body bytes may follow; `remaining` for a known length.
        case body(framing: Framing)
        /// The response is complete.
        case done
    }

    private enum Framing: Sendable, Equatable {
        case length(remaining: Int)
        case chunked
        case untilClose
        /// HEAD, 204, 304: a body is not sent even if written.
        case none
    }

    /// The configuration in force.
    public let configuration: Configuration
    private var parser: MessageParser
    private var reading: Reading = .head
    private var writing: Writing = .idle
    /// Bytes to send.
    private var output = OutputQueue()
    private var closeAfterOutput = false
    private var upgradePending = false
    private var pendingFailure: HTTPError?
    // The current exchange.
    private var requestKeepAlive = true
    private var requestVersion = HTTPVersion.http1_1
    private var requestIsHead = false
    private var continuePending = false
    /// The rest of the request body is read and dropped (the response was
    /// finished before the body).
    private var discardingBody = false
    private var requestsSeen = 0
    private var headerDeadline: Instant?
    private var idleDeadline: Instant?

    /// A connection, idle since `now`.
    public init(configuration: Configuration = Configuration(), now: Instant) {
        self.configuration = configuration
        parser = MessageParser(role: .request, limits: configuration.limits)
        idleDeadline = now + configuration.idleTimeout
    }

    // MARK: Input

    /// Bytes from the peer.
    public mutating func receive(_ bytes: Span<UInt8>, now: Instant) {
        guard reading != .stopped, !bytes.isEmpty else { return }
        parser.append(bytes)
        if reading == .body { idleDeadline = now + configuration.idleTimeout }
        if reading == .head {
            idleDeadline = nil
            if headerDeadline == nil && parser.isReadingHead { headerDeadline = now + configuration.headerTimeout }
        }
    }

    /// The peer closed its side (FIN). Requests already complete are
    /// still answered (RFC 9112 §9.6); a half-received one is reported as
    /// `truncatedMessage`; the connection closes after the last response.
    public mutating func receiveEnd() {
        guard reading != .stopped, !endOfInput else { return }
        endOfInput = true
        if reading == .head && parser.isIdle && !isResponding {
            reading = .stopped
            closeAfterOutput = true
        }
    }

    private var endOfInput = false

    /// Whether the connection wants more bytes now. False while pipelined
    /// bytes beyond the limit wait for a response to finish.
    public var wantsInput: Bool {
        guard reading != .stopped, !endOfInput else { return false }
        // While a head is read the parser's own limits bound it; the
        // pipelining bound applies while a request is being answered.
        return reading == .head || parser.bufferedCount < configuration.maximumBufferedInput
    }

    /// The next thing for the application, or nil when the connection
    /// needs bytes, a response, or nothing more.
    public mutating func nextEvent(now: Instant) -> Event? {
        if let failure = pendingFailure {
            pendingFailure = nil
            return .failed(failure)
        }
        if upgradePending && outputCount == 0 {
            upgradePending = false
            reading = .stopped
            return .upgraded(leftover: parser.takeRemaining())
        }
        do throws(HTTPError) {
            while true {
                switch reading {
                case .stopped, .responding:
                    return nil
                case .head:
                    guard writing == .idle || writing == .done, !upgradePending else { return nil }
                    if let limit = configuration.maximumRequestsPerConnection, requestsSeen >= limit {
                        reading = .stopped
                        closeAfterOutput = true
                        return nil
                    }
                    guard let event = try parser.next() else {
                        if endOfInput {
                            if parser.isReadingHead { throw .truncatedMessage }
                            reading = .stopped
                            closeAfterOutput = true
                        } else if headerDeadline == nil && parser.isReadingHead {
                            headerDeadline = now + configuration.headerTimeout
                        }
                        return nil
                    }
                    guard case .requestHead(let head) = event else { return nil }
                    return try begin(head, now: now)
                case .body:
                    if continuePending {
                        continuePending = false
                        if writing == .idle { ASCII.append("HTTP/1.1 100 Continue\r\n\r\n", to: &output.bytes) }
                    }
                    guard let event = try parser.next() else {
                        if endOfInput { throw .truncatedMessage }
                        return nil
                    }
                    switch event {
                    case .body(let bytes):
                        if discardingBody { continue }
                        return .body(bytes)
                    case .end(let trailers):
                        reading = .responding
                        idleDeadline = nil
                        if writing == .done { finishExchange(now: now) }
                        if discardingBody {
                            discardingBody = false
                            continue
                        }
                        return .end(trailers: trailers)
                    case .requestHead, .responseHead:
                        return nil
                    }
                }
            }
        } catch {
            fail(error)
            return .failed(error)
        }
    }

    private mutating func begin(_ head: HTTPRequestHead, now: Instant) throws(HTTPError) -> Event {
        headerDeadline = nil
        requestsSeen += 1
        requestVersion = head.version
        requestIsHead = head.method == .head
        requestKeepAlive = head.keepAlive
        // The last request allowed: its response says close (RFC 9112 §9.6).
        if let limit = configuration.maximumRequestsPerConnection, requestsSeen >= limit { requestKeepAlive = false }
        writing = .idle
        discardingBody = false
        continuePending = false
        if let i = head.fields.firstIndex(of: "Expect") {
            // RFC 9110 §10.1.1: only 100-continue is defined.
            let span = head.fields.storage.span
            guard ASCII.equalsIgnoringCase(span, head.fields.valueRange(i), "100-continue") else {
                throw .unsupportedExpectation
            }
            continuePending = head.version.minor >= 1 && parser.expectsBody
        }
        reading = .body
        idleDeadline = now + configuration.idleTimeout
        return .request(head)
    }

    /// Marks the connection failed: an error response if one is due and
    /// the current request has none yet, then close. (`done` means the
    /// request was answered early and its body was being discarded: a
    /// second response would answer a request never sent.)
    private mutating func fail(_ error: HTTPError) {
        // The error answers the current request when its body was being
        // read; a HEAD request's answer has no body (RFC 9110 §9.3.2).
        let answersHead = requestIsHead && reading == .body
        reading = .stopped
        closeAfterOutput = true
        headerDeadline = nil
        idleDeadline = nil
        // An error response only when this request has none yet: after a
        // finished response (its body being discarded) the close is enough.
        guard let status = error.status, writing == .idle else {
            if case .body = writing { abortRequested = true }
            return
        }
        writeErrorResponse(status, withBody: !answersHead)
    }

    /// The response that was being sent cannot be completed: the
    /// connection must be aborted rather than closed cleanly.
    public private(set) var abortRequested = false

    private mutating func writeErrorResponse(_ status: HTTPStatus, withBody: Bool) {
        var fields = HTTPFields()
        fields.append(name: "Content-Type", value: "text/plain; charset=utf-8")
        let body = status.description + "\n"
        fields.append(name: "Content-Length", value: String(body.utf8.count))
        fields.append(name: "Connection", value: "close")
        HTTPSerializer.writeHead(HTTPResponseHead(status: status, fields: fields), into: &output.bytes)
        if withBody { output.bytes.append(contentsOf: body.utf8) }
        writing = .done
    }

    // MARK: Timers

    /// When `timerFired` should be called, if at all.
    public var nextDeadline: Instant? { Instant.earlier(headerDeadline, idleDeadline) }

    /// Time passed. A head not complete in time gets 408; an idle
    /// connection or a stalled body is closed.
    public mutating func timerFired(now: Instant) {
        if let d = headerDeadline, now >= d {
            fail(.headerTimeout)
            pendingFailure = .headerTimeout
            return
        }
        if let d = idleDeadline, now >= d {
            if reading == .body {
                fail(.bodyTimeout)
                pendingFailure = .bodyTimeout
            } else {
                reading = .stopped
                closeAfterOutput = true
                idleDeadline = nil
            }
        }
    }

    // MARK: Responses

    /// Starts the response to the current request. An interim 1xx
    /// response (not 101) may precede the final one. `Content-Length` or
    /// `Transfer-Encoding` and `Connection` are set here from `bodyLength`
    /// and the request; fields the caller set for them are replaced.
    public mutating func startResponse(_ head: HTTPResponseHead, bodyLength: HTTPBodyLength) throws(HTTPError) {
        guard writing == .idle, reading == .body || reading == .responding else {
            throw .misuse("startResponse without a request waiting for one")
        }
        var head = head
        head.version = .http1_1
        if head.status.isInformational && head.status.code != 101 {
            head.fields.remove("Content-Length")
            head.fields.remove("Transfer-Encoding")
            // A 1xx to an HTTP/1.0 client is not sent (RFC 9110 §15.2).
            if requestVersion.minor >= 1 { HTTPSerializer.writeHead(head, into: &output.bytes) }
            if head.status.code == 100 { continuePending = false }
            return
        }
        if continuePending {
            // The final answer came before the client was told to send the
            // body: the body may or may not follow, so the connection
            // cannot be reused (RFC 9110 §10.1.1).
            continuePending = false
            requestKeepAlive = false
        }
        if head.fields.containsToken("close", in: "Connection") { requestKeepAlive = false }
        head.fields.remove("Content-Length")
        head.fields.remove("Transfer-Encoding")
        let framing: Framing
        if head.status.code == 101 {
            framing = .none
            upgradePending = true
            requestKeepAlive = true
        } else if head.status.code == 204 || head.status.code == 304 || (100..<200).contains(head.status.code) {
            framing = .none
        } else {
            switch bodyLength {
            case .known(let n):
                precondition(n >= 0, "negative Content-Length")
                head.fields.append(name: "Content-Length", value: String(n))
                framing = requestIsHead ? .none : .length(remaining: n)
            case .streamed:
                if requestVersion.minor >= 1 {
                    if !requestIsHead { head.fields.append(name: "Transfer-Encoding", value: "chunked") }
                    framing = requestIsHead ? .none : .chunked
                } else {
                    requestKeepAlive = false
                    framing = requestIsHead ? .none : .untilClose
                }
            }
        }
        if head.status.code != 101 {
            head.fields.remove("Connection")
            if !requestKeepAlive {
                head.fields.append(name: "Connection", value: "close")
            } else if requestVersion.minor == 0 {
                head.fields.append(name: "Connection", value: "keep-alive")
            }
        }
        HTTPSerializer.writeHead(head, into: &output.bytes)
        writing = .body(framing: framing)
    }

    /// Adds body bytes to the response. Bytes beyond a declared length are
    /// a misuse; for HEAD, 204 and 304 they are dropped.
    public mutating func writeBody(_ bytes: Span<UInt8>) throws(HTTPError) {
        guard case .body(let framing) = writing else { throw .misuse("writeBody without a response in progress") }
        switch framing {
        case .none:
            return
        case .length(let remaining):
            guard bytes.count <= remaining else { throw .misuse("body longer than its Content-Length") }
            output.bytes.append(span: bytes)
            writing = .body(framing: .length(remaining: remaining - bytes.count))
        case .chunked:
            HTTPSerializer.writeChunk(bytes, into: &output.bytes)
        case .untilClose:
            output.bytes.append(span: bytes)
        }
    }

    /// Ends the response (with trailers for a chunked body). A known-length
    /// body that fell short makes the connection abort: the client could
    /// not tell where the message ends otherwise.
    public mutating func finishResponse(trailers: HTTPFields = HTTPFields(), now: Instant) throws(HTTPError) {
        guard case .body(let framing) = writing else { throw .misuse("finishResponse without a response in progress") }
        switch framing {
        case .none:
            break
        case .length(let remaining):
            if remaining > 0 {
                abortRequested = true
                closeAfterOutput = true
                reading = .stopped
            }
        case .chunked:
            HTTPSerializer.writeLastChunk(trailers: trailers, into: &output.bytes)
        case .untilClose:
            closeAfterOutput = true
        }
        writing = .done
        if upgradePending { return }
        if !requestKeepAlive { closeAfterOutput = true }
        switch reading {
        case .responding:
            finishExchange(now: now)
        case .body:
            if continuePending || closeAfterOutput {
                // The client may be waiting for 100 Continue, or we close anyway.
                continuePending = false
                reading = .stopped
                closeAfterOutput = true
            } else {
                discardingBody = true
            }
        case .head, .stopped:
            break
        }
    }

    private mutating func finishExchange(now: Instant) {
        if closeAfterOutput || !requestKeepAlive {
            reading = .stopped
            closeAfterOutput = true
            return
        }
        reading = .head
        writing = .idle
        idleDeadline = now + configuration.idleTimeout
        if parser.isReadingHead { headerDeadline = now + configuration.headerTimeout }
    }

    /// Whether a response has been started and not finished.
    public var isResponding: Bool {
        if case .body = writing { return true }
        return false
    }

    /// Whether the current request still expects its response to start.
    public var awaitsResponse: Bool {
        writing == .idle && (reading == .body || reading == .responding)
    }

    // MARK: Output

    /// Bytes waiting to be sent.
    public var outputCount: Int { output.count }

    /// Passes the bytes waiting to be sent to `body`, borrowed.
    public func withOutput<R, E: Error>(_ body: (Span<UInt8>) throws(E) -> R) throws(E) -> R {
        try output.withUnsent(body)
    }

    /// `count` bytes of the output were sent.
    public mutating func consumeOutput(_ count: Int) {
        output.consume(count)
    }

    /// Whether the connection should now be closed: everything to send was
    /// sent and no further exchange will happen.
    public var shouldClose: Bool { closeAfterOutput && outputCount == 0 && !upgradePending }
}
