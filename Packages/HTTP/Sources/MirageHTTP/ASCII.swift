/// Byte classes of RFC 9110 §5.6 and RFC 5234 Appendix B, and ASCII case
/// folding. Field names and tokens are compared as bytes, never through
/// `String` case mapping (which is Unicode-aware and not what HTTP means).
enum ASCII {
    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A
    static let space: UInt8 = 0x20
    static let tab: UInt8 = 0x09
    static let colon: UInt8 = 0x3A
    static let semicolon: UInt8 = 0x3B
    static let comma: UInt8 = 0x2C
    static let slash: UInt8 = 0x2F
    static let dot: UInt8 = 0x2E

    /// tchar (RFC 9110 §5.6.2): "!#$%&'*+-.^_`|~", DIGIT, ALPHA.
    static func isTokenCharacter(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: return true
        default: return false
        }
    }

    /// field-vchar plus SP and HTAB (RFC 9110 §5.5): what a field value may
    /// hold. obs-text (0x80–0xFF) is allowed; other controls are not.
    static func isFieldValueCharacter(_ b: UInt8) -> Bool {
        b == tab || (b >= 0x20 && b != 0x7F)
    }

    /// Optional whitespace (OWS, RFC 9110 §5.6.3).
    static func isWhitespace(_ b: UInt8) -> Bool { b == space || b == tab }

    static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    /// The value of a hexadecimal digit, or nil.
    static func hexValue(_ b: UInt8) -> Int? {
        switch b {
        case 0x30...0x39: return Int(b - 0x30)
        case 0x41...0x46: return Int(b - 0x41 + 10)
        case 0x61...0x66: return Int(b - 0x61 + 10)
        default: return nil
        }
    }

    /// Folds A–Z to a–z and leaves every other byte alone.
    @inline(__always)
    static func lower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b | 0x20 : b }

    /// Whether the bytes `a[range]` equal `lowercase` (already lower-case
    /// ASCII), ignoring ASCII case.
    static func equalsIgnoringCase(_ a: borrowing Span<UInt8>, _ range: Range<Int>, _ lowercase: StaticString) -> Bool {
        guard range.count == lowercase.utf8CodeUnitCount else { return false }
        let start = lowercase.utf8Start
        var i = 0
        for index in range {
            if lower(a[index]) != start[i] { return false }
            i += 1
        }
        return true
    }

    /// Whether `a[range]` equals the UTF-8 of `other`, ignoring ASCII case.
    static func equalsIgnoringCase(_ a: borrowing Span<UInt8>, _ range: Range<Int>, _ other: String) -> Bool {
        let fast = other.utf8.withContiguousStorageIfAvailable { utf8 -> Bool in
            guard utf8.count == range.count else { return false }
            var i = 0
            for index in range {
                if lower(utf8[i]) != lower(a[index]) { return false }
                i += 1
            }
            return true
        }
        if let fast { return fast }
        var utf8 = other.utf8.makeIterator()
        for index in range {
            guard let b = utf8.next(), lower(b) == lower(a[index]) else { return false }
        }
        return utf8.next() == nil
    }

    /// Whether every UTF-8 byte of `text` satisfies `predicate` (on the
    /// string's contiguous storage when it has one: much faster than
    /// iterating the view).
    static func allBytes(of text: String, _ predicate: (UInt8) -> Bool) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { $0.allSatisfy(predicate) } ?? text.utf8.allSatisfy(predicate)
    }

    /// A non-negative decimal number made of 1…18 digits (so it cannot
    /// overflow `Int`), or nil for anything else.
    static func decimal(_ a: borrowing Span<UInt8>, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 18 else { return nil }
        var value = 0
        for index in range {
            let b = a[index]
            guard isDigit(b) else { return nil }
            value = value * 10 + Int(b - 0x30)
        }
        return value
    }

    /// `range` without leading and trailing OWS.
    static func trimmed(_ a: borrowing Span<UInt8>, _ range: Range<Int>) -> Range<Int> {
        var lower = range.lowerBound
        var upper = range.upperBound
        while lower < upper, isWhitespace(a[lower]) { lower += 1 }
        while upper > lower, isWhitespace(a[upper - 1]) { upper -= 1 }
        return lower..<upper
    }

    /// Calls `body` with each element of a comma-separated list in
    /// `a[range]` (RFC 9110 §5.6.1), trimmed, skipping empty elements
    /// unless `skipEmpty` is false. Stops early when `body` returns false.
    static func forEachListElement(_ a: borrowing Span<UInt8>, _ range: Range<Int>, skipEmpty: Bool = true,
                                   _ body: (Range<Int>) -> Bool) {
        var start = range.lowerBound
        var index = range.lowerBound
        while index <= range.upperBound {
            if index == range.upperBound || a[index] == comma {
                let element = trimmed(a, start..<index)
                if !element.isEmpty || !skipEmpty, !body(element) { return }
                start = index + 1
            }
            index += 1
        }
    }

    /// Appends the decimal digits of a non-negative number.
    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        precondition(value >= 0, "negative number in an HTTP field")
        var divisor = 1
        while divisor <= value / 10 { divisor *= 10 }
        while divisor > 0 {
            out.append(UInt8(value / divisor % 10) + 0x30)
            divisor /= 10
        }
    }

    /// Appends lower-case hexadecimal digits of a non-negative number.
    static func appendHex(_ value: Int, to out: inout [UInt8]) {
        precondition(value >= 0, "negative chunk size")
        let digits: StaticString = "0123456789abcdef"
        var shift = 60
        while shift > 0 && (value >> shift) == 0 { shift -= 4 }
        while shift >= 0 {
            out.append(digits.utf8Start[(value >> shift) & 0xF])
            shift -= 4
        }
    }

    /// Appends the UTF-8 of a static string.
    static func append(_ s: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }
}
