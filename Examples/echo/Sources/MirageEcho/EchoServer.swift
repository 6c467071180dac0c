import MirageDevices

/// Serves echo (RFC 862), discard (RFC 863) and a character generator
/// (RFC 864) over any stack that implements the stack contract, with the
/// callback API only, so it runs unchanged over kernel sockets and over our
/// own TCP/IP stack.
///
/// Call every method from the stack's run loop. Back-pressure is respected
/// in both directions: an echo connection whose reply the stack does not
/// take whole pauses reading until `writable`; the generator writes until the
/// stack takes less than offered and continues on `writable`.
public final class EchoServer<S: Stack>: TCPHandler, UDPHandler {
    /// The stack served on.
    public let stack: S
    /// What is served.
    public let configuration: EchoConfiguration
    /// What has happened so far.
    public private(set) var counters = EchoCounters()
    /// Whether `start` succeeded and `stop` has not been called.
    public private(set) var isRunning = false

    /// Bytes offered to the stack in one generator write. Large, so that a
    /// kernel socket fills its send buffer in a few calls.
    public static var sourceChunk: Int { 64 * 1024 }
    /// Generator writes per event that the stack may take whole before the
    /// server gives up on it (a stack honouring the contract takes less
    /// than offered long before: its send buffer is bounded).
    public static var maximumWritesPerEvent: Int { 4096 }

    private final class Session {
        let service: EchoService
        /// Echo bytes the stack has not taken yet, from `pendingStart` on.
        var pending: [UInt8] = []
        var pendingStart = 0
        /// Position of the generator within one period of the pattern.
        var sourceOffset = 0
        /// Reading was paused by us (echo back-pressure).
        var paused = false
        /// Close once `pending` has been written (the peer sent FIN).
        var closeWhenFlushed = false
        /// `close` or `abort` was called: write nothing more.
        var closing = false

        init(service: EchoService) { self.service = service }

        var pendingCount: Int { pending.count - pendingStart }
    }

    private var listeners: [(id: ListenerID, service: EchoService)] = []
    private var udpSockets: [(id: UDPSocketID, service: EchoService)] = []
    private var sessions: [ConnectionID: Session] = [:]
    /// One period of the RFC 864 stream followed by `sourceChunk` more
    /// bytes, so a chunk starting anywhere in the period is contiguous.
    private let pattern: [UInt8]

    /// A server that will serve `configuration` on `stack` once started.
    public init(stack: S, configuration: EchoConfiguration) {
        self.stack = stack
        self.configuration = configuration
        pattern = CharacterGenerator.bytes(count: CharacterGenerator.period + Self.sourceChunk)
    }

    /// Number of connections open now.
    public var openConnections: Int { sessions.count }

    /// Opens the listeners and UDP sockets. On failure, whatever was opened
    /// is closed again and the error is thrown.
    public func start() throws(DeviceError) {
        guard !isRunning else { return }
        do {
            for service in [EchoService.echo, .discard, .source] {
                guard let port = configuration.port(of: service) else { continue }
                if configuration.tcp {
                    let listener = try stack.listen(
                        port: port, address: configuration.address, backlog: configuration.backlog, handler: self)
                    listeners.append((listener, service))
                }
                if configuration.udp && service != .source {
                    let socket = try stack.bindUDP(port: port, address: configuration.address, handler: self)
                    udpSockets.append((socket, service))
                }
            }
        } catch {
            closeEndpoints()
            throw error
        }
        isRunning = true
    }

    /// Stops serving: closes the listeners and UDP sockets and closes open
    /// connections gracefully (their `connectionClosed` events still arrive
    /// and are counted).
    public func stop() {
        isRunning = false
        closeEndpoints()
        for (id, session) in sessions where !session.closing {
            session.closing = true
            stack.close(id)
        }
    }

    /// Where `service` listens for TCP, once started.
    public func tcpEndpoint(_ service: EchoService) -> Endpoint? {
        for entry in listeners where entry.service == service {
            return stack.localEndpoint(of: entry.id)
        }
        return nil
    }

    /// Where `service` receives UDP, once started (echo and discard only).
    public func udpEndpoint(_ service: EchoService) -> Endpoint? {
        for entry in udpSockets where entry.service == service {
            return stack.localEndpoint(of: entry.id)
        }
        return nil
    }

    private func closeEndpoints() {
        for entry in listeners { stack.closeListener(entry.id) }
        for entry in udpSockets { stack.closeUDP(entry.id) }
        listeners.removeAll()
        udpSockets.removeAll()
    }

    // MARK: TCPHandler

    public func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {
        var found: EchoService?
        for entry in listeners where entry.id == listener { found = entry.service }
        guard let service = found, isRunning, sessions.count < configuration.maximumConnections else {
            counters.connectionsRejected += 1
            stack.abort(connection)
            return
        }
        counters.connectionsAccepted += 1
        let session = Session(service: service)
        sessions[connection] = session
        if service == .source { pumpSource(connection, session) }
    }

    public func connectionEstablished(_ connection: ConnectionID) {
        // The server makes no outgoing connections.
    }

    public func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {
        guard let session = sessions[connection] else { return }
        switch session.service {
        case .discard:
            counters.discardBytes += UInt64(bytes.count)
        case .source:
            // RFC 864: "Data sent to the server is discarded".
            break
        case .echo:
            counters.echoBytesReceived += UInt64(bytes.count)
            guard !session.closing else { return }
            if session.pendingCount > 0 {
                // Only a stack that delivers after `pauseReading` gets here.
                guard session.pendingCount + bytes.count <= configuration.echoBufferLimit else {
                    counters.echoBufferOverflows += 1
                    session.closing = true
                    stack.abort(connection)
                    return
                }
                appendBytes(bytes, to: &session.pending)
                return
            }
            let taken: Int
            do throws(DeviceError) {
                taken = clamp(try stack.write(bytes, on: connection), to: bytes.count)
            } catch {
                return  // Shut down or reset: the close event follows.
            }
            counters.echoBytesSent += UInt64(taken)
            if taken < bytes.count {
                appendBytes(bytes.extracting(taken..<bytes.count), to: &session.pending)
                session.paused = true
                stack.pauseReading(connection)
            }
        }
    }

    public func endOfStream(on connection: ConnectionID) {
        counters.endOfStreams += 1
        guard let session = sessions[connection], !session.closing else { return }
        if session.service == .echo && session.pendingCount > 0 {
            session.closeWhenFlushed = true
            return
        }
        // Echo: everything was sent back. Discard: nothing to send.
        // Source: RFC 864 serves until the client closes.
        session.closing = true
        stack.close(connection)
    }

    public func writable(_ connection: ConnectionID) {
        guard let session = sessions[connection], !session.closing else { return }
        switch session.service {
        case .discard: break
        case .source: pumpSource(connection, session)
        case .echo: flushEcho(connection, session)
        }
    }

    public func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {
        guard sessions.removeValue(forKey: connection) != nil else { return }
        counters.recordClose(reason)
    }

    private func flushEcho(_ connection: ConnectionID, _ session: Session) {
        guard session.pendingCount > 0 else { return }
        let pending = session.pending
        let taken: Int
        do throws(DeviceError) {
            taken = clamp(try stack.write(pending.span.extracting(session.pendingStart..<pending.count), on: connection),
                          to: pending.count - session.pendingStart)
        } catch {
            return
        }
        counters.echoBytesSent += UInt64(taken)
        session.pendingStart += taken
        guard session.pendingCount == 0 else { return }  // `writable` follows.
        session.pending.removeAll(keepingCapacity: true)
        session.pendingStart = 0
        if session.closeWhenFlushed {
            session.closing = true
            stack.close(connection)
        } else if session.paused {
            session.paused = false
            stack.resumeReading(connection)
        }
    }

    private func pumpSource(_ connection: ConnectionID, _ session: Session) {
        let chunk = Self.sourceChunk
        let pattern = self.pattern
        for _ in 0..<Self.maximumWritesPerEvent {
            let start = session.sourceOffset
            let taken: Int
            do throws(DeviceError) {
                taken = clamp(try stack.write(pattern.span.extracting(start..<start + chunk), on: connection), to: chunk)
            } catch {
                return
            }
            counters.sourceBytesSent += UInt64(taken)
            session.sourceOffset = (start + taken) % CharacterGenerator.period
            if taken < chunk { return }  // `writable` follows.
        }
        counters.writeBoundHits += 1
        session.closing = true
        stack.abort(connection)
    }

    // MARK: UDPHandler

    public func datagramReceived(_ payload: Span<UInt8>, from source: Endpoint, to destination: Endpoint, on socket: UDPSocketID) {
        var found: EchoService?
        for entry in udpSockets where entry.id == socket { found = entry.service }
        guard let service = found else { return }
        switch service {
        case .discard:
            counters.datagramsDiscarded += 1
            counters.datagramBytesDiscarded += UInt64(payload.count)
        case .source:
            break
        case .echo:
            // Two echo services answering each other would loop for ever:
            // never answer a datagram coming from one of our own ports.
            guard source.port != 0, !isOurUDPPort(source) else {
                counters.datagramsDropped += 1
                return
            }
            do throws(DeviceError) {
                try stack.send(payload, to: source, from: socket)
                counters.datagramsEchoed += 1
            } catch {
                counters.datagramsDropped += 1
            }
        }
    }

    private func isOurUDPPort(_ source: Endpoint) -> Bool {
        guard source.address.isLoopback || stack.localAddresses.contains(source.address) else { return false }
        for entry in udpSockets where stack.localEndpoint(of: entry.id)?.port == source.port { return true }
        return false
    }
}

/// What a stack says it took, kept within what was offered (a stack that
/// answers otherwise breaks the contract; the server must not trap on it).
private func clamp(_ taken: Int, to offered: Int) -> Int {
    min(max(taken, 0), offered)
}

/// Appends borrowed bytes to an array in one copy.
private func appendBytes(_ bytes: Span<UInt8>, to array: inout [UInt8]) {
    bytes.withUnsafeBufferPointer { array.append(contentsOf: $0) }
}
