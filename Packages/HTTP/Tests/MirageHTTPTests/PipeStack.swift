import MirageDevices

/// An in-memory `Stack` for HTTP tests: connections are pairs of byte
/// pipes with a bounded send buffer each, so writes are partial when the
/// buffer is full and `writable` follows once the peer has taken enough.
/// Nothing happens until `run` is called: events are delivered from there,
/// never re-entrantly from inside a stack call, as the contract requires.
///
/// Bytes move in segments of `segmentSize`; a connection whose reader is
/// paused keeps them in the writer's send buffer (the window is closed).
/// `close` is modelled as FIN; bytes arriving at a connection that was
/// closed reset both ends, as a real TCP does.
final class PipeStack: Stack {
    final class Connection {
        let id: ConnectionID
        var handler: any TCPHandler
        var peer: ConnectionID?
        let local: Endpoint
        let remote: Endpoint
        var established = false
        /// Written, not yet delivered to the peer.
        var sendBuffer: [UInt8] = []
        var wantsWritable = false
        /// shutdownWrite or close was called: FIN after the send buffer.
        var finQueued = false
        var finDelivered = false
        /// The peer's FIN arrived.
        var finReceived = false
        /// close() was called: no more received events.
        var closedByApp = false
        var paused = false
        var gone = false
        init(id: ConnectionID, handler: any TCPHandler, local: Endpoint, remote: Endpoint) {
            self.id = id
            self.handler = handler
            self.local = local
            self.remote = remote
        }
    }

    struct Listener {
        var port: UInt16
        var handler: any TCPHandler
    }

    let address: IPAddress
    var sendBufferSize: Int
    var segmentSize: Int
    private(set) var connections: [ConnectionID: Connection] = [:]
    private var listeners: [ListenerID: Listener] = [:]
    private var pending: [() -> Void] = []
    private var nextConnection: UInt32 = 1
    private var nextListener: UInt32 = 1
    private var nextPort: UInt16 = 49152
    // Counters the tests assert on.
    private(set) var shortWrites = 0
    private(set) var writableEvents = 0
    private(set) var resets = 0
    private(set) var connectCalls = 0
    private(set) var pauseCalls = 0
    private(set) var bytesWritten = 0
    /// Set while an event is delivered: a re-entrant delivery is a bug.
    private var delivering = false
    private(set) var reentered = false

    init(address: IPAddress = .v4(IPv4Address(10, 0, 0, 1)), sendBufferSize: Int = 16 * 1024, segmentSize: Int = 1460) {
        self.address = address
        self.sendBufferSize = sendBufferSize
        self.segmentSize = segmentSize
    }

    var localAddresses: [IPAddress] { [address] }

    func listen(port: UInt16, address: IPAddress?, backlog: Int, handler: any TCPHandler) throws(DeviceError) -> ListenerID {
        let id = ListenerID(rawValue: nextListener)
        nextListener += 1
        let chosen = port == 0 ? ephemeral() : port
        listeners[id] = Listener(port: chosen, handler: handler)
        return id
    }

    func localEndpoint(of listener: ListenerID) -> Endpoint? {
        listeners[listener].map { Endpoint(address, $0.port) }
    }

    func closeListener(_ listener: ListenerID) { listeners[listener] = nil }

    private func ephemeral() -> UInt16 {
        defer { nextPort += 1 }
        return nextPort
    }

    func connect(to remote: Endpoint, timeout: Interval?, handler: any TCPHandler) throws(DeviceError) -> ConnectionID {
        connectCalls += 1
        let id = newID()
        let local = Endpoint(address, ephemeral())
        let client = Connection(id: id, handler: handler, local: local, remote: remote)
        connections[id] = client
        pending.append { [self] in
            guard !client.gone else { return }
            guard remote.address == address, let (lid, listener) = listeners.first(where: { $0.value.port == remote.port }) else {
                client.gone = true
                connections[id] = nil
                deliver { handler.connectionClosed(id, reason: .refused) }
                return
            }
            let serverID = newID()
            let server = Connection(id: serverID, handler: listener.handler, local: remote, remote: local)
            server.peer = id
            server.established = true
            client.peer = serverID
            client.established = true
            connections[serverID] = server
            deliver { listener.handler.connectionAccepted(serverID, listener: lid) }
            deliver { client.handler.connectionEstablished(id) }
        }
        return id
    }

    private func newID() -> ConnectionID {
        defer { nextConnection += 1 }
        return ConnectionID(rawValue: nextConnection)
    }

    func endpoints(of connection: ConnectionID) -> (local: Endpoint, remote: Endpoint)? {
        connections[connection].map { ($0.local, $0.remote) }
    }

    func setHandler(_ handler: any TCPHandler, for connection: ConnectionID) throws(DeviceError) {
        guard let c = connections[connection] else { throw .unknownHandle }
        c.handler = handler
    }

    func write(_ bytes: Span<UInt8>, on connection: ConnectionID) throws(DeviceError) -> Int {
        guard let c = connections[connection] else { throw .unknownHandle }
        guard c.established, !c.finQueued else { throw .notConnected }
        let n = min(bytes.count, sendBufferSize - c.sendBuffer.count)
        if n < bytes.count {
            shortWrites += 1
            c.wantsWritable = true
        }
        c.sendBuffer.append(span: bytes.extracting(0..<n))
        bytesWritten += n
        return n
    }

    func pauseReading(_ connection: ConnectionID) {
        pauseCalls += 1
        connections[connection]?.paused = true
    }

    func resumeReading(_ connection: ConnectionID) { connections[connection]?.paused = false }

    func shutdownWrite(_ connection: ConnectionID) { connections[connection]?.finQueued = true }

    func close(_ connection: ConnectionID) {
        guard let c = connections[connection] else { return }
        c.finQueued = true
        c.closedByApp = true
    }

    func abort(_ connection: ConnectionID) {
        guard let c = connections[connection], !c.gone else { return }
        c.gone = true
        connections[connection] = nil
        deliverLater { c.handler.connectionClosed(connection, reason: .aborted) }
        if let p = c.peer, let peer = connections[p] { reset(peer) }
    }

    private func reset(_ c: Connection) {
        guard !c.gone else { return }
        resets += 1
        c.gone = true
        connections[c.id] = nil
        deliverLater { c.handler.connectionClosed(c.id, reason: .reset) }
    }

    func setNoDelay(_ noDelay: Bool, for connection: ConnectionID) throws(DeviceError) {
        guard connections[connection] != nil else { throw .unknownHandle }
    }

    func setKeepAlive(_ idle: Interval?, for connection: ConnectionID) throws(DeviceError) {}
    func statistics(of connection: ConnectionID) -> ConnectionStatistics? { nil }

    func bindUDP(port: UInt16, address: IPAddress?, handler: any UDPHandler) throws(DeviceError) -> UDPSocketID {
        throw .invalidArgument("no UDP in PipeStack")
    }
    func localEndpoint(of socket: UDPSocketID) -> Endpoint? { nil }
    func send(_ payload: Span<UInt8>, to destination: Endpoint, from socket: UDPSocketID) throws(DeviceError) {
        throw .invalidArgument("no UDP in PipeStack")
    }
    func closeUDP(_ socket: UDPSocketID) {}

    // MARK: Running

    private func deliver(_ event: () -> Void) {
        if delivering { reentered = true }
        delivering = true
        event()
        delivering = false
    }

    private func deliverLater(_ event: @escaping () -> Void) {
        pending.append { [self] in deliver(event) }
    }

    /// Delivers events until nothing moves; returns whether anything did.
    @discardableResult
    func run() -> Bool {
        var progressed = false
        while step() { progressed = true }
        return progressed
    }

    private func step() -> Bool {
        var moved = false
        while !pending.isEmpty {
            let event = pending.removeFirst()
            event()
            moved = true
        }
        for id in connections.keys.sorted(by: { $0.rawValue < $1.rawValue }) {
            guard let c = connections[id], !c.gone, c.established else { continue }
            if transfer(c) { moved = true }
        }
        return moved
    }

    /// Moves one segment (or the FIN) from `c` to its peer.
    private func transfer(_ c: Connection) -> Bool {
        guard let p = c.peer else { return false }
        guard let peer = connections[p], !peer.gone else {
            // The peer is gone: what is left cannot be delivered.
            if !c.sendBuffer.isEmpty || (c.finQueued && !c.finDelivered) {
                c.sendBuffer = []
                reset(c)
                return true
            }
            return false
        }
        if !c.sendBuffer.isEmpty {
            if peer.closedByApp {
                // Data for a socket that was closed: RST both ways.
                reset(c)
                reset(peer)
                return true
            }
            guard !peer.paused else { return false }
            let n = min(segmentSize, c.sendBuffer.count)
            let segment = Array(c.sendBuffer[0..<n])
            c.sendBuffer.removeFirst(n)
            deliver { peer.handler.received(segment.span, on: p) }
            if c.wantsWritable, !c.gone, c.sendBuffer.count <= sendBufferSize / 2 {
                c.wantsWritable = false
                writableEvents += 1
                deliver { c.handler.writable(c.id) }
            }
            return true
        }
        if c.finQueued && !c.finDelivered {
            c.finDelivered = true
            peer.finReceived = true
            if !peer.closedByApp { deliver { peer.handler.endOfStream(on: p) } }
            finishIfDone(c, peer)
            return true
        }
        return false
    }

    /// Both sides sent FIN and everything was delivered: the connection ends.
    private func finishIfDone(_ a: Connection, _ b: Connection) {
        guard a.finDelivered, b.finDelivered, !a.gone, !b.gone else { return }
        a.gone = true
        b.gone = true
        connections[a.id] = nil
        connections[b.id] = nil
        deliverLater { a.handler.connectionClosed(a.id, reason: .normal) }
        deliverLater { b.handler.connectionClosed(b.id, reason: .normal) }
    }
}

/// A stack, a clock and timers, driven together.
final class PipeWorld {
    let clock = ManualClock()
    let timers: ManualTimerScheduler
    let stack: PipeStack

    init(sendBufferSize: Int = 16 * 1024, segmentSize: Int = 1460) {
        timers = ManualTimerScheduler(clock: clock)
        stack = PipeStack(sendBufferSize: sendBufferSize, segmentSize: segmentSize)
    }

    /// Runs the stack and due timers until both are quiet.
    func settle() {
        var rounds = 0
        while stack.run() || timers.runDue() > 0 {
            rounds += 1
            precondition(rounds < 1_000_000, "the world does not settle")
        }
    }

    /// Moves time forward by `interval`, firing timers on the way and
    /// settling after each.
    func advance(by interval: Interval) {
        let end = clock.now() + interval
        settle()
        while let next = timers.nextDeadline(), next <= end {
            if next > clock.now() { clock.advance(to: next) }
            timers.runDue()
            settle()
        }
        clock.advance(to: end)
        settle()
    }
}
