import Foundation
import MirageDevices
import MirageHTTP
import MiragePlatform
import MirageTCPIP
import MirageTestNetwork
import Testing

#if canImport(Glibc)
import Glibc
#endif

// MirageHTTP's client against a server nobody here wrote: Debian's nginx,
// run in the foreground with a configuration the test writes, on 127.0.0.1
// (client over the kernel's sockets) and inside a namespace on the kernel
// side of a tap device (client over MirageTCPIP). Every run is bounded.

@Suite("MirageHTTP's client against nginx", .serialized, .interop(tools: ["ip", "sh", "nginx", "gzip"]))
struct HTTPClientInteropTests {
    @Test("over SocketStack: keep-alive reuse, HEAD, a range, a 404, a chunked gzip response and an upload")
    func clientOverSockets() throws {
        try withNginx(listen: "127.0.0.1", in: nil) { port, files in
            let loop = try EventLoop()
            let stack = SocketStack(loop: loop)
            defer { stack.closeAll() }
            try exercise(stack: stack, loop: loop, server: Endpoint(.v4(.loopback), port), files: files)
        }
    }

    @Test("over MirageTCPIP on a tap device: the same exchanges with nginx in the namespace")
    func clientOverTap() throws {
        try withStackOnTap(net: 73) { ns, stack, loop in
            try withNginx(listen: "10.199.73.1", in: ns) { port, files in
                try exercise(stack: stack, loop: loop, server: Endpoint(.v4(IPv4Address(10, 199, 73, 1)), port), files: files)
            }
        }
    }
}

/// What nginx serves: a 200 KB file and a compressible text.
private struct ServedFiles {
    var big: [UInt8]
    var text: [UInt8]
}

/// Runs the client's exchanges against nginx at `server` and checks each.
private func exercise<S: Stack>(stack: S, loop: EventLoop, server: Endpoint, files: ServedFiles) throws {
    let client = HTTPClient(stack: stack, timers: loop, clock: loop)
    let collector = ResponseCollector(loop: loop)
    func get(_ target: String, _ method: HTTPMethod = .get, _ fields: [(String, String)] = [], body: HTTPClientBody = .none) throws {
        var head = HTTPRequestHead(method: method, target: target)
        for (n, v) in fields { head.fields.append(name: n, value: v) }
        collector.expected += 1
        try client.request(head, body: body, to: server, handler: collector)
    }
    // One after another on one connection: each is sent when the last ends,
    // from the collector (so the pool is used, not new connections).
    let requests: [() throws -> Void] = [
        { try get("/big.bin") },
        { try get("/big.bin", .head) },
        { try get("/big.bin", .get, [("Range", "bytes=1000-1999")]) },
        { try get("/missing") },
        { try get("/text.txt", .get, [("Accept-Encoding", "gzip")]) },
        // nginx answers a POST to a static file with 405 after reading the
        // body, and keeps the connection.
        { try get("/big.bin", .post, body: .bytes(Array(repeating: 0x61, count: 100_000))) },
    ]
    collector.next = requests
    try requests[0]()
    collector.nextIndex = 1
    try loop.run(until: loop.now() + .seconds(60))
    let r = collector.responses
    try #require(r.count == requests.count, "got \(r.count) responses; failures: \(collector.failures)")
    #expect(r[0].status == 200 && r[0].body == files.big, "GET: \(r[0].status), \(r[0].body.count) bytes")
    #expect(r[1].status == 200 && r[1].body.isEmpty && r[1].fields["Content-Length"] == String(files.big.count), "HEAD")
    #expect(r[2].status == 206 && r[2].body == Array(files.big[1000..<2000]), "range: \(r[2].status)")
    #expect(r[3].status == 404, "missing: \(r[3].status)")
    #expect(r[4].status == 200 && r[4].fields["Transfer-Encoding"] == "chunked" && r[4].fields["Content-Encoding"] == "gzip",
            "gzip: \(r[4].status) \(r[4].fields["Transfer-Encoding"] ?? "-") \(r[4].fields["Content-Encoding"] ?? "-")")
    #expect(try gunzip(r[4].body) == files.text, "the chunked body, un-gzipped, is the file")
    #expect(r[5].status == 405, "upload: \(r[5].status)")
    #expect(collector.failures.isEmpty, "\(collector.failures)")
    let stats = client.statistics
    #expect(stats.connectionsOpened == 1 && stats.connectionsReused == requests.count - 1, "\(stats)")
}

private struct CollectedResponse {
    var status: Int
    var fields: HTTPFields
    var body: [UInt8]
}

/// Collects responses; issues the next request when one ends; stops the
/// loop after the last.
private final class ResponseCollector: HTTPClientHandler {
    let loop: EventLoop
    var expected = 0
    var responses: [CollectedResponse] = []
    var failures: [String] = []
    var next: [() throws -> Void] = []
    var nextIndex = 0
    private var current: CollectedResponse?

    init(loop: EventLoop) { self.loop = loop }

    func responseReceived(_ head: HTTPResponseHead, request: HTTPClientRequestID) {
        current = CollectedResponse(status: head.status.code, fields: head.fields, body: [])
    }

    func bodyReceived(_ bytes: Span<UInt8>, request: HTTPClientRequestID) {
        bytes.withUnsafeBufferPointer { current?.body.append(contentsOf: $0) }
    }

    func responseEnded(_ request: HTTPClientRequestID, trailers: HTTPFields) {
        if let current { responses.append(current) }
        current = nil
        advance()
    }

    func requestFailed(_ request: HTTPClientRequestID, error: HTTPError) {
        failures.append("\(error)")
        loop.stop()
    }

    private func advance() {
        guard nextIndex < next.count else {
            loop.stop()
            return
        }
        let send = next[nextIndex]
        nextIndex += 1
        do { try send() } catch {
            failures.append("\(error)")
            loop.stop()
        }
    }
}

/// Runs nginx (foreground, one worker) listening on `address` (inside `ns`
/// when given) with a scratch root holding the files; passes the port.
private func withNginx(listen address: String, in ns: TestNamespace?, _ body: (UInt16, ServedFiles) throws -> Void) throws {
    let dir = NSTemporaryDirectory() + "/\(TestNames.processTag())-\(TestNames.next())-nginx"
    try FileManager.default.createDirectory(atPath: dir + "/www", withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let files = ServedFiles(
        big: pseudoRandomBytes(count: 200_000, seed: 73),
        text: Array(String(repeating: "MirageSwift serves HTTP over its own TCP/IP.\n", count: 2000).utf8))
    try Data(files.big).write(to: URL(fileURLWithPath: dir + "/www/big.bin"))
    try Data(files.text).write(to: URL(fileURLWithPath: dir + "/www/text.txt"))
    let port = UInt16.random(in: 20_000...29_999)
    let config = """
        daemon off;
        master_process off;
        worker_processes 1;
        pid \(dir)/nginx.pid;
        error_log \(dir)/error.log warn;
        events { worker_connections 64; }
        http {
            access_log off;
            client_body_temp_path \(dir)/body;
            proxy_temp_path \(dir)/proxy;
            fastcgi_temp_path \(dir)/fastcgi;
            uwsgi_temp_path \(dir)/uwsgi;
            scgi_temp_path \(dir)/scgi;
            keepalive_requests 1000;
            gzip on;
            gzip_types text/plain;
            gzip_min_length 1;
            server {
                listen \(address):\(port);
                root \(dir)/www;
            }
        }
        """
    try config.write(toFile: dir + "/nginx.conf", atomically: true, encoding: .utf8)
    let argv = ["nginx", "-e", dir + "/error.log", "-c", dir + "/nginx.conf"]
    let nginx = try ns.map { ns throws -> SpawnedProcess in try ns.spawn(argv) } ?? SpawnedProcess(argv)
    defer { _ = nginx.terminate(grace: 5) }
    let listening = TestEnvironment.waitUntil(timeout: 20, interval: 0.1) {
        let ss = ["ss", "-Hltn"]
        let out = (try? (ns.map { try $0.exec(ss, timeout: 10) } ?? runCommand(ss, timeout: 10)).stdout) ?? ""
        return out.contains("\(address):\(port) ")
    }
    try #require(listening, "nginx did not listen: \(nginx.output().stderr) \((try? String(contentsOfFile: dir + "/error.log", encoding: .utf8)) ?? "")")
    try body(port, files)
}

/// `gzip -dc` of `bytes`.
private func gunzip(_ bytes: [UInt8]) throws -> [UInt8] {
    try runCommand(["gzip", "-dc"], timeout: 30, input: bytes).check().stdoutBytes
}
