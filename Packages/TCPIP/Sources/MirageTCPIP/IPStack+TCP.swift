import MirageDevices

// TCP in the stack: the listener table, demultiplexing by four-tuple, RSTs
// for segments that match nothing (RFC 9293 §3.10.7.1), and the `Stack`
// contract's TCP calls. Each connection's protocol logic is a
// `TCPConnection`; this file moves its segments to and from IPv4, turns
// its events into handler calls and runs its timers from the stack's one
// timer.
//
// Events: a connection's events go to `tcpReady` and are delivered by
// `deliverTCPEvents` at the end of a receive batch, of a timer, or (for a
// call made outside any callback) from a timer scheduled for now. A call
// made from inside a handler changes the connection at once and sends its
// segments, but the events it causes wait until the current handler
// returns: handlers are never entered re-entrantly.

/// A connection as the stack keeps it. A class outside the generic
/// `IPStack` so lookups need no generic metadata (see `UDPSocket`).
final class TCPSocket {
    let id: ConnectionID
    var connection: TCPConnection
    /// Where events go; nil while a passive connection is half-open.
    var handler: (any TCPHandler)?
    /// The listener a passive connection came from, while it counts
    /// against that listener's backlog (until established or gone).
    var halfOpenListener: ListenerID?
    /// The listener that accepted it (for the `connectionAccepted` event).
    var listener: ListenerID?
    /// The application has seen the handle (accepted or connected).
    var announced = false
    /// `connectionClosed` was delivered; the handle is invalid from then on
    /// (the entry may stay in TIME-WAIT for demultiplexing).
    var released = false
    /// The application paused reading.
    var paused = false
    /// The peer's FIN is waiting for the unread data before it is reported.
    var endOfStreamPending = false
    /// In `tcpReady`.
    var queued = false

    init(id: ConnectionID, connection: TCPConnection, handler: (any TCPHandler)?) {
        self.id = id
        self.connection = connection
        self.handler = handler
    }

    var tuple: TCPFourTuple {
        TCPFourTuple(localAddress: connection.local.address, localPort: connection.local.port,
                     remoteAddress: connection.remote.address, remotePort: connection.remote.port)
    }
}

/// A listening port.
struct TCPListenerEntry {
    var port: UInt16
    /// nil: every local address.
    var address: IPv4Address?
    var backlog: Int
    var halfOpen = 0
    var handler: any TCPHandler
}

/// What identifies a connection on the wire.
struct TCPFourTuple: Hashable {
    var localAddress: IPv4Address
    var localPort: UInt16
    var remoteAddress: IPv4Address
    var remotePort: UInt16
}

extension IPStack {
    // MARK: Receive

    func receiveTCP(_ bytes: Span<UInt8>, info: DatagramInfo, now: Instant) {
        // RFC 1122 §4.2.3.10: a SYN (or anything) to a broadcast or
        // multicast address is not TCP's.
        guard let config = configuration.ipv4, info.destination == config.address else {
            statistics.droppedTCPNotUnicast += 1
            return
        }
        // RFC 1122 §3.2.1.3: a datagram whose source cannot be a host's
        // address is discarded; answering one (a SYN-ACK or RST) would go to
        // a group or a whole subnet.
        let source = info.source
        guard source != .any, source != .broadcast, !source.isMulticast,
              config.prefixLength >= 31 || source != config.broadcast else {
            statistics.droppedTCPNotUnicast += 1
            return
        }
        let segment: TCPSegment
        do {
            segment = try TCPSegment(checking: bytes, source: info.source, destination: info.destination,
                                     verifyChecksum: !info.checksumVerified)
        } catch {
            if case .badChecksum = error { statistics.droppedBadTCPChecksum += 1 } else { statistics.droppedMalformedTCP += 1 }
            return
        }
        statistics.tcpSegmentsReceived += 1
        let tuple = TCPFourTuple(localAddress: info.destination, localPort: segment.destinationPort,
                                 remoteAddress: info.source, remotePort: segment.sourcePort)
        let flags = segment.flags
        if let socket = tcpByTuple[tuple] {
            let newIncarnation = flags.contains(.syn) && !flags.contains(.ack) && !flags.contains(.rst)
                && socket.connection.acceptsNewIncarnation(synSequence: segment.sequenceNumber)
                && tcpListener(port: tuple.localPort, address: tuple.localAddress) != nil
            if !newIncarnation {
                if inReceiveBatch && !socket.connection.batching {
                    socket.connection.beginBatch()
                    tcpBatch.append(socket)
                }
                socket.connection.receive(segment, now: now)
                service(socket)
                return
            }
            removeTCP(socket)
        }
        if let (id, _) = tcpListener(port: tuple.localPort, address: tuple.localAddress) {
            receiveOnListener(segment, listener: id, tuple: tuple, now: now)
            return
        }
        statistics.droppedTCPNoConnection += 1
        sendReset(answering: segment, tuple: tuple, now: now)
    }

    /// The LISTEN state (RFC 9293 §3.10.7.2).
    func receiveOnListener(_ segment: borrowing TCPSegment, listener id: ListenerID, tuple: TCPFourTuple, now: Instant) {
        let flags = segment.flags
        if flags.contains(.rst) { return }
        if flags.contains(.ack) {
            statistics.droppedTCPListenUnexpected += 1
            sendReset(answering: segment, tuple: tuple, now: now)
            return
        }
        // A SYN with FIN is nonsense; Linux drops it too.
        guard flags.contains(.syn), !flags.contains(.fin), var listener = tcpListeners[id] else {
            statistics.droppedTCPListenUnexpected += 1
            return
        }
        // The backlog bounds what a SYN flood can make us hold; the table
        // bounds everything else.
        guard listener.halfOpen < listener.backlog, makeRoomForConnection() else {
            statistics.droppedTCPBacklogFull += 1
            return
        }
        let iss = initialSequenceNumbers.next(local: tuple.localAddress, localPort: tuple.localPort,
                                              remote: tuple.remoteAddress, remotePort: tuple.remotePort, now: now)
        let connection = TCPConnection(acceptFrom: (tuple.localAddress, tuple.localPort),
                                       remote: (tuple.remoteAddress, tuple.remotePort), syn: segment, iss: iss,
                                       pathMTU: pathMTU(to: tuple.remoteAddress), configuration: configuration.tcp,
                                       now: now)
        let socket = TCPSocket(id: allocateConnectionID(), connection: connection, handler: nil)
        socket.connection.setSegmentationOffload(maximumBytes: tcpSegmentationLimit)
        socket.halfOpenListener = id
        socket.listener = id
        listener.halfOpen += 1
        tcpListeners[id] = listener
        insertTCP(socket)
        service(socket)
    }

    /// RFC 9293 §3.10.7.1: the answer to a segment for no connection.
    func sendReset(answering segment: borrowing TCPSegment, tuple: TCPFourTuple, now: Instant) {
        let flags = segment.flags
        guard !flags.contains(.rst), tuple.remotePort != 0, tuple.localPort != 0 else { return }
        guard tcpResetLimiter.allow(now: now) else {
            statistics.tcpResetsRateLimited += 1
            return
        }
        let header: TCPHeader
        if flags.contains(.ack) {
            header = TCPHeader(sourcePort: tuple.localPort, destinationPort: tuple.remotePort,
                               sequenceNumber: segment.acknowledgmentNumber, acknowledgmentNumber: SequenceNumber(0),
                               flags: .rst, window: 0)
        } else {
            header = TCPHeader(sourcePort: tuple.localPort, destinationPort: tuple.remotePort,
                               sequenceNumber: SequenceNumber(0),
                               acknowledgmentNumber: segment.sequenceNumber + segment.sequenceLength,
                               flags: [.rst, .ack], window: 0)
        }
        if transmitTCP(header, payloadLength: 0, of: nil, from: tuple.localAddress, to: tuple.remoteAddress) {
            statistics.tcpResetsSent += 1
        }
    }

    /// The listener for `port` that takes segments to `address`: one bound
    /// to that address first, else a wildcard one.
    func tcpListener(port: UInt16, address: IPv4Address) -> (ListenerID, TCPListenerEntry)? {
        var wildcard: (ListenerID, TCPListenerEntry)? = nil
        for (id, listener) in tcpListeners where listener.port == port {
            if listener.address == address { return (id, listener) }
            if listener.address == nil { wildcard = (id, listener) }
        }
        return wildcard
    }

    /// An ICMP error quoted a segment of ours (RFC 5927 §4: checked
    /// against the connection's sequence space before acting on it).
    func receiveTCPError(_ report: ICMPReport, about inner: QuotedDatagram, now: Instant) {
        guard let sourcePort = inner.sourcePort, let destinationPort = inner.destinationPort,
              let sequence = inner.sequenceNumber else { return }
        let tuple = TCPFourTuple(localAddress: inner.source, localPort: sourcePort,
                                 remoteAddress: inner.destination, remotePort: destinationPort)
        guard let socket = tcpByTuple[tuple], socket.connection.sentRecently(SequenceNumber(sequence)) else { return }
        statistics.icmpErrorsReceived += 1
        switch report {
        case .fragmentationNeeded:
            socket.connection.pathMTUDecreased(to: pathMTU(to: inner.destination), now: now)
        case .destinationUnreachable:
            socket.connection.destinationUnreachable()
        case .timeExceeded, .parameterProblem:
            break
        }
        service(socket)
    }

    // MARK: Send

    /// Sends a connection's queued segments, and queues it for event
    /// delivery when it has events.
    func service(_ socket: TCPSocket) {
        if !socket.connection.outbox.isEmpty {
            var outbox: [TCPConnection.Outgoing] = []
            swap(&outbox, &socket.connection.outbox)
            let local = socket.connection.local.address
            let remote = socket.connection.remote.address
            for out in outbox where socket.connection.payloadIsHeld(out) {
                _ = transmitTCP(out.header, payloadLength: out.payloadLength, payloadStart: out.payloadStart,
                                segmentSize: out.segmentSize, of: socket, from: local, to: remote)
            }
            // Give the array's storage back so steady state reuses it.
            outbox.removeAll(keepingCapacity: true)
            if socket.connection.outbox.isEmpty { socket.connection.outbox = outbox }
        }
        if !socket.connection.events.isEmpty && !socket.queued {
            socket.queued = true
            tcpReady.append(socket)
        }
        // A connection the application already let go of can end without
        // an event (TIME-WAIT cut short by a RST): forget it now.
        if socket.released && socket.connection.state == .closed && !socket.queued { removeTCP(socket) }
    }

    /// Sends the connections' output held back during the receive batch
    /// that just ended, one flush (and at most one ACK) per connection.
    func flushTCPBatch() {
        guard !tcpBatch.isEmpty else { return }
        let now = clock.now()
        for socket in tcpBatch {
            socket.connection.flush(now: now)
            service(socket)
        }
        tcpBatch.removeAll(keepingCapacity: true)
    }

    /// The most data bytes one TCP frame may carry for the device to
    /// segment, or 0 when the device cannot (or must not) segment: the
    /// largest IPv4 datagram less its header and the largest TCP header.
    var tcpSegmentationLimit: Int {
        let needed: OffloadCapabilities = [.tcpSegmentationIPv4, .transmitChecksum]
        guard configuration.tcpSegmentationOffload, interface.offloads.isSuperset(of: needed) else { return 0 }
        return IPv4Packet.maximumLength - IPv4Header.length - Self.maximumTCPHeaderLength
    }

    /// A TCP header with 40 bytes of options (RFC 9293 §3.1).
    static var maximumTCPHeaderLength: Int { TCPSegment.minimumHeaderLength + TCPOptions.maximumLength }

    /// One segment as an IPv4 datagram with DF set (RFC 1191: TCP sizes
    /// its segments to the path MTU instead of fragmenting); the payload
    /// is copied from the connection's send buffer into the frame.
    ///
    /// More data than `segmentSize` goes to the device as one frame to
    /// segment (TSO) with the checksum left to it; when the device cannot
    /// take it that way (the next hop is not resolved, offload refused) the
    /// frame is cut into segments here, each sent whole.
    @discardableResult
    func transmitTCP(_ header: TCPHeader, payloadLength: Int, payloadStart: SequenceNumber = SequenceNumber(0),
                     segmentSize: Int = Int.max, of socket: TCPSocket?, from local: IPv4Address,
                     to remote: IPv4Address) -> Bool {
        let headerLength = header.length
        let segmented = payloadLength > segmentSize
        let deviceChecksum = configuration.transmitChecksumOffload && interface.offloads.contains(.transmitChecksum)
        if segmented || deviceChecksum {
            // virtio's csum_start/csum_offset: the device sums from the TCP
            // header to the end into the checksum field (RFC 9293 §3.1).
            var metadata = TransmitMetadata()
            metadata.checksum = ChecksumRequest(start: UInt16(EthernetHeader.length + IPv4Header.length),
                                                offset: UInt16(TCPSegment.Offset.checksum))
            if segmented {
                metadata.segmentation = Segmentation(kind: .tcpIPv4, segmentSize: UInt16(clamping: segmentSize),
                                                     headerLength: UInt16(EthernetHeader.length + IPv4Header.length + headerLength))
            }
            do {
                try sendTCPFrame(header, payloadLength: payloadLength, payloadStart: payloadStart, of: socket,
                                 from: local, to: remote, metadata: metadata)
                statistics.tcpSegmentsSent += 1
                if segmented {
                    statistics.tcpSegmentationFramesSent += 1
                    statistics.tcpSegmentationSegmentsSent += UInt64((payloadLength + segmentSize - 1) / segmentSize)
                }
                return true
            } catch .offloadUnavailable {
                // Fall through: whole segments, checksums ours.
            } catch {
                statistics.tcpTransmitDropped += 1
                return false
            }
        }
        if segmented {
            // Cut here: PSH and FIN only on the last piece, as a device would.
            var offset = 0
            var sentAny = false
            while offset < payloadLength {
                let length = min(segmentSize, payloadLength - offset)
                var piece = header
                piece.sequenceNumber = header.sequenceNumber + offset
                if offset + length < payloadLength { piece.flags.subtract([.psh, .fin]) }
                if transmitWholeTCP(piece, payloadLength: length, payloadStart: payloadStart + offset, of: socket,
                                    from: local, to: remote) {
                    sentAny = true
                }
                offset += length
            }
            return sentAny
        }
        return transmitWholeTCP(header, payloadLength: payloadLength, payloadStart: payloadStart, of: socket,
                                from: local, to: remote)
    }

    /// One whole segment, its checksum computed here.
    private func transmitWholeTCP(_ header: TCPHeader, payloadLength: Int, payloadStart: SequenceNumber,
                                  of socket: TCPSocket?, from local: IPv4Address, to remote: IPv4Address) -> Bool {
        do {
            try sendTCPFrame(header, payloadLength: payloadLength, payloadStart: payloadStart, of: socket,
                             from: local, to: remote, metadata: .none)
        } catch {
            statistics.tcpTransmitDropped += 1
            return false
        }
        statistics.tcpSegmentsSent += 1
        return true
    }

    /// The datagram of one `Outgoing` (or a piece of it): header and
    /// options, the payload copied once from the send buffer into the
    /// device's buffer, and the checksum computed here, or only its
    /// pseudo-header part when `metadata` leaves the rest to the device.
    private func sendTCPFrame(_ header: TCPHeader, payloadLength: Int, payloadStart: SequenceNumber,
                              of socket: TCPSocket?, from local: IPv4Address, to remote: IPv4Address,
                              metadata: TransmitMetadata) throws(TCPIPError) {
        let headerLength = header.length
        let checksum: TCPHeader.Checksum = metadata.checksum == nil ? .full : .partial
        try sendIPv4(to: remote, from: local, protocol: IPProtocol.tcp, payloadLength: headerLength + payloadLength,
                     dontFragment: true, metadata: metadata) { buffer, offset in
            if payloadLength > 0, let socket {
                socket.connection.sendBuffer.copy(from: payloadStart, length: payloadLength, into: &buffer,
                                                  at: offset + headerLength)
            }
            header.emit(into: &buffer, at: offset, payloadLength: payloadLength, source: local, destination: remote,
                        checksum: checksum)
        }
    }

    // MARK: Events

    /// Delivers queued events in order until none are left; events caused
    /// by handlers' calls join the queue and are delivered in the same loop.
    func deliverTCPEvents() {
        guard !deliveringTCPEvents else { return }
        deliveringTCPEvents = true
        defer { deliveringTCPEvents = false }
        var index = 0
        while index < tcpReady.count {
            let socket = tcpReady[index]
            index += 1
            socket.queued = false
            // The connection gets the spare (empty, with capacity) array and
            // its events' array becomes the spare: no allocation per
            // delivery in steady state.
            var events: [TCPConnection.Event] = []
            swap(&events, &tcpEventScratch)
            swap(&events, &socket.connection.events)
            for event in events { dispatch(event, on: socket) }
            events.removeAll(keepingCapacity: true)
            tcpEventScratch = events
            if socket.released && socket.connection.state == .closed { removeTCP(socket) }
        }
        tcpReady.removeAll(keepingCapacity: true)
    }

    func dispatch(_ event: TCPConnection.Event, on socket: TCPSocket) {
        guard !socket.released else { return }
        switch event {
        case .established:
            if let listenerID = socket.halfOpenListener {
                socket.halfOpenListener = nil
                guard var listener = tcpListeners[listenerID] else {
                    // The listener closed during the handshake.
                    resetHalfOpen(socket)
                    return
                }
                listener.halfOpen -= 1
                tcpListeners[listenerID] = listener
                socket.handler = listener.handler
                socket.announced = true
                statistics.tcpConnectionsAccepted += 1
                listener.handler.connectionAccepted(socket.id, listener: listenerID)
            } else {
                socket.handler?.connectionEstablished(socket.id)
            }
        case .readable:
            deliverData(socket)
        case .endOfStream:
            socket.endOfStreamPending = true
            deliverData(socket)
        case .writable:
            socket.handler?.writable(socket.id)
        case .closed(let reason):
            if let listenerID = socket.halfOpenListener {
                // Died in the handshake: the application never saw it.
                socket.halfOpenListener = nil
                tcpListeners[listenerID]?.halfOpen -= 1
                socket.released = true
                return
            }
            // Whatever was received before the end is still the
            // application's, paused or not.
            socket.paused = false
            deliverData(socket)
            guard !socket.released else { return }
            socket.released = true
            if socket.announced { socket.handler?.connectionClosed(socket.id, reason: reason) }
        }
    }

    /// Hands the application what is readable (unless paused), then the
    /// end of stream once everything before it is read, and opens the
    /// window as far as was read.
    func deliverData(_ socket: TCPSocket) {
        guard socket.announced, !socket.paused, !socket.released else { return }
        let chunk = Self.readChunk
        if tcpReadScratch.count < chunk { tcpReadScratch = [UInt8](repeating: 0, count: chunk) }
        var didRead = false
        while !socket.paused && !socket.released, socket.connection.receiveBuffer.readable > 0 {
            var scratch: [UInt8] = []
            swap(&scratch, &tcpReadScratch)
            var span = scratch.mutableSpan
            let filled = socket.connection.receiveBuffer.read(maximum: chunk, into: &span)
            _ = consume span
            didRead = true
            socket.handler?.received(scratch.span.extracting(0..<filled), on: socket.id)
            swap(&scratch, &tcpReadScratch)
        }
        if didRead && !socket.released {
            socket.connection.didRead(now: clock.now())
            service(socket)
        }
        if socket.endOfStreamPending && !socket.paused && !socket.released
            && socket.connection.receiveBuffer.readable == 0 {
            socket.endOfStreamPending = false
            socket.handler?.endOfStream(on: socket.id)
        }
    }

    /// Resets a connection the application never saw (its listener went
    /// away) and forgets it: RST sent, no events.
    func resetHalfOpen(_ socket: TCPSocket) {
        socket.connection.abort()
        socket.connection.events.removeAll()
        socket.released = true
        service(socket)
        removeTCP(socket)
    }

    /// Most bytes lent to a handler in one `received` call.
    static var readChunk: Int { 64 * 1024 }

    // MARK: Timers

    /// Runs every connection whose deadline has passed; `service` forgets
    /// those that ended with nothing left to deliver (TIME-WAIT over).
    func tcpTimers(now: Instant) {
        for socket in tcpConnections.values {
            guard let deadline = socket.connection.nextDeadline, deadline <= now else { continue }
            socket.connection.timerFired(now: now)
            service(socket)
        }
    }

    /// The earliest connection deadline, or now when events wait for
    /// delivery outside a receive batch.
    func tcpNextDeadline() -> Instant? {
        if !tcpReady.isEmpty && !deliveringTCPEvents { return clock.now() }
        var next: Instant? = nil
        for socket in tcpConnections.values {
            next = Instant.earlier(next, socket.connection.nextDeadline)
        }
        return next
    }

    // MARK: Table

    func allocateConnectionID() -> ConnectionID {
        // Skip identifiers still in use after wrapping.
        repeat { nextConnectionID &+= 1 } while nextConnectionID == 0
            || tcpConnections[ConnectionID(rawValue: nextConnectionID)] != nil
        return ConnectionID(rawValue: nextConnectionID)
    }

    func insertTCP(_ socket: TCPSocket) {
        tcpConnections[socket.id] = socket
        tcpByTuple[socket.tuple] = socket
    }

    func removeTCP(_ socket: TCPSocket) {
        tcpConnections[socket.id] = nil
        if tcpByTuple[socket.tuple] === socket { tcpByTuple[socket.tuple] = nil }
    }

    /// Whether one more connection fits, evicting a TIME-WAIT entry when
    /// the table is full (its 2·MSL guards only against old duplicates,
    /// which RFC 6191 and every busy server trade for room).
    func makeRoomForConnection() -> Bool {
        if tcpConnections.count < configuration.maximumTCPConnections { return true }
        guard let victim = tcpConnections.values.first(where: { $0.connection.state == .timeWait }) else {
            return false
        }
        statistics.tcpTimeWaitEvicted += 1
        removeTCP(victim)
        return true
    }

    /// The connection behind a handle the application may still use.
    func liveSocket(_ id: ConnectionID) -> TCPSocket? {
        guard let socket = tcpConnections[id], socket.announced, !socket.released else { return nil }
        return socket
    }

    /// After an application call: send, and make sure its events are
    /// delivered (soon, from the timer, when no delivery loop is running).
    func finishCall(_ socket: TCPSocket) {
        service(socket)
        rearmTimer()
    }

    /// The number of connections the stack holds, TIME-WAIT and half-open
    /// ones included.
    public var tcpConnectionCount: Int { tcpConnections.count }

    /// The connections by state, for diagnostics and tests.
    public var tcpConnectionStates: [TCPConnection.State] { tcpConnections.values.map { $0.connection.state } }

    // MARK: Stack contract: TCP

    public func listen(port: UInt16, address: IPAddress?, backlog: Int, handler: any TCPHandler) throws(DeviceError) -> ListenerID {
        let bound = try localBinding(address)
        guard backlog > 0 else { throw .invalidArgument("backlog must be positive") }
        guard tcpListeners.count < configuration.maximumTCPListeners else { throw .resourceExhausted("TCP listeners") }
        let chosen = try choosePort(port, bound: bound, kind: "TCP") { p in
            tcpListeners.values.contains { $0.port == p && ($0.address == nil || bound == nil || $0.address == bound) }
        }
        let id = ListenerID(rawValue: nextListenerID)
        nextListenerID &+= 1
        tcpListeners[id] = TCPListenerEntry(port: chosen, address: bound,
                                            backlog: min(backlog, configuration.maximumTCPBacklog), handler: handler)
        return id
    }

    public func localEndpoint(of listener: ListenerID) -> Endpoint? {
        guard let entry = tcpListeners[listener] else { return nil }
        return Endpoint(.v4(entry.address ?? configuration.ipv4?.address ?? .any), entry.port)
    }

    /// Half-open connections of the listener are reset (the application
    /// never saw them); established ones carry on.
    public func closeListener(_ listener: ListenerID) {
        guard tcpListeners.removeValue(forKey: listener) != nil else { return }
        for socket in tcpConnections.values where socket.halfOpenListener == listener {
            socket.halfOpenListener = nil
            resetHalfOpen(socket)
        }
        rearmTimer()
    }

    public func connect(to remote: Endpoint, timeout: Interval?, handler: any TCPHandler) throws(DeviceError) -> ConnectionID {
        guard case .v4(let address) = remote.address else { throw .networkUnreachable(remote.address) }
        guard remote.port != 0, address != .any, address != .broadcast, !address.isMulticast else {
            throw .invalidArgument("cannot connect to \(remote)")
        }
        guard let config = configuration.ipv4 else { throw .networkUnreachable(remote.address) }
        guard config.isOnLink(address) || config.gateway != nil else { throw .networkUnreachable(remote.address) }
        guard !(config.prefixLength < 31 && address == config.broadcast) else {
            throw .invalidArgument("cannot connect to the broadcast address \(address)")
        }
        guard makeRoomForConnection() else { throw .resourceExhausted("TCP connections") }
        let ours = config.address
        func inUse(_ p: UInt16) -> Bool {
            tcpByTuple[TCPFourTuple(localAddress: ours, localPort: p, remoteAddress: address, remotePort: remote.port)] != nil
                || tcpListeners.values.contains { $0.port == p }
        }
        guard let port = configuration.ephemeralPorts.choose(using: entropy, isInUse: inUse) else {
            throw .resourceExhausted("ephemeral TCP ports")
        }
        let now = clock.now()
        let iss = initialSequenceNumbers.next(local: ours, localPort: port, remote: address, remotePort: remote.port,
                                              now: now)
        var connection = TCPConnection(connectFrom: (ours, port), to: (address, remote.port), iss: iss,
                                       pathMTU: pathMTU(to: address), configuration: configuration.tcp, now: now)
        connection.setConnectDeadline(now + (timeout ?? configuration.connectTimeout))
        let socket = TCPSocket(id: allocateConnectionID(), connection: connection, handler: handler)
        socket.connection.setSegmentationOffload(maximumBytes: tcpSegmentationLimit)
        socket.announced = true
        insertTCP(socket)
        statistics.tcpConnectionsOpened += 1
        finishCall(socket)
        return socket.id
    }

    public func endpoints(of connection: ConnectionID) -> (local: Endpoint, remote: Endpoint)? {
        guard let socket = liveSocket(connection) else { return nil }
        let c = socket.connection
        return (Endpoint(.v4(c.local.address), c.local.port), Endpoint(.v4(c.remote.address), c.remote.port))
    }

    public func setHandler(_ handler: any TCPHandler, for connection: ConnectionID) throws(DeviceError) {
        guard let socket = liveSocket(connection) else { throw .unknownHandle }
        socket.handler = handler
    }

    public func write(_ bytes: Span<UInt8>, on connection: ConnectionID) throws(DeviceError) -> Int {
        guard let socket = liveSocket(connection) else { throw .unknownHandle }
        guard socket.connection.isWritable else { throw .notConnected }
        let accepted = socket.connection.write(bytes, now: clock.now())
        finishCall(socket)
        return accepted
    }

    public func pauseReading(_ connection: ConnectionID) {
        liveSocket(connection)?.paused = true
    }

    public func resumeReading(_ connection: ConnectionID) {
        guard let socket = liveSocket(connection), socket.paused else { return }
        socket.paused = false
        // Deliver what waited, from the event loop rather than inside this call.
        socket.connection.events.append(.readable)
        finishCall(socket)
    }

    public func shutdownWrite(_ connection: ConnectionID) {
        guard let socket = liveSocket(connection) else { return }
        socket.connection.shutdownWrite(now: clock.now())
        finishCall(socket)
    }

    public func close(_ connection: ConnectionID) {
        guard let socket = liveSocket(connection) else { return }
        socket.endOfStreamPending = false
        socket.connection.close(now: clock.now())
        finishCall(socket)
    }

    public func abort(_ connection: ConnectionID) {
        guard let socket = liveSocket(connection) else { return }
        socket.connection.abort()
        finishCall(socket)
    }

    public func setNoDelay(_ noDelay: Bool, for connection: ConnectionID) throws(DeviceError) {
        guard let socket = liveSocket(connection) else { throw .unknownHandle }
        socket.connection.setNoDelay(noDelay, now: clock.now())
        finishCall(socket)
    }

    public func setKeepAlive(_ idle: Interval?, for connection: ConnectionID) throws(DeviceError) {
        guard let socket = liveSocket(connection) else { throw .unknownHandle }
        if let idle, idle.nanoseconds <= 0 { throw .invalidArgument("keep-alive idle time must be positive") }
        socket.connection.setKeepAlive(idle, now: clock.now())
        finishCall(socket)
    }

    public func statistics(of connection: ConnectionID) -> ConnectionStatistics? {
        liveSocket(connection)?.connection.connectionStatistics
    }

    /// The state of a connection the application holds.
    public func state(of connection: ConnectionID) -> TCPConnection.State? {
        liveSocket(connection)?.connection.state
    }
}
