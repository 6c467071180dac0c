import MirageDevices
import MirageHTTP
import Testing

/// A stack whose connections write into arrays, with a settable send
/// capacity (for back-pressure).
final class TestStack: Stack {
    var localAddresses: [IPAddress] { [.v4(.loopback)] }
    var written: [ConnectionID: [UInt8]] = [:]
    var capacity = Int.max
    var closed: [ConnectionID] = []
    var aborted: [ConnectionID] = []
    var paused: Set<ConnectionID> = []

    func listen(port: UInt16, address: IPAddress?, backlog: Int, handler: any TCPHandler) throws(DeviceError) -> ListenerID { ListenerID(rawValue: 1) }
    func localEndpoint(of listener: ListenerID) -> Endpoint? { nil }
    func closeListener(_ listener: ListenerID) {}
    func connect(to remote: Endpoint, timeout: Interval?, handler: any TCPHandler) throws(DeviceError) -> ConnectionID { throw .unknownHandle }
    func endpoints(of connection: ConnectionID) -> (local: Endpoint, remote: Endpoint)? { nil }
    func setHandler(_ handler: any TCPHandler, for connection: ConnectionID) throws(DeviceError) {}
    func write(_ bytes: Span<UInt8>, on connection: ConnectionID) throws(DeviceError) -> Int {
        let n = min(bytes.count, capacity)
        capacity -= n
        written[connection, default: []].append(span: bytes.extracting(0..<n))
        return n
    }
    func pauseReading(_ connection: ConnectionID) { paused.insert(connection) }
    func resumeReading(_ connection: ConnectionID) { paused.remove(connection) }
    func shutdownWrite(_ connection: ConnectionID) {}
    func close(_ connection: ConnectionID) { closed.append(connection) }
    func abort(_ connection: ConnectionID) { aborted.append(connection) }
    func setNoDelay(_ noDelay: Bool, for connection: ConnectionID) throws(DeviceError) {}
    func setKeepAlive(_ idle: Interval?, for connection: ConnectionID) throws(DeviceError) {}
    func statistics(of connection: ConnectionID) -> ConnectionStatistics? { nil }
    func bindUDP(port: UInt16, address: IPAddress?, handler: any UDPHandler) throws(DeviceError) -> UDPSocketID { throw .unknownHandle }
    func localEndpoint(of socket: UDPSocketID) -> Endpoint? { nil }
    func send(_ payload: Span<UInt8>, to destination: Endpoint, from socket: UDPSocketID) throws(DeviceError) {}
    func closeUDP(_ socket: UDPSocketID) {}

    func take(_ c: ConnectionID) -> String {
        defer { written[c] = nil }
        return text(written[c] ?? [])
    }
}

/// A handler that answers only once the request body is complete, and
/// records what it hears.
final class UploadHandler: HTTPServerHandler {
    weak var server: HTTPServer<TestStack>?
    var bodies: [HTTPExchange: [UInt8]] = [:]
    var aborted: [(HTTPExchange, HTTPError)] = []

    func requestReceived(_ head: HTTPRequestHead, exchange: HTTPExchange) { bodies[exchange] = [] }
    func bodyReceived(_ bytes: Span<UInt8>, exchange: HTTPExchange) { bodies[exchange]?.append(span: bytes) }
    func requestEnded(_ exchange: HTTPExchange, trailers: HTTPFields) {
        let n = bodies[exchange]?.count ?? 0
        try? server?.respond(exchange, status: .ok, body: bytes("got \(n)"))
    }
    func exchangeAborted(_ exchange: HTTPExchange, error: HTTPError) { aborted.append((exchange, error)) }
    func connectionUpgraded(_ connection: ConnectionID, exchange: HTTPExchange, leftover: [UInt8]) {}
}

@Suite("HTTPServer over a stack")
struct ServerTests {
    let c = ConnectionID(rawValue: 7)

    @Test("a request answered after its body; then a malformed body tells the handler the exchange is aborted")
    func abortedOnMalformedBody() {
        let stack = TestStack()
        let clock = ManualClock()
        let handler = UploadHandler()
        let server = HTTPServer(stack: stack, handler: handler, timers: ManualTimerScheduler(clock: clock), clock: clock, wallClock: nil)
        handler.server = server
        server.connectionAccepted(c, listener: ListenerID(rawValue: 1))
        server.received(bytes("POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc").span, on: c)
        #expect(stack.take(c) == "HTTP/1.1 200 OK\r\nServer: MirageSwift\r\nContent-Length: 5\r\n\r\ngot 3")
        server.received(bytes("POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\nq\r\n").span, on: c)
        #expect(handler.aborted.count == 1)
        #expect(handler.aborted.first?.0 == HTTPExchange(connection: c, number: 2))
        #expect(handler.aborted.first?.1 == .invalidChunkSize)
        #expect(stack.take(c).hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(stack.closed == [c])
        server.connectionClosed(c, reason: .normal)
        #expect(handler.aborted.count == 1, "told once")
        #expect(server.statistics.aborted == 1 && server.statistics.badRequests == 1 && server.statistics.responses == 1)
    }

    @Test("a connection closing while the handler waits for the body aborts the exchange")
    func abortedOnClose() {
        let stack = TestStack()
        let clock = ManualClock()
        let handler = UploadHandler()
        let server = HTTPServer(stack: stack, handler: handler, timers: ManualTimerScheduler(clock: clock), clock: clock, wallClock: nil)
        handler.server = server
        server.connectionAccepted(c, listener: ListenerID(rawValue: 1))
        server.received(bytes("POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\nabc").span, on: c)
        server.connectionClosed(c, reason: .reset)
        #expect(handler.aborted.count == 1)
        #expect(handler.aborted.first?.1 == .connectionClosed(.reset))
    }

    @Test("file handler behind the server: back-pressure through the stack, exact bytes, Date from the wall clock")
    func fileServing() throws {
        let stack = TestStack()
        let clock = ManualClock()
        let data: [UInt8] = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let files = HTTPFileHandler(store: MemoryKeyValueStore(["f.bin": data]))
        var configuration = HTTPServer<TestStack>.Configuration()
        configuration.outputHighWater = 100_000
        let server = HTTPServer(stack: stack, handler: files, timers: ManualTimerScheduler(clock: clock), clock: clock, wallClock: clock,
                                configuration: configuration)
        files.responder = server
        files.chunkSize = 64 * 1024
        stack.capacity = 10_000
        server.connectionAccepted(c, listener: ListenerID(rawValue: 1))
        server.received(bytes("GET /f.bin HTTP/1.1\r\nHost: h\r\n\r\n").span, on: c)
        var received = stack.written[c] ?? []
        stack.written[c] = nil
        var rounds = 0
        while rounds < 1000 {
            stack.capacity = 10_000
            server.writable(c)
            let more = stack.written[c] ?? []
            stack.written[c] = nil
            received += more
            rounds += 1
            if more.isEmpty { break }
        }
        let text = String(decoding: received.prefix(400), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\nETag: \""))
        #expect(text.contains("\r\nServer: MirageSwift\r\nDate: Tue, 14 Nov 2023 22:13:20 GMT\r\nContent-Length: 300000\r\n\r\n"))
        let headEnd = try #require(received.indices.first { i in i + 3 < received.count && received[i..<(i + 4)].elementsEqual([13, 10, 13, 10]) })
        #expect(Array(received[(headEnd + 4)...]) == data)
        #expect(rounds > 20, "the transfer went through back-pressure")
        #expect(stack.closed.isEmpty && stack.aborted.isEmpty)
    }
}
