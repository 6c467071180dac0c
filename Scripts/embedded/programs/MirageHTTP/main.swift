// Embedded check program for MirageHTTP (Scripts/check-embedded).
//
// Parses requests and responses (a chunked body fed in pieces), then runs an
// HTTPServer over a fake stack, a ManualClock and a ManualTimerScheduler,
// with an HTTPFileHandler over a MemoryKeyValueStore, so that the generic
// server and file handler are specialised under Embedded Swift. Checks exact
// response bytes: a GET, a 304, a 206, a smuggling attempt's 400, and a
// header timeout's 408. `mirage_main` returns the number of failed checks
// (0 = pass) and prints a digest of what it saw.

import MirageDevices
import MirageHTTP

// MARK: - Parsers

func checkParsers(_ report: Report) {
    // A chunked request with an extension and a trailer, fed in pieces.
    let request = bytes("POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nT: v\r\n\r\n")
    for piece in [1, 3, 7, request.count] {
        var parser = HTTPRequestParser()
        var target = ""
        var body: [UInt8] = []
        var trailer: String? = nil
        var offset = 0
        while offset < request.count {
            let n = min(piece, request.count - offset)
            parser.append(request.span.extracting(offset..<(offset + n)))
            offset += n
            do throws(HTTPError) {
                while let event = try parser.next() {
                    switch event {
                    case .head(let head): target = head.target
                    case .body(let slice): body.append(contentsOf: slice)
                    case .end(let trailers): trailer = trailers["t"]
                    }
                }
            } catch {
                report.expect(false, "request parse error")
            }
        }
        report.expect(target == "/up", "request target")
        report.expect(body == bytes("hello world"), "chunked body")
        report.expect(trailer == "v", "trailer")
        report.mix(body)
    }

    // A smuggling attempt is refused with the 400 mapping.
    var smuggle = HTTPRequestParser()
    smuggle.append(bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n").span)
    do throws(HTTPError) {
        _ = try smuggle.next()
        report.expect(false, "CL+TE accepted")
    } catch {
        report.expect(error == .contentLengthWithTransferEncoding && error.status?.code == 400, "CL+TE error")
    }

    // Responses: HEAD without body, then a chunked one.
    var responses = HTTPResponseParser()
    responses.expectResponse(to: .head)
    responses.expectResponse(to: .get)
    responses.append(bytes("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n").span)
    var codes: [Int] = []
    var body: [UInt8] = []
    do throws(HTTPError) {
        while let event = try responses.next() {
            switch event {
            case .head(let head): codes.append(head.status.code)
            case .body(let slice): body.append(contentsOf: slice)
            case .end: break
            }
        }
    } catch {
        report.expect(false, "response parse error")
    }
    report.expect(codes == [200, 200] && body == bytes("ok") && responses.outstandingResponses == 0, "responses")

    // Serializer and dates.
    var out: [UInt8] = []
    HTTPSerializer.writeHead(HTTPResponseHead(status: .notFound, fields: HTTPFields([("A", "b")])), into: &out)
    HTTPSerializer.writeChunk(bytes("0123456789abcdef").span, into: &out)
    report.expect(out == bytes("HTTP/1.1 404 Not Found\r\nA: b\r\n\r\n10\r\n0123456789abcdef\r\n"), "serializer")
    report.expect(HTTPDate.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT", "date format")
    report.expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777, "IMF-fixdate")
    report.expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == 784_111_777, "RFC 850 date")
    report.expect(HTTPDate.parse("Sun Nov  6 08:49:37 1994") == 784_111_777, "asctime date")
}

// MARK: - Server

func checkServer(_ report: Report) {
    let stack = FakeStack()
    let clock = ManualClock()
    let timers = ManualTimerScheduler(clock: clock)
    // The compiled-in store, as mirage-www uses it (times and digests included).
    let store = CompiledKeyValueStore([
        CompiledFile("hello.txt", base64: "aGVsbG8=", lastModified: 784_111_777),
        CompiledFile("index.html", base64: "PHA+aG9tZTwvcD4=", lastModified: 784_111_777),
    ])
    let files = HTTPFileHandler(store: store)
    let server = HTTPServer(stack: stack, handler: files, timers: timers, clock: clock, wallClock: clock)
    files.responder = server
    let listener: ListenerID
    do throws(DeviceError) { listener = try server.listen(port: 80) } catch { report.expect(false, "listen"); return }
    report.expect(server.localEndpoint(of: listener)?.port == 80, "listening")

    let date = "Tue, 14 Nov 2023 22:13:20 GMT"
    let a = ConnectionID(rawValue: 10)
    server.connectionAccepted(a, listener: listener)

    // GET: exact fields and body.
    server.received(bytes("GET /hello.txt HTTP/1.1\r\nHost: h\r\n\r\n").span, on: a)
    let ok = stack.take(a)
    let etag = field(ok, "ETag") ?? ""
    report.expect(starts(ok, with: "HTTP/1.1 200 OK\r\nETag: \"") && etag.utf8.count > 2, "200 status line and ETag")
    report.expect(ends(ok, with: "\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Type: text/plain; charset=utf-8\r\n"
                       + "Accept-Ranges: bytes\r\nServer: MirageSwift\r\nDate: " + date + "\r\nContent-Length: 5\r\n\r\nhello"), "200 bytes")
    report.mix(ok)

    // Conditional GET: 304, no body.
    server.received(bytes("GET /hello.txt HTTP/1.1\r\nHost: h\r\nIf-None-Match: " + etag + "\r\n\r\n").span, on: a)
    let notModified = stack.take(a)
    report.expect(notModified == bytes("HTTP/1.1 304 Not Modified\r\nETag: " + etag + "\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                                       + "Server: MirageSwift\r\nDate: " + date + "\r\n\r\n"), "304 bytes")
    server.received(bytes("GET /hello.txt HTTP/1.1\r\nHost: h\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n").span, on: a)
    report.expect(starts(stack.take(a), with: "HTTP/1.1 304 Not Modified\r\n"), "304 on If-Modified-Since")

    // Range: 206 with Content-Range.
    server.received(bytes("GET /hello.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=1-3\r\n\r\n").span, on: a)
    let partial = stack.take(a)
    report.expect(starts(partial, with: "HTTP/1.1 206 Partial Content\r\n"), "206 status")
    report.expect(contains(partial, "\r\nContent-Range: bytes 1-3/5\r\n"), "Content-Range")
    report.expect(ends(partial, with: "\r\nContent-Length: 3\r\n\r\nell"), "206 body")
    server.received(bytes("GET /hello.txt HTTP/1.1\r\nHost: h\r\nRange: bytes=9-\r\n\r\n").span, on: a)
    let unsatisfiable = stack.take(a)
    report.expect(starts(unsatisfiable, with: "HTTP/1.1 416 Range Not Satisfiable\r\n") && contains(unsatisfiable, "\r\nContent-Range: bytes */5\r\n"), "416")

    // Index, redirect, traversal, 404, 405.
    server.received(bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n").span, on: a)
    report.expect(ends(stack.take(a), with: "<p>home</p>"), "index.html")
    server.received(bytes("GET /%2e%2e/secret HTTP/1.1\r\nHost: h\r\n\r\n").span, on: a)
    report.expect(starts(stack.take(a), with: "HTTP/1.1 400 Bad Request\r\n"), "traversal refused")
    server.received(bytes("GET /nope HTTP/1.1\r\nHost: h\r\n\r\n").span, on: a)
    report.expect(starts(stack.take(a), with: "HTTP/1.1 404 Not Found\r\n"), "404")
    server.received(bytes("DELETE /hello.txt HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n").span, on: a)
    let notAllowed = stack.take(a)
    report.expect(starts(notAllowed, with: "HTTP/1.1 405 Method Not Allowed\r\n") && field(notAllowed, "Allow") == "GET, HEAD", "405")
    report.expect(stack.closed.isEmpty && stack.aborted.isEmpty, "keep-alive throughout")

    // Smuggling attempt: 400, Connection: close, closed.
    server.received(bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").span, on: a)
    let bad = stack.take(a)
    report.expect(bad == bytes("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 16\r\n"
                               + "Connection: close\r\n\r\n400 Bad Request\n"), "400 bytes")
    report.expect(stack.closed == [a], "closed after 400")
    server.connectionClosed(a, reason: .normal)

    // A slow head: 408 when the header timeout fires.
    let b = ConnectionID(rawValue: 11)
    server.connectionAccepted(b, listener: listener)
    server.received(bytes("GET /hello.txt HTTP/1.1\r\nHo").span, on: b)
    timers.run(until: clock.now() + .seconds(11))
    report.expect(starts(stack.take(b), with: "HTTP/1.1 408 Request Timeout\r\n"), "408")
    report.expect(stack.closed == [a, b], "closed after 408")
    server.connectionClosed(b, reason: .normal)

    let s = server.statistics
    report.expect(s.connectionsAccepted == 2 && s.connectionsOpen == 0 && s.requests == 9 && s.badRequests == 1 && s.timeouts == 1,
                  "statistics")
    report.expect(files.answered[2] == 3 && files.answered[3] == 2 && files.answered[4] == 4, "answered by class")
    server.stop()
}

@_cdecl("mirage_main")
public func mirageMain() -> Int32 {
    let report = Report()
    checkParsers(report)
    checkServer(report)
    print("MirageHTTP: \(report.checks) checks, \(report.failed) failed, digest \(report.digest)")
    return Int32(report.failed)
}
