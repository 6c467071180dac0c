/// Replies the server built recently, kept by question so the same
/// question (case aside) asked again in the same shape is answered by
/// copying bytes instead of looking up and compressing again.
///
/// A reply depends on the question, whether the query had EDNS and its DO
/// bit, and the size limit; those make the key. The cached bytes start with
/// the header and the question; on a hit the query's own ID, RD bit and
/// question bytes (its spelling of the name) are written over them, and
/// compression pointers into the question then read the query's case, as a
/// freshly built reply would. Direct-mapped and fixed in size: a busy slot
/// is overwritten, so the memory is bounded and a hit or miss allocates
/// nothing once the slots have grown. Cleared whenever a zone changes.
struct AnswerCache {
    /// Slots (a power of two).
    static let defaultSlots = 4096
    /// Replies longer than this are not kept (UDP-sized answers are the
    /// ones that come often; larger ones go over TCP).
    static let maximumReplySize = 1232

    private struct Slot {
        /// Folded question bytes (name, type, class) then the 4 shape bytes.
        var key: [UInt8] = []
        var reply: [UInt8] = []
        var generation = 0
    }

    private var slots: [Slot]
    /// Bumped to invalidate every slot at once.
    private var generation = 1

    init(slots: Int = AnswerCache.defaultSlots) {
        var size = 1
        while size < slots { size *= 2 }
        self.slots = [Slot](repeating: Slot(), count: size)
    }

    /// Forgets every reply.
    mutating func clear() { generation += 1 }

    /// The shape bytes of a key: EDNS present, DO, the size limit.
    @inline(__always) static func shape(edns: Bool, dnssecOK: Bool, limit: Int) -> UInt32 {
        (edns ? 0x8000_0000 : 0) | (dnssecOK ? 0x4000_0000 : 0) | UInt32(truncatingIfNeeded: limit & 0xFFFF)
    }

    @inline(__always) private static func fold(_ byte: UInt8) -> UInt8 { byte &- 0x41 < 26 ? byte | 0x20 : byte }

    private func slotIndex(_ query: Span<UInt8>, questionEnd: Int, shape: UInt32) -> Int {
        var h: UInt32 = 0x811c_9dc5 ^ shape
        var i = Header.size
        while i < questionEnd {
            h = (h ^ UInt32(Self.fold(query[i]))) &* 0x0100_0193
            i += 1
        }
        return Int(h) & (slots.count - 1)
    }

    /// Writes the cached reply to the question at `12..<questionEnd` of
    /// `query` into `writer`, adapted to the query, and returns its flags
    /// field; nil on a miss.
    func answer(_ query: Span<UInt8>, questionEnd: Int, shape: UInt32, into writer: inout MessageWriter) -> UInt16? {
        let slot = slots[slotIndex(query, questionEnd: questionEnd, shape: shape)]
        let questionLength = questionEnd - Header.size
        guard slot.generation == generation, slot.key.count == questionLength + 4 else { return nil }
        var i = 0
        while i < questionLength {
            if slot.key[i] != Self.fold(query[Header.size + i]) { return nil }
            i += 1
        }
        guard slot.key[i] == UInt8(truncatingIfNeeded: shape >> 24), slot.key[i + 1] == UInt8(truncatingIfNeeded: shape >> 16),
              slot.key[i + 2] == UInt8(truncatingIfNeeded: shape >> 8), slot.key[i + 3] == UInt8(truncatingIfNeeded: shape)
        else { return nil }
        // ID and RD from the query, the rest of the header cached; the
        // question as the query spelled it; the sections cached.
        let reply = slot.reply
        let flags = (UInt16(reply[2]) << 8 | UInt16(reply[3])) & ~0x0100 | UInt16(query[2] & 0x01) << 8
        writer.reset()
        writer.limit = AuthoritativeServer.maximumMessageSize
        do {
            try writer.write(UInt16(query[0]) << 8 | UInt16(query[1]))
            try writer.write(flags)
            try writer.write(reply.span.extracting(4..<Header.size))
            try writer.write(query.extracting(Header.size..<questionEnd))
            try writer.write(reply.span.extracting(questionEnd..<reply.count))
        } catch {
            return nil
        }
        return flags
    }

    /// Keeps the reply in `writer` for the question of `query`.
    mutating func store(_ query: Span<UInt8>, questionEnd: Int, shape: UInt32, reply writer: MessageWriter) {
        guard writer.count <= Self.maximumReplySize else { return }
        let index = slotIndex(query, questionEnd: questionEnd, shape: shape)
        var slot = slots[index]
        slots[index] = Slot()  // keeps the arrays uniquely referenced while refilled
        slot.key.removeAll(keepingCapacity: true)
        for i in Header.size..<questionEnd { slot.key.append(Self.fold(query[i])) }
        slot.key.append(UInt8(truncatingIfNeeded: shape >> 24))
        slot.key.append(UInt8(truncatingIfNeeded: shape >> 16))
        slot.key.append(UInt8(truncatingIfNeeded: shape >> 8))
        slot.key.append(UInt8(truncatingIfNeeded: shape))
        slot.reply.removeAll(keepingCapacity: true)
        slot.reply.append(contentsOf: writer.bytes[0..<writer.count])
        slot.generation = generation
        slots[index] = slot
    }
}

/// The shape of a plain query, checked without decoding it: one question
/// with an uncompressed name, no answer or authority records, and either
/// nothing after the question or exactly one well-formed version-0 OPT.
/// Anything else takes the full path (`ParsedQuery`).
struct PlainQuery {
    /// Where the question ends (type and class included).
    var questionEnd: Int
    var hasEDNS: Bool
    var dnssecOK: Bool
    var payloadSize: Int

    init?(_ query: Span<UInt8>) {
        let count = query.count
        guard count >= Header.size + 5 else { return nil }
        // QR 0, opcode QUERY, RCODE 0; QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT 0 or 1.
        guard query[2] & 0xF8 == 0, query[3] & 0x0F == 0, query[4] == 0, query[5] == 1,
              query[6] == 0, query[7] == 0, query[8] == 0, query[9] == 0, query[10] == 0, query[11] <= 1
        else { return nil }
        var at = Header.size
        while true {
            guard at < count else { return nil }
            let length = Int(query[at])
            if length == 0 { break }
            guard length <= DomainName.maximumLabelLength else { return nil }
            at += 1 + length
            guard at - Header.size < DomainName.maximumLength else { return nil }
        }
        at += 1 + 4
        guard at <= count else { return nil }
        // Class IN only; AXFR, IXFR and ANY go the full way.
        let type = UInt16(query[at - 4]) << 8 | UInt16(query[at - 3])
        guard query[at - 2] == 0, query[at - 1] == 1, type != RecordType.axfr.rawValue, type != RecordType.ixfr.rawValue,
              type != RecordType.any.rawValue
        else { return nil }
        questionEnd = at
        if query[11] == 0 {
            guard at == count else { return nil }
            hasEDNS = false
            dnssecOK = false
            payloadSize = 0
            return
        }
        // Root owner, TYPE 41, CLASS = payload size, TTL = ext-rcode, version 0, flags, RDLENGTH.
        guard count - at >= 11, query[at] == 0, query[at + 1] == 0, query[at + 2] == 41, query[at + 6] == 0 else { return nil }
        let dataLength = Int(query[at + 9]) << 8 | Int(query[at + 10])
        guard count - at - 11 == dataLength else { return nil }
        var option = at + 11
        while option < count {
            guard count - option >= 4 else { return nil }
            let length = Int(query[option + 2]) << 8 | Int(query[option + 3])
            guard count - option - 4 >= length else { return nil }
            option += 4 + length
        }
        hasEDNS = true
        dnssecOK = query[at + 7] & 0x80 != 0
        payloadSize = Int(query[at + 3]) << 8 | Int(query[at + 4])
    }
}
