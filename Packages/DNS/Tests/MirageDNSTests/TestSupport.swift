import MirageDNS

/// Bytes from hex text; spaces ignored. A malformed literal is a bug in the test.
func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.utf8).filter { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\n") }
    precondition(digits.count % 2 == 0, "odd hex literal")
    func value(_ c: UInt8) -> UInt8 {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - 48
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - 87
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - 55
        default: preconditionFailure("bad hex digit")
        }
    }
    return stride(from: 0, to: digits.count, by: 2).map { value(digits[$0]) << 4 | value(digits[$0 + 1]) }
}

/// Upper-case hex of `bytes`.
func hexString(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789ABCDEF")
    return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
}

/// A name from text that the test knows is valid.
func name(_ text: String) -> DomainName {
    do { return try DomainName(text) } catch { preconditionFailure("bad test name \(text): \(error)") }
}

/// Splits presentation text into zone tokens the way a zone lexer would
/// for one line: whitespace separates, double quotes group (and are removed),
/// backslash escapes are kept as written.
func tokens(_ text: String) -> [ZoneToken] {
    var out: [ZoneToken] = []
    var current: [UInt8] = []
    var inQuotes = false, quoted = false, escaped = false, started = false
    for c in Array(text.utf8) {
        if escaped {
            current.append(c)
            escaped = false
            continue
        }
        if c == UInt8(ascii: "\\") {
            current.append(c)
            escaped = true
            started = true
            continue
        }
        if c == UInt8(ascii: "\"") {
            if inQuotes {
                inQuotes = false
            } else {
                inQuotes = true
                quoted = true
                started = true
            }
            continue
        }
        if !inQuotes && (c == UInt8(ascii: " ") || c == UInt8(ascii: "\t")) {
            if started { out.append(ZoneToken(text: current, quoted: quoted)) }
            current = []
            quoted = false
            started = false
            continue
        }
        current.append(c)
        started = true
    }
    if started { out.append(ZoneToken(text: current, quoted: quoted)) }
    return out
}

/// Decodes a whole message from an array (one place that takes its span).
func decode(_ bytes: [UInt8]) throws(DNSError) -> Message {
    try Message(parsing: bytes.span)
}
