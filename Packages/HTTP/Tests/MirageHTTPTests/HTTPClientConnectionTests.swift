import MirageDevices
@testable import MirageHTTP
import Testing

/// What a client connection reported for one response, normalised so that
/// every chunking of the input gives the same value.
struct ClientTranscript: Equatable {
    var informational: [Int] = []
    var status: Int?
    var fields: [String] = []
    var body: [UInt8] = []
    var trailers: [String] = []
    var ended = false
    var failure: HTTPError?
    var leftover: [UInt8]?

    mutating func record(_ event: HTTPClientConnection.Event) {
        switch event {
        case .informational(let head): informational.append(head.status.code)
        case .response(let head):
            status = head.status.code
            fields = head.fields.map { "\($0.name): \($0.value)" }
        case .body(let bytes): body += bytes
        case .end(let t):
            ended = true
            trailers = t.map { "\($0.name): \($0.value)" }
        case .upgraded(let rest): leftover = rest
        case .failed(let error): failure = error
        }
    }
}

/// Every way worth trying to cut `count` bytes: whole, one byte at a time,
/// and every single cut point.
func chunkings(_ count: Int) -> [[Int]] {
    var all: [[Int]] = [[count], Array(repeating: 1, count: count)]
    if count > 1 { for cut in 1..<count { all.append([cut, count - cut]) } }
    return all
}

extension HTTPClientConnection {
    /// The output so far, consumed.
    mutating func takeOutput() -> [UInt8] {
        var out: [UInt8] = []
        withOutput { (span: Span<UInt8>) in out.append(span: span) }
        consumeOutput(outputCount)
        return out
    }

    mutating func drain(into transcript: inout ClientTranscript, now: Instant) {
        while let event = nextEvent(now: now) { transcript.record(event) }
    }
}

/// A connection with one request sent (and its output taken).
func connection(sending head: HTTPRequestHead, bodyLength: HTTPBodyLength = .known(0),
                configuration: HTTPClientConnection.Configuration = .init()) throws -> HTTPClientConnection {
    var c = HTTPClientConnection(configuration: configuration, now: .zero)
    try c.sendRequest(head, bodyLength: bodyLength, now: .zero)
    _ = c.takeOutput()
    return c
}

func get(_ target: String = "/", method: HTTPMethod = .get, fields: [(String, String)] = []) -> HTTPRequestHead {
    HTTPRequestHead(method: method, target: target, fields: HTTPFields([("Host", "example.com")] + fields))
}

/// Feeds `response` to a fresh connection that sent `head`, in every
/// chunking, and checks each transcript equals the first; returns it and
/// the connection as left by the byte-at-a-time run.
func feedAllChunkings(_ response: [UInt8], to head: HTTPRequestHead, endOfInput: Bool = false,
                      sourceLocation: SourceLocation = #_sourceLocation) throws -> (ClientTranscript, HTTPClientConnection) {
    var reference: ClientTranscript?
    var last: HTTPClientConnection?
    for cuts in chunkings(response.count) {
        var c = try connection(sending: head)
        var t = ClientTranscript()
        var offset = 0
        for n in cuts {
            c.receive(response[offset..<(offset + n)].span, now: .zero)
            c.drain(into: &t, now: .zero)
            offset += n
        }
        if endOfInput {
            c.receiveEnd()
            c.drain(into: &t, now: .zero)
        }
        if let reference {
            #expect(t == reference, "chunking \(cuts.count) pieces", sourceLocation: sourceLocation)
        } else {
            reference = t
        }
        if cuts.count == response.count { last = c }
    }
    return (reference ?? ClientTranscript(), last ?? HTTPClientConnection(now: .zero))
}

@Suite struct HTTPClientConnectionRequestTests {
    @Test func getWithoutBodyHasNoContentLength() throws {
        var c = HTTPClientConnection(now: .zero)
        try c.sendRequest(get("/index.html"), bodyLength: .known(0), now: .zero)
        #expect(c.takeOutput() == bytes("GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n"))
        #expect(c.isBusy)
        #expect(!c.isReadyForRequest)
    }

    @Test func postWithBytes() throws {
        var c = HTTPClientConnection(now: .zero)
        // The caller's Content-Length is replaced by the real one.
        let head = get("/submit", method: .post, fields: [("Content-Length", "99"), ("Content-Type", "text/plain")])
        try c.sendRequest(head, bodyLength: .known(5), now: .zero)
        try c.writeBody(bytes("hel").span)
        try c.writeBody(bytes("lo").span)
        try c.finishRequest(now: .zero)
        #expect(c.takeOutput() == bytes("POST /submit HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"))
    }

    @Test func emptyPostHasContentLengthZero() throws {
        var c = HTTPClientConnection(now: .zero)
        try c.sendRequest(get("/x", method: .post), bodyLength: .known(0), now: .zero)
        #expect(c.takeOutput() == bytes("POST /x HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n"))
        // Optional after a zero-length body.
        try c.finishRequest(now: .zero)
    }

    @Test func streamedBodyIsChunkedWithTrailers() throws {
        var c = HTTPClientConnection(now: .zero)
        try c.sendRequest(get("/up", method: .put, fields: [("Transfer-Encoding", "gzip")]), bodyLength: .streamed, now: .zero)
        try c.writeBody(bytes("hello").span)
        try c.writeBody(bytes("").span)
        try c.writeBody(Array(repeating: UInt8(ascii: "a"), count: 26).span)
        try c.finishRequest(trailers: HTTPFields([("X-Sum", "1")]), now: .zero)
        #expect(c.takeOutput() == bytes("PUT /up HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5\r\nhello\r\n1a\r\naaaaaaaaaaaaaaaaaaaaaaaaaa\r\n0\r\nX-Sum: 1\r\n\r\n"))
    }

    @Test func http10RequestWithoutHost() throws {
        var c = HTTPClientConnection(now: .zero)
        try c.sendRequest(HTTPRequestHead(method: .get, target: "/", version: .http1_0), bodyLength: .known(0), now: .zero)
        #expect(c.takeOutput() == bytes("GET / HTTP/1.0\r\n\r\n"))
    }

    @Test func misuse() throws {
        var c = HTTPClientConnection(now: .zero)
        #expect(throws: HTTPError.self) { try c.sendRequest(HTTPRequestHead(method: .get, target: "/"), bodyLength: .known(0), now: .zero) }
        #expect(throws: HTTPError.self) {
            try c.sendRequest(HTTPRequestHead(method: .put, target: "/", version: .http1_0), bodyLength: .streamed, now: .zero)
        }
        #expect(throws: HTTPError.self) { try c.writeBody(bytes("x").span) }
        try c.sendRequest(get(method: .post), bodyLength: .known(3), now: .zero)
        #expect(throws: HTTPError.self) { try c.writeBody(bytes("four").span) }
        try c.writeBody(bytes("ab").span)
        #expect(throws: HTTPError.self) { try c.finishRequest(now: .zero) }
        #expect(throws: HTTPError.self) { try c.sendRequest(get(), bodyLength: .known(0), now: .zero) }
        try c.writeBody(bytes("c").span)
        #expect(throws: HTTPError.self) { try c.finishRequest(trailers: HTTPFields([("A", "b")]), now: .zero) }
        try c.finishRequest(now: .zero)
        #expect(c.takeOutput().count > 0)
    }
}

@Suite struct HTTPClientConnectionResponseTests {
    @Test func contentLength() throws {
        let (t, c) = try feedAllChunkings(bytes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"), to: get())
        #expect(t.status == 200)
        #expect(t.fields == ["Content-Length: 5", "Content-Type: text/plain"])
        #expect(t.body == bytes("hello"))
        #expect(t.ended)
        #expect(t.failure == nil)
        #expect(c.isReusable)
        #expect(!c.shouldClose)
        #expect(!c.isBusy)
    }

    @Test func chunkedWithTrailers() throws {
        let response = bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nExpires: never\r\nX-Digest: abc\r\n\r\n")
        let (t, c) = try feedAllChunkings(response, to: get())
        #expect(t.body == bytes("Wikipedia in \r\n\r\nchunks."))
        #expect(t.trailers == ["Expires: never", "X-Digest: abc"])
        #expect(t.ended)
        #expect(c.isReusable)
    }

    @Test func closeDelimited() throws {
        let (t, c) = try feedAllChunkings(bytes("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello world"), to: get(), endOfInput: true)
        #expect(t.body == bytes("hello world"))
        #expect(t.ended)
        #expect(t.failure == nil)
        #expect(!c.isReusable)
        #expect(c.shouldClose)
        #expect(!c.hasFailed)
    }

    @Test func headResponseHasNoBody() throws {
        let (t, c) = try feedAllChunkings(bytes("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"), to: get(method: .head))
        #expect(t.status == 200)
        #expect(t.body.isEmpty)
        #expect(t.ended)
        #expect(c.isReusable)
    }

    @Test(arguments: [204, 304])
    func noContentStatuses(code: Int) throws {
        let (t, c) = try feedAllChunkings(bytes("HTTP/1.1 \(code) X\r\nContent-Length: 10\r\n\r\n"), to: get())
        #expect(t.status == code)
        #expect(t.body.isEmpty)
        #expect(t.ended)
        #expect(c.isReusable)
    }

    @Test func interimThenFinal() throws {
        let response = bytes("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        let (t, c) = try feedAllChunkings(response, to: get())
        #expect(t.informational == [103, 102])
        #expect(t.status == 200)
        #expect(t.body == bytes("ok"))
        #expect(c.isReusable)
    }

    @Test func connectionCloseResponse() throws {
        let (t, c) = try feedAllChunkings(bytes("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"), to: get())
        #expect(t.ended)
        #expect(!c.isReusable)
        #expect(c.shouldClose)
    }

    @Test func http10ResponseClosesUnlessKeepAlive() throws {
        let (_, closing) = try feedAllChunkings(bytes("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"), to: get())
        #expect(closing.shouldClose)
        let (t, keeping) = try feedAllChunkings(bytes("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"), to: get())
        #expect(t.ended)
        #expect(keeping.isReusable)
    }

    @Test func requestConnectionCloseIsHonoured() throws {
        var c = try connection(sending: get(fields: [("Connection", "close")]))
        c.receive(bytes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").span, now: .zero)
        var t = ClientTranscript()
        c.drain(into: &t, now: .zero)
        #expect(t.ended)
        #expect(c.shouldClose)
    }

    @Test func keepAliveReuseCarriesASecondRequest() throws {
        var c = try connection(sending: get("/a"))
        var t = ClientTranscript()
        c.receive(bytes("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA").span, now: .zero)
        c.drain(into: &t, now: .zero)
        #expect(c.isReusable)
        try c.sendRequest(get("/b", method: .head), bodyLength: .known(0), now: Instant.zero + .seconds(1))
        #expect(c.takeOutput() == bytes("HEAD /b HTTP/1.1\r\nHost: example.com\r\n\r\n"))
        var t2 = ClientTranscript()
        c.receive(bytes("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n").span, now: Instant.zero + .seconds(1))
        c.drain(into: &t2, now: Instant.zero + .seconds(1))
        #expect(t2.ended && t2.body.isEmpty)
        #expect(c.requestsSent == 2)
        #expect(c.isReusable)
    }

    @Test func truncatedBodyFails() throws {
        let (t, c) = try feedAllChunkings(bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"), to: get(), endOfInput: true)
        #expect(t.body == bytes("half"))
        #expect(t.failure == .truncatedMessage)
        #expect(c.hasFailed && c.shouldClose)
    }

    @Test func closedBeforeAnyResponseByte() throws {
        var c = try connection(sending: get())
        c.receiveEnd()
        var t = ClientTranscript()
        c.drain(into: &t, now: .zero)
        #expect(t.failure == .connectionClosed(.normal))
        #expect(!c.responseStarted)
        #expect(c.shouldClose)
    }

    @Test func closedInsideTheHead() throws {
        var c = try connection(sending: get())
        c.receive(bytes("HTTP/1.1 200").span, now: .zero)
        c.receiveEnd()
        var t = ClientTranscript()
        c.drain(into: &t, now: .zero)
        #expect(t.failure == .truncatedMessage)
        #expect(c.responseStarted)
    }

    @Test func malformedResponseFails() throws {
        let (t, c) = try feedAllChunkings(bytes("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"), to: get())
        #expect(t.failure == .conflictingContentLength)
        #expect(c.hasFailed)
    }

    @Test func bytesWithNoRequestOutstanding() throws {
        var c = HTTPClientConnection(now: .zero)
        c.receive(bytes("HTTP/1.1 200 OK\r\n").span, now: .zero)
        var t = ClientTranscript()
        c.drain(into: &t, now: .zero)
        #expect(t.failure == .unexpectedResponse)
        #expect(c.shouldClose)
    }

    @Test func idleConnectionClosedByPeer() {
        var c = HTTPClientConnection(now: .zero)
        c.receiveEnd()
        var t = ClientTranscript()
        c.drain(into: &t, now: .zero)
        #expect(t == ClientTranscript())
        #expect(c.shouldClose && !c.hasFailed)
    }

    @Test func switchingProtocols() throws {
        let head = get("/chat", fields: [("Connection", "Upgrade"), ("Upgrade", "websocket")])
        let response = bytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n") + [0x81, 0x05] + bytes("hello")
        let headLength = response.count - 7
        for cuts in chunkings(response.count) {
            var c = try connection(sending: head)
            var t = ClientTranscript()
            var afterUpgrade: [UInt8] = []
            var offset = 0
            for n in cuts {
                let piece = response[offset..<(offset + n)]
                offset += n
                // Once upgraded, bytes are the application's, not HTTP's.
                if t.leftover != nil { afterUpgrade += piece; continue }
                c.receive(piece.span, now: .zero)
                c.drain(into: &t, now: .zero)
            }
            #expect(t.status == 101)
            #expect(t.informational.isEmpty)
            #expect((t.leftover ?? []) + afterUpgrade == Array(response[headLength...]))
            #expect(c.shouldClose && !c.isReusable)
        }
    }

    @Test func connectTunnel() throws {
        var c = try connection(sending: HTTPRequestHead(method: .connect, target: "example.com:443", fields: HTTPFields([("Host", "example.com:443")])))
        var t = ClientTranscript()
        c.receive(bytes("HTTP/1.1 200 Connection Established\r\n\r\n\u{16}\u{03}").span, now: .zero)
        c.drain(into: &t, now: .zero)
        #expect(t.status == 200)
        #expect(t.leftover == [0x16, 0x03])
    }
}

@Suite struct HTTPClientConnectionContinueTests {
    let expectHead = get("/upload", method: .put, fields: [("Expect", "100-continue")])

    @Test func bodyWaitsForContinue() throws {
        var c = HTTPClientConnection(now: .zero)
        try c.sendRequest(expectHead, bodyLength: .known(4), now: .zero)
        try c.writeBody(bytes("data").span)
        try c.finishRequest(now: .zero)
        #expect(c.takeOutput() == bytes("PUT /upload HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"))
        #expect(c.isHoldingBody)
        let response = bytes("HTTP/1.1 100 Continue\r\n\r\n")
        for cuts in chunkings(response.count) {
            var copy = c
            var t = ClientTranscript()
            var offset = 0
            for n in cuts {
                #expect(copy.outputCount == 0)
                copy.receive(response[offset..<(offset + n)].span, now: .zero)
                copy.drain(into: &t, now: .zero)
                offset += n
            }
            #expect(t.informational == [100])
            #expect(!copy.isHoldingBody)
            #expect(copy.takeOutput() == bytes("data"))
        }
        c.receive(response.span, now: .zero)
        var t = ClientTranscript()
        c.drain(into: &t, now: .zero)
        _ = c.takeOutput()
        c.receive(bytes("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n").span, now: .zero)
        c.drain(into: &t, now: .zero)
        #expect(t.status == 201 && t.ended)
        #expect(c.isReusable)
    }

    @Test func bodyGoesAfterTheContinueTimeout() throws {
        var c = HTTPClientConnection(now: .zero)
        try c.sendRequest(expectHead, bodyLength: .streamed, now: .zero)
        try c.writeBody(bytes("abc").span)
        _ = c.takeOutput()
        #expect(c.nextDeadline == Instant.zero + .seconds(1))
        c.timerFired(now: Instant.zero + .milliseconds(999))
        #expect(c.outputCount == 0)
        c.timerFired(now: Instant.zero + .seconds(1))
        #expect(c.takeOutput() == bytes("3\r\nabc\r\n"))
        try c.writeBody(bytes("d").span)
        try c.finishRequest(now: Instant.zero + .seconds(1))
        #expect(c.takeOutput() == bytes("1\r\nd\r\n0\r\n\r\n"))
    }

    @Test func finalResponseFirstMeansNoBody() throws {
        var c = HTTPClientConnection(now: .zero)
        try c.sendRequest(expectHead, bodyLength: .known(4), now: .zero)
        try c.writeBody(bytes("da").span)
        _ = c.takeOutput()
        var t = ClientTranscript()
        c.receive(bytes("HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n").span, now: .zero)
        c.drain(into: &t, now: .zero)
        #expect(t.status == 417 && t.ended)
        // The rest of the body is dropped, never sent.
        try c.writeBody(bytes("ta").span)
        try c.finishRequest(now: .zero)
        #expect(c.outputCount == 0)
        #expect(!c.isReusable)
        #expect(c.shouldClose)
    }

    @Test func noHoldWithoutContent() throws {
        var c = HTTPClientConnection(now: .zero)
        try c.sendRequest(expectHead, bodyLength: .known(0), now: .zero)
        #expect(!c.isHoldingBody)
    }
}

@Suite struct HTTPClientConnectionEarlyResponseTests {
    @Test func keepAliveResponseDuringUploadLetsTheUploadFinish() throws {
        var c = HTTPClientConnection(now: .zero)
        try c.sendRequest(get("/up", method: .post), bodyLength: .streamed, now: .zero)
        try c.writeBody(bytes("abc").span)
        _ = c.takeOutput()
        var t = ClientTranscript()
        c.receive(bytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").span, now: .zero)
        c.drain(into: &t, now: .zero)
        #expect(t.ended)
        #expect(c.isBusy)
        try c.writeBody(bytes("d").span)
        try c.finishRequest(now: .zero)
        #expect(c.takeOutput() == bytes("1\r\nd\r\n0\r\n\r\n"))
        #expect(!c.isBusy)
        #expect(c.isReusable)
    }

    @Test func closingResponseDuringUploadStopsTheUpload() throws {
        var c = HTTPClientConnection(now: .zero)
        try c.sendRequest(get("/up", method: .post), bodyLength: .streamed, now: .zero)
        try c.writeBody(bytes("abc").span)
        var t = ClientTranscript()
        c.receive(bytes("HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").span, now: .zero)
        c.drain(into: &t, now: .zero)
        #expect(t.status == 413 && t.ended)
        #expect(c.outputCount == 0)
        try c.writeBody(bytes("more").span)
        #expect(c.outputCount == 0)
        #expect(!c.isBusy)
        #expect(c.shouldClose)
    }
}

@Suite struct HTTPClientConnectionTimerTests {
    var configuration: HTTPClientConnection.Configuration {
        var c = HTTPClientConnection.Configuration()
        c.responseHeaderTimeout = .seconds(5)
        c.idleReadTimeout = .seconds(3)
        c.keepAliveTimeout = .seconds(10)
        return c
    }

    @Test func responseHeaderTimeout() throws {
        var c = try connection(sending: get(), configuration: configuration)
        #expect(c.nextDeadline == Instant.zero + .seconds(5))
        c.receive(bytes("HTTP/1.1 2").span, now: Instant.zero + .seconds(1))
        c.timerFired(now: Instant.zero + .seconds(5))
        var t = ClientTranscript()
        c.drain(into: &t, now: Instant.zero + .seconds(5))
        #expect(t.failure == .headerTimeout)
        #expect(c.hasFailed && c.shouldClose)
    }

    @Test func headerTimeoutStartsWhenTheRequestIsComplete() throws {
        var c = HTTPClientConnection(configuration: configuration, now: .zero)
        try c.sendRequest(get(method: .post), bodyLength: .streamed, now: .zero)
        #expect(c.nextDeadline == nil)
        try c.finishRequest(now: Instant.zero + .seconds(100))
        #expect(c.nextDeadline == Instant.zero + .seconds(105))
    }

    @Test func idleReadTimeoutDuringTheBody() throws {
        var c = try connection(sending: get(), configuration: configuration)
        var t = ClientTranscript()
        c.receive(bytes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab").span, now: Instant.zero + .seconds(1))
        c.drain(into: &t, now: Instant.zero + .seconds(1))
        #expect(c.nextDeadline == Instant.zero + .seconds(4))
        c.receive(bytes("cd").span, now: Instant.zero + .seconds(3))
        #expect(c.nextDeadline == Instant.zero + .seconds(6))
        c.timerFired(now: Instant.zero + .seconds(5))
        c.drain(into: &t, now: Instant.zero + .seconds(5))
        #expect(t.failure == nil)
        c.timerFired(now: Instant.zero + .seconds(6))
        c.drain(into: &t, now: Instant.zero + .seconds(6))
        #expect(t.failure == .bodyTimeout)
        #expect(t.body == bytes("abcd"))
    }

    @Test func keepAliveTimeoutClosesAnIdleConnection() throws {
        var c = try connection(sending: get(), configuration: configuration)
        var t = ClientTranscript()
        c.receive(bytes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").span, now: Instant.zero + .seconds(2))
        c.drain(into: &t, now: Instant.zero + .seconds(2))
        #expect(c.nextDeadline == Instant.zero + .seconds(12))
        c.timerFired(now: Instant.zero + .seconds(12))
        #expect(c.shouldClose && !c.hasFailed)
        #expect(!c.isReusable)
    }
}
