import MirageDevices
@testable import MirageTCPIP
import Testing

func bytes(_ range: Range<Int>) -> [UInt8] { range.map { UInt8(truncatingIfNeeded: $0) } }

@Suite struct TCPBufferTests {
    @Test func ringWrapsAndReadsBackInOrder() {
        var ring = ByteRing(capacity: 10)
        #expect(ring.append(bytes(0..<7).span) == 7)
        ring.discard(5)
        #expect(ring.append(bytes(7..<20).span) == 8, "only the free space is taken")
        #expect(ring.count == 10 && ring.freeSpace == 0)
        var out = [UInt8](repeating: 0xEE, count: 12)
        var span = out.mutableSpan
        ring.copy(from: 0, length: 10, into: &span, at: 1)
        _ = consume span
        #expect(out == [0xEE] + bytes(5..<15) + [0xEE])
        var pieces: [[UInt8]] = []
        ring.withBytes(from: 3, length: 7) { pieces.append(Array(copying: $0)) }
        #expect(pieces.count == 2, "wrapped once")
        #expect(pieces.flatMap { $0 } == bytes(8..<15))
    }

    @Test func inOrderDataIsReadableAndTheWindowFollowsReads() {
        var r = TCPReceiveBuffer(next: SequenceNumber(1000), capacity: 100)
        #expect(r.insert(bytes(0..<60).span, at: SequenceNumber(1000)) == 60)
        #expect(r.window == 40 && r.next == SequenceNumber(1060))
        // Beyond the window: trimmed to the 40 bytes that fit.
        #expect(r.insert(bytes(60..<120).span, at: SequenceNumber(1060)) == 40)
        #expect(r.window == 0)
        var read: [UInt8] = []
        #expect(r.read(maximum: 70) { read += Array(copying: $0) } == 70)
        #expect(read == bytes(0..<70))
        #expect(r.window == 70, "reading reopens the window")
    }

    @Test func duplicatesAndOldDataAreTrimmed() {
        var r = TCPReceiveBuffer(next: SequenceNumber(0xFFFF_FFF0), capacity: 100)
        #expect(r.insert(bytes(0..<32).span, at: SequenceNumber(0xFFFF_FFF0)) == 32)
        #expect(r.next == SequenceNumber(0x10), "wrapped past 2^32")
        #expect(r.insert(bytes(0..<32).span, at: SequenceNumber(0xFFFF_FFF0)) == 0, "a full duplicate")
        #expect(r.insert(bytes(16..<48).span, at: SequenceNumber(0)) == 16, "half old, half new")
        var read: [UInt8] = []
        _ = r.read(maximum: 100) { read += Array(copying: $0) }
        #expect(read == bytes(0..<48))
    }

    @Test func outOfOrderRunsFillInAndAreReportedAsSACKBlocks() {
        var r = TCPReceiveBuffer(next: SequenceNumber(0), capacity: 1000)
        #expect(r.insert(bytes(100..<200).span, at: SequenceNumber(100)) == 0)
        #expect(r.insert(bytes(300..<400).span, at: SequenceNumber(300)) == 0)
        #expect(r.insert(bytes(500..<600).span, at: SequenceNumber(500)) == 0)
        // RFC 2018 §4: the most recent first.
        #expect(r.sackBlocks(maximum: 4).map { $0.left.rawValue } == [500, 300, 100])
        #expect(r.sackBlocks(maximum: 2).count == 2)
        // A segment bridging 200..<300 merges two runs into one, reported first.
        #expect(r.insert(bytes(150..<320).span, at: SequenceNumber(150)) == 0)
        #expect(r.sackBlocks(maximum: 4).map { [$0.left.rawValue, $0.right.rawValue] } == [[100, 400], [500, 600]])
        #expect(r.outOfOrderBytes == 400)
        // The gap at the start fills: everything up to 400 becomes readable.
        #expect(r.insert(bytes(0..<100).span, at: SequenceNumber(0)) == 400)
        #expect(r.next == SequenceNumber(400))
        #expect(r.sackBlocks(maximum: 4).map { $0.left.rawValue } == [500])
        var read: [UInt8] = []
        _ = r.read(maximum: 1000) { read += Array(copying: $0) }
        #expect(read == bytes(0..<400))
        #expect(r.insert(bytes(400..<500).span, at: SequenceNumber(400)) == 200)
        #expect(r.sackBlocks(maximum: 4).isEmpty && r.outOfOrderBytes == 0)
    }

    @Test func outOfOrderStorageIsBounded() {
        var r = TCPReceiveBuffer(next: SequenceNumber(0), capacity: 10_000)
        for k in 0..<(TCPReceiveBuffer.maximumRuns + 5) {
            r.insert(bytes(0..<10).span, at: SequenceNumber(UInt32(100 + 20 * k)))
        }
        #expect(r.outOfOrderRunCount == TCPReceiveBuffer.maximumRuns)
        #expect(r.sackBlocks(maximum: 100).count == SACKBlockList.capacity)
        // Data past the window is never held.
        var small = TCPReceiveBuffer(next: SequenceNumber(0), capacity: 100)
        small.insert(bytes(0..<50).span, at: SequenceNumber(80))
        #expect(small.outOfOrderBytes == 20)
    }

    @Test func sendBufferKeepsBytesUntilAcknowledged() {
        var s = TCPSendBuffer(start: SequenceNumber(0xFFFF_FFFC), capacity: 16)
        #expect(s.append(bytes(0..<20).span) == 16)
        #expect(s.end == SequenceNumber(12))
        var out = [UInt8](repeating: 0, count: 4)
        var span = out.mutableSpan
        s.copy(from: SequenceNumber(2), length: 4, into: &span, at: 0)
        _ = consume span
        #expect(out == bytes(6..<10), "bytes by sequence number across 2^32")
        #expect(s.acknowledge(upTo: SequenceNumber(0xFFFF_FFFC) - 1) == 0, "an old ACK frees nothing")
        #expect(s.acknowledge(upTo: SequenceNumber(100)) == 0, "an ACK for unsent data frees nothing")
        #expect(s.acknowledge(upTo: SequenceNumber(4)) == 8)
        #expect(s.unacknowledged == SequenceNumber(4) && s.freeSpace == 8)
        #expect(s.append(bytes(16..<30).span) == 8)
        #expect(s.end == SequenceNumber(20))
    }
}
