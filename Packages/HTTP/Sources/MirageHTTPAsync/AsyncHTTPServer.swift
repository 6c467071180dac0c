import MirageDevices
import MirageHTTP
import MiragePlatform

/// A whole request: the head and the body, collected (up to the server's
/// body limit) before the handler runs.
public struct HTTPRequest: Sendable {
    /// The request line and fields.
    public var head: HTTPRequestHead
    /// The body, chunked coding removed.
    public var body: [UInt8]
    /// The trailer fields of a chunked body.
    public var trailers: HTTPFields
}

/// A whole response.
public struct HTTPResponse: Sendable {
    /// The status.
    public var status: HTTPStatus
    /// Fields; Content-Length, Date and Server are added.
    public var fields: HTTPFields
    /// The body.
    public var body: [UInt8]

    /// A response.
    public init(status: HTTPStatus = .ok, fields: HTTPFields = HTTPFields(), body: [UInt8] = []) {
        self.status = status
        self.fields = fields
        self.body = body
    }

    /// A response with a text body and its content type.
    public init(status: HTTPStatus = .ok, text: String, contentType: String = "text/plain; charset=utf-8") {
        var fields = HTTPFields()
        fields.append(name: "Content-Type", value: contentType)
        self.init(status: status, fields: fields, body: Array(text.utf8))
    }
}

/// The async/await front of `HTTPServer` on Linux: an `async` function
/// answers each request. The core stays the callback `HTTPServer`; this
/// collects each request body, runs the handler as a task that prefers the
/// loop as its executor (so a handler that does not hop elsewhere runs on
/// the loop thread), and sends the response from the loop thread.
///
/// Requests on one connection are answered in order; a slow handler holds
/// up its own connection only.
public final class AsyncHTTPServer: @unchecked Sendable {
    /// The handler's type.
    public typealias Handler = @Sendable (HTTPRequest) async -> HTTPResponse

    /// The loop that drives the stack.
    public let loop: EventLoop
    /// Loop-confined.
    private let listenOnLoop: (UInt16, IPAddress?) throws(DeviceError) -> Endpoint?
    private let stopOnLoop: () -> Void
    private let statisticsOnLoop: () -> HTTPServerStatistics

    /// A server for `stack`, which `loop` drives; call on the loop thread
    /// (before `loop.run`, or from a callback).
    public init<S: Stack>(stack: S, loop: EventLoop, configuration: HTTPServerConfiguration = HTTPServerConfiguration(),
                          handler: @escaping Handler) {
        precondition(loop.inLoopThread, "create AsyncHTTPServer on its loop's thread")
        self.loop = loop
        let adapter = Adapter<S>(loop: loop, handler: handler)
        let server = HTTPServer(stack: stack, handler: adapter, timers: loop, clock: loop, wallClock: loop,
                                configuration: configuration)
        adapter.server = server
        listenOnLoop = { (port, address) throws(DeviceError) -> Endpoint? in
            server.localEndpoint(of: try server.listen(port: port, address: address))
        }
        stopOnLoop = { server.stop() }
        statisticsOnLoop = { server.statistics }
    }

    /// Listens on `port` of `address` (nil: every address); returns where.
    public func listen(port: UInt16, address: IPAddress? = nil) async throws(DeviceError) -> Endpoint? {
        let result: Result<Endpoint?, DeviceError> = await onLoop {
            do throws(DeviceError) { return .success(try self.listenOnLoop(port, address)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Stops listening and closes the connections.
    public func stop() async {
        await onLoop { self.stopOnLoop() }
    }

    /// The server's counters.
    public var statistics: HTTPServerStatistics {
        get async { await onLoop { self.statisticsOnLoop() } }
    }

    private func onLoop<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        if loop.inLoopThread { return body() }
        return await withCheckedContinuation { continuation in
            loop.execute { continuation.resume(returning: body()) }
        }
    }
}

/// The callback handler behind `AsyncHTTPServer`; loop-confined.
private final class Adapter<S: Stack>: HTTPServerHandler, @unchecked Sendable {
    let loop: EventLoop
    let handler: AsyncHTTPServer.Handler
    var server: HTTPServer<S>?
    private var requests: [HTTPExchange: HTTPRequest] = [:]

    init(loop: EventLoop, handler: @escaping AsyncHTTPServer.Handler) {
        self.loop = loop
        self.handler = handler
    }

    func requestReceived(_ head: HTTPRequestHead, exchange: HTTPExchange) {
        requests[exchange] = HTTPRequest(head: head, body: [], trailers: HTTPFields())
    }

    func bodyReceived(_ bytes: Span<UInt8>, exchange: HTTPExchange) {
        // The parser bounds the body (HTTPLimits.maximumBodySize).
        bytes.withUnsafeBufferPointer { requests[exchange]?.body.append(contentsOf: $0) }
    }

    func requestEnded(_ exchange: HTTPExchange, trailers: HTTPFields) {
        guard var request = requests[exchange] else { return }
        request.trailers = trailers
        requests[exchange] = request
        let handler = self.handler
        let loop = self.loop
        let reply = LoopConfined { (response: HTTPResponse) in self.respond(exchange, response) }
        Task(executorPreference: loop) { [request] in
            let response = await handler(request)
            if loop.inLoopThread {
                reply.body(response)
            } else {
                loop.execute { reply.body(response) }
            }
        }
    }

    private func respond(_ exchange: HTTPExchange, _ response: HTTPResponse) {
        // Gone when the connection closed meanwhile.
        guard requests.removeValue(forKey: exchange) != nil, let server else { return }
        do throws(HTTPError) {
            try server.respond(exchange, head: HTTPResponseHead(status: response.status, fields: response.fields),
                               body: response.body.span)
        } catch {
            server.abort(exchange)
        }
    }

    func exchangeAborted(_ exchange: HTTPExchange, error: HTTPError) {
        requests[exchange] = nil
    }

    func connectionUpgraded(_ connection: ConnectionID, exchange: HTTPExchange, leftover: [UInt8]) {
        // Upgrades need the callback API; the async front closes them.
        server?.stack.abort(connection)
    }
}

/// A closure called only on the loop's thread, so handing it to a task
/// that may run elsewhere is safe although what it touches is not Sendable.
private final class LoopConfined: @unchecked Sendable {
    let body: (HTTPResponse) -> Void
    init(_ body: @escaping (HTTPResponse) -> Void) { self.body = body }
}
