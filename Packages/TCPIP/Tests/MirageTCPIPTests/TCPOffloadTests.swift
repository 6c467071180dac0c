import MirageDevices
@testable import MirageTCPIP
import Testing

/// Passes frames through to `inner` and keeps what the stack asked of the
/// device: every transmit's metadata and length, and copies of the first
/// few frames handed over for segmentation.
final class RecordingInterface<Inner: NetworkInterface>: NetworkInterface, NetworkInterfaceHandler {
    let inner: Inner
    var handler: (any NetworkInterfaceHandler)?
    var transmitted: [(length: Int, metadata: TransmitMetadata)] = []
    var segmentedFrames: [[UInt8]] = []
    var received: [(length: Int, metadata: ReceiveMetadata)] = []
    /// Refuse frames to segment as a device may (`invalidArgument`).
    var refuseSegmentation = false

    init(_ inner: Inner) {
        self.inner = inner
        inner.handler = self
    }

    var macAddress: MACAddress { inner.macAddress }
    var mtu: Int { inner.mtu }
    var offloads: OffloadCapabilities { inner.offloads }
    var statistics: InterfaceStatistics { inner.statistics }

    func transmit(length: Int, metadata: TransmitMetadata, _ fill: (inout MutableSpan<UInt8>) -> Int) throws(DeviceError) {
        if refuseSegmentation && metadata.segmentation != nil { throw .invalidArgument("segmentation refused") }
        var used = 0
        var copy: [UInt8] = []
        try inner.transmit(length: length, metadata: metadata) { span in
            used = fill(&span)
            if metadata.segmentation != nil, segmentedFrames.count < 8 {
                copy = Array(copying: span.span.extracting(0..<used))
            }
            return used
        }
        transmitted.append((used, metadata))
        if !copy.isEmpty { segmentedFrames.append(copy) }
    }

    func frameReceived(_ frame: Span<UInt8>, metadata: ReceiveMetadata) {
        received.append((frame.count, metadata))
        handler?.frameReceived(frame, metadata: metadata)
    }
    func receiveBatchEnded() { handler?.receiveBatchEnded() }
    func transmitReady() { handler?.transmitReady() }
}

/// Two stacks on a memory network whose ports announce `offloads`; the
/// network passes segmentation frames whole, as virtio does between guests.
struct OffloadBed {
    let t = TestNet()
    let a: IPStack<RecordingInterface<MemoryInterface>>
    let b: IPStack<RecordingInterface<MemoryInterface>>
    let ia: RecordingInterface<MemoryInterface>
    let ib: RecordingInterface<MemoryInterface>

    static let offloads: OffloadCapabilities = [.receiveChecksum, .transmitChecksum, .tcpSegmentationIPv4,
                                                .receiveCoalescing]

    init(offloads: OffloadCapabilities = OffloadBed.offloads, useOffloads: Bool = true) {
        ia = RecordingInterface(t.net.attach(mac: MACAddress(2, 0, 0, 0, 0, 1), offloads: offloads))
        ib = RecordingInterface(t.net.attach(mac: MACAddress(2, 0, 0, 0, 0, 2), offloads: offloads))
        var ca = IPStack<RecordingInterface<MemoryInterface>>.Configuration(ipv4: IPv4Configuration(address: addressA, prefixLength: 24))
        ca.tcp = TCPTestbed.tcp
        ca.tcpSegmentationOffload = useOffloads
        ca.transmitChecksumOffload = useOffloads
        var cb = ca
        cb.ipv4 = IPv4Configuration(address: addressB, prefixLength: 24)
        a = IPStack(interface: ia, configuration: ca, clock: t.clock, scheduler: t.timers, entropy: SeededEntropy(seed: 7))
        b = IPStack(interface: ib, configuration: cb, clock: t.clock, scheduler: t.timers, entropy: SeededEntropy(seed: 8))
    }

    func detach() {
        a.detach()
        b.detach()
    }

    /// `count` bytes each way on one connection, a to b; returns the apps.
    func transfer(_ count: Int) throws -> (client: TCPApp, server: TCPApp, id: ConnectionID) {
        let server = TCPApp(stack: b)
        server.outgoing = streamBytes(count, seed: 12)
        _ = try b.listen(port: 80, address: nil, backlog: 4, handler: server)
        let client = TCPApp(stack: a)
        client.outgoing = streamBytes(count, seed: 11)
        let id = try a.connect(to: Endpoint(.v4(addressB), 80), timeout: nil, handler: client)
        t.run()
        return (client, server, id)
    }
}

@Suite("TCP segmentation offload, coalesced receive and receive batching")
struct TCPOffloadTests {
    @Test("with TSO: large frames leave in whole segments of the MSS, arrive coalesced, and 2 MB each way is intact")
    func segmentationOffloadCarriesBulkData() throws {
        let bed = OffloadBed()
        defer { bed.detach() }
        let (client, server, id) = try bed.transfer(2_000_000)
        let serverSide = try #require(server.accepted.first)
        StackTCPTests.expectSame(server.received[serverSide], client.outgoing, "server received every byte")
        StackTCPTests.expectSame(client.received[id], server.outgoing, "client received every byte")
        #expect(client.closed[id] == .normal && server.closed[serverSide] == .normal)

        for (stack, interface) in [(bed.a, bed.ia), (bed.b, bed.ib)] {
            let large = interface.transmitted.filter { $0.metadata.segmentation != nil }
            #expect(stack.statistics.tcpSegmentationFramesSent == UInt64(large.count))
            #expect(large.count > 10, "bulk data leaves in frames for the device to segment")
            for frame in large {
                let seg = try #require(frame.metadata.segmentation)
                // The headers repeated in each segment: Ethernet, IPv4 and TCP
                // with timestamps (and SACK blocks while data is out of order,
                // which take their room from the data: RFC 9293 §3.7.1).
                let tcpHeader = Int(seg.headerLength) - 14 - 20
                #expect(seg.kind == .tcpIPv4 && Int(seg.segmentSize) == 1460 - 12 - (tcpHeader - 32))
                #expect(tcpHeader >= 32 && tcpHeader <= 60)
                #expect(frame.length - Int(seg.headerLength) > Int(seg.segmentSize), "more than one segment's data")
                #expect(frame.length <= EthernetFraming.maximumSegmentationFrameLength)
                #expect(frame.metadata.checksum == ChecksumRequest(start: 34, offset: 16))
            }
            #expect(large.contains { $0.length > 40 * 1460 }, "once the window allows, frames near the 64 KiB limit")
            // Small segments (ACKs, the handshake) carry a checksum request but are never segmented.
            #expect(interface.transmitted.allSatisfy { $0.metadata.segmentation != nil
                || $0.length <= EthernetFraming.maximumFrameLength(mtu: 1500) })
            #expect(stack.statistics.totalDropped == 0)
        }
        #expect(bed.b.statistics.tcpCoalescedFramesReceived == bed.a.statistics.tcpSegmentationFramesSent)
        #expect(bed.a.statistics.tcpCoalescedFramesReceived == bed.b.statistics.tcpSegmentationFramesSent)
    }

    @Test("a frame for the device to segment: IPv4 length and DF right, checksum field the pseudo-header sum that completes correctly, PSH on")
    func segmentationFrameIsWellFormed() throws {
        let bed = OffloadBed()
        defer { bed.detach() }
        _ = try bed.transfer(300_000)
        let frame = try #require(bed.ia.segmentedFrames.first)
        let ip = try IPv4Packet(checking: frame.span.extracting(14...), verifyChecksum: true)
        let totalLength = ip.bytes.count
        let dontFragment = ip.dontFragment
        #expect(totalLength == frame.count - 14, "total length covers the whole frame")
        #expect(dontFragment)
        // Complete the checksum as the device does: sum from csum_start to
        // the end (the field holds the pseudo-header sum), complement, store.
        var completed = frame
        var sum = InternetChecksum()
        sum.add(completed.span.extracting(34...))
        completed[34 + 16] = UInt8(sum.checksum >> 8)
        completed[34 + 17] = UInt8(sum.checksum & 0xFF)
        let ipv4 = try IPv4Packet(checking: completed.span.extracting(14...), verifyChecksum: true)
        let segment = try TCPSegment(checking: ipv4.payload, source: addressA, destination: addressB, verifyChecksum: true)
        let payloadLength = segment.payload.count
        let flags = segment.flags
        #expect(payloadLength > 1460 - 12)
        #expect(flags.contains(.psh) && flags.contains(.ack))
        // The uncompleted frame does not verify: the stack left the payload to the device.
        var uncompleted: TCPIPError? = nil
        do {
            _ = try TCPSegment(checking: ip.payload, source: addressA, destination: addressB, verifyChecksum: true)
        } catch {
            uncompleted = error
        }
        #expect(uncompleted == .badChecksum(.tcp))
    }

    @Test("a device that refuses a frame to segment: the stack cuts it into whole segments itself")
    func refusedSegmentationFallsBackToSoftware() throws {
        let bed = OffloadBed()
        defer { bed.detach() }
        bed.ia.refuseSegmentation = true
        bed.ib.refuseSegmentation = true
        let (client, server, id) = try bed.transfer(1_000_000)
        let serverSide = try #require(server.accepted.first)
        StackTCPTests.expectSame(server.received[serverSide], client.outgoing, "server received every byte")
        StackTCPTests.expectSame(client.received[id], server.outgoing, "client received every byte")
        #expect(bed.ia.transmitted.allSatisfy { $0.length <= EthernetFraming.maximumFrameLength(mtu: 1500) })
        #expect(bed.a.statistics.tcpSegmentationFramesSent == 0 && bed.a.statistics.tcpTransmitDropped == 0)
        #expect(bed.a.statistics.tcpSegmentsSent > 700, "1 MB went out in MSS-sized segments")
    }

    @Test("offloads announced but switched off in the configuration: every frame whole, checksums computed")
    func offloadCanBeSwitchedOff() throws {
        let bed = OffloadBed(useOffloads: false)
        defer { bed.detach() }
        let (client, server, _) = try bed.transfer(500_000)
        let serverSide = try #require(server.accepted.first)
        StackTCPTests.expectSame(server.received[serverSide], client.outgoing, "server received every byte")
        #expect(bed.ia.transmitted.allSatisfy { $0.metadata == .none })
        #expect(bed.a.statistics.tcpSegmentationFramesSent == 0)
    }

    @Test("a device with checksum offload but no TSO: checksums left to it, no frame over the MTU")
    func checksumOffloadAlone() throws {
        let bed = OffloadBed(offloads: [.transmitChecksum, .receiveChecksum])
        defer { bed.detach() }
        let (client, server, _) = try bed.transfer(300_000)
        let serverSide = try #require(server.accepted.first)
        StackTCPTests.expectSame(server.received[serverSide], client.outgoing, "server received every byte")
        #expect(bed.ia.transmitted.contains { $0.metadata.checksum != nil })
        #expect(bed.ia.transmitted.allSatisfy { $0.metadata.segmentation == nil
            && $0.length <= EthernetFraming.maximumFrameLength(mtu: 1500) })
    }

    @Test("no offloads: one ACK per receive batch, far fewer than one per two segments")
    func oneAcknowledgmentPerBatch() throws {
        let bed = OffloadBed(offloads: [])
        defer { bed.detach() }
        let server = TCPApp(stack: bed.b)
        _ = try bed.b.listen(port: 80, address: nil, backlog: 4, handler: server)
        let client = TCPApp(stack: bed.a)
        client.outgoing = streamBytes(2_000_000, seed: 3)
        _ = try bed.a.connect(to: Endpoint(.v4(addressB), 80), timeout: nil, handler: client)
        bed.t.run()
        let serverSide = try #require(server.accepted.first)
        StackTCPTests.expectSame(server.received[serverSide], client.outgoing, "server received every byte")
        let dataSegments = bed.b.statistics.tcpSegmentsReceived
        let acks = bed.b.statistics.tcpSegmentsSent
        #expect(dataSegments > 1_300, "2 MB in MSS-sized segments")
        #expect(acks * 4 < dataSegments, "ACKs \(acks) for \(dataSegments) segments: batched, not one per two")
    }
}

@Suite("TCP connection batching")
struct TCPConnectionBatchTests {
    /// An established pair without timestamps (so hand-made segments pass PAWS).
    static func pair() -> TCPPair {
        var configuration = TCPConnection.Configuration()
        configuration.timestamps = false
        var p = TCPPair(configuration: configuration)
        p.run()
        return p
    }

    static func dataSegment(_ p: TCPPair, offset: Int, length: Int) -> [UInt8] {
        let server = p.server!
        let header = TCPHeader(sourcePort: 40000, destinationPort: 7, sequenceNumber: server.rcvNxt + offset,
                               acknowledgmentNumber: server.sndNxt, flags: [.ack, .psh], window: 8192)
        var bytes = [UInt8](repeating: 0xAB, count: header.length + length)
        var span = bytes.mutableSpan
        header.emit(into: &span, at: 0, payloadLength: length, source: clientAddress, destination: serverAddress4)
        _ = consume span
        return bytes
    }

    /// Hands the server one segment from the wire.
    static func deliver(_ p: inout TCPPair, _ bytes: [UInt8]) throws {
        let segment = try TCPSegment(checking: bytes.span, source: clientAddress, destination: serverAddress4)
        p.server!.receive(segment, now: p.now)
    }

    /// `segments` in-order segments of 1000 bytes, all made before the first arrives.
    static func feed(_ p: inout TCPPair, segments: Int) throws {
        let frames = (0..<segments).map { dataSegment(p, offset: $0 * 1000, length: 1000) }
        for bytes in frames { try deliver(&p, bytes) }
    }

    @Test("eight in-order segments in a batch: nothing sent until flush, then exactly one ACK for all")
    func batchGetsOneAcknowledgment() throws {
        var p = Self.pair()
        let start = p.server!.rcvNxt
        p.server!.beginBatch()
        try Self.feed(&p, segments: 8)
        #expect(p.server!.outbox.isEmpty)
        p.server!.flush(now: p.now)
        let acks = p.server!.outbox
        #expect(acks.count == 1)
        #expect(acks.first?.header.acknowledgmentNumber == start + 8000)
        #expect(p.server!.batching == false)
    }

    @Test("the same segments outside a batch: an ACK for every second one (RFC 5681 §4.2)")
    func withoutBatchEverySecondSegment() throws {
        var p = Self.pair()
        try Self.feed(&p, segments: 8)
        #expect(p.server!.outbox.count == 4)
    }

    @Test("an out-of-order segment in a batch is acknowledged at once (a duplicate ACK with SACK)")
    func outOfOrderIsNotHeld() throws {
        var p = Self.pair()
        p.server!.beginBatch()
        try Self.deliver(&p, Self.dataSegment(p, offset: 2000, length: 1000))
        #expect(p.server!.outbox.count == 1)
        #expect(p.server!.outbox.first?.header.options.sackBlocks.count == 1)
        p.server!.flush(now: p.now)
        #expect(p.server!.outbox.count == 1, "nothing more owed")
    }

    @Test("one coalesced segment of many MSS (GRO) is acknowledged at the end of its batch, not delayed")
    func coalescedSegmentIsAcknowledged() throws {
        var p = Self.pair()
        p.server!.beginBatch()
        try Self.deliver(&p, Self.dataSegment(p, offset: 0, length: 8 * 1400))
        p.server!.flush(now: p.now)
        #expect(p.server!.outbox.count == 1)
    }

    @Test("a batch whose end never comes: the delayed-ACK timer acknowledges everything and ends the batch")
    func lostBatchEndStillAcknowledges() throws {
        var p = Self.pair()
        let start = p.server!.rcvNxt
        p.server!.beginBatch()
        try Self.feed(&p, segments: 4)
        #expect(p.server!.outbox.isEmpty)
        let deadline = try #require(p.server!.nextDeadline)
        p.server!.timerFired(now: deadline)
        #expect(p.server!.outbox.count == 1)
        #expect(p.server!.outbox.first?.header.acknowledgmentNumber == start + 4000)
        #expect(!p.server!.batching)
    }

    @Test("one segment in a batch: the ACK is delayed as usual, not forced by flush")
    func singleSegmentStaysDelayed() throws {
        var p = Self.pair()
        p.server!.beginBatch()
        try Self.feed(&p, segments: 1)
        p.server!.flush(now: p.now)
        #expect(p.server!.outbox.isEmpty)
        #expect(p.server!.delayedAckDeadline != nil)
    }
}
