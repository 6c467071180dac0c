import MirageDevices
import MirageHTTP
import Testing

/// A malformed or smuggling request, the error it must raise and the
/// status a server answers it with.
struct MalformedCase: CustomTestStringConvertible, Sendable {
    var name: String
    var input: String
    var error: HTTPError
    var status: Int
    var limits: HTTPLimits = .server
    var testDescription: String { name }
}

/// Small limits so the oversize cases stay small enough to re-feed in every split.
let smallLimits: HTTPLimits = {
    var l = HTTPLimits()
    l.maximumRequestLineLength = 40
    l.maximumFieldLineLength = 40
    l.maximumHeaderSectionSize = 120
    l.maximumFieldCount = 4
    l.maximumBodySize = 10
    l.maximumChunkLineLength = 32
    return l
}()

let get = "GET / HTTP/1.1\r\nHost: a\r\n"
let post = "POST / HTTP/1.1\r\nHost: a\r\n"

@Suite("Malformed requests and smuggling attempts")
struct MalformedRequestTests {
    static let cases: [MalformedCase] = [
        // RFC 9112 §6.1: Transfer-Encoding with Content-Length is a smuggling vector.
        MalformedCase(name: "CL then TE", input: post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                      error: .contentLengthWithTransferEncoding, status: 400),
        MalformedCase(name: "TE then CL", input: post + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
                      error: .contentLengthWithTransferEncoding, status: 400),
        // RFC 9112 §6.3 rule 5.
        MalformedCase(name: "two differing Content-Length fields", input: post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
                      error: .conflictingContentLength, status: 400),
        MalformedCase(name: "Content-Length: 5, 6", input: post + "Content-Length: 5, 6\r\n\r\nhello!",
                      error: .conflictingContentLength, status: 400),
        MalformedCase(name: "Content-Length: 5, 5 then 6", input: post + "Content-Length: 5, 5\r\nContent-Length: 6\r\n\r\nhello!",
                      error: .conflictingContentLength, status: 400),
        // Found by fuzzing: a parser that skips empty list elements reads
        // ",100" as 100, one that stops at the comma as nothing.
        MalformedCase(name: "Content-Length with a leading comma", input: post + "Content-Length: ,5\r\n\r\nhello",
                      error: .invalidContentLength, status: 400),
        MalformedCase(name: "Content-Length: 5,,5", input: post + "Content-Length: 5,,5\r\n\r\nhello",
                      error: .invalidContentLength, status: 400),
        MalformedCase(name: "negative Content-Length", input: post + "Content-Length: -5\r\n\r\n",
                      error: .invalidContentLength, status: 400),
        MalformedCase(name: "plus-signed Content-Length", input: post + "Content-Length: +5\r\n\r\nhello",
                      error: .invalidContentLength, status: 400),
        MalformedCase(name: "hex Content-Length", input: post + "Content-Length: 0x5\r\n\r\nhello",
                      error: .invalidContentLength, status: 400),
        MalformedCase(name: "empty Content-Length", input: post + "Content-Length: \r\n\r\n",
                      error: .invalidContentLength, status: 400),
        MalformedCase(name: "Content-Length of 19 digits", input: post + "Content-Length: 1000000000000000000\r\n\r\n",
                      error: .invalidContentLength, status: 400),
        MalformedCase(name: "bare CR in a field value", input: get + "X: a\rb\r\n\r\n",
                      error: .bareCarriageReturn, status: 400),
        MalformedCase(name: "bare CR posing as a line end before a field", input: get + "X: a\rContent-Length: 5\r\n\r\nhello",
                      error: .bareCarriageReturn, status: 400),
        MalformedCase(name: "bare CR in the request line", input: "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n",
                      error: .bareCarriageReturn, status: 400),
        MalformedCase(name: "CR CR LF", input: get + "X: a\r\r\n\r\n",
                      error: .bareCarriageReturn, status: 400),
        MalformedCase(name: "bare LF ending the request line", input: "GET / HTTP/1.1\nHost: a\r\n\r\n",
                      error: .bareLineFeed, status: 400),
        MalformedCase(name: "bare LF ending a field line", input: get + "X: a\n\r\n",
                      error: .bareLineFeed, status: 400),
        MalformedCase(name: "bare LF ending the head", input: get + "\n",
                      error: .bareLineFeed, status: 400),
        MalformedCase(name: "bare LF ending a chunk-size line", input: post + "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
                      error: .bareLineFeed, status: 400),
        MalformedCase(name: "invalid character in the method", input: "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n",
                      error: .invalidMethod, status: 400),
        MalformedCase(name: "non-ASCII in the method", input: "G\u{C9}T / HTTP/1.1\r\nHost: a\r\n\r\n",
                      error: .invalidMethod, status: 400),
        MalformedCase(name: "invalid character in a field name", input: get + "X@Y: 1\r\n\r\n",
                      error: .invalidFieldName, status: 400),
        MalformedCase(name: "space inside a field name", input: get + "X Y: 1\r\n\r\n",
                      error: .invalidFieldName, status: 400),
        MalformedCase(name: "empty field name", input: get + ": 1\r\n\r\n",
                      error: .invalidFieldName, status: 400),
        // RFC 9112 §5.1: whitespace between name and colon MUST be rejected.
        MalformedCase(name: "whitespace before colon", input: post + "Content-Length : 5\r\n\r\nhello",
                      error: .whitespaceBeforeColon, status: 400),
        MalformedCase(name: "tab before colon", input: post + "Transfer-Encoding\t: chunked\r\n\r\n",
                      error: .whitespaceBeforeColon, status: 400),
        // RFC 9112 §5.2: obs-fold rejected.
        MalformedCase(name: "obs-fold", input: get + "X: a\r\n b\r\n\r\n",
                      error: .obsoleteLineFolding, status: 400),
        MalformedCase(name: "obs-fold of Transfer-Encoding", input: post + "Transfer-Encoding:\r\n chunked\r\n\r\n",
                      error: .obsoleteLineFolding, status: 400),
        MalformedCase(name: "field line without colon", input: get + "NoColon\r\n\r\n",
                      error: .missingColon, status: 400),
        MalformedCase(name: "NUL in a field value", input: get + "X: a\u{0}b\r\n\r\n",
                      error: .invalidFieldValue, status: 400),
        MalformedCase(name: "DEL in a field value", input: get + "X: a\u{7F}\r\n\r\n",
                      error: .invalidFieldValue, status: 400),
        MalformedCase(name: "request-line too long", input: "GET /" + String(repeating: "a", count: 40) + " HTTP/1.1\r\nHost: a\r\n\r\n",
                      error: .requestLineTooLong(limit: 40), status: 414, limits: smallLimits),
        MalformedCase(name: "field line too long", input: get + "X: " + String(repeating: "b", count: 40) + "\r\n\r\n",
                      error: .fieldLineTooLong(limit: 40), status: 431, limits: smallLimits),
        MalformedCase(name: "too many fields", input: get + "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n",
                      error: .tooManyFields(limit: 4), status: 431, limits: smallLimits),
        MalformedCase(name: "header section too large",
                      input: get + String(repeating: "X: " + String(repeating: "c", count: 33) + "\r\n", count: 3) + "\r\n",
                      error: .headerSectionTooLarge(limit: 120), status: 431, limits: smallLimits),
        MalformedCase(name: "Content-Length over the body limit", input: post + "Content-Length: 11\r\n\r\nhello world",
                      error: .bodyTooLarge(limit: 10), status: 413, limits: smallLimits),
        MalformedCase(name: "chunked body over the limit", input: post + "Transfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n6\r\nworld!\r\n0\r\n\r\n",
                      error: .bodyTooLarge(limit: 10), status: 413, limits: smallLimits),
        MalformedCase(name: "chunk-size line too long", input: post + "Transfer-Encoding: chunked\r\n\r\n1;" + String(repeating: "e", count: 40) + "\r\nx\r\n0\r\n\r\n",
                      error: .chunkLineTooLong(limit: 32), status: 400, limits: smallLimits),
        // RFC 9112 §6.1: an unknown transfer coding gets 501.
        MalformedCase(name: "Transfer-Encoding: gzip", input: post + "Transfer-Encoding: gzip\r\n\r\n",
                      error: .unsupportedTransferCoding, status: 501),
        MalformedCase(name: "Transfer-Encoding: gzip, chunked", input: post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                      error: .unsupportedTransferCoding, status: 501),
        // RFC 9112 §6.3 rule 4: chunked not last, or twice, cannot be framed.
        MalformedCase(name: "chunked, chunked", input: post + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
                      error: .invalidTransferEncoding, status: 400),
        MalformedCase(name: "chunked in two fields", input: post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                      error: .invalidTransferEncoding, status: 400),
        MalformedCase(name: "chunked not last", input: post + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
                      error: .invalidTransferEncoding, status: 400),
        MalformedCase(name: "empty Transfer-Encoding", input: post + "Transfer-Encoding: \r\n\r\n",
                      error: .invalidTransferEncoding, status: 400),
        MalformedCase(name: "Transfer-Encoding in HTTP/1.0", input: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                      error: .transferEncodingInHTTP10, status: 400),
        MalformedCase(name: "HTTP/2.0", input: "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
                      error: .unsupportedVersion(major: 2, minor: 0), status: 505),
        MalformedCase(name: "HTTP/0.9-style version", input: "GET / HTTP/0.9\r\n\r\n",
                      error: .unsupportedVersion(major: 0, minor: 9), status: 505),
        MalformedCase(name: "lower-case protocol name", input: "GET / http/1.1\r\nHost: a\r\n\r\n",
                      error: .malformedVersion, status: 400),
        MalformedCase(name: "HTTP/1.10", input: "GET / HTTP/1.10\r\nHost: a\r\n\r\n",
                      error: .malformedVersion, status: 400),
        MalformedCase(name: "two spaces after the method", input: "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
                      error: .malformedStartLine, status: 400),
        MalformedCase(name: "no version", input: "GET /\r\nHost: a\r\n\r\n",
                      error: .malformedStartLine, status: 400),
        MalformedCase(name: "relative target", input: "GET index.html HTTP/1.1\r\nHost: a\r\n\r\n",
                      error: .invalidTarget, status: 400),
        MalformedCase(name: "asterisk target for GET", input: "GET * HTTP/1.1\r\nHost: a\r\n\r\n",
                      error: .invalidTarget, status: 400),
        MalformedCase(name: "non-ASCII target", input: "GET /caf\u{E9} HTTP/1.1\r\nHost: a\r\n\r\n",
                      error: .invalidTarget, status: 400),
        // RFC 9112 §3.2: exactly one Host in HTTP/1.1.
        MalformedCase(name: "missing Host in HTTP/1.1", input: "GET / HTTP/1.1\r\nX: 1\r\n\r\n",
                      error: .invalidHost, status: 400),
        MalformedCase(name: "two Host fields", input: get + "Host: b\r\n\r\n",
                      error: .invalidHost, status: 400),
        MalformedCase(name: "two Host fields in HTTP/1.0", input: "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n",
                      error: .invalidHost, status: 400),
        MalformedCase(name: "chunk size of 16 hex digits", input: post + "Transfer-Encoding: chunked\r\n\r\n1000000000000005\r\nhello\r\n0\r\n\r\n",
                      error: .invalidChunkSize, status: 400),
        MalformedCase(name: "chunk size 0x", input: post + "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
                      error: .invalidChunkSize, status: 400),
        MalformedCase(name: "negative chunk size", input: post + "Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
                      error: .invalidChunkSize, status: 400),
        MalformedCase(name: "empty chunk-size line", input: post + "Transfer-Encoding: chunked\r\n\r\n\r\n",
                      error: .invalidChunkSize, status: 400),
        MalformedCase(name: "chunk size then junk", input: post + "Transfer-Encoding: chunked\r\n\r\n5 x\r\nhello\r\n0\r\n\r\n",
                      error: .invalidChunkSize, status: 400),
        MalformedCase(name: "control character in a chunk extension", input: post + "Transfer-Encoding: chunked\r\n\r\n5;a\u{1}\r\nhello\r\n0\r\n\r\n",
                      error: .invalidChunkSize, status: 400),
        MalformedCase(name: "chunk data longer than its size", input: post + "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n",
                      error: .missingChunkTerminator, status: 400),
        MalformedCase(name: "chunk data ended by LF alone", input: post + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n",
                      error: .missingChunkTerminator, status: 400),
        MalformedCase(name: "chunk data ended by CR and junk", input: post + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\rX0\r\n\r\n",
                      error: .missingChunkTerminator, status: 400),
        MalformedCase(name: "obs-fold in a trailer", input: post + "Transfer-Encoding: chunked\r\n\r\n0\r\nX: a\r\n b\r\n\r\n",
                      error: .obsoleteLineFolding, status: 400),
        MalformedCase(name: "bare CR in a trailer", input: post + "Transfer-Encoding: chunked\r\n\r\n0\r\nX: a\rY: b\r\n\r\n",
                      error: .bareCarriageReturn, status: 400),
        MalformedCase(name: "too many empty lines before the request", input: "\r\n\r\n\r\n\r\n\r\n" + get + "\r\n",
                      error: .malformedStartLine, status: 400),
    ]

    @Test("the error and the status it maps to", arguments: cases)
    func errorAndStatus(_ c: MalformedCase) {
        let outcome = parseRequests(bytes(c.input), limits: c.limits)
        #expect(outcome.error == c.error)
        #expect(c.error.status?.code == c.status)
    }

    @Test("the same error in every 2-way split and byte by byte", arguments: cases)
    func chunkings(_ c: MalformedCase) {
        let (whole, disagreement) = checkAllChunkings(bytes(c.input), limits: c.limits)
        #expect(whole.error == c.error)
        #expect(disagreement == nil)
    }

    @Test("the connection answers with the status, Connection: close, and closes", arguments: cases)
    func connection(_ c: MalformedCase) {
        for pieces in [[], byteByByte(c.input.utf8.count)] {
            var configuration = HTTPServerConnection.Configuration()
            configuration.limits = c.limits
            var d = ConnectionDriver(configuration: configuration)
            var seen: [ConnectionDriver.Seen] = []
            let input = bytes(c.input)
            for range in cut(input.count, pieces) {
                d.receive(Array(input[range]))
                seen += d.events()
            }
            #expect(seen.last == .failed(c.error))
            let output = d.output()
            let statusLine = "HTTP/1.1 \(c.status) \(HTTPStatus.standardReason(c.status))\r\n"
            #expect(output.hasPrefix(statusLine), "\(output)")
            #expect(output.contains("\r\nConnection: close\r\n"))
            #expect(output.hasSuffix("\r\n\r\n\(c.status) \(HTTPStatus.standardReason(c.status))\n"))
            #expect(d.connection.shouldClose)
            #expect(!d.connection.wantsInput)
            #expect(!d.connection.abortRequested)
            // Nothing more comes out of it.
            d.receive(get + "\r\n")
            #expect(d.events().isEmpty)
            #expect(d.output().isEmpty)
        }
    }

    @Test("exact bytes of an error response")
    func exactErrorResponse() {
        var d = ConnectionDriver()
        d.receive(post + "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(d.events() == [.failed(.contentLengthWithTransferEncoding)])
        #expect(d.output() == "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 16\r\nConnection: close\r\n\r\n400 Bad Request\n")
        #expect(d.connection.shouldClose)
    }

    @Test("a smuggled second request after a good one: the first is served, then 400 and close")
    func smuggledAfterGood() throws {
        var d = ConnectionDriver()
        d.receive(get + "\r\n" + post + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(d.events() == [.request("GET / HTTP/1.1", [["Host", "a"]]), .end([])])
        try d.respond(200, body: "ok")
        #expect(d.events() == [.failed(.contentLengthWithTransferEncoding)])
        let out = d.output()
        #expect(out.hasPrefix("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 400 Bad Request\r\n"), "\(out)")
        #expect(!out.contains("admin"))
        #expect(d.connection.shouldClose)
    }

    @Test("Expect other than 100-continue: 417 and close")
    func unsupportedExpectation() {
        var d = ConnectionDriver()
        d.receive(post + "Expect: 200-ok\r\nContent-Length: 2\r\n\r\nhi")
        #expect(d.events() == [.failed(.unsupportedExpectation)])
        let out = d.output()
        #expect(out.hasPrefix("HTTP/1.1 417 Expectation Failed\r\n"))
        #expect(out.contains("\r\nConnection: close\r\n"))
        #expect(d.connection.shouldClose)
    }

    @Test("status mapping of the other errors")
    func statusMapping() {
        #expect(HTTPError.headerTimeout.status == .requestTimeout)
        #expect(HTTPError.unsupportedExpectation.status == .expectationFailed)
        for e in [HTTPError.truncatedMessage, .bodyTimeout, .unexpectedResponse, .connectionClosed(.reset), .device(.unknownHandle), .misuse("x")] {
            #expect(e.status == nil)
        }
    }
}
