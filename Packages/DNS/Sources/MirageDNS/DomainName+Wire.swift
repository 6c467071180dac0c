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
        var wire: [UInt8] = []
        wire.reserveCapacity(32)
        var i = start
        var limit = min(end, message.count)
        var lowest = start      // start of the stretch being read in place
        var after = -1          // offset after the name in place, once a pointer is followed
        var pointers = 0
        while true {
            guard i < limit else { throw .truncated(offset: limit, needed: 1) }
            let length = message[i]
            switch length >> 6 {
            case 0:
                if length == 0 {
                    wire.append(0)
                    return (DomainName(unchecked: wire), after >= 0 ? after : i + 1)
                }
                let n = Int(length)
                guard n < limit - i else { throw .truncated(offset: limit, needed: n + 1 - (limit - i - 1)) }
                guard wire.count + n + 2 <= maximumLength else { throw .nameTooLong(length: wire.count + n + 2) }
                wire.append(length)
                wire.append(span: message.extracting((i + 1)..<(i + 1 + n)))
                i += 1 + n
            case 3:
                guard compressed else { throw .badRecordData(type: 0, reason: "compressed name where compression is not allowed") }
                guard i + 1 < limit else { throw .truncated(offset: limit, needed: 1) }
                let target = Int(length & 0x3F) << 8 | Int(message[i + 1])
                guard target < i else { throw .badPointer(offset: i, target: target) }
                guard target < lowest else { throw .compressionLoop(offset: start) }
                pointers += 1
                guard pointers <= maximumPointers else { throw .compressionLoop(offset: start) }
                if after < 0 { after = i + 2 }
                lowest = target
                i = target
                limit = message.count
            default:
                throw .unsupportedLabelType(length)
            }
        }
    }
}
