// Decode-everything functions shared by the libFuzzer targets and
// CorpusReplayTests. `Scripts/fuzz` compiles this file, with a generated
// LLVMFuzzerTestOneInput entry, against MirageDevices and MirageTCPIP (see
// Scripts/fuzzing/targets.txt), so it imports only those two modules and the
// standard library: no Testing, no Foundation.
//
// Each function builds every checked view it can, reads every accessor, and
// checks what the view promises: sizes against the stated lengths, fields
// against an independent read of the raw bytes, checksums against a plain
// reference sum, and emit → parse round trips. A broken promise traps with
// `fuzzCheck` (a `fatalError`, whose message survives -O), which libFuzzer
// reports as a crash and which crashes the replay test: that trap is the
// assertion.
//
// Inner layers are dispatched from the view built *without* checksum
// verification, so the fuzzer reaches ICMP, UDP and TCP without having to
// solve the IPv4 header checksum; the verified parse runs too and goes in the
// report.
// IPv4 hands its payload on unless the packet is a later fragment, which
// carries no transport header.

import MirageDevices
import MirageTCPIP

/// The fuzz targets of this package. `Scripts/fuzz` builds one libFuzzer
/// target per entry (Scripts/fuzzing/targets.txt has a line for each; targets
/// with the same harness files share one binary), and
/// CorpusReplayTests replays `Corpus/<name>/` through the same function.
let fuzzTargets: [(name: String, run: @Sendable (Span<UInt8>) -> FuzzReport)] = [
    ("tcpip-ethernet", fuzzEthernet),
    ("tcpip-ipv4", fuzzIPv4),
    ("tcpip-arp", fuzzARP),
    ("tcpip-icmp", fuzzICMPv4),
    ("tcpip-udp", fuzzUDP),
    ("tcpip-dhcp", fuzzDHCP),
    ("tcpip-tcp", fuzzTCP),
    ("tcpip-stack", fuzzStack),
    ("tcpip-tcpconn", fuzzConnection),
    ("tcpip-vnet", fuzzVirtioNet),
]

/// What one decode-everything pass found.
struct FuzzReport: CustomStringConvertible {
    /// Layers whose view was built with checksums verified, outermost first.
    var parsed: [TCPIPError.Layer] = []
    /// Errors thrown by the verified parses, outermost first.
    var errors: [TCPIPError] = []
    /// A fold of the values read, so the optimizer keeps every read.
    var digest: UInt64 = 0xcbf2_9ce4_8422_2325
    /// `tcpip-stack` only (FuzzStack.swift): how the stacks ended up.
    var stack: StackSummary? = nil
    /// `tcpip-tcpconn` only (FuzzConnection.swift): how the connection ended up.
    var connection: ConnectionSummary? = nil
    /// `tcpip-vnet` only (FuzzVirtioNet.swift): the header and the stacks.
    var vnet: VirtioNetSummary? = nil

    mutating func mix(_ value: UInt64) { digest = (digest ^ value) &* 0x100_0000_01b3 }
    mutating func mix(_ span: Span<UInt8>) {
        mix(UInt64(span.count))
        if !span.isEmpty { mix(UInt64(span[0]) << 8 | UInt64(span[span.count - 1])) }
    }

    var description: String { "parsed \(parsed), errors \(errors)" }
}

// MARK: - Targets

/// `tcpip-ethernet`: a whole frame, Ethernet → ARP or IPv4 → ICMP, UDP
/// (→ DHCP on ports 67 and 68) or TCP.
func fuzzEthernet(_ bytes: Span<UInt8>) -> FuzzReport {
    var report = FuzzReport()
    decodeEthernet(bytes, &report)
    return report
}

/// `tcpip-ipv4`: an IPv4 packet, then ICMP, UDP or TCP on its payload.
func fuzzIPv4(_ bytes: Span<UInt8>) -> FuzzReport {
    var report = FuzzReport()
    decodeIPv4(bytes, &report)
    return report
}

/// `tcpip-arp`: an ARP packet.
func fuzzARP(_ bytes: Span<UInt8>) -> FuzzReport {
    var report = FuzzReport()
    decodeARP(bytes, &report)
    return report
}

/// `tcpip-icmp`: an ICMP message.
func fuzzICMPv4(_ bytes: Span<UInt8>) -> FuzzReport {
    var report = FuzzReport()
    decodeICMPv4(bytes, &report)
    return report
}

/// `tcpip-udp`: the first 8 bytes are the pseudo-header's source and
/// destination addresses, the rest is the UDP datagram. Shorter inputs are
/// ignored.
func fuzzUDP(_ bytes: Span<UInt8>) -> FuzzReport {
    var report = FuzzReport()
    guard bytes.count >= 8 else { return report }
    let source = IPv4Address(rawValue: be32(bytes, 0)), destination = IPv4Address(rawValue: be32(bytes, 4))
    decodeUDP(bytes.extracting(8...), source: source, destination: destination, &report)
    return report
}

/// `tcpip-dhcp`: a BOOTP/DHCP message (a UDP payload).
func fuzzDHCP(_ bytes: Span<UInt8>) -> FuzzReport {
    var report = FuzzReport()
    decodeDHCP(bytes, &report)
    return report
}

/// `tcpip-tcp`: as `tcpip-udp`, the pseudo-header's source and destination
/// addresses (8 bytes), then the TCP segment. Shorter inputs are ignored, and
/// so are segments over 65,535 bytes, which no IPv4 packet carries (the
/// pseudo-header's length field has 16 bits).
func fuzzTCP(_ bytes: Span<UInt8>) -> FuzzReport {
    var report = FuzzReport()
    guard bytes.count >= 8, bytes.count - 8 <= 0xFFFF else { return report }
    let source = IPv4Address(rawValue: be32(bytes, 0)), destination = IPv4Address(rawValue: be32(bytes, 4))
    decodeTCP(bytes.extracting(8...), source: source, destination: destination, &report)
    return report
}

// MARK: - Layers

func decodeEthernet(_ bytes: Span<UInt8>, _ report: inout FuzzReport) {
    do throws(TCPIPError) {
        let frame = try EthernetFrame(checking: bytes)
        report.parsed.append(.ethernet)
        let header = frame.headerLength
        fuzzCheck(header == EthernetFrame.headerLength || header == EthernetFrame.taggedHeaderLength,
                  "Ethernet: header length")
        fuzzCheck(frame.bytes.count == bytes.count, "Ethernet: bytes cut")
        fuzzCheck(frame.destination == MACAddress(bytes, at: 0), "Ethernet: destination")
        fuzzCheck(frame.source == MACAddress(bytes, at: 6), "Ethernet: source")
        let type = frame.etherType
        fuzzCheck(type == be16(bytes, header - 2), "Ethernet: EtherType")
        fuzzCheck(type != EtherType.vlan && type != EtherType.serviceVLAN, "Ethernet: tag left in EtherType")
        if let vlan = frame.vlanID {
            fuzzCheck(header == EthernetFrame.taggedHeaderLength && vlan == be16(bytes, 14) & 0x0FFF, "Ethernet: VLAN ID")
            report.mix(UInt64(vlan))
        } else {
            fuzzCheck(header == EthernetFrame.headerLength, "Ethernet: untagged header length")
        }
        let payload = frame.payload
        fuzzCheck(payload.count == bytes.count - header, "Ethernet: payload length")
        report.mix(frame.destination.rawValue)
        report.mix(frame.source.rawValue)
        report.mix(UInt64(type))
        report.mix(payload)
        switch type {
        case EtherType.arp: decodeARP(payload, &report)
        case EtherType.ipv4: decodeIPv4(payload, &report)
        default: break
        }
    } catch {
        report.errors.append(error)
    }
}

func decodeARP(_ bytes: Span<UInt8>, _ report: inout FuzzReport) {
    do throws(TCPIPError) {
        let packet = try ARPPacket(checking: bytes)
        report.parsed.append(.arp)
        let operation = packet.operation
        fuzzCheck(operation == be16(bytes, 6), "ARP: operation")
        fuzzCheck(packet.senderHardware == MACAddress(bytes, at: 8), "ARP: sender MAC")
        fuzzCheck(packet.senderProtocol.rawValue == be32(bytes, 14), "ARP: sender IP")
        fuzzCheck(packet.targetHardware == MACAddress(bytes, at: 18), "ARP: target MAC")
        fuzzCheck(packet.targetProtocol.rawValue == be32(bytes, 24), "ARP: target IP")
        report.mix(UInt64(operation))
        report.mix(packet.senderHardware.rawValue ^ packet.targetHardware.rawValue)
        report.mix(UInt64(packet.senderProtocol.rawValue) << 32 | UInt64(packet.targetProtocol.rawValue))
        guard let message = ARPMessage(packet) else {
            fuzzCheck(operation != 1 && operation != 2, "ARP: request or reply not parsed")
            return
        }
        // Emit writes back exactly the 28 bytes that were parsed.
        var out = [UInt8](repeating: 0xAA, count: ARPMessage.length)
        var span = out.mutableSpan
        message.emit(into: &span)
        fuzzCheck(sameBytes(out.span, bytes.extracting(0..<ARPPacket.length)), "ARP: emit differs from parsed bytes")
        do throws(TCPIPError) {
            let again = try ARPPacket(checking: out.span)
            fuzzCheck(ARPMessage(again) == message, "ARP: emit → parse round trip")
        } catch {
            fuzzFail("ARP: emitted packet does not parse")
        }
    } catch {
        report.errors.append(error)
    }
}

func decodeIPv4(_ bytes: Span<UInt8>, _ report: inout FuzzReport) {
    var verifiedError: TCPIPError? = nil
    do throws(TCPIPError) {
        let packet = try IPv4Packet(checking: bytes, verifyChecksum: true)
        report.parsed.append(.ipv4)
        fuzzCheck(referenceSum(packet.header) == 0xFFFF, "IPv4: verified a bad header checksum")
        checkChecksumSplits(packet.header)
    } catch {
        verifiedError = error
        report.errors.append(error)
    }
    do throws(TCPIPError) {
        let packet = try IPv4Packet(checking: bytes, verifyChecksum: false)
        fuzzCheck(verifiedError == nil || verifiedError == .badChecksum(.ipv4), "IPv4: only the checksum may differ")
        if verifiedError == .badChecksum(.ipv4) {
            fuzzCheck(referenceSum(packet.header) != 0xFFFF, "IPv4: refused a good header checksum")
        }
        readIPv4(packet, from: bytes, &report)
        if packet.headerLength == IPv4Packet.minimumHeaderLength {
            checkIPv4RoundTrip(packet, verified: verifiedError == nil)
        }
        // A later fragment carries no transport header; a first fragment
        // does (its stated UDP length then exceeds the fragment).
        guard packet.fragmentOffset == 0 else { return }
        let source = packet.source, destination = packet.destination
        switch packet.protocol {
        case IPProtocol.icmp: decodeICMPv4(packet.payload, &report)
        case IPProtocol.udp: decodeUDP(packet.payload, source: source, destination: destination, &report)
        case IPProtocol.tcp: decodeTCP(packet.payload, source: source, destination: destination, &report)
        default: break
        }
    } catch {
        fuzzCheck(verifiedError == error, "IPv4: unverified parse failed differently")
    }
}

/// Reads every IPv4 accessor and checks it against the raw bytes.
func readIPv4(_ packet: borrowing IPv4Packet, from bytes: Span<UInt8>, _ report: inout FuzzReport) {
    let ihl = Int(bytes[0] & 0x0F) * 4
    let stated = Int(be16(bytes, 2))
    fuzzCheck(bytes[0] >> 4 == 4, "IPv4: version")
    fuzzCheck(packet.headerLength == ihl && ihl >= IPv4Packet.minimumHeaderLength, "IPv4: header length")
    fuzzCheck(packet.totalLength == stated && stated >= ihl && stated <= bytes.count, "IPv4: total length")
    fuzzCheck(packet.bytes.count == stated, "IPv4: bytes not cut to total length")
    fuzzCheck(packet.header.count == ihl, "IPv4: header span")
    fuzzCheck(packet.payload.count == stated - ihl, "IPv4: payload span")
    fuzzCheck(packet.typeOfService == bytes[1], "IPv4: TOS")
    fuzzCheck(packet.identification == be16(bytes, 4), "IPv4: identification")
    let flags = be16(bytes, 6)
    fuzzCheck(packet.dontFragment == (flags & 0x4000 != 0), "IPv4: DF")
    fuzzCheck(packet.moreFragments == (flags & 0x2000 != 0), "IPv4: MF")
    fuzzCheck(packet.fragmentOffset == Int(flags & 0x1FFF) * 8, "IPv4: fragment offset")
    fuzzCheck(packet.isFragment == (flags & 0x3FFF != 0), "IPv4: isFragment")
    fuzzCheck(packet.timeToLive == bytes[8], "IPv4: TTL")
    fuzzCheck(packet.protocol == bytes[9], "IPv4: protocol")
    fuzzCheck(packet.source.rawValue == be32(bytes, 12), "IPv4: source")
    fuzzCheck(packet.destination.rawValue == be32(bytes, 16), "IPv4: destination")
    report.mix(UInt64(packet.typeOfService) << 56 | UInt64(packet.identification) << 40 | UInt64(packet.timeToLive) << 32
        | UInt64(packet.protocol) << 24 | UInt64(packet.fragmentOffset))
    report.mix(UInt64(packet.source.rawValue) << 32 | UInt64(packet.destination.rawValue))
    report.mix(packet.header)
    report.mix(packet.payload)
}

/// An option-less header rebuilt from the parsed fields equals the parsed
/// one (except the reserved flag bit, which emit clears) and verifies.
func checkIPv4RoundTrip(_ packet: borrowing IPv4Packet, verified: Bool) {
    let original = packet.bytes
    let header = IPv4Header(source: packet.source, destination: packet.destination, protocol: packet.protocol,
                            payloadLength: packet.totalLength - IPv4Header.length, timeToLive: packet.timeToLive,
                            identification: packet.identification, dontFragment: packet.dontFragment,
                            moreFragments: packet.moreFragments, fragmentOffset: packet.fragmentOffset,
                            typeOfService: packet.typeOfService)
    var out = copyBytes(original)
    var span = out.mutableSpan
    header.emit(into: &span)
    for i in 0..<IPv4Header.length where i != 10 && i != 11 {
        let mask: UInt8 = i == 6 ? 0x7F : 0xFF
        fuzzCheck(out[i] == original[i] & mask, "IPv4: emit differs from parsed header")
    }
    if verified && original[6] & 0x80 == 0 {
        fuzzCheck(sameChecksum(be16(out.span, 10), be16(original, 10)), "IPv4: emitted checksum differs")
    }
    do throws(TCPIPError) {
        let again = try IPv4Packet(checking: out.span, verifyChecksum: true)
        fuzzCheck(again.totalLength == packet.totalLength && again.headerLength == IPv4Header.length,
                  "IPv4: emit → parse lengths")
    } catch {
        fuzzFail("IPv4: emitted header does not parse")
    }
}

func decodeICMPv4(_ bytes: Span<UInt8>, _ report: inout FuzzReport) {
    var verifiedError: TCPIPError? = nil
    do throws(TCPIPError) {
        _ = try ICMPv4Message(checking: bytes, verifyChecksum: true)
        report.parsed.append(.icmp)
        fuzzCheck(referenceSum(bytes) == 0xFFFF, "ICMP: verified a bad checksum")
    } catch {
        verifiedError = error
        report.errors.append(error)
    }
    checkChecksumSplits(bytes)
    do throws(TCPIPError) {
        let message = try ICMPv4Message(checking: bytes, verifyChecksum: false)
        fuzzCheck(verifiedError == nil || verifiedError == .badChecksum(.icmp), "ICMP: only the checksum may differ")
        if verifiedError == .badChecksum(.icmp) {
            fuzzCheck(referenceSum(bytes) != 0xFFFF, "ICMP: refused a good checksum")
        }
        fuzzCheck(message.bytes.count == bytes.count, "ICMP: bytes cut")
        fuzzCheck(message.type == bytes[0] && message.code == bytes[1], "ICMP: type and code")
        fuzzCheck(message.identifier == be16(bytes, 4) && message.sequence == be16(bytes, 6), "ICMP: echo fields")
        fuzzCheck(message.nextHopMTU == be16(bytes, 6), "ICMP: next-hop MTU")
        fuzzCheck(message.restOfHeader == be32(bytes, 4), "ICMP: rest of header")
        fuzzCheck(message.data.count == bytes.count - ICMPv4Message.headerLength, "ICMP: data span")
        report.mix(UInt64(message.type) << 40 | UInt64(message.code) << 32 | UInt64(message.restOfHeader))
        report.mix(UInt64(message.identifier) << 16 | UInt64(message.sequence) | UInt64(message.nextHopMTU) << 32)
        report.mix(message.data)

        // Rebuild the header over the same data: same bytes, and it verifies.
        let header = ICMPv4Header(type: message.type, code: message.code, restOfHeader: message.restOfHeader)
        var out = copyBytes(bytes)
        var span = out.mutableSpan
        header.emit(into: &span, dataLength: message.data.count)
        for i in 0..<bytes.count where i != 2 && i != 3 {
            fuzzCheck(out[i] == bytes[i], "ICMP: emit differs from parsed message")
        }
        if verifiedError == nil {
            fuzzCheck(sameChecksum(be16(out.span, 2), be16(bytes, 2)), "ICMP: emitted checksum differs")
        }
        do throws(TCPIPError) {
            _ = try ICMPv4Message(checking: out.span, verifyChecksum: true)
        } catch {
            fuzzFail("ICMP: emitted message does not verify")
        }

        // Errors quote the offending datagram's header (RFC 792): read it
        // as far as it parses, one level deep.
        switch message.type {
        case ICMPv4Message.MessageType.destinationUnreachable, ICMPv4Message.MessageType.timeExceeded,
             ICMPv4Message.MessageType.parameterProblem:
            let quoted = message.data
            do throws(TCPIPError) {
                let inner = try IPv4Packet(checking: quoted, verifyChecksum: false)
                readIPv4(inner, from: quoted, &report)
            } catch {
                report.mix(UInt64(quoted.count))
            }
        default:
            break
        }
    } catch {
        fuzzCheck(verifiedError == error, "ICMP: unverified parse failed differently")
    }
}

func decodeUDP(_ bytes: Span<UInt8>, source: IPv4Address, destination: IPv4Address, _ report: inout FuzzReport) {
    var verifiedError: TCPIPError? = nil
    do throws(TCPIPError) {
        let datagram = try UDPDatagram(checking: bytes, source: source, destination: destination, verifyChecksum: true)
        report.parsed.append(.udp)
        if datagram.checksum != 0 {
            fuzzCheck(udpReferenceSum(datagram.bytes, source, destination) == 0xFFFF, "UDP: verified a bad checksum")
        }
    } catch {
        verifiedError = error
        report.errors.append(error)
    }
    do throws(TCPIPError) {
        let datagram = try UDPDatagram(checking: bytes, source: source, destination: destination, verifyChecksum: false)
        checkChecksumSplits(datagram.bytes)
        fuzzCheck(verifiedError == nil || verifiedError == .badChecksum(.udp), "UDP: only the checksum may differ")
        let stated = Int(be16(bytes, 4))
        if verifiedError == .badChecksum(.udp) {
            fuzzCheck(be16(bytes, 6) != 0, "UDP: checked an absent checksum")
            fuzzCheck(udpReferenceSum(bytes.extracting(0..<stated), source, destination) != 0xFFFF,
                      "UDP: refused a good checksum")
        }
        fuzzCheck(datagram.bytes.count == stated && stated >= UDPDatagram.headerLength && stated <= bytes.count,
                  "UDP: length")
        fuzzCheck(datagram.sourcePort == be16(bytes, 0) && datagram.destinationPort == be16(bytes, 2), "UDP: ports")
        fuzzCheck(datagram.checksum == be16(bytes, 6), "UDP: checksum field")
        fuzzCheck(datagram.payload.count == stated - UDPDatagram.headerLength, "UDP: payload span")
        report.mix(UInt64(datagram.sourcePort) << 32 | UInt64(datagram.destinationPort) << 16 | UInt64(datagram.checksum))
        report.mix(datagram.payload)

        // Rebuild the header over the same payload: same ports and length,
        // a checksum that verifies (and equals a verified original).
        let header = UDPHeader(sourcePort: datagram.sourcePort, destinationPort: datagram.destinationPort,
                               payloadLength: datagram.payload.count)
        var out = copyBytes(datagram.bytes)
        var span = out.mutableSpan
        header.emit(into: &span, source: source, destination: destination)
        for i in 0..<6 { fuzzCheck(out[i] == bytes[i], "UDP: emit differs from parsed header") }
        let emitted = be16(out.span, 6)
        fuzzCheck(emitted != 0, "UDP: emitted checksum 0 (RFC 768: send 0xFFFF)")
        if verifiedError == nil && datagram.checksum != 0 {
            fuzzCheck(sameChecksum(emitted, datagram.checksum), "UDP: emitted checksum differs")
        }
        do throws(TCPIPError) {
            _ = try UDPDatagram(checking: out.span, source: source, destination: destination, verifyChecksum: true)
        } catch {
            fuzzFail("UDP: emitted datagram does not verify")
        }

        let ports = (datagram.sourcePort, datagram.destinationPort)
        if ports == (68, 67) || ports == (67, 68) { decodeDHCP(datagram.payload, &report) }
    } catch {
        fuzzCheck(verifiedError == error, "UDP: unverified parse failed differently")
    }
}

func decodeDHCP(_ bytes: Span<UInt8>, _ report: inout FuzzReport) {
    let reference = referenceDHCPOptions(bytes)
    do throws(TCPIPError) {
        let message = try DHCPMessage(checking: bytes)
        report.parsed.append(.dhcp)
        fuzzCheck(message.bytes.count == bytes.count, "DHCP: bytes cut")
        fuzzCheck(message.op == bytes[0], "DHCP: op")
        fuzzCheck(message.xid == be32(bytes, 4) && message.flags == be16(bytes, 10), "DHCP: xid and flags")
        fuzzCheck(message.ciaddr.rawValue == be32(bytes, 12) && message.yiaddr.rawValue == be32(bytes, 16)
            && message.siaddr.rawValue == be32(bytes, 20), "DHCP: addresses")
        let ethernet = bytes[1] == 1 && bytes[2] == 6
        fuzzCheck(message.clientHardwareAddress == (ethernet ? MACAddress(bytes, at: 28) : nil), "DHCP: chaddr")
        report.mix(UInt64(message.op) << 48 | UInt64(message.flags) << 32 | UInt64(message.xid))
        report.mix(UInt64(message.yiaddr.rawValue) << 32 | UInt64(message.ciaddr.rawValue ^ message.siaddr.rawValue))

        // Options come out as the plain RFC 2132 walk finds them.
        var visited: [(code: UInt8, count: Int)] = []
        var digest = report.digest
        message.forEachOption { code, value in
            visited.append((code, value.count))
            digest = (digest ^ (UInt64(code) << 8 | UInt64(value.count))) &* 0x100_0000_01b3
            if !value.isEmpty { digest ^= UInt64(value[0]) ^ UInt64(value[value.count - 1]) << 8 }
        }
        report.digest = digest
        switch reference {
        case .options(let expected):
            fuzzCheck(visited.count == expected.count && zip(visited, expected).allSatisfy { $0 == $1 },
                      "DHCP: options differ from the reference walk")
        case .refused:
            fuzzFail("DHCP: accepted a message the reference refuses")
        case .ambiguous:
            break
        }
    } catch {
        report.errors.append(error)
        switch (reference, error) {
        case (.refused(let expected), _): fuzzCheck(error == expected, "DHCP: refused for another reason")
        case (.ambiguous, .malformedDHCPOption): break
        default: fuzzFail("DHCP: refused a message the reference accepts")
        }
    }
}

/// What the reference walk of a DHCP message finds.
enum ReferenceDHCP {
    /// (code, value length) of every option, in order.
    case options([(code: UInt8, count: Int)])
    /// The error a decoder must throw.
    case refused(TCPIPError)
    /// More than one overload option: which one counts is the decoder's choice.
    case ambiguous
}

/// RFC 2131 §3 and RFC 2132 §2, written out plainly: 240 fixed bytes ending
/// in the magic cookie; options as code, length, value, with pad (0) and end
/// (255) single bytes; an overload option (52) moves more options into
/// `file` (bit 1) and `sname` (bit 2), walked in that order after the main
/// field.
func referenceDHCPOptions(_ bytes: Span<UInt8>) -> ReferenceDHCP {
    guard bytes.count >= 240 else { return .refused(.truncated(layer: .dhcp, expected: 240, got: bytes.count)) }
    let cookie = be32(bytes, 236)
    guard cookie == 0x6382_5363 else { return .refused(.badDHCPCookie(cookie)) }
    var found: [(code: UInt8, count: Int)] = []
    var overloads: [UInt8] = []
    func walk(_ range: Range<Int>, main: Bool) -> TCPIPError? {
        var i = range.lowerBound
        while i < range.upperBound {
            let code = bytes[i]
            if code == 0 { i += 1; continue }
            if code == 255 { return nil }
            guard i + 1 < range.upperBound else { return .malformedDHCPOption(code: code) }
            let length = Int(bytes[i + 1])
            guard i + 2 + length <= range.upperBound else { return .malformedDHCPOption(code: code) }
            found.append((code, length))
            if main && code == 52 && length == 1 { overloads.append(bytes[i + 2] & 3) }
            i += 2 + length
        }
        return nil
    }
    if let error = walk(240..<bytes.count, main: true) { return .refused(error) }
    guard overloads.count <= 1 else { return .ambiguous }
    let overload = overloads.first ?? 0
    if overload & 1 != 0, let error = walk(108..<236, main: false) { return .refused(error) }
    if overload & 2 != 0, let error = walk(44..<108, main: false) { return .refused(error) }
    return .options(found)
}

func decodeTCP(_ bytes: Span<UInt8>, source: IPv4Address, destination: IPv4Address, _ report: inout FuzzReport) {
    // What the segment must decode to, from the raw bytes alone: the fixed
    // header and data offset, then the options, then (verified parse only)
    // the checksum over the pseudo-header and the whole segment.
    var offset = 0
    var headerError: TCPIPError? = nil
    if bytes.count < 20 {
        headerError = .truncated(layer: .tcp, expected: 20, got: bytes.count)
    } else {
        offset = Int(bytes[12] >> 4) * 4
        if offset < 20 || offset > bytes.count {
            headerError = .badLength(layer: .tcp, stated: offset, available: bytes.count)
        }
    }
    var reference = ReferenceTCPOptions()
    var optionError: TCPIPError? = nil
    var checksumGood = false
    if headerError == nil {
        optionError = reference.walk(bytes.extracting(20..<offset))
        checksumGood = tcpReferenceSum(bytes, source, destination) == 0xFFFF
    }
    let unverifiedError = headerError ?? optionError

    var verifiedError: TCPIPError? = nil
    do throws(TCPIPError) {
        _ = try TCPSegment(checking: bytes, source: source, destination: destination, verifyChecksum: true)
        report.parsed.append(.tcp)
    } catch {
        verifiedError = error
        report.errors.append(error)
    }
    if headerError != nil || checksumGood {
        fuzzCheck(verifiedError == unverifiedError, "TCP: verified parse differs from the reference")
    } else {
        // Bad checksum: refused for it, or for a bad option when the decoder
        // reads the options first.
        fuzzCheck(verifiedError == .badChecksum(.tcp) || (optionError != nil && verifiedError == optionError),
                  "TCP: accepted a bad checksum, or refused it differently")
    }

    do throws(TCPIPError) {
        let segment = try TCPSegment(checking: bytes, source: source, destination: destination, verifyChecksum: false)
        fuzzCheck(unverifiedError == nil, "TCP: accepted a segment the reference refuses")
        fuzzCheck(verifiedError == nil || verifiedError == .badChecksum(.tcp), "TCP: only the checksum may differ")
        checkChecksumSplits(bytes)
        readTCP(segment, from: bytes, offset: offset, reference: reference, &report)
        checkTCPRoundTrip(segment, from: bytes, source: source, destination: destination, verified: verifiedError == nil,
                          &report)
    } catch {
        fuzzCheck(error == unverifiedError, "TCP: refused differently from the reference")
        fuzzCheck(verifiedError == error || verifiedError == .badChecksum(.tcp), "TCP: unverified parse failed differently")
    }
}

/// Reads every TCP accessor and checks it against the raw bytes and the
/// reference walk of the options.
func readTCP(_ segment: borrowing TCPSegment, from bytes: Span<UInt8>, offset: Int, reference: ReferenceTCPOptions,
             _ report: inout FuzzReport) {
    fuzzCheck(segment.bytes.count == bytes.count, "TCP: bytes cut")
    fuzzCheck(segment.headerLength == offset, "TCP: header length differs from the data offset")
    fuzzCheck(segment.sourcePort == be16(bytes, 0) && segment.destinationPort == be16(bytes, 2), "TCP: ports")
    fuzzCheck(segment.sequenceNumber.rawValue == be32(bytes, 4), "TCP: sequence number")
    fuzzCheck(segment.acknowledgmentNumber.rawValue == be32(bytes, 8), "TCP: acknowledgment number")
    let flags = segment.flags
    fuzzCheck(flags.rawValue == bytes[13], "TCP: flags")
    fuzzCheck(flags.contains(.syn) == (bytes[13] & 0x02 != 0) && flags.contains(.fin) == (bytes[13] & 0x01 != 0)
        && flags.contains(.ack) == (bytes[13] & 0x10 != 0) && flags.contains(.rst) == (bytes[13] & 0x04 != 0),
        "TCP: flag bits")
    fuzzCheck(segment.window == be16(bytes, 14), "TCP: window")
    fuzzCheck(segment.urgentPointer == be16(bytes, 18), "TCP: urgent pointer")
    let payload = segment.payload
    fuzzCheck(payload.count == bytes.count - offset, "TCP: payload length")
    fuzzCheck(sameBytes(payload, bytes.extracting(offset...)), "TCP: payload bytes")
    let control = Int(bytes[13] & 0x01) + Int(bytes[13] >> 1 & 0x01)
    fuzzCheck(segment.sequenceLength == bytes.count - offset + control, "TCP: sequence length")
    let options = segment.options
    fuzzCheck(reference.matches(options), "TCP: options differ from the reference walk")
    do throws(TCPIPError) {
        let again = try TCPOptions(parsing: bytes.extracting(20..<offset))
        fuzzCheck(again == options, "TCP: TCPOptions(parsing:) differs from the segment's options")
    } catch {
        fuzzFail("TCP: TCPOptions(parsing:) refuses the segment's options")
    }
    report.mix(UInt64(segment.sourcePort) << 48 | UInt64(segment.destinationPort) << 32
        | UInt64(segment.sequenceNumber.rawValue))
    report.mix(UInt64(segment.acknowledgmentNumber.rawValue) << 32 | UInt64(flags.rawValue) << 24
        | UInt64(segment.window) << 8 | UInt64(segment.headerLength))
    report.mix(UInt64(segment.urgentPointer) << 32 | UInt64(segment.sequenceLength))
    report.mix(UInt64(options.maximumSegmentSize ?? 0) << 16 | UInt64(options.windowScale ?? 0xFF) << 8
        | (options.sackPermitted ? 1 : 0))
    if let timestamps = options.timestamps { report.mix(UInt64(timestamps.value) << 32 | UInt64(timestamps.echoReply)) }
    for block in options.sackBlocks { report.mix(UInt64(block.left.rawValue) << 32 | UInt64(block.right.rawValue)) }
    report.mix(payload)
}

/// A header rebuilt from the parsed fields and options, emitted over the
/// same payload, parses (checksum verified) to the same values. TCPHeader
/// lays the options out as Linux does, so only values are compared, except
/// for an option-less header, which comes back byte for byte (the reserved
/// bits cleared).
func checkTCPRoundTrip(_ segment: borrowing TCPSegment, from bytes: Span<UInt8>, source: IPv4Address,
                       destination: IPv4Address, verified: Bool, _ report: inout FuzzReport) {
    var header = TCPHeader(sourcePort: segment.sourcePort, destinationPort: segment.destinationPort,
                           sequenceNumber: segment.sequenceNumber, acknowledgmentNumber: segment.acknowledgmentNumber,
                           flags: segment.flags, window: segment.window, options: segment.options)
    header.urgentPointer = segment.urgentPointer
    // Options the parser accepts may not fit Linux's layout (which pads MSS,
    // SACK-permitted, timestamps and SACK blocks to 4-byte words): emit then
    // leaves out the SACK blocks that do not fit, never more than 40 bytes.
    let blocksKept = header.options.sackBlocksThatFit
    fuzzCheck(header.options.encodedLength <= TCPOptions.maximumLength, "TCP: options past 40 bytes")
    report.mix(UInt64(blocksKept))
    let payload = segment.payload
    let length = header.length
    fuzzCheck(length % 4 == 0 && length >= 20 && length <= 60, "TCP: emitted header length")
    var out = [UInt8](repeating: 0xAA, count: length + payload.count)
    var span = out.mutableSpan
    for i in payload.indices { span[length + i] = payload[i] }
    header.emit(into: &span, at: 0, payloadLength: payload.count, source: source, destination: destination)
    _ = consume span
    if segment.headerLength == 20 {
        for i in 0..<bytes.count where i != 12 && i != 16 && i != 17 {
            fuzzCheck(out[i] == bytes[i], "TCP: emit differs from an option-less header")
        }
        fuzzCheck(out[12] == bytes[12] & 0xF0, "TCP: emitted data offset")
        if verified && bytes[12] & 0x0F == 0 {
            fuzzCheck(sameChecksum(be16(out.span, 16), be16(bytes, 16)), "TCP: emitted checksum differs")
        }
    }
    do throws(TCPIPError) {
        let again = try TCPSegment(checking: out.span, source: source, destination: destination, verifyChecksum: true)
        fuzzCheck(again.headerLength == length, "TCP: emit → parse header length")
        fuzzCheck(again.sourcePort == segment.sourcePort && again.destinationPort == segment.destinationPort,
                  "TCP: emit → parse ports")
        fuzzCheck(again.sequenceNumber == segment.sequenceNumber
            && again.acknowledgmentNumber == segment.acknowledgmentNumber, "TCP: emit → parse sequence numbers")
        fuzzCheck(again.flags == segment.flags && again.window == segment.window
            && again.urgentPointer == segment.urgentPointer, "TCP: emit → parse flags, window, urgent pointer")
        let a = again.options, o = segment.options
        fuzzCheck(a.maximumSegmentSize == o.maximumSegmentSize && a.windowScale == o.windowScale
            && a.sackPermitted == o.sackPermitted && a.timestamps?.value == o.timestamps?.value
            && a.timestamps?.echoReply == o.timestamps?.echoReply, "TCP: emit → parse options")
        fuzzCheck(Array(a.sackBlocks) == Array(o.sackBlocks.prefix(blocksKept)), "TCP: emit → parse SACK blocks")
        fuzzCheck(sameBytes(again.payload, payload), "TCP: emit → parse payload")
        fuzzCheck(again.sequenceLength == segment.sequenceLength, "TCP: emit → parse sequence length")
    } catch {
        fuzzFail("TCP: emitted segment does not parse")
    }
}

/// RFC 9293 §3.1 (with RFC 7323 and RFC 2018), written out plainly: kind 0
/// ends the list, kind 1 is one byte of padding, every other kind has a
/// length byte counting itself and the kind, at least 2 and within the
/// field. MSS (2) is 4 bytes, window scale (3) 3, SACK-permitted (4) 2,
/// timestamps (8) 10, SACK (5) 2 + 8n with n ≥ 1; any other length for
/// these is refused, other kinds are skipped. A repeated option's last value
/// counts; SACK blocks add up, the first four kept.
struct ReferenceTCPOptions {
    var maximumSegmentSize: UInt16? = nil
    var windowScale: UInt8? = nil
    var sackPermitted = false
    var timestamps: (value: UInt32, echoReply: UInt32)? = nil
    var sackBlocks: [(left: UInt32, right: UInt32)] = []

    /// Walks `field`; returns the error a decoder must throw, if any.
    mutating func walk(_ field: Span<UInt8>) -> TCPIPError? {
        var i = 0
        while i < field.count {
            let kind = field[i]
            switch kind {
            case 0: return nil
            case 1: i += 1; continue
            default: break
            }
            guard i + 1 < field.count else { return .malformedTCPOption(kind: kind) }
            let length = Int(field[i + 1])
            guard length >= 2, length <= field.count - i else { return .malformedTCPOption(kind: kind) }
            let wanted: Bool
            switch kind {
            case 2:
                wanted = length == 4
                if wanted { maximumSegmentSize = be16(field, i + 2) }
            case 3:
                wanted = length == 3
                if wanted { windowScale = field[i + 2] }
            case 4:
                wanted = length == 2
                sackPermitted = sackPermitted || wanted
            case 5:
                wanted = length >= 10 && (length - 2) % 8 == 0
                var at = i + 2
                while wanted && at < i + length {
                    if sackBlocks.count < 4 { sackBlocks.append((be32(field, at), be32(field, at + 4))) }
                    at += 8
                }
            case 8:
                wanted = length == 10
                if wanted { timestamps = (be32(field, i + 2), be32(field, i + 6)) }
            default:
                wanted = true
            }
            guard wanted else { return .malformedTCPOption(kind: kind) }
            i += length
        }
        return nil
    }

    func matches(_ options: TCPOptions) -> Bool {
        guard options.maximumSegmentSize == maximumSegmentSize, options.windowScale == windowScale,
              options.sackPermitted == sackPermitted, options.sackBlocks.count == sackBlocks.count else { return false }
        switch (options.timestamps, timestamps) {
        case (nil, nil): break
        case let (a?, b?): guard a.value == b.value && a.echoReply == b.echoReply else { return false }
        default: return false
        }
        for (block, expected) in zip(options.sackBlocks, sackBlocks)
        where block.left.rawValue != expected.left || block.right.rawValue != expected.right {
            return false
        }
        return true
    }
}

// MARK: - Checks and reference helpers (independent of the module's own)

/// Traps with `message` when `condition` is false; unlike `precondition`,
/// the message is printed in optimized builds too.
@inline(__always)
func fuzzCheck(_ condition: Bool, _ message: StaticString, file: StaticString = #file, line: UInt = #line) {
    if !condition { fuzzFail(message, file: file, line: line) }
}

/// Traps with `message`.
@inline(never)
func fuzzFail(_ message: StaticString, file: StaticString = #file, line: UInt = #line) -> Never {
    fatalError("fuzz check failed: \(message)", file: file, line: line)
}

func be16(_ bytes: Span<UInt8>, _ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }
func be32(_ bytes: Span<UInt8>, _ at: Int) -> UInt32 { UInt32(be16(bytes, at)) << 16 | UInt32(be16(bytes, at + 2)) }

func copyBytes(_ bytes: Span<UInt8>) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    for i in bytes.indices { out.append(bytes[i]) }
    return out
}

func sameBytes(_ a: Span<UInt8>, _ b: Span<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    for i in a.indices where a[i] != b[i] { return false }
    return true
}

/// Two checksum fields that verify the same data: equal, or 0 and 0xFFFF
/// (the two ones'-complement zeros).
func sameChecksum(_ a: UInt16, _ b: UInt16) -> Bool { a == b || (a ^ b == 0xFFFF && (a == 0 || b == 0)) }

/// The folded ones'-complement sum (RFC 1071) in the plainest form: 16-bit
/// words, the odd byte padded with zero, summed in 64 bits, folded once at
/// the end.
func referenceSum(_ bytes: Span<UInt8>, adding extra: UInt64 = 0) -> UInt16 {
    var sum = extra
    var i = 0
    while i < bytes.count {
        sum += UInt64(bytes[i]) << 8 | (i + 1 < bytes.count ? UInt64(bytes[i + 1]) : 0)
        i += 2
    }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    return UInt16(sum)
}

func udpReferenceSum(_ datagram: Span<UInt8>, _ source: IPv4Address, _ destination: IPv4Address) -> UInt16 {
    let pseudo = UInt64(source.rawValue >> 16) + UInt64(source.rawValue & 0xFFFF)
        + UInt64(destination.rawValue >> 16) + UInt64(destination.rawValue & 0xFFFF)
        + UInt64(IPProtocol.udp) + UInt64(datagram.count)
    return referenceSum(datagram, adding: pseudo)
}

func tcpReferenceSum(_ segment: Span<UInt8>, _ source: IPv4Address, _ destination: IPv4Address) -> UInt16 {
    let pseudo = UInt64(source.rawValue >> 16) + UInt64(source.rawValue & 0xFFFF)
        + UInt64(destination.rawValue >> 16) + UInt64(destination.rawValue & 0xFFFF)
        + UInt64(IPProtocol.tcp) + UInt64(segment.count)
    return referenceSum(segment, adding: pseudo)
}

/// InternetChecksum fed in two pieces, split anywhere (odd splits carry a
/// byte over), folds to the same sum as the reference.
func checkChecksumSplits(_ bytes: Span<UInt8>) {
    let expected = referenceSum(bytes)
    fuzzCheck(InternetChecksum.of(bytes) == ~expected, "checksum: whole differs from reference")
    for split in [0, 1, bytes.count / 2, bytes.count / 2 + 1, bytes.count - 1] where split >= 0 && split <= bytes.count {
        var sum = InternetChecksum()
        sum.add(bytes.extracting(0..<split))
        sum.add(bytes.extracting(split...))
        fuzzCheck(sum.foldedSum == expected, "checksum: split sum differs from reference")
    }
}
