import MirageDevices

/// What an application implements to get the results of `Resolver`
/// lookups. Called from the run loop (a stack event or a timer), never from
/// inside a `Resolver` call: a call made from inside `resolved` takes
/// effect at once.
public protocol ResolverHandler: AnyObject {
    /// The lookup ended: records, NXDOMAIN or NODATA, or why no answer
    /// came. The identifier is spent.
    func resolved(_ lookup: LookupID, result: Result<LookupResult, DNSError>)
}

/// A stub resolver over any stack of the contract: runs a `StubResolver`
/// core, sending each UDP query from a fresh socket bound to port 0 (the
/// stack picks a random ephemeral port: the kernel for `SocketStack`,
/// RFC 6056 §3.3.1 with the stack's entropy for `MirageTCPIP`), falling
/// back to TCP on truncation, and passing results to each lookup's handler.
/// Call everything from the stack's run loop.
///
/// It also implements `NameResolver`, so clients that must not depend on
/// DNS (the HTTP client) can look host names up with it.
public final class Resolver<S: Stack>: UDPHandler, TCPHandler, TimerHandler, NameResolver {
    /// The stack queries go out on.
    public let stack: S
    private var core: StubResolver
    private let timers: any TimerScheduler
    private let clock: any MonotonicClock

    private enum Target {
        case handler(any ResolverHandler)
        /// A `NameResolver` lookup: the handler, its identifier, and
        /// whether this is the AAAA lookup after an A lookup found no data.
        case name(any NameResolutionHandler, NameLookupID, afterA: Bool)
    }

    private final class Connection {
        let id: ConnectionID
        var output: [UInt8]
        var established = false
        init(id: ConnectionID, output: [UInt8]) {
            self.id = id
            self.output = output
        }
    }

    private var targets: [LookupID: Target] = [:]
    /// The DNS lookup behind each `NameResolver` lookup.
    private var nameLookups: [NameLookupID: LookupID] = [:]
    /// `NameResolver` lookups of IP literals, answered from the delivery timer.
    private var literals: [NameLookupID: (handler: any NameResolutionHandler, address: IPAddress)] = [:]
    private var nextNameLookup: UInt64 = 1
    private var sockets: [StubResolver.QueryID: UDPSocketID] = [:]
    private var socketQueries: [UDPSocketID: StubResolver.QueryID] = [:]
    private var connections: [StubResolver.QueryID: Connection] = [:]
    private var connectionQueries: [ConnectionID: StubResolver.QueryID] = [:]
    /// Completions found during an application call, delivered from a
    /// timer so handlers are never called re-entrantly.
    private var deferred: [(LookupID, Result<LookupResult, DNSError>)] = []
    private var deliveryTimer: TimerID?
    private var timer: TimerID?
    private var timerDeadline: Instant?

    /// A resolver on `stack` asking `servers`; `timers` and `clock` drive
    /// its timeouts, `entropy` draws its transaction IDs.
    public init(stack: S, timers: any TimerScheduler, clock: any MonotonicClock, entropy: any EntropySource,
                servers: [Endpoint] = [], configuration: StubResolver.Configuration = StubResolver.Configuration()) {
        self.stack = stack
        self.timers = timers
        self.clock = clock
        core = StubResolver(servers: servers, entropy: entropy, configuration: configuration)
    }

    /// The name servers asked, in order.
    public var servers: [Endpoint] { core.servers }
    /// The core's counters.
    public var statistics: StubResolver.Statistics { core.statistics }
    /// The cache's counters.
    public var cacheStatistics: ResolverCache.Statistics { core.cache.statistics }
    /// The settings.
    public var configuration: StubResolver.Configuration { core.configuration }
    /// Sockets and connections open for queries now.
    public var openQueries: Int { sockets.count + connections.count }

    /// Replaces the servers (a different list empties the cache).
    public func setServers(_ servers: [Endpoint]) {
        core.setServers(servers)
    }

    /// Replaces the servers with these addresses on port 53, as a DHCP
    /// lease lists them (RFC 2132 §3.8).
    public func setServers(addresses: [IPv4Address]) {
        core.setServers(addresses.map { Endpoint(.v4($0), StubResolver.defaultPort) })
    }

    /// Looks up the records of `type` and `class` at `name`; `handler` gets
    /// the result (also a cached one) from the run loop, never inside this
    /// call. Throws `noServers` or `tooManyQueries`.
    @discardableResult
    public func resolve(_ name: DomainName, type: RecordType, class: RecordClass = .in,
                        handler: any ResolverHandler) throws(DNSError) -> LookupID {
        try start(Question(name: name, type: type, class: `class`), target: .handler(handler))
    }

    /// Looks up the IPv4 addresses (A records) of `host`, a host name taken
    /// as absolute (`www.example.com`); the result's `ipv4Addresses` has
    /// them. Throws `syntax` for a malformed name, or as `resolve`.
    @discardableResult
    public func lookupIPv4(host: String, handler: any ResolverHandler) throws(DNSError) -> LookupID {
        try resolve(try Self.hostName(host), type: .a, handler: handler)
    }

    /// Abandons a lookup: its handler hears nothing more about it.
    public func cancel(_ lookup: LookupID) {
        guard targets.removeValue(forKey: lookup) != nil else { return }
        perform(core.cancel(lookup), inEvent: false)
        rearm()
    }

    /// Empties the cache.
    public func flushCache() {
        core.flushCache()
    }

    /// A host name as a domain name: letters, digits, `-` and `_` in
    /// labels separated by dots (RFC 1123 §2.1, with `_` for service
    /// names), an optional final dot; absolute either way.
    public static func hostName(_ host: String) throws(DNSError) -> DomainName {
        var text = Array(host.utf8)
        if text.last == UInt8(ascii: ".") { text.removeLast() }
        guard !text.isEmpty, text.count < DomainName.maximumLength else { throw .syntax(reason: "host name of \(text.count) bytes") }
        var previous = UInt8(ascii: ".")
        for c in text {
            let letterOrDigit = (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39)
            guard letterOrDigit || c == UInt8(ascii: "-") || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") else {
                throw .syntax(reason: "host name with the byte \(c)")
            }
            if c == UInt8(ascii: ".") && previous == UInt8(ascii: ".") { throw .syntax(reason: "empty label in a host name") }
            previous = c
        }
        text.append(UInt8(ascii: "."))
        return try DomainName(presentation: text, origin: nil)
    }

    private func start(_ question: Question, target: Target) throws(DNSError) -> LookupID {
        let (id, actions) = try core.resolve(question, now: clock.now())
        targets[id] = target
        perform(actions, inEvent: false)
        rearm()
        return id
    }

    // MARK: NameResolver

    /// Looks up `host`'s A records (then AAAA when it has none); an IP
    /// literal is its own answer.
    public func resolveHost(_ host: String, handler: any NameResolutionHandler) throws(NameResolutionError) -> NameLookupID {
        let nameID = NameLookupID(rawValue: nextNameLookup)
        if let address = IPAddress(host) {
            nextNameLookup += 1
            literals[nameID] = (handler, address)
            scheduleDelivery()
            return nameID
        }
        let name: DomainName
        do { name = try Self.hostName(host) } catch { throw .invalidName }
        let started: (id: LookupID, actions: [StubResolver.Action])
        do { started = try core.resolve(Question(name: name, type: .a), now: clock.now()) } catch { throw Self.nameError(error) }
        nextNameLookup += 1
        targets[started.id] = .name(handler, nameID, afterA: false)
        nameLookups[nameID] = started.id
        perform(started.actions, inEvent: false)
        rearm()
        return nameID
    }

    /// Abandons a name lookup.
    public func cancel(_ lookup: NameLookupID) {
        literals[lookup] = nil
        guard let id = nameLookups.removeValue(forKey: lookup) else { return }
        cancel(id)
    }

    private static func nameError(_ error: DNSError) -> NameResolutionError {
        switch error {
        case .timedOut: .timedOut
        case .tooManyQueries: .tooManyLookups
        case .syntax: .invalidName
        default: .serverFailure(error.description)
        }
    }

    // MARK: Actions

    /// Carries out the core's actions (and those its answers to failures
    /// bring). Completions are delivered now inside a stack or timer
    /// event, else from a timer.
    private func perform(_ actions: [StubResolver.Action], inEvent: Bool) {
        var queue = actions
        var index = 0
        // Each failure moves a lookup to its next attempt; attempts are
        // bounded, so this ends.
        while index < queue.count {
            let action = queue[index]
            index += 1
            switch action {
            case .sendUDP(let bytes, let server, let query):
                do throws(DeviceError) {
                    // Port 0: the stack picks a random ephemeral port
                    // (RFC 5452 §4.5, RFC 6056), a new one per query.
                    let socket = try stack.bindUDP(port: 0, address: nil, handler: self)
                    sockets[query] = socket
                    socketQueries[socket] = query
                    try stack.send(bytes.span, to: server, from: socket)
                } catch {
                    // A full device loses the datagram as a link would: the
                    // timeout retries. Anything else will not get better.
                    if error != .wouldBlock { queue += core.queryFailed(query, error: .device(error), now: clock.now()) }
                }
            case .sendTCP(let bytes, let server, let query):
                do throws(DeviceError) {
                    let c = try stack.connect(to: server, timeout: core.configuration.tcpTimeout, handler: self)
                    connections[query] = Connection(id: c, output: bytes)
                    connectionQueries[c] = query
                } catch {
                    queue += core.queryFailed(query, error: .device(error), now: clock.now())
                }
            case .release(let query):
                if let socket = sockets.removeValue(forKey: query) {
                    socketQueries[socket] = nil
                    stack.closeUDP(socket)
                }
                if let connection = connections.removeValue(forKey: query) {
                    connectionQueries[connection.id] = nil
                    stack.close(connection.id)
                }
            case .complete(let id, let result):
                if inEvent {
                    deliver(id, result)
                } else {
                    deferred.append((id, result))
                    scheduleDelivery()
                }
            }
        }
    }

    /// Hands a result to its lookup's handler (a `NameResolver` lookup
    /// finding no A records tries AAAA first).
    private func deliver(_ id: LookupID, _ result: Result<LookupResult, DNSError>) {
        guard let target = targets.removeValue(forKey: id) else { return }
        switch target {
        case .handler(let handler):
            handler.resolved(id, result: result)
        case .name(let handler, let nameID, let afterA):
            nameLookups[nameID] = nil
            switch result {
            case .success(.answer(let answer)):
                let addresses = LookupResult.answer(answer).addresses
                if addresses.isEmpty {
                    handler.nameResolutionFailed(nameID, error: .noAddresses)
                } else {
                    handler.nameResolved(nameID, addresses: addresses)
                }
            case .success(.noData(let negative)):
                if !afterA, let next = try? core.resolve(Question(name: negative.name, type: .aaaa), now: clock.now()) {
                    targets[next.id] = .name(handler, nameID, afterA: true)
                    nameLookups[nameID] = next.id
                    perform(next.actions, inEvent: true)
                } else {
                    handler.nameResolutionFailed(nameID, error: .noAddresses)
                }
            case .success(.nameError):
                handler.nameResolutionFailed(nameID, error: .nameNotFound)
            case .failure(let error):
                handler.nameResolutionFailed(nameID, error: Self.nameError(error))
            }
        }
    }

    private func scheduleDelivery() {
        if deliveryTimer == nil { deliveryTimer = timers.schedule(at: clock.now(), self) }
    }

    /// Keeps one timer at the core's next deadline.
    private func rearm() {
        let deadline = core.nextDeadline
        guard deadline != timerDeadline else { return }
        if let t = timer { timers.cancel(t) }
        timer = deadline.map { timers.schedule(at: $0, self) }
        timerDeadline = deadline
    }

    // MARK: TimerHandler

    public func timerFired(_ id: TimerID, now: Instant) {
        if id == deliveryTimer {
            deliveryTimer = nil
            let batch = deferred
            deferred = []
            let literalIDs = literals.keys.sorted { $0.rawValue < $1.rawValue }
            for (lookup, result) in batch { deliver(lookup, result) }
            // Each still wanted (a handler may cancel one meanwhile).
            for id in literalIDs {
                guard let literal = literals.removeValue(forKey: id) else { continue }
                literal.handler.nameResolved(id, addresses: [literal.address])
            }
            rearm()
            return
        }
        guard id == timer else { return }
        timer = nil
        timerDeadline = nil
        perform(core.timerFired(now: now), inEvent: true)
        rearm()
    }

    // MARK: UDPHandler

    public func datagramReceived(_ payload: Span<UInt8>, from source: Endpoint, to destination: Endpoint, on socket: UDPSocketID) {
        guard let query = socketQueries[socket] else { return }
        perform(core.datagramReceived(payload, from: source, query: query, now: clock.now()), inEvent: true)
        rearm()
    }

    public func errorReceived(_ report: ICMPReport, about destination: Endpoint, on socket: UDPSocketID) {
        // Port or host unreachable: the server is not there; move on (an
        // unauthenticated ICMP message can only make us skip a server).
        guard let query = socketQueries[socket], case .destinationUnreachable = report else { return }
        perform(core.queryFailed(query, now: clock.now()), inEvent: true)
        rearm()
    }

    // MARK: TCPHandler

    public func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {}

    public func connectionEstablished(_ connection: ConnectionID) {
        guard let query = connectionQueries[connection], let c = connections[query] else { return }
        c.established = true
        flush(c, query: query)
    }

    public func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {
        guard let query = connectionQueries[connection] else { return }
        perform(core.streamReceived(bytes, query: query, now: clock.now()), inEvent: true)
        rearm()
    }

    public func endOfStream(on connection: ConnectionID) {
        guard let query = connectionQueries[connection] else { return }
        perform(core.streamClosed(query: query, now: clock.now()), inEvent: true)
        rearm()
    }

    public func writable(_ connection: ConnectionID) {
        guard let query = connectionQueries[connection], let c = connections[query] else { return }
        flush(c, query: query)
    }

    public func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {
        guard let query = connectionQueries.removeValue(forKey: connection) else { return }
        connections[query] = nil
        perform(core.streamClosed(query: query, now: clock.now()), inEvent: true)
        rearm()
    }

    /// Writes what the stack takes of the framed query.
    private func flush(_ c: Connection, query: StubResolver.QueryID) {
        guard c.established, !c.output.isEmpty else { return }
        do throws(DeviceError) {
            let output = c.output
            let n = try stack.write(output.span, on: c.id)
            c.output.removeFirst(min(n, c.output.count))
        } catch {
            perform(core.queryFailed(query, error: .device(error), now: clock.now()), inEvent: true)
            rearm()
        }
    }
}
