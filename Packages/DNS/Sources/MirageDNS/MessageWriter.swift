import MirageDevices

/// Builds a message into a byte array with RFC 1035 §4.1.4 compression.
///
/// Every name written (and each of its suffixes) that starts below offset
/// 0x4000 is remembered in a small fixed hash table of message offsets,
/// keyed by a hash of the case-folded suffix; a later name is written as
/// its longest new prefix and a pointer to the longest suffix already in
/// the message. The table's storage is allocated once: `reset()` clears
/// only the slots used, so a writer reused per answer does not allocate.
public struct MessageWriter {
    /// Slots in the compression hash table (a power of two).
    static let tableSlots = 256
    /// Most suffixes remembered; half the slots, so probes stay short.
    public static let maximumCompressionEntries = 128
    /// Pointers hold 14-bit offsets (RFC 1035 §4.1.4).
    static let maximumPointerTarget = 0x3FFF

    /// Written so far.
    public private(set) var bytes: [UInt8]
    /// Bytes written so far.
    public var count: Int { bytes.count }
    /// The size the message may not exceed; writes past it throw `.messageTooLarge`.
    public var limit: Int
    /// Whether `write(_:compress:)` may compress at all; off, names are
    /// written whole (as RDATA alone, outside a message, must be).
    public var compressionEnabled = true

    /// Per slot: the suffix's message offset + 1 (0: empty).
    private var slotOffsets: [UInt16]
    /// Per slot: the suffix's hash.
    private var slotHashes: [UInt32]
    /// The slots in use, in insertion order (so by increasing offset).
    private var usedSlots: [UInt16]

    /// A writer for messages of at most `limit` bytes, with room for `capacity` reserved.
    public init(limit: Int = 65535, capacity: Int = 512) {
        self.limit = limit
        bytes = []
        bytes.reserveCapacity(capacity)
        slotOffsets = [UInt16](repeating: 0, count: Self.tableSlots)
        slotHashes = [UInt32](repeating: 0, count: Self.tableSlots)
        usedSlots = []
        usedSlots.reserveCapacity(Self.maximumCompressionEntries)
    }

    /// Empties the writer, keeping its storage (no allocation on reuse).
    public mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        for slot in usedSlots { slotOffsets[Int(slot)] = 0 }
        usedSlots.removeAll(keepingCapacity: true)
    }

    /// Throws unless `n` more bytes fit under the limit.
    @inline(__always)
    private func room(_ n: Int) throws(DNSError) {
        guard n <= limit - bytes.count else { throw .messageTooLarge(size: bytes.count + n, limit: limit) }
    }

    /// Appends one byte.
    public mutating func write(_ value: UInt8) throws(DNSError) {
        try room(1)
        bytes.append(value)
    }

    /// Appends a big-endian 16-bit value.
    public mutating func write(_ value: UInt16) throws(DNSError) {
        try room(2)
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    /// Appends a big-endian 32-bit value.
    public mutating func write(_ value: UInt32) throws(DNSError) {
        try room(4)
        bytes.append(UInt8(truncatingIfNeeded: value >> 24))
        bytes.append(UInt8(truncatingIfNeeded: value >> 16))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    /// Appends raw bytes.
    public mutating func write(_ source: Span<UInt8>) throws(DNSError) {
        try room(source.count)
        bytes.append(span: source)
    }

    /// Appends raw bytes from an array.
    public mutating func write(_ source: [UInt8]) throws(DNSError) {
        try write(source.span)
    }

    /// Appends a <character-string> (RFC 1035 §3.3): length byte and bytes, at most 255.
    public mutating func write(characterString source: [UInt8]) throws(DNSError) {
        guard source.count <= 255 else { throw .badRecordData(type: 0, reason: "character-string over 255 bytes") }
        try room(1 + source.count)
        bytes.append(UInt8(truncatingIfNeeded: source.count))
        bytes.append(contentsOf: source)
    }

    /// Overwrites the 16-bit value at `offset` (already written).
    public mutating func patch(_ value: UInt16, at offset: Int) {
        precondition(offset >= 0 && offset + 2 <= bytes.count, "patch outside the message")
        bytes[offset] = UInt8(truncatingIfNeeded: value >> 8)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: value)
    }

    /// Writes `header` over the first 12 bytes (already written).
    mutating func emit(_ header: Header) {
        header.emit(into: &bytes, at: 0)
    }

    /// Rolls back to `count` bytes, forgetting the names written past it.
    public mutating func truncate(to count: Int) {
        precondition(count >= 0 && count <= bytes.count, "truncate beyond the message")
        bytes.removeSubrange(count...)
        // Entries were added by increasing offset, so the ones to forget
        // are the last ones; removing linear-probing entries newest first
        // never breaks the probe chain of an older one.
        while let last = usedSlots.last, Int(slotOffsets[Int(last)]) - 1 >= count {
            slotOffsets[Int(last)] = 0
            usedSlots.removeLast()
        }
    }

    // MARK: Names

    /// Appends `name`; with `compress`, its longest suffix already in the
    /// message becomes a pointer. Either way its suffixes become targets
    /// for later names.
    public mutating func write(_ name: DomainName, compress: Bool) throws(DNSError) {
        let wire = name.wire.span
        var starts = InlineArray<128, UInt8>(repeating: 0)
        let labels = name.labelStarts(&starts)
        // Suffix hashes, built from the right so each costs its first label.
        var hashes = InlineArray<128, UInt32>(repeating: 0)
        var h: UInt32 = 0x811C_9DC5
        var k = labels - 1
        while k >= 0 {
            let s = Int(starts[k])
            let n = Int(wire[s])
            for j in s...(s + n) { h = (h ^ UInt32(asciiLower(wire[j]))) &* 0x0100_0193 }
            h = h ^ (h >> 15)
            hashes[k] = h
            k -= 1
        }
        var pointerLabel = labels     // first label replaced by a pointer (labels: none)
        var pointerTarget = 0
        if compress && compressionEnabled {
            for k in 0..<labels {
                if let target = find(suffix: Int(starts[k]), of: wire, hash: hashes[k]) {
                    pointerLabel = k
                    pointerTarget = target
                    break
                }
            }
        }
        let inPlace = pointerLabel < labels ? Int(starts[pointerLabel]) : wire.count - 1
        try room(inPlace + 2)
        let base = bytes.count
        bytes.append(span: wire.extracting(0..<inPlace))
        if pointerLabel < labels {
            bytes.append(0xC0 | UInt8(truncatingIfNeeded: pointerTarget >> 8))
            bytes.append(UInt8(truncatingIfNeeded: pointerTarget))
        } else {
            bytes.append(0)
        }
        for k in 0..<pointerLabel {
            remember(offset: base + Int(starts[k]), hash: hashes[k])
        }
    }

    /// The offset of an earlier name equal (case-folded) to the suffix of
    /// `wire` starting at `suffix`, if the table has one.
    private func find(suffix: Int, of wire: Span<UInt8>, hash: UInt32) -> Int? {
        let mask = Self.tableSlots - 1
        var slot = Int(hash) & mask
        for _ in 0..<Self.tableSlots {
            let stored = Int(slotOffsets[slot])
            if stored == 0 { return nil }
            if slotHashes[slot] == hash, matches(at: stored - 1, suffix: suffix, of: wire) { return stored - 1 }
            slot = (slot + 1) & mask
        }
        return nil
    }

    /// Whether the name at `offset` in the message (which we wrote, so its
    /// pointers go backwards) equals `wire[suffix...]`, ASCII case folded.
    private func matches(at offset: Int, suffix: Int, of wire: Span<UInt8>) -> Bool {
        let out = bytes.span
        var i = offset, j = suffix
        var hops = 0
        while i < out.count {
            let length = out[i]
            if length >= 0xC0 {
                guard i + 1 < out.count, hops < DomainName.maximumPointers else { return false }
                i = Int(length & 0x3F) << 8 | Int(out[i + 1])
                hops += 1
                continue
            }
            guard j < wire.count, wire[j] == length else { return false }
            if length == 0 { return true }
            let n = Int(length)
            guard i + n < out.count, j + n < wire.count else { return false }
            for m in 1...n where !asciiEqual(out[i + m], wire[j + m]) { return false }
            i += n + 1
            j += n + 1
        }
        return false
    }

    /// Adds a suffix at `offset` to the table, if it can be a pointer target and there is room.
    private mutating func remember(offset: Int, hash: UInt32) {
        guard offset <= Self.maximumPointerTarget, usedSlots.count < Self.maximumCompressionEntries else { return }
        let mask = Self.tableSlots - 1
        var slot = Int(hash) & mask
        while slotOffsets[slot] != 0 { slot = (slot + 1) & mask }
        slotOffsets[slot] = UInt16(truncatingIfNeeded: offset + 1)
        slotHashes[slot] = hash
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
        try write(record.type.rawValue)
        try write(record.class.rawValue)
        try write(record.ttl)
        let lengthAt = bytes.count
        try write(UInt16(0))
        try record.data.emit(into: &self)
        let length = bytes.count - lengthAt - 2
        guard length <= Int(UInt16.max) else { throw .badRecordData(type: record.type.rawValue, reason: "RDATA over 65535 bytes") }
        patch(UInt16(truncatingIfNeeded: length), at: lengthAt)
    }
}
