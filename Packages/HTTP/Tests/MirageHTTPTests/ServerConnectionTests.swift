import MirageDevices
import MirageHTTP
import Testing

@Suite("Server connection state machine")
struct ServerConnectionTests {
    typealias Seen = ConnectionDriver.Seen

    static let getA = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
    static let getB = "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"

    @Test("keep-alive: two requests one after the other on one connection")
    func keepAlive() throws {
        var d = ConnectionDriver()
        #expect(d.connection.wantsInput)
        d.receive(Self.getA)
        #expect(d.events() == [.request("GET /a HTTP/1.1", [["Host", "h"]]), .end([])])
        #expect(d.connection.awaitsResponse)
        try d.respond(200, body: "hello")
        #expect(d.output() == "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        #expect(!d.connection.shouldClose)
        #expect(d.events().isEmpty)
        d.receive(Self.getB)
        #expect(d.events() == [.request("GET /b HTTP/1.1", [["Host", "h"]]), .end([])])
        try d.respond(404, fields: [("X-Why", "gone")])
        #expect(d.output() == "HTTP/1.1 404 Not Found\r\nX-Why: gone\r\nContent-Length: 0\r\n\r\n")
        #expect(!d.connection.shouldClose)
    }

    @Test("pipelining: the second request comes out only after the first response is finished")
    func pipelining() throws {
        var d = ConnectionDriver()
        d.receive(Self.getA + Self.getB)
        #expect(d.events() == [.request("GET /a HTTP/1.1", [["Host", "h"]]), .end([])])
        #expect(d.events().isEmpty)
        try d.connection.startResponse(HTTPResponseHead(status: .ok), bodyLength: .known(1))
        #expect(d.events().isEmpty, "not while the first response is in progress")
        try d.connection.writeBody(bytes("A").span)
        try d.connection.finishResponse(now: d.now)
        #expect(d.events() == [.request("GET /b HTTP/1.1", [["Host", "h"]]), .end([])])
        try d.respond(200, body: "B")
        #expect(d.output() == "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nAHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nB")
        #expect(!d.connection.shouldClose)
    }

    @Test("pipelined bytes beyond maximumBufferedInput stop the reading")
    func backPressure() throws {
        var configuration = HTTPServerConnection.Configuration()
        configuration.maximumBufferedInput = 50
        var d = ConnectionDriver(configuration: configuration)
        d.receive(Self.getA + Self.getB + Self.getB + Self.getB)
        #expect(d.events().count == 2)
        #expect(!d.connection.wantsInput)
        try d.respond(200)
        #expect(d.events().count == 2)
        #expect(d.connection.wantsInput == false, "still 56 bytes buffered")
        try d.respond(200)
        #expect(d.events().count == 2)
        #expect(d.connection.wantsInput)
    }

    @Test("Connection: close closes after the response")
    func connectionClose() throws {
        var d = ConnectionDriver()
        d.receive("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n" + Self.getB)
        #expect(d.events().count == 2)
        try d.respond(200, body: "x")
        #expect(!d.connection.shouldClose, "output not sent yet")
        #expect(d.output() == "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx")
        #expect(d.connection.shouldClose)
        #expect(d.events().isEmpty, "the pipelined request after close is not served")
    }

    @Test("the application's Connection: close is honoured")
    func applicationClose() throws {
        var d = ConnectionDriver()
        d.receive(Self.getA)
        _ = d.events()
        try d.respond(503, fields: [("Connection", "close")])
        #expect(d.output() == "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        #expect(d.connection.shouldClose)
    }

    @Test("HTTP/1.0: close by default, keep-alive when asked")
    func http10() throws {
        var d = ConnectionDriver()
        d.receive("GET / HTTP/1.0\r\n\r\n")
        #expect(d.events() == [.request("GET / HTTP/1.0", []), .end([])])
        try d.respond(200, body: "x")
        #expect(d.output() == "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx")
        #expect(d.connection.shouldClose)

        var k = ConnectionDriver()
        k.receive("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n")
        #expect(k.events().count == 2)
        try k.respond(200, body: "x")
        #expect(k.output() == "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\nx")
        #expect(!k.connection.shouldClose)
        #expect(k.events().count == 2)
        try k.respond(200)
        #expect(k.output().contains("Connection: close"))
        #expect(k.connection.shouldClose)
    }

    @Test("HEAD: Content-Length of the full body, no body bytes")
    func head() throws {
        var d = ConnectionDriver()
        d.receive("HEAD /f HTTP/1.1\r\nHost: h\r\n\r\n" + Self.getB)
        #expect(d.events() == [.request("HEAD /f HTTP/1.1", [["Host", "h"]]), .end([])])
        try d.respond(200, body: "0123456789")
        #expect(d.output() == "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
        #expect(d.events().count == 2)
        try d.connection.startResponse(HTTPResponseHead(status: .ok), bodyLength: .streamed)
        try d.connection.writeBody(bytes("abc").span)
        try d.connection.finishResponse(now: d.now)
        #expect(d.output() == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    }

    @Test("204 and 304: no Content-Length, no body")
    func noBodyStatuses() throws {
        var d = ConnectionDriver()
        d.receive(Self.getA + Self.getB)
        _ = d.events()
        try d.connection.startResponse(HTTPResponseHead(status: .noContent), bodyLength: .known(0))
        try d.connection.finishResponse(now: d.now)
        _ = d.events()
        try d.connection.startResponse(HTTPResponseHead(status: .notModified, fields: HTTPFields([("ETag", "\"e\"")])), bodyLength: .known(0))
        try d.connection.finishResponse(now: d.now)
        #expect(d.output() == "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\n\r\n")
    }

    @Test("Expect: 100-continue is answered when the application reads on without responding")
    func expectContinue() throws {
        var d = ConnectionDriver()
        d.receive("PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        #expect(d.events() == [.request("PUT /f HTTP/1.1", [["Host", "h"], ["Expect", "100-continue"], ["Content-Length", "5"]])])
        #expect(d.output() == "HTTP/1.1 100 Continue\r\n\r\n")
        d.receive("hello")
        #expect(d.events() == [.body(bytes("hello")), .end([])])
        try d.respond(201)
        #expect(d.output() == "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
        #expect(!d.connection.shouldClose)
    }

    @Test("Expect: 100-continue is not answered when the application responds first; then close")
    func expectContinueRefused() throws {
        var d = ConnectionDriver()
        d.receive("PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5000000\r\n\r\n")
        guard case .request? = d.connection.nextEvent(now: d.now) else { Issue.record("no request"); return }
        try d.respond(413)
        #expect(d.events().isEmpty)
        let out = d.output()
        #expect(out == "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        #expect(!out.contains("100 Continue"))
        #expect(d.connection.shouldClose)
    }

    @Test("Expect: 100-continue from an HTTP/1.0 client is ignored")
    func expectContinueHTTP10() throws {
        var d = ConnectionDriver()
        d.receive("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        _ = d.events()
        #expect(d.output().isEmpty)
    }

    @Test("an interim 103 before the final response; not sent to HTTP/1.0")
    func interimResponse() throws {
        var d = ConnectionDriver()
        d.receive(Self.getA)
        _ = d.events()
        try d.connection.startResponse(HTTPResponseHead(status: HTTPStatus(code: 103, reason: "Early Hints"), fields: HTTPFields([("Link", "</a.css>")])), bodyLength: .known(0))
        try d.respond(200)
        #expect(d.output() == "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

        var old = ConnectionDriver()
        old.receive("GET / HTTP/1.0\r\n\r\n")
        _ = old.events()
        try old.connection.startResponse(HTTPResponseHead(status: HTTPStatus(code: 103)), bodyLength: .known(0))
        #expect(old.output().isEmpty)
    }

    @Test("header timeout: 408 and close")
    func headerTimeout() {
        var d = ConnectionDriver()
        let start = d.now
        d.receive("GET / HTTP/1.1\r\nHo")
        #expect(d.events().isEmpty)
        #expect(d.connection.nextDeadline == start + .seconds(10))
        d.advance(seconds: 9)
        d.connection.timerFired(now: d.now)
        #expect(d.events().isEmpty)
        d.receive("st: h\r\n")
        d.advance(seconds: 1)
        d.connection.timerFired(now: d.now)
        #expect(d.events() == [.failed(.headerTimeout)])
        let out = d.output()
        #expect(out.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
        #expect(out.contains("\r\nConnection: close\r\n"))
        #expect(d.connection.shouldClose)
    }

    @Test("idle timeout: a quiet connection closes without a response")
    func idleTimeout() throws {
        var d = ConnectionDriver()
        #expect(d.connection.nextDeadline == d.now + .seconds(60))
        d.receive(Self.getA)
        #expect(d.events().count == 2)
        d.advance(seconds: 100)
        #expect(d.connection.nextDeadline == nil, "no timeout while the application prepares the response")
        try d.respond(200)
        _ = d.output()
        #expect(d.connection.nextDeadline == d.now + .seconds(60))
        d.advance(seconds: 59)
        d.connection.timerFired(now: d.now)
        #expect(!d.connection.shouldClose)
        d.advance(seconds: 1)
        d.connection.timerFired(now: d.now)
        #expect(d.events().isEmpty)
        #expect(d.output().isEmpty)
        #expect(d.connection.shouldClose)
    }

    @Test("a body that stops arriving times out")
    func bodyTimeout() {
        var d = ConnectionDriver()
        d.receive("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
        #expect(d.events().count == 2)
        #expect(d.connection.nextDeadline == d.now + .seconds(60))
        d.advance(seconds: 60)
        d.connection.timerFired(now: d.now)
        #expect(d.events() == [.failed(.bodyTimeout)])
        #expect(d.output().isEmpty)
        #expect(d.connection.shouldClose)
    }

    @Test("an error in the body after the response started: abort, no error response")
    func errorAfterResponseStarted() throws {
        var d = ConnectionDriver()
        d.receive("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        #expect(d.events() == [.request("POST / HTTP/1.1", [["Host", "h"], ["Transfer-Encoding", "chunked"]]), .body(bytes("abc"))])
        try d.connection.startResponse(HTTPResponseHead(status: .ok), bodyLength: .streamed)
        try d.connection.writeBody(bytes("partial").span)
        d.receive("zz\r\n")
        #expect(d.events() == [.failed(.invalidChunkSize)])
        #expect(d.connection.abortRequested)
        let out = d.output()
        #expect(!out.contains("400"))
        #expect(d.connection.shouldClose)
    }

    @Test("an error in a discarded body after a complete early response: no second response")
    func errorAfterEarlyResponse() throws {
        var d = ConnectionDriver()
        d.receive("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        _ = d.events()
        try d.respond(200, body: "done")
        d.receive("zz\r\n")
        #expect(d.events() == [.failed(.invalidChunkSize)])
        #expect(d.output() == "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")
        #expect(!d.connection.abortRequested)
        #expect(d.connection.shouldClose)
    }

    @Test("an error in a HEAD request's body: the error response has no body")
    func headErrorResponse() {
        var d = ConnectionDriver()
        d.receive("HEAD /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n")
        #expect(d.events().last == .failed(.invalidChunkSize))
        #expect(d.output() == "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 16\r\nConnection: close\r\n\r\n")
        #expect(d.connection.shouldClose)
        // After a HEAD was answered, a bad next request gets a full error response.
        var next = ConnectionDriver()
        next.receive("HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n")
        _ = next.events()
        try? next.respond(200)
        next.receive("BAD\r\n\r\n")
        #expect(next.events() == [.failed(.malformedStartLine)])
        #expect(next.output().hasSuffix("\r\n\r\n400 Bad Request\n"))
    }

    @Test("an early response: the rest of the body is discarded and the next request served")
    func earlyResponse() throws {
        var d = ConnectionDriver()
        d.receive("POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
        #expect(d.events() == [.request("POST /up HTTP/1.1", [["Host", "h"], ["Content-Length", "10"]]), .body(bytes("abc"))])
        try d.respond(403)
        #expect(d.events().isEmpty)
        d.receive("defghij" + Self.getB)
        #expect(d.events() == [.request("GET /b HTTP/1.1", [["Host", "h"]]), .end([])])
        try d.respond(200)
        #expect(d.output() == "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        #expect(!d.connection.shouldClose)
    }

    @Test("streamed response to HTTP/1.1: chunked coding, exact bytes")
    func streamedChunked() throws {
        var d = ConnectionDriver()
        d.receive(Self.getA)
        _ = d.events()
        try d.connection.startResponse(HTTPResponseHead(status: .ok, fields: HTTPFields([("Content-Length", "99"), ("Content-Type", "text/plain")])), bodyLength: .streamed)
        try d.connection.writeBody(bytes("hello").span)
        try d.connection.writeBody([UInt8]().span)
        try d.connection.writeBody(bytes(", streamed world").span)
        try d.connection.finishResponse(trailers: HTTPFields([("X-Sum", "1")]), now: d.now)
        #expect(d.output() == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\n, streamed world\r\n0\r\nX-Sum: 1\r\n\r\n")
        #expect(!d.connection.shouldClose)
    }

    @Test("streamed response to HTTP/1.0: delimited by the close")
    func streamedHTTP10() throws {
        var d = ConnectionDriver()
        d.receive("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        _ = d.events()
        try d.connection.startResponse(HTTPResponseHead(status: .ok), bodyLength: .streamed)
        try d.connection.writeBody(bytes("hello").span)
        try d.connection.writeBody(bytes(" world").span)
        try d.connection.finishResponse(now: d.now)
        #expect(d.output() == "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello world")
        #expect(d.connection.shouldClose)
        #expect(!d.connection.abortRequested)
    }

    @Test("a known-length body that falls short makes the connection abort")
    func shortBody() throws {
        var d = ConnectionDriver()
        d.receive(Self.getA)
        _ = d.events()
        try d.connection.startResponse(HTTPResponseHead(status: .ok), bodyLength: .known(10))
        try d.connection.writeBody(bytes("short").span)
        try d.connection.finishResponse(now: d.now)
        _ = d.output()
        #expect(d.connection.abortRequested)
        #expect(d.connection.shouldClose)
    }

    @Test("misuse is reported, not trapped")
    func misuse() throws {
        var d = ConnectionDriver()
        #expect(throws: HTTPError.self) { try d.connection.startResponse(HTTPResponseHead(status: .ok), bodyLength: .known(0)) }
        #expect(throws: HTTPError.self) { try d.connection.writeBody(bytes("x").span) }
        d.receive(Self.getA)
        _ = d.events()
        try d.connection.startResponse(HTTPResponseHead(status: .ok), bodyLength: .known(2))
        #expect(throws: HTTPError.self) { try d.connection.writeBody(bytes("abc").span) }
        #expect(throws: HTTPError.self) { try d.connection.startResponse(HTTPResponseHead(status: .ok), bodyLength: .known(0)) }
    }

    @Test("101 Switching Protocols hands over the bytes after the request")
    func upgrade() throws {
        var d = ConnectionDriver()
        d.receive("GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\u{1}\u{2}\u{3}")
        #expect(d.events().count == 2)
        try d.connection.startResponse(HTTPResponseHead(status: .switchingProtocols, fields: HTTPFields([("Upgrade", "websocket"), ("Connection", "Upgrade")])), bodyLength: .known(0))
        try d.connection.finishResponse(now: d.now)
        #expect(d.events().isEmpty, "not before the 101 is sent")
        #expect(d.output() == "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        #expect(d.events() == [.upgraded([1, 2, 3])])
        #expect(!d.connection.shouldClose)
        #expect(!d.connection.wantsInput)
    }

    @Test("end of input: answered requests, then close; a half head is truncated")
    func endOfInput() throws {
        var d = ConnectionDriver()
        d.receive(Self.getA)
        d.connection.receiveEnd()
        #expect(d.events().count == 2)
        try d.respond(200)
        #expect(d.events().isEmpty)
        #expect(d.output() == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        #expect(d.connection.shouldClose)

        var idle = ConnectionDriver()
        idle.connection.receiveEnd()
        #expect(idle.connection.shouldClose)

        var half = ConnectionDriver()
        half.receive("GET / HT")
        half.connection.receiveEnd()
        #expect(half.events() == [.failed(.truncatedMessage)])
        #expect(half.output().isEmpty)
        #expect(half.connection.shouldClose)
    }

    @Test("maximumRequestsPerConnection: the last response says close")
    func requestLimit() throws {
        var configuration = HTTPServerConnection.Configuration()
        configuration.maximumRequestsPerConnection = 2
        var d = ConnectionDriver(configuration: configuration)
        d.receive(Self.getA + Self.getA + Self.getA)
        #expect(d.events().count == 2)
        try d.respond(200)
        #expect(d.events().count == 2)
        try d.respond(200)
        #expect(d.events().isEmpty)
        #expect(d.output() == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        #expect(d.connection.shouldClose)
    }

    @Test("request bodies are delivered in all chunkings of a pipelined stream")
    func connectionChunkings() throws {
        let input = bytes("POST /1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4;x\r\nabcd\r\n2\r\nef\r\n0\r\nT: v\r\n\r\n"
            + "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz")
        func run(_ pieces: [Int]) throws -> ([Seen], String) {
            var d = ConnectionDriver()
            var seen: [Seen] = []
            for range in cut(input.count, pieces) {
                d.receive(Array(input[range]))
                var events = d.events()
                while !events.isEmpty {
                    for e in events {
                        // Join body pieces.
                        if case .body(let b) = e, case .body(let prev)? = seen.last { seen[seen.count - 1] = .body(prev + b) } else { seen.append(e) }
                        if case .end = e { try d.respond(200, body: "ok") }
                    }
                    events = d.events()
                }
            }
            return (seen, d.output())
        }
        let whole = try run([])
        #expect(whole.0 == [
            .request("POST /1 HTTP/1.1", [["Host", "h"], ["Transfer-Encoding", "chunked"]]), .body(bytes("abcdef")), .end([["T", "v"]]),
            .request("POST /2 HTTP/1.1", [["Host", "h"], ["Content-Length", "3"]]), .body(bytes("xyz")), .end([]),
        ])
        #expect(whole.1 == String(repeating: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", count: 2))
        for split in twoWaySplits(input.count) + [byteByByte(input.count)] {
            let o = try run(split)
            #expect(o.0 == whole.0)
            #expect(o.1 == whole.1)
        }
    }
}
