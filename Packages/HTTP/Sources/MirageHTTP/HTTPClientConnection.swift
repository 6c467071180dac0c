import MirageDevices

/// The client side of one HTTP/1.1 connection as a sans-I/O state machine
/// (RFC 9112): requests and received bytes in; bytes to send, response
/// events and "close now" out. It opens no socket and reads no clock.
///
/// One exchange at a time, no pipelining: `sendRequest` is accepted only
/// when `isReadyForRequest` (the previous response is complete and its
/// request fully sent). A keep-alive connection then waits for the next
/// request; `isReusable` says whether it may get one.
///
/// Drive it like this: `sendRequest`, then `writeBody` and `finishRequest`
/// for a body; send `withOutput` and `consumeOutput` what was sent;
/// `receive` the peer's bytes (and `receiveEnd` its FIN), then call
/// `nextEvent` until it returns nil; close the connection when
/// `shouldClose`. Call `timerFired` at `nextDeadline`.
///
/// `Expect: 100-continue` (RFC 9110 §10.1.1): when the request carries it
/// and has a body, the body is held back (written bytes are kept) until a
/// 100 arrives or `continueTimeout` passes. A final response that comes
/// first means the body is not sent at all; the connection then closes
/// after the response, since the server cannot tell where the request ends.
public struct HTTPClientConnection: Sendable {
    /// Limits and timeouts.
    public struct Configuration: Hashable, Sendable {
        /// Parser limits for responses (no body limit by default: bodies
        /// are streamed out, not held).
        public var limits: HTTPLimits = .client
        /// The final response head must arrive this long after the request
        /// was completely handed over (`finishRequest`); otherwise
        /// `headerTimeout`. Interim 1xx responses restart it.
        public var responseHeaderTimeout: Interval = .seconds(30)
        /// A response body that stops arriving for this long fails with
        /// `bodyTimeout`.
        public var idleReadTimeout: Interval = .seconds(60)
        /// How long a body is held back waiting for 100 Continue
        /// (RFC 9110 §10.1.1 lets the client send it after a wait of its
        /// choosing).
        public var continueTimeout: Interval = .seconds(1)
        /// A connection with no exchange in progress closes after this long
        /// (`shouldClose` turns true). Keep it below the servers' own idle
        /// timeouts to avoid reusing a connection they are closing.
        public var keepAliveTimeout: Interval = .seconds(30)
        /// The defaults.
        public init() {}
    }

    /// What the connection has for the application.
    public enum Event: Sendable {
        /// An interim 1xx response (not 101); the final one follows.
        case informational(HTTPResponseHead)
        /// The final response head; body events follow, then `end`. A 101
        /// (or a 2xx to CONNECT) is followed by `upgraded` instead.
        case response(HTTPResponseHead)
        /// Response body bytes (chunked coding removed), a slice of the
        /// parser's buffer.
        case body(ArraySlice<UInt8>)
        /// The response is complete; `trailers` from a chunked body, if any.
        case end(trailers: HTTPFields)
        /// The connection now carries another protocol, starting with
        /// `leftover`; this state machine is done.
        case upgraded(leftover: [UInt8])
        /// The response was malformed, too slow, or cut short; the
        /// connection must close (abort: its framing is lost).
        case failed(HTTPError)
    }

    /// The request side of the current exchange.
    private enum Sending: Sendable, Equatable {
        /// No request in progress.
        case idle
        /// Body bytes may follow.
        case body(RequestFraming)
        /// The body is not sent (a final response came while it was held
        /// back, or the server said it closes); writes are dropped.
        case abandoned
        /// The request is completely queued for sending.
        case done
    }

    private enum RequestFraming: Sendable, Equatable {
        case length(remaining: Int)
        case chunked
    }

    /// The response side of the current exchange.
    private enum Receiving: Sendable, Equatable {
        /// No response expected.
        case idle
        /// Waiting for a response head (also after an interim one).
        case head
        /// Reading the final response's body.
        case body
        /// The response is complete; the request may still be sending.
        case done
        /// Nothing more is read: a failure, an upgrade, or a close.
        case stopped
    }

    /// The configuration in force.
    public let configuration: Configuration
    private var parser: MessageParser
    private var sending: Sending = .idle
    private var receiving: Receiving = .idle
    /// Bytes to send.
    private var output = OutputQueue()
    /// Framed body bytes held back until 100 Continue.
    private var heldOutput: [UInt8] = []
    private var bodyHeld = false
    /// The current or last request's body was abandoned: later writes
    /// and `finishRequest` are dropped rather than misuse.
    private var dropsBody = false
    private var requestChunked = false
    private var requestKeepAlive = true
    private var responseKeepAlive = true
    private var endOfInput = false
    /// No further exchange: close once the output is sent.
    private var closing = false
    private var failed = false
    private var upgradePending = false
    private var pendingFailure: HTTPError?
    private var headerDeadline: Instant?
    private var bodyDeadline: Instant?
    private var continueDeadline: Instant?
    private var idleDeadline: Instant?
    /// Requests sent on this connection.
    public private(set) var requestsSent = 0
    /// Whether any byte of the current exchange's response has arrived.
    /// Until one has, a connection closed under a request did not process
    /// it as far as the client can tell (the retry rule of RFC 9110 §9.2.2
    /// for idempotent methods hinges on this).
    public private(set) var responseStarted = false

    /// A connection, open and idle since `now`.
    public init(configuration: Configuration = Configuration(), now: Instant) {
        self.configuration = configuration
        parser = MessageParser(role: .response, limits: configuration.limits)
        idleDeadline = now + configuration.keepAliveTimeout
    }

    // MARK: Requests

    /// Whether `sendRequest` may be called: no exchange in progress, the
    /// connection neither closing nor failed, and no stray bytes received
    /// (they would be taken for the next response; `nextEvent` reports them).
    public var isReadyForRequest: Bool {
        sending == .idle && receiving == .idle && !closing && !failed && !endOfInput && !upgradePending
            && parser.bufferedCount == 0
    }

    /// Whether the connection can carry another request: the same as
    /// `isReadyForRequest` (the last response was complete, both sides
    /// kept the connection alive, the body was not close-delimited).
    public var isReusable: Bool { isReadyForRequest }

    /// Whether a request is in progress (its response not complete or its
    /// body not fully handed over).
    public var isBusy: Bool {
        switch receiving {
        case .head, .body, .done: true
        case .idle, .stopped: sending != .idle
        }
    }

    /// Starts a request. `Content-Length` or `Transfer-Encoding: chunked`
    /// is set from `bodyLength` (fields the caller set for them are
    /// replaced); `Host` must be present in an HTTP/1.1 request
    /// (RFC 9112 §3.2). A known length of zero completes the request at
    /// once; any other body ends with `finishRequest`.
    public mutating func sendRequest(_ head: HTTPRequestHead, bodyLength: HTTPBodyLength, now: Instant) throws(HTTPError) {
        guard isReadyForRequest else { throw .misuse("sendRequest while the connection is busy, closing or failed") }
        var head = head
        if head.version.minor >= 1 {
            var hosts = 0
            for i in 0..<head.fields.count where head.fields.nameEquals(i, "host") { hosts += 1 }
            guard hosts == 1 else { throw .misuse("an HTTP/1.1 request needs exactly one Host field") }
        }
        head.fields.remove("Content-Length")
        head.fields.remove("Transfer-Encoding")
        let framing: RequestFraming
        switch bodyLength {
        case .known(let n):
            precondition(n >= 0, "negative Content-Length")
            // RFC 9110 §8.6: no Content-Length for an empty body when the
            // method does not anticipate one.
            if n > 0 || Self.anticipatesContent(head.method) {
                head.fields.append(name: "Content-Length", value: String(n))
            }
            framing = .length(remaining: n)
        case .streamed:
            // RFC 9112 §6.1: chunked only in HTTP/1.1.
            guard head.version.minor >= 1 else { throw .misuse("a streamed (chunked) body needs an HTTP/1.1 request") }
            head.fields.append(name: "Transfer-Encoding", value: "chunked")
            framing = .chunked
        }
        HTTPSerializer.writeHead(head, into: &output.bytes)
        parser.expectResponse(to: head.method)
        requestsSent += 1
        requestChunked = framing == .chunked
        requestKeepAlive = head.keepAlive
        responseKeepAlive = true
        responseStarted = false
        dropsBody = false
        receiving = .head
        idleDeadline = nil
        headerDeadline = nil
        bodyDeadline = nil
        continueDeadline = nil
        // RFC 9110 §10.1.1: 100-continue only means something with content.
        bodyHeld = framing != .length(remaining: 0) && head.version.minor >= 1
            && head.fields.containsToken("100-continue", in: "Expect")
        if bodyHeld { continueDeadline = now + configuration.continueTimeout }
        if framing == .length(remaining: 0) {
            sending = .done
            headerDeadline = now + configuration.responseHeaderTimeout
        } else {
            sending = .body(framing)
        }
    }

    /// Methods whose requests usually carry content (RFC 9110 §9.3).
    private static func anticipatesContent(_ method: HTTPMethod) -> Bool {
        switch method {
        case .post, .put, .patch, .other: true
        case .get, .head, .delete, .connect, .options, .trace: false
        }
    }

    /// Adds request body bytes. Bytes beyond a declared length are a
    /// misuse; after the body was abandoned they are dropped.
    public mutating func writeBody(_ bytes: Span<UInt8>) throws(HTTPError) {
        switch sending {
        case .abandoned:
            return
        case .idle where dropsBody:
            return
        case .idle, .done:
            throw .misuse("writeBody without a request body in progress")
        case .body(.length(let remaining)):
            guard bytes.count <= remaining else { throw .misuse("body longer than its Content-Length") }
            if bodyHeld { heldOutput.append(span: bytes) } else { output.bytes.append(span: bytes) }
            sending = .body(.length(remaining: remaining - bytes.count))
        case .body(.chunked):
            if bodyHeld {
                HTTPSerializer.writeChunk(bytes, into: &heldOutput)
            } else {
                HTTPSerializer.writeChunk(bytes, into: &output.bytes)
            }
        }
    }

    /// Ends the request body: the last chunk with `trailers` for a
    /// streamed body. For a known length every byte must have been written
    /// (ending short is a misuse: the server could not tell where the
    /// request ends); after a zero-length request it is a no-op.
    public mutating func finishRequest(trailers: HTTPFields = HTTPFields(), now: Instant) throws(HTTPError) {
        switch sending {
        case .abandoned:
            sending = .done
            completeIfDone(now: now)
        case .idle:
            guard dropsBody else { throw .misuse("finishRequest without a request in progress") }
        case .done:
            guard !requestChunked, trailers.isEmpty else { throw .misuse("finishRequest after the request ended") }
        case .body(.length(let remaining)):
            guard remaining == 0 else { throw .misuse("request body \(remaining) bytes short of its Content-Length") }
            guard trailers.isEmpty else { throw .misuse("trailers need a streamed (chunked) body") }
            sending = .done
            if receiving == .head { headerDeadline = now + configuration.responseHeaderTimeout }
            completeIfDone(now: now)
        case .body(.chunked):
            if bodyHeld {
                HTTPSerializer.writeLastChunk(trailers: trailers, into: &heldOutput)
            } else {
                HTTPSerializer.writeLastChunk(trailers: trailers, into: &output.bytes)
            }
            sending = .done
            if receiving == .head { headerDeadline = now + configuration.responseHeaderTimeout }
            completeIfDone(now: now)
        }
    }

    /// Whether the request body is being held back for 100 Continue.
    public var isHoldingBody: Bool { bodyHeld }

    private mutating func releaseHeldBody() {
        guard bodyHeld else { return }
        bodyHeld = false
        continueDeadline = nil
        output.bytes.append(contentsOf: heldOutput)
        heldOutput = []
    }

    /// The body will not be sent: drop what is held or unsent and close
    /// after the response.
    private mutating func abandonBody() {
        bodyHeld = false
        continueDeadline = nil
        heldOutput = []
        dropsBody = true
        if sending != .done { sending = .abandoned }
        // Unsent bytes may end mid-chunk; the connection closes after the
        // response anyway.
        dropOutput()
        responseKeepAlive = false
    }

    // MARK: Input

    /// Bytes from the peer.
    public mutating func receive(_ bytes: Span<UInt8>, now: Instant) {
        guard receiving != .stopped, !failed, !bytes.isEmpty else { return }
        parser.append(bytes)
        switch receiving {
        case .head: responseStarted = true
        case .body: bodyDeadline = now + configuration.idleReadTimeout
        case .idle, .done, .stopped: break
        }
    }

    /// The peer closed its side (FIN). It ends a close-delimited body;
    /// anything else in progress fails (`connectionClosed(.normal)` when
    /// no byte of the response had arrived, else `truncatedMessage`).
    public mutating func receiveEnd() {
        endOfInput = true
    }

    /// The next thing for the application, or nil when the connection
    /// needs bytes, a request, or nothing more.
    public mutating func nextEvent(now: Instant) -> Event? {
        if let failure = pendingFailure {
            pendingFailure = nil
            return .failed(failure)
        }
        if upgradePending {
            upgradePending = false
            receiving = .stopped
            closing = true
            return .upgraded(leftover: parser.takeRemaining())
        }
        do throws(HTTPError) {
            switch receiving {
            case .stopped, .done:
                return nil
            case .idle:
                // Bytes with no request outstanding answer nothing.
                if parser.bufferedCount > 0 { throw .unexpectedResponse }
                if endOfInput { closing = true }
                return nil
            case .head, .body:
                guard let event = try parser.next() else {
                    guard endOfInput else { return nil }
                    if receiving == .head && parser.bufferedCount == 0 {
                        throw responseStarted ? .truncatedMessage : .connectionClosed(.normal)
                    }
                    guard case .end(let trailers)? = try parser.finish() else { throw .truncatedMessage }
                    return end(trailers, now: now)
                }
                switch event {
                case .responseHead(let head):
                    return begin(head, now: now)
                case .body(let bytes):
                    return .body(bytes)
                case .end(let trailers):
                    return end(trailers, now: now)
                case .requestHead:
                    return nil
                }
            }
        } catch {
            fail()
            return .failed(error)
        }
    }

    private mutating func begin(_ head: HTTPResponseHead, now: Instant) -> Event {
        if parser.isUpgraded {
            // 101, or 2xx to CONNECT: the rest of the stream is not HTTP.
            headerDeadline = nil
            upgradePending = true
            return .response(head)
        }
        if head.status.isInformational {
            if head.status.code == 100 { releaseHeldBody() }
            if headerDeadline != nil { headerDeadline = now + configuration.responseHeaderTimeout }
            return .informational(head)
        }
        receiving = .body
        headerDeadline = nil
        bodyDeadline = now + configuration.idleReadTimeout
        // RFC 9112 §9.3: persistence as the response says.
        if head.fields.containsToken("close", in: "Connection") {
            responseKeepAlive = false
        } else if head.version.minor == 0 {
            responseKeepAlive = head.fields.containsToken("keep-alive", in: "Connection")
        }
        // A close-delimited body ends the connection (RFC 9112 §6.3 rule 8).
        if parser.readsUntilClose { responseKeepAlive = false }
        if bodyHeld {
            // A final status before 100: the body is not sent (RFC 9110 §10.1.1).
            abandonBody()
        } else if case .body = sending, !responseKeepAlive {
            // RFC 9112 §9.6: a server closing after its response does not
            // want the rest of the body; stop sending it.
            abandonBody()
        }
        return .response(head)
    }

    private mutating func end(_ trailers: HTTPFields, now: Instant) -> Event {
        receiving = .done
        bodyDeadline = nil
        completeIfDone(now: now)
        return .end(trailers: trailers)
    }

    /// Both directions of the exchange are complete: the connection waits
    /// for the next request, or closes.
    private mutating func completeIfDone(now: Instant) {
        guard receiving == .done, sending == .done || sending == .abandoned else { return }
        sending = .idle
        if !requestKeepAlive || !responseKeepAlive || closing || endOfInput {
            receiving = .stopped
            closing = true
            return
        }
        receiving = .idle
        idleDeadline = now + configuration.keepAliveTimeout
    }

    private mutating func fail() {
        failed = true
        receiving = .stopped
        closing = true
        bodyHeld = false
        heldOutput = []
        headerDeadline = nil
        bodyDeadline = nil
        continueDeadline = nil
        idleDeadline = nil
        dropOutput()
    }

    // MARK: Timers

    /// When `timerFired` should be called, if at all.
    public var nextDeadline: Instant? {
        Instant.earlier(Instant.earlier(headerDeadline, bodyDeadline), Instant.earlier(continueDeadline, idleDeadline))
    }

    /// Time passed: a held body is released after the continue timeout; a
    /// late response head or a stalled body fails; an idle keep-alive
    /// connection closes.
    public mutating func timerFired(now: Instant) {
        if let d = continueDeadline, now >= d { releaseHeldBody() }
        if let d = headerDeadline, now >= d {
            fail()
            pendingFailure = .headerTimeout
            return
        }
        if let d = bodyDeadline, now >= d {
            fail()
            pendingFailure = .bodyTimeout
            return
        }
        if let d = idleDeadline, now >= d, sending == .idle, receiving == .idle {
            idleDeadline = nil
            closing = true
        }
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

    private mutating func dropOutput() {
        output.drop()
    }

    /// Whether the connection should now be closed: no further exchange
    /// will happen and everything to send was sent (at once after a
    /// failure, whose unsent output is dropped).
    public var shouldClose: Bool { failed || (closing && outputCount == 0 && !upgradePending) }

    /// Whether the connection failed (malformed or late response): abort
    /// it rather than close it gracefully.
    public var hasFailed: Bool { failed }
}
