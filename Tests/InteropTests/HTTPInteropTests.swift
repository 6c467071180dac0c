import Foundation
import MirageDevices
import MirageHTTP
import MirageHTTPAsync
import MiragePlatform
import MirageTestNetwork
import Testing

#if canImport(Glibc)
import Glibc
#endif

// MirageHTTP against real clients: curl and wrk (Debian's), and raw bytes
// from a kernel socket for the malformed and smuggling table. The slide
// deck is served by the real `mirage-www` binary over the kernel's sockets
// (127.0.0.1) and over MirageTCPIP on a tap device whose kernel side is in
// a namespace the test makes (10.199.7x.0/24 exists only there). Uploads,
// 100-continue and the error table use an in-process HTTPServer with a
// handler that echoes request bodies. Every command has a time limit.

/// The deck's source folder, which `mirage-www` compiles in.
private let siteDirectory = ExampleBinary.packageRoot + "/Examples/www/Sources/MirageWWWSite/Site"

@Suite("MirageHTTP against curl, wrk and raw bytes", .serialized,
       .interop(tools: ["ip", "curl", "wrk", "sh"]))
struct HTTPInteropTests {
    // MARK: The slide deck, both stacks

    @Test("curl fetches every slide from mirage-www over SocketStack on one kept-alive connection; bytes equal the sources")
    func everySlideOverSockets() throws {
        let www = try startWWW([])
        defer { _ = www.process.terminate(grace: 5) }
        try fetchEverySlide(base: www.url) { argv, timeout in try runCommand(argv, timeout: timeout) }
        let status = try waitForWWWStatus(www.process, containing: "1 accepted")
        #expect(status.contains(" 0 refused as malformed"), "\(status)")
        let summary = try stopWWW(www.process)
        #expect(summary.contains("stopped by signal"), "\(summary)")
    }

    @Test("curl in a namespace fetches every slide from mirage-www over MirageTCPIP on a tap device")
    func everySlideOverTap() throws {
        try withKernelSideTap(net: 70, linkSuffix: "h") { ns, tap in
            let www = try startWWW(["--net", "tap", "--tap", tap, "--ipv4", "10.199.70.2/24"], in: ns)
            defer { _ = www.process.terminate(grace: 5) }
            #expect(www.url == "http://10.199.70.2/")
            try fetchEverySlide(base: www.url) { argv, timeout in try ns.exec(argv, timeout: timeout) }
            let status = try waitForWWWStatus(www.process, containing: "1 accepted")
            #expect(status.contains("0 open"), "\(status)")
            let summary = try stopWWW(www.process)
            #expect(summary.contains("tcp-segments-received") || summary.contains("stack counters"), "\(summary)")
        }
    }

    @Test("curl: HEAD, Range (206 and 416), If-None-Match (304) and a 404 on one connection")
    func conditionalAndRangeRequests() throws {
        let www = try startWWW([])
        defer { _ = www.process.terminate(grace: 5) }
        let index = try Data(contentsOf: URL(fileURLWithPath: siteDirectory + "/index.html"))
        try withScratch { dir in
            // HEAD: the GET's fields, no body.
            let head = try runCommand(["curl", "-sS", "--max-time", "20", "-I", www.url], timeout: 30).check()
            #expect(head.stdout.hasPrefix("HTTP/1.1 200"), "\(head.stdout)")
            #expect(head.stdout.contains("Content-Length: \(index.count)"), "\(head.stdout)")
            #expect(head.stdout.contains("Content-Type: text/html; charset=utf-8"), "\(head.stdout)")
            #expect(head.stdout.contains("Accept-Ranges: bytes"), "\(head.stdout)")
            let etag = try #require(field("ETag", in: head.stdout), "no ETag in \(head.stdout)")

            // One curl, four requests, one connection.
            let out = try runCommand([
                "curl", "-sS", "--max-time", "20", "-w", "%{http_code} %{num_connects} %{size_download}\\n",
                "-r", "0-99", "-o", dir + "/range", www.url,
                "--next", "-r", "1000000-", "-o", dir + "/unsatisfiable", "-w", "%{http_code} %{num_connects} %{size_download}\\n", www.url,
                "--next", "-H", "If-None-Match: \(etag)", "-o", dir + "/conditional", "-w", "%{http_code} %{num_connects} %{size_download}\\n", www.url,
                "--next", "-o", dir + "/missing", "-w", "%{http_code} %{num_connects} %{size_download}\\n", www.url + "no-such-slide.html",
            ], timeout: 60).check()
            let lines = out.stdout.split(separator: "\n").map(String.init)
            #expect(lines == ["206 1 100", "416 0 \(try fileSize(dir + "/unsatisfiable"))", "304 0 0", "404 0 \(try fileSize(dir + "/missing"))"],
                    "\(out.stdout)")
            let range = try Data(contentsOf: URL(fileURLWithPath: dir + "/range"))
            #expect(range == index.prefix(100))
        }
        let status = try waitForWWWStatus(www.process, containing: "2 accepted")
        #expect(status.contains("2xx 2, 3xx 1, 4xx 2"), "\(status)")
        _ = try stopWWW(www.process)
    }

    @Test("wrk: 2 s of load with 32 connections over SocketStack, no errors, every connection closed after")
    func wrkLoad() throws {
        let www = try startWWW([])
        defer { _ = www.process.terminate(grace: 5) }
        // One wrk thread: the other suites run beside this one on two cores.
        let wrk = try runCommand(["wrk", "-t", "1", "-c", "32", "-d", "2s", "--timeout", "5s", www.url], timeout: 60).check()
        #expect(!wrk.stdout.contains("Non-2xx"), "\(wrk.stdout)")
        #expect(!wrk.stdout.contains("Socket errors"), "\(wrk.stdout)")
        let requests = numberBefore(wrk.stdout, "requests in") ?? 0
        #expect(requests >= 1000, "wrk made only \(requests) requests: \(wrk.stdout)")
        print("wrk against mirage-www (debug build):\n\(wrk.stdout)")
        let status = try waitForWWWStatus(www.process, containing: "0 open")
        #expect(status.contains("0 refused as malformed"), "\(status)")
        #expect(status.contains("0 aborted"), "\(status)")
        _ = try stopWWW(www.process)
    }

    @Test("wrk: 2 s of load over MirageTCPIP on a tap device, no errors")
    func wrkLoadOverTap() throws {
        try withKernelSideTap(net: 71, linkSuffix: "h") { ns, tap in
            let www = try startWWW(["--net", "tap", "--tap", tap, "--ipv4", "10.199.71.2/24"], in: ns)
            defer { _ = www.process.terminate(grace: 5) }
            let wrk = try ns.exec(["wrk", "-t", "1", "-c", "16", "-d", "2s", "--timeout", "5s", www.url], timeout: 60).check()
            #expect(!wrk.stdout.contains("Non-2xx"), "\(wrk.stdout)")
            #expect(!wrk.stdout.contains("Socket errors"), "\(wrk.stdout)")
            let requests = numberBefore(wrk.stdout, "requests in") ?? 0
            #expect(requests >= 300, "wrk made only \(requests) requests: \(wrk.stdout)")
            print("wrk against mirage-www --net tap (debug build):\n\(wrk.stdout)")
            let status = try waitForWWWStatus(www.process, containing: "0 open")
            #expect(status.contains("0 aborted"), "\(status)")
            _ = try stopWWW(www.process)
        }
    }

    // MARK: Uploads against the in-process echo server

    @Test("curl uploads 3 MB chunked with Expect: 100-continue; the body echoed back is identical")
    func chunkedUploadWith100Continue() throws {
        try withEchoServer { server in
            try withScratch { dir in
                let sent = dir + "/sent.bin", received = dir + "/received.bin"
                try Data(pseudoRandomBytes(count: 3_000_000, seed: 77)).write(to: URL(fileURLWithPath: sent))
                // -T with chunked: curl streams the file; it asks for 100
                // Continue before a body this large.
                let curl = try runCommand([
                    "curl", "-sS", "-v", "--max-time", "60", "-T", sent, "-H", "Transfer-Encoding: chunked",
                    "-H", "Expect: 100-continue", "-o", received, server.url + "upload",
                ], timeout: 90).check()
                #expect(curl.stderr.contains("HTTP/1.1 100 Continue"), "\(curl.stderr)")
                #expect(curl.stderr.contains("Transfer-Encoding: chunked"), "\(curl.stderr)")
                #expect(curl.stderr.contains("HTTP/1.1 200"), "\(curl.stderr)")
                let a = try Data(contentsOf: URL(fileURLWithPath: sent))
                let b = try Data(contentsOf: URL(fileURLWithPath: received))
                #expect(a.count == b.count && a == b, "sent \(a.count) bytes, got \(b.count) back")
            }
            let stats = try server.statistics()
            #expect(stats.requests == 1 && stats.responses == 1, "\(stats)")
        }
    }

    @Test("curl: three uploads with Content-Length on one kept-alive connection")
    func keepAliveUploads() throws {
        try withEchoServer { server in
            let out = try runCommand([
                "curl", "-sS", "--max-time", "30", "-w", "%{http_code} %{num_connects}\\n",
                "--data-binary", "first", server.url + "a",
                "--next", "-w", "%{http_code} %{num_connects}\\n", "--data-binary", "second", server.url + "b",
                "--next", "-w", "%{http_code} %{num_connects}\\n", "--data-binary", "third", server.url + "c",
            ], timeout: 60).check()
            #expect(out.stdout == "first200 1\nsecond200 0\nthird200 0\n", "\(out.stdout)")
            #expect(try server.statistics().connectionsAccepted == 1)
        }
    }

    @Test("an async handler (AsyncHTTPServer, the loop as executor) answers curl's GET and POST")
    func asyncFront() throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        let stack = try harness.makeStack()
        let loop = harness.loop
        let server: AsyncHTTPServer = try harness.sync {
            AsyncHTTPServer(stack: stack.value, loop: loop) { request in
                // A suspension point, then the answer from the loop's thread.
                await Task.yield()
                let text = "\(request.head.method) \(request.head.target) \(request.body.count) bytes, on loop: \(loop.inLoopThread)"
                return HTTPResponse(text: text)
            }
        }
        let endpoint = try #require(try waitAsync(on: loop) { try await server.listen(port: 0, address: .v4(.loopback)) } ?? nil)
        let out = try runCommand([
            "curl", "-sS", "--max-time", "20", "-w", " %{http_code}\\n", "http://\(endpoint)/hello?x=1",
            "--next", "-w", " %{http_code}\\n", "--data-binary", "12345", "http://\(endpoint)/post",
        ], timeout: 30).check()
        #expect(out.stdout == "GET /hello?x=1 0 bytes, on loop: true 200\nPOST /post 5 bytes, on loop: true 200\n", "\(out.stdout)")
        let stats = try #require(try waitAsync(on: loop) { await server.statistics })
        #expect(stats.requests == 2 && stats.responses == 2 && stats.connectionsAccepted == 1, "\(stats)")
    }

    // MARK: Malformed and smuggling requests

    /// After the answer, the connection is closed or still usable (RFC 9112
    /// §9.6 and §11: after a framing error nothing more can be trusted).
    enum After: Sendable { case closed, usable }

    struct BadRequest: Sendable, CustomStringConvertible {
        var name: String
        var bytes: [UInt8]
        var status: Int
        var after: After
        var description: String { name }
        init(_ name: String, _ text: String, _ status: Int, _ after: After) {
            self.name = name
            bytes = Array(text.utf8)
            self.status = status
            self.after = after
        }
        init(_ name: String, bytes: [UInt8], _ status: Int, _ after: After) {
            self.name = name
            self.bytes = bytes
            self.status = status
            self.after = after
        }
    }

    static let badRequests: [BadRequest] = [
        BadRequest("Content-Length with Transfer-Encoding", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, .closed),
        BadRequest("two different Content-Lengths", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, .closed),
        BadRequest("a Content-Length list that disagrees", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!", 400, .closed),
        BadRequest("a negative Content-Length", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400, .closed),
        BadRequest("a signed Content-Length", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", 400, .closed),
        BadRequest("bare LF line ends", "GET / HTTP/1.1\nHost: a\n\n", 400, .closed),
        BadRequest("a bare CR in a field", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 400, .closed),
        BadRequest("an invalid method character", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, .closed),
        BadRequest("an invalid field-name character", "GET / HTTP/1.1\r\nHost: a\r\nX[y]: 1\r\n\r\n", 400, .closed),
        BadRequest("whitespace before the colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, .closed),
        BadRequest("obsolete line folding", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  2\r\n\r\n", 400, .closed),
        BadRequest("two spaces in the request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, .closed),
        BadRequest("a NUL in a field value", bytes: Array("GET / HTTP/1.1\r\nHost: a\r\nX: a".utf8) + [0] + Array("b\r\n\r\n".utf8), 400, .closed),
        BadRequest("no Host in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n", 400, .closed),
        BadRequest("two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, .closed),
        BadRequest("a 9,000-byte target", "GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414, .closed),
        BadRequest("a 9,000-byte field", "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 9000) + "\r\n\r\n", 431, .closed),
        BadRequest("101 fields", "GET / HTTP/1.1\r\nHost: a\r\n" + String(repeating: "X: 1\r\n", count: 100) + "\r\n", 431, .closed),
        BadRequest("a 40 KB head", "GET / HTTP/1.1\r\nHost: a\r\n" + String(repeating: "X-Filler: " + String(repeating: "c", count: 1000) + "\r\n", count: 40) + "\r\n", 431, .closed),
        BadRequest("a body over the limit", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000\r\n\r\n", 413, .closed),
        BadRequest("Transfer-Encoding: gzip", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501, .closed),
        BadRequest("chunked twice", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400, .closed),
        BadRequest("chunked not last", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n", 400, .closed),
        BadRequest("Transfer-Encoding in HTTP/1.0", "POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, .closed),
        BadRequest("a bad chunk size", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400, .closed),
        BadRequest("a chunk size of 17 hex digits", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", 400, .closed),
        BadRequest("chunk data without its CRLF", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", 400, .closed),
        BadRequest("HTTP/2.0 in the request line", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, .closed),
        BadRequest("an unknown expectation", "POST /x HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\nContent-Length: 0\r\n\r\n", 417, .closed),
        BadRequest("Connection: close is honoured", "POST /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 200, .closed),
        BadRequest("HTTP/1.0 closes by default", "POST /x HTTP/1.0\r\nContent-Length: 2\r\n\r\nok", 200, .closed),
        BadRequest("a valid chunked body with a trailer", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n", 200, .usable),
        BadRequest("identical duplicate Content-Lengths", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", 200, .usable),
        BadRequest("a leading empty line", "\r\nPOST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok", 200, .usable),
        BadRequest("HTTP/1.0 with keep-alive", "POST /x HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", 200, .usable),
    ]

    @Test("malformed and smuggling requests get the right status; the connection is then closed or usable as RFC 9112 says",
          arguments: badRequests)
    func malformedRequest(_ request: BadRequest) throws {
        try withEchoServer { server in
            let socket = try KernelSocket(connectingTo: server.endpoint, timeoutSeconds: 5)
            defer { socket.close() }
            try socket.sendAll(request.bytes)
            let first = try readResponse(socket)
            #expect(first.status == request.status, "\(request.name): got \(first.head)")
            switch request.after {
            case .closed:
                #expect(first.head.contains("Connection: close"), "\(request.name): \(first.head)")
                // Anything sent now meets a closed connection: EOF (or a reset).
                try? socket.sendAll(Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
                let rest = try readUntilClosed(socket)
                #expect(rest.closed, "\(request.name): the connection stayed open")
                #expect(rest.bytes.isEmpty || first.status == 200, "\(request.name): more bytes after the answer: \(rest.bytes.count)")
            case .usable:
                try socket.sendAll(Array("POST /again HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nagain".utf8))
                let second = try readResponse(socket)
                #expect(second.status == 200 && second.body == Array("again".utf8), "\(request.name): then \(second.head)")
            }
            if request.status >= 400 {
                #expect(try server.statistics().badRequests == 1)
            }
        }
    }

    @Test("two pipelined requests in one segment get their responses in order")
    func pipelinedRequests() throws {
        try withEchoServer { server in
            let socket = try KernelSocket(connectingTo: server.endpoint, timeoutSeconds: 5)
            defer { socket.close() }
            let requests = "POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\none"
                + "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\ntwo"
            try socket.sendAll(Array(requests.utf8))
            var buffered: [UInt8] = []
            let first = try readResponse(socket, buffered: &buffered)
            let second = try readResponse(socket, buffered: &buffered)
            #expect(first.body == Array("one".utf8) && second.body == Array("two".utf8))
        }
    }

    @Test("a head that stops arriving gets 408 after the header timeout, then the connection closes")
    func slowHeaderTimesOut() throws {
        try withEchoServer { server in
            let socket = try KernelSocket(connectingTo: server.endpoint, timeoutSeconds: 5)
            defer { socket.close() }
            let started = ContinuousClock.now
            try socket.sendAll(Array("GET / HTTP/1.1\r\nHost: a\r\nX-Slow:".utf8))
            let answer = try readResponse(socket)
            let waited = ContinuousClock.now - started
            #expect(answer.status == 408)
            #expect(waited >= .milliseconds(900) && waited < .seconds(4), "answered after \(waited)")
            #expect(try readUntilClosed(socket).closed)
            #expect(try server.statistics().timeouts == 1)
        }
    }
}

/// The deck's background colour (Site/style.css).
private let deckBackground = RGB(hex: "#2b1055")!

@Suite("mirage-www in headless Chromium", .serialized, .interop(tools: ["ip", "sh", Chromium.toolName]))
struct HTTPBrowserTests {
    @Test("Chromium renders the first slide over SocketStack: most pixels are the deck's background colour")
    func firstSlideOverSockets() throws {
        let www = try startWWW([])
        defer { _ = www.process.terminate(grace: 5) }
        let shot = try Chromium.screenshot(url: www.url)
        let count = try shot.image().count(of: deckBackground)
        #expect(count.fraction > 0.5, "\(count) of the first slide is #2b1055")
        // Chromium fetched the page, its stylesheet and maybe the icon.
        let status = try waitForWWWStatus(www.process, containing: "accepted")
        #expect(!status.contains(" 0 requests"), "\(status)")
        _ = try stopWWW(www.process)
    }

    @Test("Chromium in a namespace renders the first slide served over MirageTCPIP on a tap device")
    func firstSlideOverTap() throws {
        try withKernelSideTap(net: 72, linkSuffix: "h") { ns, tap in
            let www = try startWWW(["--net", "tap", "--tap", tap, "--ipv4", "10.199.72.2/24"], in: ns)
            defer { _ = www.process.terminate(grace: 5) }
            let shot = try Chromium.screenshot(url: www.url, namespace: ns)
            let count = try shot.image().count(of: deckBackground)
            #expect(count.fraction > 0.5, "\(count) of the first slide is #2b1055")
            _ = try stopWWW(www.process)
        }
    }

    @Test("the control: a missing page is not the deck (the colour check can fail)")
    func missingPageIsNotTheDeck() throws {
        let www = try startWWW([])
        defer { _ = www.process.terminate(grace: 5) }
        let shot = try Chromium.screenshot(url: www.url + "no-such-slide.html")
        let count = try shot.image().count(of: deckBackground)
        #expect(count.matching == 0, "\(count)")
        _ = try stopWWW(www.process)
    }
}

// MARK: - mirage-www, the real binary

private struct RunningWWW {
    var process: SpawnedProcess
    var url: String
}

/// Starts mirage-www (in `ns` when given) and waits for its "serving" line.
private func startWWW(_ arguments: [String], in ns: TestNamespace? = nil) throws -> RunningWWW {
    let binary = try #require(ExampleBinary.path("mirage-www"), "mirage-www must be built next to the tests")
    let argv = [binary] + (arguments.isEmpty ? ["--port", "0"] : arguments)
    let process = try ns.map { ns throws -> SpawnedProcess in try ns.spawn(argv) } ?? SpawnedProcess(argv)
    try process.waitForOutput(containing: "serving http://", timeout: 30)
    let stdout = process.output().stdout
    let line = try #require(stdout.split(separator: "\n").first { $0.hasPrefix("serving http://") })
    let url = String(line.dropFirst("serving ".count).prefix { $0 != " " })
    return RunningWWW(process: process, url: url)
}

/// Stops mirage-www with SIGTERM; it must exit 0. Returns its output.
private func stopWWW(_ process: SpawnedProcess) throws -> String {
    let status = process.terminate(grace: 10)
    let output = process.output()
    #expect(status == 0, "mirage-www exited \(status): \(output.stderr)")
    return output.stdout
}

/// Asks mirage-www for its status until the line contains `text`.
@discardableResult
private func waitForWWWStatus(_ process: SpawnedProcess, containing text: String, timeout: Double = 20) throws -> String {
    waitForStatusLine(process, containing: [text], timeout: timeout)
}

/// Every file of the deck, relative to the site folder, sorted.
private func siteFiles() throws -> [String] {
    let enumerator = try #require(FileManager.default.enumerator(atPath: siteDirectory))
    var files: [String] = []
    while let path = enumerator.nextObject() as? String {
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: siteDirectory + "/" + path, isDirectory: &isDirectory)
        if !isDirectory.boolValue && !(path as NSString).lastPathComponent.hasPrefix(".") { files.append(path) }
    }
    return files.sorted()
}

/// One curl run fetching `/` and every file: all 200, one connection for
/// all of them, every body equal to its source file.
private func fetchEverySlide(base: String, run: ([String], Double) throws -> CommandResult) throws {
    let files = try siteFiles()
    #expect(files.contains("index.html") && files.contains("style.css") && files.count >= 5, "\(files)")
    try withScratch { dir in
        var argv = ["curl", "-sS", "--max-time", "60"]
        let targets = [""] + files
        for (i, file) in targets.enumerated() {
            if i > 0 { argv.append("--next") }
            argv += ["-w", "%{http_code} %{num_connects}\\n", "-o", "\(dir)/\(i)", base + file]
        }
        let result = try run(argv, 120).check()
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == targets.count, "\(result.stdout)")
        for (i, line) in lines.enumerated() {
            #expect(line == (i == 0 ? "200 1" : "200 0"), "\(targets[i]): \(line)")
        }
        for (i, target) in targets.enumerated() {
            let source = try Data(contentsOf: URL(fileURLWithPath: siteDirectory + "/" + (target.isEmpty ? "index.html" : target)))
            let got = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(i)"))
            #expect(got == source, "\(target.isEmpty ? "/" : target): \(got.count) bytes, the source has \(source.count)")
        }
    }
}

// MARK: - The in-process echo server

/// Answers every request with 200 and the request's body (bounded by the
/// server's body limit), `Content-Length`.
private final class BodyEchoHandler: HTTPServerHandler {
    var responder: (any HTTPResponder)?
    private var bodies: [HTTPExchange: [UInt8]] = [:]

    func requestReceived(_ head: HTTPRequestHead, exchange: HTTPExchange) { bodies[exchange] = [] }

    func bodyReceived(_ bytes: Span<UInt8>, exchange: HTTPExchange) {
        bytes.withUnsafeBufferPointer { bodies[exchange, default: []].append(contentsOf: $0) }
    }

    func requestEnded(_ exchange: HTTPExchange, trailers: HTTPFields) {
        let body = bodies.removeValue(forKey: exchange) ?? []
        var fields = HTTPFields()
        fields.append(name: "Content-Type", value: "application/octet-stream")
        try? responder?.respond(exchange, head: HTTPResponseHead(status: .ok, fields: fields), body: body.span)
    }

    func exchangeAborted(_ exchange: HTTPExchange, error: HTTPError) { bodies[exchange] = nil }

    func connectionUpgraded(_ connection: ConnectionID, exchange: HTTPExchange, leftover: [UInt8]) {}
}

private struct EchoServerHandle {
    var harness: SocketTestLoop
    var server: LoopBound<HTTPServer<SocketStack>>
    var endpoint: Endpoint
    var url: String { "http://\(endpoint)/" }

    func statistics() throws -> HTTPServerStatistics {
        let server = self.server
        return try harness.sync { server.value.statistics }
    }
}

/// An HTTPServer on 127.0.0.1 (kernel sockets) with the body-echo handler;
/// header timeout 1 s, body limit 8 MB.
private func withEchoServer(_ body: (EchoServerHandle) throws -> Void) throws {
    let harness = try SocketTestLoop()
    defer { harness.shutdown() }
    let stack = try harness.makeStack()
    let loop = harness.loop
    let server: LoopBound<HTTPServer<SocketStack>> = try harness.sync {
        let handler = BodyEchoHandler()
        var configuration = HTTPServerConfiguration()
        configuration.connection.headerTimeout = .seconds(1)
        let server = HTTPServer(stack: stack.value, handler: handler, timers: loop, clock: loop, wallClock: loop,
                                configuration: configuration)
        handler.responder = server
        try server.listen(port: 0, address: .v4(.loopback))
        return server
    }
    let bound: Endpoint = try #require(try harness.sync { server.value.listenerEndpoints.first })
    try body(EchoServerHandle(harness: harness, server: server, endpoint: bound))
}

// MARK: - Reading responses from a kernel socket

private struct RawResponse {
    var status: Int
    var head: String
    var body: [UInt8]
}

/// Reads one response (Content-Length framed) from `socket`.
private func readResponse(_ socket: KernelSocket) throws -> RawResponse {
    var buffered: [UInt8] = []
    return try readResponse(socket, buffered: &buffered)
}

private func readResponse(_ socket: KernelSocket, buffered: inout [UInt8]) throws -> RawResponse {
    var chunk = [UInt8](repeating: 0, count: 65536)
    let separator = Array("\r\n\r\n".utf8)
    func headEnd() -> Int? {
        guard buffered.count >= 4 else { return nil }
        for i in 0...(buffered.count - 4) where buffered[i..<(i + 4)].elementsEqual(separator) { return i + 4 }
        return nil
    }
    while headEnd() == nil {
        let n = try socket.receive(into: &chunk)
        guard n > 0 else { throw SocketTestError.timedOut("the connection closed before a response head: \(String(decoding: buffered, as: UTF8.self))") }
        buffered += chunk[0..<n]
    }
    let end = headEnd()!
    let head = String(decoding: buffered[0..<end], as: UTF8.self)
    let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? -1
    let length = field("Content-Length", in: head).flatMap { Int($0) } ?? 0
    while buffered.count < end + length {
        let n = try socket.receive(into: &chunk)
        guard n > 0 else { break }
        buffered += chunk[0..<n]
    }
    let body = Array(buffered[end..<min(buffered.count, end + length)])
    buffered.removeFirst(min(buffered.count, end + length))
    return RawResponse(status: status, head: head, body: body)
}

/// Reads until the peer closes (EOF or reset) or 3 s pass.
private func readUntilClosed(_ socket: KernelSocket) throws -> (closed: Bool, bytes: [UInt8]) {
    var chunk = [UInt8](repeating: 0, count: 65536)
    var bytes: [UInt8] = []
    let deadline = ContinuousClock.now + .seconds(3)
    while ContinuousClock.now < deadline {
        do {
            let n = try socket.receive(into: &chunk)
            if n == 0 { return (true, bytes) }
            bytes += chunk[0..<n]
        } catch let error as KernelSocketError where error.code == ECONNRESET {
            return (true, bytes)
        } catch let error as KernelSocketError where error.code == EAGAIN || error.code == EWOULDBLOCK {
            return (false, bytes)
        }
    }
    return (false, bytes)
}

/// The value of field `name` in a response head printed by curl or read raw.
private func field(_ name: String, in head: String) -> String? {
    for line in head.split(whereSeparator: { $0.isNewline }) {
        let parts = line.split(separator: ":", maxSplits: 1)
        if parts.count == 2, parts[0].lowercased() == name.lowercased() {
            return parts[1].trimmingCharacters(in: .whitespaces)
        }
    }
    return nil
}

private func fileSize(_ path: String) throws -> Int {
    (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
}

/// The integer just before `word` in `text` ("12345 requests in").
private func numberBefore(_ text: String, _ word: String) -> Int? {
    guard let range = text.range(of: word) else { return nil }
    let before = text[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
    return Int(before.split(separator: " ").last ?? "")
}

/// A fresh directory, removed afterwards.
private func withScratch<R>(_ body: (String) throws -> R) throws -> R {
    let path = NSTemporaryDirectory() + "/\(TestNames.processTag())-\(TestNames.next())-http"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

/// Runs an async body from a synchronous test and waits (bounded) for it.
private func waitAsync<T: Sendable>(on loop: EventLoop, timeout: Double = 20, _ body: @escaping @Sendable () async throws -> T) throws -> T? {
    let result = LockedValue<Result<T, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    // On the loop's own thread, not the cooperative pool: this thread blocks
    // below, and on two cores the pool's other thread may be blocked by a
    // test running beside this one, which left the task no thread to run on.
    Task(executorPreference: loop) {
        do { result.set(.success(try await body())) } catch { result.set(.failure(error)) }
        done.signal()
    }
    guard done.wait(timeout: .now() + timeout) == .success else { throw SocketTestError.timedOut("async work still running after \(timeout) s") }
    return try result.get()?.get()
}
