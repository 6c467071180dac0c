import MirageDevices

/// Builds a message into a byte array with RFC 1035 §4.1.4 compression.
///
/// Every label written in place below offset 0x4000 is remembered in a
/// small fixed hash table of message offsets, keyed by the case-folded
/// label and the entry for the rest of its name; a later name is written
/// as its longest new prefix and a pointer to the longest suffix already
/// in the message. The table's storage is allocated once: `reset()` clears
/// only the slots used, so a writer reused per answer does not allocate.
public struct MessageWriter {
    /// Slots in the compression hash table (a power of two).
    static let tableSlots = 256
    /// Most labels remembered; half the slots, so probes stay short.
    public static let maximumCompressionEntries = 128
    /// Pointers hold 14-bit offsets (RFC 1035 §4.1.4).
    static let maximumPointerTarget = 0x3FFF

    /// The message, appended to (within its capacity: no allocation).
    private var storage: [UInt8]
    /// Bytes written so far.
    public var count: Int { storage.count }
    /// The size the message may not exceed; writes past it throw `.messageTooLarge`.
    public var limit: Int
    /// Whether `write(_:compress:)` may compress at all; off, names are
    /// written whole (as RDATA alone, outside a message, must be).
    public var compressionEnabled = true

    /// Per slot: the label's message offset + 1 (0: empty).
    private var slotOffsets: [UInt16]
    /// Per slot: the hash of the label and its parent.
    private var slotHashes: [UInt32]
    /// Per slot: the offset of the entry for the rest of the name (`rootParent` for the root).
    private var slotParents: [UInt16]
    /// The slots in use, in insertion order (so by increasing offset).
    private var usedSlots: [UInt16]

    /// Slots of the whole-name cache (a power of two).
    static let recentSlots = 16
    /// Whole names written lately, direct-mapped by their folded hash: a
    /// name repeated (an RRset's owner, a glue record's owner) becomes a
    /// pointer after one hash and one comparison, without the label table.
    /// Per slot: the name's wire form, its hash and its offset + 1 (0: empty).
    private var recentNames: [[UInt8]]
    private var recentHashes: [UInt64]
    private var recentOffsets: [UInt16]

    /// A writer for messages of at most `limit` bytes, with room for `capacity` reserved.
    public init(limit: Int = 65535, capacity: Int = 512) {
        self.limit = limit
        storage = []
        storage.reserveCapacity(capacity)
        slotOffsets = [UInt16](repeating: 0, count: Self.tableSlots)
        slotHashes = [UInt32](repeating: 0, count: Self.tableSlots)
        slotParents = [UInt16](repeating: 0, count: Self.tableSlots)
        usedSlots = []
        usedSlots.reserveCapacity(Self.maximumCompressionEntries)
        recentNames = [[UInt8]](repeating: [], count: Self.recentSlots)
        recentHashes = [UInt64](repeating: 0, count: Self.recentSlots)
        recentOffsets = [UInt16](repeating: 0, count: Self.recentSlots)
    }

    /// Written so far. The array shares the writer's storage (no copy);
    /// drop it before writing on, or the next write copies the storage.
    public var bytes: [UInt8] { storage }

    /// Calls `body` with the bytes written so far.
    public func withBytes<R, E: Error>(_ body: (Span<UInt8>) throws(E) -> R) throws(E) -> R {
        try body(storage.span)
    }

    /// The bytes written, handing over the storage (the writer is left empty).
    mutating func takeBytes() -> [UInt8] {
        var out: [UInt8] = []
        swap(&out, &storage)
        reset()
        return out
    }

    /// Empties the writer, keeping its storage (no allocation on reuse).
    public mutating func reset() {
        storage.removeAll(keepingCapacity: true)
        for slot in usedSlots { slotOffsets[Int(slot)] = 0 }
        usedSlots.removeAll(keepingCapacity: true)
        for i in 0..<Self.recentSlots { recentOffsets[i] = 0 }
    }

    /// Throws unless `n` more bytes fit under the limit.
    @inline(__always)
    private func room(_ n: Int) throws(DNSError) {
        guard n <= limit - storage.count else { throw .messageTooLarge(size: storage.count + n, limit: limit) }
    }

    /// Appends a 16-bit value, big-endian (room already checked).
    @inline(__always)
    private mutating func append(_ value: UInt16) {
        storage.append(UInt8(truncatingIfNeeded: value >> 8))
        storage.append(UInt8(truncatingIfNeeded: value))
    }

    /// Appends one byte.
    public mutating func write(_ value: UInt8) throws(DNSError) {
        try room(1)
        storage.append(value)
    }

    /// Appends a big-endian 16-bit value.
    public mutating func write(_ value: UInt16) throws(DNSError) {
        try room(2)
        append(value)
    }

    /// Appends a big-endian 32-bit value.
    public mutating func write(_ value: UInt32) throws(DNSError) {
        try room(4)
        append(UInt16(truncatingIfNeeded: value >> 16))
        append(UInt16(truncatingIfNeeded: value))
    }

    /// Appends raw bytes.
    public mutating func write(_ source: Span<UInt8>) throws(DNSError) {
        try room(source.count)
        storage.append(span: source)
    }

    /// Appends raw bytes from an array.
    public mutating func write(_ source: [UInt8]) throws(DNSError) {
        try write(source.span)
    }

    /// Appends a <character-string> (RFC 1035 §3.3): length byte and bytes, at most 255.
    public mutating func write(characterString source: [UInt8]) throws(DNSError) {
        guard source.count <= 255 else { throw .badRecordData(type: 0, reason: "character-string over 255 bytes") }
        try room(1 + source.count)
        storage.append(UInt8(truncatingIfNeeded: source.count))
        storage.append(span: source.span)
    }

    /// Overwrites the 16-bit value at `offset` (already written).
    public mutating func patch(_ value: UInt16, at offset: Int) {
        precondition(offset >= 0 && offset + 2 <= count, "patch outside the message")
        var out = storage.mutableSpan
        out[offset] = UInt8(truncatingIfNeeded: value >> 8)
        out[offset + 1] = UInt8(truncatingIfNeeded: value)
    }

    /// Writes `header` over the first 12 bytes (already written).
    mutating func emit(_ header: Header) {
        precondition(count >= Header.size, "no header written")
        header.emit(into: &storage, at: 0)
    }

    /// Rolls back to `count` bytes, forgetting the names written past it.
    public mutating func truncate(to count: Int) {
        precondition(count >= 0 && count <= self.count, "truncate beyond the message")
        storage.removeLast(self.count - count)
        // Entries were added by increasing offset, so the ones to forget
        // are the last ones; removing linear-probing entries newest first
        // never breaks the probe chain of an older one. A label whose
        // parent went (a cut inside a name) goes too.
        while let last = usedSlots.last,
              Int(slotOffsets[Int(last)]) - 1 >= count
                || (Int(slotParents[Int(last)]) != Self.rootParent && Int(slotParents[Int(last)]) >= count) {
            slotOffsets[Int(last)] = 0
            usedSlots.removeLast()
        }
        for i in 0..<Self.recentSlots where Int(recentOffsets[i]) - 1 >= count { recentOffsets[i] = 0 }
    }

    // MARK: Names

    /// Appends `name`; with `compress`, its longest suffix already in the
    /// message becomes a pointer. Either way its suffixes become targets
    /// for later names.
    ///
    /// Each table entry is one label written in place, keyed by the label
    /// (case-folded) and the offset of the entry standing for the rest of
    /// its name (`rootParent` for the root). A suffix is then found from
    /// the right, one label and one probe at a time, without walking the
    /// message: "example.com." is the "example" entry whose parent is the
    /// entry found for "com.".
    public mutating func write(_ name: DomainName, compress: Bool) throws(DNSError) {
        let wire = name.wire.span
        guard wire.count > 1 else {
            try write(UInt8(0))
            return
        }
        let whole = compressionEnabled ? Self.hash(wire) : 0
        let recent = Int(truncatingIfNeeded: whole) & (Self.recentSlots - 1)
        if compress && compressionEnabled, recentOffsets[recent] != 0, recentHashes[recent] == whole,
           DomainName(unchecked: recentNames[recent]) == name {
            try room(2)
            append(UInt16(truncatingIfNeeded: 0xC000 | (Int(recentOffsets[recent]) - 1)))
            return
        }
        var starts = InlineArray<128, UInt8>(repeating: 0)
        let labels = name.labelStarts(&starts)
        // The leftmost label whose suffix the message already has, and that suffix's entry.
        var known = labels
        var knownOffset = Self.rootParent
        if compressionEnabled && !usedSlots.isEmpty {
            var k = labels - 1
            while k >= 0 {
                let s = Int(starts[k])
                guard let offset = find(label: s, of: wire, parent: knownOffset) else { break }
                known = k
                knownOffset = offset
                k -= 1
            }
        }
        let pointer = compress && compressionEnabled && known < labels
        let inPlace = pointer ? Int(starts[known]) : wire.count - 1
        try room(inPlace + (pointer ? 2 : 1))
        let base = storage.count
        if pointer {
            if inPlace > 0 { storage.append(span: wire.extracting(0..<inPlace)) }
            append(UInt16(truncatingIfNeeded: 0xC000 | knownOffset))
        } else {
            storage.append(span: wire)
        }
        guard compressionEnabled else { return }
        let start = known == 0 ? knownOffset : base
        if start <= Self.maximumPointerTarget {
            recentNames[recent] = name.wire
            recentHashes[recent] = whole
            recentOffsets[recent] = UInt16(truncatingIfNeeded: start + 1)
        }
        // Remember the labels not already known, left to right (so by
        // increasing offset); each one's parent is the next label in
        // place, or the known suffix.
        for k in 0..<known {
            let s = Int(starts[k])
            let parent = k + 1 < known ? base + Int(starts[k + 1]) : knownOffset
            remember(offset: base + s, label: s, of: wire, parent: parent)
        }
    }

    /// A hash of a whole name, case folded, eight bytes at a time.
    @inline(__always)
    private static func hash(_ wire: Span<UInt8>) -> UInt64 {
        var h: UInt64 = 0x243F_6A88_85A3_08D3
        var j = 0
        while j + 8 <= wire.count {
            h = (h ^ foldWord(loadWord(wire, j))) &* 0x9E37_79B9_7F4A_7C15
            j += 8
        }
        if j < wire.count {
            var w: UInt64 = 0
            if wire.count >= 8 {
                // The last word overlaps the one before (equal names overlap alike).
                w = foldWord(loadWord(wire, wire.count - 8))
            } else {
                for m in 0..<wire.count { w = w << 8 | UInt64(asciiLower(wire[m])) }
            }
            h = (h ^ w) &* 0x9E37_79B9_7F4A_7C15
        }
        return h ^ (h >> 29)
    }

    /// Parent of a name's last label: the root, which no offset can be.
    static let rootParent = 0xFFFF

    /// The hash of the label at `wire[start]` (length byte and bytes, case
    /// folded, eight at a time where the name has them) and its parent.
    @inline(__always)
    private static func key(label start: Int, of wire: Span<UInt8>, parent: Int) -> UInt32 {
        let end = start + 1 + Int(wire[start])
        var h = UInt64(truncatingIfNeeded: parent) &* 0x9E37_79B9_7F4A_7C15
        var j = start
        while j + 8 <= end {
            h = (h ^ foldWord(loadWord(wire, j))) &* 0x9E37_79B9_7F4A_7C15
            j += 8
        }
        if j < end {
            var w: UInt64
            if j + 8 <= wire.count {
                // Load past the label (still inside the name) and keep its bytes.
                w = foldWord(loadWord(wire, j)) & (UInt64.max >> UInt64(8 * (8 - (end - j))))
            } else {
                w = 0
                var m = end - 1
                while m >= j {
                    w = w << 8 | UInt64(asciiLower(wire[m]))
                    m -= 1
                }
            }
            h = (h ^ w) &* 0x9E37_79B9_7F4A_7C15
        }
        return UInt32(truncatingIfNeeded: h >> 32)
    }

    /// The message offset of an entry for the label at `wire[start]` under
    /// `parent`, if the table has one.
    private func find(label start: Int, of wire: Span<UInt8>, parent: Int) -> Int? {
        let hash = Self.key(label: start, of: wire, parent: parent)
        let mask = Self.tableSlots - 1
        var slot = Int(hash) & mask
        let offsets = slotOffsets.span, hashes = slotHashes.span, parents = slotParents.span
        let message = storage.span
        let length = Int(wire[start])
        for _ in 0..<Self.tableSlots {
            let stored = Int(offsets[slot])
            if stored == 0 { return nil }
            let at = stored - 1
            if hashes[slot] == hash, Int(parents[slot]) == parent, Int(message[at]) == length {
                var same = true
                for m in 1...length where !asciiEqual(message[at + m], wire[start + m]) {
                    same = false
                    break
                }
                if same { return at }
            }
            slot = (slot + 1) & mask
        }
        return nil
    }

    /// Adds the label written at `offset` to the table, if it can be a
    /// pointer target and there is room.
    private mutating func remember(offset: Int, label start: Int, of wire: Span<UInt8>, parent: Int) {
        guard offset <= Self.maximumPointerTarget, usedSlots.count < Self.maximumCompressionEntries else { return }
        let hash = Self.key(label: start, of: wire, parent: parent)
        let mask = Self.tableSlots - 1
        var slot = Int(hash) & mask
        while slotOffsets[slot] != 0 { slot = (slot + 1) & mask }
        slotOffsets[slot] = UInt16(truncatingIfNeeded: offset + 1)
        slotHashes[slot] = hash
        slotParents[slot] = UInt16(truncatingIfNeeded: parent)
        usedSlots.append(UInt16(truncatingIfNeeded: slot))
    }

    // MARK: Questions and records

    /// Appends a question: name (compressed), type, class.
    public mutating func write(_ question: Question) throws(DNSError) {
        try write(question.name, compress: true)
        try write(question.type.rawValue)
        try write(question.class.rawValue)
    }

    /// Appends a record: name, type, class, TTL, RDLENGTH and RDATA.
    /// On a throw, part of the record may be written: `truncate(to:)` rolls it back.
    public mutating func write(_ record: ResourceRecord) throws(DNSError) {
        try write(record.name, compress: true)
        // TYPE, CLASS, TTL and a zero RDLENGTH (patched below) in one append.
        try room(10)
        let at = storage.count
        var fixed = InlineArray<10, UInt8>(repeating: 0)
        let type = record.type.rawValue, rclass = record.class.rawValue, ttl = record.ttl
        fixed[0] = UInt8(truncatingIfNeeded: type >> 8)
        fixed[1] = UInt8(truncatingIfNeeded: type)
        fixed[2] = UInt8(truncatingIfNeeded: rclass >> 8)
        fixed[3] = UInt8(truncatingIfNeeded: rclass)
        fixed[4] = UInt8(truncatingIfNeeded: ttl >> 24)
        fixed[5] = UInt8(truncatingIfNeeded: ttl >> 16)
        fixed[6] = UInt8(truncatingIfNeeded: ttl >> 8)
        fixed[7] = UInt8(truncatingIfNeeded: ttl)
        storage.append(span: fixed.span)
        try record.data.emit(into: &self)
        let length = count - at - 10
        guard length <= Int(UInt16.max) else { throw .badRecordData(type: record.type.rawValue, reason: "RDATA over 65535 bytes") }
        patch(UInt16(truncatingIfNeeded: length), at: at + 8)
    }
}
