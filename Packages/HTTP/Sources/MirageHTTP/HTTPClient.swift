import MirageDevices

/// One request made through an `HTTPClient`. Valid from `request` until
/// `responseEnded`, `requestFailed` or `cancel`.
public struct HTTPClientRequestID: Hashable, Sendable, CustomStringConvertible {
    /// The client's number for the request, from 1, never reused.
    public var rawValue: UInt64
    /// A request identifier.
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public var description: String { "req#\(rawValue)" }
}

/// The body of a request made through an `HTTPClient`.
public enum HTTPClientBody: Sendable {
    /// No body (no `Content-Length` either, unless the method expects
    /// content: `POST`, `PUT`, `PATCH` get `Content-Length: 0`).
    case none
    /// These bytes, with a `Content-Length`. Kept until the response
    /// starts, so an idempotent request can be retried.
    case bytes([UInt8])
    /// Written later with `writeBody` and ended with `finishBody`; sent
    /// chunked (`Transfer-Encoding: chunked`, HTTP/1.1 only). Never retried.
    case streamed
}

/// What a client application implements to get responses. Events come
/// from the stack's run loop (or a timer), never re-entrantly from inside a
/// client call: a call made from inside an event takes effect at once.
public protocol HTTPClientHandler: AnyObject {
    /// The final response head arrived; body events follow, then
    /// `responseEnded`.
    func responseReceived(_ head: HTTPResponseHead, request: HTTPClientRequestID)
    /// Bytes of the response body, borrowed for the call (streamed as they
    /// arrive; `pauseResponse` to slow them down).
    func bodyReceived(_ bytes: Span<UInt8>, request: HTTPClientRequestID)
    /// The response is complete; the request identifier is spent (unless a
    /// streamed request body is still being written: then it stays valid
    /// for `writeBody`/`finishBody`).
    func responseEnded(_ request: HTTPClientRequestID, trailers: HTTPFields)
    /// The request failed: the connection could not be opened, closed
    /// under it, or carried a malformed or late response. The identifier is
    /// spent.
    func requestFailed(_ request: HTTPClientRequestID, error: HTTPError)
    /// `writeBody` returned false earlier; there is room again.
    func requestWritable(_ request: HTTPClientRequestID)
    /// An interim 1xx response (100 Continue, 103 Early Hints…).
    func informationalReceived(_ head: HTTPResponseHead, request: HTTPClientRequestID)
    /// After a 101 (or a 2xx to CONNECT, which `responseReceived` reported
    /// first): the connection is the application's now, starting with
    /// `leftover`; take its events with `Stack.setHandler`. The default
    /// does nothing and leaves the connection open.
    func connectionUpgraded(_ connection: ConnectionID, request: HTTPClientRequestID, leftover: [UInt8])
}

extension HTTPClientHandler {
    public func requestWritable(_ request: HTTPClientRequestID) {}
    public func informationalReceived(_ head: HTTPResponseHead, request: HTTPClientRequestID) {}
    public func connectionUpgraded(_ connection: ConnectionID, request: HTTPClientRequestID, leftover: [UInt8]) {}
}

/// Counters of an `HTTPClient`.
public struct HTTPClientStatistics: Hashable, Sendable {
    /// Connections the client opened (`connect` calls).
    public var connectionsOpened = 0
    /// Requests sent on a connection that had carried an earlier one.
    public var connectionsReused = 0
    /// Idle keep-alive connections closed (keep-alive timeout, the server
    /// closing them, or the idle limits).
    public var idleConnectionsClosed = 0
    /// Connections open now (connecting, busy or idle).
    public var connectionsOpen = 0
    /// Requests accepted by `request`.
    public var requests = 0
    /// Responses completed.
    public var responses = 0
    /// Requests failed (`requestFailed` delivered).
    public var failures = 0
    /// Requests sent again on a fresh connection after a reused one closed
    /// before answering (RFC 9110 §9.2.2).
    public var retries = 0
    /// Requests that waited for a connection (`maximumConnectionsPerEndpoint`).
    public var queued = 0
    /// Requests refused because the queue was full.
    public var queueRejections = 0
    /// Response header or body timeouts.
    public var timeouts = 0
    /// Requests cancelled by the application.
    public var cancelled = 0
    /// Host names looked up through the client's `NameResolver`.
    public var lookups = 0
    /// A statistics value with every counter at zero.
    public init() {}
}

/// One connection of an `HTTPClient`. (Outside the generic class, so it
/// needs no generic metadata at run time; so is `ClientRequest`.)
private final class ClientSession {
    let id: ConnectionID
    /// Nil for a connection the application handed over: never pooled.
    let endpoint: Endpoint?
    var core: HTTPClientConnection
    var established: Bool
    var request: HTTPClientRequestID?
    var pooled = false
    var closed = false
    var readingPaused = false
    var timer = ConnectionTimers.Slot()
    /// Events are being delivered; calls from handlers defer the settling.
    var processing = false
    init(id: ConnectionID, endpoint: Endpoint?, core: HTTPClientConnection, established: Bool) {
        self.id = id
        self.endpoint = endpoint
        self.core = core
        self.established = established
    }
}

/// One request of an `HTTPClient`, queued or on a connection.
private final class ClientRequest {
    let id: HTTPClientRequestID
    let head: HTTPRequestHead
    let body: HTTPClientBody
    /// Nil for a request on a given connection, or one whose host name
    /// is being looked up.
    var endpoint: Endpoint?
    let handler: any HTTPClientHandler
    /// The host name being looked up, and the port to connect to then.
    var lookup: (id: NameLookupID, host: String, port: UInt16)?
    var connection: ConnectionID?
    /// Streamed body bytes written before a connection was ready.
    var pendingBody: [UInt8] = []
    var pendingTrailers: HTTPFields?
    var responseDone = false
    var retried = false
    var waitsForRoom = false
    var paused = false
    init(id: HTTPClientRequestID, head: HTTPRequestHead, body: HTTPClientBody, endpoint: Endpoint?, handler: any HTTPClientHandler) {
        self.id = id
        self.head = head
        self.body = body
        self.endpoint = endpoint
        self.handler = handler
    }
}

/// An HTTP/1.1 client over any stack of the contract: it opens
/// connections to endpoints (or takes over one the application opened),
/// runs one `HTTPClientConnection` per connection, and passes response
/// events to each request's handler. Call everything from the stack's run
/// loop.
///
/// Connections are kept alive and reused for later requests to the same
/// endpoint (RFC 9112 §9.3), one request at a time per connection (no
/// pipelining). At most `maximumConnectionsPerEndpoint` are open per
/// endpoint; further requests wait in a bounded queue. A request on a
/// reused connection that the server closed before answering is retried
/// once on a fresh connection when its method is idempotent and its body
/// is not streamed (RFC 9110 §9.2.2).
public final class HTTPClient<S: Stack>: TCPHandler, TimerHandler, NameResolutionHandler {
    /// Settings.
    public struct Configuration: Sendable {
        /// Per-connection limits and timeouts (`keepAliveTimeout` closes idle
        /// pooled connections).
        public var connection = HTTPClientConnection.Configuration()
        /// Connections open at once to one endpoint; more requests queue.
        public var maximumConnectionsPerEndpoint = 6
        /// Idle keep-alive connections kept per endpoint; one more is closed.
        public var maximumIdleConnectionsPerEndpoint = 4
        /// Idle keep-alive connections kept in all; beyond it the oldest closes.
        public var maximumIdleConnections = 64
        /// Requests waiting for a connection, over all endpoints; beyond it
        /// `request` throws.
        public var maximumQueuedRequests = 256
        /// The TCP connect timeout (nil: the stack's default).
        public var connectTimeout: Interval? = nil
        /// `writeBody` returns false once this much request output waits
        /// for the stack (back-pressure to the application).
        public var outputHighWater = 256 * 1024
        /// Retry idempotent requests once when a reused connection closes
        /// before answering.
        public var retryIdempotentRequests = true
        /// Turn Nagle's algorithm off on new connections (requests are
        /// written whole; waiting for an ACK only adds latency).
        public var noDelay = true
        /// The defaults.
        public init() {}
    }

    /// The stack connections are made on.
    public let stack: S
    /// The settings.
    public let configuration: Configuration
    /// Counters.
    public private(set) var statistics = HTTPClientStatistics()
    /// Turns host names given to `request(_:body:host:port:handler:)` into
    /// addresses (MirageDNS's `Resolver` implements it); nil: only IP
    /// literals are accepted there.
    public var resolver: (any NameResolver)?
    private let timers: any TimerScheduler
    private let clock: any MonotonicClock
    private var nextRequestNumber: UInt64 = 1
    private var requests: [HTTPClientRequestID: ClientRequest] = [:]
    /// Requests waiting for their host name's addresses.
    private var lookups: [NameLookupID: HTTPClientRequestID] = [:]
    private var sessions: [ConnectionID: ClientSession] = [:]
    /// Idle pooled connections, least recently used first.
    private var idle: [ConnectionID] = []
    /// Sessions (connecting, busy or idle) per endpoint.
    private var openPerEndpoint: [Endpoint: Int] = [:]
    /// Requests waiting for a connection, per endpoint, oldest first.
    private var queues: [Endpoint: [ClientRequest]] = [:]
    private var queuedCount = 0
    private var connectionTimers = ConnectionTimers()
    /// Failures found during an application call, delivered from a timer
    /// so that handlers are never called re-entrantly.
    private var deferredFailures: [(request: HTTPClientRequestID, handler: any HTTPClientHandler, error: HTTPError)] = []
    private var notifyTimer: TimerID?
    /// Depth of stack and timer events being handled.
    private var eventDepth = 0

    /// A client on `stack`; `timers` and `clock` drive its timeouts.
    public init(stack: S, timers: any TimerScheduler, clock: any MonotonicClock, configuration: Configuration = Configuration()) {
        self.stack = stack
        self.timers = timers
        self.clock = clock
        self.configuration = configuration
    }

    // MARK: Requests

    /// Sends a request to `endpoint` on a pooled keep-alive connection, a
    /// new one, or (with `maximumConnectionsPerEndpoint` busy) once one is
    /// free. A missing `Host` is set from the endpoint. Throws when the
    /// connection cannot be opened, the queue is full
    /// (`device(.resourceExhausted)`), or the request is invalid.
    @discardableResult
    public func request(_ head: HTTPRequestHead, body: HTTPClientBody = .none, to endpoint: Endpoint,
                        handler: any HTTPClientHandler) throws(HTTPError) -> HTTPClientRequestID {
        let head = try prepare(head, body: body, host: Self.authority(endpoint))
        let request = ClientRequest(id: nextID(), head: head, body: body, endpoint: endpoint, handler: handler)
        try dispatch(request, to: endpoint)
        return request.id
    }

    /// Sends a request to `port` of `host`, a host name or an IP literal.
    /// A name is looked up through `resolver` first; the request then goes
    /// to its first address as with `request(_:body:to:handler:)`. A missing
    /// `Host` is set to `host` (with the port unless 80). A lookup that
    /// fails later is reported by `requestFailed` with `.nameResolution`.
    /// Throws `.nameResolution` when the lookup cannot start, `.misuse`
    /// for a name without a resolver, or as `request(_:body:to:handler:)`.
    @discardableResult
    public func request(_ head: HTTPRequestHead, body: HTTPClientBody = .none, host: String, port: UInt16 = 80,
                        handler: any HTTPClientHandler) throws(HTTPError) -> HTTPClientRequestID {
        var literal = Substring(host)
        if literal.hasPrefix("["), literal.hasSuffix("]") { literal = literal.dropFirst().dropLast() }
        if let address = IPAddress(String(literal)) {
            return try request(head, body: body, to: Endpoint(address, port), handler: handler)
        }
        guard let resolver else { throw .misuse("the host name \(host) needs a resolver") }
        let head = try prepare(head, body: body, host: port == 80 ? host : "\(host):\(port)")
        let lookup: NameLookupID
        do { lookup = try resolver.resolveHost(host, handler: self) } catch { throw .nameResolution(host: host, error) }
        let request = ClientRequest(id: nextID(), head: head, body: body, endpoint: nil, handler: handler)
        request.lookup = (lookup, host, port)
        lookups[lookup] = request.id
        statistics.lookups += 1
        register(request)
        return request.id
    }

    /// Puts `request` on an idle connection to `endpoint`, a new one, or
    /// the queue, registering it unless it already is (a request that
    /// waited for its host name's addresses).
    private func dispatch(_ request: ClientRequest, to endpoint: Endpoint) throws(HTTPError) {
        let isNew = requests[request.id] == nil
        if let session = takeIdle(endpoint) {
            if isNew { register(request) }
            start(request, on: session)
        } else if openPerEndpoint[endpoint, default: 0] < configuration.maximumConnectionsPerEndpoint {
            try open(endpoint, for: request)
            if isNew { register(request) }
        } else if queuedCount < configuration.maximumQueuedRequests {
            if isNew { register(request) }
            queues[endpoint, default: []].append(request)
            queuedCount += 1
            statistics.queued += 1
        } else {
            statistics.queueRejections += 1
            throw .device(.resourceExhausted("HTTP client request queue (\(configuration.maximumQueuedRequests))"))
        }
    }

    /// Sends a request over a connection the application opened (or one
    /// of this client's idle ones); the client takes the connection's
    /// events from now on and keeps it for later requests `on` it until it
    /// closes (or idles past `keepAliveTimeout`). A missing `Host` is set
    /// from the remote endpoint. Throws if the connection is busy.
    @discardableResult
    public func request(_ head: HTTPRequestHead, body: HTTPClientBody = .none, on connection: ConnectionID,
                        handler: any HTTPClientHandler) throws(HTTPError) -> HTTPClientRequestID {
        guard let remote = stack.endpoints(of: connection)?.remote else { throw .device(.unknownHandle) }
        let head = try prepare(head, body: body, host: Self.authority(remote))
        let session: ClientSession
        if let existing = sessions[connection] {
            guard !existing.closed, existing.established, existing.request == nil, existing.core.isReadyForRequest else {
                throw .misuse("\(connection) is busy or closing")
            }
            session = existing
            if session.pooled { unpool(session) }
        } else {
            do { try stack.setHandler(self, for: connection) } catch { throw .device(error) }
            session = ClientSession(id: connection, endpoint: nil,
                              core: HTTPClientConnection(configuration: configuration.connection, now: clock.now()),
                              established: true)
            sessions[connection] = session
            statistics.connectionsOpen += 1
        }
        let request = ClientRequest(id: nextID(), head: head, body: body, endpoint: nil, handler: handler)
        register(request)
        start(request, on: session)
        return request.id
    }

    private func nextID() -> HTTPClientRequestID {
        defer { nextRequestNumber += 1 }
        return HTTPClientRequestID(rawValue: nextRequestNumber)
    }

    private func register(_ request: ClientRequest) {
        requests[request.id] = request
        statistics.requests += 1
    }

    /// `Host` for an endpoint (RFC 9112 §3.2: required in HTTP/1.1;
    /// `uri-host [":" port]`, the port left out when it is http's default
    /// 80, RFC 9110 §7.2, §4.2.1).
    private static func authority(_ endpoint: Endpoint) -> String {
        var value = endpoint.description
        if endpoint.port == 80 { value.removeLast(3) }
        return value
    }

    /// Checks the request and adds `Host` when it has none.
    private func prepare(_ head: HTTPRequestHead, body: HTTPClientBody, host: String) throws(HTTPError) -> HTTPRequestHead {
        if case .streamed = body, head.version.minor == 0 {
            throw .misuse("a streamed (chunked) body needs an HTTP/1.1 request")
        }
        var head = head
        var hosts = 0
        for i in 0..<head.fields.count where head.fields.nameEquals(i, "host") { hosts += 1 }
        guard hosts <= 1 else { throw .misuse("more than one Host field") }
        if hosts == 0 { head.fields.append(name: "Host", value: host) }
        return head
    }

    /// Adds bytes to a streamed request body. Returns false when output is
    /// piling up (or the body is held for 100 Continue): stop writing until
    /// `requestWritable`. The bytes are always taken.
    @discardableResult
    public func writeBody(_ id: HTTPClientRequestID, _ bytes: Span<UInt8>) throws(HTTPError) -> Bool {
        let request = try streamed(id)
        guard let c = request.connection, let session = sessions[c], session.established else {
            guard request.pendingTrailers == nil else { throw .misuse("writeBody after finishBody") }
            request.pendingBody.append(span: bytes)
            if request.pendingBody.count >= configuration.outputHighWater {
                request.waitsForRoom = true
                return false
            }
            return true
        }
        try session.core.writeBody(bytes)
        settleLater(session)
        if session.closed { return true }
        if session.core.isHoldingBody || session.core.outputCount >= configuration.outputHighWater {
            request.waitsForRoom = true
            return false
        }
        return true
    }

    /// Ends a streamed request body, with `trailers`.
    public func finishBody(_ id: HTTPClientRequestID, trailers: HTTPFields = HTTPFields()) throws(HTTPError) {
        let request = try streamed(id)
        guard let c = request.connection, let session = sessions[c], session.established else {
            guard request.pendingTrailers == nil else { throw .misuse("finishBody twice") }
            request.pendingTrailers = trailers
            return
        }
        try session.core.finishRequest(trailers: trailers, now: clock.now())
        settleLater(session)
    }

    private func streamed(_ id: HTTPClientRequestID) throws(HTTPError) -> ClientRequest {
        guard let request = requests[id] else { throw .misuse("\(id) is not a current request") }
        guard case .streamed = request.body else { throw .misuse("\(id) has no streamed body") }
        return request
    }

    /// Stops delivering the response body of `id` (the stack stops reading
    /// and the TCP window closes) until `resumeResponse`.
    public func pauseResponse(_ id: HTTPClientRequestID) {
        guard let request = requests[id], !request.paused else { return }
        request.paused = true
        if let c = request.connection, let session = sessions[c], !session.closed, !session.readingPaused {
            session.readingPaused = true
            stack.pauseReading(c)
        }
    }

    /// Resumes delivering the response body of `id`. Bytes already
    /// received are delivered from a timer, never inside this call.
    public func resumeResponse(_ id: HTTPClientRequestID) {
        guard let request = requests[id], request.paused else { return }
        request.paused = false
        guard let c = request.connection, let session = sessions[c], !session.closed else { return }
        if session.readingPaused {
            session.readingPaused = false
            stack.resumeReading(c)
        }
        if !session.processing { schedule(session, at: clock.now()) }
    }

    /// Abandons `id`: no more events for it. A request in progress has its
    /// connection aborted (the response cannot be skipped otherwise).
    public func cancel(_ id: HTTPClientRequestID) {
        guard let request = requests.removeValue(forKey: id) else { return }
        statistics.cancelled += 1
        if let lookup = request.lookup {
            lookups[lookup.id] = nil
            resolver?.cancel(lookup.id)
            return
        }
        if let endpoint = request.endpoint, var queue = queues[endpoint],
           let i = queue.firstIndex(where: { $0.id == id }) {
            queue.remove(at: i)
            queues[endpoint] = queue.isEmpty ? nil : queue
            queuedCount -= 1
            return
        }
        guard let c = request.connection, let session = sessions[c] else { return }
        session.request = nil
        retire(session, abort: true)
        if let endpoint = session.endpoint { serveQueue(endpoint) }
    }

    /// Closes every idle keep-alive connection.
    public func closeIdleConnections() {
        while let c = idle.first, let session = sessions[c] {
            statistics.idleConnectionsClosed += 1
            retire(session, abort: false)
        }
    }

    /// Idle keep-alive connections held now.
    public var idleConnectionCount: Int { idle.count }

    // MARK: Connections

    private func open(_ endpoint: Endpoint, for request: ClientRequest) throws(HTTPError) {
        let c: ConnectionID
        do { c = try stack.connect(to: endpoint, timeout: configuration.connectTimeout, handler: self) } catch {
            throw .device(error)
        }
        let session = ClientSession(id: c, endpoint: endpoint,
                              core: HTTPClientConnection(configuration: configuration.connection, now: clock.now()),
                              established: false)
        sessions[c] = session
        openPerEndpoint[endpoint, default: 0] += 1
        statistics.connectionsOpened += 1
        statistics.connectionsOpen += 1
        session.request = request.id
        request.connection = c
    }

    /// The most recently used idle connection to `endpoint`.
    private func takeIdle(_ endpoint: Endpoint) -> ClientSession? {
        var i = idle.count
        while i > 0 {
            i -= 1
            if let session = sessions[idle[i]], session.endpoint == endpoint {
                unpool(session)
                return session
            }
        }
        return nil
    }

    private func unpool(_ session: ClientSession) {
        session.pooled = false
        if let i = idle.firstIndex(of: session.id) { idle.remove(at: i) }
    }

    /// Sends `request` on `session`, which is ready for one.
    private func start(_ request: ClientRequest, on session: ClientSession) {
        session.request = request.id
        request.connection = session.id
        if session.core.requestsSent > 0 { statistics.connectionsReused += 1 }
        if request.paused && !session.readingPaused {
            session.readingPaused = true
            stack.pauseReading(session.id)
        }
        let now = clock.now()
        do throws(HTTPError) {
            switch request.body {
            case .none:
                try session.core.sendRequest(request.head, bodyLength: .known(0), now: now)
            case .bytes(let bytes):
                try session.core.sendRequest(request.head, bodyLength: .known(bytes.count), now: now)
                try session.core.writeBody(bytes.span)
                try session.core.finishRequest(now: now)
            case .streamed:
                try session.core.sendRequest(request.head, bodyLength: .streamed, now: now)
                if !request.pendingBody.isEmpty {
                    try session.core.writeBody(request.pendingBody.span)
                    request.pendingBody = []
                }
                if let trailers = request.pendingTrailers {
                    try session.core.finishRequest(trailers: trailers, now: now)
                }
            }
        } catch {
            // Not reachable for a ready session and a prepared request;
            // reported rather than trapped all the same.
            session.request = nil
            fail(request, error)
            retire(session, abort: true)
            return
        }
        settleLater(session)
    }

    /// A session has no request and can take one: the next queued request
    /// for its endpoint, or the idle pool.
    private func becameFree(_ session: ClientSession) {
        guard let endpoint = session.endpoint else { return }
        if var queue = queues[endpoint], !queue.isEmpty {
            let next = queue.removeFirst()
            queues[endpoint] = queue.isEmpty ? nil : queue
            queuedCount -= 1
            start(next, on: session)
            return
        }
        var sameEndpoint = 0
        for c in idle where sessions[c]?.endpoint == endpoint { sameEndpoint += 1 }
        guard sameEndpoint < configuration.maximumIdleConnectionsPerEndpoint else {
            statistics.idleConnectionsClosed += 1
            retire(session, abort: false)
            return
        }
        if idle.count >= configuration.maximumIdleConnections, let oldest = idle.first, let victim = sessions[oldest] {
            statistics.idleConnectionsClosed += 1
            retire(victim, abort: false)
        }
        session.pooled = true
        idle.append(session.id)
        if session.readingPaused {
            session.readingPaused = false
            stack.resumeReading(session.id)
        }
    }

    /// Opens connections for queued requests while the endpoint has room.
    private func serveQueue(_ endpoint: Endpoint) {
        while var queue = queues[endpoint], !queue.isEmpty,
              openPerEndpoint[endpoint, default: 0] < configuration.maximumConnectionsPerEndpoint {
            let next = queue.removeFirst()
            queues[endpoint] = queue.isEmpty ? nil : queue
            queuedCount -= 1
            do throws(HTTPError) {
                try open(endpoint, for: next)
            } catch {
                fail(next, error)
            }
        }
    }

    /// Forgets a session and closes (or aborts) its connection; the
    /// stack's later events for it are ignored. Its request, if any, is
    /// the caller's to settle.
    private func retire(_ session: ClientSession, abort: Bool, close: Bool = true) {
        guard !session.closed else { return }
        session.closed = true
        if session.pooled { unpool(session) }
        sessions[session.id] = nil
        statistics.connectionsOpen -= 1
        if let endpoint = session.endpoint {
            let n = openPerEndpoint[endpoint, default: 1] - 1
            openPerEndpoint[endpoint] = n > 0 ? n : nil
        }
        connectionTimers.cancel(&session.timer, on: timers)
        guard close else { return }
        if abort { stack.abort(session.id) } else { stack.close(session.id) }
    }

    /// The connection under `session` is gone (or unusable) with `error`:
    /// its request is retried or failed, and queued requests get a chance.
    private func lost(_ session: ClientSession, error: HTTPError, abort: Bool, close: Bool = true) {
        let request = session.request.flatMap { requests[$0] }
        let wasIdle = session.pooled
        session.request = nil
        retire(session, abort: abort, close: close)
        if wasIdle { statistics.idleConnectionsClosed += 1 }
        if let request {
            if canRetry(request, on: session, error: error) {
                retry(request)
            } else {
                fail(request, error)
            }
        }
        if let endpoint = session.endpoint { serveQueue(endpoint) }
    }

    /// RFC 9110 §9.2.2: an idempotent request may be sent again when the
    /// connection closed before any response arrived. Only after a reused
    /// connection failed that way (the server closed it while idle), and
    /// once.
    private func canRetry(_ request: ClientRequest, on session: ClientSession, error: HTTPError) -> Bool {
        guard configuration.retryIdempotentRequests, !request.retried, request.endpoint != nil,
              session.core.requestsSent > 1, !session.core.responseStarted else { return false }
        switch error {
        case .connectionClosed, .device: break
        default: return false
        }
        if case .streamed = request.body { return false }
        switch request.head.method {
        case .get, .head, .put, .delete, .options, .trace: return true
        case .post, .patch, .connect, .other: return false
        }
    }

    /// Sends `request` again on a fresh connection (other idle ones to the
    /// endpoint may be just as stale).
    private func retry(_ request: ClientRequest) {
        guard let endpoint = request.endpoint else { return }
        request.retried = true
        request.connection = nil
        statistics.retries += 1
        if openPerEndpoint[endpoint, default: 0] < configuration.maximumConnectionsPerEndpoint {
            do throws(HTTPError) {
                try open(endpoint, for: request)
            } catch {
                fail(request, error)
            }
        } else {
            // Ahead of the others: it was sent first.
            queues[endpoint, default: []].insert(request, at: 0)
            queuedCount += 1
        }
    }

    /// Reports a failure to the request's handler: now when inside a stack
    /// or timer event, else from a timer.
    private func fail(_ request: ClientRequest, _ error: HTTPError) {
        guard requests.removeValue(forKey: request.id) != nil else { return }
        statistics.failures += 1
        switch error {
        case .headerTimeout, .bodyTimeout: statistics.timeouts += 1
        default: break
        }
        if eventDepth > 0 {
            request.handler.requestFailed(request.id, error: error)
        } else {
            deferredFailures.append((request.id, request.handler, error))
            if notifyTimer == nil { notifyTimer = timers.schedule(at: clock.now(), self) }
        }
    }

    // MARK: TCPHandler

    public func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {}

    public func connectionEstablished(_ connection: ConnectionID) {
        guard let session = sessions[connection], !session.closed else { return }
        eventDepth += 1
        defer { eventDepth -= 1 }
        session.established = true
        if configuration.noDelay { try? stack.setNoDelay(true, for: connection) }
        if let id = session.request, let request = requests[id] {
            start(request, on: session)
        } else {
            session.request = nil
            settle(session)
        }
    }

    public func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {
        guard let session = sessions[connection], !session.closed else { return }
        eventDepth += 1
        defer { eventDepth -= 1 }
        session.core.receive(bytes, now: clock.now())
        process(session)
    }

    public func endOfStream(on connection: ConnectionID) {
        guard let session = sessions[connection], !session.closed else { return }
        eventDepth += 1
        defer { eventDepth -= 1 }
        session.core.receiveEnd()
        process(session)
    }

    public func writable(_ connection: ConnectionID) {
        guard let session = sessions[connection], !session.closed else { return }
        eventDepth += 1
        defer { eventDepth -= 1 }
        settle(session)
    }

    public func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {
        guard let session = sessions[connection], !session.closed else { return }
        eventDepth += 1
        defer { eventDepth -= 1 }
        lost(session, error: .connectionClosed(reason), abort: false, close: false)
    }

    // MARK: NameResolutionHandler

    public func nameResolved(_ lookup: NameLookupID, addresses: [IPAddress]) {
        guard let id = lookups.removeValue(forKey: lookup), let request = requests[id],
              let target = request.lookup else { return }
        eventDepth += 1
        defer { eventDepth -= 1 }
        request.lookup = nil
        guard let address = addresses.first else {
            fail(request, .nameResolution(host: target.host, .noAddresses))
            return
        }
        let endpoint = Endpoint(address, target.port)
        request.endpoint = endpoint
        do throws(HTTPError) {
            try dispatch(request, to: endpoint)
        } catch {
            fail(request, error)
        }
    }

    public func nameResolutionFailed(_ lookup: NameLookupID, error: NameResolutionError) {
        guard let id = lookups.removeValue(forKey: lookup), let request = requests[id],
              let target = request.lookup else { return }
        eventDepth += 1
        defer { eventDepth -= 1 }
        request.lookup = nil
        fail(request, .nameResolution(host: target.host, error))
    }

    // MARK: TimerHandler

    public func timerFired(_ id: TimerID, now: Instant) {
        eventDepth += 1
        defer { eventDepth -= 1 }
        if id == notifyTimer {
            notifyTimer = nil
            let failures = deferredFailures
            deferredFailures = []
            for f in failures { f.handler.requestFailed(f.request, error: f.error) }
            return
        }
        guard let c = connectionTimers.fired(id), let session = sessions[c] else { return }
        session.timer = ConnectionTimers.Slot()
        if let deadline = session.core.nextDeadline, deadline <= now {
            session.core.timerFired(now: now)
        }
        process(session)
    }

    // MARK: Driving a connection

    /// Delivers the connection's events to the request's handler, then
    /// sends, releases or closes.
    private func process(_ session: ClientSession) {
        guard !session.processing else { return }
        session.processing = true
        defer { session.processing = false }
        while !session.closed {
            let request = session.request.flatMap { requests[$0] }
            if let request, request.paused { break }
            guard let event = session.core.nextEvent(now: clock.now()) else { break }
            switch event {
            case .informational(let head):
                if let request { request.handler.informationalReceived(head, request: request.id) }
            case .response(let head):
                if let request { request.handler.responseReceived(head, request: request.id) }
            case .body(let bytes):
                if let request { request.handler.bodyReceived(bytes.span, request: request.id) }
            case .end(let trailers):
                guard let request else { continue }
                statistics.responses += 1
                request.responseDone = true
                // Free the connection first, so a request made from inside
                // `responseEnded` can reuse it.
                release(session)
                request.handler.responseEnded(request.id, trailers: trailers)
            case .upgraded(let leftover):
                flush(session)
                session.request = nil
                if let request { requests[request.id] = nil }
                retire(session, abort: false, close: false)
                if let endpoint = session.endpoint { serveQueue(endpoint) }
                if let request {
                    request.handler.connectionUpgraded(session.id, request: request.id, leftover: leftover)
                }
                return
            case .failed(let error):
                lost(session, error: error, abort: true)
                return
            }
        }
        settle(session)
    }

    /// Settles now unless the session is being processed (which settles
    /// when it is done).
    private func settleLater(_ session: ClientSession) {
        if !session.processing { settle(session) }
    }

    /// Sends what is pending, finishes a completed request, pools or closes
    /// the connection, wakes a writer waiting for room, and rearms the timer.
    private func settle(_ session: ClientSession) {
        guard !session.closed else { return }
        if session.established {
            guard flush(session) else { return }
        }
        release(session)
        if session.closed { return }
        if session.core.shouldClose {
            let wasIdle = session.pooled
            if let id = session.request, requests[id] != nil {
                // Closing under a request that is not finished.
                lost(session, error: .truncatedMessage, abort: true)
                return
            }
            if wasIdle { statistics.idleConnectionsClosed += 1 }
            retire(session, abort: session.core.hasFailed)
            if let endpoint = session.endpoint { serveQueue(endpoint) }
            return
        }
        if let id = session.request, let request = requests[id], request.waitsForRoom, eventDepth > 0,
           !session.core.isHoldingBody, session.core.outputCount < configuration.outputHighWater / 2 {
            request.waitsForRoom = false
            request.handler.requestWritable(id)
            if session.closed { return }
        }
        rearm(session)
    }

    /// Ends the session's request if both its directions are complete, and
    /// hands a reusable connection on.
    private func release(_ session: ClientSession) {
        if let id = session.request, let request = requests[id], request.responseDone, !session.core.isBusy {
            requests[id] = nil
            session.request = nil
        }
        if session.request == nil, !session.pooled, !session.closed, session.established, session.core.isReusable {
            becameFree(session)
        }
    }

    /// Writes as much output as the stack takes; false if the connection
    /// was lost on the way.
    @discardableResult
    private func flush(_ session: ClientSession) -> Bool {
        do throws(DeviceError) {
            try session.core.send(on: session.id, through: stack)
        } catch {
            lost(session, error: .device(error), abort: true)
            return false
        }
        return true
    }

    /// Keeps one timer per connection, at or before its next deadline.
    private func rearm(_ session: ClientSession) {
        // While connecting, the stack's connect timeout is in charge.
        guard session.established, let deadline = session.core.nextDeadline else { return }
        schedule(session, at: deadline)
    }

    private func schedule(_ session: ClientSession, at deadline: Instant) {
        connectionTimers.arm(&session.timer, at: deadline, for: session.id, on: timers, handler: self)
    }
}
