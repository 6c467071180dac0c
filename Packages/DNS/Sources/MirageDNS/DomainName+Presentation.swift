// Presentation (master file) form of names, RFC 1035 §5.1: labels separated
// by ".", "\X" for a literal X (so "\." is a dot inside a label) and "\DDD"
// for the byte with decimal value DDD; a trailing "." makes the name absolute.

extension DomainName {
    /// Presentation form ("www.example.com.", "www", "@", "\\046", "\\."); a name not ending
    /// in "." is relative and gets `origin` appended (error if origin is nil). "@" is origin.
    public init(_ text: String, origin: DomainName? = nil) throws(DNSError) {
        try self.init(presentation: Array(text.utf8), origin: origin)
    }

    /// Presentation form as raw bytes, escapes not yet decoded (as a zone
    /// file token holds it); see `init(_:origin:)`.
    public init(presentation text: [UInt8], origin: DomainName?) throws(DNSError) {
        try self.init(presentation: text.span, origin: origin)
    }

    /// Presentation form from a span of raw bytes; see `init(_:origin:)`.
    public init(presentation text: Span<UInt8>, origin: DomainName?) throws(DNSError) {
        let n = text.count
        guard n > 0 else { throw .syntax(reason: "empty name") }
        if n == 1 && text[0] == UInt8(ascii: "@") {
            guard let origin else { throw .syntax(reason: "\"@\" without an origin") }
            self = origin
            return
        }
        if n == 1 && text[0] == UInt8(ascii: ".") {
            self = .root
            return
        }
        var wire: [UInt8] = []
        wire.reserveCapacity(n + 2)
        var lengthAt = 0
        wire.append(0)
        var labelLength = 0
        var absolute = false
        var i = 0
        while i < n {
            var c = text[i]
            i += 1
            if c == UInt8(ascii: ".") {
                guard labelLength > 0 else { throw .syntax(reason: "empty label in a name") }
                wire[lengthAt] = UInt8(truncatingIfNeeded: labelLength)
                if i == n {
                    absolute = true
                    break
                }
                lengthAt = wire.count
                wire.append(0)
                labelLength = 0
                continue
            }
            if c == UInt8(ascii: "\\") {
                c = try Self.decodeEscape(text, &i)
            }
            labelLength += 1
            guard labelLength <= Self.maximumLabelLength else { throw .labelTooLong(length: labelLength) }
            wire.append(c)
            guard wire.count < Self.maximumLength else { throw .nameTooLong(length: wire.count + 1) }
        }
        if !absolute {
            wire[lengthAt] = UInt8(truncatingIfNeeded: labelLength)
            guard let origin else { throw .syntax(reason: "relative name without an origin") }
            let total = wire.count + origin.wire.count
            guard total <= Self.maximumLength else { throw .nameTooLong(length: total) }
            wire.append(contentsOf: origin.wire)
        } else {
            wire.append(0)
        }
        self.init(unchecked: wire)
    }

    /// Decodes the escape after a backslash at `i - 1`: "\DDD" (exactly three
    /// decimal digits, at most 255) or "\X" for any other byte X.
    static func decodeEscape(_ text: Span<UInt8>, _ i: inout Int) throws(DNSError) -> UInt8 {
        guard i < text.count else { throw .syntax(reason: "backslash at the end of a name") }
        let c = text[i]
        guard isDigit(c) else {
            i += 1
            return c
        }
        guard i + 2 < text.count, isDigit(text[i + 1]), isDigit(text[i + 2]) else {
            throw .syntax(reason: "\\DDD escape needs three digits")
        }
        let value = Int(c - 48) * 100 + Int(text[i + 1] - 48) * 10 + Int(text[i + 2] - 48)
        guard value <= 255 else { throw .syntax(reason: "\\DDD escape over 255") }
        i += 3
        return UInt8(truncatingIfNeeded: value)
    }

    /// Presentation form, absolute, escapes \DDD / \. as needed.
    public var description: String {
        var out: [UInt8] = []
        appendPresentation(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the presentation form: printable bytes as they are, the
    /// characters special in zone files as "\X", everything else as "\DDD".
    func appendPresentation(to out: inout [UInt8]) {
        guard wire.count > 1 else {
            out.append(UInt8(ascii: "."))
            return
        }
        var i = 0
        while i < wire.count, wire[i] != 0 {
            let length = Int(wire[i])
            for k in (i + 1)..<(i + 1 + length) {
                appendEscaped(wire[k], to: &out)
            }
            out.append(UInt8(ascii: "."))
            i += 1 + length
        }
    }
}

/// Whether `c` is an ASCII decimal digit.
@inline(__always)
func isDigit(_ c: UInt8) -> Bool { c &- UInt8(ascii: "0") < 10 }

/// Appends a label byte in presentation form.
func appendEscaped(_ c: UInt8, to out: inout [UInt8]) {
    switch c {
    case UInt8(ascii: "."), UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "("), UInt8(ascii: ")"),
        UInt8(ascii: ";"), UInt8(ascii: "@"), UInt8(ascii: "$"):
        out.append(UInt8(ascii: "\\"))
        out.append(c)
    case 0x21...0x7E:
        out.append(c)
    default:
        appendDecimalEscape(c, to: &out)
    }
}

/// Appends "\DDD" for `c`.
func appendDecimalEscape(_ c: UInt8, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\\"))
    out.append(48 + c / 100)
    out.append(48 + c / 10 % 10)
    out.append(48 + c % 10)
}
