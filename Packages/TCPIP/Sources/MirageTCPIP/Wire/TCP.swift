import MirageDevices

/// TCP control bits (RFC 9293 §3.1; CWR and ECE from RFC 3168).
public struct TCPFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// No more data from sender.
    public static let fin = TCPFlags(rawValue: 0x01)
    /// Synchronize sequence numbers.
    public static let syn = TCPFlags(rawValue: 0x02)
    /// Reset the connection.
    public static let rst = TCPFlags(rawValue: 0x04)
    /// Push function.
    public static let psh = TCPFlags(rawValue: 0x08)
    /// Acknowledgment field is significant.
    public static let ack = TCPFlags(rawValue: 0x10)
    /// Urgent pointer field is significant.
    public static let urg = TCPFlags(rawValue: 0x20)
    /// ECN echo.
    public static let ece = TCPFlags(rawValue: 0x40)
    /// Congestion window reduced.
    public static let cwr = TCPFlags(rawValue: 0x80)
}

/// One SACK block (RFC 2018 §3): bytes `left..<right` were received.
public struct SACKBlock: Hashable, Sendable {
    /// First sequence number of the block.
    public var left: SequenceNumber
    /// Sequence number just after the block.
    public var right: SequenceNumber
    /// A block.
    public init(left: SequenceNumber, right: SequenceNumber) {
        self.left = left
        self.right = right
    }
}

/// Up to `TCPOptions.maximumSACKBlocks` SACK blocks, stored inline: an
/// ACK's blocks are parsed and written for every segment while data is
/// out of order, and an array would cost a heap allocation each time.
public struct SACKBlockList: RandomAccessCollection, Hashable, Sendable {
    private var b0 = SACKBlock(left: SequenceNumber(0), right: SequenceNumber(0))
    private var b1 = SACKBlock(left: SequenceNumber(0), right: SequenceNumber(0))
    private var b2 = SACKBlock(left: SequenceNumber(0), right: SequenceNumber(0))
    private var b3 = SACKBlock(left: SequenceNumber(0), right: SequenceNumber(0))
    /// Blocks held.
    public private(set) var count = 0

    /// No blocks.
    public init() {}

    /// The most blocks held: `TCPOptions.maximumSACKBlocks`.
    public static var capacity: Int { TCPOptions.maximumSACKBlocks }
    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    /// The block at `index` (`0..<count`).
    public subscript(index: Int) -> SACKBlock {
        precondition(index >= 0 && index < count, "SACK block index out of range")
        switch index {
        case 0: return b0
        case 1: return b1
        case 2: return b2
        default: return b3
        }
    }

    /// Adds a block; returns false when `capacity` blocks are held.
    @discardableResult
    public mutating func append(_ block: SACKBlock) -> Bool {
        switch count {
        case 0: b0 = block
        case 1: b1 = block
        case 2: b2 = block
        case 3: b3 = block
        default: return false
        }
        count += 1
        return true
    }

    public static func == (a: SACKBlockList, b: SACKBlockList) -> Bool { a.elementsEqual(b) }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        for block in self { hasher.combine(block) }
    }
}

/// The TCP options this stack understands, parsed. Unknown options are
/// skipped by their length (RFC 9293 §3.1: an implementation MUST ignore
/// options it does not implement).
public struct TCPOptions: Hashable, Sendable {
    /// Maximum segment size (kind 2, SYN only, RFC 9293 §3.7.1).
    public var maximumSegmentSize: UInt16?
    /// Window scale shift (kind 3, RFC 7323 §2); values above 14 are
    /// kept as sent — RFC 7323 §2.3 says to use 14, the connection clamps.
    public var windowScale: UInt8?
    /// SACK permitted (kind 4, RFC 2018).
    public var sackPermitted = false
    /// Timestamps: value and echo reply (kind 8, RFC 7323 §3).
    public var timestamps: (value: UInt32, echoReply: UInt32)? {
        get { timestampValue.map { ($0, timestampEchoReply) } }
        set {
            timestampValue = newValue?.value
            timestampEchoReply = newValue?.echoReply ?? 0
        }
    }
    var timestampValue: UInt32?
    var timestampEchoReply: UInt32 = 0
    /// SACK blocks (kind 5), at most `maximumSACKBlocks`.
    public private(set) var sackBlocks = SACKBlockList()

    /// RFC 2018 §3: 40 option bytes hold at most 4 blocks (3 with timestamps).
    public static let maximumSACKBlocks = 4
    /// The TCP header holds at most 40 bytes of options (data offset ≤ 15).
    public static let maximumLength = 40

    /// No options.
    public init() {}

    public static func == (a: TCPOptions, b: TCPOptions) -> Bool {
        a.maximumSegmentSize == b.maximumSegmentSize && a.windowScale == b.windowScale
            && a.sackPermitted == b.sackPermitted && a.timestampValue == b.timestampValue
            && a.timestampEchoReply == b.timestampEchoReply && a.sackBlocks == b.sackBlocks
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(maximumSegmentSize)
        hasher.combine(windowScale)
        hasher.combine(sackPermitted)
        hasher.combine(timestampValue)
        hasher.combine(timestampEchoReply)
        hasher.combine(sackBlocks)
    }

    /// Adds a SACK block; returns false when the maximum is reached.
    @discardableResult
    public mutating func appendSACKBlock(_ block: SACKBlock) -> Bool {
        sackBlocks.append(block)
    }

    enum Kind {
        static let end: UInt8 = 0
        static let noOperation: UInt8 = 1
        static let maximumSegmentSize: UInt8 = 2
        static let windowScale: UInt8 = 3
        static let sackPermitted: UInt8 = 4
        static let sack: UInt8 = 5
        static let timestamps: UInt8 = 8
    }

    /// Parses an options field. Every option's length is checked against
    /// the field and against its kind's fixed length.
    public init(parsing field: Span<UInt8>) throws(TCPIPError) {
        var i = 0
        while i < field.count {
            let kind = field[i]
            if kind == Kind.end { break }
            if kind == Kind.noOperation {
                i += 1
                continue
            }
            guard i + 1 < field.count else { throw .malformedTCPOption(kind: kind) }
            let length = Int(field[i + 1])
            guard length >= 2, i + length <= field.count else { throw .malformedTCPOption(kind: kind) }
            let value = i + 2
            switch kind {
            case Kind.maximumSegmentSize:
                guard length == 4 else { throw .malformedTCPOption(kind: kind) }
                maximumSegmentSize = field.u16(at: value)
            case Kind.windowScale:
                guard length == 3 else { throw .malformedTCPOption(kind: kind) }
                windowScale = field[value]
            case Kind.sackPermitted:
                guard length == 2 else { throw .malformedTCPOption(kind: kind) }
                sackPermitted = true
            case Kind.sack:
                guard (length - 2) % 8 == 0, length > 2 else { throw .malformedTCPOption(kind: kind) }
                var offset = value
                while offset < i + length {
                    // Blocks past the list's capacity are skipped (append says false).
                    sackBlocks.append(SACKBlock(left: SequenceNumber(field.u32(at: offset)),
                                                right: SequenceNumber(field.u32(at: offset + 4))))
                    offset += 8
                }
            case Kind.timestamps:
                guard length == 10 else { throw .malformedTCPOption(kind: kind) }
                timestampValue = field.u32(at: value)
                timestampEchoReply = field.u32(at: value + 4)
            default:
                break
            }
            i += length
        }
    }

    /// Bytes of every option but the SACK blocks, NOP-aligned.
    var fixedLength: Int {
        var n = 0
        if maximumSegmentSize != nil { n += 4 }
        if timestampValue != nil { n += 12 }  // SACK-permitted or NOP NOP, then 10
        else if sackPermitted { n += 4 }  // NOP NOP + 2
        if windowScale != nil { n += 4 }  // NOP + 3
        return n
    }

    /// SACK blocks `emit` writes: as many as fit in the 40 option bytes
    /// beside the other options (RFC 2018 §3: three with timestamps), the
    /// first ones first — the receiver lists the most recent block first.
    public var sackBlocksThatFit: Int {
        let room = Self.maximumLength - fixedLength - 4  // NOP NOP kind length
        return room < 8 ? 0 : min(sackBlocks.count, room / 8)
    }

    /// Bytes `emit` writes: the options, NOP-padded to a multiple of 4.
    public var encodedLength: Int {
        let blocks = sackBlocksThatFit
        return fixedLength + (blocks > 0 ? 4 + 8 * blocks : 0)  // NOP NOP + 2 + blocks
    }

    /// Writes the options at `offset` in the layout Linux uses (MSS;
    /// SACK-permitted sharing the timestamps' alignment; window scale; SACK
    /// blocks), so captures compare byte for byte. The caller provides
    /// `encodedLength` bytes (never more than `maximumLength`: SACK blocks
    /// that would not fit are left out).
    public func emit(into buffer: inout MutableSpan<UInt8>, at offset: Int) {
        precondition(fixedLength <= Self.maximumLength, "TCP options exceed 40 bytes")
        var i = offset
        if let mss = maximumSegmentSize {
            buffer[i] = Kind.maximumSegmentSize; buffer[i + 1] = 4
            buffer.setU16(mss, at: i + 2)
            i += 4
        }
        if let value = timestampValue {
            if sackPermitted {
                buffer[i] = Kind.sackPermitted; buffer[i + 1] = 2
            } else {
                buffer[i] = Kind.noOperation; buffer[i + 1] = Kind.noOperation
            }
            buffer[i + 2] = Kind.timestamps; buffer[i + 3] = 10
            buffer.setU32(value, at: i + 4)
            buffer.setU32(timestampEchoReply, at: i + 8)
            i += 12
        } else if sackPermitted {
            buffer[i] = Kind.noOperation; buffer[i + 1] = Kind.noOperation
            buffer[i + 2] = Kind.sackPermitted; buffer[i + 3] = 2
            i += 4
        }
        if let shift = windowScale {
            buffer[i] = Kind.noOperation
            buffer[i + 1] = Kind.windowScale; buffer[i + 2] = 3; buffer[i + 3] = shift
            i += 4
        }
        let blocks = sackBlocksThatFit
        if blocks > 0 {
            buffer[i] = Kind.noOperation; buffer[i + 1] = Kind.noOperation
            buffer[i + 2] = Kind.sack; buffer[i + 3] = UInt8(2 + 8 * blocks)
            i += 4
            for index in 0..<blocks {
                let block = sackBlocks[index]
                buffer.setU32(block.left.rawValue, at: i)
                buffer.setU32(block.right.rawValue, at: i + 4)
                i += 8
            }
        }
    }
}

/// A checked view of a TCP segment (RFC 9293 §3.1): the data offset is
/// checked against the bytes present, the checksum verified with the IPv4
/// pseudo-header, and the options parsed, all at construction.
public struct TCPSegment: ~Escapable {
    enum Offset {
        static let sourcePort = 0
        static let destinationPort = 2
        static let sequenceNumber = 4
        static let acknowledgmentNumber = 8
        static let dataOffset = 12
        static let flags = 13
        static let window = 14
        static let checksum = 16
        static let urgentPointer = 18
    }

    /// The header without options.
    public static let minimumHeaderLength = 20

    /// The segment.
    public let bytes: Span<UInt8>
    /// Header length in bytes, options included.
    public let headerLength: Int
    /// The options, parsed.
    public let options: TCPOptions

    /// Checks and parses a segment carried from `source` to `destination`.
    @_lifetime(copy bytes)
    public init(checking bytes: Span<UInt8>, source: IPv4Address, destination: IPv4Address,
                verifyChecksum: Bool = true) throws(TCPIPError) {
        guard bytes.count >= Self.minimumHeaderLength else {
            throw .truncated(layer: .tcp, expected: Self.minimumHeaderLength, got: bytes.count)
        }
        let offset = Int(bytes[Offset.dataOffset] >> 4) * 4
        guard offset >= Self.minimumHeaderLength, offset <= bytes.count else {
            throw .badLength(layer: .tcp, stated: offset, available: bytes.count)
        }
        if verifyChecksum {
            var sum = IPv4Header.pseudoHeaderSum(source: source, destination: destination, protocol: IPProtocol.tcp,
                                                 length: bytes.count)
            sum.add(bytes)
            guard sum.checksum == 0 else { throw .badChecksum(.tcp) }
        }
        options = try TCPOptions(parsing: bytes.extracting(Self.minimumHeaderLength..<offset))
        headerLength = offset
        self.bytes = bytes
    }

    /// Source port.
    public var sourcePort: UInt16 { bytes.u16(at: Offset.sourcePort) }
    /// Destination port.
    public var destinationPort: UInt16 { bytes.u16(at: Offset.destinationPort) }
    /// Sequence number of the first byte (or of the SYN).
    public var sequenceNumber: SequenceNumber { SequenceNumber(bytes.u32(at: Offset.sequenceNumber)) }
    /// The next sequence number the sender expects (with ACK).
    public var acknowledgmentNumber: SequenceNumber { SequenceNumber(bytes.u32(at: Offset.acknowledgmentNumber)) }
    /// Control bits.
    public var flags: TCPFlags { TCPFlags(rawValue: bytes[Offset.flags]) }
    /// The window field, unscaled.
    public var window: UInt16 { bytes.u16(at: Offset.window) }
    /// The urgent pointer.
    public var urgentPointer: UInt16 { bytes.u16(at: Offset.urgentPointer) }
    /// The data.
    public var payload: Span<UInt8> {
        @_lifetime(copy self) get { bytes.extracting(headerLength...) }
    }
    /// Sequence space the segment occupies: data plus one for SYN and FIN.
    public var sequenceLength: Int {
        (bytes.count - headerLength) + (flags.contains(.syn) ? 1 : 0) + (flags.contains(.fin) ? 1 : 0)
    }
}

/// A TCP header to write.
public struct TCPHeader: Hashable, Sendable {
    /// Source port.
    public var sourcePort: UInt16
    /// Destination port.
    public var destinationPort: UInt16
    /// Sequence number.
    public var sequenceNumber: SequenceNumber
    /// Acknowledgment number.
    public var acknowledgmentNumber: SequenceNumber
    /// Control bits.
    public var flags: TCPFlags
    /// Window field (already scaled down).
    public var window: UInt16
    /// Urgent pointer.
    public var urgentPointer: UInt16 = 0
    /// Options.
    public var options: TCPOptions

    /// A header.
    public init(sourcePort: UInt16, destinationPort: UInt16, sequenceNumber: SequenceNumber,
                acknowledgmentNumber: SequenceNumber, flags: TCPFlags, window: UInt16, options: TCPOptions = TCPOptions()) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = acknowledgmentNumber
        self.flags = flags
        self.window = window
        self.options = options
    }

    /// Bytes of header `emit` writes, options included.
    public var length: Int { TCPSegment.minimumHeaderLength + options.encodedLength }

    /// What goes in the checksum field.
    public enum Checksum: Sendable {
        /// The checksum over the pseudo-header, the header and the payload.
        case full
        /// Only the folded pseudo-header sum (not complemented), for a
        /// device that completes the checksum (`ChecksumRequest`, virtio's
        /// NEEDS_CSUM, Linux's CHECKSUM_PARTIAL). The payload is not read.
        case partial
    }

    /// Writes the header at `offset` and the checksum over it and the
    /// `payloadLength` bytes already placed after it (or, with `.partial`,
    /// the pseudo-header sum the device starts from).
    public func emit(into buffer: inout MutableSpan<UInt8>, at offset: Int, payloadLength: Int,
                     source: IPv4Address, destination: IPv4Address, checksum: Checksum = .full) {
        typealias O = TCPSegment.Offset
        let headerLength = length
        buffer.setU16(sourcePort, at: offset + O.sourcePort)
        buffer.setU16(destinationPort, at: offset + O.destinationPort)
        buffer.setU32(sequenceNumber.rawValue, at: offset + O.sequenceNumber)
        buffer.setU32(acknowledgmentNumber.rawValue, at: offset + O.acknowledgmentNumber)
        buffer[offset + O.dataOffset] = UInt8(headerLength / 4) << 4
        buffer[offset + O.flags] = flags.rawValue
        buffer.setU16(window, at: offset + O.window)
        buffer.setU16(0, at: offset + O.checksum)
        buffer.setU16(urgentPointer, at: offset + O.urgentPointer)
        options.emit(into: &buffer, at: offset + TCPSegment.minimumHeaderLength)
        let total = headerLength + payloadLength
        var sum = IPv4Header.pseudoHeaderSum(source: source, destination: destination, protocol: IPProtocol.tcp, length: total)
        if checksum == .partial {
            buffer.setU16(sum.foldedSum, at: offset + O.checksum)
            return
        }
        sum.add(buffer.span.extracting(offset..<(offset + total)))
        buffer.setU16(sum.checksum, at: offset + O.checksum)
    }
}
