/// A hash table from domain names to small integers whose lookups take a
/// name as bytes inside a buffer, so a server can look up every ancestor
/// of a query name (each one a suffix of the same wire form) without
/// building a `DomainName` for each.
///
/// Keys are stored case-folded (RFC 4343: ASCII only); lookups fold as they
/// hash and compare. Only the zone's own names are inserted, so a peer
/// choosing query names cannot lengthen the probe chains.
struct NameTable: Sendable {
    /// Folded wire forms of every key, back to back.
    private var keyBytes: [UInt8] = []
    /// Slots: 0 = empty, otherwise 1 + index into `entries`.
    private var slots: [Int32] = []
    private var entries: [Entry] = []

    private struct Entry: Sendable {
        var start: Int
        var count: Int
        var hash: UInt32
        var value: Int
    }

    /// The number of keys.
    var count: Int { entries.count }

    init(minimumCapacity: Int = 8) {
        var size = 16
        while size < minimumCapacity * 2 { size *= 2 }
        slots = [Int32](repeating: 0, count: size)
    }

    @inline(__always) static func fold(_ byte: UInt8) -> UInt8 {
        byte &- 0x41 < 26 ? byte | 0x20 : byte
    }

    /// FNV-1a over the folded bytes.
    @inline(__always) private static func hash(_ bytes: Span<UInt8>, _ start: Int, _ count: Int) -> UInt32 {
        var h: UInt32 = 0x811c_9dc5
        var i = start
        let end = start + count
        while i < end {
            h = (h ^ UInt32(fold(bytes[i]))) &* 0x0100_0193
            i += 1
        }
        return h
    }

    /// Inserts or replaces the value of `name`.
    mutating func insert(_ name: DomainName, value: Int) {
        let wire = name.wire
        let span = wire.span
        if let index = find(span, 0, wire.count) {
            entries[index].value = value
            return
        }
        if (entries.count + 1) * 2 > slots.count { grow() }
        let start = keyBytes.count
        for byte in wire { keyBytes.append(Self.fold(byte)) }
        let entry = Entry(start: start, count: wire.count, hash: Self.hash(span, 0, wire.count), value: value)
        entries.append(entry)
        place(entries.count - 1)
    }

    /// The value of the name whose wire form is `count` bytes at `start` of `bytes`.
    @inline(__always) func value(_ bytes: Span<UInt8>, start: Int, count: Int) -> Int? {
        guard let index = find(bytes, start, count) else { return nil }
        return entries[index].value
    }

    /// The value of `name`.
    func value(of name: DomainName) -> Int? {
        let wire = name.wire
        return value(wire.span, start: 0, count: wire.count)
    }

    private func find(_ bytes: Span<UInt8>, _ start: Int, _ count: Int) -> Int? {
        let h = Self.hash(bytes, start, count)
        let mask = slots.count - 1
        var slot = Int(h) & mask
        while true {
            let s = slots[slot]
            if s == 0 { return nil }
            let entry = entries[Int(s) - 1]
            if entry.hash == h && entry.count == count && matches(entry, bytes, start) { return Int(s) - 1 }
            slot = (slot + 1) & mask
        }
    }

    @inline(__always) private func matches(_ entry: Entry, _ bytes: Span<UInt8>, _ start: Int) -> Bool {
        var i = 0
        while i < entry.count {
            if keyBytes[entry.start + i] != Self.fold(bytes[start + i]) { return false }
            i += 1
        }
        return true
    }

    private mutating func place(_ index: Int) {
        let mask = slots.count - 1
        var slot = Int(entries[index].hash) & mask
        while slots[slot] != 0 { slot = (slot + 1) & mask }
        slots[slot] = Int32(truncatingIfNeeded: index + 1)
    }

    private mutating func grow() {
        slots = [Int32](repeating: 0, count: slots.count * 2)
        for index in entries.indices { place(index) }
    }
}
