/// A source of random bytes: `getrandom` on Linux, RDRAND/RDSEED or a seeded
/// DRBG on bare metal, `SeededEntropy` in tests. Cores draw every random
/// value (ISNs, ports, IDs, DNS transaction IDs) through it.
public protocol EntropySource: AnyObject {
    /// Fills `buffer` with random bytes.
    func fill(_ buffer: inout MutableSpan<UInt8>)
}

extension EntropySource {
    /// A random 64-bit value.
    public func nextUInt64() -> UInt64 {
        var bytes: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0]
        var span = bytes.mutableSpan
        fill(&span)
        _ = consume span
        var value: UInt64 = 0
        for b in bytes { value = value << 8 | UInt64(b) }
        return value
    }

    /// A uniformly distributed value in `0..<bound` (Lemire's method, no
    /// modulo bias). `bound` must be positive.
    public func next(below bound: UInt64) -> UInt64 {
        precondition(bound > 0, "bound must be positive")
        var m = nextUInt64().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = nextUInt64().multipliedFullWidth(by: bound) }
        }
        return m.high
    }

    /// `count` random bytes.
    public func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var span = out.mutableSpan
        fill(&span)
        _ = consume span
        return out
    }
}

/// A deterministic generator (SplitMix64) for reproducible tests and fault
/// injection. Not for secrets: anyone who sees a few outputs can predict the
/// rest.
public final class SeededEntropy: EntropySource {
    private var state: UInt64

    /// A generator whose output is fixed by `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64-bit output.
    public func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public func fill(_ buffer: inout MutableSpan<UInt8>) {
        var i = 0
        while i < buffer.count {
            var word = next()
            var k = 0
            while k < 8 && i < buffer.count {
                buffer[i] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                i += 1
                k += 1
            }
        }
    }

    /// A value uniformly in `0..<1` with 53 bits of precision.
    public func nextUnitDouble() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }
}
