import MirageDevices

extension IPStack {
    func receiveICMP(_ bytes: Span<UInt8>, info: DatagramInfo, now: Instant) {
        let message: ICMPv4Message
        do {
            message = try ICMPv4Message(checking: bytes)
        } catch {
            if case .badChecksum = error { statistics.droppedBadICMPChecksum += 1 } else { statistics.droppedMalformedICMP += 1 }
            return
        }
        typealias T = ICMPv4Message.MessageType
        switch message.type {
        case T.echoRequest:
            // Like Linux's icmp_echo_ignore_broadcasts: only unicast pings
            // are answered (RFC 1122 §3.2.2.6 allows either).
            guard let ours = configuration.ipv4?.address, info.destination == ours else { return }
            replyToEcho(message, to: info.source, from: ours)
        case T.echoReply:
            echoReplyHandler?.echoReplyReceived(from: info.source, identifier: message.identifier,
                                                sequence: message.sequence, payloadLength: message.data.count)
        case T.destinationUnreachable, T.timeExceeded, T.parameterProblem:
            receiveICMPError(message, now: now)
        default:
            break
        }
    }

    func replyToEcho(_ request: borrowing ICMPv4Message, to destination: IPv4Address, from source: IPv4Address) {
        let data = request.data
        let dataLength = data.count
        let rest = request.restOfHeader
        do {
            try sendIPv4(to: destination, from: source, protocol: IPProtocol.icmp,
                         payloadLength: ICMPv4Header.length + dataLength) { buffer, offset in
                buffer.copy(data, to: offset + ICMPv4Header.length)
                ICMPv4Header(type: ICMPv4Message.MessageType.echoReply, code: 0, restOfHeader: rest)
                    .emit(into: &buffer, at: offset, dataLength: dataLength)
            }
            statistics.echoRepliesSent += 1
        } catch {
            statistics.transmitDropped += 1
        }
    }

    /// Sends an ICMP echo request to `destination`; the reply goes to
    /// `echoReplyHandler`.
    public func ping(_ destination: IPv4Address, identifier: UInt16, sequence: UInt16, payloadLength: Int = 56) throws(DeviceError) {
        // RFC 1122 §3.2.1.3: 0.0.0.0 is a source only while learning an address.
        guard configuration.ipv4 != nil else { throw .networkUnreachable(.v4(destination)) }
        let restOfHeader = UInt32(identifier) << 16 | UInt32(sequence)
        do {
            try sendIPv4(to: destination, protocol: IPProtocol.icmp, payloadLength: ICMPv4Header.length + payloadLength) { buffer, offset in
                for i in 0..<payloadLength { buffer[offset + ICMPv4Header.length + i] = UInt8(truncatingIfNeeded: i) }
                ICMPv4Header(type: ICMPv4Message.MessageType.echoRequest, code: 0, restOfHeader: restOfHeader)
                    .emit(into: &buffer, at: offset, dataLength: payloadLength)
            }
        } catch {
            throw deviceError(error)
        }
    }

    /// An incoming error: find the socket that sent the quoted datagram.
    func receiveICMPError(_ message: borrowing ICMPv4Message, now: Instant) {
        guard let inner = QuotedDatagram(message.data) else {
            statistics.droppedMalformedICMP += 1
            return
        }
        // RFC 5927 §4.1: an error must quote a datagram we could have sent;
        // anything else is ignored (a spoofed "fragmentation needed" could
        // otherwise pin the path MTU of any destination to 68).
        guard let ours = configuration.ipv4?.address, inner.source == ours else {
            statistics.droppedMalformedICMP += 1
            return
        }
        typealias T = ICMPv4Message.MessageType
        let report: ICMPReport
        switch message.type {
        case T.destinationUnreachable where message.code == ICMPv4Message.UnreachableCode.fragmentationNeeded:
            report = .fragmentationNeeded(nextHopMTU: Int(message.nextHopMTU))
            learnPathMTU(Int(message.nextHopMTU), for: inner.destination, quotedTotalLength: inner.totalLength, now: now)
        case T.destinationUnreachable:
            report = .destinationUnreachable(code: message.code)
        case T.timeExceeded:
            report = .timeExceeded(code: message.code)
        default:
            report = .parameterProblem
        }
        if inner.protocol == IPProtocol.tcp, inner.fragmentOffset == 0 {
            receiveTCPError(report, about: inner, now: now)
            return
        }
        guard inner.protocol == IPProtocol.udp, inner.fragmentOffset == 0,
              let sourcePort = inner.sourcePort, let destinationPort = inner.destinationPort,
              let (id, socket) = udpSocket(port: sourcePort, address: inner.source)
        else { return }
        statistics.icmpErrorsReceived += 1
        socket.handler.errorReceived(report, about: Endpoint(.v4(inner.destination), destinationPort), on: id)
    }

    /// Sends an ICMP error about a received datagram, unless RFC 1122
    /// §3.2.2 forbids it or the rate limit says no.
    func sendICMPError(type: UInt8, code: UInt8, restOfHeader: UInt32, about info: DatagramInfo,
                       payload: Span<UInt8>, quoted: Span<UInt8>?, now: Instant) {
        guard let ours = configuration.ipv4?.address, info.destination == ours,
              info.source != .any, info.source != .broadcast, !info.source.isMulticast,
              !(configuration.ipv4.map { $0.prefixLength < 31 && info.source == $0.broadcast } ?? false)
        else { return }
        guard icmpLimiter.allow(now: now) else {
            statistics.icmpErrorsRateLimited += 1
            return
        }
        // Quote the header and the first 8 bytes of payload (RFC 792);
        // RFC 1812 §4.3.2.3 allows more, up to 576 bytes in all.
        let quoteLimit = 576 - IPv4Header.length - ICMPv4Header.length
        var quote: [UInt8] = []
        if let quoted {
            let n = min(quoted.count, quoteLimit)
            for i in 0..<n { quote.append(quoted[i]) }
        } else if let header = info.header {
            quote = header
            let n = min(payload.count, max(0, quoteLimit - header.count))
            for i in 0..<n { quote.append(payload[i]) }
        } else {
            return
        }
        let dataLength = quote.count
        do {
            try sendIPv4(to: info.source, from: ours, protocol: IPProtocol.icmp,
                         payloadLength: ICMPv4Header.length + dataLength) { buffer, offset in
                for i in 0..<dataLength { buffer[offset + ICMPv4Header.length + i] = quote[i] }
                ICMPv4Header(type: type, code: code, restOfHeader: restOfHeader)
                    .emit(into: &buffer, at: offset, dataLength: dataLength)
            }
            statistics.icmpErrorsSent += 1
        } catch {
            statistics.transmitDropped += 1
        }
    }
}

func deviceError(_ error: TCPIPError) -> DeviceError {
    switch error {
    case .device(let e): e
    case .noRoute(let a): .networkUnreachable(.v4(a))
    case .datagramTooLarge(let size, let limit): .messageTooLarge(size: size, limit: limit)
    case .pendingQueueFull: .wouldBlock
    default: .invalidArgument("\(error)")
    }
}

/// The datagram quoted in an ICMP error: a header and at least 8 bytes of
/// payload (RFC 792), usually cut short, so it is read field by field with
/// every offset checked rather than through `IPv4Packet`, whose total
/// length would not match. The quoted checksum is not verified: routers
/// may have changed the TTL after computing it.
struct QuotedDatagram {
    var source: IPv4Address
    var destination: IPv4Address
    var `protocol`: UInt8
    var fragmentOffset: Int
    var totalLength: Int
    var sourcePort: UInt16?
    var destinationPort: UInt16?
    /// A quoted TCP segment's sequence number (the first 8 bytes of the
    /// transport header are always quoted, RFC 792).
    var sequenceNumber: UInt32?

    init?(_ q: Span<UInt8>) {
        guard q.count >= IPv4Packet.minimumHeaderLength, q[0] >> 4 == 4 else { return nil }
        let ihl = Int(q[0] & 0x0F) * 4
        guard ihl >= IPv4Packet.minimumHeaderLength, q.count >= ihl else { return nil }
        totalLength = Int(q.u16(at: IPv4Packet.Offset.totalLength))
        fragmentOffset = Int(q.u16(at: IPv4Packet.Offset.flagsAndFragmentOffset) & IPv4Packet.fragmentOffsetMask) * 8
        `protocol` = q[IPv4Packet.Offset.protocol]
        source = IPv4Address(rawValue: q.u32(at: IPv4Packet.Offset.source))
        destination = IPv4Address(rawValue: q.u32(at: IPv4Packet.Offset.destination))
        if q.count >= ihl + 4 {
            sourcePort = q.u16(at: ihl)
            destinationPort = q.u16(at: ihl + 2)
        }
        if q.count >= ihl + 8 { sequenceNumber = q.u32(at: ihl + 4) }
    }
}
