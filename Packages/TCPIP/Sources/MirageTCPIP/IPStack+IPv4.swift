import MirageDevices

extension IPStack {
    // MARK: IPv4 receive

    func receiveIPv4(_ bytes: Span<UInt8>, checksumVerified: Bool, now: Instant) {
        let packet: IPv4Packet
        do {
            packet = try IPv4Packet(checking: bytes, verifyChecksum: !checksumVerified)
        } catch {
            if case .badChecksum = error { statistics.droppedBadIPv4Checksum += 1 } else { statistics.droppedMalformedIPv4 += 1 }
            return
        }
        let destination = packet.destination
        guard acceptsDestination(destination, protocol: packet.protocol) else {
            statistics.droppedNotOurAddress += 1
            return
        }
        if packet.isFragment {
            switch reassembler.add(packet, now: now) {
            case .incomplete:
                return
            case .complete(let payload):
                statistics.reassembled += 1
                let info = DatagramInfo(source: packet.source, destination: destination, protocol: packet.protocol,
                                        header: Self.reassembledHeader(packet.header, payloadLength: payload.count),
                                        checksumVerified: false)
                deliverIPv4Payload(payload.span, info: info, now: now)
            case .duplicate, .datagramDropped, .overLimit:
                statistics.droppedFragments += 1
            }
            return
        }
        let info = DatagramInfo(source: packet.source, destination: destination, protocol: packet.protocol,
                                header: nil, checksumVerified: checksumVerified)
        deliverIPv4Payload(packet.payload, info: info, now: now, quoted: packet.bytes)
    }

    /// The header of a reassembled datagram, as ICMP errors about it quote
    /// it: the last fragment's header with the offset and MF cleared, the
    /// total length of the whole datagram and a fresh checksum (what Linux
    /// quotes after reassembly), so the sender can match it to a socket.
    static func reassembledHeader(_ fragmentHeader: Span<UInt8>, payloadLength: Int) -> [UInt8] {
        var header = Array(copying: fragmentHeader)
        let total = min(header.count + payloadLength, IPv4Packet.maximumLength)
        var span = header.mutableSpan
        span.setU16(UInt16(total), at: IPv4Packet.Offset.totalLength)
        let flags = span.span.u16(at: IPv4Packet.Offset.flagsAndFragmentOffset) & IPv4Packet.dontFragmentBit
        span.setU16(flags, at: IPv4Packet.Offset.flagsAndFragmentOffset)
        span.setU16(0, at: IPv4Packet.Offset.checksum)
        let sum = InternetChecksum.of(span.span)
        span.setU16(sum, at: IPv4Packet.Offset.checksum)
        _ = consume span
        return header
    }

    func acceptsDestination(_ destination: IPv4Address, protocol proto: UInt8) -> Bool {
        if destination == .broadcast { return true }
        if destination.isMulticast { return multicastGroups.contains(destination) }
        if let config = configuration.ipv4 {
            return destination == config.address || (config.prefixLength < 31 && destination == config.broadcast)
        }
        // Unconfigured: DHCP offers may be unicast to the address offered.
        return dhcpClient != nil && proto == IPProtocol.udp
    }

    /// Dispatches a datagram's payload. `quoted` is the original packet
    /// (header and payload) for ICMP errors about it; a reassembled
    /// datagram passes nil and errors quote its first header.
    func deliverIPv4Payload(_ payload: Span<UInt8>, info: DatagramInfo, now: Instant, quoted: Span<UInt8>? = nil) {
        switch info.protocol {
        case IPProtocol.icmp:
            receiveICMP(payload, info: info, now: now)
        case IPProtocol.udp:
            receiveUDP(payload, info: info, now: now, quoted: quoted)
        case IPProtocol.tcp:
            receiveTCP(payload, info: info, now: now)
        default:
            // RFC 1122 §3.2.2.1: protocol unreachable for unknown protocols.
            statistics.droppedUnknownProtocol += 1
            sendICMPError(type: ICMPv4Message.MessageType.destinationUnreachable,
                          code: ICMPv4Message.UnreachableCode.protocol, restOfHeader: 0,
                          about: info, payload: payload, quoted: quoted, now: now)
        }
    }

    // MARK: IPv4 send

    /// Where a datagram to `destination` goes on the link: its MAC address
    /// if already known (broadcast, multicast, cached), or the next hop to
    /// resolve.
    enum NextHop {
        case mac(MACAddress)
        case resolve(IPv4Address)
    }

    func nextHop(for destination: IPv4Address, now: Instant) throws(TCPIPError) -> NextHop {
        if destination == .broadcast { return .mac(.broadcast) }
        if destination.isMulticast { return .mac(Self.multicastMAC(destination)) }
        guard let config = configuration.ipv4 else { throw .noRoute(destination) }
        if config.prefixLength < 31 && destination == config.broadcast { return .mac(.broadcast) }
        let hop: IPv4Address
        if config.isOnLink(destination) {
            hop = destination
        } else if let gateway = config.gateway {
            hop = gateway
        } else {
            throw .noRoute(destination)
        }
        if let mac = arp.lookup(hop, now: now, actions: &arpActions) { return .mac(mac) }
        return .resolve(hop)
    }

    func nextIdentificationValue() -> UInt16 {
        nextIdentification &+= 1
        return nextIdentification
    }

    /// Sends one IPv4 datagram whose payload `fill` writes at the given
    /// offset of the buffer (`payloadLength` bytes), fragmenting to the MTU
    /// when needed. Throws `wouldBlock` (as `.device`) only when nothing was
    /// sent; datagrams waiting for ARP are queued.
    ///
    /// With `metadata` other than `.none` (offloads the interface
    /// announced) the datagram goes straight to the device or not at all:
    /// `offloadUnavailable` when the next hop is not resolved yet (a queued
    /// datagram is sent later without metadata); a datagram the device
    /// segments may exceed the MTU.
    func sendIPv4(to destination: IPv4Address, from source: IPv4Address? = nil, protocol proto: UInt8,
                  payloadLength: Int, dontFragment: Bool = false, metadata: TransmitMetadata = .none,
                  _ fill: (inout MutableSpan<UInt8>, Int) -> Void) throws(TCPIPError) {
        let limit = IPv4Packet.maximumLength - IPv4Header.length
        guard payloadLength >= 0, payloadLength <= limit else { throw .datagramTooLarge(size: payloadLength, limit: limit) }
        let now = clock.now()
        let hop = try nextHop(for: destination, now: now)
        defer { performARPActions(now: now) }
        let offloaded = metadata.checksum != nil || metadata.segmentation != nil
        if offloaded {
            guard case .mac = hop else { throw .offloadUnavailable }
        }
        let src = source ?? configuration.ipv4?.address ?? .any
        let mtu = linkMTU
        let fits = IPv4Header.length + payloadLength <= mtu || metadata.segmentation != nil
        var header = IPv4Header(source: src, destination: destination, protocol: proto, payloadLength: payloadLength,
                                timeToLive: configuration.timeToLive, dontFragment: dontFragment)
        // Atomic datagrams (DF set) may carry any ID (RFC 6864 §4.1); give
        // every datagram a fresh one anyway, which is simplest for peers.
        header.identification = nextIdentificationValue()

        if fits, case .mac(let mac) = hop {
            let length = EthernetHeader.length + IPv4Header.length + payloadLength
            let ourMAC = interface.macAddress
            do {
                try interface.transmit(length: length, metadata: metadata) { buffer in
                    EthernetHeader(destination: mac, source: ourMAC, etherType: EtherType.ipv4).emit(into: &buffer)
                    fill(&buffer, EthernetHeader.length + IPv4Header.length)
                    header.emit(into: &buffer, at: EthernetHeader.length)
                    return length
                }
            } catch {
                // The device may refuse an offload it cannot do after all
                // (a frame over its segmentation limit): try without.
                if offloaded, case .invalidArgument = error { throw .offloadUnavailable }
                if offloaded, case .frameTooLarge = error { throw .offloadUnavailable }
                throw .device(error)
            }
            statistics.framesTransmitted += 1
            return
        }
        guard fits || !dontFragment else { throw .datagramTooLarge(size: payloadLength, limit: mtu - IPv4Header.length) }

        // Compose the whole datagram once: cut into fragments now, or
        // queued whole while ARP resolves (so the per-address queue limit
        // counts datagrams, not fragments) and cut when released.
        var packet = [UInt8](repeating: 0, count: IPv4Header.length + payloadLength)
        var span = packet.mutableSpan
        fill(&span, IPv4Header.length)
        header.emit(into: &span, at: 0)
        _ = consume span
        switch hop {
        case .mac(let mac):
            guard transmitFragments(header, payload: packet.span.extracting(IPv4Header.length...), to: mac) else {
                throw .device(.wouldBlock)
            }
        case .resolve(let hopAddress):
            guard arp.enqueue(packet, for: hopAddress, now: now, actions: &arpActions) else {
                throw .pendingQueueFull(hopAddress)
            }
            rearmTimer()
        }
    }

    /// Sends `payload` under `header` to `mac`, cut into fragments of at
    /// most the MTU (data a multiple of 8 bytes, RFC 791 §3.2). Returns false
    /// when the device refused the first fragment (nothing was sent);
    /// a refusal later drops the rest, which would be useless alone.
    func transmitFragments(_ header: IPv4Header, payload: Span<UInt8>, to mac: MACAddress) -> Bool {
        let payloadLength = payload.count
        let perFragment = max(8, (linkMTU - IPv4Header.length) / 8 * 8)
        let ourMAC = interface.macAddress
        var offset = 0
        repeat {
            let size = min(perFragment, payloadLength - offset)
            var fragmentHeader = header
            fragmentHeader.payloadLength = size
            fragmentHeader.fragmentOffset = header.fragmentOffset + offset
            fragmentHeader.moreFragments = header.moreFragments || offset + size < payloadLength
            let length = EthernetHeader.length + IPv4Header.length + size
            let start = offset
            do {
                try interface.transmit(length: length, metadata: .none) { buffer in
                    EthernetHeader(destination: mac, source: ourMAC, etherType: EtherType.ipv4).emit(into: &buffer)
                    fragmentHeader.emit(into: &buffer, at: EthernetHeader.length)
                    let base = EthernetHeader.length + IPv4Header.length
                    buffer.copy(payload.extracting(start..<(start + size)), to: base)
                    return length
                }
            } catch {
                if offset == 0 { return false }
                statistics.transmitDropped += 1
                return true
            }
            statistics.framesTransmitted += 1
            statistics.fragmentsSent += 1
            offset += size
        } while offset < payloadLength
        return true
    }

    /// Sends a whole IPv4 packet (queued while ARP resolved) to `mac`,
    /// fragmenting it when it exceeds the MTU.
    func transmitIPv4Packet(_ packet: [UInt8], to mac: MACAddress) {
        if packet.count > linkMTU {
            guard let view = try? IPv4Packet(checking: packet.span, verifyChecksum: false) else { return }
            let header = IPv4Header(source: view.source, destination: view.destination, protocol: view.protocol,
                                    payloadLength: view.payload.count, timeToLive: view.timeToLive,
                                    identification: view.identification, dontFragment: false,
                                    moreFragments: view.moreFragments, fragmentOffset: view.fragmentOffset,
                                    typeOfService: view.typeOfService)
            if !transmitFragments(header, payload: view.payload, to: mac) { statistics.transmitDropped += 1 }
            return
        }
        let length = EthernetHeader.length + packet.count
        let ourMAC = interface.macAddress
        do {
            try interface.transmit(length: length, metadata: .none) { buffer in
                EthernetHeader(destination: mac, source: ourMAC, etherType: EtherType.ipv4).emit(into: &buffer)
                buffer.copy(packet.span, to: EthernetHeader.length)
                return length
            }
            statistics.framesTransmitted += 1
        } catch {
            statistics.transmitDropped += 1
        }
    }

    // MARK: Path MTU (RFC 1191)

    /// The path MTU to `destination`: learned from ICMP "fragmentation
    /// needed", else the interface MTU.
    public func pathMTU(to destination: IPv4Address) -> Int {
        if let entry = pathMTUs[destination], entry.expires > clock.now() { return min(entry.mtu, linkMTU) }
        return linkMTU
    }

    func learnPathMTU(_ reported: Int, for destination: IPv4Address, quotedTotalLength: Int, now: Instant) {
        // RFC 1191 §5: a router that says 0 predates the RFC; guess the
        // next plateau below the datagram's length. Never below 68 (RFC 791).
        var mtu = reported
        if mtu == 0 {
            let plateaus = [32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68]
            mtu = plateaus.first { $0 < quotedTotalLength } ?? 68
        }
        mtu = max(68, min(mtu, linkMTU))
        // RFC 1191 §6.3: only ever lower an estimate on a report; raising
        // it again is the expiry's job.
        guard mtu < pathMTU(to: destination) else { return }
        if pathMTUs[destination] == nil && pathMTUs.count >= configuration.maximumPathMTUEntries {
            // Make room: forget the entry closest to expiry.
            if let oldest = pathMTUs.min(by: { $0.value.expires < $1.value.expires })?.key { pathMTUs[oldest] = nil }
        }
        pathMTUs[destination] = PathMTU(mtu: mtu, expires: now + configuration.pathMTULifetime)
    }
}

/// What the layers above IPv4 need to know of a datagram.
struct DatagramInfo {
    var source: IPv4Address
    var destination: IPv4Address
    var `protocol`: UInt8
    /// The first fragment's header, for ICMP errors about reassembled datagrams.
    var header: [UInt8]?
    var checksumVerified: Bool
}

extension Array where Element == UInt8 {
    init(copying span: Span<UInt8>) {
        self.init()
        append(span: span)
    }
}
