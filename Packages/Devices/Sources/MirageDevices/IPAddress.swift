/// An IPv4 address.
public struct IPv4Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The address in host order: 10.0.0.1 is 0x0A00_0001.
    public var rawValue: UInt32

    /// The address with host-order value `rawValue`.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The address `a.b.c.d`.
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        rawValue = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Parses dotted-quad text (`"127.0.0.1"`): exactly four decimal
    /// octets, no leading zeros beyond a lone `0`.
    public init?(_ text: String) {
        var value: UInt32 = 0
        var octet: UInt32 = 0
        var digits = 0
        var parts = 0
        var leadingZero = false
        for u in text.utf8 {
            if u == UInt8(ascii: ".") {
                guard digits > 0, parts < 3 else { return nil }
                value = value << 8 | octet
                parts += 1; octet = 0; digits = 0; leadingZero = false
                continue
            }
            guard u >= UInt8(ascii: "0"), u <= UInt8(ascii: "9"), !leadingZero, digits < 3 else { return nil }
            if digits == 0 && u == UInt8(ascii: "0") { leadingZero = true }
            octet = octet * 10 + UInt32(u - UInt8(ascii: "0"))
            guard octet <= 255 else { return nil }
            digits += 1
        }
        guard digits > 0, parts == 3 else { return nil }
        rawValue = value << 8 | octet
    }

    /// 0.0.0.0.
    public static let any = IPv4Address(rawValue: 0)
    /// 127.0.0.1.
    public static let loopback = IPv4Address(127, 0, 0, 1)
    /// 255.255.255.255.
    public static let broadcast = IPv4Address(rawValue: .max)

    /// The four octets in wire order.
    public var octets: (UInt8, UInt8, UInt8, UInt8) {
        (UInt8(truncatingIfNeeded: rawValue >> 24), UInt8(truncatingIfNeeded: rawValue >> 16),
         UInt8(truncatingIfNeeded: rawValue >> 8), UInt8(truncatingIfNeeded: rawValue))
    }

    /// Whether in 127.0.0.0/8.
    public var isLoopback: Bool { rawValue >> 24 == 127 }
    /// Whether in 224.0.0.0/4.
    public var isMulticast: Bool { rawValue >> 28 == 0xE }

    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        let o = octets
        return "\(o.0).\(o.1).\(o.2).\(o.3)"
    }
}

/// An IPv6 address.
public struct IPv6Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The first 64 bits, first octet most significant.
    public var high: UInt64
    /// The last 64 bits.
    public var low: UInt64

    /// The address with these halves.
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The address from eight 16-bit groups.
    public init(groups g: [UInt16]) {
        precondition(g.count == 8, "an IPv6 address has eight groups")
        var h: UInt64 = 0, l: UInt64 = 0
        for i in 0..<4 { h = h << 16 | UInt64(g[i]) }
        for i in 4..<8 { l = l << 16 | UInt64(g[i]) }
        self.init(high: h, low: l)
    }

    /// Parses RFC 4291 §2.2 text, including `::` and an embedded IPv4 tail.
    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 45 else { return nil }
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var seenGap = false
        var i = 0
        if bytes.starts(with: [UInt8(ascii: ":"), UInt8(ascii: ":")]) {
            seenGap = true
            i = 2
        } else if bytes[0] == UInt8(ascii: ":") {
            return nil
        }
        while i < bytes.count {
            // An IPv4 tail: the last group, written with dots.
            if !bytes[i...].contains(UInt8(ascii: ":")) && bytes[i...].contains(UInt8(ascii: ".")) {
                guard let v4 = IPv4Address(String(decoding: bytes[i...], as: UTF8.self)) else { return nil }
                let g = [UInt16(truncatingIfNeeded: v4.rawValue >> 16), UInt16(truncatingIfNeeded: v4.rawValue)]
                if seenGap { tail += g } else { head += g }
                i = bytes.count
                break
            }
            var value: UInt32 = 0
            var digits = 0
            while i < bytes.count, let d = hexValue(bytes[i]) {
                value = value << 4 | UInt32(d)
                digits += 1
                i += 1
                guard digits <= 4 else { return nil }
            }
            guard digits > 0 else { return nil }
            if seenGap { tail.append(UInt16(value)) } else { head.append(UInt16(value)) }
            if i == bytes.count { break }
            guard bytes[i] == UInt8(ascii: ":") else { return nil }
            i += 1
            if i < bytes.count && bytes[i] == UInt8(ascii: ":") {
                guard !seenGap else { return nil }
                seenGap = true
                i += 1
            } else if i == bytes.count {
                return nil
            }
        }
        let total = head.count + tail.count
        if seenGap {
            guard total <= 7 else { return nil }
            self.init(groups: head + [UInt16](repeating: 0, count: 8 - total) + tail)
        } else {
            guard total == 8 else { return nil }
            self.init(groups: head)
        }
    }

    /// ::.
    public static let any = IPv6Address(high: 0, low: 0)
    /// ::1.
    public static let loopback = IPv6Address(high: 0, low: 1)

    /// The eight 16-bit groups.
    public var groups: [UInt16] {
        (0..<4).map { UInt16(truncatingIfNeeded: high >> UInt64(48 - 16 * $0)) }
            + (0..<4).map { UInt16(truncatingIfNeeded: low >> UInt64(48 - 16 * $0)) }
    }

    public static func < (a: IPv6Address, b: IPv6Address) -> Bool { (a.high, a.low) < (b.high, b.low) }

    /// RFC 5952 text: lower case, leading zeros dropped, the longest run of
    /// two or more zero groups (the first if tied) shown as `::`.
    public var description: String {
        let g = groups
        var bestStart = -1, bestLength = 0, i = 0
        while i < 8 {
            if g[i] == 0 {
                var j = i
                while j < 8 && g[j] == 0 { j += 1 }
                if j - i > bestLength && j - i >= 2 { bestStart = i; bestLength = j - i }
                i = j
            } else { i += 1 }
        }
        func hex(_ v: UInt16) -> String {
            var s = ""
            var started = false
            for shift in stride(from: 12, through: 0, by: -4) {
                let d = UInt8((v >> UInt16(shift)) & 0xf)
                if d != 0 || started || shift == 0 {
                    started = true
                    s += String(hexByte(d).last!)
                }
            }
            return s
        }
        var out = ""
        i = 0
        while i < 8 {
            if i == bestStart {
                out += "::"
                i += bestLength
                continue
            }
            if !out.isEmpty && !out.hasSuffix(":") { out += ":" }
            out += hex(g[i])
            i += 1
        }
        return out
    }
}

/// An IP address of either version.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// An IPv4 address.
    case v4(IPv4Address)
    /// An IPv6 address.
    case v6(IPv6Address)

    /// Parses IPv4 dotted-quad or IPv6 text.
    public init?(_ text: String) {
        if let a = IPv4Address(text) { self = .v4(a) } else if let a = IPv6Address(text) { self = .v6(a) } else { return nil }
    }

    /// Whether a loopback address (127/8 or ::1).
    public var isLoopback: Bool {
        switch self {
        case .v4(let a): a.isLoopback
        case .v6(let a): a == .loopback
        }
    }

    public var description: String {
        switch self {
        case .v4(let a): a.description
        case .v6(let a): a.description
        }
    }
}

/// An IP address and a port: one end of a TCP connection or UDP flow.
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    /// The address.
    public var address: IPAddress
    /// The port.
    public var port: UInt16

    /// An endpoint.
    public init(_ address: IPAddress, _ port: UInt16) {
        self.address = address
        self.port = port
    }

    /// `1.2.3.4:80` or `[::1]:80`.
    public var description: String {
        switch address {
        case .v4(let a): "\(a):\(port)"
        case .v6(let a): "[\(a)]:\(port)"
        }
    }
}
