import MirageDevices
import Testing

private func parse(_ bytes: [UInt8]) throws(DeviceError) -> VirtioNetHeader {
    try VirtioNetHeader(parsing: bytes.span)
}

private func encode(_ header: VirtioNetHeader, at offset: Int = 0, total: Int = VirtioNetHeader.length) -> [UInt8] {
    var bytes = [UInt8](repeating: 0xEE, count: total)
    var span = bytes.mutableSpan
    header.write(to: &span, at: offset)
    return bytes
}

private func isMalformed(_ error: DeviceError) -> Bool {
    if case .malformedDeviceHeader = error { return true }
    return false
}

private func isInvalidArgument(_ error: DeviceError) -> Bool {
    if case .invalidArgument = error { return true }
    return false
}

@Suite("VirtioNetHeader")
struct VirtioNetHeaderTests {
    /// A TCP/IPv4 GSO frame as Linux's tap hands it over: NEEDS_CSUM,
    /// csum_start 34 (14 Ethernet + 20 IPv4), csum_offset 16 (TCP checksum),
    /// hdr_len 66, gso_size 1448, all little-endian.
    static let tcpGSOBytes: [UInt8] = [0x01, 0x01, 0x42, 0x00, 0xA8, 0x05, 0x22, 0x00, 0x10, 0x00, 0x00, 0x00]

    @Test("decodes a TCP/IPv4 GSO header field by field, little-endian")
    func decodeTCPGSO() throws {
        let header = try parse(Self.tcpGSOBytes)
        #expect(header == VirtioNetHeader(flags: 1, gsoType: 1, headerLength: 66, gsoSize: 1448,
                                          checksumStart: 34, checksumOffset: 16, bufferCount: 0))
        let metadata = try header.receiveMetadata(frameLength: 65_000)
        #expect(metadata.checksumVerified)
        #expect(metadata.segmentation == Segmentation(kind: .tcpIPv4, segmentSize: 1448, headerLength: 66))
    }

    @Test("encodes every field little-endian at the offset given, and round-trips")
    func encodeRoundTrip() throws {
        let header = VirtioNetHeader(flags: 0x02, gsoType: 0x84, headerLength: 0x1234, gsoSize: 0x5678,
                                     checksumStart: 0x9ABC, checksumOffset: 0xDEF0, bufferCount: 0x0102)
        let bytes = encode(header, at: 3, total: 16)
        #expect(bytes == [0xEE, 0xEE, 0xEE, 0x02, 0x84, 0x34, 0x12, 0x78, 0x56, 0xBC, 0x9A, 0xF0, 0xDE, 0x02, 0x01, 0xEE])
        #expect(try parse(Array(bytes[3..<15])) == header)
        #expect(encode(try parse(Self.tcpGSOBytes)) == Self.tcpGSOBytes)
        #expect(encode(VirtioNetHeader()) == [UInt8](repeating: 0, count: 12))
    }

    @Test("receive: no flags and GSO_NONE is .none; DATA_VALID and NEEDS_CSUM count as verified")
    func receiveChecksumFlags() throws {
        #expect(try parse([UInt8](repeating: 0, count: 12)).receiveMetadata(frameLength: 60) == .none)
        let valid = try parse([0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).receiveMetadata(frameLength: 60)
        #expect(valid == ReceiveMetadata(checksumVerified: true))
        // UDP checksum of a 14+20+8+14 byte frame: start 34, offset 6.
        let partial = try parse([0x01, 0, 0, 0, 0, 0, 34, 0, 6, 0, 0, 0]).receiveMetadata(frameLength: 56)
        #expect(partial == ReceiveMetadata(checksumVerified: true))
        // The checksum field may end exactly at the frame's end.
        #expect(throws: Never.self) { try parse([0x01, 0, 0, 0, 0, 0, 34, 0, 6, 0, 0, 0]).receiveMetadata(frameLength: 42) }
    }

    @Test("receive: the ECN bit is ignored; TCPv6 and UDP_L4 map to their kinds")
    func receiveGSOKinds() throws {
        let ecn = try parse([0x01, 0x81, 66, 0, 0xA8, 0x05, 34, 0, 16, 0, 0, 0]).receiveMetadata(frameLength: 3000)
        #expect(ecn.segmentation?.kind == .tcpIPv4)
        let v6 = try parse([0x01, 0x04, 86, 0, 0x90, 0x05, 54, 0, 16, 0, 0, 0]).receiveMetadata(frameLength: 3000)
        #expect(v6.segmentation == Segmentation(kind: .tcpIPv6, segmentSize: 1424, headerLength: 86))
        let udp = try parse([0x01, 0x05, 42, 0, 0xC8, 0x05, 34, 0, 6, 0, 0, 0]).receiveMetadata(frameLength: 3000)
        #expect(udp.segmentation == Segmentation(kind: .udp, segmentSize: 1480, headerLength: 42))
    }

    @Test("receive: malformed and unsupported headers throw malformedDeviceHeader", arguments: [
        // (header, frame length, what)
        ([UInt8](repeating: 0, count: 11), 60),                              // short header
        ([0x00, 0x02, 0, 0, 0xA8, 0x05, 0, 0, 0, 0, 0, 0], 3000),             // unknown gso_type 2
        ([0x00, 0x7F, 0, 0, 0xA8, 0x05, 0, 0, 0, 0, 0, 0], 3000),             // unknown gso_type 0x7f
        ([0x00, 0x83, 0, 0, 0xA8, 0x05, 0, 0, 0, 0, 0, 0], 3000),             // UFO (with ECN): unsupported
        ([0x01, 0x01, 66, 0, 0, 0, 34, 0, 16, 0, 0, 0], 3000),                // GSO without gso_size
        ([0x01, 0x01, 0xFF, 0xFF, 0xA8, 0x05, 34, 0, 16, 0, 0, 0], 3000),     // hdr_len beyond the frame
        ([0x01, 0x00, 0, 0, 0, 0, 34, 0, 16, 0, 0, 0], 51),                   // checksum field ends at 52
        ([0x01, 0x00, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0], 65_000),     // both at their maximum
    ] as [([UInt8], Int)])
    func receiveMalformed(header: [UInt8], frameLength: Int) {
        #expect {
            try parse(header).receiveMetadata(frameLength: frameLength)
        } throws: { error in
            (error as? DeviceError).map(isMalformed) ?? false
        }
    }

    @Test("transmit: .none is the zero header; a checksum request sets NEEDS_CSUM and its position")
    func transmitChecksum() throws {
        #expect(encode(try VirtioNetHeader(transmit: .none, frameLength: 60)) == [UInt8](repeating: 0, count: 12))
        let udp = try VirtioNetHeader(transmit: TransmitMetadata(checksum: ChecksumRequest(start: 34, offset: 6)),
                                      frameLength: 60)
        #expect(encode(udp) == [0x01, 0x00, 0, 0, 0, 0, 34, 0, 6, 0, 0, 0])
    }

    @Test("transmit: TCP/IPv4 segmentation encodes the vector Linux hands over for the same frame")
    func transmitSegmentation() throws {
        let metadata = TransmitMetadata(checksum: ChecksumRequest(start: 34, offset: 16),
                                        segmentation: Segmentation(kind: .tcpIPv4, segmentSize: 1448, headerLength: 66))
        #expect(encode(try VirtioNetHeader(transmit: metadata, frameLength: 65_000)) == Self.tcpGSOBytes)
        var v6 = metadata
        v6.segmentation?.kind = .tcpIPv6
        #expect(try VirtioNetHeader(transmit: v6, frameLength: 65_000).gsoType == VirtioNetHeader.gsoTCPv6)
        var udp = metadata
        udp.segmentation?.kind = .udp
        #expect(try VirtioNetHeader(transmit: udp, frameLength: 65_000).gsoType == VirtioNetHeader.gsoUDPSegmentation)
        // Round trip through the receive side gives the segmentation back.
        let back = try VirtioNetHeader(transmit: metadata, frameLength: 65_000).receiveMetadata(frameLength: 65_000)
        #expect(back.segmentation == metadata.segmentation)
    }

    @Test("transmit: inconsistent requests throw invalidArgument", arguments: [
        (TransmitMetadata(checksum: ChecksumRequest(start: 34, offset: 16)), 51),
        (TransmitMetadata(checksum: ChecksumRequest(start: 0xFFFF, offset: 0xFFFF)), 65_000),
        (TransmitMetadata(segmentation: Segmentation(kind: .tcpIPv4, segmentSize: 1448, headerLength: 66)), 3000),
        (TransmitMetadata(checksum: ChecksumRequest(start: 34, offset: 16),
                          segmentation: Segmentation(kind: .tcpIPv4, segmentSize: 0, headerLength: 66)), 3000),
        (TransmitMetadata(checksum: ChecksumRequest(start: 34, offset: 16),
                          segmentation: Segmentation(kind: .tcpIPv4, segmentSize: 1448, headerLength: 3001)), 3000),
    ] as [(TransmitMetadata, Int)])
    func transmitInvalid(metadata: TransmitMetadata, frameLength: Int) {
        #expect {
            try VirtioNetHeader(transmit: metadata, frameLength: frameLength)
        } throws: { error in
            (error as? DeviceError).map(isInvalidArgument) ?? false
        }
    }
}
