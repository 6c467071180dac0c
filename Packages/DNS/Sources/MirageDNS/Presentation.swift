import MirageDevices

// Encodings used by the presentation form of record data: decimal numbers,
// character-strings, hex, base64 (RFC 4648 §4), base32hex without padding
// (RFC 4648 §7, for NSEC3), and the YYYYMMDDHHmmSS times of RRSIG (RFC 4034
// §3.2). All of them work on bytes and integers only.

enum Presentation {
    // MARK: Numbers

    /// An unsigned decimal number of at most `maximum`; nil on anything else.
    static func decimal(_ text: [UInt8], maximum: UInt32) -> UInt32? {
        guard !text.isEmpty, text.count <= 10 else { return nil }
        var value: UInt64 = 0
        for c in text {
            guard isDigit(c) else { return nil }
            value = value * 10 + UInt64(c - 48)
        }
        guard value <= UInt64(maximum) else { return nil }
        return UInt32(truncatingIfNeeded: value)
    }

    /// Seconds per unit letter of a BIND-style period ("1h30m", "2W").
    private static func unitSeconds(_ c: UInt8) -> UInt64? {
        switch asciiLower(c) {
        case UInt8(ascii: "s"): 1
        case UInt8(ascii: "m"): 60
        case UInt8(ascii: "h"): 3600
        case UInt8(ascii: "d"): 86400
        case UInt8(ascii: "w"): 604_800
        default: nil
        }
    }

    /// A time period: a plain decimal number of seconds, or numbers with
    /// s/m/h/d/w units as BIND and NSD accept in TTLs and SOA timers; at
    /// most 2^32-1 seconds.
    static func period(_ text: [UInt8]) -> UInt32? {
        guard !text.isEmpty else { return nil }
        var total: UInt64 = 0
        var current: UInt64 = 0
        var digits = 0
        var sawUnit = false
        for c in text {
            if isDigit(c) {
                current = current * 10 + UInt64(c - 48)
                digits += 1
                guard digits <= 10 else { return nil }
            } else if let unit = unitSeconds(c), digits > 0 {
                total += current * unit
                guard total <= UInt64(UInt32.max) else { return nil }
                current = 0
                digits = 0
                sawUnit = true
            } else {
                return nil
            }
        }
        if digits > 0 {
            // A bare number after units ("1h30") counts as seconds, as BIND reads it.
            total += current
        } else if !sawUnit {
            return nil
        }
        guard total <= UInt64(UInt32.max) else { return nil }
        return UInt32(truncatingIfNeeded: total)
    }

    // MARK: Character-strings (RFC 1035 §5.1)

    /// The bytes of a token with its escapes decoded: "\DDD" and "\X".
    static func unescape(_ text: [UInt8]) throws(DNSError) -> [UInt8] {
        guard text.contains(UInt8(ascii: "\\")) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        let s = text.span
        var i = 0
        while i < s.count {
            let c = s[i]
            i += 1
            if c == UInt8(ascii: "\\") {
                out.append(try DomainName.decodeEscape(s, &i))
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// Appends `bytes` as a quoted character-string: `"` and `\` escaped,
    /// other non-printable bytes as "\DDD".
    static func appendQuoted(_ bytes: [UInt8], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for c in bytes {
            switch c {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                out.append(UInt8(ascii: "\\"))
                out.append(c)
            case 0x20...0x7E:
                out.append(c)
            default:
                appendDecimalEscape(c, to: &out)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Appends the decimal digits of `value`.
    static func appendDecimal<T: BinaryInteger>(_ value: T, to out: inout [UInt8]) {
        out.append(contentsOf: "\(value)".utf8)
    }

    // MARK: Hex

    private static let upperHex: [UInt8] = Array("0123456789ABCDEF".utf8)

    /// Appends `bytes` as upper-case hex.
    static func appendHex(_ bytes: [UInt8], to out: inout [UInt8]) {
        for b in bytes {
            out.append(upperHex[Int(b >> 4)])
            out.append(upperHex[Int(b & 0x0F)])
        }
    }

    /// The value of a hex digit, either case.
    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Decodes an even number of hex digits.
    static func hex(_ text: [UInt8]) throws(DNSError) -> [UInt8] {
        guard text.count % 2 == 0 else { throw .syntax(reason: "odd number of hex digits") }
        var out: [UInt8] = []
        out.reserveCapacity(text.count / 2)
        var i = 0
        while i < text.count {
            guard let h = hexValue(text[i]), let l = hexValue(text[i + 1]) else { throw .syntax(reason: "bad hex digit") }
            out.append(h << 4 | l)
            i += 2
        }
        return out
    }

    // MARK: Base64 (RFC 4648 §4)

    private static let base64Alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Appends `bytes` in padded base64.
    static func appendBase64(_ bytes: [UInt8], to out: inout [UInt8]) {
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            let b0 = UInt32(bytes[i])
            let b1 = n > 1 ? UInt32(bytes[i + 1]) : 0
            let b2 = n > 2 ? UInt32(bytes[i + 2]) : 0
            let v = b0 << 16 | b1 << 8 | b2
            out.append(base64Alphabet[Int(v >> 18 & 0x3F)])
            out.append(base64Alphabet[Int(v >> 12 & 0x3F)])
            out.append(n > 1 ? base64Alphabet[Int(v >> 6 & 0x3F)] : UInt8(ascii: "="))
            out.append(n > 2 ? base64Alphabet[Int(v & 0x3F)] : UInt8(ascii: "="))
            i += 3
        }
    }

    /// Decodes padded base64 (MirageDevices' strict decoder).
    static func base64(_ text: [UInt8]) throws(DNSError) -> [UInt8] {
        do {
            return try Base64.decode(text.span)
        } catch {
            throw .syntax(reason: "bad base64")
        }
    }

    // MARK: Base32hex (RFC 4648 §7), unpadded as RFC 5155 §3.3 writes it

    private static let base32HexAlphabet: [UInt8] = Array("0123456789ABCDEFGHIJKLMNOPQRSTUV".utf8)

    /// Appends `bytes` in base32hex without padding.
    static func appendBase32Hex(_ bytes: [UInt8], to out: inout [UInt8]) {
        var buffer: UInt32 = 0
        var bits = 0
        for b in bytes {
            buffer = buffer << 8 | UInt32(b)
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(base32HexAlphabet[Int(buffer >> UInt32(bits) & 0x1F)])
            }
            buffer &= (1 << UInt32(bits)) - 1
        }
        if bits > 0 { out.append(base32HexAlphabet[Int(buffer << UInt32(5 - bits) & 0x1F)]) }
    }

    /// Decodes unpadded base32hex, either case. The length must be one a
    /// byte string encodes to, and the unused final bits zero (RFC 4648 §3.5).
    static func base32Hex(_ text: [UInt8]) throws(DNSError) -> [UInt8] {
        // Lengths mod 8 that an unpadded encoding can have.
        switch text.count % 8 {
        case 0, 2, 4, 5, 7: break
        default: throw .syntax(reason: "base32hex of impossible length")
        }
        var out: [UInt8] = []
        out.reserveCapacity(text.count * 5 / 8)
        var buffer: UInt32 = 0
        var bits = 0
        for c in text {
            let v: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0")
            case UInt8(ascii: "A")...UInt8(ascii: "V"): v = c - UInt8(ascii: "A") + 10
            case UInt8(ascii: "a")...UInt8(ascii: "v"): v = c - UInt8(ascii: "a") + 10
            default: throw .syntax(reason: "bad base32hex digit")
            }
            buffer = buffer << 5 | UInt32(v)
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
                buffer &= (1 << UInt32(bits)) - 1
            }
        }
        guard buffer == 0 else { throw .syntax(reason: "base32hex with non-zero trailing bits") }
        return out
    }

    // MARK: RRSIG times (RFC 4034 §3.2)

    /// Appends `seconds` since 1970 (UTC) as YYYYMMDDHHmmSS.
    static func appendTime(_ seconds: UInt32, to out: inout [UInt8]) {
        let s = Int(seconds)
        let date = CivilDate.date(days: s / 86400)
        let t = s % 86400
        func two(_ v: Int) {
            out.append(UInt8(truncatingIfNeeded: 48 + v / 10))
            out.append(UInt8(truncatingIfNeeded: 48 + v % 10))
        }
        two(date.year / 100)
        two(date.year % 100)
        two(date.month)
        two(date.day)
        two(t / 3600)
        two(t / 60 % 60)
        two(t % 60)
    }

    /// Reads an RRSIG time: YYYYMMDDHHmmSS in UTC, or a plain decimal
    /// number of seconds (RFC 4034 §3.2). A date past 2106 wraps modulo
    /// 2^32, as the field is serial-number arithmetic (RFC 4034 §3.1.5).
    static func time(_ text: [UInt8]) throws(DNSError) -> UInt32 {
        guard text.count == 14 else {
            guard let v = decimal(text, maximum: UInt32.max) else { throw .syntax(reason: "bad signature time") }
            return v
        }
        var fields: [Int] = []
        for (start, length) in [(0, 4), (4, 2), (6, 2), (8, 2), (10, 2), (12, 2)] {
            var v = 0
            for i in start..<(start + length) {
                guard isDigit(text[i]) else { throw .syntax(reason: "bad signature time") }
                v = v * 10 + Int(text[i] - 48)
            }
            fields.append(v)
        }
        let (year, month, day, hour, minute, second) = (fields[0], fields[1], fields[2], fields[3], fields[4], fields[5])
        guard year >= 1970, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
              hour < 24, minute < 60, second < 60 else {
            throw .syntax(reason: "bad signature time")
        }
        let total = CivilDate.days(year: year, month: month, day: day) * 86400 + hour * 3600 + minute * 60 + second
        return UInt32(truncatingIfNeeded: total)
    }

    /// Days in `month` of `year`.
    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // MARK: DNSSEC algorithm mnemonics (RFC 4034 Appendix A.1, IANA)

    /// Algorithm mnemonics accepted in DNSKEY, RRSIG and DS presentation.
    static let algorithms: [(UInt16, String)] = [
        (1, "RSAMD5"), (2, "DH"), (3, "DSA"), (5, "RSASHA1"), (6, "DSA-NSEC3-SHA1"), (7, "RSASHA1-NSEC3-SHA1"),
        (8, "RSASHA256"), (10, "RSASHA512"), (12, "ECC-GOST"), (13, "ECDSAP256SHA256"), (14, "ECDSAP384SHA384"),
        (15, "ED25519"), (16, "ED448"), (252, "INDIRECT"), (253, "PRIVATEDNS"), (254, "PRIVATEOID"),
    ]
}
