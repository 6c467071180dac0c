// The HTTP fuzz targets, shared by libFuzzer (`Scripts/fuzz`, which compiles
// this file with a generated LLVMFuzzerTestOneInput against MirageDevices
// and MirageHTTP: see Scripts/fuzzing/targets.txt) and by
// CorpusReplayTests, which runs every file of Corpus/<target>/ through the
// same function. So this file imports only those two modules and the
// standard library, and uses only MirageHTTP's public API.
//
// A broken promise traps with `fuzzCheck` (a `fatalError`, whose message
// survives -O); libFuzzer reports it as a crash and the replay test dies
// on it: that trap is the assertion.
//
// Input layout: byte 0 steers the run (chunk size, limits, when the
// application answers, whether time passes); the rest is the byte stream
// from the peer.

import MirageDevices
import MirageHTTP

/// The fuzz targets of this package: name → run.
let fuzzTargets: [(name: String, run: @Sendable (Span<UInt8>) -> FuzzReport)] = [
    ("http-request", fuzzRequest),
    ("http-response", fuzzResponse),
]

/// What a run saw; folded so the optimiser keeps every read.
struct FuzzReport: CustomStringConvertible {
    /// Complete messages parsed (whole-input parse).
    var messages = 0
    /// The parser's error, if any.
    var error: HTTPError? = nil
    /// Requests the server connection handed out (http-request).
    var requests = 0
    /// Responses found in the connection's output (http-request).
    var responses = 0
    var digest: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func mix(_ value: UInt64) { digest = (digest ^ value) &* 0x100_0000_01b3 }
    mutating func mix(_ bytes: ArraySlice<UInt8>) {
        mix(UInt64(bytes.count))
        if let f = bytes.first, let l = bytes.last { mix(UInt64(f) << 8 | UInt64(l)) }
    }

    var description: String {
        "messages \(messages), error \(error.map { "\($0)" } ?? "-"), requests \(requests), responses \(responses)"
    }
}

/// How byte 0 steers a run.
struct FuzzControl {
    /// Bytes per `append`/`receive`: 1…32, or everything at once.
    var chunk: Int
    /// Small limits, so the limit paths are reachable in short inputs.
    var smallLimits: Bool
    /// The application answers when the request head arrives (before the
    /// body) rather than at its end.
    var answerEarly: Bool
    /// The answer is streamed (chunked, or close-delimited for HTTP/1.0).
    var streamed: Bool
    /// A second passes per piece of input (timeouts become reachable).
    var clockRuns: Bool

    init(_ byte: UInt8) {
        let c = Int(byte & 0x1F)
        chunk = c == 0 ? Int.max : c
        smallLimits = byte & 0x20 != 0
        answerEarly = byte & 0x40 != 0
        streamed = byte & 0x80 != 0
        clockRuns = byte & 0x21 == 0x21
    }

    var limits: HTTPLimits {
        guard smallLimits else { return .server }
        var l = HTTPLimits()
        l.maximumRequestLineLength = 64
        l.maximumFieldLineLength = 64
        l.maximumHeaderSectionSize = 256
        l.maximumFieldCount = 6
        l.maximumBodySize = 64
        l.maximumChunkLineLength = 32
        return l
    }
}

// MARK: - Messages, for comparing chunkings

/// One message as the parser gave it, body slices joined.
struct FuzzMessage: Equatable {
    var start: String
    var fields: [String]
    var body: [UInt8] = []
    var trailers: [String]? = nil
}

func fuzzFieldList(_ fields: HTTPFields) -> [String] {
    var out: [String] = []
    for (name, value) in fields { out.append(name + ":" + value) }
    return out
}

/// Runs the request parser over `bytes` in pieces of `chunk`, checking the
/// parser's promises on the way.
func fuzzParseRequests(_ bytes: [UInt8], chunk: Int, limits: HTTPLimits) -> ([FuzzMessage], HTTPError?) {
    var parser = HTTPRequestParser(limits: limits)
    var messages: [FuzzMessage] = []
    var declared: Int? = nil
    var offset = 0
    repeat {
        let n = min(chunk, bytes.count - offset)
        parser.append(bytes.span.extracting(offset..<(offset + n)))
        offset += n
        do throws(HTTPError) {
            while let event = try parser.next() {
                switch event {
                case .head(let head):
                    fuzzCheck(messages.last?.trailers != nil || messages.isEmpty, "a head before the previous message ended")
                    messages.append(FuzzMessage(start: "\(head.method) \(head.target) \(head.version)", fields: fuzzFieldList(head.fields)))
                    declared = fuzzDeclaredLength(head.fields)
                    fuzzCheckReparse(head)
                case .body(let slice):
                    fuzzCheck(!slice.isEmpty, "an empty body event")
                    fuzzCheck(!messages.isEmpty && messages[messages.count - 1].trailers == nil, "body outside a message")
                    messages[messages.count - 1].body.append(contentsOf: slice)
                    if let d = declared { fuzzCheck(messages[messages.count - 1].body.count <= d, "body beyond Content-Length") }
                case .end(let trailers):
                    fuzzCheck(!messages.isEmpty && messages[messages.count - 1].trailers == nil, "end outside a message")
                    messages[messages.count - 1].trailers = fuzzFieldList(trailers)
                    if let d = declared { fuzzCheck(messages[messages.count - 1].body.count == d, "body length differs from Content-Length") }
                    fuzzCheck(messages[messages.count - 1].body.count <= limits.maximumBodySize, "body over the limit")
                }
            }
        } catch {
            // After an error the parser is finished: nothing more comes out
            // and nothing is consumed, even with more bytes.
            let held = parser.bufferedCount
            fuzzCheck(fuzzNextIsNil(&parser), "an event after an error")
            fuzzCheck(parser.bufferedCount == held, "bytes consumed after an error")
            parser.append([0x0D, 0x0A, 0x0D, 0x0A].span)
            fuzzCheck(fuzzNextIsNil(&parser), "an event after an error and more bytes")
            return (messages, error)
        }
    } while offset < bytes.count
    return (messages, nil)
}

func fuzzNextIsNil(_ parser: inout HTTPRequestParser) -> Bool {
    do throws(HTTPError) { return try parser.next() == nil } catch { return true }
}

/// The body length a head's Content-Length declares, when the body is
/// framed by it (no Transfer-Encoding); 0 for neither.
func fuzzDeclaredLength(_ fields: HTTPFields) -> Int? {
    if fields.contains("Transfer-Encoding") { return nil }
    guard let value = fields["Content-Length"] else { return 0 }
    var digits: [UInt8] = []
    for b in value.utf8 {
        if b == 0x2C { break }
        if b != 0x20 && b != 0x09 { digits.append(b) }
    }
    var n = 0
    for d in digits {
        fuzzCheck(d >= 0x30 && d <= 0x39 && digits.count <= 18, "an accepted Content-Length that is not a number")
        n = n * 10 + Int(d - 0x30)
    }
    return n
}

/// A parsed head serializes to bytes that parse back to the same head.
func fuzzCheckReparse(_ head: HTTPRequestHead) {
    var out: [UInt8] = []
    HTTPSerializer.writeHead(head, into: &out)
    var relaxed = HTTPLimits()
    relaxed.maximumRequestLineLength = 1 << 20
    relaxed.maximumFieldLineLength = 1 << 20
    relaxed.maximumHeaderSectionSize = 1 << 22
    relaxed.maximumFieldCount = 1 << 16
    relaxed.maximumBodySize = Int.max
    var again = HTTPRequestParser(limits: relaxed)
    again.append(out.span)
    var reparsed: HTTPRequestHead?
    do throws(HTTPError) {
        if case .head(let h)? = try again.next() { reparsed = h }
    } catch {
        fuzzFail("a serialized head does not parse")
    }
    guard let h = reparsed else { fuzzFail("a serialized head is incomplete") }
    fuzzCheck(h.method == head.method && h.target == head.target && h.version == head.version, "start line changed in a round trip")
    fuzzCheck(fuzzFieldList(h.fields) == fuzzFieldList(head.fields), "fields changed in a round trip")
}

// MARK: - http-request

/// `http-request`: the request parser in pieces and whole (same result),
/// then a server connection over the same bytes with an application that
/// answers every request; its output must parse as the responses due, in
/// order.
func fuzzRequest(_ input: Span<UInt8>) -> FuzzReport {
    var report = FuzzReport()
    guard !input.isEmpty else { return report }
    let control = FuzzControl(input[0])
    var bytes: [UInt8] = []
    bytes.append(span: input.extracting(1...))

    let whole = fuzzParseRequests(bytes, chunk: Int.max, limits: control.limits)
    let pieces = fuzzParseRequests(bytes, chunk: control.chunk == Int.max ? 1 : control.chunk, limits: control.limits)
    fuzzCheck(whole.0 == pieces.0, "messages differ between chunkings")
    fuzzCheck(whole.1 == pieces.1, "errors differ between chunkings")
    report.messages = whole.0.count
    report.error = whole.1
    for m in whole.0 { report.mix(m.body[...]) }

    fuzzServe(bytes, control, parsed: whole, &report)
    return report
}

/// What the server's output must hold, response by response.
enum FuzzExpected {
    /// The application's answer to request `sequence`.
    case answer(sequence: Int, method: HTTPMethod)
    /// The connection's error response.
    case error(status: Int, method: HTTPMethod)
}

/// `parsed`: what the request parser alone made of `bytes`.
func fuzzServe(_ bytes: [UInt8], _ control: FuzzControl, parsed: ([FuzzMessage], HTTPError?), _ report: inout FuzzReport) {
    var configuration = HTTPServerConnection.Configuration()
    configuration.limits = control.limits
    configuration.maximumBufferedInput = configuration.limits.maximumHeaderSectionSize + configuration.limits.maximumChunkLineLength + 64
    if control.smallLimits { configuration.maximumRequestsPerConnection = 8 }
    var now = Instant(nanoseconds: 1_000_000_000)
    var connection = HTTPServerConnection(configuration: configuration, now: now)
    var output: [UInt8] = []
    var expected: [FuzzExpected] = []
    var sequence = 0
    // The request being read: its method, and whether it was answered.
    var current: (method: HTTPMethod, version: HTTPVersion, answered: Bool)? = nil
    var inBody = false
    var failed = false
    /// A request the connection gave up on without a response.
    var unanswered: HTTPMethod? = nil

    func answer(_ connection: inout HTTPServerConnection, method: HTTPMethod, version: HTTPVersion) {
        sequence += 1
        // A 2xx to CONNECT would open a tunnel: answer it with 405.
        let status = method == .connect ? HTTPStatus.methodNotAllowed : HTTPStatus.ok
        var fields = HTTPFields()
        fields.append(name: "X-Seq", value: String(sequence))
        do throws(HTTPError) {
            try connection.startResponse(HTTPResponseHead(status: status, fields: fields), bodyLength: control.streamed ? .streamed : .known(2))
            try fuzzWriteOK(&connection)
            try connection.finishResponse(now: now)
        } catch {
            fuzzFail("the connection refused an answer to its own request")
        }
        expected.append(.answer(sequence: sequence, method: method))
    }

    var ended = false
    func drain(_ connection: inout HTTPServerConnection) {
        while let event = connection.nextEvent(now: now) {
            fuzzCheck(!failed, "an event after failed")
            switch event {
            case .request(let head):
                fuzzCheck(current == nil || current!.answered, "a request before the previous one was answered")
                // An early answer makes the connection discard the rest of
                // that body: no more events for it.
                fuzzCheck(!inBody || (control.answerEarly && current != nil), "a request inside the previous body")
                report.requests += 1
                current = (head.method, head.version, false)
                inBody = true
                if control.answerEarly {
                    answer(&connection, method: head.method, version: head.version)
                    current!.answered = true
                }
            case .body(let b):
                fuzzCheck(inBody && !b.isEmpty, "body outside a request")
                report.mix(b)
            case .end:
                fuzzCheck(inBody, "end outside a request")
                inBody = false
                if let c = current, !c.answered {
                    answer(&connection, method: c.method, version: c.version)
                    current!.answered = true
                }
            case .upgraded:
                fuzzFail("an upgrade nobody asked for")
            case .failed(let error):
                failed = true
                if let c = current, !c.answered {
                    // The unanswered request gets the error response, if any;
                    // without one it may still have had a 100 Continue.
                    if let status = error.status {
                        expected.append(.error(status: status.code, method: c.method))
                    } else {
                        unanswered = c.method
                    }
                } else if let status = error.status {
                    // A framing error is the one the parser alone finds in
                    // the same bytes; whether it lies in the body of the last
                    // request (answered early, being discarded: no response)
                    // or in the next head (a response of its own) is what
                    // the parser saw there.
                    var inDiscardedBody = false
                    switch error {
                    case .headerTimeout, .unsupportedExpectation:
                        break
                    default:
                        fuzzCheck(error == parsed.1, "the connection failed with another error than the parser")
                        inDiscardedBody = parsed.0.last.map { $0.trailers == nil } ?? false
                    }
                    if !inDiscardedBody { expected.append(.error(status: status.code, method: .get)) }
                }
                current = nil
            }
        }
        connection.withOutput { span in output.append(span: span) }
        connection.consumeOutput(connection.outputCount)
        // Every request is answered and the output taken: the connection
        // either reads on or closes; it never stalls.
        fuzzCheck(ended || connection.wantsInput || connection.shouldClose, "the connection stopped reading with nothing to wait for")
    }

    var offset = 0
    repeat {
        let n = min(control.chunk, bytes.count - offset)
        connection.receive(bytes.span.extracting(offset..<(offset + n)), now: now)
        offset += n
        drain(&connection)
        if control.clockRuns {
            now = now + .seconds(1)
            if let d = connection.nextDeadline, d <= now {
                connection.timerFired(now: now)
                drain(&connection)
            }
        }
        if connection.shouldClose { break }
    } while offset < bytes.count
    connection.receiveEnd()
    ended = true
    drain(&connection)
    if !connection.shouldClose, let d = connection.nextDeadline {
        connection.timerFired(now: d)
        drain(&connection)
    }
    fuzzCheck(connection.shouldClose, "not closing after the end of input")

    // The output: exactly the responses due, in order, and nothing else.
    if !output.isEmpty {
        fuzzCheck(output.count >= 9 && Array(output[0..<9]) == [0x48, 0x54, 0x54, 0x50, 0x2F, 0x31, 0x2E, 0x31, 0x20], "output does not start with HTTP/1.1")
    }
    var parser = HTTPResponseParser()
    for e in expected {
        switch e {
        case .answer(_, let method), .error(_, let method): parser.expectResponse(to: method)
        }
    }
    if let m = unanswered { parser.expectResponse(to: m) }
    parser.append(output.span)
    var index = 0
    do throws(HTTPError) {
        var events: [HTTPResponseParser.Event] = []
        while let event = try parser.next() { events.append(event) }
        if let last = try parser.finish() { events.append(last) }
        for event in events {
            guard case .head(let head) = event else { continue }
            if head.status.code == 100 { continue }
            fuzzCheck(index < expected.count, "more responses than due")
            switch expected[index] {
            case .answer(let seq, let method):
                fuzzCheck(head.status.code == (method == .connect ? 405 : 200), "an answer with the wrong status")
                fuzzCheck(head.fields["X-Seq"] == String(seq), "answers out of order")
            case .error(let status, _):
                fuzzCheck(head.status.code == status, "an error response with the wrong status")
                fuzzCheck(head.fields.containsToken("close", in: "Connection"), "an error response without Connection: close")
            }
            index += 1
        }
    } catch {
        fuzzFail("the server's output does not parse as responses")
    }
    fuzzCheck(index == expected.count, "fewer responses than due")
    report.responses = index
}

func fuzzWriteOK(_ connection: inout HTTPServerConnection) throws(HTTPError) {
    let body: [UInt8] = [0x6F, 0x6B]
    try connection.writeBody(body.span)
}

// MARK: - http-response

/// `http-response`: the response parser, told of requests whose methods
/// byte 0 picks, in pieces and whole; same result either way.
func fuzzResponse(_ input: Span<UInt8>) -> FuzzReport {
    var report = FuzzReport()
    guard !input.isEmpty else { return report }
    let control = input[0]
    var bytes: [UInt8] = []
    bytes.append(span: input.extracting(1...))
    // Bits 0-2 choose the chunk size; bits 3-7 pick methods, two per bit pair.
    let chunk = Int(control & 0x07) == 0 ? Int.max : Int(control & 0x07)
    var methods: [HTTPMethod] = []
    for i in 0..<4 {
        switch (control >> (3 + 2 * (i % 3))) & 0x03 {
        case 0: methods.append(.get)
        case 1: methods.append(.head)
        case 2: methods.append(i == 3 ? .connect : .post)
        default: methods.append(.get)
        }
    }
    let whole = fuzzParseResponses(bytes, methods: methods, chunk: Int.max)
    let pieces = fuzzParseResponses(bytes, methods: methods, chunk: chunk == Int.max ? 1 : chunk)
    fuzzCheck(whole.0 == pieces.0, "responses differ between chunkings")
    fuzzCheck(whole.1 == pieces.1, "errors differ between chunkings")
    report.messages = whole.0.count
    report.error = whole.1
    for m in whole.0 { report.mix(m.body[...]) }
    return report
}

func fuzzParseResponses(_ bytes: [UInt8], methods: [HTTPMethod], chunk: Int) -> ([FuzzMessage], HTTPError?) {
    var parser = HTTPResponseParser()
    for m in methods { parser.expectResponse(to: m) }
    var messages: [FuzzMessage] = []
    var offset = 0
    do throws(HTTPError) {
        repeat {
            let n = min(chunk, bytes.count - offset)
            parser.append(bytes.span.extracting(offset..<(offset + n)))
            offset += n
            while let event = try parser.next() {
                switch event {
                case .head(let head):
                    messages.append(FuzzMessage(start: "\(head.version) \(head.status.code)", fields: fuzzFieldList(head.fields)))
                    if head.status.code == 101 || head.status.code < 200 { messages[messages.count - 1].trailers = [] }
                case .body(let slice):
                    fuzzCheck(!slice.isEmpty, "an empty body event")
                    fuzzCheck(!messages.isEmpty && messages[messages.count - 1].trailers == nil, "body outside a response")
                    messages[messages.count - 1].body.append(contentsOf: slice)
                case .end(let trailers):
                    fuzzCheck(!messages.isEmpty && messages[messages.count - 1].trailers == nil, "end outside a response")
                    messages[messages.count - 1].trailers = fuzzFieldList(trailers)
                }
            }
        } while offset < bytes.count
        if case .end(let t)? = try parser.finish() {
            fuzzCheck(!messages.isEmpty && messages[messages.count - 1].trailers == nil, "end at finish outside a response")
            messages[messages.count - 1].trailers = fuzzFieldList(t)
        }
        messages.append(FuzzMessage(start: "remaining", fields: [], body: parser.takeRemaining()))
    } catch {
        return (messages, error)
    }
    return (messages, nil)
}

// MARK: - Checks

/// Traps with `message` unless `condition`.
func fuzzCheck(_ condition: Bool, _ message: StaticString, file: StaticString = #file, line: UInt = #line) {
    if !condition { fuzzFail(message, file: file, line: line) }
}

/// Traps with `message`.
@inline(never)
func fuzzFail(_ message: StaticString, file: StaticString = #file, line: UInt = #line) -> Never {
    fatalError("fuzz check failed: \(message)", file: file, line: line)
}
