import MirageDevices

/// Two (or more) in-memory stacks of the contract joined by a queue of
/// events: `write` on one end becomes `received` on the other when the test
/// calls `PipeNetwork.run()`. Each end takes at most `writeCapacity` bytes
/// before `run()` drains them (then `writable`), so back-pressure can be
/// tested. Enough of the contract for TLSStack's tests; no UDP.
final class PipeNetwork {
    fileprivate var queue: [() -> Void] = []
    fileprivate var nextID: UInt32 = 1
    fileprivate var stacks: [PipeStack] = []

    /// Delivers queued events (and those they cause) until none is left.
    func run(limit: Int = 100_000) {
        var steps = 0
        while !queue.isEmpty && steps < limit {
            let event = queue.removeFirst()
            event()
            steps += 1
        }
    }

    /// A stack at `address`.
    func stack(_ address: IPv4Address) -> PipeStack {
        let s = PipeStack(network: self, address: address)
        stacks.append(s)
        return s
    }
}

/// One end of a `PipeNetwork`.
final class PipeStack: Stack {
    final class Connection {
        let id: ConnectionID
        var handler: any TCPHandler
        var peer: (PipeStack, ConnectionID)?
        var local: Endpoint
        var remote: Endpoint
        var inFlight = 0
        var owesWritable = false
        var paused = false
        var held: [[UInt8]] = []
        var finSent = false
        var closed = false
        init(id: ConnectionID, handler: any TCPHandler, local: Endpoint, remote: Endpoint) {
            self.id = id
            self.handler = handler
            self.local = local
            self.remote = remote
        }
    }

    private let network: PipeNetwork
    let address: IPv4Address
    /// Bytes one connection may have in flight before `write` takes less.
    var writeCapacity = Int.max
    private var listeners: [UInt16: (ListenerID, any TCPHandler)] = [:]
    private(set) var connections: [ConnectionID: Connection] = [:]
    /// Calls to `abort` and `close`, by the TLS stack above.
    private(set) var aborts = 0
    private(set) var closes = 0

    init(network: PipeNetwork, address: IPv4Address) {
        self.network = network
        self.address = address
    }

    var localAddresses: [IPAddress] { [.v4(address)] }

    func listen(port: UInt16, address: IPAddress?, backlog: Int, handler: any TCPHandler) throws(DeviceError) -> ListenerID {
        let id = ListenerID(rawValue: network.nextID)
        network.nextID += 1
        listeners[port] = (id, handler)
        return id
    }

    func localEndpoint(of listener: ListenerID) -> Endpoint? {
        listeners.first { $0.value.0 == listener }.map { Endpoint(.v4(address), $0.key) }
    }

    func closeListener(_ listener: ListenerID) {
        listeners = listeners.filter { $0.value.0 != listener }
    }

    func connect(to remote: Endpoint, timeout: Interval?, handler: any TCPHandler) throws(DeviceError) -> ConnectionID {
        guard let server = network.stacks.first(where: { IPAddress.v4($0.address) == remote.address }),
              let entry = server.listeners[remote.port] else { throw .networkUnreachable(remote.address) }
        let (listener, serverHandler) = entry
        let local = Endpoint(.v4(address), 50_000)
        let mine = Connection(id: ConnectionID(rawValue: network.nextID), handler: handler, local: local, remote: remote)
        let theirs = Connection(id: ConnectionID(rawValue: network.nextID + 1), handler: serverHandler, local: remote, remote: local)
        network.nextID += 2
        mine.peer = (server, theirs.id)
        theirs.peer = (self, mine.id)
        connections[mine.id] = mine
        server.connections[theirs.id] = theirs
        network.queue.append { serverHandler.connectionAccepted(theirs.id, listener: listener) }
        network.queue.append { mine.handler.connectionEstablished(mine.id) }
        return mine.id
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
        guard !c.finSent, let peer = c.peer else { throw .notConnected }
        let (peerStack, peerID) = peer
        let room = writeCapacity == Int.max ? bytes.count : max(0, writeCapacity - c.inFlight)
        let taken = min(room, bytes.count)
        if taken < bytes.count { c.owesWritable = true }
        guard taken > 0 else { return 0 }
        var chunk: [UInt8] = []
        chunk.reserveCapacity(taken)
        for i in 0..<taken { chunk.append(bytes[i]) }
        c.inFlight += taken
        network.queue.append {
            c.inFlight -= taken
            if c.owesWritable && !c.closed {
                c.owesWritable = false
                c.handler.writable(c.id)
            }
            peerStack.deliver(chunk, to: peerID)
        }
        return taken
    }

    fileprivate func deliver(_ chunk: [UInt8], to id: ConnectionID) {
        guard let c = connections[id], !c.closed else { return }
        if c.paused {
            c.held.append(chunk)
            return
        }
        c.handler.received(chunk.span, on: id)
    }

    func pauseReading(_ connection: ConnectionID) { connections[connection]?.paused = true }

    func resumeReading(_ connection: ConnectionID) {
        guard let c = connections[connection] else { return }
        c.paused = false
        let held = c.held
        c.held = []
        for chunk in held { network.queue.append { [self] in deliver(chunk, to: connection) } }
    }

    func shutdownWrite(_ connection: ConnectionID) {
        guard let c = connections[connection], !c.finSent else { return }
        c.finSent = true
        if let peer = c.peer {
            network.queue.append { peer.0.peerFinished(peer.1) }
        }
    }

    fileprivate func peerFinished(_ id: ConnectionID) {
        guard let c = connections[id], !c.closed else { return }
        c.handler.endOfStream(on: id)
    }

    func close(_ connection: ConnectionID) {
        closes += 1
        shutdownWrite(connection)
        end(connection, reason: .normal)
    }

    func abort(_ connection: ConnectionID) {
        aborts += 1
        guard let c = connections[connection] else { return }
        if let peer = c.peer {
            network.queue.append { peer.0.end(peer.1, reason: .reset) }
        }
        end(connection, reason: .aborted)
    }

    fileprivate func end(_ connection: ConnectionID, reason: CloseReason) {
        guard let c = connections[connection], !c.closed else { return }
        c.closed = true
        network.queue.append { [self] in
            connections[connection] = nil
            c.handler.connectionClosed(connection, reason: reason)
        }
    }

    func setNoDelay(_ noDelay: Bool, for connection: ConnectionID) throws(DeviceError) {}
    func setKeepAlive(_ idle: Interval?, for connection: ConnectionID) throws(DeviceError) {}
    func statistics(of connection: ConnectionID) -> ConnectionStatistics? { nil }
    func bindUDP(port: UInt16, address: IPAddress?, handler: any UDPHandler) throws(DeviceError) -> UDPSocketID { throw .unsupported("UDP") }
    func localEndpoint(of socket: UDPSocketID) -> Endpoint? { nil }
    func send(_ payload: Span<UInt8>, to destination: Endpoint, from socket: UDPSocketID) throws(DeviceError) { throw .unsupported("UDP") }
    func closeUDP(_ socket: UDPSocketID) {}
}
