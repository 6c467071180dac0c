import MirageDevices
@testable import MirageTCPIP
import Testing

/// Hex text to bytes; spaces ignored.
func hex(_ text: String) -> [UInt8] {
    let digits = text.filter { !$0.isWhitespace }
    var out: [UInt8] = []
    var i = digits.startIndex
    while i < digits.endIndex {
        let j = digits.index(i, offsetBy: 2)
        out.append(UInt8(digits[i..<j], radix: 16)!)
        i = j
    }
    return out
}

@Suite struct WireTests {
    // The classic example header: 192.168.0.1 → 192.168.0.199, UDP, checksum 0xb861.
    let ipv4Header = hex("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7")

    @Test func ipv4HeaderChecksumVerifiesAndIsReproduced() throws {
        let packet = ipv4Header + [UInt8](repeating: 0, count: 0x73 - 20)
        let view = try IPv4Packet(checking: packet.span)
        #expect(view.source == IPv4Address(192, 168, 0, 1))
        #expect(view.destination == IPv4Address(192, 168, 0, 199))
        #expect(view.protocol == IPProtocol.udp)
        #expect(view.dontFragment && !view.moreFragments && view.fragmentOffset == 0)
        #expect(view.timeToLive == 0x40)
        #expect(view.payload.count == 0x73 - 20)
        var out = [UInt8](repeating: 0, count: 20)
        var span = out.mutableSpan
        IPv4Header(source: view.source, destination: view.destination, protocol: IPProtocol.udp, payloadLength: 0x73 - 20,
                   timeToLive: 64, identification: 0, dontFragment: true).emit(into: &span)
        _ = consume span
        #expect(out == ipv4Header)
    }

    @Test func ipv4RefusesBadChecksumLyingLengthsAndVersions() {
        var bad = ipv4Header + [UInt8](repeating: 0, count: 0x73 - 20)
        bad[11] ^= 1
        #expect(throws: TCPIPError.badChecksum(.ipv4)) { _ = try IPv4Packet(checking: bad.span) }
        // The device verified it: not checked again.
        #expect((try? IPv4Packet(checking: bad.span, verifyChecksum: false)) != nil)
        let short = ipv4Header + [UInt8](repeating: 0, count: 10)  // says 0x73, has 30
        #expect(throws: TCPIPError.badLength(layer: .ipv4, stated: 0x73, available: 30)) { _ = try IPv4Packet(checking: short.span) }
        var v6 = ipv4Header
        v6[0] = 0x65
        #expect(throws: TCPIPError.badVersion(6)) { _ = try IPv4Packet(checking: v6.span) }
        var ihl = ipv4Header
        ihl[0] = 0x44
        #expect(throws: TCPIPError.badLength(layer: .ipv4, stated: 16, available: 20)) { _ = try IPv4Packet(checking: ihl.span) }
        #expect(throws: TCPIPError.truncated(layer: .ipv4, expected: 20, got: 19)) { _ = try IPv4Packet(checking: Array(ipv4Header[0..<19]).span) }
    }

    @Test func ipv4OptionsAreSkippedAndPaddingCut() throws {
        // IHL 6 (one word of options: NOP NOP NOP EOL), total 28, then 4 bytes of Ethernet padding.
        var p = hex("4600 001c 1234 0000 4001 0000 0a00 0001 0a00 0002 0101 0100 0800 f7ff 0000 0000 dead beef")
        var span = p.mutableSpan
        let sum = InternetChecksum.of(span.span.extracting(0..<24))
        span.setU16(sum, at: 10)
        _ = consume span
        let view = try IPv4Packet(checking: p.span)
        #expect(view.headerLength == 24)
        #expect(view.payload.count == 4)
        #expect(view.totalLength == 28)
    }

    @Test func ethernetParsesTagsAndRefusesStackedOnes() throws {
        let plain = hex("ffff ffff ffff 0200 0000 0001 0806") + [1, 2]
        let f = try EthernetFrame(checking: plain.span)
        #expect(f.destination == .broadcast && f.source == MACAddress(2, 0, 0, 0, 0, 1))
        #expect(f.etherType == EtherType.arp && f.vlanID == nil && f.payload.count == 2)
        let tagged = hex("ffff ffff ffff 0200 0000 0001 8100 2064 0800") + [9]
        let t = try EthernetFrame(checking: tagged.span)
        #expect(t.vlanID == 100 && t.etherType == EtherType.ipv4 && t.payload.count == 1)
        let qinq = hex("ffff ffff ffff 0200 0000 0001 8100 0064 8100 0065 0800")
        #expect(throws: TCPIPError.unsupportedEtherType(EtherType.vlan)) { _ = try EthernetFrame(checking: qinq.span) }
        let shortTag = hex("ffff ffff ffff 0200 0000 0001 8100 00")
        #expect(throws: TCPIPError.truncated(layer: .ethernet, expected: 18, got: 15)) { _ = try EthernetFrame(checking: shortTag.span) }
    }

    // An ARP request captured from Linux: who-has 10.0.0.2 tell 10.0.0.1.
    @Test func arpRequestRoundTrips() throws {
        let bytes = hex("0001 0800 0604 0001 0a0b 0c0d 0e0f 0a00 0001 0000 0000 0000 0a00 0002")
        let message = try #require(ARPMessage(try ARPPacket(checking: bytes.span)))
        #expect(message.operation == .request)
        #expect(message.senderHardware == MACAddress(0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f))
        #expect(message.targetProtocol == IPv4Address(10, 0, 0, 2))
        var out = [UInt8](repeating: 0xAA, count: ARPMessage.length)
        var span = out.mutableSpan
        message.emit(into: &span)
        _ = consume span
        #expect(out == bytes)
        var ipv6 = bytes
        ipv6[3] = 0xDD
        ipv6[2] = 0x86
        #expect(throws: TCPIPError.unsupportedARP(hardwareType: 1, protocolType: 0x86DD)) { _ = try ARPPacket(checking: ipv6.span) }
    }

    @Test func udpChecksumWithPseudoHeader() throws {
        let src = IPv4Address(10, 0, 0, 1), dst = IPv4Address(10, 0, 0, 2)
        let payload: [UInt8] = Array("hello".utf8)
        var d = [UInt8](repeating: 0, count: 8 + payload.count)
        var span = d.mutableSpan
        for i in 0..<payload.count { span[8 + i] = payload[i] }
        UDPHeader(sourcePort: 1234, destinationPort: 7, payloadLength: payload.count).emit(into: &span, source: src, destination: dst)
        _ = consume span
        do {
            let view = try UDPDatagram(checking: d.span, source: src, destination: dst)
            #expect(view.sourcePort == 1234 && view.destinationPort == 7)
            #expect(Array(copying: view.payload) == payload)
        }
        // A different pseudo-header does not verify.
        #expect(throws: TCPIPError.badChecksum(.udp)) { _ = try UDPDatagram(checking: d.span, source: src, destination: IPv4Address(10, 0, 0, 3)) }
        // Zero checksum means none was sent (RFC 768).
        d[6] = 0; d[7] = 0
        #expect((try? UDPDatagram(checking: d.span, source: src, destination: IPv4Address(10, 0, 0, 3))) != nil)
        // Lying length.
        d[5] = 200
        #expect(throws: TCPIPError.badLength(layer: .udp, stated: 200, available: 13)) { _ = try UDPDatagram(checking: d.span, source: src, destination: dst) }
    }

    @Test func internetChecksumHandlesOddSplits() {
        let data: [UInt8] = (0..<101).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        let whole = InternetChecksum.of(data.span)
        for split in 0...data.count {
            var c = InternetChecksum()
            c.add(Array(data[0..<split]).span)
            c.add(Array(data[split...]).span)
            #expect(c.checksum == whole)
        }
    }
}
