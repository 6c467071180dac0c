import MirageDevices
import MirageHTTP

/// The UTF-8 bytes of `text` (test vectors are written as strings with
/// explicit `\r\n`).
func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Text of `bytes`, for readable failure messages.
func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// Fields as (name, value) pairs, comparable with `==`.
func pairs(_ fields: HTTPFields) -> [[String]] { fields.map { [$0.name, $0.value] } }

/// One parsed message with its body slices joined: what a chunking must not
/// change.
struct ParsedMessage: Equatable, CustomStringConvertible {
    /// `METHOD target HTTP/x.y` or `HTTP/x.y code`.
    var start: String
    var fields: [[String]]
    var body: [UInt8] = []
    var trailers: [[String]]? = nil

    var description: String {
        "\(start) \(fields) body \(body.count) bytes \"\(text(body))\" trailers \(trailers.map { "\($0)" } ?? "-")"
    }
}

/// Everything a parser produced from an input: complete and partial
/// messages, and the error that stopped it.
struct ParseOutcome: Equatable, CustomStringConvertible {
    var messages: [ParsedMessage] = []
    var error: HTTPError? = nil

    var description: String { "\(messages) error \(error.map { "\($0)" } ?? "-")" }

    mutating func head(_ start: String, _ fields: HTTPFields) {
        messages.append(ParsedMessage(start: start, fields: pairs(fields)))
    }

    mutating func body(_ slice: ArraySlice<UInt8>) {
        precondition(!messages.isEmpty, "body before a head")
        // The parser hands out non-empty slices only.
        if slice.isEmpty { messages[messages.count - 1].start += " <empty body event>" }
        messages[messages.count - 1].body.append(contentsOf: slice)
    }

    mutating func end(_ trailers: HTTPFields) {
        precondition(!messages.isEmpty, "end before a head")
        messages[messages.count - 1].trailers = pairs(trailers)
    }
}

func startLine(_ head: HTTPRequestHead) -> String { "\(head.method) \(head.target) \(head.version)" }
func startLine(_ head: HTTPResponseHead) -> String { "\(head.version) \(head.status.code)" }

/// `count` bytes cut into pieces of the given sizes; the last piece takes
/// the rest. A size of 0 makes an empty piece.
func cut(_ count: Int, _ pieces: [Int]) -> [Range<Int>] {
    var ranges: [Range<Int>] = []
    var offset = 0
    for p in pieces where offset < count || p == 0 {
        let n = min(p, count - offset)
        ranges.append(offset..<(offset + n))
        offset += n
    }
    if offset < count || ranges.isEmpty { ranges.append(offset..<count) }
    return ranges
}

/// Feeds `input` to a request parser in pieces of the given sizes (the last
/// piece takes the rest), draining events after each.
func parseRequests(_ input: [UInt8], pieces: [Int] = [], limits: HTTPLimits = .server) -> ParseOutcome {
    var parser = HTTPRequestParser(limits: limits)
    var outcome = ParseOutcome()
    for range in cut(input.count, pieces) {
        parser.append(input.span.extracting(range))
        do throws(HTTPError) {
            while let event = try parser.next() {
                switch event {
                case .head(let h): outcome.head(startLine(h), h.fields)
                case .body(let b): outcome.body(b)
                case .end(let t): outcome.end(t)
                }
            }
        } catch {
            outcome.error = error
            // After an error the parser stays finished: nothing more comes
            // out, and nothing is consumed.
            let held = parser.bufferedCount
            var after: HTTPRequestParser.Event?
            do throws(HTTPError) { after = try parser.next() } catch { after = nil }
            if after != nil || parser.bufferedCount != held {
                outcome.error = .misuse("parser moved after an error")
            }
            return outcome
        }
    }
    return outcome
}

/// Feeds `input` to a response parser told to expect `methods`, in pieces,
/// then signals the end of input when `finish`.
func parseResponses(_ input: [UInt8], methods: [HTTPMethod], pieces: [Int] = [], finish: Bool = false) -> ParseOutcome {
    var parser = HTTPResponseParser()
    for m in methods { parser.expectResponse(to: m) }
    var outcome = ParseOutcome()
    do throws(HTTPError) {
        for range in cut(input.count, pieces) {
            parser.append(input.span.extracting(range))
            while let event = try parser.next() {
                switch event {
                case .head(let h): outcome.head(startLine(h), h.fields)
                case .body(let b): outcome.body(b)
                case .end(let t): outcome.end(t)
                }
            }
        }
        if finish, case .end(let t)? = try parser.finish() { outcome.end(t) }
    } catch {
        outcome.error = error
    }
    return outcome
}

/// Every way to cut `count` bytes in two (the cut at `i` for i in 0...count).
func twoWaySplits(_ count: Int) -> [[Int]] { (0...count).map { [$0] } }

/// One byte at a time.
func byteByByte(_ count: Int) -> [Int] { Array(repeating: 1, count: count) }

/// Feeds `input` whole, in every 2-way split and byte by byte, and returns
/// the whole-input outcome plus a description of the first chunking that
/// disagreed with it (nil when all agree).
func checkAllChunkings(_ input: [UInt8], limits: HTTPLimits = .server) -> (ParseOutcome, String?) {
    let whole = parseRequests(input, limits: limits)
    for split in twoWaySplits(input.count) {
        let o = parseRequests(input, pieces: split, limits: limits)
        if o != whole { return (whole, "split at \(split[0]): \(o)\n   whole: \(whole)") }
    }
    let o = parseRequests(input, pieces: byteByByte(input.count), limits: limits)
    if o != whole { return (whole, "byte by byte: \(o)\n   whole: \(whole)") }
    return (whole, nil)
}

extension HTTPRequestParser.Event: Equatable {
    public static func == (a: Self, b: Self) -> Bool {
        switch (a, b) {
        case (.head(let x), .head(let y)): startLine(x) == startLine(y) && pairs(x.fields) == pairs(y.fields)
        case (.body(let x), .body(let y)): x.elementsEqual(y)
        case (.end(let x), .end(let y)): pairs(x) == pairs(y)
        default: false
        }
    }
}

// MARK: - A server connection driven by hand

/// Drives an `HTTPServerConnection` with an explicit instant, collecting
/// its events and output.
struct ConnectionDriver {
    var connection: HTTPServerConnection
    var now = Instant(nanoseconds: 1_000_000_000)

    init(configuration: HTTPServerConnection.Configuration = HTTPServerConnection.Configuration()) {
        connection = HTTPServerConnection(configuration: configuration, now: now)
    }

    enum Seen: Equatable, CustomStringConvertible {
        case request(String, [[String]])
        case body([UInt8])
        case end([[String]])
        case upgraded([UInt8])
        case failed(HTTPError)

        var description: String {
            switch self {
            case .request(let s, let f): "request(\(s), \(f))"
            case .body(let b): "body(\"\(text(b))\")"
            case .end(let t): "end(\(t))"
            case .upgraded(let l): "upgraded(\(l.count) bytes)"
            case .failed(let e): "failed(\(e))"
            }
        }
    }

    mutating func receive(_ s: String) { receive(bytes(s)) }
    mutating func receive(_ b: [UInt8]) { connection.receive(b.span, now: now) }

    /// Drains events.
    mutating func events() -> [Seen] {
        var out: [Seen] = []
        while let e = connection.nextEvent(now: now) {
            switch e {
            case .request(let h): out.append(.request(startLine(h), pairs(h.fields)))
            case .body(let b): out.append(.body(Array(b)))
            case .end(let t): out.append(.end(pairs(t)))
            case .upgraded(let l): out.append(.upgraded(l))
            case .failed(let err): out.append(.failed(err))
            }
        }
        return out
    }

    /// Takes all output (as if the stack sent it).
    mutating func output() -> String {
        let out = connection.withOutput { Array($0.bytes) }
        connection.consumeOutput(out.count)
        return text(out)
    }

    mutating func respond(_ code: Int, body: String = "", fields: [(String, String)] = []) throws(HTTPError) {
        let b = bytes(body)
        try connection.startResponse(HTTPResponseHead(status: HTTPStatus(code: code), fields: HTTPFields(fields)), bodyLength: .known(b.count))
        try connection.writeBody(b.span)
        try connection.finishResponse(now: now)
    }

    mutating func advance(seconds: Int64) { now = now + .seconds(seconds) }
}

extension Span where Element == UInt8 {
    /// The bytes copied out.
    var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        out.append(span: self)
        return out
    }
}
