import MirageDevices

/// One request/response exchange on a server connection: the handle an
/// application answers with. Valid until the response is finished or
/// `exchangeAborted` names it.
public struct HTTPExchange: Hashable, Sendable, CustomStringConvertible {
    /// The TCP connection carrying it.
    public var connection: ConnectionID
    /// The exchange's number on that connection, from 1.
    public var number: UInt64

    /// An exchange handle, for responders other than `HTTPServer` (a test
    /// double, a TLS-wrapped server) that number exchanges themselves.
    public init(connection: ConnectionID, number: UInt64) {
        self.connection = connection
        self.number = number
    }

    public var description: String { "\(connection)/\(number)" }
}

/// What a server application implements: request events in; answers go
/// back through `HTTPServer.respond`, or `startResponse`/`writeBody`/
/// `finishResponse` for streamed bodies.
///
/// Events come from the stack's run loop, never re-entrantly: a call made
/// from inside an event takes effect at once, and the events it causes
/// follow after the current one returns.
public protocol HTTPServerHandler: AnyObject {
    /// A request head arrived. Respond now or later; body events follow.
    func requestReceived(_ head: HTTPRequestHead, exchange: HTTPExchange)
    /// Bytes of the request body (borrowed for the call).
    func bodyReceived(_ bytes: Span<UInt8>, exchange: HTTPExchange)
    /// The request body is complete.
    func requestEnded(_ exchange: HTTPExchange, trailers: HTTPFields)
    /// `writeBody` returned false earlier; there is room again.
    func responseWritable(_ exchange: HTTPExchange)
    /// The connection went away before the response was finished.
    func exchangeAborted(_ exchange: HTTPExchange, error: HTTPError)
    /// A 101 response was sent: the connection is the application's now
    /// (through the stack, with `setHandler`), starting with `leftover`.
    func connectionUpgraded(_ connection: ConnectionID, exchange: HTTPExchange, leftover: [UInt8])
}

extension HTTPServerHandler {
    public func bodyReceived(_ bytes: Span<UInt8>, exchange: HTTPExchange) {}
    public func requestEnded(_ exchange: HTTPExchange, trailers: HTTPFields) {}
    public func responseWritable(_ exchange: HTTPExchange) {}
    public func exchangeAborted(_ exchange: HTTPExchange, error: HTTPError) {}
}

/// Counters of an `HTTPServer`.
public struct HTTPServerStatistics: Hashable, Sendable {
    /// Connections taken on.
    public var connectionsAccepted = 0
    /// Connections refused because `maximumConnections` were open.
    public var connectionsRejected = 0
    /// Connections open now.
    public var connectionsOpen = 0
    /// Request heads handed to the application.
    public var requests = 0
    /// Responses finished.
    public var responses = 0
    /// Requests refused as malformed or over a limit (4xx/5xx sent by the server itself).
    public var badRequests = 0
    /// Connections closed for a header, body or idle timeout.
    public var timeouts = 0
    /// Exchanges cut short by the connection closing.
    public var aborted = 0
    /// A server statistics value with every counter at zero.
    public init() {}
}

/// Settings of an `HTTPServer`.
public struct HTTPServerConfiguration: Sendable {
    /// Per-connection limits and timeouts.
    public var connection = HTTPServerConnection.Configuration()
    /// Connections served at once; more are aborted on accept.
    public var maximumConnections = 1024
    /// `writeBody` returns false once this much output waits for the
    /// stack (back-pressure to the application).
    public var outputHighWater = 256 * 1024
    /// The `Server` field added to responses that have none (nil: none).
    public var serverName: String? = "MirageSwift"
    /// Listen backlog.
    public var backlog = 128
    /// The defaults.
    public init() {}
}

/// One connection of an `HTTPServer`: its state machine and timer. (Outside
/// the generic class, so it needs no generic metadata at run time.)
private final class ServerSession {
    var connection: HTTPServerConnection
    var exchange: UInt64 = 0
    var timer = ConnectionTimers.Slot()
    var paused = false
    var handlerWaitsForRoom = false
    var closed = false
    /// Events are being delivered; calls from handlers defer the flush.
    var processing = false
    /// The current exchange was handed to the handler and its response
    /// is not finished: the handler must hear if it is cut short.
    var exchangeOpen = false
    init(_ connection: HTTPServerConnection) { self.connection = connection }
}

/// An HTTP/1.1 server over any stack of the contract (`SocketStack`,
/// `MirageTCPIP`, later TLS): it accepts connections, runs one
/// `HTTPServerConnection` per connection, and passes requests to its
/// handler. Call everything from the stack's run loop.
public final class HTTPServer<S: Stack>: HTTPResponder, TCPHandler, TimerHandler {
    /// Settings.
    public typealias Configuration = HTTPServerConfiguration

    /// The stack served on.
    public let stack: S
    /// The application.
    public let handler: any HTTPServerHandler
    /// The settings.
    public let configuration: Configuration
    /// Counters.
    public private(set) var statistics = HTTPServerStatistics()
    private let timers: any TimerScheduler
    private let clock: any MonotonicClock
    private let wallClock: (any WallClock)?
    private var sessions: [ConnectionID: ServerSession] = [:]
    private var connectionTimers = ConnectionTimers()
    private var listeners: [ListenerID] = []
    private var dateSecond: Int64 = .min
    private var dateText = ""

    /// A server on `stack` passing requests to `handler`; `timers` and
    /// `clock` drive the timeouts, `wallClock` (when given) the `Date` field
    /// (RFC 9110 §6.6.1: a server with a clock sends it).
    public init(stack: S, handler: any HTTPServerHandler, timers: any TimerScheduler, clock: any MonotonicClock,
                wallClock: (any WallClock)?, configuration: Configuration = Configuration()) {
        self.stack = stack
        self.handler = handler
        self.timers = timers
        self.clock = clock
        self.wallClock = wallClock
        self.configuration = configuration
    }

    /// Listens on `port` of `address` (nil: every address).
    @discardableResult
    public func listen(port: UInt16, address: IPAddress? = nil) throws(DeviceError) -> ListenerID {
        let id = try stack.listen(port: port, address: address, backlog: configuration.backlog, handler: self)
        listeners.append(id)
        return id
    }

    /// Where the server's listeners are bound.
    public var listenerEndpoints: [Endpoint] { listeners.compactMap { stack.localEndpoint(of: $0) } }

    /// Where a listener is bound.
    public func localEndpoint(of listener: ListenerID) -> Endpoint? { stack.localEndpoint(of: listener) }

    /// Stops listening and closes every connection (responses in progress
    /// are cut off).
    public func stop() {
        for l in listeners { stack.closeListener(l) }
        listeners.removeAll()
        for (id, session) in sessions where !session.closed {
            session.closed = true
            stack.close(id)
        }
    }

    /// Serves an existing connection (e.g. one a TLS layer or a test made).
    public func serve(_ connection: ConnectionID) throws(DeviceError) {
        try stack.setHandler(self, for: connection)
        adopt(connection)
    }

    // MARK: Responding

    /// Starts a response whose body follows with `writeBody`.
    public func startResponse(_ exchange: HTTPExchange, head: HTTPResponseHead, bodyLength: HTTPBodyLength) throws(HTTPError) {
        let session = try current(exchange)
        var head = head
        if let name = configuration.serverName, !head.fields.contains("Server") { head.fields.append(name: "Server", value: name) }
        if let wall = wallClock, !head.fields.contains("Date") {
            let now = wall.wallTime().seconds
            if now != dateSecond {
                dateSecond = now
                dateText = HTTPDate.format(now)
            }
            head.fields.append(name: "Date", value: dateText)
        }
        try session.connection.startResponse(head, bodyLength: bodyLength)
        flushLater(exchange.connection, session)
    }

    /// Adds body bytes. Returns false when output is piling up: stop
    /// writing until `responseWritable`. The bytes are always taken.
    @discardableResult
    public func writeBody(_ exchange: HTTPExchange, _ bytes: Span<UInt8>) throws(HTTPError) -> Bool {
        let session = try current(exchange)
        try session.connection.writeBody(bytes)
        flushLater(exchange.connection, session)
        if session.connection.outputCount >= configuration.outputHighWater {
            session.handlerWaitsForRoom = true
            return false
        }
        return true
    }

    /// Ends the response.
    public func finishResponse(_ exchange: HTTPExchange, trailers: HTTPFields) throws(HTTPError) {
        let session = try current(exchange)
        try session.connection.finishResponse(trailers: trailers, now: clock.now())
        statistics.responses += 1
        session.exchangeOpen = false
        session.handlerWaitsForRoom = false
        process(exchange.connection, session)
    }

    /// Whether `writeBody` would take more without piling up output.
    public func canWrite(_ exchange: HTTPExchange) -> Bool {
        guard let session = sessions[exchange.connection], session.exchange == exchange.number else { return false }
        return session.connection.outputCount < configuration.outputHighWater
    }

    /// Abandons the exchange: the connection is reset.
    public func abort(_ exchange: HTTPExchange) {
        guard let session = sessions[exchange.connection], session.exchange == exchange.number, !session.closed else { return }
        session.closed = true
        stack.abort(exchange.connection)
    }

    private func current(_ exchange: HTTPExchange) throws(HTTPError) -> ServerSession {
        guard let session = sessions[exchange.connection], session.exchange == exchange.number, !session.closed else {
            throw .misuse("\(exchange) is not a current exchange")
        }
        return session
    }

    // MARK: TCPHandler

    public func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {
        guard sessions.count < configuration.maximumConnections else {
            statistics.connectionsRejected += 1
            stack.abort(connection)
            return
        }
        adopt(connection)
    }

    private func adopt(_ connection: ConnectionID) {
        statistics.connectionsAccepted += 1
        statistics.connectionsOpen += 1
        let session = ServerSession(HTTPServerConnection(configuration: configuration.connection, now: clock.now()))
        sessions[connection] = session
        rearm(connection, session)
    }

    public func connectionEstablished(_ connection: ConnectionID) {}

    public func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {
        guard let session = sessions[connection], !session.closed else { return }
        session.connection.receive(bytes, now: clock.now())
        process(connection, session)
    }

    public func endOfStream(on connection: ConnectionID) {
        guard let session = sessions[connection], !session.closed else { return }
        session.connection.receiveEnd()
        process(connection, session)
    }

    public func writable(_ connection: ConnectionID) {
        guard let session = sessions[connection], !session.closed else { return }
        process(connection, session)
        if session.handlerWaitsForRoom, session.connection.outputCount < configuration.outputHighWater / 2 {
            session.handlerWaitsForRoom = false
            handler.responseWritable(HTTPExchange(connection: connection, number: session.exchange))
        }
    }

    public func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {
        guard let session = sessions.removeValue(forKey: connection) else { return }
        statistics.connectionsOpen -= 1
        connectionTimers.cancel(&session.timer, on: timers)
        let inProgress = session.exchangeOpen
        session.closed = true
        if inProgress {
            statistics.aborted += 1
            handler.exchangeAborted(HTTPExchange(connection: connection, number: session.exchange), error: .connectionClosed(reason))
        }
    }

    // MARK: TimerHandler

    public func timerFired(_ id: TimerID, now: Instant) {
        guard let connection = connectionTimers.fired(id), let session = sessions[connection] else { return }
        session.timer = ConnectionTimers.Slot()
        if let deadline = session.connection.nextDeadline, deadline <= now {
            session.connection.timerFired(now: now)
        }
        process(connection, session)
    }

    // MARK: Driving the connection

    /// Runs the connection's events, then sends, pauses or closes.
    private func process(_ connection: ConnectionID, _ session: ServerSession) {
        guard !session.processing else { return }
        session.processing = true
        defer { session.processing = false }
        while !session.closed, let event = session.connection.nextEvent(now: clock.now()) {
            let exchange = HTTPExchange(connection: connection, number: session.exchange)
            switch event {
            case .request(let head):
                session.exchange += 1
                session.exchangeOpen = true
                statistics.requests += 1
                handler.requestReceived(head, exchange: HTTPExchange(connection: connection, number: session.exchange))
            case .body(let bytes):
                handler.bodyReceived(bytes.span, exchange: exchange)
            case .end(let trailers):
                handler.requestEnded(exchange, trailers: trailers)
            case .upgraded(let leftover):
                flush(connection, session)
                session.closed = true
                sessions[connection] = nil
                statistics.connectionsOpen -= 1
                connectionTimers.cancel(&session.timer, on: timers)
                handler.connectionUpgraded(connection, exchange: exchange, leftover: leftover)
                return
            case .failed(let error):
                if error.status != nil && error != .headerTimeout { statistics.badRequests += 1 }
                switch error {
                case .headerTimeout, .bodyTimeout: statistics.timeouts += 1
                default: break
                }
                if session.exchangeOpen {
                    session.exchangeOpen = false
                    statistics.aborted += 1
                    handler.exchangeAborted(exchange, error: error)
                }
            }
            flush(connection, session)
        }
        flush(connection, session)
    }

    /// Flushes now unless the connection is being processed (which
    /// flushes when it is done).
    private func flushLater(_ connection: ConnectionID, _ session: ServerSession) {
        if !session.processing { flush(connection, session) }
    }

    private func flush(_ connection: ConnectionID, _ session: ServerSession) {
        guard !session.closed else { return }
        do throws(DeviceError) {
            try session.connection.send(on: connection, through: stack)
        } catch {
            session.closed = true
            stack.abort(connection)
            return
        }
        if session.connection.shouldClose {
            session.closed = true
            if session.connection.abortRequested { stack.abort(connection) } else { stack.close(connection) }
            return
        }
        let wants = session.connection.wantsInput
        if wants && session.paused {
            session.paused = false
            stack.resumeReading(connection)
        } else if !wants && !session.paused {
            session.paused = true
            stack.pauseReading(connection)
        }
        rearm(connection, session)
    }

    /// Keeps the connection's timer at or before its next deadline.
    private func rearm(_ connection: ConnectionID, _ session: ServerSession) {
        guard let deadline = session.connection.nextDeadline else { return }
        connectionTimers.arm(&session.timer, at: deadline, for: connection, on: timers, handler: self)
    }
}
