import MirageDevices

/// A file body being sent for one exchange. (Types used by the generic
/// classes live outside them, so they need no generic metadata at run time.)
private struct FileTransfer {
    var key: String
    var offset: Int
    var end: Int
}

/// What is worked out once per key: the tag, the time, the type.
private struct FileInfo {
    var size: Int
    var etag: String
    var modified: Int64?
    var modifiedText: String?
    var contentType: String
}

/// Serves the files of a `KeyValueStore` (compiled into the program, or a
/// directory during development): GET and HEAD, `index.html` for paths
/// ending in `/`, content types by extension, strong ETags with
/// If-None-Match, Last-Modified with If-Modified-Since when the store knows
/// times, and single byte ranges (206, 416) with If-Range.
///
/// Attach it to a server with `responder`: `HTTPServer(…, handler: files)`
/// then `files.responder = server`.
public final class HTTPFileHandler<Store: KeyValueStore>: HTTPServerHandler {
    /// The files.
    public let store: Store
    /// Where answers go; set once the server exists.
    public var responder: (any HTTPResponder)?
    /// Bytes read from the store per `writeBody`.
    public var chunkSize = 64 * 1024
    /// Requests answered, by status class (index 1…5).
    public private(set) var answered: [Int] = [0, 0, 0, 0, 0, 0]

    private var transfers: [HTTPExchange: FileTransfer] = [:]
    private var infos: [String: FileInfo] = [:]

    /// A handler serving `store`.
    public init(store: Store) {
        self.store = store
    }

    public func requestReceived(_ head: HTTPRequestHead, exchange: HTTPExchange) {
        guard let responder else { return }
        do throws(HTTPError) {
            try answer(head, exchange: exchange, responder: responder)
        } catch {
            // A misuse here is our own bug; the connection is reset rather
            // than left hanging.
            transfers[exchange] = nil
        }
    }

    public func responseWritable(_ exchange: HTTPExchange) {
        guard let responder else { return }
        do throws(HTTPError) { try pump(exchange, responder: responder) } catch { transfers[exchange] = nil }
    }

    public func exchangeAborted(_ exchange: HTTPExchange, error: HTTPError) {
        transfers[exchange] = nil
    }

    public func connectionUpgraded(_ connection: ConnectionID, exchange: HTTPExchange, leftover: [UInt8]) {}

    // MARK: Answering

    private func answer(_ head: HTTPRequestHead, exchange: HTTPExchange, responder: any HTTPResponder) throws(HTTPError) {
        guard head.method == .get || head.method == .head else {
            var fields = HTTPFields()
            fields.append(name: "Allow", value: "GET, HEAD")
            return try plain(exchange, .methodNotAllowed, fields: fields, responder: responder)
        }
        guard let path = Self.path(of: head.target) else {
            return try plain(exchange, .badRequest, responder: responder)
        }
        guard let (key, size) = resolve(path) else {
            if directoryRedirect(path) {
                // The target's own (still encoded) path, so the Location is
                // as valid a URI reference as the request was.
                var fields = HTTPFields()
                fields.append(name: "Location", value: String(head.path) + "/")
                return try plain(exchange, .movedPermanently, fields: fields, responder: responder)
            }
            return try plain(exchange, .notFound, responder: responder)
        }
        let info = self.info(key, size: size)
        let etag = info.etag
        let modified = info.modified
        var fields = HTTPFields()
        fields.append(name: "ETag", value: etag)
        if let text = info.modifiedText { fields.append(name: "Last-Modified", value: text) }

        // RFC 9110 §13.2.2: If-None-Match first; If-Modified-Since only without it.
        if let inm = head.fields["If-None-Match"] {
            if Self.matches(inm, etag, weak: true) { return try notModified(exchange, fields, responder) }
        } else if let ims = head.fields["If-Modified-Since"], let since = HTTPDate.parse(ims), let modified, modified <= since {
            return try notModified(exchange, fields, responder)
        }

        fields.append(name: "Content-Type", value: info.contentType)
        fields.append(name: "Accept-Ranges", value: "bytes")
        var range = 0..<size
        var status = HTTPStatus.ok
        if head.method == .get, let spec = head.fields["Range"], rangeApplies(head, etag: etag, modified: modified) {
            switch Self.byteRange(spec, size: size) {
            case .ignore:
                break
            case .unsatisfiable:
                var f = HTTPFields()
                f.append(name: "Content-Range", value: "bytes */\(size)")
                return try plain(exchange, .rangeNotSatisfiable, fields: f, responder: responder)
            case .range(let r):
                range = r
                status = .partialContent
                fields.append(name: "Content-Range", value: "bytes \(r.lowerBound)-\(r.upperBound - 1)/\(size)")
            }
        }
        count(status)
        try responder.startResponse(exchange, head: HTTPResponseHead(status: status, fields: fields), bodyLength: .known(range.count))
        if head.method == .head || range.isEmpty {
            return try responder.finishResponse(exchange, trailers: HTTPFields())
        }
        transfers[exchange] = FileTransfer(key: key, offset: range.lowerBound, end: range.upperBound)
        try pump(exchange, responder: responder)
    }

    /// Writes file bytes until the responder asks to wait or the range ends.
    private func pump(_ exchange: HTTPExchange, responder: any HTTPResponder) throws(HTTPError) {
        while var t = transfers[exchange] {
            let n = min(chunkSize, t.end - t.offset)
            let written: Result<Bool, HTTPError>
            do throws(DeviceError) {
                written = try store.read(t.key, offset: t.offset, length: n) { span in
                    do throws(HTTPError) { return .success(try responder.writeBody(exchange, span)) } catch { return .failure(error) }
                }
            } catch {
                transfers[exchange] = nil
                throw .device(error)
            }
            let more: Bool
            switch written {
            case .success(let m): more = m
            case .failure(let error):
                transfers[exchange] = nil
                throw error
            }
            t.offset += n
            if t.offset >= t.end {
                transfers[exchange] = nil
                return try responder.finishResponse(exchange, trailers: HTTPFields())
            }
            transfers[exchange] = t
            if !more { return }
        }
    }

    private func notModified(_ exchange: HTTPExchange, _ fields: HTTPFields, _ responder: any HTTPResponder) throws(HTTPError) {
        count(.notModified)
        try responder.startResponse(exchange, head: HTTPResponseHead(status: .notModified, fields: fields), bodyLength: .known(0))
        try responder.finishResponse(exchange, trailers: HTTPFields())
    }

    private func plain(_ exchange: HTTPExchange, _ status: HTTPStatus, fields: HTTPFields = HTTPFields(), responder: any HTTPResponder) throws(HTTPError) {
        count(status)
        var fields = fields
        fields.append(name: "Content-Type", value: "text/plain; charset=utf-8")
        let body = Array((status.description + "\n").utf8)
        try responder.respond(exchange, head: HTTPResponseHead(status: status, fields: fields), body: body.span)
    }

    private func count(_ status: HTTPStatus) {
        let i = status.code / 100
        if i >= 1 && i <= 5 { answered[i] += 1 }
    }

    // MARK: Paths

    /// The decoded path of an origin-form or absolute-form target, or nil
    /// when it is not a clean absolute path: percent-escapes must be valid,
    /// and NUL, backslash and `.`/`..` segments are refused.
    public static func path(of target: String) -> String? {
        var bytes = Array(target.utf8)
        if let q = bytes.firstIndex(of: UInt8(ascii: "?")) { bytes.removeSubrange(q...) }
        if let hash = bytes.firstIndex(of: UInt8(ascii: "#")) { bytes.removeSubrange(hash...) }
        if bytes.first != ASCII.slash {
            // absolute-form: scheme://authority/path
            guard let sep = findSubsequence(bytes, [ASCII.colon, ASCII.slash, ASCII.slash]) else { return nil }
            let afterAuthority = bytes[(sep + 3)...].firstIndex(of: ASCII.slash) ?? bytes.count
            bytes = afterAuthority < bytes.count ? Array(bytes[afterAuthority...]) : [ASCII.slash]
        }
        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            var b = bytes[i]
            if b == 0x25 {
                guard i + 2 < bytes.count, let hi = ASCII.hexValue(bytes[i + 1]), let lo = ASCII.hexValue(bytes[i + 2]) else { return nil }
                b = UInt8(hi << 4 | lo)
                i += 2
            }
            guard b != 0, b != 0x5C else { return nil }
            decoded.append(b)
            i += 1
        }
        // Refuse dot segments rather than resolve them: a file server has
        // no use for them and they are how traversal is attempted.
        var segmentStart = 1
        for j in 1...decoded.count where j == decoded.count || decoded[j] == ASCII.slash {
            let segment = decoded[segmentStart..<j]
            if segment.elementsEqual([ASCII.dot]) || segment.elementsEqual([ASCII.dot, ASCII.dot]) { return nil }
            segmentStart = j + 1
        }
        guard let text = String(validating: decoded, as: UTF8.self) else { return nil }
        return text
    }

    private static func findSubsequence(_ bytes: [UInt8], _ needle: [UInt8]) -> Int? {
        guard bytes.count >= needle.count else { return nil }
        for i in 0...(bytes.count - needle.count) where bytes[i..<(i + needle.count)].elementsEqual(needle) { return i }
        return nil
    }

    /// The store key for a decoded path (`index.html` for a directory) and its size.
    private func resolve(_ path: String) -> (key: String, size: Int)? {
        var key = String(path.dropFirst())
        if key.isEmpty || key.hasSuffix("/") { key += "index.html" }
        guard let size = try? store.size(of: key) else { return nil }
        return (key, size)
    }

    /// Whether `/dir` should become `/dir/` (`dir/index.html` exists).
    private func directoryRedirect(_ path: String) -> Bool {
        guard !path.hasSuffix("/") else { return false }
        let key = String(path.dropFirst()) + "/index.html"
        return (try? store.size(of: key)) != nil
    }

    // MARK: Validators

    /// The validators and type of `key`, computed on first use and again
    /// when the store says the value changed (a directory being edited).
    private func info(_ key: String, size: Int) -> FileInfo {
        let modified = store.lastModified(of: key)?.seconds
        if let known = infos[key], known.size == size, known.modified == modified { return known }
        let info = FileInfo(size: size, etag: entityTag(key, size: size), modified: modified,
                            modifiedText: modified.map(HTTPDate.format), contentType: ContentType.forKey(key))
        infos[key] = info
        return info
    }

    /// A strong entity tag: the store's digest of the value, or one
    /// computed here (`ContentDigest`), with the size.
    private func entityTag(_ key: String, size: Int) -> String {
        let digest = store.digest(of: key)
            ?? (try? store.read(key, offset: 0, length: size) { ContentDigest.of($0) })
            ?? "0"
        return "\"" + digest + "-" + String(size) + "\""
    }

    /// Whether `list` (an If-None-Match or If-Match value) names `etag`;
    /// weak comparison ignores `W/` (RFC 9110 §8.8.3.2).
    static func matches(_ list: String, _ etag: String, weak: Bool) -> Bool {
        let bytes = Array(list.utf8)
        let span = bytes.span
        var found = false
        ASCII.forEachListElement(span, 0..<bytes.count) { element in
            var r = element
            if r.count == 1 && span[r.lowerBound] == UInt8(ascii: "*") { found = true; return false }
            if weak, r.count > 2, span[r.lowerBound] == UInt8(ascii: "W"), span[r.lowerBound + 1] == ASCII.slash {
                r = (r.lowerBound + 2)..<r.upperBound
            }
            if Bytes.string(span, r) == etag { found = true; return false }
            return true
        }
        return found
    }

    /// If-Range (RFC 9110 §13.1.5): the range applies only when the
    /// validator still matches (strong comparison for tags).
    private func rangeApplies(_ head: HTTPRequestHead, etag: String, modified: Int64?) -> Bool {
        guard let ifRange = head.fields["If-Range"] else { return true }
        if ifRange.hasPrefix("\"") { return ifRange == etag }
        if let date = HTTPDate.parse(ifRange), let modified { return modified == date }
        return false
    }

    enum RangeResult: Equatable {
        case ignore
        case unsatisfiable
        case range(Range<Int>)
    }

    /// One `bytes=first-last`, `bytes=first-` or `bytes=-suffix` range
    /// (RFC 9110 §14.1.2). Several ranges, other units or bad syntax are
    /// ignored (the whole file is sent, as §14.2 allows).
    static func byteRange(_ spec: String, size: Int) -> RangeResult {
        let bytes = Array(spec.utf8)
        let span = bytes.span
        guard bytes.count > 6, ASCII.equalsIgnoringCase(span, 0..<6, "bytes=") else { return .ignore }
        let set = ASCII.trimmed(span, 6..<bytes.count)
        guard !bytes[set].contains(ASCII.comma), let dash = bytes[set].firstIndex(of: 0x2D) else { return .ignore }
        let firstRange = ASCII.trimmed(span, set.lowerBound..<dash)
        let lastRange = ASCII.trimmed(span, (dash + 1)..<set.upperBound)
        if firstRange.isEmpty {
            guard let suffix = ASCII.decimal(span, lastRange) else { return .ignore }
            guard suffix > 0, size > 0 else { return .unsatisfiable }
            return .range(max(0, size - suffix)..<size)
        }
        guard let first = ASCII.decimal(span, firstRange) else { return .ignore }
        var last = size - 1
        if !lastRange.isEmpty {
            guard let l = ASCII.decimal(span, lastRange) else { return .ignore }
            guard l >= first else { return .ignore }
            last = min(l, size - 1)
        }
        guard first < size else { return .unsatisfiable }
        return .range(first..<(last + 1))
    }
}
