import MirageDevices
import MirageHTTP
import Testing

/// Bytes that differ from position to position, so a reordered, lost or
/// repeated piece shows.
func pattern(_ count: Int, seed: Int = 0) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: ($0 &+ seed) &* 31 &+ ($0 >> 9)) }
}

/// A server application for the tests, by path:
/// - `/hello`: "hello" with a Content-Length once the request is read;
/// - `/echo`: a chunked response started at once, echoing the body as it
///   arrives, with an `X-Echo-Length` trailer;
/// - `/collect`: the body's length and bytes, once it is complete;
/// - `/big?n=N`: N pattern bytes, written in pieces as back-pressure allows;
/// - `/silent`: never answers.
final class TestServerApp: HTTPServerHandler {
    var server: HTTPServer<PipeStack>?
    var paths: [String] = []
    var writableEvents = 0
    var aborted = 0
    private var echoed: [HTTPExchange: Int] = [:]
    private var collected: [HTTPExchange: [UInt8]] = [:]
    private var big: [HTTPExchange: (sent: Int, total: Int)] = [:]
    private var bigData: [UInt8] = []
    private var kinds: [HTTPExchange: String] = [:]

    func requestReceived(_ head: HTTPRequestHead, exchange: HTTPExchange) {
        let path = String(head.path)
        paths.append(path)
        kinds[exchange] = path
        if path == "/echo" {
            try? server?.startResponse(exchange, head: HTTPResponseHead(status: .ok), bodyLength: .streamed)
            echoed[exchange] = 0
        }
        if path == "/big", let q = head.query, q.hasPrefix("n="), let n = Int(q.dropFirst(2)) {
            big[exchange] = (0, n)
        }
    }

    func bodyReceived(_ bytes: Span<UInt8>, exchange: HTTPExchange) {
        switch kinds[exchange] {
        case "/echo":
            echoed[exchange, default: 0] += bytes.count
            _ = try? server?.writeBody(exchange, bytes)
        case "/collect":
            collected[exchange, default: []].append(span: bytes)
        default: break
        }
    }

    func requestEnded(_ exchange: HTTPExchange, trailers: HTTPFields) {
        guard let server else { return }
        switch kinds[exchange] {
        case "/hello":
            try? server.respond(exchange, status: .ok, fields: HTTPFields([("Content-Type", "text/plain")]), body: Array("hello".utf8))
        case "/echo":
            let n = echoed[exchange] ?? 0
            try? server.finishResponse(exchange, trailers: HTTPFields([("X-Echo-Length", String(n))]))
        case "/collect":
            let body = collected[exchange] ?? []
            try? server.respond(exchange, status: .ok, fields: HTTPFields([("X-Length", String(body.count))]), body: body)
        case "/big":
            guard let (_, total) = big[exchange] else { return }
            try? server.startResponse(exchange, head: HTTPResponseHead(status: .ok), bodyLength: .known(total))
            pump(exchange)
        default: break
        }
    }

    private func pump(_ exchange: HTTPExchange) {
        guard let server, var state = big[exchange] else { return }
        if bigData.count != state.total { bigData = pattern(state.total) }
        let data = bigData
        while state.sent < state.total {
            let n = min(16 * 1024, state.total - state.sent)
            let more = (try? server.writeBody(exchange, data[state.sent..<(state.sent + n)].span)) ?? false
            state.sent += n
            if !more { break }
        }
        big[exchange] = state
        if state.sent == state.total {
            big[exchange] = nil
            try? server.finishResponse(exchange, trailers: HTTPFields())
        }
    }

    func responseWritable(_ exchange: HTTPExchange) {
        writableEvents += 1
        pump(exchange)
    }

    func exchangeAborted(_ exchange: HTTPExchange, error: HTTPError) { aborted += 1 }

    func connectionUpgraded(_ connection: ConnectionID, exchange: HTTPExchange, leftover: [UInt8]) {}
}

/// A client application recording everything per request.
final class TestClientApp: HTTPClientHandler {
    var heads: [HTTPClientRequestID: HTTPResponseHead] = [:]
    var bodies: [HTTPClientRequestID: [UInt8]] = [:]
    var trailers: [HTTPClientRequestID: HTTPFields] = [:]
    var failures: [HTTPClientRequestID: HTTPError] = [:]
    var informational: [HTTPClientRequestID: [Int]] = [:]
    var order: [HTTPClientRequestID] = []
    var writableEvents = 0
    /// Pause a response after this many bytes since the last resume.
    var pauseEvery: Int?
    var sinceResume: [HTTPClientRequestID: Int] = [:]
    var paused: Set<HTTPClientRequestID> = []
    var pauses = 0
    var onEnd: ((HTTPClientRequestID) -> Void)?
    var onWritable: ((HTTPClientRequestID) -> Void)?
    var client: HTTPClient<PipeStack>?

    func responseReceived(_ head: HTTPResponseHead, request: HTTPClientRequestID) { heads[request] = head }

    func bodyReceived(_ bytes: Span<UInt8>, request: HTTPClientRequestID) {
        #expect(!paused.contains(request), "body delivered while paused")
        bodies[request, default: []].append(span: bytes)
        if let every = pauseEvery {
            sinceResume[request, default: 0] += bytes.count
            if sinceResume[request, default: 0] >= every {
                sinceResume[request] = 0
                paused.insert(request)
                pauses += 1
                client?.pauseResponse(request)
            }
        }
    }

    func responseEnded(_ request: HTTPClientRequestID, trailers: HTTPFields) {
        self.trailers[request] = trailers
        order.append(request)
        onEnd?(request)
    }

    func requestFailed(_ request: HTTPClientRequestID, error: HTTPError) { failures[request] = error }

    func requestWritable(_ request: HTTPClientRequestID) {
        writableEvents += 1
        onWritable?(request)
    }

    func informationalReceived(_ head: HTTPResponseHead, request: HTTPClientRequestID) {
        informational[request, default: []].append(head.status.code)
    }

    func resumeAll() {
        for id in paused { client?.resumeResponse(id) }
        paused.removeAll()
    }
}

/// A server and a client on one in-memory stack.
final class ClientServerHarness {
    let world: PipeWorld
    let serverApp = TestServerApp()
    let clientApp = TestClientApp()
    let server: HTTPServer<PipeStack>
    let client: HTTPClient<PipeStack>
    let endpoint: Endpoint

    init(client clientConfiguration: HTTPClient<PipeStack>.Configuration = .init(),
         server serverConfiguration: HTTPServer<PipeStack>.Configuration = .init(),
         sendBufferSize: Int = 16 * 1024, segmentSize: Int = 1460) throws {
        world = PipeWorld(sendBufferSize: sendBufferSize, segmentSize: segmentSize)
        server = HTTPServer(stack: world.stack, handler: serverApp, timers: world.timers, clock: world.clock,
                            wallClock: nil, configuration: serverConfiguration)
        serverApp.server = server
        let listener = try server.listen(port: 80)
        endpoint = try #require(server.localEndpoint(of: listener))
        client = HTTPClient(stack: world.stack, timers: world.timers, clock: world.clock, configuration: clientConfiguration)
        clientApp.client = client
    }

    @discardableResult
    func get(_ target: String, method: HTTPMethod = .get, body: HTTPClientBody = .none,
             fields: HTTPFields = HTTPFields()) throws -> HTTPClientRequestID {
        try client.request(HTTPRequestHead(method: method, target: target, fields: fields), body: body, to: endpoint, handler: clientApp)
    }

    func text(_ id: HTTPClientRequestID) -> String { String(decoding: clientApp.bodies[id] ?? [], as: UTF8.self) }
}

@Suite struct HTTPClientServerTests {
    @Test func keepAliveReuse() throws {
        let h = try ClientServerHarness()
        let first = try h.get("/hello")
        h.world.settle()
        #expect(h.clientApp.heads[first]?.status == .ok)
        #expect(h.text(first) == "hello")
        #expect(h.client.idleConnectionCount == 1)
        let second = try h.get("/hello")
        h.world.settle()
        #expect(h.text(second) == "hello")
        #expect(h.client.statistics.connectionsOpened == 1)
        #expect(h.client.statistics.connectionsReused == 1)
        #expect(h.client.statistics.responses == 2)
        #expect(h.server.statistics.connectionsAccepted == 1)
        #expect(h.clientApp.failures.isEmpty)
        #expect(!h.world.stack.reentered)
    }

    @Test func requestFromInsideResponseEndedReusesTheConnection() throws {
        let h = try ClientServerHarness()
        var remaining = 4
        h.clientApp.onEnd = { _ in
            remaining -= 1
            if remaining > 0 { _ = try? h.get("/hello") }
        }
        try h.get("/hello")
        h.world.settle()
        #expect(remaining == 0)
        #expect(h.clientApp.order.count == 4)
        #expect(h.client.statistics.connectionsOpened == 1)
        #expect(h.client.statistics.connectionsReused == 3)
    }

    @Test func hostIsSetFromTheEndpoint() throws {
        let h = try ClientServerHarness()
        final class HostCheck: HTTPServerHandler {
            var host: String?
            var server: HTTPServer<PipeStack>?
            func requestReceived(_ head: HTTPRequestHead, exchange: HTTPExchange) {
                host = head.fields["Host"]
                try? server?.respond(exchange, status: .noContent)
            }
            func connectionUpgraded(_ connection: ConnectionID, exchange: HTTPExchange, leftover: [UInt8]) {}
        }
        let check = HostCheck()
        let server = HTTPServer(stack: h.world.stack, handler: check, timers: h.world.timers, clock: h.world.clock, wallClock: nil)
        check.server = server
        let listener = try server.listen(port: 8080)
        let endpoint = try #require(server.localEndpoint(of: listener))
        let id = try h.client.request(HTTPRequestHead(method: .get, target: "/"), to: endpoint, handler: h.clientApp)
        h.world.settle()
        #expect(h.clientApp.heads[id]?.status == .noContent)
        #expect(check.host == "10.0.0.1:8080")
        try h.get("/hello")
        h.world.settle()
        #expect(h.serverApp.paths == ["/hello"])
    }

    @Test func chunkedUploadOfOneMegabyteEchoed() throws {
        var configuration = HTTPClient<PipeStack>.Configuration()
        configuration.outputHighWater = 64 * 1024
        let h = try ClientServerHarness(client: configuration)
        // Warm up, so the upload goes over an established (reused) connection.
        try h.get("/hello")
        h.world.settle()
        let data = pattern(1 << 20)
        var offset = 0
        var id = HTTPClientRequestID(rawValue: 0)
        func pump() {
            while offset < data.count {
                let n = min(8 * 1024, data.count - offset)
                let more = try! h.client.writeBody(id, data[offset..<(offset + n)].span)
                offset += n
                if !more { return }
            }
            try! h.client.finishBody(id, trailers: HTTPFields([("X-Sent", String(data.count))]))
        }
        id = try h.get("/echo", method: .put, body: .streamed)
        h.clientApp.onWritable = { _ in pump() }
        pump()
        h.world.settle()
        #expect(h.clientApp.failures.isEmpty)
        #expect(h.clientApp.heads[id]?.status == .ok)
        #expect(h.clientApp.bodies[id] == data)
        #expect(h.clientApp.trailers[id]?["X-Echo-Length"] == String(data.count))
        // Back-pressure happened on the way: short writes and writable events.
        #expect(h.world.stack.shortWrites > 0)
        #expect(h.clientApp.writableEvents >= 8)
        #expect(h.client.statistics.connectionsReused == 1)
        #expect(h.client.idleConnectionCount == 1)
        #expect(!h.world.stack.reentered)
    }

    @Test func streamedResponseOfOneMegabyteWithBackPressure() throws {
        var serverConfiguration = HTTPServer<PipeStack>.Configuration()
        serverConfiguration.outputHighWater = 32 * 1024
        let h = try ClientServerHarness(server: serverConfiguration, segmentSize: 1000)
        h.clientApp.pauseEvery = 64 * 1024
        let n = 1 << 20
        let id = try h.get("/big?n=\(n)")
        var rounds = 0
        while h.clientApp.order.isEmpty && rounds < 1000 {
            h.world.settle()
            #expect(h.world.stack.connections.values.contains { $0.paused } || !h.clientApp.order.isEmpty || h.clientApp.paused.isEmpty)
            h.clientApp.resumeAll()
            rounds += 1
        }
        #expect(h.clientApp.bodies[id] == pattern(n))
        #expect(h.clientApp.pauses >= 15)
        #expect(h.world.stack.pauseCalls >= 15)
        #expect(h.serverApp.writableEvents > 0)
        #expect(h.world.stack.shortWrites > 0)
        #expect(h.client.idleConnectionCount == 1)
        #expect(!h.world.stack.reentered)
    }

    @Test func expectContinueWithTheServer() throws {
        let h = try ClientServerHarness()
        let body = pattern(3000)
        let id = try h.get("/collect", method: .put, body: .bytes(body), fields: HTTPFields([("Expect", "100-continue")]))
        h.world.settle()
        #expect(h.clientApp.informational[id] == [100])
        #expect(h.clientApp.heads[id]?.fields["X-Length"] == "3000")
        #expect(h.clientApp.bodies[id] == body)
        #expect(h.client.idleConnectionCount == 1)
    }

    @Test func serverClosingAnIdlePooledConnectionIsRetried() throws {
        var serverConfiguration = HTTPServer<PipeStack>.Configuration()
        serverConfiguration.connection.idleTimeout = .seconds(5)
        let h = try ClientServerHarness(server: serverConfiguration)
        try h.get("/hello")
        h.world.settle()
        #expect(h.client.idleConnectionCount == 1)
        // The server's idle timeout fires and it closes; the client sends
        // before the FIN reaches it.
        h.world.timers.run(until: h.world.clock.now() + .seconds(6))
        let second = try h.get("/hello")
        #expect(h.client.statistics.connectionsReused == 1)
        h.world.settle()
        #expect(h.clientApp.failures.isEmpty)
        #expect(h.text(second) == "hello")
        #expect(h.client.statistics.retries == 1)
        #expect(h.client.statistics.connectionsOpened == 2)
        #expect(h.server.statistics.connectionsAccepted == 2)
    }

    @Test func nonIdempotentRequestIsNotRetried() throws {
        var serverConfiguration = HTTPServer<PipeStack>.Configuration()
        serverConfiguration.connection.idleTimeout = .seconds(5)
        let h = try ClientServerHarness(server: serverConfiguration)
        try h.get("/hello")
        h.world.settle()
        h.world.timers.run(until: h.world.clock.now() + .seconds(6))
        let post = try h.get("/collect", method: .post, body: .bytes(Array("x".utf8)))
        h.world.settle()
        #expect(h.clientApp.failures[post] == .connectionClosed(.reset))
        #expect(h.client.statistics.retries == 0)
        #expect(h.client.statistics.failures == 1)
    }

    @Test func idleConnectionClosedByTheServerLeavesThePool() throws {
        var serverConfiguration = HTTPServer<PipeStack>.Configuration()
        serverConfiguration.connection.idleTimeout = .seconds(5)
        let h = try ClientServerHarness(server: serverConfiguration)
        try h.get("/hello")
        h.world.advance(by: .seconds(6))
        #expect(h.client.idleConnectionCount == 0)
        #expect(h.client.statistics.idleConnectionsClosed == 1)
        #expect(h.client.statistics.connectionsOpen == 0)
        let next = try h.get("/hello")
        h.world.settle()
        #expect(h.text(next) == "hello")
        #expect(h.client.statistics.retries == 0)
        #expect(h.client.statistics.connectionsOpened == 2)
    }

    @Test func responseHeaderTimeout() throws {
        var configuration = HTTPClient<PipeStack>.Configuration()
        configuration.connection.responseHeaderTimeout = .seconds(5)
        let h = try ClientServerHarness(client: configuration)
        let id = try h.get("/silent")
        h.world.advance(by: .seconds(4))
        #expect(h.clientApp.failures.isEmpty)
        h.world.advance(by: .seconds(2))
        #expect(h.clientApp.failures[id] == .headerTimeout)
        #expect(h.client.statistics.timeouts == 1)
        #expect(h.client.statistics.connectionsOpen == 0)
        #expect(h.serverApp.aborted == 1)
    }

    @Test func keepAliveTimeoutClosesIdleConnections() throws {
        var configuration = HTTPClient<PipeStack>.Configuration()
        configuration.connection.keepAliveTimeout = .seconds(2)
        let h = try ClientServerHarness(client: configuration)
        try h.get("/hello")
        h.world.settle()
        #expect(h.client.idleConnectionCount == 1)
        h.world.advance(by: .seconds(3))
        #expect(h.client.idleConnectionCount == 0)
        #expect(h.client.statistics.idleConnectionsClosed == 1)
        #expect(h.server.statistics.connectionsOpen == 0)
    }

    @Test func requestsQueueBehindABusyEndpoint() throws {
        var configuration = HTTPClient<PipeStack>.Configuration()
        configuration.maximumConnectionsPerEndpoint = 1
        configuration.maximumQueuedRequests = 2
        let h = try ClientServerHarness(client: configuration)
        let ids = try (0..<3).map { _ in try h.get("/hello") }
        #expect(throws: HTTPError.device(.resourceExhausted("HTTP client request queue (2)"))) { try h.get("/hello") }
        h.world.settle()
        #expect(h.clientApp.order == ids)
        #expect(ids.allSatisfy { h.text($0) == "hello" })
        #expect(h.client.statistics.connectionsOpened == 1)
        #expect(h.client.statistics.queued == 2)
        #expect(h.client.statistics.queueRejections == 1)
        #expect(h.client.statistics.connectionsReused == 2)
    }

    @Test func idleLimitPerEndpoint() throws {
        var configuration = HTTPClient<PipeStack>.Configuration()
        configuration.maximumIdleConnectionsPerEndpoint = 2
        let h = try ClientServerHarness(client: configuration)
        for _ in 0..<4 { try h.get("/hello") }
        h.world.settle()
        #expect(h.client.statistics.connectionsOpened == 4)
        #expect(h.client.idleConnectionCount == 2)
        #expect(h.client.statistics.idleConnectionsClosed == 2)
        #expect(h.server.statistics.connectionsOpen == 2)
    }

    @Test func cancelAbortsTheConnection() throws {
        let h = try ClientServerHarness()
        let id = try h.get("/silent")
        h.world.settle()
        h.client.cancel(id)
        h.world.settle()
        #expect(h.clientApp.failures.isEmpty)
        #expect(h.client.statistics.cancelled == 1)
        #expect(h.client.statistics.connectionsOpen == 0)
        #expect(h.server.statistics.connectionsOpen == 0)
        let next = try h.get("/hello")
        h.world.settle()
        #expect(h.text(next) == "hello")
    }

    @Test func cancelAQueuedRequest() throws {
        var configuration = HTTPClient<PipeStack>.Configuration()
        configuration.maximumConnectionsPerEndpoint = 1
        let h = try ClientServerHarness(client: configuration)
        let first = try h.get("/hello")
        let second = try h.get("/hello")
        h.client.cancel(second)
        h.world.settle()
        #expect(h.clientApp.order == [first])
        #expect(h.serverApp.paths == ["/hello"])
    }

    @Test func connectionRefused() throws {
        let h = try ClientServerHarness()
        let id = try h.client.request(HTTPRequestHead(method: .get, target: "/"), to: Endpoint(h.endpoint.address, 81), handler: h.clientApp)
        h.world.settle()
        #expect(h.clientApp.failures[id] == .connectionClosed(.refused))
        #expect(h.client.statistics.failures == 1)
        #expect(h.client.statistics.connectionsOpen == 0)
    }

    @Test func requestOnAGivenConnection() throws {
        let h = try ClientServerHarness()
        final class Opener: TCPHandler {
            var established: ConnectionID?
            func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {}
            func connectionEstablished(_ connection: ConnectionID) { established = connection }
            func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {}
            func endOfStream(on connection: ConnectionID) {}
            func writable(_ connection: ConnectionID) {}
            func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {}
        }
        let opener = Opener()
        _ = try h.world.stack.connect(to: h.endpoint, timeout: nil, handler: opener)
        h.world.settle()
        let connection = try #require(opener.established)
        let first = try h.client.request(HTTPRequestHead(method: .get, target: "/hello"), on: connection, handler: h.clientApp)
        #expect(throws: HTTPError.self) {
            try h.client.request(HTTPRequestHead(method: .get, target: "/hello"), on: connection, handler: h.clientApp)
        }
        h.world.settle()
        let second = try h.client.request(HTTPRequestHead(method: .get, target: "/hello"), on: connection, handler: h.clientApp)
        h.world.settle()
        #expect(h.text(first) == "hello" && h.text(second) == "hello")
        #expect(h.client.statistics.connectionsOpened == 0)
        #expect(h.client.statistics.connectionsReused == 1)
        #expect(h.server.statistics.connectionsAccepted == 1)
        // Such a connection is not pooled for other requests.
        #expect(h.client.idleConnectionCount == 0)
    }

    @Test func closeDelimitedResponseToAnHTTP10Request() throws {
        let h = try ClientServerHarness()
        // The server answers an HTTP/1.0 client's streamed response without
        // chunking: the body ends when the connection does.
        let id = try h.client.request(HTTPRequestHead(method: .get, target: "/echo", version: .http1_0), to: h.endpoint, handler: h.clientApp)
        h.world.settle()
        #expect(h.clientApp.heads[id]?.fields["Connection"] == "close")
        #expect(h.clientApp.trailers[id] != nil)
        #expect(h.clientApp.failures.isEmpty)
        #expect(h.client.idleConnectionCount == 0)
        #expect(h.client.statistics.connectionsOpen == 0)
    }

    @Test func connectionCloseIsNotPooled() throws {
        let h = try ClientServerHarness()
        let id = try h.get("/hello", fields: HTTPFields([("Connection", "close")]))
        h.world.settle()
        #expect(h.text(id) == "hello")
        #expect(h.client.idleConnectionCount == 0)
        #expect(h.client.statistics.connectionsOpen == 0)
        #expect(h.server.statistics.connectionsOpen == 0)
        #expect(h.client.statistics.idleConnectionsClosed == 0)
    }

    @Test func twoHostFieldsAreRefused() throws {
        let h = try ClientServerHarness()
        #expect(throws: HTTPError.self) { try h.get("/", fields: HTTPFields([("Host", "a"), ("Host", "b")])) }
        #expect(h.client.statistics.requests == 0)
    }

    @Test func streamedBodyWrittenBeforeTheConnectionIsUp() throws {
        let h = try ClientServerHarness()
        let id = try h.get("/collect", method: .post, body: .streamed)
        try h.client.writeBody(id, Array("abc".utf8).span)
        try h.client.writeBody(id, Array("def".utf8).span)
        try h.client.finishBody(id)
        h.world.settle()
        #expect(h.text(id) == "abcdef")
        #expect(h.clientApp.heads[id]?.fields["X-Length"] == "6")
    }
}
