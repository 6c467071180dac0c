import MirageDevices
import MirageDNS
import Testing

@Suite struct RDataTests {
    /// Presentation text and wire bytes of each type, the bytes from
    /// dnspython 2.3 (`dns.rdata.from_text(...).to_wire()`); the text is
    /// also what we print (upper-case hex and base32hex, unbroken base64).
    static let vectors: [(type: String, text: String, wire: String)] = [
        ("A", "192.0.2.1", "C0000201"),
        ("AAAA", "2001:db8::1", "20010DB8000000000000000000000001"),
        ("NS", "ns1.example.com.", "036E7331076578616D706C6503636F6D00"),
        ("CNAME", "www.example.com.", "03777777076578616D706C6503636F6D00"),
        ("PTR", "host.example.com.", "04686F7374076578616D706C6503636F6D00"),
        ("SOA", "ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300", "036E7331076578616D706C6503636F6D000A686F73746D6173746572076578616D706C6503636F6D0078A3F17500001C2000000E10001275000000012C"),
        ("MX", "10 mail.example.com.", "000A046D61696C076578616D706C6503636F6D00"),
        ("TXT", "\"v=spf1 -all\" \"second \\\"quoted\\\" \\\\ \\009tab\"", "0B763D73706631202D616C6C167365636F6E64202271756F74656422205C2009746162"),
        ("SRV", "0 5 5060 sip.example.com.", "0000000513C403736970076578616D706C6503636F6D00"),
        ("NAPTR", "100 10 \"S\" \"SIP+D2U\" \"\" _sip._udp.example.com.", "0064000A0153075349502B44325500045F736970045F756470076578616D706C6503636F6D00"),
        ("CAA", "0 issue \"ca.example.net\"", "0005697373756563612E6578616D706C652E6E6574"),
        ("CAA", "128 iodef \"mailto:security@example.com\"", "8005696F6465666D61696C746F3A7365637572697479406578616D706C652E636F6D"),
        ("SSHFP", "4 2 123456789ABCDEF67890123456789ABCDEF67890123456789ABCDEF123456789AB", "0402123456789ABCDEF67890123456789ABCDEF67890123456789ABCDEF123456789AB"),
        ("TLSA", "3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6", "0301010C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6"),
        ("DS", "60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118", "EC4505012BB183AF5F22588179A53B0A98631FAD1A292118"),
        ("DNSKEY", "256 3 5 AQPSKmynfzW4kyBv015MUG2DeIQ3Cbl+BBZH4b/0PY1kxkmvHjcZc8nokfzj31GajIQKY+5CptLr3buXA10hWqTkF7H6RfoRqXQeogmMHfpftf6zMv1LyBUgia7za6ZEzOJBOztyvhjL742iU/TpPSEDhm2SNKLijfUppn1UaNvv4w==", "010003050103D22A6CA77F35B893206FD35E4C506D8378843709B97E041647E1BFF43D8D64C649AF1E371973C9E891FCE3DF519A8C840A63EE42A6D2EBDDBB97035D215AA4E417B1FA45FA11A9741EA2098C1DFA5FB5FEB332FD4BC8152089AEF36BA644CCE2413B3B72BE18CBEF8DA253F4E93D2103866D9234A2E28DF529A67D5468DBEFE3"),
        ("RRSIG", "A 5 3 86400 20030322173103 20030220173103 2642 example.com. oJB1W6WNGv+ldvQ3WDG0MQkg5IEhjRip8WTrPYGv07h108dUKGMeDPKijVCHX3DDKdfb+v6oB9wfuh3DTJXUAfI/M0zmO/zz8bW0Rznl8O3tGNazPwQKkRN20XPXV6nwwfoXmJQbsLNrLfkGJ5D6fwFm8nN+6pBzeDQfsS3Ap3o=", "00010503000151803E7C9DD73E5510D70A52076578616D706C6503636F6D00A090755BA58D1AFFA576F4375831B4310920E481218D18A9F164EB3D81AFD3B875D3C75428631E0CF2A28D50875F70C329D7DBFAFEA807DC1FBA1DC34C95D401F23F334CE63BFCF3F1B5B44739E5F0EDED18D6B33F040A911376D173D757A9F0C1FA1798941BB0B36B2DF9062790FA7F0166F2737EEA907378341FB12DC0A77A"),
        ("NSEC", "host.example.com. A MX RRSIG NSEC TYPE1234", "04686F7374076578616D706C6503636F6D000006400100000003041B000000000000000000000000000000000000000000000000000020"),
        ("NSEC3", "1 1 12 AABBCCDD 2VPTU5TIMAMQTTGL4LUU9KG21E0AOR3S A RRSIG", "0101000C04AABBCCDD1417F3DF17B2B2ADAEF615257DE4D2020B80AC6C7C0006400000000002"),
        ("NSEC3", "1 0 0 - 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR NS SOA MX RRSIG DNSKEY NSEC3PARAM", "010000000014174EB2409FE28BCB4887A1836F957F0A8425E27B000722010000000290"),
        ("NSEC3PARAM", "1 0 12 AABBCCDD", "0100000C04AABBCCDD"),
        ("NSEC3PARAM", "1 0 0 -", "0100000000"),
        ("TYPE65280", "\\# 4 0A000001", "0A000001"),
        ("TYPE731", "\\# 0", ""),
    ]

    static let origin = name("example.com.")

    @Test("presentation → wire → presentation round trip for every type", arguments: vectors)
    func roundTrip(type: String, text: String, wire: String) throws {
        let t = try #require(RecordType(mnemonic: type))
        let data = try RData(type: t, presentation: tokens(text), origin: Self.origin)
        #expect(data.type == t)
        var w = MessageWriter()
        w.compressionEnabled = false
        try data.emit(into: &w)
        #expect(hexString(w.bytes) == wire)
        let bytes = hex(wire)
        let decoded = try RData.parse(type: t, data: bytes)
        #expect(decoded == data)
        #expect(data.presentation == text)
        // The generic form of the same bytes reads to the same data (RFC 3597 §5).
        let generic = try RData(type: t, presentation: tokens("\\# \(bytes.count) \(wire)"), origin: Self.origin)
        #expect(generic == data)
    }

    @Test("typed values of some vectors")
    func typedValues() throws {
        let mx = try RData(type: .mx, presentation: tokens("10 mail"), origin: Self.origin)
        #expect(mx == .mx(preference: 10, exchange: name("mail.example.com.")))
        #expect(mx.additionalTarget == name("mail.example.com."))
        let a = try RData(type: .a, presentation: tokens("\\# 4 C0000201"), origin: Self.origin)
        #expect(a == .a(IPv4Address(192, 0, 2, 1)))
        #expect(a.additionalTarget == nil)
        let sig = try RData(type: .rrsig, presentation: tokens(Self.vectors.first { $0.type == "RRSIG" }!.text), origin: Self.origin)
        guard case .rrsig(let rrsig) = sig else { Issue.record("not an RRSIG"); return }
        // RFC 4034 §3.3's example: 2003-03-22 17:31:03 and 2003-02-20 17:31:03 UTC.
        #expect(rrsig.expiration == 1_048_354_263)
        #expect(rrsig.inception == 1_045_762_263)
        #expect(rrsig.typeCovered == .a)
        #expect(rrsig.signerName == Self.origin)
        let nsec3 = try RData(type: .nsec3, presentation: tokens("1 1 12 aabbccdd 2vptu5timamqttgl4luu9kg21e0aor3s A RRSIG"), origin: Self.origin)
        guard case .nsec3(let n3) = nsec3 else { Issue.record("not an NSEC3"); return }
        #expect(n3.salt == [0xAA, 0xBB, 0xCC, 0xDD])
        #expect(n3.nextHashedOwnerName == hex("17F3DF17B2B2ADAEF615257DE4D2020B80AC6C7C"))
        #expect(n3.types == [.a, .rrsig])
    }

    @Test("RRSIG times: YYYYMMDDHHmmSS both ways, decimal accepted", arguments: [
        ("19700101000000", UInt32(0)),
        ("20000229235959", UInt32(951_868_799)),
        ("20000301000000", UInt32(951_868_800)),
        ("21000228000000", UInt32(4_107_456_000)),
        ("21060207062815", UInt32.max),
        ("20380119031408", UInt32(2_147_483_648)),
    ])
    func times(text: String, seconds: UInt32) throws {
        let fields = "A 8 2 300 \(text) \(seconds) 1 example.com. AAAA"
        let data = try RData(type: .rrsig, presentation: tokens(fields), origin: Self.origin)
        guard case .rrsig(let sig) = data else { Issue.record("not an RRSIG"); return }
        #expect(sig.expiration == seconds)
        #expect(sig.inception == seconds)
        #expect(data.presentation == "A 8 2 300 \(text) \(text) 1 example.com. AAAA")
    }

    @Test("type bitmaps: sorted, duplicates dropped, re-emitted canonically")
    func typeBitmaps() throws {
        let nsec = NSEC(nextDomainName: name("b.example."), types: [.rrsig, .a, .nsec, .a, RecordType(rawValue: 1234)])
        #expect(nsec.types == [.a, .rrsig, .nsec, RecordType(rawValue: 1234)])
        // Window 0 with two trailing zero bytes, then window 4: read, and
        // written back without the zeros.
        let sloppy = hex("0162076578616D706C6500 0003 400000 0401 80")
        let decoded = try RData.parse(type: .nsec, message: sloppy.span, offset: 0, length: sloppy.count)
        #expect(decoded == .nsec(NSEC(nextDomainName: name("b.example."), types: [.a, RecordType(rawValue: 1024)])))
        var w = MessageWriter()
        try decoded.emit(into: &w)
        #expect(hexString(w.bytes) == "0162076578616D706C6500000140040180")
        #expect(decoded.presentation == "b.example. A TYPE1024")
    }

    @Test("fields the text form cannot show empty are printed in the generic form")
    func emptyFieldsUseGenericForm() throws {
        let data = RData.ds(DS(keyTag: 1, algorithm: 8, digestType: 2, digest: []))
        #expect(data.presentation == "\\# 4 00010802")
        #expect(try RData(type: .ds, presentation: tokens(data.presentation), origin: Self.origin) == data)
    }

    @Test("bad presentation text is refused with its reason", arguments: [
        ("A", "256.0.0.1", "bad IPv4 address"),
        ("A", "", "missing address"),
        ("A", "1.2.3.4 5", "extra fields after the A data"),
        ("AAAA", "1.2.3.4", "bad IPv6 address"),
        ("MX", "10", "missing name"),
        ("MX", "65536 mail", "bad preference \"65536\" (0-65535)"),
        ("SOA", "a b 1 2 3 4 x", "bad minimum \"x\""),
        ("TXT", "", "TXT needs at least one string"),
        ("TXT", "\"" + String(repeating: "x", count: 256) + "\"", "character-string of 256 bytes (at most 255)"),
        ("CAA", "0 is-sue \"x\"", "CAA tag must be 1-15 letters or digits"),
        ("DS", "1 8 2 ABC", "odd number of hex digits"),
        ("DS", "1 NOPE 2 AB", "unknown algorithm \"NOPE\""),
        ("DNSKEY", "256 3 8 AQ=", "bad base64"),
        ("NSEC", "next. A BOGUS", "unknown type \"BOGUS\""),
        ("NSEC3", "1 0 0 - 2VPTU5TIMAMQTTGL4LUU9KG21E0AOR3W A", "bad base32hex digit"),
        ("RRSIG", "A 8 2 300 20230230000000 0 1 example.com. AAAA", "bad signature time"),
        ("TYPE65280", "0A000001", "TYPE65280 data must be written in the \\# form (RFC 3597)"),
        ("TYPE65280", "\\# 3 0A000001", "\\# length 3 but 4 bytes of data"),
        ("A", "\\# 3 0A0000", "\\# data is not valid A: bad data for type 1: RDATA shorter than its fields"),
    ])
    func refusesBadText(type: String, text: String, reason: String) throws {
        let t = try #require(RecordType(mnemonic: type))
        #expect(throws: DNSError.syntax(reason: reason)) { try RData(type: t, presentation: tokens(text), origin: Self.origin) }
    }

    @Test("RDLENGTH disagreeing with the content is refused", arguments: [
        (RecordType.a, "C00002", DNSError.badRecordData(type: 1, reason: "RDATA shorter than its fields")),
        (.a, "C000020101", .badRecordData(type: 1, reason: "1 bytes after the fields")),
        (.aaaa, "C0000201", .badRecordData(type: 28, reason: "RDATA shorter than its fields")),
        (.mx, "000A 046D61696C", .badRecordData(type: 15, reason: "RDATA shorter than its fields")),
        (.txt, "", .badRecordData(type: 16, reason: "TXT without a string")),
        (.txt, "05616263", .badRecordData(type: 16, reason: "RDATA shorter than its fields")),
        (.caa, "00 00", .badRecordData(type: 257, reason: "CAA tag of 0 characters (1-15)")),
        (.caa, "00 02 612D", .badRecordData(type: 257, reason: "CAA tag not alphanumeric")),
        (.nsec, "00 0401 40 0001 40", .badRecordData(type: 47, reason: "type bitmap windows out of order")),
        (.nsec, "00 0000", .badRecordData(type: 47, reason: "type bitmap length 0 (1-32)")),
        (.nsec, "00 0021" + String(repeating: "00", count: 33), .badRecordData(type: 47, reason: "type bitmap length 33 (1-32)")),
        (.nsec, "00 0002 40", .badRecordData(type: 47, reason: "RDATA shorter than its fields")),
        (.nsec3, "01000000 00 00", .badRecordData(type: 50, reason: "empty next hashed owner name")),
        (.soa, "00 00 00000001", .badRecordData(type: 6, reason: "RDATA shorter than its fields")),
    ])
    func refusesBadWire(type: RecordType, data: String, error: DNSError) {
        let bytes = hex(data)
        #expect(throws: error) { try RData.parse(type: type, message: bytes.span, offset: 0, length: bytes.count) }
    }

    @Test("names in RDATA outside a message (the \\# form) may not be compressed", arguments: [
        (RecordType.srv, "000000000050 C000", UInt16(33)),
        (.mx, "000A C000", 15),
        (.ns, "C000", 2),
    ])
    func noCompressionOutsideMessages(type: RecordType, data: String, code: UInt16) {
        let error = DNSError.badRecordData(type: code, reason: "compressed name where compression is not allowed")
        #expect(throws: error) { try RData.parse(type: type, data: hex(data)) }
    }

    @Test("data that cannot be written is refused")
    func refusesBadValues() {
        var w = MessageWriter()
        #expect(throws: DNSError.badRecordData(type: 16, reason: "character-string over 255 bytes")) {
            try RData.txt([Array(repeating: 0x61, count: 256)]).emit(into: &w)
        }
        #expect(throws: DNSError.badRecordData(type: 16, reason: "TXT without a string")) { try RData.txt([]).emit(into: &w) }
        #expect(throws: DNSError.badRecordData(type: 257, reason: "CAA tag of 16 characters (1-15)")) {
            try RData.caa(CAA(flags: 0, tag: Array(repeating: 0x61, count: 16), value: [])).emit(into: &w)
        }
    }

    @Test("type and class mnemonics", arguments: [
        ("A", UInt16(1)), ("aaaa", 28), ("NSEC3PARAM", 51), ("caa", 257), ("TYPE65280", 65280), ("type1", 1),
    ])
    func typeMnemonics(text: String, value: UInt16) {
        #expect(RecordType(mnemonic: text)?.rawValue == value)
    }

    @Test("mnemonics print back")
    func mnemonicText() {
        #expect(RecordType.nsec3param.description == "NSEC3PARAM")
        #expect(RecordType(rawValue: 65280).description == "TYPE65280")
        #expect(RecordType(mnemonic: "TYPE65536") == nil)
        #expect(RecordType(mnemonic: "TYPE") == nil)
        #expect(RecordType(mnemonic: "AX") == nil)
        #expect(RecordClass(mnemonic: "in") == .in)
        #expect(RecordClass(mnemonic: "CLASS5")?.rawValue == 5)
        #expect(RecordClass(rawValue: 5).description == "CLASS5")
        #expect(RecordClass.ch.description == "CH")
        #expect(ResponseCode.badVersion.description == "BADVERS")
        #expect(ResponseCode(rawValue: 3).description == "NXDOMAIN")
    }
}
