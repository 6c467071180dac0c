/// Splits zone file text into entries (RFC 1035 §5.1): one entry per line,
/// or per group of lines joined by parentheses, each a list of tokens.
///
/// Tokens keep their backslash escapes undecoded, so that a name parser can
/// still tell an escaped `\.` from a label separator; a quoted token loses
/// its quotes and is marked `quoted`. The lexer never looks inside a token
/// beyond finding where it ends: `\X` and `\DDD` are checked by whoever
/// decodes the token (`DomainName`, `RData`).
///
/// Lexical rules (RFC 1035 §5.1, with the choices NSD makes where it is silent):
/// - blanks are space and tab; a CR is a blank too, so CRLF files read as LF ones;
/// - `;` starts a comment that runs to the end of the line (not inside quotes);
/// - `(` and `)` join lines; they do not nest (NSD refuses nesting, as we do);
/// - a quoted string may span lines (RFC 1035 §5.1: "text literals can contain
///   CRLF within the text"; NSD accepts this, BIND does not);
/// - a backslash escapes the next byte, which then never ends a token;
/// - a `"` inside unquoted text ends that token and opens a quoted one, so
///   `"a"b` is two tokens, as BIND and NSD read it.
///
/// Bounded: every token is at most `maximumTokenLength` bytes and every
/// entry at most `maximumEntryLength`; each step consumes input, so a file of
/// n bytes takes O(n) steps.
public struct ZoneLexer {
    /// Longest token, in bytes of raw text. The longest field a record can
    /// hold is its whole RDATA (at most 65,535 bytes, RFC 1035 §3.2.1)
    /// written as one RFC 3597 §5 hex word: 131,070 characters.
    public static let maximumTokenLength = 131_072
    /// Longest entry, in bytes of token text (each token counted as at least
    /// one byte). The largest RDATA written as `\DDD` escapes, the most
    /// verbose form, takes 4 × 65,535 = 262,140 characters; this allows
    /// that and the owner, TTL, class, type and blanks around it.
    public static let maximumEntryLength = 270_000

    /// One logical line: what RFC 1035 §5.1 calls an entry.
    public struct Entry: Hashable, Sendable {
        /// The tokens, in order.
        public var tokens: [ZoneToken]
        /// The physical line (from 1) of each token, parallel to `tokens`.
        public var tokenLines: [Int]
        /// The physical line (from 1) the entry starts on.
        public var line: Int
        /// The entry's first line begins with a blank: the owner field is
        /// omitted and the previous owner applies (RFC 1035 §5.1).
        public var startsWithBlank: Bool
    }

    private let text: [UInt8]
    private let file: String
    private var position = 0
    /// The physical line `position` is on, from 1.
    private var line = 1
    /// Whether the physical line `position` is on begins with a blank.
    private var lineStartsWithBlank: Bool

    /// A lexer over `text`; errors name `file`.
    public init(_ text: [UInt8], file: String) {
        self.text = text
        self.file = file
        lineStartsWithBlank = text.first.map(Self.isBlank) ?? false
    }

    /// The next entry, or nil at the end of the text. Lines holding only
    /// blanks and comments yield nothing.
    ///
    /// Errors (`.zone(file:line:reason:)`): an unclosed or nested `(`, a `)`
    /// without `(`, an unterminated quoted string, a backslash at the very
    /// end, a token or entry over its limit.
    public mutating func next() throws(DNSError) -> Entry? {
        var tokens: [ZoneToken] = []
        var tokenLines: [Int] = []
        var entryLine = 0
        var startsWithBlank = false
        var started = false
        var openParenthesisLine: Int? = nil
        var entryLength = 0

        while position < text.count {
            let byte = text[position]
            switch byte {
            case 0x0A:  // LF
                newLine()
                if openParenthesisLine == nil && !tokens.isEmpty {
                    return Entry(tokens: tokens, tokenLines: tokenLines, line: entryLine, startsWithBlank: startsWithBlank)
                }
                if openParenthesisLine == nil { started = false }
            case 0x20, 0x09, 0x0D:  // blanks
                position += 1
            case 0x3B:  // ';' comment, up to (not including) the LF
                while position < text.count && text[position] != 0x0A { position += 1 }
            case 0x28:  // '('
                if let opened = openParenthesisLine {
                    throw fail("nested '(' (the '(' on line \(opened) is still open)")
                }
                if !started { (started, entryLine, startsWithBlank) = (true, line, lineStartsWithBlank) }
                openParenthesisLine = line
                position += 1
            case 0x29:  // ')'
                guard openParenthesisLine != nil else { throw fail("')' without an opening '('") }
                openParenthesisLine = nil
                position += 1
            default:
                if !started { (started, entryLine, startsWithBlank) = (true, line, lineStartsWithBlank) }
                let tokenLine = line
                let token = byte == 0x22 ? try quoted() : try contiguous()
                entryLength += max(token.text.count, 1)
                guard entryLength <= Self.maximumEntryLength else {
                    throw DNSError.zone(file: file, line: entryLine, reason: "entry longer than \(Self.maximumEntryLength) bytes")
                }
                tokens.append(token)
                tokenLines.append(tokenLine)
            }
        }
        if let opened = openParenthesisLine {
            throw DNSError.zone(file: file, line: opened, reason: "'(' not closed before the end of the file")
        }
        guard !tokens.isEmpty else { return nil }
        return Entry(tokens: tokens, tokenLines: tokenLines, line: entryLine, startsWithBlank: startsWithBlank)
    }

    /// The tokens of `text` as one entry, parentheses and line ends
    /// included: for reading back a presentation form such as
    /// `RData.presentation`. Empty for text without tokens.
    public static func tokens(of text: String) throws(DNSError) -> [ZoneToken] {
        var bytes = Array(text.utf8)
        // Wrapped in parentheses so that line ends inside do not split it.
        bytes.insert(0x28, at: 0)
        bytes.append(0x0A)
        bytes.append(0x29)
        var lexer = ZoneLexer(bytes, file: "<text>")
        var all: [ZoneToken] = []
        while let entry = try lexer.next() { all += entry.tokens }
        return all
    }

    // MARK: - Pieces

    private static func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

    private func fail(_ reason: String) -> DNSError { .zone(file: file, line: line, reason: reason) }

    /// Steps over the LF at `position`.
    private mutating func newLine() {
        position += 1
        line += 1
        lineStartsWithBlank = position < text.count && Self.isBlank(text[position])
    }

    /// Consumes a backslash and the byte it escapes, appending both.
    private mutating func escape(into token: inout [UInt8]) throws(DNSError) {
        guard position + 1 < text.count else { throw fail("backslash at the end of the file") }
        token.append(text[position])
        token.append(text[position + 1])
        if text[position + 1] == 0x0A {
            // An escaped line end is part of the token; count the line.
            line += 1
            lineStartsWithBlank = false
        }
        position += 2
    }

    /// A quoted string; `position` is at its opening quote.
    private mutating func quoted() throws(DNSError) -> ZoneToken {
        let openedOn = line
        position += 1
        var token: [UInt8] = []
        while position < text.count {
            let byte = text[position]
            if byte == 0x22 {
                position += 1
                return ZoneToken(text: token, quoted: true)
            }
            if byte == 0x5C {
                try escape(into: &token)
            } else {
                token.append(byte)
                if byte == 0x0A {
                    line += 1
                    lineStartsWithBlank = false
                }
                position += 1
            }
            guard token.count <= Self.maximumTokenLength else {
                throw DNSError.zone(file: file, line: openedOn, reason: "quoted string longer than \(Self.maximumTokenLength) bytes")
            }
        }
        throw DNSError.zone(file: file, line: openedOn, reason: "quoted string not closed before the end of the file")
    }

    /// Unquoted text up to a blank, line end, `;`, parenthesis or quote.
    private mutating func contiguous() throws(DNSError) -> ZoneToken {
        let startedOn = line
        var token: [UInt8] = []
        scan: while position < text.count {
            let byte = text[position]
            switch byte {
            case 0x20, 0x09, 0x0D, 0x0A, 0x3B, 0x28, 0x29, 0x22:
                break scan
            case 0x5C:
                try escape(into: &token)
            default:
                token.append(byte)
                position += 1
            }
            guard token.count <= Self.maximumTokenLength else {
                throw DNSError.zone(file: file, line: startedOn, reason: "token longer than \(Self.maximumTokenLength) bytes")
            }
        }
        return ZoneToken(text: token, quoted: false)
    }
}
