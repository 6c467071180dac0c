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
    /// Bytes one `read(2)` may return: the kernel never hands a tap reader
    /// more than 64 KiB, so nothing it sends is ever truncated. Frames
    /// longer than `mtu` allows are counted in `receiveDropped`.
    static let receiveBufferLength = 65_536
    /// Length of `struct virtio_net_hdr_v1` (virtio 1.0 §5.1.6), the
    /// header IFF_VNET_HDR puts before every frame.
    static let virtioNetHeaderLength = 12

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
    /// None yet: offloads need IFF_VNET_HDR (see `init`).
    public let offloads: OffloadCapabilities = []
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
    /// header would go with IFF_VNET_HDR, so a stack's frame and the header
    /// go out in one write without a copy. 0 until offloads are implemented.
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
    ///   - virtioNetHeader: reserved for IFF_VNET_HDR (checksum and
    ///     segmentation offloads, with a 12-byte header in the buffers'
    ///     headroom). Not implemented yet: `true` throws `invalidArgument`.
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
        guard !virtioNetHeader else {
            throw .invalidArgument("IFF_VNET_HDR (virtio-net header offloads) is not implemented yet")
        }
        // With IFF_VNET_HDR this becomes virtioNetHeaderLength: the kernel
        // reads and writes the header in front of each frame.
        let headroom = 0

        let existed = name.isEmpty ? false : mirage_interface_index(name) != 0
        var kernelName = [CChar](repeating: 0, count: 32)
        let opened = mirage_tap_open(name, virtioNetHeader ? 1 : 0, &kernelName, kernelName.count)
        guard opened >= 0 else { throw FileDescriptor.error("ioctl(TUNSETIFF)", opened) }
        let actualName = String(decoding: kernelName.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
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
        receiveBuffer = FileDescriptorBuffer(capacity: headroom + Self.receiveBufferLength)
        transmitBuffer = FileDescriptorBuffer(capacity: headroom + EthernetFraming.maximumFrameLength(mtu: mtu))
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

    /// The largest frame `transmit` accepts and `frameReceived` delivers.
    public var maximumFrameLength: Int { EthernetFraming.maximumFrameLength(mtu: mtu) }

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
        guard metadata.checksum == nil, metadata.segmentation == nil else {
            throw .invalidArgument("offload requested from a device that announces none")
        }
        guard length >= 0 else { throw .invalidArgument("negative frame length \(length)") }
        guard length <= maximumFrameLength else {
            throw .frameTooLarge(requested: length, limit: maximumFrameLength)
        }
        guard !transmitBlocked else {
            statistics.transmitWouldBlock &+= 1
            throw .wouldBlock
        }
        // With IFF_VNET_HDR a zeroed (no offload) header would be written
        // at 0..<headroom here.
        precondition(!transmitting, "TapInterface.transmit called from inside its own fill closure")
        transmitting = true
        let used = transmitBuffer.withMutableSpan(headroom..<(headroom + length)) { span in fill(&span) }
        transmitting = false
        guard fd >= 0 else { throw .deviceClosed }
        guard used >= 0, used <= length else {
            throw .invalidArgument("fill returned \(used) bytes for a \(length)-byte buffer")
        }
        guard used > 0 else { return }
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
            // With IFF_VNET_HDR the header at 0..<headroom would be parsed
            // into `ReceiveMetadata` here (checksum verified, GSO).
            guard frameLength >= EthernetFraming.headerLength, frameLength <= maximumFrameLength, let handler else {
                statistics.receiveDropped &+= 1
                continue
            }
            statistics.receivedFrames &+= 1
            statistics.receivedBytes &+= UInt64(frameLength)
            delivered += 1
            receiveBuffer.withSpan(headroom..<n) { frame in
                handler.frameReceived(frame, metadata: .none)
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
