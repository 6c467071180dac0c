import MirageDevices
import MirageHTTP
import Testing

/// A response byte vector: the methods of the requests it answers, and
/// what it parses to (with `finish` at the end of the bytes when asked).
struct ResponseVector: CustomTestStringConvertible, Sendable {
    var name: String
    var methods: [HTTPMethod]
    var input: String
    var finish = false
    var expected: [ParsedMessage]
    var error: HTTPError? = nil
    var testDescription: String { name }
}

/// A head without an end (an interim response, or a message cut short).
func interim(_ start: String, _ fields: [[String]]) -> ParsedMessage { ParsedMessage(start: start, fields: fields) }

@Suite("Response parser")
struct ResponseParserTests {
    static let vectors: [ResponseVector] = [
        ResponseVector(name: "200 with Content-Length", methods: [.get],
                       input: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
                       expected: [message("HTTP/1.1 200", [["Content-Length", "5"], ["Content-Type", "text/plain"]], body: "hello")]),
        // RFC 9112 §6.3 rule 1: HEAD, 204 and 304 responses have no body whatever the fields say.
        ResponseVector(name: "HEAD response has no body despite Content-Length", methods: [.head, .get],
                       input: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                       expected: [message("HTTP/1.1 200", [["Content-Length", "10"]]), message("HTTP/1.1 200", [["Content-Length", "2"]], body: "ok")]),
        ResponseVector(name: "204 then 304 with Content-Length, no bodies", methods: [.delete, .get, .get],
                       input: "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\nETag: \"x\"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!",
                       expected: [message("HTTP/1.1 204", []), message("HTTP/1.1 304", [["Content-Length", "7"], ["ETag", "\"x\""]]),
                                  message("HTTP/1.1 200", [["Content-Length", "1"]], body: "!")]),
        // RFC 9110 §15.2: interim responses precede the final one.
        ResponseVector(name: "100 Continue then 103 then 200", methods: [.post],
                       input: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
                       expected: [interim("HTTP/1.1 100", []), interim("HTTP/1.1 103", [["Link", "</s.css>"]]),
                                  message("HTTP/1.1 200", [["Content-Length", "2"]], body: "hi")]),
        ResponseVector(name: "close-delimited body ends at finish", methods: [.get],
                       input: "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this until the end", finish: true,
                       expected: [message("HTTP/1.0 200", [["Content-Type", "text/plain"]], body: "all of this until the end")]),
        ResponseVector(name: "close-delimited, empty", methods: [.get],
                       input: "HTTP/1.1 200 OK\r\n\r\n", finish: true,
                       expected: [message("HTTP/1.1 200", [])]),
        ResponseVector(name: "chunked with trailers", methods: [.get],
                       input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10;x=y\r\n0123456789abcdef\r\n0\r\nExpires: never\r\n\r\n",
                       expected: [message("HTTP/1.1 200", [["Transfer-Encoding", "chunked"]], body: "abc0123456789abcdef", trailers: [["Expires", "never"]])]),
        ResponseVector(name: "chunked not last: read until close", methods: [.get],
                       input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nraw", finish: true,
                       expected: [message("HTTP/1.1 200", [["Transfer-Encoding", "chunked, gzip"]], body: "raw")]),
        ResponseVector(name: "status line without reason phrase", methods: [.get],
                       input: "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
                       expected: [message("HTTP/1.1 404", [["Content-Length", "0"]])]),
        ResponseVector(name: "status line with empty reason phrase", methods: [.get],
                       input: "HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n",
                       expected: [message("HTTP/1.1 599", [["Content-Length", "0"]])]),
        ResponseVector(name: "a response nobody asked for", methods: [],
                       input: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                       expected: [], error: .unexpectedResponse),
        ResponseVector(name: "truncated body at finish", methods: [.get],
                       input: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", finish: true,
                       expected: [ParsedMessage(start: "HTTP/1.1 200", fields: [["Content-Length", "5"]], body: bytes("hel"))], error: .truncatedMessage),
        ResponseVector(name: "CL and TE in a response", methods: [.get],
                       input: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                       expected: [], error: .contentLengthWithTransferEncoding),
        ResponseVector(name: "three-digit status required", methods: [.get],
                       input: "HTTP/1.1 20 OK\r\n\r\n",
                       expected: [], error: .invalidStatusCode),
        ResponseVector(name: "status below 100", methods: [.get],
                       input: "HTTP/1.1 099 Odd\r\n\r\n",
                       expected: [], error: .invalidStatusCode),
        ResponseVector(name: "no empty lines before a status line", methods: [.get],
                       input: "\r\nHTTP/1.1 200 OK\r\n\r\n",
                       expected: [], error: .malformedStartLine),
    ]

    @Test("byte vectors", arguments: vectors)
    func vector(_ v: ResponseVector) {
        let outcome = parseResponses(bytes(v.input), methods: v.methods, finish: v.finish)
        #expect(outcome.messages == v.expected)
        #expect(outcome.error == v.error)
    }

    @Test("every 2-way split and byte by byte give the same events", arguments: vectors)
    func chunkings(_ v: ResponseVector) {
        let input = bytes(v.input)
        let whole = parseResponses(input, methods: v.methods, finish: v.finish)
        for split in twoWaySplits(input.count) {
            let o = parseResponses(input, methods: v.methods, pieces: split, finish: v.finish)
            #expect(o == whole, "split at \(split[0])")
            if o != whole { break }
        }
        #expect(parseResponses(input, methods: v.methods, pieces: byteByByte(input.count), finish: v.finish) == whole)
    }

    @Test("101 Switching Protocols: the bytes after it belong to the new protocol")
    func upgrade() throws {
        let input = bytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\u{81}\u{5}hello")
        for pieces in [[], [40], byteByByte(input.count)] {
            var parser = HTTPResponseParser()
            parser.expectResponse(to: .get)
            var heads: [Int] = []
            for range in cut(input.count, pieces) {
                parser.append(input.span.extracting(range))
                while let e = try parser.next() {
                    guard case .head(let h) = e else { Issue.record("unexpected \(e)"); continue }
                    heads.append(h.status.code)
                }
            }
            #expect(heads == [101])
            #expect(parser.outstandingResponses == 0)
            #expect(parser.takeRemaining() == Array(bytes("\u{81}\u{5}hello")))
            #expect(try parser.finish() == nil)
        }
    }

    @Test("2xx to CONNECT: a tunnel from there on")
    func connectTunnel() throws {
        var parser = HTTPResponseParser()
        parser.expectResponse(to: .connect)
        parser.append(bytes("HTTP/1.1 200 Connection established\r\nContent-Length: 99\r\n\r\n\u{16}\u{3}\u{1}").span)
        guard case .head(let h)? = try parser.next() else { Issue.record("no head"); return }
        #expect(h.status.code == 200)
        #expect(try parser.next() == nil)
        #expect(parser.takeRemaining() == [0x16, 0x03, 0x01])
    }

    @Test("outstanding responses count down")
    func outstanding() throws {
        var parser = HTTPResponseParser()
        parser.expectResponse(to: .get)
        parser.expectResponse(to: .head)
        #expect(parser.outstandingResponses == 2)
        parser.append(bytes("HTTP/1.1 100 Continue\r\n\r\n").span)
        _ = try parser.next()
        #expect(parser.outstandingResponses == 2)
        parser.append(bytes("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").span)
        while try parser.next() != nil {}
        #expect(parser.outstandingResponses == 1)
    }
}

extension HTTPResponseParser.Event: Equatable {
    public static func == (a: Self, b: Self) -> Bool {
        switch (a, b) {
        case (.head(let x), .head(let y)): startLine(x) == startLine(y) && pairs(x.fields) == pairs(y.fields)
        case (.body(let x), .body(let y)): x.elementsEqual(y)
        case (.end(let x), .end(let y)): pairs(x) == pairs(y)
        default: false
        }
    }
}
