import CMiragePlatform
import Glibc
import MirageDevices

/// A Linux tap device (`/dev/net/tun`, `IFF_TAP | IFF_NO_PI`) as a
/// `NetworkInterface`: the kernel's side of the link is the interface
/// `name`; our side is this object, with its own MAC address, driven by an
/// `EventLoop`.
///
/// Receive: when the descriptor is readable the device reads up to
/// `maximumFramesPerWakeup` frames into one reusable buffer, calls
/// `frameReceived` for each with a span borrowed from that buffer (no
/// allocation per frame), then `receiveBatchEnded` once.
///
/// Transmit: `transmit` hands `fill` a span over one reusable buffer and
/// writes the frame with one `write(2)`. When the kernel refuses (EAGAIN) it
/// arms write interest and throws `wouldBlock`; further `transmit` calls
/// throw `wouldBlock` at once until the descriptor is writable again, which
/// is reported once through `transmitReady`.
///
/// With `virtioNetHeader: true` (IFF_VNET_HDR) every frame carries a 12-byte
/// `VirtioNetHeader` in the buffers' headroom, and the kernel is told
/// (TUNSETOFFLOAD) that we take partial checksums and large TCP frames: it
/// hands us coalesced TCP runs up to 64 KiB whose checksums need no check
/// (`ReceiveMetadata`), and takes from us frames whose checksum it completes
/// and large TCP frames it segments (`TransmitMetadata`).
///
/// Everything runs on the loop's thread: create, use and close the device
/// there. The loop holds the device until `close()`.
public final class TapInterface: NetworkInterface {
    /// The MTU used when none is given: Ethernet's.
    public static let defaultMTU = 1500
    /// The smallest MTU accepted: IPv4's minimum (RFC 791, "Every internet
    /// module must be able to forward a datagram of 68 octets").
    public static let minimumMTU = 68
    /// The largest MTU accepted: the largest IPv4 datagram (RFC 791).
    public static let maximumMTU = 65_535
    /// Frames read per readiness event before the loop moves on, so a busy
    /// link cannot starve other descriptors and timers.
    public static let maximumFramesPerWakeup = 64
    /// Longest interface name (IFNAMSIZ 16, less the terminating NUL).
    public static let maximumNameLength = 15
    /// Bytes of frame one `read(2)` may return: the kernel never hands a tap
    /// reader more than 64 KiB (its GSO limit), so nothing it sends is ever
    /// truncated. Frames longer than `mtu` allows are counted in
    /// `receiveDropped`, unless the virtio-net header says they are
    /// coalesced (GSO) frames.
    static let receiveBufferLength = max(65_536, EthernetFraming.maximumSegmentationFrameLength)
    /// Length of `struct virtio_net_hdr_v1` (virtio 1.0 §5.1.6), the
    /// header IFF_VNET_HDR puts before every frame.
    static let virtioNetHeaderLength = VirtioNetHeader.length
    /// What the device does with IFF_VNET_HDR.
    public static let virtioNetHeaderOffloads: OffloadCapabilities = [
        .receiveChecksum, .transmitChecksum, .tcpSegmentationIPv4, .receiveCoalescing,
    ]

    /// The kernel's name for the device (chosen by the kernel when the name
    /// given was empty).
    public let name: String
    /// Whether this object created the device (it disappears when closed,
    /// unless it was made persistent) rather than attaching to one made by
    /// `ip tuntap add`.
    public let createdDevice: Bool
    /// Our side's address: random and locally administered unless given.
    public let macAddress: MACAddress
    /// The largest IP packet carried; the kernel side's MTU is set to it
    /// when this object creates the device.
    public let mtu: Int
    /// `virtioNetHeaderOffloads` when opened with `virtioNetHeader: true`,
    /// none otherwise.
    public let offloads: OffloadCapabilities
    /// Counters.
    public private(set) var statistics = InterfaceStatistics()
    /// Where received frames and readiness go, held strongly until
    /// `close()`. Frames read while it is nil are dropped and counted in
    /// `receiveDropped`.
    public var handler: (any NetworkInterfaceHandler)?

    private let loop: EventLoop
    /// -1 once closed.
    private var fd: Int32
    /// Bytes reserved before each frame in both buffers: where the virtio-net
    /// header goes with IFF_VNET_HDR (`virtioNetHeaderLength`; 0 without),
    /// so a stack's frame and the header go in and out in one read or write
    /// without a copy.
    private let headroom: Int
    private let receiveBuffer: FileDescriptorBuffer
    private let transmitBuffer: FileDescriptorBuffer
    /// A write failed with EAGAIN and the descriptor has not been writable since.
    private var transmitBlocked = false
    /// Inside `fill`: a nested `transmit` would overwrite the frame being built.
    private var transmitting = false

    /// Whether `close()` has been called or the device failed.
    public var isClosed: Bool { fd < 0 }

    /// Opens the tap device `name`, creating it when it does not exist
    /// (needs CAP_NET_ADMIN; an empty name lets the kernel pick `tap0`…)
    /// or attaching to one made with `ip tuntap add NAME mode tap` (by its
    /// owner), and registers it on `loop`. Call on the loop's thread.
    ///
    /// - Parameters:
    ///   - macAddress: our side's address; nil draws a random locally
    ///     administered one from `SystemEntropy`.
    ///   - mtu: `minimumMTU...maximumMTU`. When this object creates the
    ///     device the kernel side's MTU is set to it too (SIOCSIFMTU);
    ///     attaching to an existing device leaves the kernel side alone.
    ///   - virtioNetHeader: open with IFF_VNET_HDR: a 12-byte virtio-net
    ///     header (little-endian, TUNSETVNETLE) before each frame in the
    ///     buffers' headroom, and TUNSETOFFLOAD with TUN_F_CSUM | TUN_F_TSO4
    ///     | TUN_F_TSO6, so `offloads` is `virtioNetHeaderOffloads`.
    ///     Also works when attaching to a device made without `vnet_hdr`:
    ///     the flags and offloads are the opener's.
    public init(
        name: String,
        loop: EventLoop,
        macAddress: MACAddress? = nil,
        mtu: Int = TapInterface.defaultMTU,
        virtioNetHeader: Bool = false
    ) throws(DeviceError) {
        precondition(loop.inLoopThread, "TapInterface must be created on its EventLoop's thread")
        guard name.utf8.count <= Self.maximumNameLength, !name.utf8.contains(0), !name.utf8.contains(UInt8(ascii: "/")) else {
            throw .invalidArgument("interface name \"\(name)\": at most \(Self.maximumNameLength) bytes, no NUL or '/'")
        }
        guard (Self.minimumMTU...Self.maximumMTU).contains(mtu) else {
            throw .invalidArgument("MTU \(mtu) outside \(Self.minimumMTU)...\(Self.maximumMTU)")
        }
        // With IFF_VNET_HDR the kernel reads and writes the header in front
        // of each frame.
        let headroom = virtioNetHeader ? Self.virtioNetHeaderLength : 0

        let existed = name.isEmpty ? false : mirage_interface_index(name) != 0
        var kernelName = [CChar](repeating: 0, count: 32)
        let opened = mirage_tap_open(name, virtioNetHeader ? 1 : 0, &kernelName, kernelName.count)
        guard opened >= 0 else { throw FileDescriptor.error("ioctl(TUNSETIFF)", opened) }
        let actualName = String(decoding: kernelName.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if virtioNetHeader {
            // Byte order first, then the header's length, then what we take:
            // partial checksums and large TCP frames. Without TUNSETOFFLOAD
            // the kernel would still write the header but offload nothing.
            var status = mirage_tap_set_vnet_little_endian(opened)
            var call = "ioctl(TUNSETVNETLE)"
            if status == 0 {
                status = mirage_tap_set_vnet_header_size(opened, Int32(Self.virtioNetHeaderLength))
                call = "ioctl(TUNSETVNETHDRSZ)"
            }
            if status == 0 {
                status = mirage_tap_set_offload(opened, mirage_tun_f_csum | mirage_tun_f_tso4 | mirage_tun_f_tso6)
                call = "ioctl(TUNSETOFFLOAD)"
            }
            guard status == 0 else {
                FileDescriptor.close(opened)
                throw FileDescriptor.error(call, status)
            }
        }
        if !existed {
            let status = mirage_interface_set_mtu(actualName, Int32(mtu))
            guard status == 0 else {
                FileDescriptor.close(opened)
                throw FileDescriptor.error("ioctl(SIOCSIFMTU)", status)
            }
        }

        self.name = actualName
        self.createdDevice = !existed
        self.macAddress = macAddress ?? MACAddress.random(using: SystemEntropy())
        self.mtu = mtu
        self.loop = loop
        self.fd = opened
        self.headroom = headroom
        self.offloads = virtioNetHeader ? Self.virtioNetHeaderOffloads : []
        receiveBuffer = FileDescriptorBuffer(capacity: headroom + Self.receiveBufferLength)
        let transmitLimit = virtioNetHeader
            ? max(EthernetFraming.maximumSegmentationFrameLength, EthernetFraming.maximumFrameLength(mtu: mtu))
            : EthernetFraming.maximumFrameLength(mtu: mtu)
        transmitBuffer = FileDescriptorBuffer(capacity: headroom + transmitLimit)
        do {
            try loop.register(opened, interest: .read, handler: self)
        } catch {
            FileDescriptor.close(opened)
            self.fd = -1
            throw error
        }
    }

    deinit {
        // The loop holds the device while it is registered, so a device
        // reaching deinit is closed or was never registered.
        if fd >= 0 { FileDescriptor.close(fd) }
    }

    /// The largest frame `transmit` accepts and `frameReceived` delivers,
    /// except for segmentation (GSO) frames.
    public var maximumFrameLength: Int { EthernetFraming.maximumFrameLength(mtu: mtu) }

    /// The largest frame with segmentation metadata, in either direction
    /// (only with `virtioNetHeader`).
    public var maximumSegmentationFrameLength: Int {
        max(EthernetFraming.maximumSegmentationFrameLength, maximumFrameLength)
    }

    /// Unregisters from the loop, closes the descriptor (a device this
    /// object created disappears with it) and releases the handler.
    /// Idempotent; after it, `transmit` throws `deviceClosed`. Safe from
    /// inside a handler callback: the current receive batch stops after the
    /// frame being delivered, and `receiveBatchEnded` is not called.
    public func close() {
        guard fd >= 0 else { return }
        loop.unregister(fd)
        FileDescriptor.close(fd)
        fd = -1
        transmitBlocked = false
        handler = nil
    }

    public func transmit(length: Int, metadata: TransmitMetadata, _ fill: (inout MutableSpan<UInt8>) -> Int) throws(DeviceError) {
        guard fd >= 0 else { throw .deviceClosed }
        try checkOffloads(metadata)
        guard length >= 0 else { throw .invalidArgument("negative frame length \(length)") }
        let limit = metadata.segmentation == nil ? maximumFrameLength : maximumSegmentationFrameLength
        guard length <= limit else {
            throw .frameTooLarge(requested: length, limit: limit)
        }
        guard !transmitBlocked else {
            statistics.transmitWouldBlock &+= 1
            throw .wouldBlock
        }
        precondition(!transmitting, "TapInterface.transmit called from inside its own fill closure")
        transmitting = true
        let used = transmitBuffer.withMutableSpan(headroom..<(headroom + length)) { span in fill(&span) }
        transmitting = false
        guard fd >= 0 else { throw .deviceClosed }
        guard used >= 0, used <= length else {
            throw .invalidArgument("fill returned \(used) bytes for a \(length)-byte buffer")
        }
        guard used > 0 else { return }
        if headroom > 0 {
            // The header is checked against the frame actually filled (the
            // checksum position must lie inside it); `.none` is all zeros.
            let header = try VirtioNetHeader(transmit: metadata, frameLength: used)
            transmitBuffer.withMutableSpan(0..<headroom) { span in header.write(to: &span, at: 0) }
        }
        let written = transmitBuffer.write(to: fd, 0..<(headroom + used))
        if written == headroom + used {
            statistics.transmittedFrames &+= 1
            statistics.transmittedBytes &+= UInt64(used)
            return
        }
        if written >= 0 {
            // A tap takes a frame whole or not at all; count anything else.
            statistics.transmitDropped &+= 1
            return
        }
        let code = Int32(truncatingIfNeeded: -written)
        switch code {
        case EAGAIN, ENOBUFS:
            statistics.transmitWouldBlock &+= 1
            transmitBlocked = true
            do {
                try loop.setInterest(fd, [.read, .write])
            } catch {
                transmitBlocked = false
                throw error
            }
            throw .wouldBlock
        case EIO, EINVAL, EMSGSIZE:
            // The kernel dropped this frame (EIO: its side is down; EINVAL,
            // EMSGSIZE: it rejected the frame): counted, as a NIC would.
            statistics.transmitDropped &+= 1
        default:
            fail()
            throw .system(call: "write", errno: code)
        }
    }

    /// Refuses metadata asking for an offload `offloads` does not announce.
    private func checkOffloads(_ metadata: TransmitMetadata) throws(DeviceError) {
        if metadata.checksum != nil, !offloads.contains(.transmitChecksum) {
            throw .invalidArgument("checksum offload requested from a device that does not announce it")
        }
        if let segmentation = metadata.segmentation {
            guard offloads.contains(segmentation.kind.capability) else {
                throw .invalidArgument("\(segmentation.kind) segmentation requested from a device that does not announce it")
            }
        }
    }

    /// The descriptor can no longer be used (the device was deleted, or the
    /// kernel reports an error): close it; the stack learns it from
    /// `deviceClosed` on its next `transmit`.
    private func fail() {
        close()
    }

    private func receiveBatch() {
        var delivered = 0
        for _ in 0..<Self.maximumFramesPerWakeup {
            guard fd >= 0 else { break }
            let n = receiveBuffer.read(from: fd, at: 0)
            if n < 0 {
                let code = Int32(truncatingIfNeeded: -n)
                if code == EAGAIN || code == EINTR { break }
                if code == EBADFD || code == EBADF || code == EIO || code == ENODEV || code == ENXIO { fail() }
                break
            }
            let frameLength = n - headroom
            guard frameLength >= EthernetFraming.headerLength, let handler else {
                statistics.receiveDropped &+= 1
                continue
            }
            var metadata = ReceiveMetadata.none
            if headroom > 0 {
                // The kernel's virtio-net header: a malformed or unsupported
                // one (or a frame over the limit it allows) is a counted drop.
                do {
                    let header = try receiveBuffer.withSpan(0..<headroom) { span throws(DeviceError) in
                        try VirtioNetHeader(parsing: span)
                    }
                    metadata = try header.receiveMetadata(frameLength: frameLength)
                } catch {
                    statistics.receiveDropped &+= 1
                    continue
                }
            }
            let limit = metadata.segmentation == nil ? maximumFrameLength : maximumSegmentationFrameLength
            guard frameLength <= limit else {
                statistics.receiveDropped &+= 1
                continue
            }
            statistics.receivedFrames &+= 1
            statistics.receivedBytes &+= UInt64(frameLength)
            delivered += 1
            receiveBuffer.withSpan(headroom..<n) { frame in
                handler.frameReceived(frame, metadata: metadata)
            }
        }
        if delivered > 0, let handler { handler.receiveBatchEnded() }
    }
}

extension TapInterface: FDHandler {
    func fdReadable(_ fd: Int32) {
        receiveBatch()
    }

    func fdWritable(_ fd: Int32) {
        guard transmitBlocked, self.fd >= 0 else { return }
        transmitBlocked = false
        do {
            try loop.setInterest(fd, .read)
        } catch {
            fail()
        }
        handler?.transmitReady()
    }

    func fdError(_ fd: Int32, errno: Int32) {
        fail()
    }
}
