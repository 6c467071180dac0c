import MirageDevices

/// A checked view of an ARP packet for Ethernet and IPv4 (RFC 826): the
/// only combination this stack resolves.
public struct ARPPacket: ~Escapable {
    enum Offset {
        static let hardwareType = 0
        static let protocolType = 2
        static let hardwareLength = 4
        static let protocolLength = 5
        static let operation = 6
        static let senderHardware = 8
        static let senderProtocol = 14
        static let targetHardware = 18
        static let targetProtocol = 24
    }

    /// Length of an Ethernet/IPv4 ARP packet.
    public static let length = 28
    /// ARP hardware type for Ethernet.
    public static let hardwareEthernet: UInt16 = 1

    let bytes: Span<UInt8>

    /// Checks length, hardware and protocol types and address lengths.
    @_lifetime(copy bytes)
    public init(checking bytes: Span<UInt8>) throws(TCPIPError) {
        guard bytes.count >= Self.length else { throw .truncated(layer: .arp, expected: Self.length, got: bytes.count) }
        let htype = bytes.u16(at: Offset.hardwareType), ptype = bytes.u16(at: Offset.protocolType)
        guard htype == Self.hardwareEthernet, ptype == EtherType.ipv4,
              bytes[Offset.hardwareLength] == 6, bytes[Offset.protocolLength] == 4
        else { throw .unsupportedARP(hardwareType: htype, protocolType: ptype) }
        self.bytes = bytes
    }

    /// The operation: 1 request, 2 reply.
    public var operation: UInt16 { bytes.u16(at: Offset.operation) }
    /// The sender's MAC address.
    public var senderHardware: MACAddress { readMAC(bytes, Offset.senderHardware) }
    /// The sender's IPv4 address.
    public var senderProtocol: IPv4Address { IPv4Address(rawValue: bytes.u32(at: Offset.senderProtocol)) }
    /// The target's MAC address (zero in requests).
    public var targetHardware: MACAddress { readMAC(bytes, Offset.targetHardware) }
    /// The target's IPv4 address.
    public var targetProtocol: IPv4Address { IPv4Address(rawValue: bytes.u32(at: Offset.targetProtocol)) }
}

/// An ARP message to write or a parsed one.
public struct ARPMessage: Hashable, Sendable {
    /// ARP operations (RFC 826).
    public enum Operation: UInt16, Sendable {
        /// Who has `targetProtocol`?
        case request = 1
        /// `senderProtocol` is at `senderHardware`.
        case reply = 2
    }

    /// Request or reply.
    public var operation: Operation
    /// Sender MAC.
    public var senderHardware: MACAddress
    /// Sender IPv4 address.
    public var senderProtocol: IPv4Address
    /// Target MAC (zero in a request).
    public var targetHardware: MACAddress
    /// Target IPv4 address.
    public var targetProtocol: IPv4Address

    /// A message.
    public init(operation: Operation, senderHardware: MACAddress, senderProtocol: IPv4Address,
                targetHardware: MACAddress, targetProtocol: IPv4Address) {
        self.operation = operation
        self.senderHardware = senderHardware
        self.senderProtocol = senderProtocol
        self.targetHardware = targetHardware
        self.targetProtocol = targetProtocol
    }

    /// Parses a checked packet; nil for an operation other than request or reply.
    public init?(_ packet: borrowing ARPPacket) {
        guard let op = Operation(rawValue: packet.operation) else { return nil }
        self.init(operation: op, senderHardware: packet.senderHardware, senderProtocol: packet.senderProtocol,
                  targetHardware: packet.targetHardware, targetProtocol: packet.targetProtocol)
    }

    /// Bytes `emit` writes.
    public static let length = ARPPacket.length

    /// Writes the packet at `offset`.
    public func emit(into buffer: inout MutableSpan<UInt8>, at offset: Int = 0) {
        typealias O = ARPPacket.Offset
        buffer.setU16(ARPPacket.hardwareEthernet, at: offset + O.hardwareType)
        buffer.setU16(EtherType.ipv4, at: offset + O.protocolType)
        buffer[offset + O.hardwareLength] = 6
        buffer[offset + O.protocolLength] = 4
        buffer.setU16(operation.rawValue, at: offset + O.operation)
        senderHardware.write(to: &buffer, at: offset + O.senderHardware)
        buffer.setU32(senderProtocol.rawValue, at: offset + O.senderProtocol)
        targetHardware.write(to: &buffer, at: offset + O.targetHardware)
        buffer.setU32(targetProtocol.rawValue, at: offset + O.targetProtocol)
    }
}
