import MirageDevices
import Testing

import MirageHTTP

/// A `NameResolver` answering from a table, one run-loop turn later (a
/// timer at now), as the contract requires: never inside `resolveHost`.
final class FakeNameResolver: NameResolver, TimerHandler {
    var table: [String: Result<[IPAddress], NameResolutionError>] = [:]
    /// Thrown by `resolveHost` when set.
    var refuseWith: NameResolutionError?
    private(set) var asked: [String] = []
    private(set) var cancelled: [NameLookupID] = []
    private var pending: [TimerID: (NameLookupID, String, any NameResolutionHandler)] = [:]
    private var next: UInt64 = 1
    let timers: ManualTimerScheduler

    init(timers: ManualTimerScheduler) { self.timers = timers }

    func resolveHost(_ host: String, handler: any NameResolutionHandler) throws(NameResolutionError) -> NameLookupID {
        if let refuseWith { throw refuseWith }
        asked.append(host)
        let id = NameLookupID(rawValue: next)
        next += 1
        pending[timers.schedule(at: timers.clock.now(), self)] = (id, host, handler)
        return id
    }

    func cancel(_ lookup: NameLookupID) {
        cancelled.append(lookup)
        for (timer, entry) in pending where entry.0 == lookup {
            timers.cancel(timer)
            pending[timer] = nil
        }
    }

    func timerFired(_ id: TimerID, now: Instant) {
        guard let (lookup, host, handler) = pending.removeValue(forKey: id) else { return }
        switch table[host] ?? .failure(.nameNotFound) {
        case .success(let addresses): handler.nameResolved(lookup, addresses: addresses)
        case .failure(let error): handler.nameResolutionFailed(lookup, error: error)
        }
    }
}

/// Answers every request with 204 and records its Host field.
final class HostRecorder: HTTPServerHandler {
    var hosts: [String] = []
    var server: HTTPServer<PipeStack>?
    func requestReceived(_ head: HTTPRequestHead, exchange: HTTPExchange) {
        hosts.append(head.fields["Host"] ?? "-")
        try? server?.respond(exchange, status: .noContent)
    }
    func connectionUpgraded(_ connection: ConnectionID, exchange: HTTPExchange, leftover: [UInt8]) {}
}

@Suite struct HTTPClientHostNameTests {
    /// A client with a fake resolver, and a server listening on `port` of
    /// the pipe stack's address (10.0.0.1).
    private func setUp(port: UInt16 = 80) throws
        -> (world: PipeWorld, client: HTTPClient<PipeStack>, app: TestClientApp, resolver: FakeNameResolver, server: HostRecorder) {
        let world = PipeWorld()
        let recorder = HostRecorder()
        let server = HTTPServer(stack: world.stack, handler: recorder, timers: world.timers, clock: world.clock, wallClock: nil)
        recorder.server = server
        _ = try server.listen(port: port)
        let client = HTTPClient(stack: world.stack, timers: world.timers, clock: world.clock)
        let resolver = FakeNameResolver(timers: world.timers)
        client.resolver = resolver
        return (world, client, TestClientApp(), resolver, recorder)
    }

    @Test("a host name is resolved, then connected to; Host carries the name (and the port unless 80)",
          arguments: [(UInt16(80), "www.example.test"), (8080, "www.example.test:8080")])
    func hostNameIsResolvedThenConnected(port: UInt16, host: String) throws {
        let s = try setUp(port: port)
        s.resolver.table["www.example.test"] = .success([.v4(IPv4Address(10, 0, 0, 1)), .v4(IPv4Address(10, 0, 0, 9))])
        let id = try s.client.request(HTTPRequestHead(method: .get, target: "/"), host: "www.example.test", port: port, handler: s.app)
        #expect(s.world.stack.connectCalls == 0, "no connection before the name is resolved")
        s.world.settle()
        #expect(s.resolver.asked == ["www.example.test"])
        #expect(s.app.heads[id]?.status == .noContent)
        #expect(s.server.hosts == [host])
        #expect(s.world.stack.connectCalls == 1)
        #expect(s.client.statistics.lookups == 1)
        #expect(s.app.failures.isEmpty)
    }

    @Test("a failed lookup fails the request with .nameResolution and opens no connection")
    func failedLookupIsReported() throws {
        let s = try setUp()
        s.resolver.table["gone.example.test"] = .failure(.nameNotFound)
        s.resolver.table["slow.example.test"] = .failure(.timedOut)
        let gone = try s.client.request(HTTPRequestHead(method: .get, target: "/"), host: "gone.example.test", handler: s.app)
        let slow = try s.client.request(HTTPRequestHead(method: .get, target: "/"), host: "slow.example.test", handler: s.app)
        s.world.settle()
        #expect(s.app.failures[gone] == .nameResolution(host: "gone.example.test", .nameNotFound))
        #expect(s.app.failures[slow] == .nameResolution(host: "slow.example.test", .timedOut))
        #expect(s.world.stack.connectCalls == 0)
        #expect(s.client.statistics.failures == 2)
        #expect(s.server.hosts.isEmpty)
    }

    @Test("a resolver that cannot start the lookup makes request throw, and nothing is registered")
    func refusedLookupThrows() throws {
        let s = try setUp()
        s.resolver.refuseWith = .tooManyLookups
        #expect(throws: HTTPError.nameResolution(host: "www.example.test", .tooManyLookups)) {
            try s.client.request(HTTPRequestHead(method: .get, target: "/"), host: "www.example.test", handler: s.app)
        }
        #expect(s.client.statistics.requests == 0)
        #expect(s.client.statistics.lookups == 0)
    }

    @Test("IP literals need no resolver; a name without one is a misuse")
    func literalsAndMissingResolver() throws {
        let s = try setUp()
        s.client.resolver = nil
        let v4 = try s.client.request(HTTPRequestHead(method: .get, target: "/"), host: "10.0.0.1", handler: s.app)
        s.world.settle()
        #expect(s.app.heads[v4]?.status == .noContent)
        #expect(s.server.hosts == ["10.0.0.1"])
        #expect(throws: HTTPError.misuse("the host name www.example.test needs a resolver")) {
            try s.client.request(HTTPRequestHead(method: .get, target: "/"), host: "www.example.test", handler: s.app)
        }
        #expect(s.client.statistics.lookups == 0)
    }

    @Test("cancelling while the name is looked up cancels the lookup; no event follows")
    func cancelDuringLookup() throws {
        let s = try setUp()
        s.resolver.table["www.example.test"] = .success([.v4(IPv4Address(10, 0, 0, 1))])
        let id = try s.client.request(HTTPRequestHead(method: .get, target: "/"), host: "www.example.test", handler: s.app)
        s.client.cancel(id)
        s.world.settle()
        #expect(s.resolver.cancelled.count == 1)
        #expect(s.app.heads.isEmpty && s.app.failures.isEmpty)
        #expect(s.world.stack.connectCalls == 0)
        #expect(s.client.statistics.cancelled == 1)
    }

    @Test("a late result for a lookup the client no longer waits for is ignored")
    func staleResultIgnored() throws {
        let s = try setUp()
        s.client.nameResolved(NameLookupID(rawValue: 77), addresses: [.v4(IPv4Address(10, 0, 0, 1))])
        s.client.nameResolutionFailed(NameLookupID(rawValue: 78), error: .timedOut)
        s.world.settle()
        #expect(s.world.stack.connectCalls == 0)
        #expect(s.client.statistics.failures == 0)
    }

    @Test("requests for one name share the connection pool once resolved")
    func resolvedRequestsReuseConnections() throws {
        let s = try setUp()
        s.resolver.table["www.example.test"] = .success([.v4(IPv4Address(10, 0, 0, 1))])
        let first = try s.client.request(HTTPRequestHead(method: .get, target: "/"), host: "www.example.test", handler: s.app)
        s.world.settle()
        let second = try s.client.request(HTTPRequestHead(method: .get, target: "/"), host: "www.example.test", handler: s.app)
        s.world.settle()
        #expect(s.app.heads[first]?.status == .noContent)
        #expect(s.app.heads[second]?.status == .noContent)
        #expect(s.client.statistics.connectionsOpened == 1)
        #expect(s.client.statistics.connectionsReused == 1)
        #expect(s.client.statistics.lookups == 2)
    }
}
