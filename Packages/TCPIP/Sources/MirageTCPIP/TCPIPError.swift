import MirageDevices

/// The one error type of `MirageTCPIP`. Decoding errors name what was wrong
/// with a frame; the stack counts each as a drop reason.
public enum TCPIPError: Error, Equatable, Sendable {
    /// Fewer bytes than the header or the stated length needs.
    case truncated(layer: Layer, expected: Int, got: Int)
    /// A length field smaller than its own header or larger than the
    /// enclosing packet.
    case badLength(layer: Layer, stated: Int, available: Int)
    /// A checksum that does not verify.
    case badChecksum(Layer)
    /// An IP version other than 4 in an IPv4 packet.
    case badVersion(UInt8)
    /// An ARP packet for a hardware or protocol type other than Ethernet/IPv4.
    case unsupportedARP(hardwareType: UInt16, protocolType: UInt16)
    /// A frame whose EtherType this stack does not handle.
    case unsupportedEtherType(UInt16)
    /// The device refused or could not take a frame.
    case device(DeviceError)
    /// A destination with no route.
    case noRoute(IPv4Address)
    /// A datagram larger than IPv4 can carry (RFC 791: 65,535 bytes in all).
    case datagramTooLarge(size: Int, limit: Int)
    /// A DHCP message without the magic cookie 99.130.83.99 (RFC 2131 §3).
    case badDHCPCookie(UInt32)
    /// A DHCP option whose length runs past the end of its field, or an
    /// option with a length its definition forbids (RFC 2132).
    case malformedDHCPOption(code: UInt8)
    /// A TCP option whose length is below 2, runs past the options, or is
    /// wrong for its kind (RFC 9293 §3.1, RFC 7323, RFC 2018).
    case malformedTCPOption(kind: UInt8)
    /// An address still being resolved whose pending queue is full.
    case pendingQueueFull(IPv4Address)
    /// A datagram was to leave with device offloads (checksum,
    /// segmentation) but cannot go straight to the device (its next hop is
    /// being resolved, so it would be queued as plain bytes); nothing was
    /// sent, and the caller sends it without offloads.
    case offloadUnavailable

    /// The protocol layer an error refers to.
    public enum Layer: Equatable, Sendable {
        case ethernet, arp, ipv4, icmp, udp, dhcp, tcp
    }
}
