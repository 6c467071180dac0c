/// An in-memory Ethernet switch connecting several `MemoryInterface`s, for
/// tests of two or more stacks without root or a kernel.
///
/// Nothing moves until `deliverPending()` is called: a test decides when
/// frames arrive (and advances its `ManualClock` in between). Unicast goes
/// to the port with that MAC address; broadcast, multicast and unknown
/// unicast go to every other port, as a switch floods them.
public final class MemoryNetwork {
    /// Default bound on frames waiting for delivery at one interface.
    public static let defaultQueueLimit = 512

    private var interfaces: [MemoryInterface] = []
    /// Frames handed to a full receive queue and dropped.
    public private(set) var droppedFrames: UInt64 = 0
    /// Frames delivered to handlers.
    public private(set) var deliveredFrames: UInt64 = 0

    /// An empty network.
    public init() {}

    /// Adds an interface. `queueLimit` bounds both its receive queue and the
    /// frames it may have in flight before `transmit` says `wouldBlock`.
    public func attach(mac: MACAddress, mtu: Int = 1500, offloads: OffloadCapabilities = [],
                       queueLimit: Int = MemoryNetwork.defaultQueueLimit) -> MemoryInterface {
        precondition(queueLimit > 0, "queue limit must be positive")
        let interface = MemoryInterface(network: self, mac: mac, mtu: mtu, offloads: offloads, queueLimit: queueLimit)
        interfaces.append(interface)
        return interface
    }

    /// Removes an interface; frames queued for it are discarded.
    public func detach(_ interface: MemoryInterface) {
        interfaces.removeAll { $0 === interface }
        interface.queue.removeAll()
        interface.network = nil
    }

    /// Frames waiting for delivery, all interfaces.
    public var pendingFrames: Int { interfaces.reduce(0) { $0 + $1.queue.count } }

    func forward(_ frame: [UInt8], metadata: ReceiveMetadata, from sender: MemoryInterface) {
        guard let destination = MACAddress(frame.span, at: 0) else { return }
        var matched = false
        if !destination.isMulticast {
            for port in interfaces where port !== sender && port.macAddress == destination {
                enqueue(frame, metadata, to: port, from: sender)
                matched = true
            }
        }
        guard !matched else { return }
        for port in interfaces where port !== sender {
            enqueue(frame, metadata, to: port, from: sender)
        }
    }

    private func enqueue(_ frame: [UInt8], _ metadata: ReceiveMetadata, to port: MemoryInterface, from sender: MemoryInterface) {
        guard port.queue.count < port.queueLimit else {
            droppedFrames += 1
            port.stats.receiveDropped += 1
            return
        }
        port.queue.append(MemoryInterface.Queued(bytes: frame, metadata: metadata, sender: sender))
        sender.inFlight += 1
    }

    /// Delivers every queued frame: each interface gets its frames as one
    /// batch (then `receiveBatchEnded`), and senders that were told
    /// `wouldBlock` get `transmitReady`. Frames transmitted by handlers
    /// during delivery wait for the next call. Returns frames delivered.
    @discardableResult
    public func deliverPending() -> Int {
        var delivered = 0
        for port in interfaces where !port.queue.isEmpty {
            let batch = port.queue
            port.queue.removeAll(keepingCapacity: true)
            for item in batch {
                item.sender.inFlight -= 1
                if let handler = port.handler {
                    port.stats.receivedFrames += 1
                    port.stats.receivedBytes += UInt64(item.bytes.count)
                    handler.frameReceived(item.bytes.span, metadata: item.metadata)
                    delivered += 1
                } else {
                    port.stats.receiveDropped += 1
                }
            }
            port.handler?.receiveBatchEnded()
        }
        deliveredFrames += UInt64(delivered)
        for port in interfaces where port.blocked && port.inFlight < port.queueLimit {
            port.blocked = false
            port.handler?.transmitReady()
        }
        return delivered
    }

    /// Calls `deliverPending` until nothing is queued or `maxRounds` passed;
    /// returns the frames delivered. `between` runs before each round (to
    /// advance a clock and fire timers, say).
    @discardableResult
    public func runUntilIdle(maxRounds: Int = 10_000, between: () -> Void = {}) -> Int {
        var total = 0
        var rounds = 0
        while rounds < maxRounds {
            between()
            guard pendingFrames > 0 else { break }
            total += deliverPending()
            rounds += 1
        }
        return total
    }
}

/// One port of a `MemoryNetwork`.
public final class MemoryInterface: NetworkInterface {
    struct Queued {
        var bytes: [UInt8]
        var metadata: ReceiveMetadata
        var sender: MemoryInterface
    }

    var network: MemoryNetwork?
    public let macAddress: MACAddress
    public let mtu: Int
    public let offloads: OffloadCapabilities
    /// Bound on queued received frames and on frames in flight.
    public let queueLimit: Int
    var queue: [Queued] = []
    var inFlight = 0
    var blocked = false
    var stats = InterfaceStatistics()
    public var handler: (any NetworkInterfaceHandler)?
    public var statistics: InterfaceStatistics { stats }

    init(network: MemoryNetwork, mac: MACAddress, mtu: Int, offloads: OffloadCapabilities, queueLimit: Int) {
        self.network = network
        self.macAddress = mac
        self.mtu = mtu
        self.offloads = offloads
        self.queueLimit = queueLimit
    }

    public func transmit(length: Int, metadata: TransmitMetadata, _ fill: (inout MutableSpan<UInt8>) -> Int) throws(DeviceError) {
        guard let network else { throw .deviceClosed }
        let limit = metadata.segmentation != nil && !offloads.isDisjoint(with: [.tcpSegmentationIPv4, .tcpSegmentationIPv6, .udpSegmentation])
            ? EthernetFraming.maximumSegmentationFrameLength
            : EthernetFraming.maximumFrameLength(mtu: mtu)
        guard length >= 0, length <= limit else { throw .frameTooLarge(requested: length, limit: limit) }
        guard inFlight < queueLimit else {
            blocked = true
            stats.transmitWouldBlock += 1
            throw .wouldBlock
        }
        var frame = [UInt8](repeating: 0, count: length)
        var span = frame.mutableSpan
        let used = fill(&span)
        _ = consume span
        guard used > 0 else { return }
        precondition(used <= length, "fill reported more bytes than the buffer holds")
        frame.removeLast(length - used)
        stats.transmittedFrames += 1
        stats.transmittedBytes += UInt64(used)
        // A checksum left to the device is, on a virtual link, as good as
        // verified (virtio's VIRTIO_NET_HDR_F_DATA_VALID between guests).
        let rx = ReceiveMetadata(checksumVerified: metadata.checksum != nil, segmentation: metadata.segmentation)
        network.forward(frame, metadata: rx, from: self)
    }
}
