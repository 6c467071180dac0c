import CMiragePlatform
import Glibc
import MirageDevices

/// One TCP connection of a `SocketStack`: its descriptor and its phase.
final class TCPConnection {
    /// The phases of a connection's handle.
    enum Phase {
        /// `connect` in progress: waiting for writability or the timer.
        case connecting
        /// Established; either direction may already be finished.
        case open
        /// The application closed: FIN sent, draining until the peer's FIN.
        case closing
        /// The descriptor is closed; `connectionClosed` is being delivered.
        case finished
    }

    let id: ConnectionID
    var fd: Int32
    var handler: any TCPHandler
    var phase: Phase
    var local: Endpoint
    var remote: Endpoint
    /// The application paused reading.
    var readPaused = false
    /// The peer's FIN was read.
    var peerFinished = false
    /// FIN sent (`shutdownWrite` or `close`).
    var writeShut = false
    /// A write was short; `writable` is owed.
    var wantsWritable = false
    /// Whether the descriptor is registered on the loop (a paused
    /// connection whose peer hung up is unregistered until resumed).
    var registered = false
    /// The interest registered now.
    var interest: FDInterest = []
    /// Bytes still allowed before the next readiness event.
    var budget: Int
    /// The connect or close timer.
    var timer: TimerID?

    init(id: ConnectionID, fd: Int32, handler: any TCPHandler, phase: Phase, local: Endpoint, remote: Endpoint, budget: Int) {
        self.id = id
        self.fd = fd
        self.handler = handler
        self.phase = phase
        self.local = local
        self.remote = remote
        self.budget = budget
    }

    /// The interest this connection's state calls for.
    var desiredInterest: FDInterest {
        switch phase {
        case .connecting: return .write
        case .closing: return .read
        case .finished: return []
        case .open:
            var interest: FDInterest = []
            if !readPaused && !peerFinished { interest.insert(.read) }
            if wantsWritable { interest.insert(.write) }
            return interest
        }
    }
}

/// One listening socket of a `SocketStack`.
final class TCPListener {
    let id: ListenerID
    let fd: Int32
    let handler: any TCPHandler
    let local: Endpoint
    /// Set while the listener rests after running out of descriptors.
    var retryTimer: TimerID?

    init(id: ListenerID, fd: Int32, handler: any TCPHandler, local: Endpoint) {
        self.id = id
        self.fd = fd
        self.handler = handler
        self.local = local
    }
}

extension SocketStack {
    // MARK: Listeners

    public func listen(port: UInt16, address: IPAddress?, backlog: Int, handler: any TCPHandler) throws(DeviceError) -> ListenerID {
        guard backlog > 0 else { throw .invalidArgument("backlog must be positive, not \(backlog)") }
        let (fd, _) = try openBound(type: Int32(SOCK_STREAM.rawValue), port: port, address: address, reuseAddress: true)
        let depth = Int32(clamping: min(backlog, max(configuration.maximumBacklog, 1)))
        guard Glibc.listen(fd, depth) == 0 else {
            let code = errno
            FileDescriptor.close(fd)
            if code == EADDRINUSE { throw .addressInUse(Endpoint(address ?? .v6(.any), port)) }
            throw .system(call: "listen", errno: code)
        }
        guard let local = SocketCalls.localEndpoint(fd) else {
            let code = errno
            FileDescriptor.close(fd)
            throw .system(call: "getsockname", errno: code)
        }
        let id = nextID()
        try register(fd, interest: .read, as: .listener(id))
        listeners[id] = TCPListener(id: ListenerID(rawValue: id), fd: fd, handler: handler, local: local)
        return ListenerID(rawValue: id)
    }

    public func localEndpoint(of listener: ListenerID) -> Endpoint? {
        listeners[listener.rawValue]?.local
    }

    public func closeListener(_ listener: ListenerID) {
        guard let entry = listeners.removeValue(forKey: listener.rawValue) else { return }
        if let timer = entry.retryTimer {
            loop.cancel(timer)
            timers[timer] = nil
        }
        release(entry.fd)
    }

    /// Accepts up to `acceptsPerWakeup` connections.
    func acceptConnections(_ listener: TCPListener) {
        for _ in 0..<max(configuration.acceptsPerWakeup, 1) {
            // A handler may have closed the listener.
            guard listeners[listener.id.rawValue] === listener else { return }
            let (fd, peer, code) = SocketCalls.accept(listener.fd)
            guard fd >= 0 else {
                switch code {
                case EAGAIN, EWOULDBLOCK:
                    return
                case ECONNABORTED, EPROTO, EPERM:
                    // The connection died in the queue (or a firewall said no).
                    counters.acceptFailures += 1
                    continue
                default:
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM: rest, or the loop
                    // would wake again at once for the same pending connection.
                    counters.acceptFailures += 1
                    restAcceptor(listener)
                    return
                }
            }
            guard connections.count < configuration.maximumConnections,
                  let remote = peer.endpoint, let local = SocketCalls.localEndpoint(fd)
            else {
                counters.connectionsRejected += 1
                SocketCalls.setLingerZero(fd)
                FileDescriptor.close(fd)
                continue
            }
            SocketCalls.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
            let id = nextID()
            let connection = TCPConnection(
                id: ConnectionID(rawValue: id), fd: fd, handler: listener.handler, phase: .open,
                local: local, remote: remote, budget: configuration.writeBudget)
            do {
                try register(fd, interest: .read, as: .connection(id))
            } catch {
                counters.acceptFailures += 1
                continue
            }
            connection.registered = true
            connection.interest = .read
            connections[id] = connection
            listener.handler.connectionAccepted(connection.id, listener: listener.id)
        }
    }

    /// Stops accepting for `acceptRetryDelay`.
    func restAcceptor(_ listener: TCPListener) {
        guard listener.retryTimer == nil else { return }
        try? loop.setInterest(listener.fd, [])
        let timer = loop.schedule(at: loop.now() + Self.acceptRetryDelay, self)
        listener.retryTimer = timer
        timers[timer] = .acceptRetry(listener.id.rawValue)
    }

    // MARK: Connecting

    public func connect(to remote: Endpoint, timeout: Interval?, handler: any TCPHandler) throws(DeviceError) -> ConnectionID {
        guard remote.port != 0 else { throw .invalidArgument("cannot connect to port 0") }
        let limit = timeout ?? configuration.connectTimeout
        guard limit > .zero else { throw .invalidArgument("the connect timeout must be positive") }
        guard connections.count < configuration.maximumConnections else { throw .resourceExhausted("connections") }
        let family: Int32
        switch remote.address {
        case .v4: family = AF_INET
        case .v6: family = AF_INET6
        }
        let fd = try SocketCalls.open(family: family, type: Int32(SOCK_STREAM.rawValue))
        SocketCalls.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        let code = SocketCalls.connect(fd, SocketAddress(remote, family: family))
        switch code {
        case 0, EINPROGRESS, ECONNREFUSED, EHOSTUNREACH, ETIMEDOUT:
            break
        case ENETUNREACH:
            FileDescriptor.close(fd)
            throw .networkUnreachable(remote.address)
        case EADDRNOTAVAIL, EAGAIN:
            FileDescriptor.close(fd)
            throw .resourceExhausted("ephemeral ports")
        default:
            FileDescriptor.close(fd)
            throw .system(call: "connect", errno: code)
        }
        let unspecified: IPAddress = family == AF_INET ? .v4(.any) : .v6(.any)
        let local = SocketCalls.localEndpoint(fd) ?? Endpoint(unspecified, 0)
        let id = nextID()
        let connection = TCPConnection(
            id: ConnectionID(rawValue: id), fd: fd, handler: handler, phase: code == 0 ? .open : .connecting,
            local: local, remote: remote, budget: configuration.writeBudget)
        let interest = connection.desiredInterest
        try register(fd, interest: interest, as: .connection(id))
        connection.registered = true
        connection.interest = interest
        connections[id] = connection
        switch code {
        case 0:
            // Connected at once (possible on loopback): report it after this call.
            loop.enqueue { [self] in
                guard let connection = connections[id], connection.phase == .open else { return }
                connection.handler.connectionEstablished(connection.id)
            }
        case EINPROGRESS:
            let timer = loop.schedule(at: loop.now() + limit, self)
            connection.timer = timer
            timers[timer] = .connect(id)
        default:
            finish(connection, Self.closeReason(errno: code), deferred: true)
        }
        return connection.id
    }

    /// Writability of a connecting socket: it connected, or failed.
    func completeConnect(_ connection: TCPConnection) {
        let code = SocketCalls.pendingError(connection.fd)
        if code != 0 {
            finish(connection, Self.closeReason(errno: code), deferred: false)
            return
        }
        // A stale readiness event (a reused descriptor number) can report
        // writable before the handshake finished: then there is no peer yet.
        guard let remote = SocketCalls.remoteEndpoint(connection.fd) else { return }
        connection.phase = .open
        connection.remote = remote
        if let local = SocketCalls.localEndpoint(connection.fd) { connection.local = local }
        cancelTimer(connection)
        updateInterest(connection)
        connection.handler.connectionEstablished(connection.id)
    }

    // MARK: The handle

    public func endpoints(of connection: ConnectionID) -> (local: Endpoint, remote: Endpoint)? {
        guard let entry = connections[connection.rawValue] else { return nil }
        return (entry.local, entry.remote)
    }

    public func setHandler(_ handler: any TCPHandler, for connection: ConnectionID) throws(DeviceError) {
        guard let entry = connections[connection.rawValue] else { throw .unknownHandle }
        entry.handler = handler
    }

    public func write(_ bytes: Span<UInt8>, on connection: ConnectionID) throws(DeviceError) -> Int {
        guard let entry = connections[connection.rawValue] else { throw .unknownHandle }
        switch entry.phase {
        case .closing, .finished:
            throw .notConnected
        case .connecting:
            // The kernel cannot take bytes before the handshake; `writable`
            // follows `connectionEstablished`.
            if !bytes.isEmpty { entry.wantsWritable = true }
            return 0
        case .open:
            break
        }
        guard !entry.writeShut else { throw .notConnected }
        guard !bytes.isEmpty else { return 0 }
        let offer = min(bytes.count, entry.budget)
        guard offer > 0 else {
            entry.wantsWritable = true
            updateInterest(entry)
            return 0
        }
        let sent = SocketCalls.send(entry.fd, bytes, count: offer)
        if sent >= 0 {
            entry.budget -= sent
            if sent < bytes.count {
                entry.wantsWritable = true
                updateInterest(entry)
            }
            return sent
        }
        let code = Int32(truncatingIfNeeded: -sent)
        switch code {
        case EAGAIN, EWOULDBLOCK, EINTR, ENOBUFS:
            entry.wantsWritable = true
            updateInterest(entry)
            return 0
        default:
            // EPIPE, ECONNRESET, ETIMEDOUT…: the connection is gone.
            finish(entry, Self.closeReason(errno: code), deferred: true)
            throw .notConnected
        }
    }

    public func pauseReading(_ connection: ConnectionID) {
        guard let entry = connections[connection.rawValue], !entry.readPaused else { return }
        entry.readPaused = true
        updateInterest(entry)
    }

    public func resumeReading(_ connection: ConnectionID) {
        guard let entry = connections[connection.rawValue], entry.readPaused else { return }
        entry.readPaused = false
        updateInterest(entry)
    }

    public func shutdownWrite(_ connection: ConnectionID) {
        guard let entry = connections[connection.rawValue], entry.phase == .open, !entry.writeShut else { return }
        entry.writeShut = true
        entry.wantsWritable = false
        _ = Glibc.shutdown(entry.fd, Int32(SHUT_WR))
        if entry.peerFinished {
            // Both directions are finished.
            finish(entry, .normal, deferred: true)
        } else {
            updateInterest(entry)
        }
    }

    public func close(_ connection: ConnectionID) {
        guard let entry = connections[connection.rawValue] else { return }
        switch entry.phase {
        case .closing, .finished:
            return
        case .connecting:
            finish(entry, .aborted, deferred: true)
        case .open:
            if !entry.writeShut {
                entry.writeShut = true
                _ = Glibc.shutdown(entry.fd, Int32(SHUT_WR))
            }
            entry.wantsWritable = false
            if entry.peerFinished {
                finish(entry, .normal, deferred: true)
                return
            }
            entry.phase = .closing
            let timer = loop.schedule(at: loop.now() + configuration.closeTimeout, self)
            entry.timer = timer
            timers[timer] = .close(entry.id.rawValue)
            updateInterest(entry)
        }
    }

    public func abort(_ connection: ConnectionID) {
        guard let entry = connections[connection.rawValue], entry.phase != .finished else { return }
        finish(entry, .aborted, deferred: true)
    }

    // MARK: Readiness

    /// Reads up to `readsPerWakeup` times: delivers bytes, end of stream or
    /// the failure; in `closing`, discards until the peer's FIN.
    func connectionReadable(_ connection: TCPConnection) {
        connection.budget = configuration.writeBudget
        for _ in 0..<max(configuration.readsPerWakeup, 1) {
            switch connection.phase {
            case .connecting:
                // Hung up while connecting: the pending error says why.
                completeConnect(connection)
                return
            case .finished:
                return
            case .open:
                if connection.readPaused || connection.peerFinished { return }
            case .closing:
                break
            }
            let count = receiveBuffer.receive(from: connection.fd)
            if count > 0 {
                if connection.phase == .closing { continue }
                receiveBuffer.withSpan(count: count) { connection.handler.received($0, on: connection.id) }
                // A short read emptied the socket; the loop reports more.
                if count < receiveBuffer.capacity { return }
            } else if count == 0 {
                connection.peerFinished = true
                if connection.phase == .closing || connection.writeShut {
                    if connection.phase == .open { connection.handler.endOfStream(on: connection.id) }
                    finish(connection, .normal, deferred: false)
                    return
                }
                updateInterest(connection)
                connection.handler.endOfStream(on: connection.id)
                return
            } else {
                let code = Int32(truncatingIfNeeded: -count)
                if code == EAGAIN || code == EWOULDBLOCK { return }
                finish(connection, Self.closeReason(errno: code), deferred: false)
                return
            }
        }
    }

    /// Writability: a connect completed, or there is room again.
    func connectionWritable(_ connection: TCPConnection) {
        connection.budget = configuration.writeBudget
        switch connection.phase {
        case .connecting:
            completeConnect(connection)
        case .open:
            let owed = connection.wantsWritable
            connection.wantsWritable = false
            updateInterest(connection)
            if owed && !connection.writeShut { connection.handler.writable(connection.id) }
        case .closing, .finished:
            updateInterest(connection)
        }
    }

    /// EPOLLERR, or a hang-up without read interest.
    func connectionFailed(_ connection: TCPConnection, errno code: Int32) {
        switch connection.phase {
        case .finished:
            return
        case .connecting:
            finish(connection, Self.closeReason(errno: code == 0 ? ECONNREFUSED : code), deferred: false)
        case .open where code == EPIPE && connection.readPaused:
            // The peer finished while reading is paused: what it sent waits
            // in the kernel. Stop watching (the hang-up would repeat) until
            // `resumeReading`.
            if connection.registered {
                descriptors[connection.fd] = nil
                loop.unregister(connection.fd)
                connection.registered = false
                connection.interest = []
            }
        case .open, .closing:
            finish(connection, Self.closeReason(errno: code), deferred: false)
        }
    }

    /// Brings the registered interest in line with the connection's state.
    func updateInterest(_ connection: TCPConnection) {
        guard connection.phase != .finished else { return }
        let desired = connection.desiredInterest
        if !connection.registered {
            // Unregistered while paused after a hang-up: back once there is
            // reading to do (resumed, or closing and draining).
            guard desired.contains(.read) else { return }
            do {
                try loop.register(connection.fd, interest: desired, handler: self)
            } catch {
                finish(connection, .reset, deferred: true)
                return
            }
            descriptors[connection.fd] = .connection(connection.id.rawValue)
            connection.registered = true
            connection.interest = desired
            return
        }
        guard desired != connection.interest else { return }
        do {
            try loop.setInterest(connection.fd, desired)
            connection.interest = desired
        } catch {
            finish(connection, .reset, deferred: true)
        }
    }

    func cancelTimer(_ connection: TCPConnection) {
        guard let timer = connection.timer else { return }
        loop.cancel(timer)
        timers[timer] = nil
        connection.timer = nil
    }

    /// Ends a connection: closes its descriptor now (with RST for
    /// `aborted`) and delivers `connectionClosed` now or, from inside a
    /// stack call, after the current callback.
    func finish(_ connection: TCPConnection, _ reason: CloseReason, deferred: Bool) {
        guard connection.phase != .finished else { return }
        connection.phase = .finished
        cancelTimer(connection)
        if reason == .aborted { SocketCalls.setLingerZero(connection.fd) }
        if connection.registered {
            descriptors[connection.fd] = nil
            loop.unregister(connection.fd)
            connection.registered = false
        }
        FileDescriptor.close(connection.fd)
        connection.fd = -1
        let id = connection.id
        if deferred {
            loop.enqueue { [self] in deliverClosed(id, reason) }
        } else {
            deliverClosed(id, reason)
        }
    }

    private func deliverClosed(_ id: ConnectionID, _ reason: CloseReason) {
        guard let connection = connections.removeValue(forKey: id.rawValue) else { return }
        connection.handler.connectionClosed(id, reason: reason)
    }

    /// The close reason for a socket errno.
    static func closeReason(errno code: Int32) -> CloseReason {
        switch code {
        case ECONNREFUSED: .refused
        case ETIMEDOUT: .timeout
        case EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ENETDOWN: .unreachable
        default: .reset
        }
    }
}

// MARK: Options and statistics

extension SocketStack {
    public func setNoDelay(_ noDelay: Bool, for connection: ConnectionID) throws(DeviceError) {
        guard let entry = connections[connection.rawValue], entry.phase != .finished else { throw .unknownHandle }
        let rc = SocketCalls.setOption(entry.fd, Int32(IPPROTO_TCP), TCP_NODELAY, noDelay ? 1 : 0)
        if rc != 0 { throw .system(call: "setsockopt(TCP_NODELAY)", errno: rc) }
    }

    public func setKeepAlive(_ idle: Interval?, for connection: ConnectionID) throws(DeviceError) {
        guard let entry = connections[connection.rawValue], entry.phase != .finished else { throw .unknownHandle }
        if let idle {
            // TCP_KEEPIDLE counts whole seconds, at least one.
            let seconds = Int32(clamping: max(1, (idle.nanoseconds + 999_999_999) / 1_000_000_000))
            let rc = SocketCalls.setOption(entry.fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE, seconds)
            if rc != 0 { throw .system(call: "setsockopt(TCP_KEEPIDLE)", errno: rc) }
        }
        let rc = SocketCalls.setOption(entry.fd, SOL_SOCKET, SO_KEEPALIVE, idle == nil ? 0 : 1)
        if rc != 0 { throw .system(call: "setsockopt(SO_KEEPALIVE)", errno: rc) }
    }

    /// From the kernel's `TCP_INFO` (linux/tcp.h; sizes in segments are
    /// multiplied by the send MSS, times in microseconds).
    public func statistics(of connection: ConnectionID) -> ConnectionStatistics? {
        guard let entry = connections[connection.rawValue], entry.phase != .finished else { return nil }
        var info = mirage_tcp_info()
        guard mirage_tcp_info_get(entry.fd, &info) == 0 else { return nil }
        let mss = Int(info.snd_mss)
        var s = ConnectionStatistics()
        s.segmentsSent = UInt64(info.segs_out)
        s.segmentsReceived = UInt64(info.segs_in)
        s.retransmissions = UInt64(info.total_retrans)
        // Linux counts the SYN's sequence number in bytes_acked (and the
        // FIN's, once acknowledged); the contract counts data only.
        s.bytesAcknowledged = info.bytes_acked > 0 ? info.bytes_acked - 1 : 0
        s.bytesReceived = info.bytes_received
        s.bytesInFlight = Int(info.unacked) * mss
        s.congestionWindow = Int(info.snd_cwnd) * mss
        // The kernel reports "infinite" (0x7fffffff) before the first loss.
        s.slowStartThreshold = info.snd_ssthresh >= 0x7FFF_FFFF ? Int.max : Int(info.snd_ssthresh) * mss
        s.sendWindow = Int(info.snd_wnd)
        s.receiveWindow = Int(info.rcv_space)
        s.maximumSegmentSize = mss
        if info.rtt_us > 0 {
            s.smoothedRTT = .microseconds(Int64(info.rtt_us))
            s.rttVariation = .microseconds(Int64(info.rttvar_us))
        }
        s.retransmissionTimeout = .microseconds(Int64(info.rto_us))
        return s
    }
}
