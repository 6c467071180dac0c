import MirageDNS
import MirageDevices
import Testing

/// A tiny name server for the resolver tests, built from `Message`: one
/// zone's records, CNAMEs followed inside it, NXDOMAIN and NODATA with the
/// SOA (RFC 2308 §3), UDP answers cut to 512 bytes without EDNS or to
/// min(offered, 1232) with it (TC set), TCP answers whole.
final class TinyResponder {
    let apex: DomainName
    let soa: ResourceRecord
    var records: [ResourceRecord] = []
    /// Servers that answer SERVFAIL.
    var failing: Set<Endpoint> = []
    /// Servers that never answer.
    var silent: Set<Endpoint> = []
    /// Servers with nothing listening (ICMP port unreachable).
    var closed: Set<Endpoint> = []
    private(set) var udpQueries = 0
    private(set) var tcpQueries = 0

    init(apex: String, negativeTTL: UInt32 = 60) {
        self.apex = dn(apex)
        soa = soaRecord(apex, ttl: 3600, minimum: negativeTTL)
    }

    /// The answer to `query`, or nil when it does not parse (dropped).
    func answer(_ query: [UInt8], udp: Bool, server: Endpoint) -> [UInt8]? {
        guard let q = try? Message(parsing: query.span), let question = q.questions.first else { return nil }
        if udp { udpQueries += 1 } else { tcpQueries += 1 }
        var m = Message(header: q.header)
        m.header.isResponse = true
        m.header.recursionAvailable = true
        m.questions = q.questions
        if q.edns != nil { m.edns = EDNS() }
        if failing.contains(server) {
            m.responseCode = .serverFailure
        } else {
            var name = question.name
            var done = false
            for _ in 0..<8 where !done {
                let here = records.filter { $0.name == name }
                let matching = here.filter { $0.type == question.type }
                if !matching.isEmpty {
                    m.answers += matching
                    done = true
                } else if let alias = here.first(where: { $0.type == .cname }), case .cname(let target) = alias.data {
                    m.answers.append(alias)
                    name = target
                    if !target.isSubdomain(of: apex) { done = true }
                } else {
                    m.authority = [soa]
                    if here.isEmpty && !records.contains(where: { $0.name.isSubdomain(of: name) }) { m.responseCode = .nameError }
                    done = true
                }
            }
        }
        let limit = udp ? (q.edns.map { min(Int(max($0.payloadSize, 512)), Int(EDNS.ourPayloadSize)) } ?? 512) : 65535
        return try? m.encode(limit: limit)
    }
}

/// Seeded faults applied to datagrams, in percent: lost, delivered twice,
/// delayed by up to `jitter` (which reorders them).
struct DatagramFaults {
    var dropPercent: UInt64 = 0
    var duplicatePercent: UInt64 = 0
    var jitter: Interval = .zero
}

/// An in-memory `Stack` for one host (10.0.0.2) whose UDP datagrams and
/// TCP connections reach a `TinyResponder` at any server endpoint, through
/// seeded faults and a fixed latency. Nothing moves until `run`: events
/// are never delivered from inside a stack call, as the contract requires.
/// Ephemeral ports are chosen as MirageTCPIP does (RFC 6056 §3.3.1 with
/// the entropy), and every bind is recorded.
final class FakeDNSNetwork: Stack {
    enum Event {
        case toServer([UInt8], from: Endpoint, server: Endpoint)
        case toClient([UInt8], from: Endpoint, port: UInt16)
        case unreachable(port: UInt16, about: Endpoint)
        case established(ConnectionID)
        case data(ConnectionID, [UInt8])
        case closedByPeer(ConnectionID)
    }

    struct Pending {
        var at: Instant
        var sequence: UInt64
        var event: Event
    }

    final class TCPState {
        let remote: Endpoint
        let handler: any TCPHandler
        var received: [UInt8] = []
        var open = true
        init(remote: Endpoint, handler: any TCPHandler) {
            self.remote = remote
            self.handler = handler
        }
    }

    let clock = ManualClock()
    let timers: ManualTimerScheduler
    let responder: TinyResponder
    let address = IPAddress.v4(IPv4Address(10, 0, 0, 2))
    var faults = DatagramFaults()
    var latency: Interval = .milliseconds(10)
    /// Bytes per `received` event on TCP (small, to exercise reassembly).
    var tcpChunk = 7
    /// Forged answers (wrong ID, from the server's address and port) sent
    /// ahead of each real one: an off-path attacker who guessed the port.
    var forgeriesPerAnswer = 0
    /// Thrown by every `bindUDP` when set.
    var bindError: DeviceError?
    /// Thrown by the next `send`s, one each.
    var sendErrors: [DeviceError] = []
    private let random: SeededEntropy
    private var pending: [Pending] = []
    private var sequence: UInt64 = 0
    private var udp: [UDPSocketID: (port: UInt16, handler: any UDPHandler)] = [:]
    private var tcp: [ConnectionID: TCPState] = [:]
    private var nextHandle: UInt32 = 1
    private(set) var boundPorts: [UInt16] = []
    private(set) var requestedPorts: [UInt16] = []
    private(set) var datagramsSent = 0
    private(set) var dropped = 0
    private(set) var duplicated = 0
    private(set) var forged = 0
    private(set) var connectionsOpened = 0
    private var delivering = false
    private(set) var reentered = false

    init(responder: TinyResponder, seed: UInt64) {
        timers = ManualTimerScheduler(clock: clock)
        self.responder = responder
        random = SeededEntropy(seed: seed)
    }

    var openUDPSockets: Int { udp.count }
    var openConnections: Int { tcp.values.filter(\.open).count }
    var localAddresses: [IPAddress] { [address] }

    // MARK: Moving things

    private func schedule(_ event: Event, after delay: Interval) {
        sequence += 1
        pending.append(Pending(at: clock.now() + delay, sequence: sequence, event: event))
    }

    /// A datagram through the faults.
    private func transmit(_ event: Event) {
        datagramsSent += 1
        if faults.dropPercent > 0 && random.next(below: 100) < faults.dropPercent {
            dropped += 1
            return
        }
        let copies = faults.duplicatePercent > 0 && random.next(below: 100) < faults.duplicatePercent ? 2 : 1
        if copies == 2 { duplicated += 1 }
        for _ in 0..<copies {
            var delay = latency
            if faults.jitter > .zero {
                delay = delay + .nanoseconds(Int64(random.next(below: UInt64(faults.jitter.nanoseconds))))
            }
            schedule(event, after: delay)
        }
    }

    /// Delivers what is due, fires due timers, and moves the clock to the
    /// next thing to happen, until `limit` (where the clock ends) or
    /// nothing is left.
    func run(until limit: Instant) {
        runEvents(until: limit)
        if limit > clock.now() { clock.advance(to: limit) }
        timers.runDue()
    }

    /// Runs until nothing is pending (bounded); the clock stays at the
    /// last event.
    func settle() { runEvents(until: clock.now() + .seconds(3600)) }

    private func runEvents(until limit: Instant) {
        var rounds = 0
        while rounds < 1_000_000 {
            rounds += 1
            timers.runDue()
            let nextEvent = pending.map(\.at).min()
            guard let next = Instant.earlier(nextEvent, timers.nextDeadline()), next <= limit else { break }
            if next > clock.now() { clock.advance(to: next) }
            let now = clock.now()
            let due = pending.filter { $0.at <= now }.sorted { ($0.at, $0.sequence) < ($1.at, $1.sequence) }
            pending.removeAll { $0.at <= now }
            for p in due { deliver(p.event) }
        }
    }

    private func deliver(_ event: Event) {
        precondition(!delivering)
        delivering = true
        defer { delivering = false }
        switch event {
        case .toServer(let bytes, let from, let server):
            if responder.closed.contains(server) {
                transmitICMP(port: from.port, about: server)
                return
            }
            guard !responder.silent.contains(server), let answer = responder.answer(bytes, udp: true, server: server) else { return }
            for _ in 0..<forgeriesPerAnswer {
                var fake = answer
                let flip = UInt16(1 + random.next(below: 65535))
                fake[0] ^= UInt8(truncatingIfNeeded: flip >> 8)
                fake[1] ^= UInt8(truncatingIfNeeded: flip)
                forged += 1
                schedule(.toClient(fake, from: server, port: from.port), after: .zero)
            }
            transmit(.toClient(answer, from: server, port: from.port))
        case .toClient(let bytes, let from, let port):
            guard let (id, socket) = udp.first(where: { $0.value.port == port }) else { return }
            socket.handler.datagramReceived(bytes.span, from: from, to: Endpoint(address, port), on: id)
        case .unreachable(let port, let about):
            guard let (id, socket) = udp.first(where: { $0.value.port == port }) else { return }
            socket.handler.errorReceived(.destinationUnreachable(code: 3), about: about, on: id)
        case .established(let c):
            guard let state = tcp[c], state.open else { return }
            state.handler.connectionEstablished(c)
        case .data(let c, let bytes):
            guard let state = tcp[c], state.open else { return }
            state.handler.received(bytes.span, on: c)
        case .closedByPeer(let c):
            guard let state = tcp[c], state.open else { return }
            state.open = false
            tcp[c] = nil
            state.handler.connectionClosed(c, reason: .normal)
        }
    }

    private func transmitICMP(port: UInt16, about server: Endpoint) {
        schedule(.unreachable(port: port, about: server), after: latency)
    }

    private func newHandle() -> UInt32 {
        defer { nextHandle += 1 }
        return nextHandle
    }

    // MARK: UDP

    func bindUDP(port: UInt16, address: IPAddress?, handler: any UDPHandler) throws(DeviceError) -> UDPSocketID {
        requestedPorts.append(port)
        if let bindError { throw bindError }
        let chosen: UInt16
        if port == 0 {
            guard let p = EphemeralPortRange.default.choose(using: random, isInUse: { p in udp.values.contains { $0.port == p } }) else {
                throw .resourceExhausted("ports")
            }
            chosen = p
        } else {
            chosen = port
        }
        boundPorts.append(chosen)
        let id = UDPSocketID(rawValue: newHandle())
        udp[id] = (chosen, handler)
        return id
    }

    func localEndpoint(of socket: UDPSocketID) -> Endpoint? { udp[socket].map { Endpoint(address, $0.port) } }

    func send(_ payload: Span<UInt8>, to destination: Endpoint, from socket: UDPSocketID) throws(DeviceError) {
        guard let s = udp[socket] else { throw .unknownHandle }
        if !sendErrors.isEmpty { throw sendErrors.removeFirst() }
        var bytes: [UInt8] = []
        for i in payload.indices { bytes.append(payload[i]) }
        transmit(.toServer(bytes, from: Endpoint(address, s.port), server: destination))
    }

    func closeUDP(_ socket: UDPSocketID) { udp[socket] = nil }

    // MARK: TCP (reliable: no faults)

    func connect(to remote: Endpoint, timeout: Interval?, handler: any TCPHandler) throws(DeviceError) -> ConnectionID {
        let c = ConnectionID(rawValue: newHandle())
        tcp[c] = TCPState(remote: remote, handler: handler)
        connectionsOpened += 1
        schedule(.established(c), after: latency)
        return c
    }

    func write(_ bytes: Span<UInt8>, on connection: ConnectionID) throws(DeviceError) -> Int {
        guard let state = tcp[connection], state.open else { throw .notConnected }
        for i in bytes.indices { state.received.append(bytes[i]) }
        // A whole framed query: answer it, framed, in small pieces.
        if state.received.count >= 2 {
            let length = Int(state.received[0]) << 8 | Int(state.received[1])
            if state.received.count >= 2 + length {
                let query = Array(state.received[2..<(2 + length)])
                state.received.removeFirst(2 + length)
                if !responder.silent.contains(state.remote),
                   let answer = responder.answer(query, udp: false, server: state.remote) {
                    let framed = framed(answer)
                    var offset = 0
                    while offset < framed.count {
                        let end = min(offset + tcpChunk, framed.count)
                        schedule(.data(connection, Array(framed[offset..<end])), after: latency)
                        offset = end
                    }
                }
            }
        }
        return bytes.count
    }

    func close(_ connection: ConnectionID) {
        tcp[connection]?.open = false
        tcp[connection] = nil
    }

    func abort(_ connection: ConnectionID) { close(connection) }

    /// Closes the connection from the server's side (FIN) after `latency`.
    func peerCloses(_ connection: ConnectionID) { schedule(.closedByPeer(connection), after: latency) }

    var connectionIDs: [ConnectionID] { Array(tcp.keys) }

    func endpoints(of connection: ConnectionID) -> (local: Endpoint, remote: Endpoint)? {
        tcp[connection].map { (Endpoint(address, 40000), $0.remote) }
    }
    func setHandler(_ handler: any TCPHandler, for connection: ConnectionID) throws(DeviceError) { throw .unsupported("setHandler") }
    func listen(port: UInt16, address: IPAddress?, backlog: Int, handler: any TCPHandler) throws(DeviceError) -> ListenerID {
        throw .unsupported("listen")
    }
    func localEndpoint(of listener: ListenerID) -> Endpoint? { nil }
    func closeListener(_ listener: ListenerID) {}
    func pauseReading(_ connection: ConnectionID) {}
    func resumeReading(_ connection: ConnectionID) {}
    func shutdownWrite(_ connection: ConnectionID) {}
    func setNoDelay(_ noDelay: Bool, for connection: ConnectionID) throws(DeviceError) {}
    func setKeepAlive(_ idle: Interval?, for connection: ConnectionID) throws(DeviceError) {}
    func statistics(of connection: ConnectionID) -> ConnectionStatistics? { nil }
}

/// Collects `Resolver` results.
final class ResultCollector: ResolverHandler {
    var results: [LookupID: Result<LookupResult, DNSError>] = [:]
    var order: [LookupID] = []
    var onResult: ((LookupID) -> Void)?
    func resolved(_ lookup: LookupID, result: Result<LookupResult, DNSError>) {
        #expect(results[lookup] == nil, "one result per lookup")
        results[lookup] = result
        order.append(lookup)
        onResult?(lookup)
    }
}

/// Collects `NameResolver` results.
final class NameCollector: NameResolutionHandler {
    var addresses: [NameLookupID: [IPAddress]] = [:]
    var errors: [NameLookupID: NameResolutionError] = [:]
    func nameResolved(_ lookup: NameLookupID, addresses: [IPAddress]) { self.addresses[lookup] = addresses }
    func nameResolutionFailed(_ lookup: NameLookupID, error: NameResolutionError) { errors[lookup] = error }
}
