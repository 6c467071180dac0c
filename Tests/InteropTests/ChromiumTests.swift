import Foundation
import MirageTestNetwork
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The screenshot check that the mirage-www interop test relies on, proven
/// against stand-in pages: headless Chromium loads a page, and the share of
/// pixels of the deck's background colour (#2b1055) tells a rendered slide
/// from an error page.
@Suite("Chromium screenshots: a served page's colour is seen", .serialized)
struct ChromiumTests {
    static let deck = RGB(hex: "#2b1055")!

    static func page(background: String) -> String {
        """
        <!doctype html>
        <html><head><meta charset="utf-8"><title>stand-in slide</title>
        <style>html, body { margin: 0; height: 100%; background: \(background); color: #fff; font: 48px sans-serif }</style>
        </head><body><h1>MirageSwift</h1><p>slide 1</p></body></html>
        """
    }

    @Test("A page with background #2b1055: more than half the pixels have that colour",
          .interop(tools: [Chromium.toolName]))
    func deckColourSeen() throws {
        let server = try LoopbackPageServer(page: Self.page(background: "#2b1055"))
        defer { server.stop() }
        let shot = try Chromium.screenshot(url: "http://127.0.0.1:\(server.port)/", width: 1024, height: 768)
        let image = try shot.image()
        #expect(image.width == 1024 && image.height == 768)
        let count = image.count(of: Self.deck, tolerance: 2)
        #expect(count.fraction > 0.5, "\(count); most common: \(image.dominantColours())")
        // The page's white heading is there too: a real rendering, not a fill.
        #expect(image.count(of: RGB(255, 255, 255), tolerance: 2).matching > 100)
        #expect(server.pageRequests >= 1)
        print("Chromium screenshot: \(String(format: "%.2f", shot.seconds)) s, \(shot.png.count) bytes, \(count)")
    }

    @Test("Negative control: a white page has (almost) no #2b1055 pixels",
          .interop(tools: [Chromium.toolName]))
    func whitePageFails() throws {
        let server = try LoopbackPageServer(page: Self.page(background: "#ffffff"))
        defer { server.stop() }
        let shot = try Chromium.screenshot(url: "http://127.0.0.1:\(server.port)/", width: 640, height: 480)
        let image = try shot.image()
        let count = image.count(of: Self.deck, tolerance: 2)
        #expect(count.total == 640 * 480)
        #expect(count.fraction < 0.01, "\(count)")
        #expect(image.dominantColours(1).first?.colour == RGB(255, 255, 255))
    }

    @Test("An HTTP error page loads but fails the colour check",
          .interop(tools: [Chromium.toolName]))
    func errorPageFails() throws {
        let server = try LoopbackPageServer(page: Self.page(background: "#2b1055"))
        defer { server.stop() }
        let shot = try Chromium.screenshot(url: "http://127.0.0.1:\(server.port)/missing", width: 640, height: 480)
        #expect(try shot.image().count(of: Self.deck).fraction < 0.01)
    }

    @Test("A refused connection throws .screenshotFailed with Chromium's reason",
          .interop(tools: [Chromium.toolName]))
    func refusedConnection() throws {
        let port = try closedLoopbackPort()
        let error = #expect(throws: TestNetworkError.self) {
            try Chromium.screenshot(url: "http://127.0.0.1:\(port)/", width: 320, height: 240)
        }
        guard case .screenshotFailed(_, let reason)? = error else {
            Issue.record("expected .screenshotFailed, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("ERR_CONNECTION_REFUSED"), "\(reason)")
    }

    @Test("Inside a namespace: Chromium reaches a server across a veth pair",
          .interop(tools: ["ip", Chromium.toolName, "python3"]))
    func acrossNamespaces() throws {
        let folder = NSTemporaryDirectory() + "/\(TestNames.processTag())-\(TestNames.next())-spawn"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Self.page(background: "#2b1055").write(toFile: folder + "/index.html", atomically: true, encoding: .utf8)

        try withNamespaces { server, client in
            try withVethPair(between: server, and: client,
                             addressA: "10.199.70.1/24", addressB: "10.199.70.2/24") { veth in
                let http = try server.spawn(
                    ["python3", "-u", "-m", "http.server", "--bind", veth.hostA, "--directory", folder, "8080"])
                try http.waitForOutput(containing: "Serving HTTP", timeout: 20)
                let shot = try Chromium.screenshot(
                    url: "http://\(veth.hostA):8080/", namespace: client, width: 800, height: 600)
                let count = try shot.image().count(of: Self.deck)
                #expect(count.fraction > 0.5, "\(count)")
                #expect(http.output().stderr.contains("\"GET / HTTP/1.1\" 200"), "\(http.output())")
            }
        }
    }

    @Test("The arguments: only the page's host resolves, its port is allowed, the URL comes last")
    func arguments() {
        let arguments = Chromium.arguments(
            url: "http://10.199.70.1:6000/slides", screenshotPath: "/tmp/x.png", profileDirectory: "/tmp/p",
            width: 800, height: 600, virtualTimeBudget: 2000)
        #expect(arguments.contains("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 10.199.70.1"))
        #expect(arguments.contains("--explicitly-allowed-ports=6000"))
        #expect(arguments.contains("--window-size=800,600"))
        #expect(arguments.contains("--virtual-time-budget=2000"))
        #expect(arguments.contains("--no-sandbox"))
        #expect(arguments.last == "http://10.199.70.1:6000/slides")
        let https = Chromium.arguments(
            url: "https://example.test/", screenshotPath: "/tmp/x.png", profileDirectory: "/tmp/p",
            width: 800, height: 600)
        #expect(https.contains("--explicitly-allowed-ports=443"))
        #expect(!https.contains { $0.hasPrefix("--virtual-time-budget") })
    }
}

/// A tiny HTTP server on 127.0.0.1 (port chosen by the kernel) for the
/// screenshot tests: "GET /" gets `page`, any other path a plain 404. One
/// thread per connection (Chromium may open a spare connection and never
/// use it); `stop()` ends the accept loop within 0.1 s.
final class LoopbackPageServer: Sendable {
    let port: UInt16
    private let listener: KernelListener
    private let stopping = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    private let served = Atomic<Int>(0)

    /// How many times "/" was served.
    var pageRequests: Int { served.load(ordering: .relaxed) }

    init(page: String) throws {
        let listener = try KernelListener()
        self.listener = listener
        self.port = listener.endpoint.port
        let body = Array(page.utf8)
        Thread.detachNewThread { [self] in
            while !stopping.load(ordering: .relaxed) {
                var entry = pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0)
                guard poll(&entry, 1, 100) > 0, let connection = try? listener.accept() else { continue }
                Thread.detachNewThread { [self] in self.answer(connection, body: body) }
            }
            stopped.store(true, ordering: .releasing)
        }
    }

    deinit { stop() }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        _ = TestEnvironment.waitUntil(timeout: 2) { stopped.load(ordering: .acquiring) }
    }

    private func answer(_ connection: KernelSocket, body: [UInt8]) {
        defer { connection.close() }
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        // Until the blank line that ends the request head (no body: GET).
        while request.count < 65536 && !String(decoding: request, as: UTF8.self).contains("\r\n\r\n") {
            guard let n = try? connection.receive(into: &buffer), n > 0 else { return }
            request += buffer[0..<n]
        }
        let line = String(decoding: request, as: UTF8.self).prefix { $0 != "\r" && $0 != "\n" }
        let parts = line.split(separator: " ")
        let isPage = parts.count >= 2 && parts[0] == "GET" && parts[1] == "/"
        if isPage { served.add(1, ordering: .relaxed) }
        let content = isPage ? body : Array("not found\n".utf8)
        let head = "HTTP/1.1 \(isPage ? "200 OK" : "404 Not Found")\r\n"
            + "Content-Type: \(isPage ? "text/html; charset=utf-8" : "text/plain")\r\n"
            + "Content-Length: \(content.count)\r\nConnection: close\r\n\r\n"
        try? connection.sendAll(Array(head.utf8) + content)
        connection.shutdownWrite()
    }
}
