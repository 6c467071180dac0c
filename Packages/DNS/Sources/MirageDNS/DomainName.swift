/// A domain name, kept as its uncompressed wire form (RFC 1035 §3.1):
/// length-prefixed labels ending in the zero-length root label, in the
/// case it was written in.
///
/// Comparison and hashing fold ASCII case byte by byte (RFC 4343 §3: only
/// A-Z/a-z are equivalent; every other byte compares exactly), without
/// allocating and never through `String`. `<` is the canonical DNS order of
/// RFC 4034 §6.1.
public struct DomainName: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Longest name in wire form, root byte included (RFC 1035 §2.3.4).
    public static let maximumLength = 255
    /// Longest label (RFC 1035 §2.3.4).
    public static let maximumLabelLength = 63
    /// Most labels a name can have besides the root: one-byte labels with
    /// their length bytes, plus the root byte, within `maximumLength`.
    public static let maximumLabelCount = (maximumLength - 1) / 2

    /// The root name, ".".
    public static let root = DomainName(unchecked: [0])

    /// Uncompressed wire form: length-prefixed labels ending in the 0 byte, original case kept.
    public private(set) var wire: [UInt8]

    /// Wraps wire bytes already known to be valid.
    init(unchecked wire: [UInt8]) { self.wire = wire }

    /// Validates `wire` as one uncompressed name: labels of 1…63 bytes, a
    /// final root label, nothing after it, at most 255 bytes.
    public init(wire: [UInt8]) throws(DNSError) {
        var i = 0
        while true {
            guard i < wire.count else { throw .truncated(offset: i, needed: 1) }
            let length = Int(wire[i])
            if length == 0 { break }
            guard length <= Self.maximumLabelLength else { throw .labelTooLong(length: length) }
            guard i + 1 + length < wire.count else { throw .truncated(offset: wire.count, needed: i + 2 + length - wire.count) }
            i += 1 + length
            guard i < Self.maximumLength else { throw .nameTooLong(length: i + 1) }
        }
        guard i + 1 == wire.count else { throw .trailingBytes(count: wire.count - i - 1) }
        self.wire = wire
    }

    /// The name made of `labels`, leftmost first, under the root.
    public init(labels: [[UInt8]]) throws(DNSError) {
        var wire: [UInt8] = []
        var total = 1
        for label in labels { total += label.count + 1 }
        guard total <= Self.maximumLength else { throw .nameTooLong(length: total) }
        wire.reserveCapacity(total)
        for label in labels {
            guard !label.isEmpty else { throw .syntax(reason: "empty label") }
            guard label.count <= Self.maximumLabelLength else { throw .labelTooLong(length: label.count) }
            wire.append(UInt8(truncatingIfNeeded: label.count))
            wire.append(contentsOf: label)
        }
        wire.append(0)
        self.wire = wire
    }

    /// Number of labels, the root not counted (root: 0).
    public var labelCount: Int {
        var n = 0, i = 0
        while i < wire.count, wire[i] != 0 {
            n += 1
            i += 1 + Int(wire[i])
        }
        return n
    }

    /// The labels, leftmost first, without the root.
    public var labels: [[UInt8]] {
        var out: [[UInt8]] = []
        var i = 0
        while i < wire.count, wire[i] != 0 {
            let length = Int(wire[i])
            out.append(Array(wire[(i + 1)..<(i + 1 + length)]))
            i += 1 + length
        }
        return out
    }

    /// Whether the first label is `*` (RFC 4592 §2.1.1).
    public var isWildcard: Bool { wire.count >= 3 && wire[0] == 1 && wire[1] == UInt8(ascii: "*") }

    /// Whether this is the root name.
    public var isRoot: Bool { wire.count == 1 }

    /// Whether this name is `other` or lies below it (whole labels, case-folded).
    public func isSubdomain(of other: DomainName) -> Bool {
        let start = wire.count - other.wire.count
        guard start >= 0 else { return false }
        // `start` must fall on a label boundary of this name.
        var i = 0
        while i < start { i += 1 + Int(wire[i]) }
        guard i == start else { return false }
        for k in 0..<other.wire.count where !asciiEqual(wire[start + k], other.wire[k]) { return false }
        return true
    }

    /// The name without its first label; nil for the root.
    public func parent() -> DomainName? {
        guard wire.count > 1 else { return nil }
        return DomainName(unchecked: Array(wire[(1 + Int(wire[0]))...]))
    }

    /// `label` followed by this name.
    public func prepending(label: [UInt8]) throws(DNSError) -> DomainName {
        guard !label.isEmpty else { throw .syntax(reason: "empty label") }
        guard label.count <= Self.maximumLabelLength else { throw .labelTooLong(length: label.count) }
        let total = wire.count + 1 + label.count
        guard total <= Self.maximumLength else { throw .nameTooLong(length: total) }
        var out: [UInt8] = []
        out.reserveCapacity(total)
        out.append(UInt8(truncatingIfNeeded: label.count))
        out.append(contentsOf: label)
        out.append(contentsOf: wire)
        return DomainName(unchecked: out)
    }

    /// `*.` followed by this name (RFC 4592); nil if that is too long.
    public func wildcard() -> DomainName? {
        try? prepending(label: [UInt8(ascii: "*")])
    }

    /// The name with A-Z folded to a-z, for keys that must compare bytewise.
    public var lowercased: DomainName {
        var out = wire
        for i in out.indices { out[i] = asciiLower(out[i]) }
        return DomainName(unchecked: out)
    }

    // MARK: Case-insensitive equality and hashing (RFC 4343)

    /// Equal wire forms once A-Z are folded to a-z (RFC 4343 §3).
    public static func == (a: DomainName, b: DomainName) -> Bool {
        let x = a.wire.span, y = b.wire.span
        let n = x.count
        guard n == y.count else { return false }
        // Eight bytes at a time, folded; the last word overlaps the one
        // before rather than reading past the end.
        guard n >= 8 else {
            for i in 0..<n where !asciiEqual(x[i], y[i]) { return false }
            return true
        }
        var i = 0
        while true {
            let u = loadWord(x, i), v = loadWord(y, i)
            if u != v && foldWord(u) != foldWord(v) { return false }
            if i + 8 == n { return true }
            i = min(i + 8, n - 8)
        }
    }

    /// Hashes the case-folded wire form, consistent with `==`.
    public func hash(into hasher: inout Hasher) {
        // Folded 8-byte words; the length bytes make the wire form
        // prefix-free, so equal names and only they feed equal words.
        let x = wire.span
        let n = x.count
        var i = 0
        while i + 8 <= n {
            hasher.combine(foldWord(loadWord(x, i)))
            i += 8
        }
        var tail: UInt64 = 0
        while i < n {
            tail = tail << 8 | UInt64(asciiLower(x[i]))
            i += 1
        }
        hasher.combine(tail)
    }

    // MARK: Canonical order (RFC 4034 §6.1)

    /// Canonical DNS order: labels compared from the rightmost, each as
    /// case-folded bytes (a shorter label that is a prefix sorts first); a
    /// name whose labels all match a longer name's rightmost labels sorts first.
    public static func < (a: DomainName, b: DomainName) -> Bool {
        canonicalCompare(a, b) < 0
    }

    /// -1, 0 or 1 as `a` sorts before, equal to or after `b` canonically.
    public static func canonicalCompare(_ a: DomainName, _ b: DomainName) -> Int {
        var aStarts = InlineArray<128, UInt8>(repeating: 0)
        var bStarts = InlineArray<128, UInt8>(repeating: 0)
        let an = a.labelStarts(&aStarts), bn = b.labelStarts(&bStarts)
        let x = a.wire.span, y = b.wire.span
        var i = an - 1, j = bn - 1
        while i >= 0 && j >= 0 {
            let p = Int(aStarts[i]), q = Int(bStarts[j])
            let lp = Int(x[p]), lq = Int(y[q])
            var k = 0
            while k < lp && k < lq {
                let u = asciiLower(x[p + 1 + k]), v = asciiLower(y[q + 1 + k])
                if u != v { return u < v ? -1 : 1 }
                k += 1
            }
            if lp != lq { return lp < lq ? -1 : 1 }
            i -= 1
            j -= 1
        }
        if an == bn { return 0 }
        return an < bn ? -1 : 1
    }

    /// Fills `starts` with the offset of each label's length byte; returns the count.
    func labelStarts(_ starts: inout InlineArray<128, UInt8>) -> Int {
        let x = wire.span
        var n = 0, i = 0
        while i < x.count, x[i] != 0, n < 128 {
            starts[n] = UInt8(truncatingIfNeeded: i)
            n += 1
            i += 1 + Int(x[i])
        }
        return n
    }
}

/// `b` with A-Z folded to a-z (RFC 4343 §3); other bytes unchanged.
@inline(__always)
func asciiLower(_ b: UInt8) -> UInt8 {
    b &- UInt8(ascii: "A") < 26 ? b | 0x20 : b
}

/// The 8 bytes at `offset` as a little-endian word (bounds-checked by RawSpan).
@inline(__always)
func loadWord(_ s: Span<UInt8>, _ offset: Int) -> UInt64 {
    UInt64(littleEndian: s.bytes.unsafeLoadUnaligned(fromByteOffset: offset, as: UInt64.self))
}

/// `asciiLower` on each byte of a word at once: a byte gets 0x20 where it
/// is 0x41...0x5A. Adding to the low seven bits cannot carry into the next
/// byte, and bytes with the top bit set are left alone.
@inline(__always)
func foldWord(_ w: UInt64) -> UInt64 {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let high = ones &* 0x80
    let low7 = w & ~high
    let atLeastA = low7 &+ ones &* (0x80 - 0x41)
    let pastZ = low7 &+ ones &* (0x80 - 0x5B)
    let upper = atLeastA & ~pastZ & ~w & high
    return w | upper >> 2
}

/// Whether two bytes are equal once ASCII letters are folded.
@inline(__always)
func asciiEqual(_ a: UInt8, _ b: UInt8) -> Bool {
    a == b || asciiLower(a) == asciiLower(b)
}
