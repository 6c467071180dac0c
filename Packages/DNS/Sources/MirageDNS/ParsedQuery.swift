/// The parts of a query the server needs, read without decoding the
/// records a query should not carry: the one question and the OPT record.
///
/// Stricter than `Message(parsing:)` where RFC 1035 lets a server be: a
/// QUERY with answer or authority records, a question name using
/// compression (there is nothing before it to point to), trailing bytes or
/// a malformed additional record are format errors.
struct ParsedQuery {
    /// The question; nil when QDCOUNT is 0 (FORMERR for a QUERY).
    var question: Question?
    /// The OPT record's contents, if the query had one.
    var edns: EDNS?

    init(_ bytes: Span<UInt8>, header: Header) throws(DNSError) {
        var offset = Header.size
        // RFC 1035 §4.1.2 allows more, but no server answers several
        // questions (RFC 9619: QDCOUNT is 1 for QUERY); NSD says FORMERR.
        guard header.questionCount <= 1 else {
            throw .badRecordData(type: 0, reason: "\(header.questionCount) questions")
        }
        if header.questionCount == 1 {
            let name = try Self.readName(bytes, &offset)
            let type = RecordType(rawValue: try Self.read16(bytes, &offset))
            let recordClass = RecordClass(rawValue: try Self.read16(bytes, &offset))
            question = Question(name: name, type: type, class: recordClass)
        }
        // A QUERY has no answers, and authority only for IXFR (the
        // client's SOA, RFC 1995 §3).
        if header.opcode == .query
            && (header.answerCount != 0 || (header.authorityCount != 0 && question?.type != .ixfr)) {
            throw .badRecordData(type: 0, reason: "a query with answer or authority records")
        }
        // Answer and authority records only for other opcodes (NOTIFY may
        // carry an SOA): skipped, checked for shape.
        let others = Int(header.answerCount) + Int(header.authorityCount)
        for _ in 0..<others {
            _ = try Self.skipRecord(bytes, &offset)
        }
        for _ in 0..<Int(header.additionalCount) {
            let start = offset
            let record = try Self.skipRecord(bytes, &offset)
            // Only an OPT belongs here: we have no TSIG keys (RFC 8945),
            // and data records in a query are malformed (NSD: FORMERR).
            guard record.type == RecordType.opt.rawValue else {
                throw .badRecordData(type: record.type, reason: "a record other than OPT in a query's additional section")
            }
            // RFC 6891 §6.1.1: one OPT, owned by the root.
            guard edns == nil else { throw .duplicateOPT }
            guard bytes[start] == 0 else { throw .misplacedOPT }
            var value = EDNS(payloadSize: record.recordClass, dnssecOK: record.ttl & 0x8000 != 0)
            value.extendedRCode = UInt8(truncatingIfNeeded: record.ttl >> 24)
            value.version = UInt8(truncatingIfNeeded: record.ttl >> 16)
            // The options must tile the data exactly (RFC 6891 §6.1.2).
            var at = record.dataStart
            let end = record.dataStart + record.dataLength
            while at < end {
                guard end - at >= 4 else { throw .badRecordData(type: RecordType.opt.rawValue, reason: "option header cut short") }
                let length = Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
                guard end - at - 4 >= length else { throw .badRecordData(type: RecordType.opt.rawValue, reason: "option longer than the record") }
                at += 4 + length
            }
            edns = value
        }
        if offset != bytes.count { throw .trailingBytes(count: bytes.count - offset) }
    }

    @inline(__always) static func read16(_ bytes: Span<UInt8>, _ offset: inout Int) throws(DNSError) -> UInt16 {
        guard bytes.count - offset >= 2 else { throw .truncated(offset: offset, needed: 2 - (bytes.count - offset)) }
        let value = UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
        offset += 2
        return value
    }

    @inline(__always) static func read32(_ bytes: Span<UInt8>, _ offset: inout Int) throws(DNSError) -> UInt32 {
        let high = try read16(bytes, &offset)
        let low = try read16(bytes, &offset)
        return UInt32(high) << 16 | UInt32(low)
    }

    /// An uncompressed name (a question's) as a `DomainName`.
    static func readName(_ bytes: Span<UInt8>, _ offset: inout Int) throws(DNSError) -> DomainName {
        let start = offset
        var at = offset
        while true {
            guard at < bytes.count else { throw .truncated(offset: at, needed: 1) }
            let length = Int(bytes[at])
            if length == 0 { break }
            if length & 0xC0 == 0xC0 { throw .badPointer(offset: at, target: 0) }
            guard length <= DomainName.maximumLabelLength else {
                throw length & 0xC0 == 0 ? .labelTooLong(length: length) : .unsupportedLabelType(UInt8(length & 0xC0))
            }
            at += 1 + length
            guard at - start < DomainName.maximumLength else { throw .nameTooLong(length: at - start + 1) }
        }
        at += 1
        var wire: [UInt8] = []
        wire.reserveCapacity(at - start)
        for i in start..<at { wire.append(bytes[i]) }
        offset = at
        return try DomainName(wire: wire)
    }

    /// Steps over a name that may end in a pointer (RFC 1035 §4.1.4); the
    /// pointer is not followed, only checked to point backwards.
    static func skipName(_ bytes: Span<UInt8>, _ offset: inout Int) throws(DNSError) {
        let start = offset
        var at = offset
        while true {
            guard at < bytes.count else { throw .truncated(offset: at, needed: 1) }
            let length = Int(bytes[at])
            if length == 0 {
                at += 1
                break
            }
            if length & 0xC0 == 0xC0 {
                guard at + 1 < bytes.count else { throw .truncated(offset: at, needed: 1) }
                let target = (length & 0x3F) << 8 | Int(bytes[at + 1])
                guard target < start else { throw .badPointer(offset: at, target: target) }
                at += 2
                break
            }
            guard length <= DomainName.maximumLabelLength else {
                throw length & 0xC0 == 0 ? .labelTooLong(length: length) : .unsupportedLabelType(UInt8(length & 0xC0))
            }
            at += 1 + length
            guard at - start < DomainName.maximumLength else { throw .nameTooLong(length: at - start + 1) }
        }
        offset = at
    }

    /// The fixed fields of a record and where its data is, after its name.
    struct RecordShape {
        var type: UInt16
        var recordClass: UInt16
        var ttl: UInt32
        var dataStart: Int
        var dataLength: Int
    }

    static func skipRecord(_ bytes: Span<UInt8>, _ offset: inout Int) throws(DNSError) -> RecordShape {
        try skipName(bytes, &offset)
        let type = try read16(bytes, &offset)
        let recordClass = try read16(bytes, &offset)
        let ttl = try read32(bytes, &offset)
        let length = Int(try read16(bytes, &offset))
        guard bytes.count - offset >= length else { throw .truncated(offset: offset, needed: length - (bytes.count - offset)) }
        let shape = RecordShape(type: type, recordClass: recordClass, ttl: ttl, dataStart: offset, dataLength: length)
        offset += length
        return shape
    }
}
