import MirageDevices
import MirageHTTP
import Testing

/// An `HTTPResponder` that records what it is told, and can refuse more
/// body (back-pressure) on demand.
final class RecordingResponder: HTTPResponder {
    struct Response {
        var head: HTTPResponseHead
        var length: HTTPBodyLength
        var body: [UInt8] = []
        var writes = 0
        var finished = false
        var misuse: String? = nil

        var status: Int { head.status.code }
        func field(_ name: String) -> String? { head.fields[name] }
    }

    var responses: [HTTPExchange: Response] = [:]
    /// What `writeBody` returns.
    var acceptsMore = true

    func startResponse(_ exchange: HTTPExchange, head: HTTPResponseHead, bodyLength: HTTPBodyLength) throws(HTTPError) {
        guard responses[exchange] == nil else { throw .misuse("second response") }
        responses[exchange] = Response(head: head, length: bodyLength)
    }

    func writeBody(_ exchange: HTTPExchange, _ bytes: Span<UInt8>) throws(HTTPError) -> Bool {
        guard var r = responses[exchange], !r.finished else { throw .misuse("writeBody without a response") }
        r.body.append(span: bytes)
        r.writes += 1
        if case .known(let n) = r.length, r.body.count > n { r.misuse = "body longer than declared" }
        responses[exchange] = r
        return acceptsMore
    }

    func finishResponse(_ exchange: HTTPExchange, trailers: HTTPFields) throws(HTTPError) {
        guard var r = responses[exchange], !r.finished else { throw .misuse("finish without a response") }
        r.finished = true
        // A HEAD response declares the length and sends nothing.
        if case .known(let n) = r.length, r.body.count != n, !r.body.isEmpty {
            r.misuse = "body of \(r.body.count) bytes, declared \(n)"
        }
        responses[exchange] = r
    }
}

/// A memory store that knows one modification time for every key.
final class DatedStore: KeyValueStore {
    let entries: MemoryKeyValueStore
    var modified: Int64?
    init(_ entries: [String: [UInt8]]) { self.entries = MemoryKeyValueStore(entries) }
    func keys(withPrefix prefix: String) -> [String] { entries.keys(withPrefix: prefix) }
    func size(of key: String) throws(DeviceError) -> Int { try entries.size(of: key) }
    func read<R>(_ key: String, offset: Int, length: Int, _ body: (Span<UInt8>) -> R) throws(DeviceError) -> R {
        try entries.read(key, offset: offset, length: length, body)
    }
    func lastModified(of key: String) -> WallTime? {
        guard (try? entries.size(of: key)) != nil, let modified else { return nil }
        return WallTime(seconds: modified, nanoseconds: 0)
    }
    func digest(of key: String) -> String? { entries.digest(of: key) }
}

@Suite("Static file handler")
struct FileHandlerTests {
    static let data: [UInt8] = (0..<50).map { UInt8($0 + 65) }
    static let big: [UInt8] = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) }
    static let modified: Int64 = 784_111_777

    final class Fixture {
        let store = DatedStore([
            "index.html": bytes("<h1>home</h1>"),
            "dir/index.html": bytes("<h1>dir</h1>"),
            "data.bin": FileHandlerTests.data,
            "style.css": bytes("body{}"),
            "caf\u{E9}.txt": bytes("coffee"),
            "big.bin": FileHandlerTests.big,
            "empty.txt": [],
        ])
        let handler: HTTPFileHandler<DatedStore>
        let responder = RecordingResponder()
        var number: UInt64 = 0

        init(lastModified: Bool = false) {
            if lastModified { store.modified = FileHandlerTests.modified }
            handler = HTTPFileHandler(store: store)
            handler.responder = responder
        }

        /// Sends a request; returns its exchange.
        @discardableResult
        func request(_ method: HTTPMethod = .get, _ target: String, _ fields: [(String, String)] = []) -> HTTPExchange {
            number += 1
            let exchange = HTTPExchange(connection: ConnectionID(rawValue: 1), number: number)
            var f = HTTPFields([("Host", "h")])
            for (n, v) in fields { f.append(name: n, value: v) }
            handler.requestReceived(HTTPRequestHead(method: method, target: target, fields: f), exchange: exchange)
            return exchange
        }

        func get(_ target: String, _ fields: [(String, String)] = [], method: HTTPMethod = .get) -> RecordingResponder.Response? {
            responder.responses[request(method, target, fields)]
        }

        var etag: String { self.get("/data.bin")?.field("ETag") ?? "?" }
    }

    @Test("200 with ETag, Content-Type, Accept-Ranges and the bytes")
    func ok() throws {
        let f = Fixture()
        let r = try #require(f.get("/data.bin"))
        #expect(r.status == 200)
        #expect(r.length == .known(50))
        #expect(r.body == Self.data)
        #expect(r.finished)
        #expect(r.misuse == nil)
        #expect(r.field("Content-Type") == "application/octet-stream")
        #expect(r.field("Accept-Ranges") == "bytes")
        let etag = try #require(r.field("ETag"))
        #expect(etag.hasPrefix("\"") && etag.hasSuffix("\"") && etag.count > 2)
        #expect(r.field("Last-Modified") == nil)
        // The same content gives the same tag; other content another.
        #expect(f.get("/data.bin")?.field("ETag") == etag)
        #expect(f.get("/style.css")?.field("ETag") != etag)
        #expect(f.get("/style.css")?.field("Content-Type") == "text/css; charset=utf-8")
    }

    @Test("index.html for / and /dir/; /dir redirects to /dir/")
    func index() throws {
        let f = Fixture()
        let root = try #require(f.get("/"))
        #expect(root.status == 200)
        #expect(root.body == bytes("<h1>home</h1>"))
        #expect(root.field("Content-Type") == "text/html; charset=utf-8")
        #expect(f.get("/dir/")?.body == bytes("<h1>dir</h1>"))
        #expect(f.get("/?q=1")?.body == bytes("<h1>home</h1>"))
        let redirect = try #require(f.get("/dir"))
        #expect(redirect.status == 301)
        #expect(redirect.field("Location") == "/dir/")
        #expect(redirect.finished)
    }

    @Test("absolute-form and percent-encoded targets")
    func targets() throws {
        let f = Fixture()
        #expect(f.get("http://example.com/style.css")?.body == bytes("body{}"))
        #expect(f.get("http://example.com")?.body == bytes("<h1>home</h1>"))
        #expect(f.get("/caf%C3%A9.txt")?.body == bytes("coffee"))
        #expect(f.get("/data.bin#frag")?.status == 200)
    }

    @Test("traversal and malformed paths are refused with 400", arguments: [
        "/../etc/passwd", "/%2e%2e/etc/passwd", "/%2E%2E/x", "/a/../index.html", "/a/%2e%2e/index.html", "/./index.html",
        "/%2e/index.html", "/a/..", "/index.html%00", "/%00", "/a%5cb", "/a\\b", "/..%5c..%5cwin.ini", "/%zz", "/%2", "/%FF",
        "example.com/x",
    ])
    func traversal(target: String) throws {
        let f = Fixture()
        let r = try #require(f.get(target))
        #expect(r.status == 400)
        #expect(r.finished)
        #expect(HTTPFileHandler<MemoryKeyValueStore>.path(of: target) == nil)
    }

    @Test("path decoding")
    func pathDecoding() {
        typealias H = HTTPFileHandler<MemoryKeyValueStore>
        #expect(H.path(of: "/a%20b/c") == "/a b/c")
        #expect(H.path(of: "/x?y=../..") == "/x")
        #expect(H.path(of: "https://h:8080/p/q?r") == "/p/q")
        #expect(H.path(of: "/caf%c3%a9") == "/caf\u{E9}")
        #expect(H.path(of: "/...") == "/...")
        #expect(H.path(of: "/a..b/.c") == "/a..b/.c")
        #expect(H.path(of: "") == nil)
    }

    @Test("unknown files get 404; other methods 405 with Allow")
    func notFoundAndMethod() throws {
        let f = Fixture()
        #expect(f.get("/missing.txt")?.status == 404)
        #expect(f.get("/missing/")?.status == 404)
        let post = try #require(f.get("/data.bin", method: .post))
        #expect(post.status == 405)
        #expect(post.field("Allow") == "GET, HEAD")
        #expect(f.get("/data.bin", method: .delete)?.status == 405)
        #expect(f.handler.answered[4] == 4)
    }

    @Test("HEAD: the fields of a GET, no body")
    func head() throws {
        let f = Fixture()
        let r = try #require(f.get("/data.bin", method: .head))
        #expect(r.status == 200)
        #expect(r.length == .known(50))
        #expect(r.writes == 0)
        #expect(r.finished)
        #expect(r.field("ETag") == f.etag)
        // A Range on HEAD is ignored.
        #expect(f.get("/data.bin", [("Range", "bytes=0-9")], method: .head)?.status == 200)
    }

    @Test("an empty file: 200, zero length, finished")
    func emptyFile() throws {
        let f = Fixture()
        let r = try #require(f.get("/empty.txt"))
        #expect(r.status == 200)
        #expect(r.length == .known(0))
        #expect(r.finished)
    }

    @Test("If-None-Match: 304 on a match (strong, weak, *, in a list), 200 otherwise")
    func ifNoneMatch() throws {
        let f = Fixture()
        let etag = f.etag
        for value in [etag, "W/" + etag, "*", "\"nope\", " + etag, "\"a\",W/\(etag) ,\"b\""] {
            let r = try #require(f.get("/data.bin", [("If-None-Match", value)]))
            #expect(r.status == 304, "\(value)")
            #expect(r.field("ETag") == etag)
            #expect(r.writes == 0 && r.finished)
        }
        for value in ["\"nope\"", "W/\"nope\"", etag + "x", ""] {
            #expect(f.get("/data.bin", [("If-None-Match", value)])?.status == 200, "\(value)")
        }
    }

    @Test("If-Modified-Since with Last-Modified; If-None-Match takes precedence")
    func ifModifiedSince() throws {
        let f = Fixture(lastModified: true)
        let r = try #require(f.get("/data.bin"))
        #expect(r.field("Last-Modified") == "Sun, 06 Nov 1994 08:49:37 GMT")
        let same = try #require(f.get("/data.bin", [("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")]))
        #expect(same.status == 304)
        #expect(same.field("Last-Modified") == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(f.get("/data.bin", [("If-Modified-Since", "Sunday, 06-Nov-94 09:00:00 GMT")])?.status == 304)
        #expect(f.get("/data.bin", [("If-Modified-Since", "Sun, 06 Nov 1994 08:49:36 GMT")])?.status == 200)
        #expect(f.get("/data.bin", [("If-Modified-Since", "not a date")])?.status == 200)
        // RFC 9110 §13.2.2: If-Modified-Since is ignored when If-None-Match is present.
        #expect(f.get("/data.bin", [("If-None-Match", "\"other\""), ("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")])?.status == 200)
        // Without modification times the field is ignored.
        #expect(Fixture().get("/data.bin", [("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT")])?.status == 200)
    }

    struct RangeCase: Sendable, CustomTestStringConvertible {
        var spec: String
        var status: Int
        var range: Range<Int>?
        var contentRange: String?
        var testDescription: String { spec }
    }

    @Test("Range on 50 bytes", arguments: [
        RangeCase(spec: "bytes=0-9", status: 206, range: 0..<10, contentRange: "bytes 0-9/50"),
        RangeCase(spec: "bytes=5-", status: 206, range: 5..<50, contentRange: "bytes 5-49/50"),
        RangeCase(spec: "bytes=-3", status: 206, range: 47..<50, contentRange: "bytes 47-49/50"),
        RangeCase(spec: "bytes=-500", status: 206, range: 0..<50, contentRange: "bytes 0-49/50"),
        RangeCase(spec: "bytes=40-100", status: 206, range: 40..<50, contentRange: "bytes 40-49/50"),
        RangeCase(spec: "bytes=49-49", status: 206, range: 49..<50, contentRange: "bytes 49-49/50"),
        RangeCase(spec: "BYTES= 1-2 ", status: 206, range: 1..<3, contentRange: "bytes 1-2/50"),
        RangeCase(spec: "bytes=100-", status: 416, range: nil, contentRange: "bytes */50"),
        RangeCase(spec: "bytes=50-60", status: 416, range: nil, contentRange: "bytes */50"),
        RangeCase(spec: "bytes=-0", status: 416, range: nil, contentRange: "bytes */50"),
        // Ignored: the whole file.
        RangeCase(spec: "bytes=0-1,5-6", status: 200, range: 0..<50, contentRange: nil),
        RangeCase(spec: "bytes=9-5", status: 200, range: 0..<50, contentRange: nil),
        RangeCase(spec: "items=0-9", status: 200, range: 0..<50, contentRange: nil),
        RangeCase(spec: "bytes=a-b", status: 200, range: 0..<50, contentRange: nil),
        RangeCase(spec: "bytes=", status: 200, range: 0..<50, contentRange: nil),
        RangeCase(spec: "bytes=5", status: 200, range: 0..<50, contentRange: nil),
    ])
    func range(_ c: RangeCase) throws {
        let f = Fixture()
        let r = try #require(f.get("/data.bin", [("Range", c.spec)]))
        #expect(r.status == c.status)
        #expect(r.field("Content-Range") == c.contentRange)
        #expect(r.finished)
        #expect(r.misuse == nil)
        if let range = c.range {
            #expect(r.body == Array(Self.data[range]))
            #expect(r.length == .known(range.count))
        }
    }

    @Test("If-Range: the range applies only while the validator matches")
    func ifRange() throws {
        let f = Fixture(lastModified: true)
        let etag = f.etag
        #expect(f.get("/data.bin", [("Range", "bytes=0-9"), ("If-Range", etag)])?.status == 206)
        #expect(f.get("/data.bin", [("Range", "bytes=0-9"), ("If-Range", "\"old\"")])?.status == 200)
        // Weak tags never match for If-Range (strong comparison, RFC 9110 §13.1.5).
        #expect(f.get("/data.bin", [("Range", "bytes=0-9"), ("If-Range", "W/" + etag)])?.status == 200)
        #expect(f.get("/data.bin", [("Range", "bytes=0-9"), ("If-Range", "Sun, 06 Nov 1994 08:49:37 GMT")])?.status == 206)
        #expect(f.get("/data.bin", [("Range", "bytes=0-9"), ("If-Range", "Sun, 06 Nov 1994 08:49:38 GMT")])?.status == 200)
        let whole = try #require(f.get("/data.bin", [("Range", "bytes=0-9"), ("If-Range", "\"old\"")]))
        #expect(whole.body == Self.data)
    }

    @Test("back-pressure: the handler stops when told, and resumes on responseWritable")
    func backPressure() throws {
        let f = Fixture()
        f.handler.chunkSize = 8
        f.responder.acceptsMore = false
        let exchange = f.request(.get, "/data.bin")
        #expect(f.responder.responses[exchange]?.writes == 1)
        #expect(f.responder.responses[exchange]?.finished == false)
        f.handler.responseWritable(exchange)
        #expect(f.responder.responses[exchange]?.writes == 2)
        #expect(f.responder.responses[exchange]?.body == Array(Self.data[0..<16]))
        f.responder.acceptsMore = true
        f.handler.responseWritable(exchange)
        let r = try #require(f.responder.responses[exchange])
        #expect(r.finished)
        #expect(r.body == Self.data)
        #expect(r.writes == 7)
        // Nothing more after the end.
        f.handler.responseWritable(exchange)
        #expect(f.responder.responses[exchange]?.writes == 7)
    }

    @Test("an aborted exchange is forgotten")
    func aborted() {
        let f = Fixture()
        f.handler.chunkSize = 8
        f.responder.acceptsMore = false
        let exchange = f.request(.get, "/data.bin")
        f.handler.exchangeAborted(exchange, error: .connectionClosed(.reset))
        f.responder.acceptsMore = true
        f.handler.responseWritable(exchange)
        #expect(f.responder.responses[exchange]?.writes == 1)
        #expect(f.responder.responses[exchange]?.finished == false)
    }

    @Test("a 1 MB file streams in chunks with the exact bytes")
    func largeFile() throws {
        let f = Fixture()
        let r = try #require(f.get("/big.bin"))
        #expect(r.status == 200)
        #expect(r.length == .known(1 << 20))
        #expect(r.writes == (1 << 20) / f.handler.chunkSize)
        #expect(r.body == Self.big)
        #expect(r.finished)
        let tail = try #require(f.get("/big.bin", [("Range", "bytes=1000000-")]))
        #expect(tail.status == 206)
        #expect(tail.body == Array(Self.big[1_000_000...]))
        #expect(tail.field("Content-Range") == "bytes 1000000-1048575/1048576")
    }

    @Test("content types by extension", arguments: [
        ("a.html", "text/html; charset=utf-8"), ("a.htm", "text/html; charset=utf-8"), ("x/y.css", "text/css; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"), ("d.json", "application/json"), ("i.png", "image/png"),
        ("p.jpeg", "image/jpeg"), ("v.svg", "image/svg+xml"), ("m.wasm", "application/wasm"), ("f.woff2", "font/woff2"),
        ("noext", "application/octet-stream"), ("a.unknown", "application/octet-stream"), ("dir.d/file", "application/octet-stream"),
    ])
    func contentTypes(key: String, type: String) {
        #expect(ContentType.forKey(key) == type)
    }
}
