import MirageDevices
@testable import MirageTCPIP
import Testing

@Suite struct TCPWireTests {
    let source = IPv4Address(10, 0, 0, 1)
    let destination = IPv4Address(10, 0, 0, 2)

    // A SYN as Linux 6.x sends it: MSS 1460, SACK permitted, timestamps,
    // window scale 7 (the option layout Linux uses), 20 + 20 bytes.
    let linuxSYN = hex("""
        c350 0007 1a2b 3c4d 0000 0000 a002 faf0 0000 0000
        0204 05b4 0402 080a 0001 e240 0000 0000 0103 0307
        """)

    func withChecksum(_ segment: [UInt8]) -> [UInt8] {
        var s = segment
        s[16] = 0; s[17] = 0
        var sum = IPv4Header.pseudoHeaderSum(source: source, destination: destination, protocol: IPProtocol.tcp, length: s.count)
        sum.add(s.span)
        let c = sum.checksum
        s[16] = UInt8(c >> 8); s[17] = UInt8(c & 0xff)
        return s
    }

    @Test func aLinuxSYNParses() throws {
        let bytes = withChecksum(linuxSYN)
        let segment = try TCPSegment(checking: bytes.span, source: source, destination: destination)
        #expect(segment.sourcePort == 50000 && segment.destinationPort == 7)
        #expect(segment.sequenceNumber == SequenceNumber(0x1a2b_3c4d))
        #expect(segment.flags == .syn && segment.window == 64240)
        #expect(segment.headerLength == 40 && segment.payload.count == 0 && segment.sequenceLength == 1)
        #expect(segment.options.maximumSegmentSize == 1460)
        #expect(segment.options.sackPermitted)
        #expect(segment.options.timestamps?.value == 123_456 && segment.options.timestamps?.echoReply == 0)
        #expect(segment.options.windowScale == 7)
    }

    @Test func emitRoundTripsThroughTheView() throws {
        var options = TCPOptions()
        options.maximumSegmentSize = 1460
        options.sackPermitted = true
        options.timestamps = (123_456, 0)
        options.windowScale = 7
        let header = TCPHeader(sourcePort: 50000, destinationPort: 7, sequenceNumber: SequenceNumber(0x1a2b_3c4d),
                               acknowledgmentNumber: SequenceNumber(0), flags: .syn, window: 64240, options: options)
        #expect(header.length == 40)
        var out = [UInt8](repeating: 0, count: header.length)
        var span = out.mutableSpan
        header.emit(into: &span, at: 0, payloadLength: 0, source: source, destination: destination)
        _ = consume span
        #expect(out == withChecksum(linuxSYN), "the same bytes Linux sends")

        var data = TCPOptions()
        data.timestamps = (7, 9)
        data.appendSACKBlock(SACKBlock(left: SequenceNumber(100), right: SequenceNumber(200)))
        data.appendSACKBlock(SACKBlock(left: SequenceNumber(300), right: SequenceNumber(400)))
        let ack = TCPHeader(sourcePort: 1, destinationPort: 2, sequenceNumber: SequenceNumber(5), acknowledgmentNumber: SequenceNumber(6),
                            flags: [.ack, .psh], window: 1000, options: data)
        let payload: [UInt8] = Array("data".utf8)
        var segment = [UInt8](repeating: 0, count: ack.length + payload.count)
        var s = segment.mutableSpan
        for i in 0..<payload.count { s[ack.length + i] = payload[i] }
        ack.emit(into: &s, at: 0, payloadLength: payload.count, source: source, destination: destination)
        _ = consume s
        let view = try TCPSegment(checking: segment.span, source: source, destination: destination)
        #expect(view.options == data)
        #expect(view.flags == [.ack, .psh] && Array(copying: view.payload) == payload)
    }

    @Test(arguments: [
        ("0202", UInt8(2)),            // MSS with length 2
        ("0204 05", UInt8(2)),         // MSS cut short
        ("0300", UInt8(3)),            // length 0
        ("0501", UInt8(5)),            // length 1 (would loop forever if trusted)
        ("050c 0000 0001 0000 0002 0000", UInt8(5)),  // SACK length not 2 + 8n
        ("0808 0000 0001 0000", UInt8(8)),       // timestamps length 8
        ("fe", UInt8(0xfe)),           // kind without length
    ])
    func malformedOptionsAreRefused(options: String, kind: UInt8) {
        let bytes = hex(options)
        #expect(throws: TCPIPError.malformedTCPOption(kind: kind)) { _ = try TCPOptions(parsing: bytes.span) }
    }

    /// Options that arrived in 40 bytes may need more in our layout; the
    /// SACK blocks that do not fit are left out rather than overflowing
    /// (found by the tcpip-tcp fuzz target).
    @Test func sackBlocksAreTrimmedToTheRoomLeft() throws {
        let parsed = try TCPOptions(parsing: hex("0204 05b4 080a 0000 0001 0000 0002 051a 0000 0001 0000 0002 0000 0003 0000 0004 0000 0005 0000 0006").span)
        #expect(parsed.sackBlocks.count == 3 && parsed.maximumSegmentSize == 1460)
        #expect(parsed.sackBlocksThatFit == 2)
        #expect(parsed.encodedLength == 36, "MSS 4 + timestamps 12 + SACK 4 + 2 × 8")
        let header = TCPHeader(sourcePort: 1, destinationPort: 2, sequenceNumber: SequenceNumber(3), acknowledgmentNumber: SequenceNumber(4),
                               flags: .ack, window: 5, options: parsed)
        var out = [UInt8](repeating: 0, count: header.length)
        var span = out.mutableSpan
        header.emit(into: &span, at: 0, payloadLength: 0, source: source, destination: destination)
        _ = consume span
        let view = try TCPSegment(checking: out.span, source: source, destination: destination)
        #expect(Array(view.options.sackBlocks) == Array(parsed.sackBlocks.prefix(2)))
        #expect(view.options.timestamps?.value == 1 && view.options.maximumSegmentSize == 1460)
    }

    @Test func unknownOptionsAreSkippedAndEndStopsParsing() throws {
        let options = try TCPOptions(parsing: hex("fe04 abcd 0204 0218 0000 0000 0204 ffff").span)
        #expect(options.maximumSegmentSize == 0x218, "the MSS after EOL is not read")
    }

    @Test func badLengthsAndChecksumsAreRefused() {
        var bytes = withChecksum(linuxSYN)
        bytes[12] = 0x40  // data offset 16 bytes
        #expect(throws: TCPIPError.badLength(layer: .tcp, stated: 16, available: 40)) {
            _ = try TCPSegment(checking: bytes.span, source: source, destination: destination, verifyChecksum: false)
        }
        bytes[12] = 0xF0  // 60 bytes, only 40 present
        #expect(throws: TCPIPError.badLength(layer: .tcp, stated: 60, available: 40)) {
            _ = try TCPSegment(checking: bytes.span, source: source, destination: destination, verifyChecksum: false)
        }
        var flipped = withChecksum(linuxSYN)
        flipped[25] ^= 1
        #expect(throws: TCPIPError.badChecksum(.tcp)) { _ = try TCPSegment(checking: flipped.span, source: source, destination: destination) }
    }

    @Test func sequenceNumbersCompareModulo2To32() {
        let near = SequenceNumber(0xFFFF_FFF0)
        let wrapped = near + 0x20
        #expect(wrapped.rawValue == 0x10)
        #expect(near < wrapped && !(wrapped < near))
        #expect(wrapped - near == 0x20 && near - wrapped == -0x20)
        #expect(SequenceNumber(5).isIn(near, wrapped))
        #expect(!SequenceNumber(0x20).isIn(near, wrapped))
        #expect(near.isIn(near, wrapped) && !wrapped.isIn(near, wrapped))
    }

    // The reference vectors of SipHash-2-4 (key 00..0f, message 00..n-1).
    @Test(arguments: [(0, UInt64(0x726f_db47_dd0e_0e31)), (1, 0x74f8_39c5_93dc_67fd), (7, 0xab02_00f5_8b01_d137),
                      (8, 0x93f5_f579_9a93_2462), (15, 0xa129_ca61_49be_45e5), (63, 0x958a_324c_eb06_4572)])
    func sipHashMatchesTheReferenceVectors(length: Int, expected: UInt64) {
        var h = SipHash24(k0: 0x0706_0504_0302_0100, k1: 0x0f0e_0d0c_0b0a_0908)
        let message = (0..<length).map { UInt8($0) }
        h.add(message.span)
        #expect(h.finalize() == expected)
    }

    @Test func initialSequenceNumbersFollowRFC6528() {
        let isn = InitialSequenceNumbers(k0: 1, k1: 2)
        let a = IPv4Address(10, 0, 0, 1), b = IPv4Address(10, 0, 0, 2)
        let t0 = Instant(nanoseconds: 1_000_000_000)
        let first = isn.next(local: a, localPort: 80, remote: b, remotePort: 40000, now: t0)
        // The same tuple a second later: 250,000 ticks of 4 µs further.
        let later = isn.next(local: a, localPort: 80, remote: b, remotePort: 40000, now: t0 + .seconds(1))
        #expect(later - first == 250_000)
        // Another tuple at the same time: unrelated.
        let other = isn.next(local: a, localPort: 80, remote: b, remotePort: 40001, now: t0)
        #expect(abs(other - first) > 1_000_000)
        // Another key: unrelated too.
        let rekeyed = InitialSequenceNumbers(k0: 3, k1: 2).next(local: a, localPort: 80, remote: b, remotePort: 40000, now: t0)
        #expect(rekeyed != first)
    }
}
