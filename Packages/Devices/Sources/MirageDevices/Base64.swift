/// Base64 decoding (RFC 4648 §4, the standard alphabet with `=` padding).
///
/// Used by `CompiledKeyValueStore` to turn the `StaticString` literals that
/// `mirage-crunch` generates back into bytes: the compiler handles a long
/// string literal far faster than a long `[UInt8]` literal.
public enum Base64 {
    /// Decodes `text`. Throws `invalidBase64(offset:)` with the offset of
    /// the first character that is not canonical padded base64: a character
    /// outside the alphabet (whitespace included, RFC 4648 §3.3), `=` other
    /// than as the final one or two characters, a length that is not a
    /// multiple of 4 (reported at the end), or non-zero bits after the
    /// last byte (RFC 4648 §3.5, so each byte string has one encoding).
    public static func decode(_ text: StaticString) throws(DeviceError) -> [UInt8] {
        guard text.hasPointerRepresentation else {
            // A one-scalar literal: never valid base64, but decode it honestly.
            let bytes = text.withUTF8Buffer { Array($0) }
            return try decode(bytes.span)
        }
        // A string literal's bytes live as long as the program.
        let bytes = UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
        return try decode(bytes.span)
    }

    /// Decodes the UTF-8 `text`; see `decode(_: StaticString)`.
    public static func decode(_ text: String) throws(DeviceError) -> [UInt8] {
        let bytes = Array(text.utf8)
        return try decode(bytes.span)
    }

    /// Decodes the base64 characters in `text`; see `decode(_: StaticString)`.
    public static func decode(_ text: Span<UInt8>) throws(DeviceError) -> [UInt8] {
        let n = text.count
        guard n % 4 == 0 else { throw .invalidBase64(offset: n) }
        var padding = 0
        if n > 0, text[n - 1] == equals { padding = text[n - 2] == equals ? 2 : 1 }
        var out = [UInt8]()
        out.reserveCapacity(n / 4 * 3)
        var i = 0
        while i < n {
            // The last quantum may hold padding; every other must not.
            let last = i + 4 == n
            let a = try sextet(text, i), b = try sextet(text, i + 1)
            out.append(a << 2 | b >> 4)
            if last && padding == 2 {
                guard b & 0x0f == 0 else { throw .invalidBase64(offset: i + 1) }
                break
            }
            let c = try sextet(text, i + 2)
            out.append(b << 4 | c >> 2)
            if last && padding == 1 {
                guard c & 0x03 == 0 else { throw .invalidBase64(offset: i + 2) }
                break
            }
            let d = try sextet(text, i + 3)
            out.append(c << 6 | d)
            i += 4
        }
        return out
    }

    private static let equals = UInt8(ascii: "=")

    /// The 6-bit value of the character at `offset`.
    private static func sextet(_ text: Span<UInt8>, _ offset: Int) throws(DeviceError) -> UInt8 {
        let c = text[offset]
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): return 62
        case UInt8(ascii: "/"): return 63
        default: throw .invalidBase64(offset: offset)
        }
    }
}
