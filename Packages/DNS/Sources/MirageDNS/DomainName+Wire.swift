import MirageDevices

// Reading names from received messages, with RFC 1035 §4.1.4 compression.

extension DomainName {
    /// Most compression pointers followed in one name: more pointers than a
    /// name can have labels means a loop (or a hostile chain).
    static let maximumPointers = maximumLabelCount

    /// Reads the name at `start` of `message`. Bytes in place must lie
    /// before `end`; pointers (when `compressed`) may go anywhere earlier.
    /// Returns the name and the offset just after it in place.
    ///
    /// A pointer must point strictly before itself (RFC 1035 §4.1.4: "a
    /// prior occurance"), else `.badPointer`; and before every byte of this
    /// name read so far, else it would read them again: `.compressionLoop`.
    /// So each jump goes further back than the last and reading ends; the
    /// pointer count is capped as well.
    static func read(_ message: Span<UInt8>, at start: Int, end: Int, compressed: Bool) throws(DNSError) -> (DomainName, Int) {
        // Pass 1: check every rule and measure the name.
        var i = start
        var limit = min(end, message.count)
        var lowest = start      // start of the stretch being read in place
        var after = -1          // offset after the name in place, once a pointer is followed
        var pointers = 0
        var length = 1          // the root byte
        while true {
            guard i < limit else { throw .truncated(offset: limit, needed: 1) }
            let byte = message[i]
            if byte == 0 { break }
            switch byte >> 6 {
            case 0:
                let n = Int(byte)
                guard n < limit - i else { throw .truncated(offset: limit, needed: n + 1 - (limit - i - 1)) }
                length += n + 1
                guard length <= maximumLength else { throw .nameTooLong(length: length) }
                i += 1 + n
            case 3:
                guard compressed else { throw .badRecordData(type: 0, reason: "compressed name where compression is not allowed") }
                guard i + 1 < limit else { throw .truncated(offset: limit, needed: 1) }
                let target = Int(byte & 0x3F) << 8 | Int(message[i + 1])
                guard target < i else { throw .badPointer(offset: i, target: target) }
                guard target < lowest else { throw .compressionLoop(offset: start) }
                pointers += 1
                guard pointers <= maximumPointers else { throw .compressionLoop(offset: start) }
                if after < 0 { after = i + 2 }
                lowest = target
                i = target
                limit = message.count
            default:
                throw .unsupportedLabelType(byte)
            }
        }
        if after < 0 { after = i + 1 }
        // Pass 2: copy the runs of labels between pointers into one exact allocation.
        var wire: [UInt8] = []
        wire.reserveCapacity(length)
        var run = start
        i = start
        while wire.count < length - 1 {
            let byte = message[i]
            if byte >= 0xC0 {
                wire.append(span: message.extracting(run..<i))
                i = Int(byte & 0x3F) << 8 | Int(message[i + 1])
                run = i
            } else {
                i += 1 + Int(byte)
                if wire.count + (i - run) == length - 1 { wire.append(span: message.extracting(run..<i)) }
            }
        }
        wire.append(0)
        return (DomainName(unchecked: wire), after)
    }
}
