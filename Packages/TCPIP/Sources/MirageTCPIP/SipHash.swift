import MirageDevices

/// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit hash, used
/// where a peer must not predict our outputs without the key — initial
/// sequence numbers (RFC 6528) and, later, SYN cookies.
public struct SipHash24: Sendable {
    private var v0: UInt64, v1: UInt64, v2: UInt64, v3: UInt64
    private var tail: UInt64 = 0
    private var tailBytes = 0
    private var length = 0

    /// A hasher keyed with the 128-bit key `k0`, `k1` (little-endian halves).
    public init(k0: UInt64, k1: UInt64) {
        v0 = k0 ^ 0x736f_6d65_7073_6575
        v1 = k1 ^ 0x646f_7261_6e64_6f6d
        v2 = k0 ^ 0x6c79_6765_6e65_7261
        v3 = k1 ^ 0x7465_6462_7974_6573
    }

    @inline(__always) private static func rotl(_ x: UInt64, _ b: UInt64) -> UInt64 { (x << b) | (x >> (64 - b)) }

    @inline(__always) private mutating func round() {
        v0 &+= v1; v1 = Self.rotl(v1, 13); v1 ^= v0; v0 = Self.rotl(v0, 32)
        v2 &+= v3; v3 = Self.rotl(v3, 16); v3 ^= v2
        v0 &+= v3; v3 = Self.rotl(v3, 21); v3 ^= v0
        v2 &+= v1; v1 = Self.rotl(v1, 17); v1 ^= v2; v2 = Self.rotl(v2, 32)
    }

    private mutating func compress(_ m: UInt64) {
        v3 ^= m
        round()
        round()
        v0 ^= m
    }

    /// Adds one byte.
    public mutating func add(_ byte: UInt8) {
        tail |= UInt64(byte) << UInt64(8 * tailBytes)
        tailBytes += 1
        length += 1
        if tailBytes == 8 {
            compress(tail)
            tail = 0
            tailBytes = 0
        }
    }

    /// Adds a 16-bit value, big-endian (network order).
    public mutating func add(_ value: UInt16) {
        add(UInt8(truncatingIfNeeded: value >> 8))
        add(UInt8(truncatingIfNeeded: value))
    }

    /// Adds a 32-bit value, big-endian (network order).
    public mutating func add(_ value: UInt32) {
        add(UInt16(truncatingIfNeeded: value >> 16))
        add(UInt16(truncatingIfNeeded: value))
    }

    /// Adds bytes.
    public mutating func add(_ bytes: Span<UInt8>) {
        for i in bytes.indices { add(bytes[i]) }
    }

    /// The 64-bit hash of everything added.
    public func finalize() -> UInt64 {
        var copy = self
        copy.compress(tail | UInt64(truncatingIfNeeded: length) << 56)
        copy.v2 ^= 0xff
        copy.round(); copy.round(); copy.round(); copy.round()
        return copy.v0 ^ copy.v1 ^ copy.v2 ^ copy.v3
    }
}

/// Initial sequence numbers per RFC 6528 §3: ISN = M + F(local address,
/// local port, remote address, remote port, secret key), where M is a
/// 4-microsecond timer and F a keyed hash (SipHash-2-4 here) whose key comes
/// from the entropy source once. Connections to different peers get
/// unrelated sequences; a new incarnation of the same four-tuple starts
/// ahead of the old one as time passes.
public struct InitialSequenceNumbers: Sendable {
    private let k0: UInt64
    private let k1: UInt64

    /// A generator with a fresh key from `entropy`.
    public init(entropy: any EntropySource) {
        k0 = entropy.nextUInt64()
        k1 = entropy.nextUInt64()
    }

    /// A generator with a given key (tests).
    public init(k0: UInt64, k1: UInt64) {
        self.k0 = k0
        self.k1 = k1
    }

    /// The ISN for a connection at `now`.
    public func next(local: IPv4Address, localPort: UInt16, remote: IPv4Address, remotePort: UInt16,
                     now: Instant) -> SequenceNumber {
        var h = SipHash24(k0: k0, k1: k1)
        h.add(local.rawValue)
        h.add(localPort)
        h.add(remote.rawValue)
        h.add(remotePort)
        let f = UInt32(truncatingIfNeeded: h.finalize())
        // M: the 4 µs clock of RFC 9293 §3.4.1, wrapping every ~4.77 hours.
        let m = UInt32(truncatingIfNeeded: now.nanoseconds / 4_000)
        return SequenceNumber(m &+ f)
    }
}
