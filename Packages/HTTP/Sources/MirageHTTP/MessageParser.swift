import MirageDevices

/// The incremental HTTP/1.1 message parser shared by requests and
/// responses (RFC 9112). Bytes are appended as they arrive; `next`
/// returns one event at a time, nil when more bytes are needed, or throws
/// for a malformed message. A head is taken whole or not at all; body bytes
/// are handed out as they arrive, as slices of the parser's buffer.
///
/// After an error the parser is finished: framing is lost, so the
/// connection must close (RFC 9112 §9.6 and §11.2 on smuggling).
struct MessageParser: Sendable {
    enum Role: Sendable { case request, response }

    enum Event: Sendable {
        case requestHead(HTTPRequestHead)
        case responseHead(HTTPResponseHead)
        case body(ArraySlice<UInt8>)
        case end(trailers: HTTPFields)
    }

    /// How the body of the current message is delimited.
    enum Framing: Sendable, Equatable {
        case length(Int)
        case chunked
        case untilClose
    }

    private enum Phase: Sendable {
        /// Waiting for (or scanning) a start line and fields.
        case head
        case length(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkEnd
        case trailers
        case untilClose
        /// A 101 response or a CONNECT tunnel: the rest is another protocol.
        case upgraded
        /// An error was thrown, or the end of a close-delimited body was reached.
        case finished
    }

    let role: Role
    let limits: HTTPLimits
    private var buffer: [UInt8] = []
    /// The first byte not yet consumed.
    private var start = 0
    /// Section scanning resumes here.
    private var scan = 0
    /// Where the line being scanned starts.
    private var lineStart = 0
    /// Complete lines seen in the section being scanned.
    private var lines = 0
    private var leadingEmptyLines = 0
    private var phase: Phase = .head
    private var bodyBytes = 0
    /// Responses only: the methods of requests not answered yet, oldest
    /// first (HEAD responses have no body, RFC 9112 §6.3 rule 1).
    private var pendingMethods: [HTTPMethod] = []
    private var pendingMethodsStart = 0

    init(role: Role, limits: HTTPLimits) {
        self.role = role
        self.limits = limits
    }

    /// Bytes received and not consumed yet.
    var bufferedCount: Int { buffer.count - start }

    /// Whether the parser is between messages with nothing buffered.
    var isIdle: Bool {
        if case .head = phase { return start == buffer.count }
        return false
    }

    /// Whether a head is partly received.
    var isReadingHead: Bool {
        if case .head = phase { return start < buffer.count }
        return false
    }

    /// Whether body bytes are still due for the current message (a
    /// Content-Length not yet reached, or a chunked body).
    var expectsBody: Bool {
        switch phase {
        case .length(let remaining): return remaining > 0
        case .chunkSize, .chunkData, .chunkEnd, .trailers, .untilClose: return true
        case .head, .upgraded, .finished: return false
        }
    }

    /// Whether the current message's body ends only when the connection does.
    var readsUntilClose: Bool {
        if case .untilClose = phase { return true }
        return false
    }

    var isUpgraded: Bool {
        if case .upgraded = phase { return true }
        return false
    }

    /// Responses only: a request with `method` was sent; its response is
    /// expected after those of earlier requests.
    mutating func expectResponse(to method: HTTPMethod) {
        pendingMethods.append(method)
    }

    var outstandingResponses: Int { pendingMethods.count - pendingMethodsStart }

    mutating func append(_ bytes: Span<UInt8>) {
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            scan -= start
            lineStart -= start
            start = 0
        } else if start > 0 && start >= buffer.count / 2 {
            buffer.removeSubrange(0..<start)
            scan -= start
            lineStart -= start
            start = 0
        }
        buffer.append(span: bytes)
    }

    /// The bytes after an upgrade (or anything unconsumed), taken out.
    mutating func takeRemaining() -> [UInt8] {
        let rest = Array(buffer[start...])
        buffer.removeAll()
        start = 0
        scan = 0
        lineStart = 0
        return rest
    }

    /// The connection ended: the end of a close-delimited body, nil at a
    /// clean boundary, or `truncatedMessage`.
    mutating func finish() throws(HTTPError) -> Event? {
        switch phase {
        case .untilClose:
            phase = .finished
            return .end(trailers: HTTPFields())
        case .head where start == buffer.count:
            return nil
        case .finished, .upgraded:
            return nil
        default:
            phase = .finished
            throw .truncatedMessage
        }
    }

    /// The next event, or nil when more bytes are needed.
    mutating func next() throws(HTTPError) -> Event? {
        do {
            return try step()
        } catch {
            phase = .finished
            throw error
        }
    }

    private mutating func step() throws(HTTPError) -> Event? {
        switch phase {
        case .head:
            guard let end = try scanSection(isHead: true) else { return nil }
            return try parseHead(end: end)
        case .length(let remaining):
            if remaining == 0 {
                phase = .head
                return .end(trailers: HTTPFields())
            }
            let n = min(remaining, buffer.count - start)
            guard n > 0 else { return nil }
            phase = .length(remaining: remaining - n)
            return .body(take(n))
        case .chunkSize:
            return try parseChunkSize()
        case .chunkData(let remaining):
            let n = min(remaining, buffer.count - start)
            guard n > 0 else { return nil }
            phase = remaining == n ? .chunkEnd : .chunkData(remaining: remaining - n)
            return .body(take(n))
        case .chunkEnd:
            guard buffer.count - start >= 2 else {
                if buffer.count > start && buffer[start] != ASCII.cr { throw .missingChunkTerminator }
                return nil
            }
            guard buffer[start] == ASCII.cr, buffer[start + 1] == ASCII.lf else { throw .missingChunkTerminator }
            start += 2
            phase = .chunkSize
            return try parseChunkSize()
        case .trailers:
            guard let end = try scanSection(isHead: false) else { return nil }
            let trailers = try parseFields(from: start, to: end - 2)
            start = end
            resetScan()
            phase = .head
            return .end(trailers: trailers)
        case .untilClose:
            let n = buffer.count - start
            guard n > 0 else { return nil }
            return .body(take(n))
        case .upgraded, .finished:
            return nil
        }
    }

    private mutating func take(_ n: Int) -> ArraySlice<UInt8> {
        let slice = buffer[start..<(start + n)]
        start += n
        return slice
    }

    private mutating func resetScan() {
        scan = start
        lineStart = start
        lines = 0
    }

    // MARK: Sections (head, trailers)

    /// Scans for the empty line ending a head or trailer section, checking
    /// line ends and limits on the way; returns the index after it.
    private mutating func scanSection(isHead: Bool) throws(HTTPError) -> Int? {
        if scan < start { resetScan() }
        let count = buffer.count
        while scan < count {
            let b = buffer[scan]
            if b == ASCII.lf {
                guard scan > lineStart, buffer[scan - 1] == ASCII.cr else { throw .bareLineFeed }
                if scan - 1 == lineStart {
                    if isHead && lines == 0 {
                        // Empty lines before a request line (RFC 9112 §2.2).
                        leadingEmptyLines += 1
                        guard role == .request, leadingEmptyLines <= limits.maximumLeadingEmptyLines else {
                            throw .malformedStartLine
                        }
                        start = scan + 1
                        scan = start
                        lineStart = start
                        continue
                    }
                    let end = scan + 1
                    scan = end
                    return end
                }
                lines += 1
                if lines > limits.maximumFieldCount + (isHead ? 1 : 0) {
                    throw .tooManyFields(limit: limits.maximumFieldCount)
                }
                lineStart = scan + 1
            } else if b == ASCII.cr {
                // A CR last in the buffer waits for the next byte: scanning
                // on would let a bare CR through when the bytes arrive split
                // right after it, and the field parser takes every CR for a
                // line end.
                guard scan + 1 < count else { return nil }
                if buffer[scan + 1] != ASCII.lf { throw .bareCarriageReturn }
            }
            scan += 1
            if scan - lineStart > lineLimit(isHead: isHead) {
                if isHead && lines == 0 && role == .request {
                    throw .requestLineTooLong(limit: limits.maximumRequestLineLength)
                }
                throw .fieldLineTooLong(limit: limits.maximumFieldLineLength)
            }
            if scan - start > limits.maximumHeaderSectionSize {
                throw .headerSectionTooLarge(limit: limits.maximumHeaderSectionSize)
            }
        }
        return nil
    }

    private func lineLimit(isHead: Bool) -> Int {
        // +2: the limit is on the line's content, the scan includes CRLF.
        (isHead && lines == 0 && role == .request ? limits.maximumRequestLineLength : limits.maximumFieldLineLength) + 2
    }

    /// Parses the field lines in `buffer[from..<to]`, each ending in CRLF.
    private func parseFields(from: Int, to: Int) throws(HTTPError) -> HTTPFields {
        var fields = HTTPFields()
        fields.storage.reserveCapacity(to - from)
        let span = buffer.span
        var lineStart = from
        while lineStart < to {
            var lineEnd = lineStart
            while span[lineEnd] != ASCII.cr { lineEnd += 1 }
            try Self.parseField(span, lineStart..<lineEnd, into: &fields)
            lineStart = lineEnd + 2
        }
        return fields
    }

    /// One `field-name ":" OWS field-value OWS` line (RFC 9112 §5).
    private static func parseField(_ span: borrowing Span<UInt8>, _ line: Range<Int>, into fields: inout HTTPFields) throws(HTTPError) {
        guard !line.isEmpty else { throw .invalidFieldName }
        if ASCII.isWhitespace(span[line.lowerBound]) { throw .obsoleteLineFolding }
        var colon = line.lowerBound
        while colon < line.upperBound && span[colon] != ASCII.colon { colon += 1 }
        guard colon < line.upperBound else { throw .missingColon }
        guard colon > line.lowerBound else { throw .invalidFieldName }
        if ASCII.isWhitespace(span[colon - 1]) { throw .whitespaceBeforeColon }
        for i in line.lowerBound..<colon where !ASCII.isTokenCharacter(span[i]) { throw .invalidFieldName }
        let value = ASCII.trimmed(span, (colon + 1)..<line.upperBound)
        for i in value where !ASCII.isFieldValueCharacter(span[i]) { throw .invalidFieldValue }
        fields.appendChecked(name: span.extracting(line.lowerBound..<colon), value: span.extracting(value))
    }

    // MARK: Heads

    private enum ParsedHead {
        case request(HTTPRequestHead)
        case response(HTTPResponseHead)
    }

    private func parseStartLineAndFields(end: Int) throws(HTTPError) -> ParsedHead {
        let span = buffer.span
        var firstEnd = start
        while span[firstEnd] != ASCII.cr { firstEnd += 1 }
        let fields = try parseFields(from: firstEnd + 2, to: end - 2)
        switch role {
        case .request:
            var head = try Self.parseRequestLine(span, start..<firstEnd)
            head.fields = fields
            return .request(head)
        case .response:
            let (version, status) = try Self.parseStatusLine(span, start..<firstEnd)
            return .response(HTTPResponseHead(status: status, version: version, fields: fields))
        }
    }

    private mutating func parseHead(end: Int) throws(HTTPError) -> Event? {
        switch try parseStartLineAndFields(end: end) {
        case .request(let head):
            let framing = try Self.requestFraming(head)
            consumeHead(end: end)
            try beginBody(framing)
            return .requestHead(head)
        case .response(let head):
            guard pendingMethodsStart < pendingMethods.count else { throw .unexpectedResponse }
            let method = pendingMethods[pendingMethodsStart]
            let status = head.status
            consumeHead(end: end)
            if status.code == 101 || (method == .connect && (200..<300).contains(status.code)) {
                dequeueMethod()
                phase = .upgraded
                return .responseHead(head)
            }
            if status.isInformational {
                // An interim response; the final one follows (RFC 9110 §15.2).
                phase = .head
                return .responseHead(head)
            }
            dequeueMethod()
            let framing = try Self.responseFraming(head, method: method)
            try beginBody(framing)
            return .responseHead(head)
        }
    }

    private mutating func consumeHead(end: Int) {
        start = end
        leadingEmptyLines = 0
        bodyBytes = 0
        resetScan()
    }

    private mutating func dequeueMethod() {
        pendingMethodsStart += 1
        if pendingMethodsStart == pendingMethods.count {
            pendingMethods.removeAll(keepingCapacity: true)
            pendingMethodsStart = 0
        }
    }

    private mutating func beginBody(_ framing: Framing) throws(HTTPError) {
        switch framing {
        case .length(let n):
            guard n <= limits.maximumBodySize else { throw .bodyTooLarge(limit: limits.maximumBodySize) }
            phase = .length(remaining: n)
        case .chunked:
            phase = .chunkSize
        case .untilClose:
            phase = .untilClose
        }
    }

    /// `method SP request-target SP HTTP-version` (RFC 9112 §3).
    private static func parseRequestLine(_ span: borrowing Span<UInt8>, _ line: Range<Int>) throws(HTTPError) -> HTTPRequestHead {
        var firstSpace = line.lowerBound
        while firstSpace < line.upperBound && span[firstSpace] != ASCII.space { firstSpace += 1 }
        guard firstSpace < line.upperBound else { throw .malformedStartLine }
        var secondSpace = firstSpace + 1
        while secondSpace < line.upperBound && span[secondSpace] != ASCII.space { secondSpace += 1 }
        guard secondSpace < line.upperBound else { throw .malformedStartLine }
        let methodRange = line.lowerBound..<firstSpace
        let targetRange = (firstSpace + 1)..<secondSpace
        let versionRange = (secondSpace + 1)..<line.upperBound
        guard !methodRange.isEmpty, !targetRange.isEmpty else { throw .malformedStartLine }
        for i in methodRange where !ASCII.isTokenCharacter(span[i]) { throw .invalidMethod }
        // VCHAR only: a space here means a third space, a malformed line.
        for i in targetRange where !(0x21...0x7E).contains(span[i]) { throw .invalidTarget }
        let version = try parseVersion(span, versionRange)
        let method = HTTPMethod(token: span, methodRange)
        let first = span[targetRange.lowerBound]
        switch method {
        case .connect:
            // authority-form (RFC 9112 §3.2.3).
            if first == ASCII.slash { throw .invalidTarget }
        case .options where targetRange.count == 1 && first == UInt8(ascii: "*"):
            break
        default:
            // origin-form, or absolute-form (RFC 9112 §3.2.1, §3.2.2).
            if first != ASCII.slash && !isAbsoluteForm(span, targetRange) { throw .invalidTarget }
        }
        return HTTPRequestHead(method: method, target: Bytes.string(span, targetRange), version: version)
    }

    /// `scheme "://" …` with a scheme of a letter then letters, digits,
    /// "+", "-" or "." (RFC 3986 §3.1).
    private static func isAbsoluteForm(_ span: borrowing Span<UInt8>, _ range: Range<Int>) -> Bool {
        func isLetter(_ b: UInt8) -> Bool { (0x41...0x5A).contains(b & 0xDF) && (b & 0x80) == 0 }
        guard isLetter(span[range.lowerBound]) else { return false }
        for i in range {
            let b = span[i]
            if b == ASCII.colon {
                return i + 2 < range.upperBound && span[i + 1] == ASCII.slash && span[i + 2] == ASCII.slash
            }
            guard isLetter(b) || ASCII.isDigit(b) || b == 0x2B || b == 0x2D || b == 0x2E else { return false }
        }
        return false
    }

    /// `HTTP/DIGIT.DIGIT` (RFC 9112 §2.3); major versions other than 1 are
    /// refused here (505).
    private static func parseVersion(_ span: borrowing Span<UInt8>, _ range: Range<Int>) throws(HTTPError) -> HTTPVersion {
        guard range.count == 8, span[range.lowerBound + 4] == ASCII.slash,
              span[range.lowerBound + 6] == ASCII.dot,
              ASCII.isDigit(span[range.lowerBound + 5]), ASCII.isDigit(span[range.lowerBound + 7])
        else { throw .malformedVersion }
        // The name is case-sensitive (RFC 9112 §2.3).
        let l = range.lowerBound
        guard span[l] == 0x48, span[l + 1] == 0x54, span[l + 2] == 0x54, span[l + 3] == 0x50 else {
            throw .malformedVersion
        }
        let major = Int(span[range.lowerBound + 5] - 0x30)
        let minor = Int(span[range.lowerBound + 7] - 0x30)
        guard major == 1 else { throw .unsupportedVersion(major: major, minor: minor) }
        return HTTPVersion(major: major, minor: minor)
    }

    /// `HTTP-version SP status-code SP [reason-phrase]` (RFC 9112 §4); a
    /// missing final space is tolerated.
    private static func parseStatusLine(_ span: borrowing Span<UInt8>, _ line: Range<Int>) throws(HTTPError) -> (HTTPVersion, HTTPStatus) {
        guard line.count >= 12 else { throw .malformedStartLine }
        let version = try parseVersion(span, line.lowerBound..<(line.lowerBound + 8))
        guard span[line.lowerBound + 8] == ASCII.space else { throw .malformedStartLine }
        let codeRange = (line.lowerBound + 9)..<(line.lowerBound + 12)
        guard let code = ASCII.decimal(span, codeRange), code >= 100 else { throw .invalidStatusCode }
        var reason = ""
        if line.count > 12 {
            guard span[line.lowerBound + 12] == ASCII.space else { throw .invalidStatusCode }
            let reasonRange = (line.lowerBound + 13)..<line.upperBound
            for i in reasonRange where !ASCII.isFieldValueCharacter(span[i]) { throw .malformedStartLine }
            reason = Bytes.string(span, reasonRange)
        }
        return (version, HTTPStatus(code: code, reason: reason))
    }

    // MARK: Framing (RFC 9112 §6)

    /// What Transfer-Encoding and Content-Length say.
    private struct Lengths {
        var hasTransferEncoding = false
        var chunkedCount = 0
        var chunkedIsLast = false
        var otherCodings = false
        var contentLength: Int?
    }

    private static func lengths(_ fields: HTTPFields) throws(HTTPError) -> Lengths {
        var result = Lengths()
        let span = fields.storage.span
        for i in 0..<fields.count {
            if fields.nameEquals(i, "transfer-encoding") {
                result.hasTransferEncoding = true
                var empty = true
                ASCII.forEachListElement(span, fields.valueRange(i)) { element in
                    empty = false
                    if ASCII.equalsIgnoringCase(span, element, "chunked") {
                        result.chunkedCount += 1
                        result.chunkedIsLast = true
                    } else {
                        result.otherCodings = true
                        result.chunkedIsLast = false
                    }
                    return true
                }
                if empty { throw .invalidTransferEncoding }
            } else if fields.nameEquals(i, "content-length") {
                var bad = false
                var conflict = false
                var value = result.contentLength
                var empty = true
                // "Content-Length: 5, 5" is one length (RFC 9110 §8.6); an
                // empty element (",5", "5,,5") is not a valid value, and
                // parsers that skip it disagree with those that do not.
                ASCII.forEachListElement(span, fields.valueRange(i), skipEmpty: false) { element in
                    empty = false
                    guard let n = ASCII.decimal(span, element) else { bad = true; return false }
                    if let v = value, v != n { conflict = true; return false }
                    value = n
                    return true
                }
                if bad || empty { throw .invalidContentLength }
                if conflict { throw .conflictingContentLength }
                result.contentLength = value
            }
        }
        return result
    }

    private static func requestFraming(_ head: HTTPRequestHead) throws(HTTPError) -> Framing {
        // Exactly one Host in HTTP/1.1, at most one in 1.0 (RFC 9112 §3.2).
        var hosts = 0
        for i in 0..<head.fields.count where head.fields.nameEquals(i, "host") { hosts += 1 }
        if hosts > 1 || (head.version.minor >= 1 && hosts == 0) { throw .invalidHost }
        let l = try lengths(head.fields)
        if l.hasTransferEncoding {
            if l.contentLength != nil { throw .contentLengthWithTransferEncoding }
            if head.version.minor == 0 { throw .transferEncodingInHTTP10 }
            // chunked twice or not last cannot be framed (400, RFC 9112 §6.3
            // rule 4) whatever the other codings are; only then is an
            // unknown coding a 501 (§6.1).
            if l.chunkedCount > 1 || (l.chunkedCount == 1 && !l.chunkedIsLast) { throw .invalidTransferEncoding }
            if l.otherCodings { throw .unsupportedTransferCoding }
            if l.chunkedCount != 1 { throw .invalidTransferEncoding }
            return .chunked
        }
        return .length(l.contentLength ?? 0)
    }

    private static func responseFraming(_ head: HTTPResponseHead, method: HTTPMethod) throws(HTTPError) -> Framing {
        // RFC 9112 §6.3 rule 1: no body whatever the fields say.
        if method == .head || head.status.code == 204 || head.status.code == 304 { return .length(0) }
        let l = try lengths(head.fields)
        if l.hasTransferEncoding {
            if l.contentLength != nil { throw .contentLengthWithTransferEncoding }
            if l.chunkedCount > 1 { throw .invalidTransferEncoding }
            if !l.chunkedIsLast { return .untilClose }
            if l.otherCodings { throw .unsupportedTransferCoding }
            return .chunked
        }
        if let n = l.contentLength { return .length(n) }
        return .untilClose
    }

    // MARK: Chunks (RFC 9112 §7.1)

    private mutating func parseChunkSize() throws(HTTPError) -> Event? {
        let count = buffer.count
        var lf = start
        while lf < count && buffer[lf] != ASCII.lf {
            if lf - start >= limits.maximumChunkLineLength { throw .chunkLineTooLong(limit: limits.maximumChunkLineLength) }
            lf += 1
        }
        guard lf < count else {
            if lf - start > limits.maximumChunkLineLength { throw .chunkLineTooLong(limit: limits.maximumChunkLineLength) }
            return nil
        }
        guard lf > start, buffer[lf - 1] == ASCII.cr else { throw .bareLineFeed }
        let lineEnd = lf - 1
        var size = 0
        var i = start
        while i < lineEnd, let digit = ASCII.hexValue(buffer[i]) {
            // 15 hex digits fit in Int; more is an overflow attempt.
            guard i - start < 15 else { throw .invalidChunkSize }
            size = size << 4 | digit
            i += 1
        }
        guard i > start else { throw .invalidChunkSize }
        // chunk-ext: BWS ";" ... — checked for stray controls only, ignored.
        if i < lineEnd {
            var j = i
            while j < lineEnd && ASCII.isWhitespace(buffer[j]) { j += 1 }
            guard j < lineEnd, buffer[j] == ASCII.semicolon else { throw .invalidChunkSize }
            for k in j..<lineEnd where !ASCII.isFieldValueCharacter(buffer[k]) { throw .invalidChunkSize }
        }
        start = lf + 1
        if size == 0 {
            phase = .trailers
            resetScan()
            return try step()
        }
        let (total, overflow) = bodyBytes.addingReportingOverflow(size)
        guard !overflow, total <= limits.maximumBodySize else { throw .bodyTooLarge(limit: limits.maximumBodySize) }
        bodyBytes = total
        phase = .chunkData(remaining: size)
        return try step()
    }
}
