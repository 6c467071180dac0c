// Decoding and encoding whole messages.

extension Message {
    /// Full decode. Errors: truncated, bad pointers, loops, lying counts
    /// (.truncated), trailing bytes (.trailingBytes), second OPT (.duplicateOPT),
    /// OPT elsewhere (.misplacedOPT). `responseCode` combines EDNS high bits.
    public init(parsing bytes: Span<UInt8>) throws(DNSError) {
        let header = try Header(parsing: bytes)
        var r = MessageReader(bytes, offset: Header.size)
        // Counts are the peer's word: reserve only what the bytes could hold
        // (a question is at least 5 bytes, a record at least 11).
        let qd = Int(header.questionCount)
        var questions: [Question] = []
        questions.reserveCapacity(min(qd, r.remaining / 5))
        for _ in 0..<qd {
            let name = try r.name()
            let type = RecordType(rawValue: try r.u16())
            let `class` = RecordClass(rawValue: try r.u16())
            questions.append(Question(name: name, type: type, class: `class`))
        }
        let answers = try Self.readRecords(&r, count: Int(header.answerCount))
        let authority = try Self.readRecords(&r, count: Int(header.authorityCount))
        var additional: [ResourceRecord] = []
        var edns: EDNS? = nil
        let ar = Int(header.additionalCount)
        // A query's one additional record is usually its OPT: no array for it.
        if ar > 1 { additional.reserveCapacity(min(ar, r.remaining / 11)) }
        for _ in 0..<ar {
            let name = try r.name()
            let type = RecordType(rawValue: try r.u16())
            let `class` = RecordClass(rawValue: try r.u16())
            let ttl = try r.u32()
            let length = Int(try r.u16())
            try r.need(length)
            if type == .opt {
                // RFC 6891 §6.1.1: one OPT, owned by the root; a second is FORMERR.
                guard edns == nil else { throw .duplicateOPT }
                guard name.isRoot else { throw .misplacedOPT }
                var data = MessageReader(bytes, offset: r.offset, end: r.offset + length)
                edns = try EDNS(payloadSize: `class`.rawValue, ttl: ttl, data: &data)
            } else {
                let data = try RData.parse(type: type, message: bytes, offset: r.offset, length: length)
                additional.append(ResourceRecord(name: name, class: `class`, ttl: ttl, data: data))
            }
            r.offset += length
        }
        guard r.remaining == 0 else { throw .trailingBytes(count: r.remaining) }
        self.header = header
        self.questions = questions
        self.answers = answers
        self.authority = authority
        self.additional = additional
        self.edns = edns
    }

    /// Reads `count` records of the answer or authority section, where an OPT is misplaced.
    private static func readRecords(_ r: inout MessageReader, count: Int) throws(DNSError) -> [ResourceRecord] {
        var records: [ResourceRecord] = []
        if count > 0 { records.reserveCapacity(min(count, r.remaining / 11)) }
        for _ in 0..<count {
            let name = try r.name()
            let type = RecordType(rawValue: try r.u16())
            guard type != .opt else { throw .misplacedOPT }
            let `class` = RecordClass(rawValue: try r.u16())
            let ttl = try r.u32()
            let length = Int(try r.u16())
            try r.need(length)
            let data = try RData.parse(type: type, message: r.message, offset: r.offset, length: length)
            r.offset += length
            records.append(ResourceRecord(name: name, class: `class`, ttl: ttl, data: data))
        }
        return records
    }

    /// Encodes with name compression. With `limit` (UDP size), records that do
    /// not fit are left out from the end (additional first, then authority,
    /// then answers — whole RRsets) and TC set when an answer or authority
    /// record had to go (RFC 2181 §9: additional-only omissions don't set TC).
    public func encode(limit: Int = 65535) throws(DNSError) -> [UInt8] {
        var writer = MessageWriter(limit: limit, capacity: min(limit, 512))
        try encode(into: &writer)
        return writer.takeBytes()
    }

    /// Encodes into `writer` (reset first, so the message starts at offset
    /// 0 as compression needs), within `writer.limit` capped at 65535; see
    /// `encode(limit:)`. A reused writer does not allocate.
    ///
    /// An answer or authority RRset that does not fit is left out with
    /// everything after it, and TC is set (as NSD does); an additional
    /// RRset that does not fit is left out and the next ones are still
    /// tried. The OPT record's room is kept aside so it is always sent
    /// (RFC 6891 §7).
    public func encode(into w: inout MessageWriter) throws(DNSError) {
        w.reset()
        let limit = min(w.limit, 65535)
        defer { w.limit = limit }
        let optSize = edns?.encodedSize ?? 0
        guard Header.size + optSize <= limit else { throw .messageTooLarge(size: Header.size + optSize, limit: limit) }
        w.limit = limit - optSize
        for _ in 0..<Header.size { try w.write(UInt8(0)) }
        do {
            for q in questions { try w.write(q) }
        } catch {
            if case .messageTooLarge = error {
                var size = Header.size + optSize
                for q in questions { size += q.name.wire.count + 4 }
                throw .messageTooLarge(size: size, limit: limit)
            }
            throw error
        }
        var truncated = false
        let an = try Self.writeSection(answers, into: &w, keepGoing: false, truncated: &truncated)
        let ns = truncated ? 0 : try Self.writeSection(authority, into: &w, keepGoing: false, truncated: &truncated)
        var ignored = false
        let ar = truncated ? 0 : try Self.writeSection(additional, into: &w, keepGoing: true, truncated: &ignored)
        w.limit = limit
        if let edns { try edns.write(into: &w) }
        var h = header
        guard questions.count <= Int(UInt16.max) else { throw .messageTooLarge(size: w.count, limit: limit) }
        h.questionCount = UInt16(truncatingIfNeeded: questions.count)
        h.answerCount = UInt16(truncatingIfNeeded: an)
        h.authorityCount = UInt16(truncatingIfNeeded: ns)
        h.additionalCount = UInt16(truncatingIfNeeded: ar + (edns == nil ? 0 : 1))
        h.responseCode &= 0x0F
        if truncated { h.isTruncated = true }
        w.emit(h)
    }

    /// Writes `records` RRset by RRset (runs of equal name, type and
    /// class); returns how many went in. An RRset over the limit is rolled
    /// back; then either the section stops and `truncated` is set, or
    /// (`keepGoing`) the next RRsets are tried.
    private static func writeSection(_ records: [ResourceRecord], into w: inout MessageWriter, keepGoing: Bool,
                                     truncated: inout Bool) throws(DNSError) -> Int {
        var written = 0
        var i = 0
        while i < records.count {
            var j = i + 1
            while j < records.count, records[j].type == records[i].type, records[j].class == records[i].class,
                  records[j].name == records[i].name { j += 1 }
            let start = w.count
            do {
                for k in i..<j { try w.write(records[k]) }
                written += j - i
            } catch {
                guard case .messageTooLarge = error else { throw error }
                w.truncate(to: start)
                truncated = true
                if !keepGoing { return written }
            }
            i = j
        }
        return written
    }
}
