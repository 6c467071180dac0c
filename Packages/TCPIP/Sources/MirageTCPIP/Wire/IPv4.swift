import MirageDevices

/// IP protocol numbers (IANA).
public enum IPProtocol {
    /// ICMP (RFC 792).
    public static let icmp: UInt8 = 1
    /// TCP (RFC 9293).
    public static let tcp: UInt8 = 6
    /// UDP (RFC 768).
    public static let udp: UInt8 = 17
}

/// A checked view of an IPv4 packet (RFC 791 §3.1). Construction checks the
/// version, the header length against the bytes present, and the total
/// length against both; options are skipped, never interpreted.
public struct IPv4Packet: ~Escapable {
    enum Offset {
        static let versionAndIHL = 0
        static let typeOfService = 1
        static let totalLength = 2
        static let identification = 4
        static let flagsAndFragmentOffset = 6
        static let timeToLive = 8
        static let `protocol` = 9
        static let checksum = 10
        static let source = 12
        static let destination = 16
    }

    /// The fixed header without options (RFC 791 §3.1: IHL ≥ 5 words).
    public static let minimumHeaderLength = 20
    /// The largest IPv4 packet (RFC 791 §3.1: Total Length is 16 bits).
    public static let maximumLength = 65_535

    static let dontFragmentBit: UInt16 = 0x4000
    static let moreFragmentsBit: UInt16 = 0x2000
    static let fragmentOffsetMask: UInt16 = 0x1FFF

    /// The packet, cut to its total length (Ethernet padding removed).
    public let bytes: Span<UInt8>
    /// Header length in bytes, options included.
    public let headerLength: Int

    /// Checks the header; verifies the header checksum unless
    /// `verifyChecksum` is false (the device already did).
    @_lifetime(copy bytes)
    public init(checking bytes: Span<UInt8>, verifyChecksum: Bool = true) throws(TCPIPError) {
        guard bytes.count >= Self.minimumHeaderLength else {
            throw .truncated(layer: .ipv4, expected: Self.minimumHeaderLength, got: bytes.count)
        }
        let first = bytes[Offset.versionAndIHL]
        guard first >> 4 == 4 else { throw .badVersion(first >> 4) }
        let ihl = Int(first & 0x0F) * 4
        guard ihl >= Self.minimumHeaderLength else { throw .badLength(layer: .ipv4, stated: ihl, available: bytes.count) }
        guard ihl <= bytes.count else { throw .truncated(layer: .ipv4, expected: ihl, got: bytes.count) }
        let total = Int(bytes.u16(at: Offset.totalLength))
        guard total >= ihl, total <= bytes.count else { throw .badLength(layer: .ipv4, stated: total, available: bytes.count) }
        if verifyChecksum {
            guard InternetChecksum.of(bytes.extracting(0..<ihl)) == 0 else { throw .badChecksum(.ipv4) }
        }
        self.bytes = bytes.extracting(0..<total)
        headerLength = ihl
    }

    /// Type of service (DSCP and ECN).
    public var typeOfService: UInt8 { bytes[Offset.typeOfService] }
    /// Total length in bytes.
    public var totalLength: Int { bytes.count }
    /// The identification field.
    public var identification: UInt16 { bytes.u16(at: Offset.identification) }
    /// The DF flag.
    public var dontFragment: Bool { bytes.u16(at: Offset.flagsAndFragmentOffset) & Self.dontFragmentBit != 0 }
    /// The MF flag.
    public var moreFragments: Bool { bytes.u16(at: Offset.flagsAndFragmentOffset) & Self.moreFragmentsBit != 0 }
    /// Offset of this fragment's data in the datagram, in bytes.
    public var fragmentOffset: Int { Int(bytes.u16(at: Offset.flagsAndFragmentOffset) & Self.fragmentOffsetMask) * 8 }
    /// Whether the packet is a fragment (MF set or a non-zero offset).
    public var isFragment: Bool { moreFragments || fragmentOffset != 0 }
    /// Time to live.
    public var timeToLive: UInt8 { bytes[Offset.timeToLive] }
    /// The payload's protocol number.
    public var `protocol`: UInt8 { bytes[Offset.protocol] }
    /// Source address.
    public var source: IPv4Address { IPv4Address(rawValue: bytes.u32(at: Offset.source)) }
    /// Destination address.
    public var destination: IPv4Address { IPv4Address(rawValue: bytes.u32(at: Offset.destination)) }
    /// The header, options included (ICMP errors quote it).
    public var header: Span<UInt8> {
        @_lifetime(copy self) get { bytes.extracting(0..<headerLength) }
    }
    /// The payload, `totalLength - headerLength` bytes.
    public var payload: Span<UInt8> {
        @_lifetime(copy self) get { bytes.extracting(headerLength...) }
    }
}

/// An IPv4 header to write. We never send options, so it is 20 bytes.
public struct IPv4Header: Hashable, Sendable {
    /// Source address.
    public var source: IPv4Address
    /// Destination address.
    public var destination: IPv4Address
    /// Payload protocol.
    public var `protocol`: UInt8
    /// Bytes of payload after the header.
    public var payloadLength: Int
    /// Time to live; 64 is the usual default (RFC 1700).
    public var timeToLive: UInt8
    /// Identification (RFC 6864: unique per source, destination and
    /// protocol while fragments may be in flight; may be anything for
    /// atomic datagrams).
    public var identification: UInt16
    /// The DF flag.
    public var dontFragment: Bool
    /// The MF flag.
    public var moreFragments: Bool
    /// Fragment offset in bytes; a multiple of 8.
    public var fragmentOffset: Int
    /// DSCP and ECN.
    public var typeOfService: UInt8

    /// A header for an unfragmented datagram.
    public init(source: IPv4Address, destination: IPv4Address, protocol: UInt8, payloadLength: Int,
                timeToLive: UInt8 = 64, identification: UInt16 = 0, dontFragment: Bool = false,
                moreFragments: Bool = false, fragmentOffset: Int = 0, typeOfService: UInt8 = 0) {
        self.source = source
        self.destination = destination
        self.protocol = `protocol`
        self.payloadLength = payloadLength
        self.timeToLive = timeToLive
        self.identification = identification
        self.dontFragment = dontFragment
        self.moreFragments = moreFragments
        self.fragmentOffset = fragmentOffset
        self.typeOfService = typeOfService
    }

    /// Bytes `emit` writes.
    public static let length = IPv4Packet.minimumHeaderLength

    /// Writes the header with its checksum at `offset`. The total length
    /// must fit 16 bits and the fragment offset 13 bits of 8-byte units:
    /// the caller (the stack) checks sizes before building a header.
    public func emit(into buffer: inout MutableSpan<UInt8>, at offset: Int = 0) {
        precondition(payloadLength >= 0 && payloadLength + Self.length <= IPv4Packet.maximumLength, "IPv4 datagram too large")
        precondition(fragmentOffset >= 0 && fragmentOffset % 8 == 0 && fragmentOffset / 8 <= 0x1FFF, "bad fragment offset")
        typealias O = IPv4Packet.Offset
        buffer[offset + O.versionAndIHL] = 0x45
        buffer[offset + O.typeOfService] = typeOfService
        buffer.setU16(UInt16(Self.length + payloadLength), at: offset + O.totalLength)
        buffer.setU16(identification, at: offset + O.identification)
        var flags = UInt16(fragmentOffset / 8)
        if dontFragment { flags |= IPv4Packet.dontFragmentBit }
        if moreFragments { flags |= IPv4Packet.moreFragmentsBit }
        buffer.setU16(flags, at: offset + O.flagsAndFragmentOffset)
        buffer[offset + O.timeToLive] = timeToLive
        buffer[offset + O.protocol] = `protocol`
        buffer.setU16(0, at: offset + O.checksum)
        buffer.setU32(source.rawValue, at: offset + O.source)
        buffer.setU32(destination.rawValue, at: offset + O.destination)
        var sum = InternetChecksum()
        sum.add(buffer.span.extracting(offset..<(offset + Self.length)))
        buffer.setU16(sum.checksum, at: offset + O.checksum)
    }

    /// The pseudo-header sum for TCP and UDP checksums (RFC 768, RFC 9293 §3.1).
    public static func pseudoHeaderSum(source: IPv4Address, destination: IPv4Address, protocol: UInt8, length: Int) -> InternetChecksum {
        var sum = InternetChecksum()
        sum.add(source.rawValue)
        sum.add(destination.rawValue)
        sum.add(UInt16(`protocol`))
        sum.add(UInt16(truncatingIfNeeded: length))
        return sum
    }
}
