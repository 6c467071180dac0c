/// A 48-bit IEEE 802 MAC address.
public struct MACAddress: Hashable, Sendable, CustomStringConvertible {
    /// The address in the low 48 bits, first octet most significant.
    public let rawValue: UInt64

    /// The address whose octets, first on the wire first, are `a`…`f`.
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, _ e: UInt8, _ f: UInt8) {
        rawValue = UInt64(a) << 40 | UInt64(b) << 32 | UInt64(c) << 24 | UInt64(d) << 16 | UInt64(e) << 8 | UInt64(f)
    }

    /// The address in the low 48 bits of `rawValue`; higher bits must be zero.
    public init?(rawValue: UInt64) {
        guard rawValue >> 48 == 0 else { return nil }
        self.rawValue = rawValue
    }

    /// Reads six octets at `offset` of `bytes`; nil when they are not all there.
    public init?(_ bytes: Span<UInt8>, at offset: Int) {
        guard offset >= 0, bytes.count - offset >= 6 else { return nil }
        var v: UInt64 = 0
        for i in 0..<6 { v = v << 8 | UInt64(bytes[offset + i]) }
        rawValue = v
    }

    /// Parses `"02:00:5e:10:00:01"` (colon or dash separated hex octets).
    public init?(_ text: String) {
        var octets: [UInt8] = []
        var current: UInt16 = 0
        var digits = 0
        for u in text.utf8 {
            if u == UInt8(ascii: ":") || u == UInt8(ascii: "-") {
                guard digits > 0 else { return nil }
                octets.append(UInt8(current)); current = 0; digits = 0
                continue
            }
            guard let d = hexValue(u), digits < 2 else { return nil }
            current = current << 4 | UInt16(d)
            digits += 1
        }
        guard digits > 0 else { return nil }
        octets.append(UInt8(current))
        guard octets.count == 6 else { return nil }
        self.init(octets[0], octets[1], octets[2], octets[3], octets[4], octets[5])
    }

    /// ff:ff:ff:ff:ff:ff.
    public static let broadcast = MACAddress(0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
    /// 00:00:00:00:00:00.
    public static let zero = MACAddress(0, 0, 0, 0, 0, 0)

    /// The six octets in wire order.
    public var octets: [UInt8] { (0..<6).map { UInt8(truncatingIfNeeded: rawValue >> (40 - 8 * UInt64($0))) } }

    /// Whether the group bit (least significant bit of the first octet) is
    /// set: multicast, including broadcast.
    public var isMulticast: Bool { rawValue & (1 << 40) != 0 }
    /// Whether this is ff:ff:ff:ff:ff:ff.
    public var isBroadcast: Bool { self == .broadcast }
    /// Whether the locally-administered bit is set.
    public var isLocallyAdministered: Bool { rawValue & (2 << 40) != 0 }

    /// Writes the six octets at `offset`; the caller guarantees the room.
    public func write(to bytes: inout MutableSpan<UInt8>, at offset: Int) {
        for i in 0..<6 { bytes[offset + i] = UInt8(truncatingIfNeeded: rawValue >> UInt64(40 - 8 * i)) }
    }

    /// A locally administered unicast address with 46 random bits, for
    /// interfaces that have no burned-in address.
    public static func random(using entropy: any EntropySource) -> MACAddress {
        let r = entropy.nextUInt64() & 0xFFFF_FFFF_FFFF
        return MACAddress(rawValue: (r | 2 << 40) & ~(1 << 40))!
    }

    public var description: String {
        var s = ""
        for (i, o) in octets.enumerated() {
            if i > 0 { s += ":" }
            s += hexByte(o)
        }
        return s
    }
}

func hexValue(_ u: UInt8) -> UInt8? {
    switch u {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return u - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return u - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return u - UInt8(ascii: "A") + 10
    default: return nil
    }
}

func hexByte(_ b: UInt8) -> String {
    let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
    return String(digits[Int(b >> 4)]) + String(digits[Int(b & 0xf)])
}
