import MirageDevices

/// EtherType values this stack knows (IEEE 802.3, IANA registry).
public enum EtherType {
    /// IPv4 (RFC 894).
    public static let ipv4: UInt16 = 0x0800
    /// ARP (RFC 826).
    public static let arp: UInt16 = 0x0806
    /// An IEEE 802.1Q tag follows.
    public static let vlan: UInt16 = 0x8100
    /// An IEEE 802.1ad (QinQ) service tag follows.
    public static let serviceVLAN: UInt16 = 0x88A8
    /// IPv6 (RFC 2464).
    public static let ipv6: UInt16 = 0x86DD
}

/// A checked view of an Ethernet II frame (no FCS), with at most one
/// IEEE 802.1Q tag. After `init(checking:)` no accessor can trap.
public struct EthernetFrame: ~Escapable {
    enum Offset {
        static let destination = 0
        static let source = 6
        static let etherType = 12
        static let tagControl = 14
        static let taggedEtherType = 16
    }

    /// Destination, source and EtherType.
    public static let headerLength = 14
    /// Header plus one 802.1Q tag.
    public static let taggedHeaderLength = 18

    /// The whole frame.
    public let bytes: Span<UInt8>
    /// Where the payload starts: 14, or 18 after an 802.1Q tag.
    public let headerLength: Int

    /// Checks that the header (and tag, if any) is present. A frame with
    /// stacked tags (QinQ, or 802.1Q twice) is refused rather than misread.
    @_lifetime(copy bytes)
    public init(checking bytes: Span<UInt8>) throws(TCPIPError) {
        guard bytes.count >= Self.headerLength else {
            throw .truncated(layer: .ethernet, expected: Self.headerLength, got: bytes.count)
        }
        let outer = bytes.u16(at: Offset.etherType)
        if outer == EtherType.serviceVLAN { throw .unsupportedEtherType(outer) }
        if outer == EtherType.vlan {
            guard bytes.count >= Self.taggedHeaderLength else {
                throw .truncated(layer: .ethernet, expected: Self.taggedHeaderLength, got: bytes.count)
            }
            let inner = bytes.u16(at: Offset.taggedEtherType)
            if inner == EtherType.vlan || inner == EtherType.serviceVLAN { throw .unsupportedEtherType(inner) }
            headerLength = Self.taggedHeaderLength
        } else {
            headerLength = Self.headerLength
        }
        self.bytes = bytes
    }

    /// The destination address.
    public var destination: MACAddress { readMAC(bytes, Offset.destination) }
    /// The source address.
    public var source: MACAddress { readMAC(bytes, Offset.source) }
    /// The EtherType of the payload (inside the tag when tagged).
    public var etherType: UInt16 {
        bytes.u16(at: headerLength == Self.taggedHeaderLength ? Offset.taggedEtherType : Offset.etherType)
    }
    /// The 802.1Q VLAN identifier (12 bits), when tagged.
    public var vlanID: UInt16? {
        headerLength == Self.taggedHeaderLength ? bytes.u16(at: Offset.tagControl) & 0x0FFF : nil
    }
    /// The bytes after the header (including any Ethernet padding).
    public var payload: Span<UInt8> {
        @_lifetime(copy self) get { bytes.extracting(headerLength...) }
    }
}

func readMAC(_ bytes: Span<UInt8>, _ at: Int) -> MACAddress {
    MACAddress(bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3], bytes[at + 4], bytes[at + 5])
}

/// An Ethernet II header to write (untagged).
public struct EthernetHeader: Hashable, Sendable {
    /// Where the frame goes.
    public var destination: MACAddress
    /// Who sends it.
    public var source: MACAddress
    /// What the payload is.
    public var etherType: UInt16

    /// A header.
    public init(destination: MACAddress, source: MACAddress, etherType: UInt16) {
        self.destination = destination
        self.source = source
        self.etherType = etherType
    }

    /// Bytes `emit` writes.
    public static let length = EthernetFrame.headerLength

    /// Writes the header at `offset`; the caller provides `length` bytes.
    public func emit(into buffer: inout MutableSpan<UInt8>, at offset: Int = 0) {
        destination.write(to: &buffer, at: offset + EthernetFrame.Offset.destination)
        source.write(to: &buffer, at: offset + EthernetFrame.Offset.source)
        buffer.setU16(etherType, at: offset + EthernetFrame.Offset.etherType)
    }
}
