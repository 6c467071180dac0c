import MirageDNS
import Testing

@Suite struct MessageWriterTests {
    @Test("a repeated name becomes a pointer to its first offset, case folded")
    func pointsBack() throws {
        var w = MessageWriter()
        for _ in 0..<12 { try w.write(UInt8(0)) }
        try w.write(name("mail.Example.com."), compress: true)      // at 12
        try w.write(name("www.EXAMPLE.com."), compress: true)       // "www" + pointer to 17
        try w.write(name("MAIL.example.COM."), compress: true)      // pointer to 12
        try w.write(name("com."), compress: true)                   // pointer to 25
        try w.write(name("example.net."), compress: false)          // whole
        #expect(Array(w.bytes[12...]) == hex("046D61696C 074578616D706C65 03636F6D 00  03777777 C011  C00C  C019  076578616D706C65 036E6574 00"))
    }

    @Test("truncate(to:) forgets the names written past the cut")
    func truncateForgets() throws {
        var w = MessageWriter()
        for _ in 0..<12 { try w.write(UInt8(0)) }
        try w.write(name("a.example."), compress: true)
        let cut = w.count
        try w.write(name("b.example.org."), compress: true)
        w.truncate(to: cut)
        try w.write(name("b.example.org."), compress: true)
        // Written whole again: the rolled-back copy is no target.
        #expect(Array(w.bytes[cut...]) == hex("0162 076578616D706C65 036F7267 00"))
        // "example." from before the cut is still one.
        try w.write(name("c.example."), compress: true)
        #expect(Array(w.bytes[(w.count - 4)...]) == hex("0163 C00E"))
    }

    @Test("reset() empties the writer and its table, keeping the storage")
    func resetKeepsStorage() throws {
        var w = MessageWriter(capacity: 512)
        for _ in 0..<12 { try w.write(UInt8(0)) }
        try w.write(name("www.example.com."), compress: true)
        let before = w.withBytes { $0.withUnsafeBufferPointer { $0.baseAddress } }
        w.reset()
        #expect(w.count == 0)
        for _ in 0..<12 { try w.write(UInt8(0)) }
        try w.write(name("www.example.com."), compress: true)
        #expect(Array(w.bytes[12...]) == hex("03777777 076578616D706C65 03636F6D 00"), "no pointer to the old message")
        #expect(w.withBytes { $0.withUnsafeBufferPointer { $0.baseAddress } } == before)
    }

    @Test("names past offset 0x3FFF are not pointer targets (14-bit offsets)")
    func farNamesNotTargets() throws {
        var w = MessageWriter()
        try w.write(Array(repeating: 0, count: 0x4000).span)
        try w.write(name("far.example."), compress: true)
        let second = w.count
        try w.write(name("far.example."), compress: true)
        #expect(Array(w.bytes[second...]) == hex("03666172 076578616D706C65 00"))
    }

    @Test("the table fills up without harm: later names are written whole")
    func tableFull() throws {
        var w = MessageWriter()
        for _ in 0..<12 { try w.write(UInt8(0)) }
        for i in 0..<200 {
            try w.write(try DomainName("n\(i).", origin: nil), compress: true)
        }
        // n5 was remembered early: a name under it points at it.
        let a = w.count
        try w.write(name("a.n5."), compress: true)
        #expect(Array(w.bytes[a..<(a + 2)]) == hex("0161"))
        #expect(w.bytes[a + 2] & 0xC0 == 0xC0)
        // n199 came after the table was full: a name under it is written whole.
        let b = w.count
        try w.write(name("a.n199."), compress: true)
        #expect(Array(w.bytes[b...]) == hex("0161 046E313939 00"))
    }

    @Test("a whole name written again is one pointer to its first copy")
    func recentNames() throws {
        var w = MessageWriter()
        for _ in 0..<12 { try w.write(UInt8(0)) }
        try w.write(name("ns1.example.net."), compress: true)
        try w.write(name("other.example."), compress: true)
        let a = w.count
        try w.write(name("NS1.Example.NET."), compress: true)
        #expect(Array(w.bytes[a...]) == hex("C00C"))
        // After a rollback past the first copy the name is written whole again.
        w.truncate(to: 12)
        try w.write(name("ns1.example.net."), compress: true)
        #expect(w.count == 12 + 17)
    }

    @Test("writes past the limit throw and write nothing")
    func limit() throws {
        var w = MessageWriter(limit: 14)
        try w.write(UInt32(1))
        try w.write(UInt32(2))
        try w.write(UInt32(3))
        #expect(throws: DNSError.messageTooLarge(size: 16, limit: 14)) { try w.write(UInt32(4)) }
        #expect(throws: DNSError.messageTooLarge(size: 15, limit: 14)) { try w.write(name("a."), compress: true) }
        #expect(w.count == 12)
        try w.write(UInt16(0xABCD))
        w.patch(0x0102, at: 0)
        #expect(w.bytes == hex("0102 0001 00000002 00000003 ABCD"))
    }

    @Test("a record is name, type, class, TTL, RDLENGTH, RDATA")
    func record() throws {
        var w = MessageWriter()
        try w.write(ResourceRecord(name: name("a."), ttl: 300, data: .mx(preference: 10, exchange: name("mx.a."))))
        #expect(w.bytes == hex("016100 000F 0001 0000012C 0007 000A 026D78 C000"))
    }
}
