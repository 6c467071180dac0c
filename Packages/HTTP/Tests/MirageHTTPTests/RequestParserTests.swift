import MirageDevices
import MirageHTTP
import Testing

/// A request byte vector and the messages it parses to.
struct RequestVector: CustomTestStringConvertible, Sendable {
    var name: String
    var input: String
    var expected: [ParsedMessage]
    var testDescription: String { name }
}

/// A complete message (body joined, end seen).
func message(_ start: String, _ fields: [[String]], body: String = "", trailers: [[String]] = []) -> ParsedMessage {
    ParsedMessage(start: start, fields: fields, body: bytes(body), trailers: trailers)
}

@Suite("Request parser")
struct RequestParserTests {
    static let vectors: [RequestVector] = [
        // RFC 9112 §3.2.1 (origin-form).
        RequestVector(name: "GET origin-form with query",
                      input: "GET /where?q=now HTTP/1.1\r\nHost: www.example.com\r\n\r\n",
                      expected: [message("GET /where?q=now HTTP/1.1", [["Host", "www.example.com"]])]),
        // RFC 9112 §3.2.2 (absolute-form).
        RequestVector(name: "absolute-form",
                      input: "GET http://www.example.org/pub/WWW/TheProject.html HTTP/1.1\r\nHost: www.example.org\r\n\r\n",
                      expected: [message("GET http://www.example.org/pub/WWW/TheProject.html HTTP/1.1", [["Host", "www.example.org"]])]),
        // RFC 9112 §3.2.3 (authority-form).
        RequestVector(name: "CONNECT authority-form",
                      input: "CONNECT www.example.com:80 HTTP/1.1\r\nHost: www.example.com:80\r\n\r\n",
                      expected: [message("CONNECT www.example.com:80 HTTP/1.1", [["Host", "www.example.com:80"]])]),
        // RFC 9112 §3.2.4 (asterisk-form).
        RequestVector(name: "OPTIONS *",
                      input: "OPTIONS * HTTP/1.1\r\nHost: www.example.org:8001\r\n\r\n",
                      expected: [message("OPTIONS * HTTP/1.1", [["Host", "www.example.org:8001"]])]),
        RequestVector(name: "POST with Content-Length",
                      input: "POST /form HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world",
                      expected: [message("POST /form HTTP/1.1", [["Host", "a"], ["Content-Type", "text/plain"], ["Content-Length", "11"]], body: "hello world")]),
        RequestVector(name: "POST with Content-Length 0",
                      input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
                      expected: [message("POST / HTTP/1.1", [["Host", "a"], ["Content-Length", "0"]])]),
        RequestVector(name: "chunked with extensions and trailers",
                      input: "POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                          + "5;name=value\r\nhello\r\nA ; ext=\"q r\" ;x\r\n, world!!!\r\n005\r\n 1234\r\n0;last\r\nChecksum: abc\r\nX-T:  1 \r\n\r\n",
                      expected: [message("POST /upload HTTP/1.1", [["Host", "a"], ["Transfer-Encoding", "chunked"]],
                                         body: "hello, world!!! 1234", trailers: [["Checksum", "abc"], ["X-T", "1"]])]),
        RequestVector(name: "chunked, coding name in upper case, upper-case hex",
                      input: "PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
                      expected: [message("PUT /x HTTP/1.1", [["Host", "a"], ["Transfer-Encoding", "Chunked"]],
                                         body: "abcdefghijklmnopqrstuvwxyz")]),
        RequestVector(name: "pipelined: GET, POST with body, chunked POST, GET",
                      input: "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                          + "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                          + "POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n"
                          + "GET /4 HTTP/1.1\r\nHost: a\r\n\r\n",
                      expected: [
                          message("GET /1 HTTP/1.1", [["Host", "a"]]),
                          message("POST /2 HTTP/1.1", [["Host", "a"], ["Content-Length", "3"]], body: "abc"),
                          message("POST /3 HTTP/1.1", [["Host", "a"], ["Transfer-Encoding", "chunked"]], body: "xy"),
                          message("GET /4 HTTP/1.1", [["Host", "a"]]),
                      ]),
        // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
        RequestVector(name: "leading empty lines tolerated",
                      input: "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
                      expected: [message("GET / HTTP/1.1", [["Host", "a"]]), message("GET /b HTTP/1.1", [["Host", "a"]])]),
        RequestVector(name: "HTTP/1.0 without Host",
                      input: "GET /old HTTP/1.0\r\nUser-Agent: x\r\n\r\n",
                      expected: [message("GET /old HTTP/1.0", [["User-Agent", "x"]])]),
        RequestVector(name: "HTTP/1.0 keep-alive",
                      input: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n",
                      expected: [message("GET / HTTP/1.0", [["Connection", "Keep-Alive"]]), message("GET /2 HTTP/1.0", [])]),
        // RFC 9110 §8.6: a list of identical values is one length.
        RequestVector(name: "Content-Length: 5, 5",
                      input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
                      expected: [message("POST / HTTP/1.1", [["Host", "a"], ["Content-Length", "5, 5"]], body: "hello")]),
        RequestVector(name: "two identical Content-Length fields",
                      input: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello",
                      expected: [message("POST / HTTP/1.1", [["Host", "a"], ["Content-Length", "5"], ["content-length", "5"]], body: "hello")]),
        RequestVector(name: "OWS trimmed, empty value, obs-text, duplicates kept in order",
                      input: "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Pad: \t a  b \t\r\nX-Latin: caf\u{E9}\r\nAccept: a\r\nAccept: b\r\n\r\n",
                      expected: [message("GET / HTTP/1.1", [["Host", "a"], ["X-Empty", ""], ["X-Pad", "a  b"], ["X-Latin", "caf\u{E9}"],
                                                            ["Accept", "a"], ["Accept", "b"]])]),
        RequestVector(name: "extension method and token characters in names",
                      input: "M-SEARCH! /x HTTP/1.1\r\nHost: a\r\nX!#$%&'*+-.^_`|~0z: v\r\n\r\n",
                      expected: [message("M-SEARCH! /x HTTP/1.1", [["Host", "a"], ["X!#$%&'*+-.^_`|~0z", "v"]])]),
    ]

    @Test("byte vectors parse to the expected messages", arguments: vectors)
    func vector(_ v: RequestVector) {
        let outcome = parseRequests(bytes(v.input))
        #expect(outcome.error == nil)
        #expect(outcome.messages == v.expected)
    }

    @Test("every 2-way split and byte by byte give the same events", arguments: vectors)
    func chunkings(_ v: RequestVector) {
        let (whole, disagreement) = checkAllChunkings(bytes(v.input))
        #expect(whole.messages == v.expected)
        #expect(disagreement == nil)
    }

    @Test("a partial message is held, not half-consumed")
    func partialHead() throws {
        var parser = HTTPRequestParser()
        let head = bytes("GET / HTTP/1.1\r\nHost: a\r\n\r")
        parser.append(head.span)
        #expect(try parser.next() == nil)
        #expect(parser.bufferedCount == head.count)
        parser.append(bytes("\n").span)
        guard case .head(let h)? = try parser.next() else { Issue.record("no head"); return }
        #expect(h.target == "/")
        #expect(try parser.next() == .end(trailers: HTTPFields()))
        #expect(parser.bufferedCount == 0)
    }

    @Test("body bytes are handed out as they arrive")
    func streamingBody() throws {
        var parser = HTTPRequestParser()
        parser.append(bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nab").span)
        guard case .head? = try parser.next() else { Issue.record("no head"); return }
        #expect(try parser.next() == .body(ArraySlice(bytes("ab"))))
        #expect(try parser.next() == nil)
        parser.append(bytes("cdefGET").span)
        #expect(try parser.next() == .body(ArraySlice(bytes("cdef"))))
        #expect(try parser.next() == .end(trailers: HTTPFields()))
        #expect(try parser.next() == nil)
        #expect(parser.bufferedCount == 3)
    }

    @Test("finish: clean at a boundary, truncated inside a message")
    func finish() throws {
        var idle = HTTPRequestParser()
        idle.append(bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n").span)
        while try idle.next() != nil {}
        #expect(throws: Never.self) { try idle.finish() }

        var midHead = HTTPRequestParser()
        midHead.append(bytes("GET / HTTP/1.1\r\nHo").span)
        _ = try midHead.next()
        #expect(throws: HTTPError.truncatedMessage) { try midHead.finish() }

        var midBody = HTTPRequestParser()
        midBody.append(bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab").span)
        while try midBody.next() != nil {}
        #expect(throws: HTTPError.truncatedMessage) { try midBody.finish() }
    }

    @Test("keep-alive semantics (RFC 9112 §9.3)", arguments: [
        ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", true),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false),
        ("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n", false),
        ("GET / HTTP/1.0\r\n\r\n", false),
        ("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true),
        ("GET / HTTP/1.0\r\nConnection: foo,  Keep-Alive \r\n\r\n", true),
        ("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false),
    ])
    func keepAlive(input: String, expected: Bool) throws {
        var parser = HTTPRequestParser()
        parser.append(bytes(input).span)
        guard case .head(let h)? = try parser.next() else { Issue.record("no head"); return }
        #expect(h.keepAlive == expected)
    }

    @Test("path and query of the target")
    func pathAndQuery() {
        let a = HTTPRequestHead(method: .get, target: "/a/b?x=1&y=?")
        #expect(a.path == "/a/b")
        #expect(a.query == "x=1&y=?")
        let b = HTTPRequestHead(method: .get, target: "/plain")
        #expect(b.path == "/plain")
        #expect(b.query == nil)
    }

    @Test("a parsed head serializes back to the bytes it came from", arguments: vectors)
    func roundTrip(_ v: RequestVector) throws {
        var parser = HTTPRequestParser()
        let input = bytes(v.input)
        parser.append(input.span)
        var heads: [HTTPRequestHead] = []
        while let e = try parser.next() { if case .head(let h) = e { heads.append(h) } }
        #expect(heads.count == v.expected.count)
        for head in heads {
            var out: [UInt8] = []
            HTTPSerializer.writeHead(head, into: &out)
            var again = HTTPRequestParser()
            again.append(out.span)
            guard case .head(let h2)? = try again.next() else { Issue.record("re-parse failed: \(text(out))"); continue }
            #expect(startLine(h2) == startLine(head))
            #expect(pairs(h2.fields) == pairs(head.fields))
        }
    }
}

@Suite("Serializer")
struct SerializerTests {
    @Test("request head bytes")
    func requestHead() {
        var out: [UInt8] = []
        HTTPSerializer.writeHead(HTTPRequestHead(method: .post, target: "/x?y", fields: HTTPFields([("Host", "h"), ("Content-Length", "3")])), into: &out)
        #expect(text(out) == "POST /x?y HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n")
    }

    @Test("response head bytes")
    func responseHead() {
        var out: [UInt8] = []
        HTTPSerializer.writeHead(HTTPResponseHead(status: .notFound, version: .http1_0, fields: HTTPFields([("A", " b ")])), into: &out)
        #expect(text(out) == "HTTP/1.0 404 Not Found\r\nA: b\r\n\r\n")
        out = []
        HTTPSerializer.writeHead(HTTPResponseHead(status: HTTPStatus(code: 599)), into: &out)
        #expect(text(out) == "HTTP/1.1 599 \r\n\r\n")
    }

    @Test("chunks in hex; an empty chunk writes nothing; last chunk with trailers", arguments: [
        (0, ""), (1, "1"), (10, "a"), (15, "f"), (16, "10"), (255, "ff"), (4096, "1000"), (1_000_000, "f4240"),
    ])
    func chunk(size: Int, hex: String) {
        var out: [UInt8] = []
        let data = [UInt8](repeating: 0x41, count: size)
        HTTPSerializer.writeChunk(data.span, into: &out)
        #expect(out == (size == 0 ? [] : bytes(hex + "\r\n") + data + bytes("\r\n")))
    }

    @Test("last chunk")
    func lastChunk() {
        var out: [UInt8] = []
        HTTPSerializer.writeLastChunk(trailers: HTTPFields(), into: &out)
        #expect(text(out) == "0\r\n\r\n")
        out = []
        HTTPSerializer.writeLastChunk(trailers: HTTPFields([("Digest", "x")]), into: &out)
        #expect(text(out) == "0\r\nDigest: x\r\n\r\n")
    }

    @Test("fields: case-insensitive lookup, lists, set and remove")
    func fields() {
        var f = HTTPFields([("Content-Type", "text/html"), ("Connection", "keep-alive, Upgrade"), ("X", "1"), ("x", "2")])
        #expect(f["content-type"] == "text/html")
        #expect(f.values(of: "X") == ["1", "2"])
        #expect(f.containsToken("upgrade", in: "CONNECTION"))
        #expect(!f.containsToken("keep", in: "Connection"))
        f.set(name: "X", value: "3")
        #expect(f.values(of: "x") == ["3"])
        f.remove("connection")
        #expect(!f.contains("Connection"))
        #expect(pairs(f) == [["Content-Type", "text/html"], ["X", "3"]])
        #expect(HTTPFields.isValidName("X-Ok") && !HTTPFields.isValidName("X Bad") && !HTTPFields.isValidName(""))
        #expect(HTTPFields.isValidValue("a\tb") && !HTTPFields.isValidValue("a\r\nb") && !HTTPFields.isValidValue("a\u{0}"))
    }
}
