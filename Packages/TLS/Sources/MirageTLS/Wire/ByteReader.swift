// The bounds-checked cursor every TLS parser reads with, and the writer
// helpers every encoder appends with. RFC 8446 §3 defines the presentation
// language: big-endian integers of 1, 2, 3 or 4 bytes, and variable-length
// vectors prefixed by a length of as many bytes as their ceiling needs.

/// A bounds-checked cursor over received bytes. Every read checks what is
/// left first and throws `.decodeError` instead of trapping, so a parser built
/// on it cannot run past the end of a lying length.
public struct ByteReader {
    let bytes: [UInt8]
    /// Index of the next byte to read.
    private(set) var position: Int

    /// A cursor at the start of `bytes`.
    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.position = 0
    }

    /// Bytes not yet read.
    public var remaining: Int { bytes.count - position }

    /// True when every byte has been read.
    public var isAtEnd: Bool { position >= bytes.count }

    /// Throws unless `count` more bytes are there.
    func require(_ count: Int) throws(TLSError) {
        guard count >= 0, count <= remaining else {
            throw .decodeError("truncated: \(count) bytes needed, \(remaining) left")
        }
    }

    /// One byte.
    public mutating func readUInt8() throws(TLSError) -> UInt8 {
        try require(1)
        defer { position += 1 }
        return bytes[position]
    }

    /// A big-endian 16-bit integer.
    public mutating func readUInt16() throws(TLSError) -> UInt16 {
        try require(2)
        defer { position += 2 }
        return UInt16(bytes[position]) << 8 | UInt16(bytes[position + 1])
    }

    /// A big-endian 24-bit integer (handshake and certificate lengths), as an Int.
    public mutating func readUInt24() throws(TLSError) -> Int {
        try require(3)
        defer { position += 3 }
        return Int(bytes[position]) << 16 | Int(bytes[position + 1]) << 8 | Int(bytes[position + 2])
    }

    /// A big-endian 32-bit integer.
    public mutating func readUInt32() throws(TLSError) -> UInt32 {
        try require(4)
        defer { position += 4 }
        return UInt32(bytes[position]) << 24 | UInt32(bytes[position + 1]) << 16
            | UInt32(bytes[position + 2]) << 8 | UInt32(bytes[position + 3])
    }

    /// The next `count` bytes; `.decodeError` if fewer are left (or `count` is negative).
    public mutating func readBytes(_ count: Int) throws(TLSError) -> [UInt8] {
        try require(count)
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    /// A vector with a 1-byte length prefix (`opaque x<0..2^8-1>`).
    public mutating func readVector8() throws(TLSError) -> [UInt8] {
        let length = Int(try readUInt8())
        return try readBytes(length)
    }

    /// A vector with a 2-byte length prefix (`opaque x<0..2^16-1>`).
    public mutating func readVector16() throws(TLSError) -> [UInt8] {
        let length = Int(try readUInt16())
        return try readBytes(length)
    }

    /// A vector with a 3-byte length prefix (`opaque x<0..2^24-1>`).
    public mutating func readVector24() throws(TLSError) -> [UInt8] {
        let length = try readUInt24()
        return try readBytes(length)
    }

    /// Throws `.decodeError("trailing bytes in \(what)")` unless every byte was read:
    /// a structure must fill its length exactly (RFC 8446 §3, §6.2 decode_error).
    public func expectEnd(_ what: String) throws(TLSError) {
        guard isAtEnd else { throw .decodeError("trailing bytes in \(what)") }
    }
}

// MARK: - Writer helpers

extension Array where Element == UInt8 {
    /// Appends one byte.
    public mutating func appendUInt8(_ value: UInt8) {
        append(value)
    }

    /// Appends a big-endian 16-bit integer.
    public mutating func appendUInt16(_ value: UInt16) {
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }

    /// Appends the low 24 bits of `value`, big-endian. `value` must fit in 24
    /// bits (a caller's bug otherwise: values come from our own encoders).
    public mutating func appendUInt24(_ value: Int) {
        precondition(value >= 0 && value < 1 << 24, "24-bit value out of range")
        append(UInt8(truncatingIfNeeded: value >> 16))
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }

    /// Appends a big-endian 32-bit integer.
    public mutating func appendUInt32(_ value: UInt32) {
        append(UInt8(truncatingIfNeeded: value >> 24))
        append(UInt8(truncatingIfNeeded: value >> 16))
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }

    /// Appends a vector with a 1-byte length: `body` writes the contents, the
    /// length is patched in after. The contents must fit (≤ 255 bytes).
    public mutating func appendVector8(_ body: (inout [UInt8]) -> Void) {
        appendVector(prefix: 1, body)
    }

    /// Appends a vector with a 2-byte length (contents ≤ 65 535 bytes).
    public mutating func appendVector16(_ body: (inout [UInt8]) -> Void) {
        appendVector(prefix: 2, body)
    }

    /// Appends a vector with a 3-byte length (contents < 2^24 bytes).
    public mutating func appendVector24(_ body: (inout [UInt8]) -> Void) {
        appendVector(prefix: 3, body)
    }

    private mutating func appendVector(prefix: Int, _ body: (inout [UInt8]) -> Void) {
        let start = count
        append(contentsOf: repeatElement(0, count: prefix))
        body(&self)
        let length = count - start - prefix
        // Encoders only write what they were given or parsed; an oversized
        // vector is a programming error, not peer input.
        precondition(length < 1 << (8 * prefix), "vector longer than its length prefix allows")
        for i in 0..<prefix {
            self[start + i] = UInt8(truncatingIfNeeded: length >> (8 * (prefix - 1 - i)))
        }
    }
}
