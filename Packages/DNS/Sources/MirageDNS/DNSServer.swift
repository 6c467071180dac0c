import MirageDevices

/// Counters of a `DNSServer`'s transports (the answers themselves are
/// counted by its `AuthoritativeServer`).
public struct DNSServerStatistics: Hashable, Sendable {
    /// Datagrams received on the UDP socket.
    public var udpQueries = 0
    /// Replies the stack would not take (`wouldBlock`, …): lost, as UDP allows.
    public var udpSendFailures = 0
    /// TCP connections taken on.
    public var connectionsAccepted = 0
    /// Connections aborted because `maximumConnections` were open.
    public var connectionsRejected = 0
    /// Connections open now.
    public var connectionsOpen = 0
    /// Messages received over TCP.
    public var tcpQueries = 0
    /// Connections closed after `idleTimeout` without a query.
    public var idleTimeouts = 0
    /// Connections closed for a malformed frame (shorter than a header).
    public var badFrames = 0
    /// A statistics value with every counter at zero.
    public init() {}
}

/// Settings of a `DNSServer`.
public struct DNSServerConfiguration: Sendable {
    /// The port for UDP and TCP (53; `mirage-dns` uses 5353 on kernel sockets).
    public var port: UInt16 = 53
    /// The address to bind (nil: every address of the stack).
    public var address: IPAddress? = nil
    /// TCP connections served at once (RFC 7766 §6.2.2: servers limit
    /// them); more are aborted on accept.
    public var maximumConnections = 256
    /// A TCP connection without a query for this long is closed (RFC 7766
    /// §6.2.3 suggests a few seconds to tens of seconds).
    public var idleTimeout: Interval = .seconds(10)
    /// Reply bytes waiting for a slow TCP reader before the connection
    /// stops reading queries (back-pressure, not a drop).
    public var maximumPendingOutput = 128 * 1024
    /// Handshakes waiting at the listener.
    public var backlog = 64
    /// A configuration with the defaults.
    public init() {}
}

/// An authoritative server on the stack contract: UDP queries answered as
/// they come, TCP connections per RFC 7766 (length-prefixed messages,
/// several queries per connection answered in order, an idle timeout,
/// AXFR). The same code runs over `SocketStack`, over `MirageTCPIP`, and
/// later in the unikernel.
public final class DNSServer<S: Stack>: UDPHandler, TCPHandler, TimerHandler {
    /// The answering logic; zones are loaded and replaced through it.
    public let core: AuthoritativeServer
    /// The settings.
    public let configuration: DNSServerConfiguration
    /// The transport counters.
    public private(set) var statistics = DNSServerStatistics()

    private let stack: S
    private let timers: any TimerScheduler
    private let clock: any MonotonicClock
    private var socket: UDPSocketID?
    private var listener: ListenerID?
    private var connections: [ConnectionID: Connection] = [:]
    private var sweepTimer: TimerID?
    /// Reused for every reply.
    private var writer = MessageWriter(limit: AuthoritativeServer.maximumMessageSize, capacity: 2048)

    private struct Connection {
        var framer = StreamFramer()
        /// Framed reply bytes the stack has not taken yet.
        var pending: [UInt8] = []
        var transfer: ZoneTransfer?
        var lastActivity: Instant
        var paused = false
        var closing = false
        /// Input is ignored from now on (see `serve`).
        var refusing = false
    }

    /// A server answering from `core` over `stack` once started.
    public init(stack: S, core: AuthoritativeServer, timers: any TimerScheduler, clock: any MonotonicClock,
                configuration: DNSServerConfiguration = DNSServerConfiguration()) {
        self.stack = stack
        self.core = core
        self.timers = timers
        self.clock = clock
        self.configuration = configuration
    }

    /// Binds the UDP socket and the TCP listener; returns where they are.
    @discardableResult
    public func start() throws(DNSError) -> Endpoint? {
        do {
            let socket = try stack.bindUDP(port: configuration.port, address: configuration.address, handler: self)
            self.socket = socket
            let port = stack.localEndpoint(of: socket)?.port ?? configuration.port
            listener = try stack.listen(port: port, address: configuration.address, backlog: configuration.backlog, handler: self)
            return stack.localEndpoint(of: socket)
        } catch {
            stop()
            throw .device(error)
        }
    }

    /// Closes the socket, the listener and every connection.
    public func stop() {
        if let socket { stack.closeUDP(socket) }
        if let listener { stack.closeListener(listener) }
        socket = nil
        listener = nil
        for id in Array(connections.keys) { stack.abort(id) }
        connections.removeAll()
        statistics.connectionsOpen = 0
        if let sweepTimer { timers.cancel(sweepTimer) }
        sweepTimer = nil
    }

    /// One line of counters, for a status report.
    public var status: String {
        let a = core.statistics
        let s = statistics
        return "queries \(a.queries) answered \(a.answered) nxdomain \(a.nameErrors) truncated \(a.truncated) "
            + "formerr \(a.formatErrors) refused \(a.refused) notimp \(a.notImplemented) badvers \(a.badVersions) "
            + "dropped \(a.dropped) transfers \(a.transfers) udp \(s.udpQueries) tcp \(s.tcpQueries) "
            + "connections \(s.connectionsOpen)/\(s.connectionsAccepted) rejected \(s.connectionsRejected) "
            + "idle-closed \(s.idleTimeouts) udp-send-failures \(s.udpSendFailures)"
    }

    // MARK: UDP

    public func datagramReceived(_ payload: Span<UInt8>, from source: Endpoint, to destination: Endpoint, on socket: UDPSocketID) {
        statistics.udpQueries += 1
        switch core.respond(to: payload, transport: .udp, into: &writer) {
        case .reply:
            // A local copy of the array (a reference, not the bytes): a
            // span of a class's stored property cannot outlive the access.
            let reply = writer.bytes
            do {
                try stack.send(reply.span, to: source, from: socket)
            } catch {
                statistics.udpSendFailures += 1
            }
        case .drop, .reset, .transfer:
            // A transfer is never started over UDP (the core refuses it).
            break
        }
    }

    // MARK: TCP

    public func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {
        guard connections.count < configuration.maximumConnections else {
            statistics.connectionsRejected += 1
            stack.abort(connection)
            return
        }
        statistics.connectionsAccepted += 1
        connections[connection] = Connection(lastActivity: clock.now())
        statistics.connectionsOpen = connections.count
        armSweep()
    }

    public func connectionEstablished(_ connection: ConnectionID) {}

    public func received(_ bytes: Span<UInt8>, on id: ConnectionID) {
        guard var connection = connections[id], !connection.refusing else { return }
        connection.lastActivity = clock.now()
        connection.framer.append(bytes)
        connections[id] = connection
        serve(id)
    }

    public func endOfStream(on id: ConnectionID) {
        // RFC 7766 §6.2.3: the client is done; answer what is queued, then close.
        guard var connection = connections[id] else { return }
        connection.closing = true
        connections[id] = connection
        serve(id)
    }

    public func writable(_ id: ConnectionID) {
        serve(id)
    }

    public func connectionClosed(_ id: ConnectionID, reason: CloseReason) {
        connections[id] = nil
        statistics.connectionsOpen = connections.count
    }

    /// Moves a connection forward: flush pending output, continue a
    /// transfer, answer queued queries in order — as far as the stack takes
    /// output; then pause or resume reading and close when done.
    private func serve(_ id: ConnectionID) {
        guard var connection = connections[id] else { return }
        defer { if connections[id] != nil { connections[id] = connection } }
        while true {
            if !connection.pending.isEmpty {
                guard flush(&connection, id) else { break }
            }
            if var transfer = connection.transfer {
                if transfer.next(into: &writer) {
                    connection.transfer = transfer
                    queueFrame(&connection)
                    continue
                }
                connection.transfer = nil
            }
            if connection.pending.count >= configuration.maximumPendingOutput { break }
            let action: ServerAction?
            do {
                action = try connection.framer.next { message in
                    core.respond(to: message, transport: .tcp, into: &writer)
                }
            } catch {
                statistics.badFrames += 1
                connections[id] = nil
                statistics.connectionsOpen = connections.count
                stack.abort(id)
                return
            }
            guard let action else { break }
            statistics.tcpQueries += 1
            switch action {
            case .reply:
                queueFrame(&connection)
            case .transfer(let transfer):
                connection.transfer = transfer
            case .reset:
                statistics.badFrames += 1
                connections[id] = nil
                statistics.connectionsOpen = connections.count
                stack.abort(id)
                return
            case .drop:
                // Not a query (a response, a question cut short): the
                // stream is not to be trusted further; close after what is queued.
                connection.framer = StreamFramer()
                connection.closing = true
                connection.refusing = true
            }
            if connection.refusing { break }
        }
        let blocked = !connection.pending.isEmpty || connection.transfer != nil
        let shouldPause = connection.framer.isFull || (blocked && connection.framer.hasMessage)
        if shouldPause && !connection.paused {
            connection.paused = true
            stack.pauseReading(id)
        } else if !shouldPause && connection.paused {
            connection.paused = false
            stack.resumeReading(id)
        }
        if connection.closing && !blocked && !connection.framer.hasMessage {
            stack.close(id)
        }
    }

    /// Appends the writer's message, length-prefixed, to the pending output.
    private func queueFrame(_ connection: inout Connection) {
        let count = writer.count
        connection.pending.append(UInt8(truncatingIfNeeded: count >> 8))
        connection.pending.append(UInt8(truncatingIfNeeded: count))
        connection.pending.append(contentsOf: writer.bytes[0..<count])
    }

    /// Writes pending output; true when all of it went.
    private func flush(_ connection: inout Connection, _ id: ConnectionID) -> Bool {
        let written: Int
        do {
            let pending = connection.pending
            written = try stack.write(pending.span, on: id)
        } catch {
            connection.pending.removeAll()
            connection.transfer = nil
            stack.abort(id)
            return false
        }
        if written == connection.pending.count {
            connection.pending.removeAll(keepingCapacity: true)
            return true
        }
        connection.pending.removeSubrange(0..<written)
        return false
    }

    // MARK: Idle timeout

    /// One timer for all connections, due when the longest-idle one runs out.
    private func armSweep() {
        guard sweepTimer == nil else { return }
        var earliest: Instant?
        for connection in connections.values {
            earliest = Instant.earlier(earliest, connection.lastActivity + configuration.idleTimeout)
        }
        if let earliest { sweepTimer = timers.schedule(at: earliest, self) }
    }

    public func timerFired(_ id: TimerID, now: Instant) {
        guard id == sweepTimer else { return }
        sweepTimer = nil
        var idle: [ConnectionID] = []
        for (connectionID, connection) in connections
        where connection.pending.isEmpty && connection.transfer == nil && now - connection.lastActivity >= configuration.idleTimeout {
            idle.append(connectionID)
        }
        for connectionID in idle {
            statistics.idleTimeouts += 1
            connections[connectionID] = nil
            stack.close(connectionID)
        }
        statistics.connectionsOpen = connections.count
        armSweep()
    }
}
