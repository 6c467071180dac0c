import Glibc
import MirageDevices

/// One bound UDP socket of a `SocketStack`.
final class UDPSocket {
    let id: UDPSocketID
    let fd: Int32
    let family: Int32
    /// Bound to the wildcard of a dual-stack socket: IPv4 peers too.
    let dualStack: Bool
    let handler: any UDPHandler
    let local: Endpoint

    init(id: UDPSocketID, fd: Int32, family: Int32, dualStack: Bool, handler: any UDPHandler, local: Endpoint) {
        self.id = id
        self.fd = fd
        self.family = family
        self.dualStack = dualStack
        self.handler = handler
        self.local = local
    }
}

extension SocketStack {
    public func bindUDP(port: UInt16, address: IPAddress?, handler: any UDPHandler) throws(DeviceError) -> UDPSocketID {
        let (fd, family) = try openBound(type: Int32(SOCK_DGRAM.rawValue), port: port, address: address, reuseAddress: false)
        // Ask for each datagram's destination address (RFC 3542 §6 for IPv6).
        // A dual-stack socket reports IPv4 datagrams with IP_PKTINFO.
        SocketCalls.setOption(fd, Int32(IPPROTO_IP), IP_PKTINFO, 1)
        if family == AF_INET6 { SocketCalls.setOption(fd, Int32(IPPROTO_IPV6), IPV6_RECVPKTINFO, 1) }
        guard let local = SocketCalls.localEndpoint(fd) else {
            let code = errno
            FileDescriptor.close(fd)
            throw .system(call: "getsockname", errno: code)
        }
        if datagramReceiveBatch == nil {
            datagramReceiveBatch = DatagramReceiveBatch(
                slotCount: min(max(configuration.datagramsPerWakeup, 1), Self.maximumDatagramsPerBatch),
                slotSize: min(max(configuration.datagramBufferSize, 1), Self.defaultDatagramBufferSize))
            datagramSendBatch = DatagramSendBatch(
                datagramLimit: Self.sendBatchDatagramLimit, byteCapacity: Self.sendBatchByteCapacity)
        }
        let id = nextID()
        try register(fd, interest: .read, as: .udp(id))
        udpSockets[id] = UDPSocket(
            id: UDPSocketID(rawValue: id), fd: fd, family: family, dualStack: family == AF_INET6 && address == nil,
            handler: handler, local: local)
        return UDPSocketID(rawValue: id)
    }

    public func localEndpoint(of socket: UDPSocketID) -> Endpoint? {
        udpSockets[socket.rawValue]?.local
    }

    public func send(_ payload: Span<UInt8>, to destination: Endpoint, from socket: UDPSocketID) throws(DeviceError) {
        guard let entry = udpSockets[socket.rawValue] else { throw .unknownHandle }
        guard destination.port != 0 else { throw .invalidArgument("cannot send to port 0") }
        let limit: Int
        switch destination.address {
        case .v4:
            guard entry.family == AF_INET || entry.dualStack else {
                throw .invalidArgument("an IPv6 socket bound to \(entry.local.address) cannot send to \(destination.address)")
            }
            limit = Self.maximumIPv4DatagramSize
        case .v6:
            guard entry.family == AF_INET6 else {
                throw .invalidArgument("an IPv4 socket cannot send to \(destination.address)")
            }
            limit = Self.maximumIPv6DatagramSize
        }
        guard payload.count <= limit else { throw .messageTooLarge(size: payload.count, limit: limit) }
        let address = SocketAddress(destination, family: entry.family)
        if deliveringDatagrams, let batch = datagramSendBatch {
            // Written with the rest after the receive batch; a full batch
            // is written first. An empty batch holds any datagram.
            if !batch.fits(payload.count) { flushDatagrams() }
            if batch.append(payload, to: address, on: entry.fd) { return }
        }
        let sent = SocketCalls.sendTo(entry.fd, payload, address)
        guard sent < 0 else { return }
        let code = Int32(truncatingIfNeeded: -sent)
        switch code {
        case EAGAIN, EWOULDBLOCK, ENOBUFS, EINTR:
            throw .wouldBlock
        case EMSGSIZE:
            throw .messageTooLarge(size: payload.count, limit: limit)
        case ENETUNREACH, EHOSTUNREACH:
            throw .networkUnreachable(destination.address)
        case ECONNREFUSED:
            // An ICMP port unreachable answering an earlier datagram was
            // reported on this one; this datagram was not sent. UDP may
            // lose datagrams: say so as `wouldBlock`, the caller's to retry.
            throw .wouldBlock
        default:
            throw .system(call: "sendto", errno: code)
        }
    }

    public func closeUDP(_ socket: UDPSocketID) {
        guard let entry = udpSockets.removeValue(forKey: socket.rawValue) else { return }
        // Datagrams already sent on it go out before its descriptor closes
        // (and before its number can be reused).
        flushDatagrams()
        release(entry.fd)
    }

    /// Writes the send batch (see `DatagramSendBatch.flush`) and counts.
    func flushDatagrams() {
        guard let batch = datagramSendBatch, batch.count > 0 else { return }
        let outcome = batch.flush()
        counters.datagramSendCalls += outcome.calls
        counters.datagramsSentInBatches += outcome.sent
        counters.datagramsSendFailedAfterBatch += outcome.failed
    }

    /// Receives up to `datagramsPerWakeup` datagrams, a `recvmmsg` batch
    /// at a time; each batch is delivered in order, then the sends its
    /// handlers made are written together.
    func receiveDatagrams(_ socket: UDPSocket) {
        guard let arena = datagramReceiveBatch else { return }
        var budget = max(configuration.datagramsPerWakeup, 1)
        // Each pass uses up at least one datagram of the budget.
        while budget > 0 {
            // A handler may have closed the socket.
            guard udpSockets[socket.id.rawValue] === socket else { return }
            let wanted = min(budget, arena.slotCount)
            let received = arena.receive(from: socket.fd, limit: wanted)
            counters.datagramReceiveCalls += 1
            guard received > 0 else {
                let code = Int32(truncatingIfNeeded: -received)
                if code == EAGAIN || code == EWOULDBLOCK { return }
                // ECONNREFUSED and friends: an ICMP error for an earlier
                // datagram; the next datagram may be fine.
                counters.datagramReceiveErrors += 1
                budget -= 1
                continue
            }
            counters.datagramsReceived += arena.count
            budget -= arena.count
            deliver(arena, to: socket)
            flushDatagrams()
            // Fewer than asked for: the socket is drained (or an error is
            // pending, which comes as an error event).
            if arena.count < wanted { return }
        }
    }

    /// Hands each datagram of the last receive to the socket's handler, in
    /// order, with `send` queueing meanwhile.
    private func deliver(_ arena: DatagramReceiveBatch, to socket: UDPSocket) {
        deliveringDatagrams = true
        defer { deliveringDatagrams = false }
        for index in 0..<arena.count {
            guard udpSockets[socket.id.rawValue] === socket else { return }
            let datagram = arena.datagram(at: index)
            guard !datagram.truncated else {
                counters.datagramsTruncated += 1
                continue
            }
            guard let source = datagram.source.endpoint else {
                counters.datagramReceiveErrors += 1
                continue
            }
            let destination = Endpoint(datagram.destination ?? socket.local.address, socket.local.port)
            arena.withSpan(at: index, count: datagram.count) {
                socket.handler.datagramReceived($0, from: source, to: destination, on: socket.id)
            }
        }
    }
}
