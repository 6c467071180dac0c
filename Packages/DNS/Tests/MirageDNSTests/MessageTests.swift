import MirageDevices
import MirageDNS
import Testing

/// Messages built and encoded by dnspython 2.3 (`dns.message.make_query`,
/// `make_response`, `to_wire()`), whose compression picks the longest
/// earlier suffix as ours does: our encoding must be byte-identical.
enum Vectors {
    /// www.example.com A, RD, EDNS payload 1232, ID 0x1234.
    static let query = "12340100000100000000000103777777076578616d706c6503636f6d000001000100002904d0000000000000"
    /// Its answer: CNAME to web.Example.com, two A, NS in authority, glue A and AAAA.
    static let response = "12348500000100030002000303777777076578616d706c6503636f6d0000010001c00c0005000100000e10000603776562c010c02d0001000100000e100004c0000202c02d0001000100000e100004c0000201c01000020001000151800006036e7331c010c01000020001000151800011036e7332076578616d706c65036e657400c05f00010001000151800004c0000235c05f001c000100015180001020010db80000000000000000000000530000292000000000000000"
    /// NXDOMAIN for nope.example.com MX with the SOA in authority, no EDNS.
    static let nxdomain = "beef85030001000000010000046e6f7065076578616d706c6503636f6d00000f0001c011000600010000012c0027036e7331c0110a686f73746d6173746572c01178a3f17500001c2000000e10001275000000012c"
    /// example.com DNSKEY with DO, payload 4096 and a cookie option.
    static let queryDO = "000701000001000000000001076578616d706c6503636f6d0000300001000029100000008000000c000a00080102030405060708"
    /// BADVERS (16: extended rcode 1, header 0) with DO.
    static let badVersion = "000781000001000000000001076578616d706c6503636f6d000030000100002904d0010080000000"

    static func responseMessage() -> Message {
        var h = Header(id: 0x1234)
        h.isResponse = true
        h.isAuthoritative = true
        h.recursionDesired = true
        var m = Message(header: h)
        m.questions = [Question(name: name("www.example.com."), type: .a)]
        m.answers = [
            ResourceRecord(name: name("www.example.com."), ttl: 3600, data: .cname(name("web.Example.com."))),
            ResourceRecord(name: name("web.example.com."), ttl: 3600, data: .a(IPv4Address(192, 0, 2, 2))),
            ResourceRecord(name: name("web.example.com."), ttl: 3600, data: .a(IPv4Address(192, 0, 2, 1))),
        ]
        m.authority = [
            ResourceRecord(name: name("example.com."), ttl: 86400, data: .ns(name("ns1.example.com."))),
            ResourceRecord(name: name("example.com."), ttl: 86400, data: .ns(name("ns2.example.net."))),
        ]
        m.additional = [
            ResourceRecord(name: name("ns1.example.com."), ttl: 86400, data: .a(IPv4Address(192, 0, 2, 53))),
            ResourceRecord(name: name("ns1.example.com."), ttl: 86400, data: .aaaa(IPv6Address("2001:db8::53")!)),
        ]
        m.edns = EDNS(payloadSize: 8192)
        return m
    }
}

@Suite struct MessageTests {
    @Test("a query decodes and re-encodes to the same bytes")
    func query() throws {
        let bytes = hex(Vectors.query)
        let m = try Message(parsing: bytes.span)
        #expect(m.header.id == 0x1234)
        #expect(m.header.recursionDesired && !m.header.isResponse)
        #expect(m.header.opcode == .query)
        #expect(m.questions == [Question(name: name("WWW.example.com."), type: .a, class: .in)])
        #expect(m.edns == EDNS(payloadSize: 1232))
        #expect(m.additional.isEmpty)
        #expect(m.responseCode == .noError)
        #expect(try m.encode() == bytes)
    }

    @Test("a response encodes byte for byte as dnspython compresses it")
    func response() throws {
        let m = Vectors.responseMessage()
        let bytes = try m.encode()
        #expect(hexString(bytes) == hexString(hex(Vectors.response)))
        let decoded = try Message(parsing: bytes.span)
        var expected = m
        expected.header.questionCount = 1
        expected.header.answerCount = 3
        expected.header.authorityCount = 2
        expected.header.additionalCount = 3
        #expect(decoded == expected)
        // Compression matched "Example.com" to the question's "example.com"
        // case-insensitively (RFC 4343 §4.1 lets the case go), so the
        // decoded target has the question's case; equality ignores it.
        guard case .cname(let target) = decoded.answers[0].data else { Issue.record("no CNAME"); return }
        #expect(target.description == "web.example.com.")
        #expect(target == name("web.Example.com."))
    }

    @Test("a reused writer encodes the same bytes as a fresh one, message after message")
    func reusedWriter() throws {
        var w = MessageWriter(limit: 65535, capacity: 64)
        let messages = [Vectors.responseMessage(), try decode(hex(Vectors.nxdomain)), try decode(hex(Vectors.queryDO)), Vectors.responseMessage()]
        for m in messages {
            try m.encode(into: &w)
            #expect(w.bytes == (try m.encode()))
        }
    }

    @Test("compression points at the earlier suffixes (RFC 1035 §4.1.4 offsets)")
    func compressionOffsets() throws {
        let bytes = try Vectors.responseMessage().encode()
        // The answer's owner is the question name at 12: C0 0C.
        #expect(bytes[33] == 0xC0 && bytes[34] == 0x0C)
        // The CNAME target "web" + pointer to "Example.com" at 16.
        #expect(Array(bytes[45...50]) == [3, 0x77, 0x65, 0x62, 0xC0, 0x10])
        // The A records' owner points at that "web" label, at 45.
        #expect(bytes[51] == 0xC0 && bytes[52] == 45)
    }

    @Test("NXDOMAIN with SOA; BADVERS and DO; options kept")
    func moreVectors() throws {
        let nx = try decode(hex(Vectors.nxdomain))
        #expect(nx.responseCode == .nameError)
        #expect(nx.edns == nil)
        #expect(nx.header.isAuthoritative)
        #expect(nx.authority.count == 1)
        #expect(nx.authority[0].data == .soa(SOA(mname: name("ns1.example.com."), rname: name("hostmaster.example.com."),
                                                  serial: 2_024_010_101, refresh: 7200, retry: 3600, expire: 1_209_600, minimum: 300)))
        #expect(try nx.encode() == hex(Vectors.nxdomain))

        let q = try decode(hex(Vectors.queryDO))
        #expect(q.edns?.dnssecOK == true)
        #expect(q.edns?.payloadSize == 4096)
        #expect(q.edns?.options == [EDNSOption(code: 10, data: hex("0102030405060708"))])
        #expect(try q.encode() == hex(Vectors.queryDO))

        let bv = try decode(hex(Vectors.badVersion))
        #expect(bv.responseCode == .badVersion)
        #expect(bv.header.responseCode == 0)
        #expect(bv.edns?.extendedRCode == 1)
        #expect(try bv.encode() == hex(Vectors.badVersion))

        // Setting a 12-bit code splits it between header and OPT.
        var m = Message(header: Header(id: 7))
        m.responseCode = .badVersion
        #expect(m.header.responseCode == 0 && m.edns?.extendedRCode == 1)
        m.responseCode = .refused
        #expect(m.header.responseCode == 5 && m.edns?.extendedRCode == 0)
    }

    @Test("a compressed SRV target (dnspython sends them) is read, and written whole")
    func compressedSRVTarget() throws {
        // dnspython: all.example.com SRV 0 5 5060 sip.example.com, target compressed to "sip" + C011.
        let bytes = hex("0001 8000 0001 0001 0000 0000 03616C6C076578616D706C6503636F6D00 0021 0001"
            + "C00C 0021 0001 0000012C 000C 0000 0005 13C4 03736970 C010")
        let m = try decode(bytes)
        #expect(m.answers.first?.data == .srv(SRV(priority: 0, weight: 5, port: 5060, target: name("sip.example.com."))))
        let again = try m.encode()
        #expect(Array(again[(again.count - 23)...]) == hex("0000 0005 13C4 03736970 076578616D706C6503636F6D00"))
    }

    // MARK: Bad input

    /// A header for a message with these counts (ID 1, no flags).
    static func header(qd: Int = 0, an: Int = 0, ns: Int = 0, ar: Int = 0) -> String {
        "0001 0000" + [qd, an, ns, ar].map { String(format4: $0) }.joined()
    }

    static let malformedCases: [(String, DNSError)] = [
        // Too short for a header.
        ("0001 0000 0001", DNSError.truncated(offset: 6, needed: 6)),
        // The count says two questions, one is there (a lying count).
        (header(qd: 2) + "0161 00 0001 0001", .truncated(offset: 19, needed: 1)),
        (header(an: 1), .truncated(offset: 12, needed: 1)),
        // Trailing garbage after the last record.
        (header(qd: 1) + "0161 00 0001 0001 FF", .trailingBytes(count: 1)),
        // A forward pointer, a pointer to itself, one outside the message.
        (header(qd: 1) + "C00E 0001 0001", .badPointer(offset: 12, target: 14)),
        (header(qd: 1) + "C00C 0001 0001", .badPointer(offset: 12, target: 12)),
        (header(qd: 1) + "FFFF 0001 0001", .badPointer(offset: 12, target: 0x3FFF)),
        // A loop: "www" then a pointer back to its own start.
        (header(qd: 1) + "03777777 C00C 0001 0001", .compressionLoop(offset: 12)),
        // A pointer cut short by the end of the message.
        (header(qd: 1) + "0161 C0", .truncated(offset: 15, needed: 1)),
        // Label types 01 and 10 (length bytes 64-191): a 64-byte "label".
        (header(qd: 1) + "40" + String(repeating: "61", count: 64) + "00 0001 0001", .unsupportedLabelType(0x40)),
        (header(qd: 1) + "80 00 0001 0001", .unsupportedLabelType(0x80)),
        // A label running past the end.
        (header(qd: 1) + "0561", .truncated(offset: 14, needed: 5)),
        // RDATA longer than the message.
        (header(an: 1) + "00 0001 0001 00000000 0004 C000", .truncated(offset: 25, needed: 2)),
        // RDLENGTH 5 for an A record.
        (header(an: 1) + "00 0001 0001 00000000 0005 C000020101", .badRecordData(type: 1, reason: "1 bytes after the fields")),
        // An MX whose exchange runs past RDLENGTH.
        (header(an: 1) + "00 000F 0001 00000000 0004 000A 0161 00", .badRecordData(type: 15, reason: "RDATA shorter than its fields")),
        // OPT in the answer section, OPT with a non-root owner, two OPTs.
        (header(an: 1) + "00 0029 1000 00000000 0000", .misplacedOPT),
        (header(ar: 1) + "0161 00 0029 1000 00000000 0000", .misplacedOPT),
        (header(ar: 2) + "00 0029 1000 00000000 0000 00 0029 1000 00000000 0000", .duplicateOPT),
        // An EDNS option longer than the OPT data.
        (header(ar: 1) + "00 0029 1000 00000000 0004 000A 0008", .badRecordData(type: 41, reason: "EDNS option longer than the OPT data")),
        (header(ar: 1) + "00 0029 1000 00000000 0002 000A", .badRecordData(type: 41, reason: "EDNS option header cut short")),
    ]

    @Test("malformed messages are refused with the exact error", arguments: malformedCases)
    func malformed(bytes: String, error: DNSError) {
        let message = hex(bytes)
        #expect(throws: error) { try Message(parsing: message.span) }
    }

    @Test("a name over 255 bytes through pointers is refused")
    func nameTooLongThroughPointers() throws {
        // An opaque record holds four 63-byte labels; a second record's owner points at them.
        let label = "3F" + String(repeating: "61", count: 63)
        let first = "00 FF00 0001 00000000 0101" + String(repeating: label, count: 4) + "00"
        let message = hex(Self.header(an: 2) + first + "C017 0001 0001 00000000 0000")
        #expect(throws: DNSError.nameTooLong(length: 257)) { try Message(parsing: message.span) }
    }

    @Test("a chain of more pointers than a name has labels is a loop")
    func pointerChain() throws {
        // An opaque record's data: a root name at 23, then 128 pointers each to the one before.
        var data = "00"
        var previous = 23
        for k in 0..<128 {
            let at = 24 + 2 * k
            data += String(format4: 0xC000 | previous)
            previous = at
        }
        let length = 1 + 2 * 128
        let first = "00 FF00 0001 00000000" + String(format4: length) + data
        // A name reached through 127 pointers is fine; through 128 it is one too many.
        let ok = hex(Self.header(an: 2) + first + String(format4: 0xC000 | (previous - 4)) + "FF00 0001 00000000 0000")
        #expect((try? Message(parsing: ok.span)) != nil)
        let bad = hex(Self.header(an: 2) + first + String(format4: 0xC000 | (previous - 2)) + "FF00 0001 00000000 0000")
        #expect(throws: DNSError.compressionLoop(offset: 23 + length)) { try Message(parsing: bad.span) }
    }

    // MARK: Truncation

    /// A response with `answers` A records for big.example (one RRset), an
    /// NS RRset in authority and the addresses of the servers in additional.
    static func bigResponse(answers: Int, edns: Bool) -> Message {
        var h = Header(id: 9)
        h.isResponse = true
        var m = Message(header: h)
        let owner = name("big.example.")
        m.questions = [Question(name: owner, type: .a)]
        m.answers = (0..<answers).map { ResourceRecord(name: owner, ttl: 60, data: .a(IPv4Address(rawValue: UInt32($0)))) }
        m.authority = [ResourceRecord(name: name("example."), ttl: 60, data: .ns(name("ns1.example.")))]
        m.additional = [
            ResourceRecord(name: name("ns1.example."), ttl: 60, data: .a(IPv4Address(10, 0, 0, 1))),
            ResourceRecord(name: name("ns1.example."), ttl: 60, data: .aaaa(IPv6Address("2001:db8::1")!)),
        ]
        if edns { m.edns = EDNS() }
        return m
    }

    @Test("an answer RRset that does not fit is left out whole and TC is set; the OPT stays")
    func truncatesAnswers() throws {
        // 12 header + 17 question + 30 answers of 16 bytes (2 + 10 + 4) = 509 + OPT 11 > 512.
        let m = Self.bigResponse(answers: 30, edns: true)
        let full = try m.encode()
        #expect(full.count > 512)
        let bytes = try m.encode(limit: 512)
        #expect(bytes.count <= 512)
        let d = try Message(parsing: bytes.span)
        #expect(d.header.isTruncated)
        #expect(d.answers.isEmpty && d.authority.isEmpty && d.additional.isEmpty)
        #expect(d.questions == m.questions)
        #expect(d.edns == EDNS())
        let untruncated = try Message(parsing: full.span)
        #expect(!untruncated.header.isTruncated)
        #expect(untruncated.answers == m.answers)
    }

    @Test("additional records that do not fit are dropped without TC (RFC 2181 §9)")
    func dropsAdditionalWithoutTC() throws {
        let m = Self.bigResponse(answers: 25, edns: false)
        let full = try m.encode()
        // Leave room for the A glue (16 bytes with its pointer) but not the AAAA (28).
        let limit = full.count - 28
        let d = try decode(try m.encode(limit: limit))
        #expect(!d.header.isTruncated)
        #expect(d.answers.count == 25)
        #expect(d.authority.count == 1)
        #expect(d.additional == [m.additional[0]])
        // Without room for the authority NS, TC is set and additional goes too.
        let authorityStart = full.count - 16 - 28 - 18
        let d2 = try decode(try m.encode(limit: authorityStart + 5))
        #expect(d2.header.isTruncated)
        #expect(d2.answers.count == 25 && d2.authority.isEmpty && d2.additional.isEmpty)
    }

    @Test("a question that does not fit is an error")
    func questionTooLarge() {
        let m = Self.bigResponse(answers: 0, edns: true)
        #expect(throws: DNSError.messageTooLarge(size: 40, limit: 30)) { try m.encode(limit: 30) }
        #expect(throws: DNSError.messageTooLarge(size: 23, limit: 20)) { try m.encode(limit: 20) }
    }
}

extension String {
    /// Four hex digits of `value`.
    init(format4 value: Int) {
        let digits = Array("0123456789ABCDEF")
        self = String((0..<4).map { digits[(value >> (12 - 4 * $0)) & 15] })
    }
}
