@testable import MirageDNS
import MirageDevices
import Testing

/// Every way a zone file is refused: the error names the file, the line
/// (from 1) and the reason, exactly.
struct ZoneFileErrorTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var text: String
        var line: Int
        var reason: String
        var file = "zone"
        var includes: [String: String] = [:]
        var testDescription: String { reason }
    }

    static let long63 = String(repeating: "a", count: 63)

    static let cases: [Case] = [
        // Owner, TTL, class, type.
        Case(text: " A 192.0.2.1\n", line: 1,
             reason: "the line starts with a blank (no owner) but there is no previous owner"),
        Case(text: "$TTL 1\n\n\tA 192.0.2.1\n", line: 3,
             reason: "the line starts with a blank (no owner) but there is no previous owner"),
        Case(text: "a A 192.0.2.1\n", line: 1,
             reason: "no TTL: none on this record, no $TTL before it and no earlier record with one (RFC 2308 §4)"),
        Case(text: "a 1 CH A 192.0.2.1\n", line: 1, reason: "class CH: only class IN is supported"),
        Case(text: "a HS 1 A 192.0.2.1\n", line: 1, reason: "class HS: only class IN is supported"),
        Case(text: "a CLASS5 A 192.0.2.1\n", line: 1, reason: "class CLASS5: only class IN is supported"),
        Case(text: "a 1 2 A 192.0.2.1\n", line: 1, reason: "a second TTL '2'"),
        Case(text: "a IN 1 in A 192.0.2.1\n", line: 1, reason: "a second class 'in'"),
        Case(text: "a 1 FOO 192.0.2.1\n", line: 1, reason: "unknown record type 'FOO'"),
        Case(text: "a 1 \"A\" 192.0.2.1\n", line: 1, reason: "unknown record type 'A'"),
        Case(text: "$TTL 1\na IN\n", line: 2, reason: "no record type"),
        Case(text: "$TTL 1\na\n", line: 2, reason: "no record type"),
        Case(text: "a 1 TYPE0 \\# 0\n", line: 1,
             reason: "type TYPE0 is a meta type, which cannot be stored in a zone (RFC 6895 §3.1)"),
        Case(text: "a 1 OPT \\# 0\n", line: 1,
             reason: "type OPT is a meta type, which cannot be stored in a zone (RFC 6895 §3.1)"),
        Case(text: "a 1 AXFR \\# 0\n", line: 1,
             reason: "type AXFR is a meta type, which cannot be stored in a zone (RFC 6895 §3.1)"),
        Case(text: "a 1 TYPE128 \\# 0\n", line: 1,
             reason: "type TYPE128 is a meta type, which cannot be stored in a zone (RFC 6895 §3.1)"),
        // TTLs.
        Case(text: "a 1h30 A 192.0.2.1\n", line: 1, reason: "bad TTL '1h30': a number without a unit after one with a unit"),
        Case(text: "a 12x A 192.0.2.1\n", line: 1, reason: "bad TTL '12x': 'x' is neither a digit nor a unit (s, m, h, d, w)"),
        Case(text: "a 2147483648 A 192.0.2.1\n", line: 1,
             reason: "TTL '2147483648' is over 2147483647, the largest RFC 2181 §8 allows"),
        Case(text: "a 4294967296 A 192.0.2.1\n", line: 1, reason: "TTL '4294967296' is too large"),
        Case(text: "a 99999999999999999999 A 192.0.2.1\n", line: 1, reason: "TTL '99999999999999999999' is too large"),
        Case(text: "a 7102w A 192.0.2.1\n", line: 1, reason: "TTL '7102w' is too large"),
        Case(text: "a (\n 1x\n A 192.0.2.1 )\n", line: 2, reason: "bad TTL '1x': 'x' is neither a digit nor a unit (s, m, h, d, w)"),
        Case(text: "$TTL h\n", line: 1, reason: "bad TTL 'h': a unit without a number before it"),
        Case(text: "$TTL\n", line: 1, reason: "$TTL takes one TTL, not 0 fields"),
        Case(text: "$TTL 1 2\n", line: 1, reason: "$TTL takes one TTL, not 2 fields"),
        Case(text: "$TTL \"\"\n", line: 1, reason: "empty TTL"),
        // Names.
        Case(text: "$TTL 1\n\(long63)a A 192.0.2.1\n", line: 2,
             reason: "bad owner name '\(long63)a': label of 64 bytes (at most 63)"),
        Case(text: "$TTL 1\na..b A 192.0.2.1\n", line: 2, reason: "bad owner name 'a..b': empty label in a name"),
        Case(text: "$TTL 1\na\\256 A 192.0.2.1\n", line: 2, reason: "bad owner name 'a\\256': \\DDD escape over 255"),
        Case(text: "$ORIGIN\n", line: 1, reason: "$ORIGIN takes one domain name, not 0 fields"),
        Case(text: "$ORIGIN a. b.\n", line: 1, reason: "$ORIGIN takes one domain name, not 2 fields"),
        Case(text: "$ORIGIN \(long63)b.\n", line: 1, reason: "bad $ORIGIN '\(long63)b.': label of 64 bytes (at most 63)"),
        Case(text: "$GENERATE 1-2 h$ A 192.0.2.$\n", line: 1,
             reason: "unknown directive '$GENERATE' (only $ORIGIN, $TTL and $INCLUDE are supported)"),
        // Record data (the reason after "bad TYPE data:" is RData's).
        Case(text: "$TTL 1\na A 300.1.1.1\n", line: 2, reason: "bad A data: bad IPv4 address"),
        Case(text: "$TTL 1\n@ SOA ns hm (\n 1 2\n 3 4 )\n", line: 2, reason: "bad SOA data: missing minimum"),
        Case(text: "$TTL 1\na A\n", line: 2, reason: "bad A data: missing address"),
        Case(text: "$TTL 1\na A 192.0.2.1 192.0.2.2\n", line: 2, reason: "bad A data: extra fields after the A data"),
        Case(text: "$TTL 1\na TYPE65280 \\# 3 abcd\n", line: 2, reason: "bad TYPE65280 data: \\# length 3 but 2 bytes of data"),
        Case(text: "$TTL 1\na TYPE65280 1 2 3\n", line: 2, reason: "bad TYPE65280 data: TYPE65280 data must be written in the \\# form (RFC 3597)"),
        // Lexical errors.
        Case(text: "$TTL 1\na TXT (\"x\"\n \"y\"\n", line: 2, reason: "'(' not closed before the end of the file"),
        Case(text: "$TTL 1\na TXT \"x\" )\n", line: 2, reason: "')' without an opening '('"),
        // Includes.
        Case(text: "$INCLUDE\n", line: 1, reason: "$INCLUDE takes a file name and an optional origin, not 0 fields"),
        Case(text: "$INCLUDE a b. c\n", line: 1, reason: "$INCLUDE takes a file name and an optional origin, not 3 fields"),
        Case(text: "\n$INCLUDE nope\n", line: 2, reason: "cannot read $INCLUDE file 'nope': no such key in the store"),
        Case(text: "$INCLUDE x\\25\n", line: 1, reason: "bad $INCLUDE file name: \\DDD escape with fewer than three digits in 'x\\25'"),
        Case(text: "$INCLUDE x a..b\n", line: 1, reason: "bad $INCLUDE origin 'a..b': empty label in a name"),
        Case(text: "$TTL 1\n$INCLUDE inc\n", line: 3, reason: "bad A data: bad IPv4 address", file: "inc",
             includes: ["inc": "ok A 192.0.2.1\n\nbad A 192.0.2.256\n"]),
        Case(text: "$TTL 1\n$INCLUDE inc\n", line: 1, reason: "')' without an opening '('", file: "inc",
             includes: ["inc": ")\n"]),
        Case(text: "$INCLUDE loop\n", line: 1,
             reason: "$INCLUDE nested deeper than \(ZoneFileParser.maximumIncludeDepth) files (does a file include itself?)",
             file: "loop", includes: ["loop": "$INCLUDE loop\n"]),
        Case(text: String(repeating: "$INCLUDE empty\n", count: ZoneFileParser.maximumIncludes + 1),
             line: ZoneFileParser.maximumIncludes + 1,
             reason: "more than \(ZoneFileParser.maximumIncludes) $INCLUDE directives", includes: ["empty": ""]),
    ]

    @Test("each broken file is refused with its file, line and reason", arguments: cases)
    func refused(_ c: Case) {
        #expect(zoneError(c.text, includes: c.includes) == .zone(file: c.file, line: c.line, reason: c.reason))
    }

    @Test("more records than the limit are refused at the first one over, includes counted")
    func tooManyRecords() {
        // The real limit (maximumRecords, a million) takes a minute in a debug
        // build; the same check with a limit of 3.
        let store = MemoryKeyValueStore(["two": Array("b A 192.0.2.2\n  A 192.0.2.3\n".utf8)])
        let text = Array("$TTL 1\na A 192.0.2.1\n$INCLUDE two\nc A 192.0.2.4\n".utf8)
        do {
            _ = try ZoneFileParser.parse(text, file: "zone", origin: name("example.com."), defaultTTL: nil, includes: store, maximumRecords: 3)
            Issue.record("a fourth record was accepted")
        } catch {
            #expect(error == .zone(file: "zone", line: 4, reason: "more than 3 records"))
        }
        let upTo = Array("$TTL 1\na A 192.0.2.1\n$INCLUDE two\n".utf8)
        #expect(throws: Never.self) {
            try ZoneFileParser.parse(upTo, file: "zone", origin: name("example.com."), defaultTTL: nil, includes: store, maximumRecords: 3)
        }
    }
}
