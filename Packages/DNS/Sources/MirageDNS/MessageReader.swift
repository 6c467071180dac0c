import MirageDevices

/// A cursor over a received message: every read checks its bounds against
/// `end` and throws `.truncated` instead of trapping. The span is the whole
/// message, so compressed names can follow pointers to earlier bytes.
struct MessageReader: ~Escapable {
    /// The whole message.
    let message: Span<UInt8>
    /// The next byte to read.
    var offset: Int
    /// Where reading in place must stop (the message end, or the end of an RDATA).
    var end: Int
    /// Whether names may be compressed (not in RDATA outside a message).
    var compressed = true

    /// A reader at `offset` that may read up to `end` (default: the message end).
    @_lifetime(copy message)
    init(_ message: Span<UInt8>, offset: Int = 0, end: Int? = nil) {
        self.message = message
        self.offset = offset
        self.end = min(end ?? message.count, message.count)
    }

    /// Bytes left before `end`.
    var remaining: Int { end - offset }

    /// Throws unless `count` more bytes are there.
    func need(_ count: Int) throws(DNSError) {
        guard count <= end - offset else { throw .truncated(offset: end, needed: count - (end - offset)) }
    }

    /// Reads one byte.
    mutating func u8() throws(DNSError) -> UInt8 {
        try need(1)
        let v = message[offset]
        offset += 1
        return v
    }

    /// Reads a big-endian 16-bit value.
    mutating func u16() throws(DNSError) -> UInt16 {
        try need(2)
        let v = UInt16(message[offset]) << 8 | UInt16(message[offset + 1])
        offset += 2
        return v
    }

    /// Reads a big-endian 32-bit value.
    mutating func u32() throws(DNSError) -> UInt32 {
        try need(4)
        var v: UInt32 = 0
        for i in 0..<4 { v = v << 8 | UInt32(message[offset + i]) }
        offset += 4
        return v
    }

    /// Reads `count` bytes into an array.
    mutating func bytes(_ count: Int) throws(DNSError) -> [UInt8] {
        try need(count)
        var out: [UInt8] = []
        out.append(span: message.extracting(offset..<(offset + count)))
        offset += count
        return out
    }

    /// Reads a <character-string> (RFC 1035 §3.3): a length byte and that many bytes.
    mutating func characterString() throws(DNSError) -> [UInt8] {
        let length = Int(try u8())
        return try bytes(length)
    }

    /// Reads a name at the cursor; pointers allowed when `compressed`.
    mutating func name() throws(DNSError) -> DomainName {
        let (name, next) = try DomainName.read(message, at: offset, end: end, compressed: compressed)
        offset = next
        return name
    }
}
