/// What a network interface can do in hardware (or in the host kernel, for
/// tap with `IFF_VNET_HDR`, or in the backend, for virtio and Xen).
public struct OffloadCapabilities: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Received TCP/UDP checksums are verified by the device and flagged in
    /// `ReceiveMetadata.checksumVerified`.
    public static let receiveChecksum = OffloadCapabilities(rawValue: 1 << 0)
    /// The device completes a partial TCP/UDP checksum on transmit
    /// (`TransmitMetadata.checksum`).
    public static let transmitChecksum = OffloadCapabilities(rawValue: 1 << 1)
    /// The device segments large TCP/IPv4 frames (TSO/GSO).
    public static let tcpSegmentationIPv4 = OffloadCapabilities(rawValue: 1 << 2)
    /// The device segments large TCP/IPv6 frames.
    public static let tcpSegmentationIPv6 = OffloadCapabilities(rawValue: 1 << 3)
    /// The device segments large UDP frames (USO).
    public static let udpSegmentation = OffloadCapabilities(rawValue: 1 << 4)
    /// The device may hand over coalesced TCP frames larger than the MTU
    /// (GRO/LRO), described by `ReceiveMetadata.segmentation`.
    public static let receiveCoalescing = OffloadCapabilities(rawValue: 1 << 5)
}

/// The transport a large frame carries, for segmentation offload.
public enum SegmentationKind: UInt8, Hashable, Sendable {
    /// TCP over IPv4.
    case tcpIPv4
    /// TCP over IPv6.
    case tcpIPv6
    /// UDP (either IP version).
    case udp

    /// The capability a device announces to segment this transport.
    public var capability: OffloadCapabilities {
        switch self {
        case .tcpIPv4: .tcpSegmentationIPv4
        case .tcpIPv6: .tcpSegmentationIPv6
        case .udp: .udpSegmentation
        }
    }
}

/// A frame larger than the MTU that the device splits on transmit, or that
/// the device coalesced on receive.
public struct Segmentation: Hashable, Sendable {
    /// The transport carried.
    public var kind: SegmentationKind
    /// Payload bytes per segment on the wire (the MSS for TCP).
    public var segmentSize: UInt16
    /// Bytes of Ethernet, IP and transport headers repeated in each segment.
    public var headerLength: UInt16

    /// A segmentation description.
    public init(kind: SegmentationKind, segmentSize: UInt16, headerLength: UInt16) {
        self.kind = kind
        self.segmentSize = segmentSize
        self.headerLength = headerLength
    }
}

/// A request to the device to finish a transport checksum: the stack stores
/// the pseudo-header sum at `start + offset` and the device sums from
/// `start` to the end of the frame (virtio's `csum_start`/`csum_offset`).
public struct ChecksumRequest: Hashable, Sendable {
    /// Offset from the start of the frame where summing begins.
    public var start: UInt16
    /// Offset from `start` where the checksum field lies.
    public var offset: UInt16

    /// A checksum request.
    public init(start: UInt16, offset: UInt16) {
        self.start = start
        self.offset = offset
    }
}

/// What the device knows about a received frame.
public struct ReceiveMetadata: Hashable, Sendable {
    /// The transport checksum was verified (or need not be: a local
    /// producer that never computed it). The stack may skip checking it.
    public var checksumVerified: Bool
    /// Set when the frame is a coalesced run of segments larger than the MTU.
    public var segmentation: Segmentation?

    /// Receive metadata.
    public init(checksumVerified: Bool = false, segmentation: Segmentation? = nil) {
        self.checksumVerified = checksumVerified
        self.segmentation = segmentation
    }

    /// Nothing known: checksums must be verified by the stack.
    public static let none = ReceiveMetadata()
}

/// What the stack asks of the device for a frame it transmits. Only
/// capabilities the device announced in `offloads` may be requested.
public struct TransmitMetadata: Hashable, Sendable {
    /// The device completes the transport checksum.
    public var checksum: ChecksumRequest?
    /// The device segments the frame.
    public var segmentation: Segmentation?

    /// Transmit metadata.
    public init(checksum: ChecksumRequest? = nil, segmentation: Segmentation? = nil) {
        self.checksum = checksum
        self.segmentation = segmentation
    }

    /// A complete frame: all checksums computed, no segmentation.
    public static let none = TransmitMetadata()
}

/// Counters every network interface keeps.
public struct InterfaceStatistics: Hashable, Sendable {
    /// Frames delivered to the handler.
    public var receivedFrames: UInt64 = 0
    /// Bytes delivered to the handler.
    public var receivedBytes: UInt64 = 0
    /// Frames lost on receive (queue full, malformed device header, no handler).
    public var receiveDropped: UInt64 = 0
    /// Frames accepted by `transmit`.
    public var transmittedFrames: UInt64 = 0
    /// Bytes accepted by `transmit`.
    public var transmittedBytes: UInt64 = 0
    /// Frames the device accepted but failed to send.
    public var transmitDropped: UInt64 = 0
    /// `transmit` calls answered with `wouldBlock`.
    public var transmitWouldBlock: UInt64 = 0

    /// All counters zero.
    public init() {}
}

/// Receives the events of a network interface.
///
/// Received frames arrive in batches: one `frameReceived` call per frame,
/// then one `receiveBatchEnded`, which is the stack's moment to flush (one
/// ACK per batch, output written together). The frame is borrowed: its
/// bytes are valid only during the call (they are the tap read buffer, a
/// virtio descriptor or a Xen grant page). A handler that keeps data copies
/// it once.
public protocol NetworkInterfaceHandler: AnyObject {
    /// One received Ethernet frame (destination MAC first, no FCS).
    func frameReceived(_ frame: Span<UInt8>, metadata: ReceiveMetadata)
    /// The current batch is complete.
    func receiveBatchEnded()
    /// The device has room again after a `transmit` failed with
    /// `DeviceError.wouldBlock`. Sent once per such failure episode.
    func transmitReady()
}

/// An Ethernet network interface: a tap device, a virtio-net queue pair, a
/// Xen netfront, an in-memory link, or a wrapper (pcap, fault injection).
///
/// Transmit fills a buffer the device owns, in place: the device reserves
/// whatever headroom it needs (a virtio-net header, a Xen request) before
/// the bytes handed to `fill`, so nothing is copied between stack and ring.
public protocol NetworkInterface: AnyObject {
    /// The interface's own address.
    var macAddress: MACAddress { get }
    /// The largest IP packet (Ethernet payload) the link carries unsegmented.
    var mtu: Int { get }
    /// Offloads the device performs.
    var offloads: OffloadCapabilities { get }
    /// Counters.
    var statistics: InterfaceStatistics { get }
    /// Where received frames and readiness go. Set it before the device is run.
    var handler: (any NetworkInterfaceHandler)? { get set }

    /// Transmits one frame of at most `length` bytes: the device hands
    /// `fill` a buffer of exactly `length` bytes, `fill` writes the frame and
    /// returns how many bytes it used (0 cancels the frame).
    ///
    /// Throws `wouldBlock` when the device's ring is full (a later
    /// `transmitReady` says when to retry), `frameTooLarge` when `length`
    /// exceeds `mtu + 18` (or the segmentation limit with `segmentation` set),
    /// and `deviceClosed` after the device failed.
    func transmit(length: Int, metadata: TransmitMetadata, _ fill: (inout MutableSpan<UInt8>) -> Int) throws(DeviceError)
}

/// Ethernet framing sizes used when checking frame lengths.
public enum EthernetFraming {
    /// Destination, source and EtherType (IEEE 802.3 §3.1.1).
    public static let headerLength = 14
    /// One 802.1Q tag.
    public static let vlanTagLength = 4
    /// The largest frame for `mtu`: header plus one VLAN tag plus payload.
    public static func maximumFrameLength(mtu: Int) -> Int { mtu + headerLength + vlanTagLength }
    /// The largest frame any segmentation offload can carry (64 KiB of IP
    /// plus the Ethernet header), as Linux's GSO limit.
    public static let maximumSegmentationFrameLength = 65_535 + headerLength + vlanTagLength
}
