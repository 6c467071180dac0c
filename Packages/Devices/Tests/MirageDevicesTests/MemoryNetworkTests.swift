import MirageDevices
import Testing

@Suite struct MemoryNetworkTests {
    @Test func unicastReachesOnlyTheAddressedPort() throws {
        let net = MemoryNetwork()
        let a = net.attach(mac: macA), b = net.attach(mac: macB), c = net.attach(mac: macC)
        let hb = RecordingHandler(), hc = RecordingHandler()
        b.handler = hb
        c.handler = hc
        try send(testFrame(to: macB, from: macA, sequence: 1), on: a)
        #expect(net.pendingFrames == 1)
        #expect(hb.frames.isEmpty, "nothing moves before deliverPending")
        #expect(net.deliverPending() == 1)
        #expect(hb.sequences == [1])
        #expect(hc.frames.isEmpty)
        #expect(b.statistics.receivedFrames == 1)
        #expect(a.statistics.transmittedFrames == 1)
    }

    @Test func broadcastAndUnknownUnicastFloodToEveryOtherPort() throws {
        let net = MemoryNetwork()
        let a = net.attach(mac: macA), b = net.attach(mac: macB), c = net.attach(mac: macC)
        let ha = RecordingHandler(), hb = RecordingHandler(), hc = RecordingHandler()
        a.handler = ha; b.handler = hb; c.handler = hc
        try send(testFrame(to: .broadcast, from: macA, sequence: 7), on: a)
        try send(testFrame(to: MACAddress(0x02, 9, 9, 9, 9, 9), from: macA, sequence: 8), on: a)
        net.deliverPending()
        #expect(ha.frames.isEmpty, "a sender does not hear itself")
        #expect(hb.sequences == [7, 8])
        #expect(hc.sequences == [7, 8])
    }

    @Test func framesArriveInBatchesWithOneBatchEndEach() throws {
        let net = MemoryNetwork()
        let a = net.attach(mac: macA), b = net.attach(mac: macB)
        let hb = RecordingHandler()
        b.handler = hb
        for i in 0..<10 { try send(testFrame(to: macB, from: macA, sequence: UInt32(i)), on: a) }
        net.deliverPending()
        try send(testFrame(to: macB, from: macA, sequence: 10), on: a)
        net.deliverPending()
        #expect(hb.sequences == Array(0...10))
        #expect(hb.batches == 2)
    }

    @Test func fullQueueSaysWouldBlockThenTransmitReady() throws {
        let net = MemoryNetwork()
        let a = net.attach(mac: macA, queueLimit: 4), b = net.attach(mac: macB, queueLimit: 4)
        let ha = RecordingHandler(), hb = RecordingHandler()
        a.handler = ha; b.handler = hb
        for i in 0..<4 { try send(testFrame(to: macB, from: macA, sequence: UInt32(i)), on: a) }
        #expect(throws: DeviceError.wouldBlock) { try send(testFrame(to: macB, from: macA, sequence: 4), on: a) }
        #expect(a.statistics.transmitWouldBlock == 1)
        #expect(ha.ready == 0)
        net.deliverPending()
        #expect(ha.ready == 1, "exactly one transmitReady after the block clears")
        try send(testFrame(to: macB, from: macA, sequence: 4), on: a)
        net.deliverPending()
        #expect(hb.sequences == [0, 1, 2, 3, 4])
        #expect(ha.ready == 1)
    }

    @Test func receiveQueueOverflowIsACountedDrop() throws {
        let net = MemoryNetwork()
        // Three senders into one small receiver: its queue overflows.
        let r = net.attach(mac: macA, queueLimit: 4)
        let s1 = net.attach(mac: macB), s2 = net.attach(mac: macC)
        let h = RecordingHandler()
        r.handler = h
        for i in 0..<3 { try send(testFrame(to: macA, from: macB, sequence: UInt32(i)), on: s1) }
        for i in 3..<6 { try send(testFrame(to: macA, from: macC, sequence: UInt32(i)), on: s2) }
        #expect(net.droppedFrames == 2)
        #expect(r.statistics.receiveDropped == 2)
        net.deliverPending()
        #expect(h.sequences == [0, 1, 2, 3])
    }

    @Test func oversizedFramesAreRefused() throws {
        let net = MemoryNetwork()
        let a = net.attach(mac: macA, mtu: 1500)
        _ = net.attach(mac: macB)
        #expect(throws: DeviceError.frameTooLarge(requested: 1519, limit: 1518)) {
            try a.transmit(length: 1519, metadata: .none) { _ in 0 }
        }
        // With TSO announced and requested, 64 KiB frames pass.
        let t = net.attach(mac: macC, offloads: [.tcpSegmentationIPv4])
        let gso = TransmitMetadata(segmentation: Segmentation(kind: .tcpIPv4, segmentSize: 1448, headerLength: 66))
        try send(testFrame(to: macB, from: macC, sequence: 0, payloadLength: 60_000), on: t, metadata: gso)
    }

    @Test func checksumOffloadArrivesAsVerified() throws {
        let net = MemoryNetwork()
        let a = net.attach(mac: macA, offloads: [.transmitChecksum]), b = net.attach(mac: macB)
        let h = RecordingHandler()
        b.handler = h
        try send(testFrame(to: macB, from: macA, sequence: 1), on: a, metadata: TransmitMetadata(checksum: ChecksumRequest(start: 34, offset: 16)))
        try send(testFrame(to: macB, from: macA, sequence: 2), on: a)
        net.deliverPending()
        #expect(h.metadata.map(\.checksumVerified) == [true, false])
    }

    @Test func cancelledFillSendsNothing() throws {
        let net = MemoryNetwork()
        let a = net.attach(mac: macA), b = net.attach(mac: macB)
        let h = RecordingHandler()
        b.handler = h
        try a.transmit(length: 64, metadata: .none) { _ in 0 }
        #expect(net.deliverPending() == 0)
        #expect(a.statistics.transmittedFrames == 0)
    }
}
