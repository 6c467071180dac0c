/// The Internet checksum (RFC 1071): the ones'-complement sum of 16-bit
/// big-endian words, accumulated in 32 bits and folded at the end.
public struct InternetChecksum: Sendable {
    // A 64-bit accumulator of 16-bit words cannot overflow before 2^48
    // words (far beyond any packet), so it is folded only at the end.
    private var sum: UInt64 = 0
    private var odd: UInt8? = nil

    /// An empty sum.
    public init() {}

    /// Adds a 16-bit word (must be called on a word boundary of the data).
    public mutating func add(_ word: UInt16) {
        precondition(odd == nil, "add(_:) after an odd number of bytes")
        sum &+= UInt64(word)
    }

    /// Adds a 32-bit value as two words.
    public mutating func add(_ value: UInt32) {
        add(UInt16(truncatingIfNeeded: value >> 16))
        add(UInt16(truncatingIfNeeded: value))
    }

    /// Adds bytes, continuing an odd byte left by an earlier call.
    public mutating func add(_ bytes: Span<UInt8>) {
        var i = 0
        let n = bytes.count
        if let high = odd, n > 0 {
            sum &+= UInt64(UInt16(high) << 8 | UInt16(bytes[0]))
            odd = nil
            i = 1
        }
        // Four words per step: big-endian 64-bit chunks split into words.
        var acc: UInt64 = 0
        while i + 8 <= n {
            let w0 = UInt64(bytes[i]) << 8 | UInt64(bytes[i + 1])
            let w1 = UInt64(bytes[i + 2]) << 8 | UInt64(bytes[i + 3])
            let w2 = UInt64(bytes[i + 4]) << 8 | UInt64(bytes[i + 5])
            let w3 = UInt64(bytes[i + 6]) << 8 | UInt64(bytes[i + 7])
            acc &+= w0 &+ w1 &+ w2 &+ w3
            i += 8
        }
        while i + 1 < n {
            acc &+= UInt64(bytes[i]) << 8 | UInt64(bytes[i + 1])
            i += 2
        }
        sum &+= acc
        if i < n { odd = bytes[i] }
    }

    /// The folded ones'-complement sum (not complemented).
    public var foldedSum: UInt16 {
        var s = sum
        if let high = odd { s &+= UInt64(high) << 8 }
        while s > 0xFFFF { s = (s & 0xFFFF) &+ (s >> 16) }
        return UInt16(s)
    }

    /// The value for a checksum field: the complement of the folded sum.
    public var checksum: UInt16 { ~foldedSum }

    /// The checksum of `bytes` alone.
    public static func of(_ bytes: Span<UInt8>) -> UInt16 {
        var c = InternetChecksum()
        c.add(bytes)
        return c.checksum
    }
}

/// Big-endian reads and writes at fixed offsets, for wire views whose
/// lengths were checked at construction.
extension Span where Element == UInt8 {
    @inline(__always) func u16(at offset: Int) -> UInt16 {
        UInt16(self[offset]) << 8 | UInt16(self[offset + 1])
    }

    @inline(__always) func u32(at offset: Int) -> UInt32 {
        UInt32(self[offset]) << 24 | UInt32(self[offset + 1]) << 16 | UInt32(self[offset + 2]) << 8 | UInt32(self[offset + 3])
    }
}

extension MutableSpan where Element == UInt8 {
    @inline(__always) mutating func setU16(_ value: UInt16, at offset: Int) {
        self[offset] = UInt8(truncatingIfNeeded: value >> 8)
        self[offset + 1] = UInt8(truncatingIfNeeded: value)
    }

    @inline(__always) mutating func setU32(_ value: UInt32, at offset: Int) {
        self[offset] = UInt8(truncatingIfNeeded: value >> 24)
        self[offset + 1] = UInt8(truncatingIfNeeded: value >> 16)
        self[offset + 2] = UInt8(truncatingIfNeeded: value >> 8)
        self[offset + 3] = UInt8(truncatingIfNeeded: value)
    }
}
