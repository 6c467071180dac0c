// The `tcpip-vnet` fuzz target: the virtio-net header a tap opened with
// `IFF_VNET_HDR` puts before every frame (`MirageDevices.VirtioNetHeader`),
// then the frame it describes, fed with the parsed `ReceiveMetadata` into
// the stacks of FuzzStack.swift over interfaces announcing the tap's
// offloads. Compiled with FuzzDecoders.swift and FuzzStack.swift (same
// imports: MirageDevices, MirageTCPIP and the standard library only).
//
// Input: 12 header bytes (`struct virtio_net_hdr_v1`, little-endian), then
// the frame. Fewer than 12 bytes must be refused as `malformedDeviceHeader`.
//
// Checked, by trapping with `fuzzCheck`:
// - the parsed fields are the bytes read independently, and `write` puts
//   the same 12 bytes back;
// - transmit direction: the header's bytes read as a `TransmitMetadata`
//   (checksum request when bit 0 of flags is set, segmentation kind from
//   gso_type % 4) for a frame of the input's frame length: refused with
//   `invalidArgument` exactly when a reference says so (checksum field past
//   the frame, segmentation without a checksum request, size 0, headers past
//   the frame); otherwise the header has only the fields asked for, writes
//   and parses back to itself, and its `receiveMetadata` is the request;
// - receive direction: `receiveMetadata(frameLength:)` refuses with
//   `malformedDeviceHeader` exactly when a reference says so (NEEDS_CSUM
//   with the field past the frame, gso_type other than none, TCPv4, TCPv6,
//   UDP_L4 — ECN bit aside —, GSO with size 0 or hdr_len past the frame);
//   when it accepts, checksumVerified is NEEDS_CSUM or DATA_VALID, the
//   segmentation is the gso fields (size non-zero, header within the frame),
//   and the header a driver would send for the same (transmit side) parses
//   back to the same segmentation;
// - then, past the header: a static stack (10.0.0.1, MAC ...:01) with an
//   established connection from 10.0.0.2:40000 to its TCP echo on port 7
//   (set up by the harness, peer ISS 1000 so data starts at 1001) and the
//   DHCP stack get the frame with the metadata, the batch ends, and the clock
//   runs one second; everything FuzzStack checks holds, and every frame they
//   send asks only for announced offloads in a form the tap can express
//   (FuzzInterface.checkOffloadRequest). A TCP segment from 10.0.0.2:40000
//   to port 7 (untagged, option-less IPv4) with ACK set and acknowledgment
//   number 0 gets the static stack's SND.NXT patched in (the TCP checksum
//   redone when it was right), so seeds and mutations reach the connection.

import MirageDevices
import MirageTCPIP

/// What one run of `tcpip-vnet` ended with (CorpusReplayTests compares it
/// with what the named seeds must do).
struct VirtioNetSummary {
    /// The error parsing the header or its receive metadata threw.
    var headerError: DeviceError? = nil
    /// The metadata the frame was delivered with.
    var metadata: ReceiveMetadata? = nil
    /// The header's bytes were read as a transmit request (a whole header).
    var transmitChecked = false
    /// The error that request was refused with, if any.
    var transmitError: DeviceError? = nil
    /// How the stacks ended up, when the frame reached them.
    var stack: StackSummary? = nil
    /// Frames the stacks sent with segmentation offload after the set-up.
    var segmentationFrames = 0
}

enum FuzzVirtioNetConstants {
    /// What a tap opened with `IFF_VNET_HDR` and TSO4 announces.
    static let tapOffloads: OffloadCapabilities = [.receiveChecksum, .transmitChecksum, .tcpSegmentationIPv4,
                                                   .receiveCoalescing]
    static let peerMAC = MACAddress(0x02, 0, 0, 0, 0, 0x02)
    static let peerPort: UInt16 = 40000
    static let echoPort: UInt16 = 7
    static let peerISS: UInt32 = 1000
    /// How long the clock runs after the frame (delayed ACKs, retransmission).
    static let settle = 1000
}

/// `tcpip-vnet`: see the top of this file.
func fuzzVirtioNet(_ bytes: Span<UInt8>) -> FuzzReport {
    var report = FuzzReport()
    var summary = VirtioNetSummary()
    runVirtioNet(bytes, &summary, &report)
    report.vnet = summary
    return report
}

func runVirtioNet(_ bytes: Span<UInt8>, _ summary: inout VirtioNetSummary, _ report: inout FuzzReport) {
    let header: VirtioNetHeader
    do throws(DeviceError) {
        header = try VirtioNetHeader(parsing: bytes)
    } catch {
        fuzzCheck(bytes.count < VirtioNetHeader.length, "vnet: refused a header of 12 bytes or more")
        fuzzCheck(isMalformedDeviceHeader(error), "vnet: a short header refused with another error")
        summary.headerError = error
        return
    }
    fuzzCheck(bytes.count >= VirtioNetHeader.length, "vnet: parsed a short header")
    checkHeaderFields(header, bytes)
    let frame = bytes.extracting(VirtioNetHeader.length...)
    report.mix(UInt64(header.flags) << 56 | UInt64(header.gsoType) << 48 | UInt64(header.headerLength) << 32
        | UInt64(header.gsoSize) << 16 | UInt64(header.checksumStart))
    summary.transmitError = checkTransmitRequest(fromHeaderBytes: bytes, frameLength: frame.count)
    summary.transmitChecked = true

    let metadata: ReceiveMetadata
    let refuse = referenceRefusesReceive(bytes, frameLength: frame.count)
    do throws(DeviceError) {
        metadata = try header.receiveMetadata(frameLength: frame.count)
    } catch {
        fuzzCheck(refuse, "vnet: refused a header the reference accepts")
        fuzzCheck(isMalformedDeviceHeader(error), "vnet: receive refused with another error than malformedDeviceHeader")
        summary.headerError = error
        return
    }
    fuzzCheck(!refuse, "vnet: accepted a header the reference refuses")
    checkReceiveMetadata(metadata, header: header, frameLength: frame.count)
    summary.metadata = metadata
    report.mix(UInt64(metadata.segmentation?.segmentSize ?? 0) << 8 | (metadata.checksumVerified ? 1 : 0))

    let world = FuzzWorld(offloads: FuzzVirtioNetConstants.tapOffloads)
    defer { world.tearDown() }
    world.openPeerConnection()
    let segmentationBefore = world.staticNIC.segmentationFrames + world.dhcpNIC.segmentationFrames
    world.emittedLayers = []
    var before = world.counters()
    let acknowledgment = world.staticNIC.checker.tcpSequenceEnd
    world.deliver(frame, metadata: metadata) { bytes in
        if let acknowledgment { patchTCPAcknowledgment(&bytes, acknowledgment) }
    }
    world.endBatch()
    before = world.checkInvariants(since: before)
    world.advance(FuzzVirtioNetConstants.settle)
    _ = world.checkInvariants(since: before)
    report.parsed = world.emittedLayers
    report.mix(UInt64(world.emittedLayers.count))
    summary.stack = world.summary()
    summary.segmentationFrames = world.staticNIC.segmentationFrames + world.dhcpNIC.segmentationFrames
        - segmentationBefore
}

func isMalformedDeviceHeader(_ error: DeviceError) -> Bool {
    if case .malformedDeviceHeader = error { return true }
    return false
}

func isInvalidArgument(_ error: DeviceError) -> Bool {
    if case .invalidArgument = error { return true }
    return false
}

func le16(_ bytes: Span<UInt8>, _ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }

/// Fields against an independent little-endian read; `write` gives the
/// same 12 bytes back, at any offset.
func checkHeaderFields(_ header: VirtioNetHeader, _ bytes: Span<UInt8>) {
    fuzzCheck(header.flags == bytes[0] && header.gsoType == bytes[1], "vnet: flags or gso_type")
    fuzzCheck(header.headerLength == le16(bytes, 2) && header.gsoSize == le16(bytes, 4), "vnet: hdr_len or gso_size")
    fuzzCheck(header.checksumStart == le16(bytes, 6) && header.checksumOffset == le16(bytes, 8),
              "vnet: csum_start or csum_offset")
    fuzzCheck(header.bufferCount == le16(bytes, 10), "vnet: num_buffers")
    var out = [UInt8](repeating: 0xA5, count: VirtioNetHeader.length + 3)
    var span = out.mutableSpan
    header.write(to: &span, at: 3)
    _ = consume span
    fuzzCheck(out[0] == 0xA5 && out[1] == 0xA5 && out[2] == 0xA5, "vnet: write touched bytes before its offset")
    for i in 0..<VirtioNetHeader.length { fuzzCheck(out[3 + i] == bytes[i], "vnet: write differs from the parsed bytes") }
}

/// virtio 1.0 §5.1.6 as the codec documents it, written out plainly.
func referenceRefusesReceive(_ bytes: Span<UInt8>, frameLength: Int) -> Bool {
    let needsChecksum = bytes[0] & 1 != 0
    if needsChecksum && Int(le16(bytes, 6)) + Int(le16(bytes, 8)) + 2 > frameLength { return true }
    let type = bytes[1] & 0x7F
    if type == 0 { return false }
    if type != 1 && type != 4 && type != 5 { return true }
    return le16(bytes, 4) == 0 || Int(le16(bytes, 2)) > frameLength
}

func checkReceiveMetadata(_ metadata: ReceiveMetadata, header: VirtioNetHeader, frameLength: Int) {
    fuzzCheck(metadata.checksumVerified == (header.flags & 3 != 0), "vnet: checksumVerified is not NEEDS_CSUM or DATA_VALID")
    let type = header.gsoType & 0x7F
    guard let segmentation = metadata.segmentation else {
        fuzzCheck(type == 0, "vnet: a GSO type without segmentation")
        return
    }
    let kind: SegmentationKind? = switch type {
    case 1: .tcpIPv4
    case 4: .tcpIPv6
    case 5: .udp
    default: nil
    }
    fuzzCheck(segmentation.kind == kind, "vnet: segmentation kind is not gso_type's")
    fuzzCheck(segmentation.segmentSize == header.gsoSize && segmentation.segmentSize > 0, "vnet: segment size")
    fuzzCheck(segmentation.headerLength == header.headerLength && Int(segmentation.headerLength) <= frameLength,
              "vnet: segmentation header length")
    // What a driver sends for the same frame: NEEDS_CSUM where the device
    // said so (a GSO frame needs it), the same segmentation.
    var request = TransmitMetadata(segmentation: segmentation)
    if header.flags & VirtioNetHeader.flagNeedsChecksum != 0 {
        request.checksum = ChecksumRequest(start: header.checksumStart, offset: header.checksumOffset)
    }
    do throws(DeviceError) {
        let again = try VirtioNetHeader(transmit: request, frameLength: frameLength)
        fuzzCheck(request.checksum != nil, "vnet: transmit accepted segmentation without a checksum request")
        fuzzCheck(again.gsoType == type && again.bufferCount == 0 && again.flags == VirtioNetHeader.flagNeedsChecksum,
                  "vnet: transmit header fields")
        let back = try again.receiveMetadata(frameLength: frameLength)
        fuzzCheck(back.segmentation == segmentation && back.checksumVerified, "vnet: receive → transmit → receive")
    } catch {
        fuzzCheck(request.checksum == nil && isInvalidArgument(error),
                  "vnet: transmit refused a request that received fine, or with another error")
    }
}

/// The header's bytes read as a transmit request; returns the error it
/// was refused with.
func checkTransmitRequest(fromHeaderBytes bytes: Span<UInt8>, frameLength: Int) -> DeviceError? {
    var request = TransmitMetadata()
    let start = le16(bytes, 6), offset = le16(bytes, 8), size = le16(bytes, 4), headerLength = le16(bytes, 2)
    if bytes[0] & 1 != 0 { request.checksum = ChecksumRequest(start: start, offset: offset) }
    let kinds: [SegmentationKind?] = [nil, .tcpIPv4, .tcpIPv6, .udp]
    if let kind = kinds[Int(bytes[1] & 3)] {
        request.segmentation = Segmentation(kind: kind, segmentSize: size, headerLength: headerLength)
    }
    var refuse = request.checksum != nil && Int(start) + Int(offset) + 2 > frameLength
    if request.segmentation != nil {
        refuse = refuse || request.checksum == nil || size == 0 || Int(headerLength) > frameLength
    }
    let header: VirtioNetHeader
    do throws(DeviceError) {
        header = try VirtioNetHeader(transmit: request, frameLength: frameLength)
    } catch {
        fuzzCheck(refuse, "vnet transmit: refused a request the reference accepts")
        fuzzCheck(isInvalidArgument(error), "vnet transmit: refused with another error than invalidArgument")
        return error
    }
    fuzzCheck(!refuse, "vnet transmit: accepted a request the reference refuses")
    let wantType: UInt8 = switch request.segmentation?.kind {
    case nil: VirtioNetHeader.gsoNone
    case .tcpIPv4: VirtioNetHeader.gsoTCPv4
    case .tcpIPv6: VirtioNetHeader.gsoTCPv6
    case .udp: VirtioNetHeader.gsoUDPSegmentation
    }
    fuzzCheck(header.flags == (request.checksum == nil ? 0 : VirtioNetHeader.flagNeedsChecksum) && header.gsoType == wantType
        && header.bufferCount == 0, "vnet transmit: flags, gso_type or num_buffers")
    fuzzCheck(header.checksumStart == request.checksum?.start ?? 0 && header.checksumOffset == request.checksum?.offset ?? 0,
              "vnet transmit: checksum position")
    fuzzCheck(header.gsoSize == request.segmentation?.segmentSize ?? 0
        && header.headerLength == request.segmentation?.headerLength ?? 0, "vnet transmit: gso_size or hdr_len")
    var out = [UInt8](repeating: 0, count: VirtioNetHeader.length)
    var span = out.mutableSpan
    header.write(to: &span, at: 0)
    _ = consume span
    do throws(DeviceError) {
        let parsed = try VirtioNetHeader(parsing: out.span)
        fuzzCheck(parsed == header, "vnet transmit: write → parse")
        let back = try header.receiveMetadata(frameLength: frameLength)
        fuzzCheck(back.segmentation == request.segmentation && back.checksumVerified == (request.checksum != nil),
                  "vnet transmit: the header parses back to another request")
    } catch {
        fuzzFail("vnet transmit: a header it made does not parse back")
    }
    return nil
}

/// Untagged Ethernet, option-less IPv4, TCP from the peer's port 40000 to
/// port 7 with ACK set and acknowledgment number 0: `acknowledgment` goes
/// in, and the TCP checksum is redone when it was right.
func patchTCPAcknowledgment(_ frame: inout [UInt8], _ acknowledgment: UInt32) {
    typealias V = FuzzVirtioNetConstants
    let tcp = 14 + 20, ack = tcp + 8
    guard frame.count >= tcp + 20, frame[12] == 0x08, frame[13] == 0x00, frame[14] == 0x45,
          frame[14 + 9] == IPProtocol.tcp, be16(frame.span, tcp) == V.peerPort, be16(frame.span, tcp + 2) == V.echoPort,
          frame[tcp + 13] & 0x10 != 0, be32(frame.span, ack) == 0 else { return }
    let total = Int(be16(frame.span, 16))
    let source = IPv4Address(rawValue: be32(frame.span, 14 + 12))
    let destination = IPv4Address(rawValue: be32(frame.span, 14 + 16))
    let fits = total >= 40 && 14 + total <= frame.count
    let wasRight = fits && tcpReferenceSum(frame.span.extracting(tcp..<(14 + total)), source, destination) == 0xFFFF
    for i in 0..<4 { frame[ack + i] = UInt8(truncatingIfNeeded: acknowledgment >> (24 - 8 * i)) }
    if wasRight {
        frame[tcp + 16] = 0
        frame[tcp + 17] = 0
        let sum = ~tcpReferenceSum(frame.span.extracting(tcp..<(14 + total)), source, destination)
        frame[tcp + 16] = UInt8(sum >> 8)
        frame[tcp + 17] = UInt8(truncatingIfNeeded: sum)
    }
}

extension FuzzWorld {
    /// The peer (10.0.0.2, MAC ...:02) announces itself by ARP, then opens a
    /// connection from port 40000 to the static stack's TCP echo: SYN (MSS
    /// 1460, window scale 7, SACK permitted; ISS 1000), then the ACK of the
    /// SYN-ACK, each its own batch.
    func openPeerConnection() {
        typealias V = FuzzVirtioNetConstants
        let arp = ARPMessage(operation: .request, senderHardware: V.peerMAC, senderProtocol: C.peer,
                             targetHardware: .zero, targetProtocol: C.staticAddress)
        var frame = [UInt8](repeating: 0, count: EthernetHeader.length + ARPMessage.length)
        var span = frame.mutableSpan
        EthernetHeader(destination: .broadcast, source: V.peerMAC, etherType: EtherType.arp).emit(into: &span)
        arp.emit(into: &span, at: EthernetHeader.length)
        _ = consume span
        deliver(frame.span, verified: false)
        endBatch()
        var options = TCPOptions()
        options.maximumSegmentSize = 1460
        options.windowScale = 7
        options.sackPermitted = true
        let syn = TCPHeader(sourcePort: V.peerPort, destinationPort: V.echoPort, sequenceNumber: SequenceNumber(V.peerISS),
                            acknowledgmentNumber: SequenceNumber(0), flags: .syn, window: 64240, options: options)
        deliver(peerSegment(syn).span, verified: false)
        endBatch()
        guard let ourNext = staticNIC.checker.tcpSequenceEnd else { fuzzFail("vnet: no SYN-ACK for the peer's SYN") }
        let ack = TCPHeader(sourcePort: V.peerPort, destinationPort: V.echoPort,
                            sequenceNumber: SequenceNumber(V.peerISS &+ 1), acknowledgmentNumber: SequenceNumber(ourNext),
                            flags: .ack, window: 0xFFFF)
        deliver(peerSegment(ack).span, verified: false)
        endBatch()
        fuzzCheck(tcpEcho.open.count == 1, "vnet: the peer's connection was not accepted")
    }

    /// `header` from the peer to the static stack, no payload, checksums right.
    func peerSegment(_ header: TCPHeader) -> [UInt8] {
        let ip = EthernetHeader.length, tcp = ip + IPv4Header.length
        var frame = [UInt8](repeating: 0, count: tcp + header.length)
        var span = frame.mutableSpan
        EthernetHeader(destination: C.staticMAC, source: FuzzVirtioNetConstants.peerMAC, etherType: EtherType.ipv4)
            .emit(into: &span)
        IPv4Header(source: C.peer, destination: C.staticAddress, protocol: IPProtocol.tcp, payloadLength: header.length,
                   timeToLive: 64, identification: 1, dontFragment: true, moreFragments: false, fragmentOffset: 0,
                   typeOfService: 0).emit(into: &span, at: ip)
        header.emit(into: &span, at: tcp, payloadLength: 0, source: C.peer, destination: C.staticAddress)
        _ = consume span
        return frame
    }
}
