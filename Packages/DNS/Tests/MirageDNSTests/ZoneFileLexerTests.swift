import MirageDNS
import Testing

/// The zone lexer: entries, tokens with their lines, and its errors.
struct ZoneFileLexerTests {
    /// All entries of `text`, as (line, startsWithBlank, tokens as written, token lines).
    static func entries(_ text: String) throws(DNSError) -> [ZoneLexer.Entry] {
        var lexer = ZoneLexer(Array(text.utf8), file: "f")
        var out: [ZoneLexer.Entry] = []
        while let entry = try lexer.next() { out.append(entry) }
        return out
    }

    /// Token texts, quoted ones shown in quotes.
    static func words(_ entry: ZoneLexer.Entry) -> [String] {
        entry.tokens.map { t in
            let s = String(decoding: t.text, as: UTF8.self)
            return t.quoted ? "\"" + s + "\"" : s
        }
    }

    static func lexError(_ text: String) -> DNSError? {
        do { _ = try entries(text) } catch { return error }
        return nil
    }

    @Test("one entry per line; blank and comment-only lines give none; each entry knows its line")
    func linesAndComments() throws {
        let e = try Self.entries("; header\n\na IN A 192.0.2.1 ; comment\n   \n\t; indented comment\nb A 192.0.2.2\n")
        #expect(e.map(\.line) == [3, 6])
        #expect(e.map(Self.words) == [["a", "IN", "A", "192.0.2.1"], ["b", "A", "192.0.2.2"]])
        #expect(e.map(\.startsWithBlank) == [false, false])
    }

    @Test("a line starting with a space or tab has no owner field")
    func leadingBlank() throws {
        let e = try Self.entries("a A 192.0.2.1\n A 192.0.2.2\n\tA 192.0.2.3\n")
        #expect(e.map(\.startsWithBlank) == [false, true, true])
        #expect(Self.words(e[1]) == ["A", "192.0.2.2"])
    }

    @Test("parentheses join lines; comments inside are skipped; token lines are the physical lines")
    func parentheses() throws {
        let text = """
            @ IN SOA ns hm ( 1 ; serial
                  2 ; refresh
                  3 4
                  5 )
            x A 192.0.2.1
            """
        let e = try Self.entries(text)
        #expect(e.count == 2)
        #expect(Self.words(e[0]) == ["@", "IN", "SOA", "ns", "hm", "1", "2", "3", "4", "5"])
        #expect(e[0].tokenLines == [1, 1, 1, 1, 1, 1, 2, 3, 3, 4])
        #expect(e[0].line == 1)
        #expect(e[1].line == 5)
    }

    @Test("an entry that opens with a parenthesis starts on that line and keeps its owner field")
    func parenthesisFirst() throws {
        let e = try Self.entries("(a\n A 192.0.2.1)\n")
        #expect(e.count == 1)
        #expect(e[0].line == 1 && !e[0].startsWithBlank)
        #expect(Self.words(e[0]) == ["a", "A", "192.0.2.1"])
    }

    @Test("quoted strings: quotes stripped, blanks, ';' and '(' kept, escapes left as written")
    func quoted() throws {
        let e = try Self.entries(#"a TXT "x y;(z)" "q\"uote" "" "back\\slash" "\065""# + "\n")
        #expect(Self.words(e[0]) == ["a", "TXT", "\"x y;(z)\"", #""q\"uote""#, "\"\"", #""back\\slash""#, #""\065""#])
        #expect(e[0].tokens[2].quoted && !e[0].tokens[1].quoted)
    }

    @Test("a quoted string may span lines (RFC 1035 §5.1); later tokens carry the later line")
    func quotedAcrossLines() throws {
        let e = try Self.entries("a TXT \"one\ntwo\" x\nb A 192.0.2.1\n")
        #expect(e.count == 2)
        #expect(e[0].tokens[2].text == Array("one\ntwo".utf8))
        #expect(e[0].tokenLines == [1, 1, 1, 2])
        #expect(e[1].line == 3)
    }

    @Test("a backslash keeps the next byte in the token: escaped blank, ';', parenthesis, quote")
    func escapes() throws {
        let e = try Self.entries(##"a\ b\;c\(d\)e\"f x\.y \# \000"## + "\n")
        #expect(Self.words(e[0]) == [#"a\ b\;c\(d\)e\"f"#, #"x\.y"#, ##"\#"##, #"\000"#])
    }

    @Test("a quote inside unquoted text starts a new, quoted token, as BIND and NSD read it")
    func quoteSplitsToken() throws {
        let e = try Self.entries("a TXT \"abc\"def ghi\"jkl\"\n")
        #expect(Self.words(e[0]) == ["a", "TXT", "\"abc\"", "def", "ghi", "\"jkl\""])
    }

    @Test("CRLF line ends read as LF ones; no final line end needed")
    func crlf() throws {
        let e = try Self.entries("a A 192.0.2.1\r\n  A 192.0.2.2\r\nb A 192.0.2.3")
        #expect(e.map(Self.words) == [["a", "A", "192.0.2.1"], ["A", "192.0.2.2"], ["b", "A", "192.0.2.3"]])
        #expect(e.map(\.line) == [1, 2, 3])
        #expect(e.map(\.startsWithBlank) == [false, true, false])
    }

    @Test("empty text and text of comments only give no entries")
    func empty() throws {
        #expect(try Self.entries("").isEmpty)
        #expect(try Self.entries("; nothing\n\n  ; here\n( )\n").isEmpty)
    }

    @Test("tokens(of:) reads presentation text as one entry, line ends included")
    func tokensOf() throws {
        let t = try ZoneLexer.tokens(of: "10 mail.example.com.\n\"a b\"")
        #expect(t == [ZoneToken(text: Array("10".utf8), quoted: false),
                      ZoneToken(text: Array("mail.example.com.".utf8), quoted: false),
                      ZoneToken(text: Array("a b".utf8), quoted: true)])
        #expect(try ZoneLexer.tokens(of: "").isEmpty)
    }

    @Test("lexical errors name the line where the problem is", arguments: [
        ("a A (1\n (2))\n", 2, "nested '(' (the '(' on line 1 is still open)"),
        ("a A 192.0.2.1 )\n", 1, "')' without an opening '('"),
        ("x A 1\na SOA ( ns hm\n 1 2 3\n", 2, "'(' not closed before the end of the file"),
        ("x A 1\n\na TXT \"abc\n\ndef\n", 3, "quoted string not closed before the end of the file"),
        ("a A 1\nb TXT abc\\", 2, "backslash at the end of the file"),
        ("a TXT \"abc\\", 1, "backslash at the end of the file"),
    ])
    func errors(text: String, line: Int, reason: String) {
        #expect(Self.lexError(text) == .zone(file: "f", line: line, reason: reason))
    }

    @Test("a token or quoted string over maximumTokenLength is refused, at its first line")
    func tokenTooLong() {
        let long = String(repeating: "a", count: ZoneLexer.maximumTokenLength + 1)
        #expect(Self.lexError("x A 1\n" + long + " A 1\n")
            == .zone(file: "f", line: 2, reason: "token longer than \(ZoneLexer.maximumTokenLength) bytes"))
        #expect(Self.lexError("x TXT \"" + long + "\"\n")
            == .zone(file: "f", line: 1, reason: "quoted string longer than \(ZoneLexer.maximumTokenLength) bytes"))
        // Exactly the limit is fine.
        let limit = String(repeating: "a", count: ZoneLexer.maximumTokenLength)
        #expect(Self.lexError("x TXT " + limit + "\n") == nil)
    }

    @Test("an entry over maximumEntryLength is refused at its first line; empty quoted tokens count too")
    func entryTooLong() {
        let chunk = String(repeating: "b", count: 100_000)
        let text = "x A 1\ny TXT ( " + chunk + "\n" + chunk + "\n" + chunk + " )\n"
        #expect(Self.lexError(text) == .zone(file: "f", line: 2, reason: "entry longer than \(ZoneLexer.maximumEntryLength) bytes"))
        let empties = "y TXT " + String(repeating: "\"\"", count: ZoneLexer.maximumEntryLength) + "\n"
        #expect(Self.lexError(empties) == .zone(file: "f", line: 1, reason: "entry longer than \(ZoneLexer.maximumEntryLength) bytes"))
    }
}
