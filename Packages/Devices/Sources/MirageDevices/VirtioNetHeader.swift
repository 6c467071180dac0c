/// The header a virtio-net device (and a Linux tap opened with
/// `IFF_VNET_HDR`) puts before every frame: `struct virtio_net_hdr_v1`
/// (virtio 1.0 §5.1.6), 12 bytes, every multi-byte field little-endian.
///
/// ```
/// 0  flags u8   1 gso_type u8   2 hdr_len le16   4 gso_size le16
/// 6  csum_start le16   8 csum_offset le16   10 num_buffers le16
/// ```
///
/// A plain value: `init(parsing:)` reads one, `write(to:at:)` writes one,
/// and the two conversions map it to and from the device-neutral
/// `ReceiveMetadata` / `TransmitMetadata`, checking it against the frame it
/// describes so nothing a peer sends can trap.
public struct VirtioNetHeader: Hashable, Sendable {
    /// Encoded length of `struct virtio_net_hdr_v1`.
    public static let length = 12

    /// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the transport checksum is partial —
    /// the field at `checksumStart + checksumOffset` holds the pseudo-header
    /// sum, and the sum from `checksumStart` to the end must be folded in.
    public static let flagNeedsChecksum: UInt8 = 1
    /// `VIRTIO_NET_HDR_F_DATA_VALID`: the device verified the checksum.
    public static let flagDataValid: UInt8 = 2

    /// `VIRTIO_NET_HDR_GSO_NONE`.
    public static let gsoNone: UInt8 = 0
    /// `VIRTIO_NET_HDR_GSO_TCPV4`.
    public static let gsoTCPv4: UInt8 = 1
    /// `VIRTIO_NET_HDR_GSO_UDP`: UDP fragmentation offload (UFO), which the
    /// device-neutral metadata does not describe; never produced here and
    /// refused on receive.
    public static let gsoUDPFragmentation: UInt8 = 3
    /// `VIRTIO_NET_HDR_GSO_TCPV6`.
    public static let gsoTCPv6: UInt8 = 4
    /// `VIRTIO_NET_HDR_GSO_UDP_L4`: UDP segmentation (USO).
    public static let gsoUDPSegmentation: UInt8 = 5
    /// `VIRTIO_NET_HDR_GSO_ECN`: or-ed into `gsoType` when the coalesced
    /// TCP segments carry CWR; accepted and ignored on receive.
    public static let gsoECN: UInt8 = 0x80

    /// Field offsets (virtio 1.0 §5.1.6).
    static let flagsOffset = 0
    static let gsoTypeOffset = 1
    static let headerLengthOffset = 2
    static let gsoSizeOffset = 4
    static let checksumStartOffset = 6
    static let checksumOffsetOffset = 8
    static let bufferCountOffset = 10
    /// Bytes of the checksum field `checksumOffset` points at.
    static let checksumFieldLength = 2

    /// `flags`.
    public var flags: UInt8
    /// `gso_type`, ECN bit included.
    public var gsoType: UInt8
    /// `hdr_len`: bytes of headers before the segmented payload.
    public var headerLength: UInt16
    /// `gso_size`: payload bytes per segment.
    public var gsoSize: UInt16
    /// `csum_start`: offset in the frame where checksumming starts.
    public var checksumStart: UInt16
    /// `csum_offset`: offset from `checksumStart` of the checksum field.
    public var checksumOffset: UInt16
    /// `num_buffers`: descriptor chains of a merged receive buffer; 0 for
    /// a tap and on transmit.
    public var bufferCount: UInt16

    /// A header with the given fields (all zero by default: a complete
    /// frame, no offload).
    public init(
        flags: UInt8 = 0, gsoType: UInt8 = 0, headerLength: UInt16 = 0, gsoSize: UInt16 = 0,
        checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0, bufferCount: UInt16 = 0
    ) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
        self.bufferCount = bufferCount
    }

    /// Reads a header from the first `length` bytes of `bytes`.
    /// Throws `malformedDeviceHeader` when fewer bytes are there.
    public init(parsing bytes: Span<UInt8>) throws(DeviceError) {
        guard bytes.count >= Self.length else {
            throw .malformedDeviceHeader("virtio-net header: \(bytes.count) bytes, need \(Self.length)")
        }
        func le16(_ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
        flags = bytes[Self.flagsOffset]
        gsoType = bytes[Self.gsoTypeOffset]
        headerLength = le16(Self.headerLengthOffset)
        gsoSize = le16(Self.gsoSizeOffset)
        checksumStart = le16(Self.checksumStartOffset)
        checksumOffset = le16(Self.checksumOffsetOffset)
        bufferCount = le16(Self.bufferCountOffset)
    }

    /// Writes the header's `length` bytes at `offset`; the caller provides
    /// the room (a device's headroom).
    public func write(to bytes: inout MutableSpan<UInt8>, at offset: Int) {
        precondition(offset >= 0 && bytes.count - offset >= Self.length, "no room for a virtio-net header")
        func le16(_ value: UInt16, _ at: Int) {
            bytes[offset + at] = UInt8(truncatingIfNeeded: value)
            bytes[offset + at + 1] = UInt8(truncatingIfNeeded: value >> 8)
        }
        bytes[offset + Self.flagsOffset] = flags
        bytes[offset + Self.gsoTypeOffset] = gsoType
        le16(headerLength, Self.headerLengthOffset)
        le16(gsoSize, Self.gsoSizeOffset)
        le16(checksumStart, Self.checksumStartOffset)
        le16(checksumOffset, Self.checksumOffsetOffset)
        le16(bufferCount, Self.bufferCountOffset)
    }

    /// What this header says about a received frame of `frameLength` bytes.
    ///
    /// `NEEDS_CSUM` counts as verified: such a frame comes from the local
    /// host (another guest or the host's own stack) and crossed no wire, and
    /// its checksum field holds only the pseudo-header sum, so checking it
    /// would fail. `DATA_VALID` means the device checked it.
    ///
    /// Throws `malformedDeviceHeader` for an unknown or unsupported
    /// `gso_type`, a GSO type without `gso_size`, or a checksum position or
    /// `hdr_len` beyond the frame.
    public func receiveMetadata(frameLength: Int) throws(DeviceError) -> ReceiveMetadata {
        var metadata = ReceiveMetadata()
        if flags & Self.flagNeedsChecksum != 0 {
            try Self.checkChecksumPosition(start: checksumStart, offset: checksumOffset, frameLength: frameLength)
            metadata.checksumVerified = true
        }
        if flags & Self.flagDataValid != 0 { metadata.checksumVerified = true }
        let type = gsoType & ~Self.gsoECN
        guard type != Self.gsoNone else { return metadata }
        let kind: SegmentationKind
        switch type {
        case Self.gsoTCPv4: kind = .tcpIPv4
        case Self.gsoTCPv6: kind = .tcpIPv6
        case Self.gsoUDPSegmentation: kind = .udp
        case Self.gsoUDPFragmentation:
            throw .malformedDeviceHeader("virtio-net header: gso_type UDP (fragmentation offload) is not supported")
        default:
            throw .malformedDeviceHeader("virtio-net header: unknown gso_type \(gsoType)")
        }
        guard gsoSize > 0 else {
            throw .malformedDeviceHeader("virtio-net header: gso_type \(gsoType) with gso_size 0")
        }
        guard Int(headerLength) <= frameLength else {
            throw .malformedDeviceHeader("virtio-net header: hdr_len \(headerLength) beyond the \(frameLength)-byte frame")
        }
        metadata.segmentation = Segmentation(kind: kind, segmentSize: gsoSize, headerLength: headerLength)
        return metadata
    }

    /// The header that asks a device for `metadata` on a frame of
    /// `frameLength` bytes (all zero for `.none`).
    ///
    /// Throws `invalidArgument` when the request cannot be expressed or is
    /// inconsistent: a checksum position beyond the frame, segmentation
    /// without a checksum request (virtio 1.0 §5.1.6.2: a driver sending a
    /// GSO frame MUST set NEEDS_CSUM), a segment size of 0, or a header
    /// length beyond the frame.
    public init(transmit metadata: TransmitMetadata, frameLength: Int) throws(DeviceError) {
        self.init()
        if let checksum = metadata.checksum {
            do {
                try Self.checkChecksumPosition(start: checksum.start, offset: checksum.offset, frameLength: frameLength)
            } catch {
                throw .invalidArgument("checksum request start \(checksum.start) offset \(checksum.offset) beyond the \(frameLength)-byte frame")
            }
            flags = Self.flagNeedsChecksum
            checksumStart = checksum.start
            checksumOffset = checksum.offset
        }
        guard let segmentation = metadata.segmentation else { return }
        guard metadata.checksum != nil else {
            throw .invalidArgument("segmentation needs a checksum request (virtio 1.0 §5.1.6.2)")
        }
        guard segmentation.segmentSize > 0 else {
            throw .invalidArgument("segmentation with a segment size of 0")
        }
        guard Int(segmentation.headerLength) <= frameLength else {
            throw .invalidArgument("segmentation header length \(segmentation.headerLength) beyond the \(frameLength)-byte frame")
        }
        switch segmentation.kind {
        case .tcpIPv4: gsoType = Self.gsoTCPv4
        case .tcpIPv6: gsoType = Self.gsoTCPv6
        case .udp: gsoType = Self.gsoUDPSegmentation
        }
        gsoSize = segmentation.segmentSize
        headerLength = segmentation.headerLength
    }

    /// The 2-byte checksum field at `start + offset` lies inside the frame.
    private static func checkChecksumPosition(start: UInt16, offset: UInt16, frameLength: Int) throws(DeviceError) {
        // Int arithmetic on two UInt16 values cannot overflow.
        guard Int(start) + Int(offset) + checksumFieldLength <= frameLength else {
            throw .malformedDeviceHeader("virtio-net header: checksum at \(start)+\(offset) beyond the \(frameLength)-byte frame")
        }
    }
}
