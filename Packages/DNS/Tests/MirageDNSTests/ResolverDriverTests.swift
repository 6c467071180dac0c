import MirageDNS
import MirageDevices
import Testing

// The `Resolver` driver over an in-memory stack and a tiny responder:
// sockets, timers, handlers, NameResolver, and a lossy link.

private let ns1 = Endpoint(.v4(IPv4Address(10, 0, 0, 53)), 53)
private let ns2 = Endpoint(.v4(IPv4Address(10, 0, 0, 54)), 53)

private func zone() -> TinyResponder {
    let r = TinyResponder(apex: "example.test.", negativeTTL: 30)
    r.records = [
        aRecord("www.example.test.", 300, IPv4Address(10, 1, 0, 1)),
        aRecord("www.example.test.", 300, IPv4Address(10, 1, 0, 2)),
        cnameRecord("alias.example.test.", 600, "www.example.test."),
        cnameRecord("away.example.test.", 600, "host.other.test."),
        ResourceRecord(name: dn("v6only.example.test."), ttl: 300, data: .aaaa(IPv6Address(high: 0x2001_0db8_0000_0000, low: 1))),
        ResourceRecord(name: dn("txt.example.test."), ttl: 300, data: .txt([Array("hello".utf8)])),
    ]
    // An RRset too large for 1232 bytes: truncated over UDP.
    for i in 1...100 { r.records.append(aRecord("big.example.test.", 300, IPv4Address(10, 2, 0, UInt8(i)))) }
    // Out of zone, but served too: the target of away.example.test.
    r.records.append(aRecord("host.other.test.", 120, IPv4Address(10, 3, 0, 1)))
    return r
}

private func setUp(seed: UInt64 = 7, servers: [Endpoint] = [ns1, ns2],
                   _ configure: (inout StubResolver.Configuration) -> Void = { _ in })
    -> (net: FakeDNSNetwork, resolver: Resolver<FakeDNSNetwork>, results: ResultCollector) {
    let net = FakeDNSNetwork(responder: zone(), seed: seed)
    var configuration = StubResolver.Configuration()
    configure(&configuration)
    let resolver = Resolver(stack: net, timers: net.timers, clock: net.clock, entropy: SeededEntropy(seed: seed &+ 1),
                            servers: servers, configuration: configuration)
    return (net, resolver, ResultCollector())
}

@Suite struct ResolverDriverTests {
    @Test("lookupIPv4 resolves over UDP from a fresh port-0 socket, closed afterwards; the handler is called once")
    func lookupIPv4() throws {
        let s = setUp()
        let id = try s.resolver.lookupIPv4(host: "www.example.test", handler: s.results)
        s.net.settle()
        #expect(try s.results.results[id]?.get().ipv4Addresses == [IPv4Address(10, 1, 0, 1), IPv4Address(10, 1, 0, 2)])
        #expect(s.net.requestedPorts == [0])
        #expect(s.net.openUDPSockets == 0)
        #expect(s.resolver.openQueries == 0)
        #expect(s.net.clock.now() == .milliseconds(20), "one round trip")
    }

    @Test("a cached answer comes from the run loop, not from inside resolve; no traffic")
    func cacheHitIsDeferred() throws {
        let s = setUp()
        try s.resolver.lookupIPv4(host: "www.example.test", handler: s.results)
        s.net.settle()
        let sent = s.net.datagramsSent
        let id = try s.resolver.lookupIPv4(host: "WWW.Example.Test.", handler: s.results)
        #expect(s.results.results[id] == nil, "not delivered inside the call")
        s.net.timers.runDue()
        #expect(try s.results.results[id]?.get().ipv4Addresses.count == 2)
        #expect(s.net.datagramsSent == sent)
        #expect(s.resolver.statistics.cacheHits == 1)
    }

    @Test("CNAME inside the answer and a CNAME restart across zones, NXDOMAIN, NODATA, and any type")
    func kindsOfAnswers() throws {
        let s = setUp()
        let alias = try s.resolver.lookupIPv4(host: "alias.example.test", handler: s.results)
        let away = try s.resolver.lookupIPv4(host: "away.example.test", handler: s.results)
        let missing = try s.resolver.lookupIPv4(host: "missing.example.test", handler: s.results)
        let nodata = try s.resolver.lookupIPv4(host: "txt.example.test", handler: s.results)
        let txt = try s.resolver.resolve(dn("txt.example.test."), type: .txt, handler: s.results)
        s.net.settle()
        guard case .success(.answer(let a)) = s.results.results[alias] else { Issue.record("alias"); return }
        #expect(a.name == dn("www.example.test.") && a.aliases.count == 1)
        guard case .success(.answer(let b)) = s.results.results[away] else { Issue.record("away"); return }
        #expect(b.name == dn("host.other.test.") && b.records.first?.data == .a(IPv4Address(10, 3, 0, 1)))
        #expect(s.resolver.statistics.restarts == 1)
        guard case .success(.nameError(let n)) = s.results.results[missing] else { Issue.record("missing"); return }
        #expect(n.ttl == 30)
        guard case .success(.noData(let d)) = s.results.results[nodata] else { Issue.record("nodata"); return }
        #expect(d.ttl == 30)
        #expect(try s.results.results[txt]?.get().records.first?.data == .txt([Array("hello".utf8)]))
    }

    @Test("a truncated answer is fetched over TCP (reassembled from 7-byte pieces); the connection is closed")
    func tcpFallback() throws {
        let s = setUp()
        let id = try s.resolver.lookupIPv4(host: "big.example.test", handler: s.results)
        s.net.settle()
        #expect(try s.results.results[id]?.get().ipv4Addresses.count == 100)
        #expect(s.net.connectionsOpened == 1)
        #expect(s.net.openConnections == 0)
        #expect(s.net.responder.tcpQueries == 1)
        #expect(s.resolver.statistics.truncated == 1)
    }

    @Test("a silent server is skipped after 2 s; a closed one (port unreachable) at once")
    func deadServers() throws {
        let silent = setUp()
        silent.net.responder.silent = [ns1]
        let a = try silent.resolver.lookupIPv4(host: "www.example.test", handler: silent.results)
        silent.net.settle()
        #expect(try silent.results.results[a]?.get().ipv4Addresses.count == 2)
        #expect(silent.net.clock.now() == .seconds(2) + .milliseconds(20))

        let closed = setUp()
        closed.net.responder.closed = [ns1]
        let b = try closed.resolver.lookupIPv4(host: "www.example.test", handler: closed.results)
        closed.net.settle()
        #expect(try closed.results.results[b]?.get().ipv4Addresses.count == 2)
        #expect(closed.net.clock.now() == .milliseconds(40), "ICMP round trip, then the second server's")
        #expect(closed.net.openUDPSockets == 0)
    }

    @Test("every server silent: timedOut after 2+2+4+4 s, every socket closed")
    func allSilent() throws {
        let s = setUp()
        s.net.responder.silent = [ns1, ns2]
        let id = try s.resolver.lookupIPv4(host: "www.example.test", handler: s.results)
        s.net.settle()
        #expect(s.results.results[id] == .failure(.timedOut))
        #expect(s.net.clock.now() == .seconds(12))
        #expect(s.net.requestedPorts == [0, 0, 0, 0])
        #expect(Set(s.net.boundPorts).count == 4, "four queries, four source ports")
        #expect(s.net.openUDPSockets == 0)
    }

    @Test("cancel closes the lookup's socket and silences its handler")
    func cancel() throws {
        let s = setUp()
        let id = try s.resolver.lookupIPv4(host: "www.example.test", handler: s.results)
        s.resolver.cancel(id)
        #expect(s.net.openUDPSockets == 0)
        s.net.settle()
        #expect(s.results.results.isEmpty)
        #expect(s.resolver.statistics.cancelled == 1)
    }

    @Test("a stack that cannot bind fails the lookup at once with its error; a full device is a lost datagram, retried")
    func stackErrors() throws {
        let s = setUp()
        s.net.bindError = .resourceExhausted("UDP sockets")
        let id = try s.resolver.lookupIPv4(host: "www.example.test", handler: s.results)
        s.net.settle()
        #expect(s.results.results[id] == .failure(.device(.resourceExhausted("UDP sockets"))))
        #expect(s.net.clock.now() == .zero)
        #expect(s.net.requestedPorts.count == 4, "every attempt tried, none waited for")

        let full = setUp()
        full.net.sendErrors = [.wouldBlock]
        let again = try full.resolver.lookupIPv4(host: "www.example.test", handler: full.results)
        full.net.settle()
        #expect(try full.results.results[again]?.get().ipv4Addresses.count == 2)
        #expect(full.net.clock.now() == .seconds(2) + .milliseconds(20), "the second server, after the timeout")
        #expect(full.net.openUDPSockets == 0)
    }

    @Test("a lookup started from inside a result handler runs (no re-entrant delivery)")
    func resolveFromHandler() throws {
        let s = setUp()
        var second: LookupID?
        s.results.onResult = { _ in
            if second == nil { second = try? s.resolver.lookupIPv4(host: "alias.example.test", handler: s.results) }
        }
        try s.resolver.lookupIPv4(host: "www.example.test", handler: s.results)
        s.net.settle()
        let id = try #require(second)
        #expect(try s.results.results[id]?.get().ipv4Addresses.count == 2)
        #expect(s.results.order.count == 2)
    }

    @Test("setServers(addresses:) uses port 53; no servers makes resolve throw")
    func servers() throws {
        let s = setUp(servers: [])
        #expect(throws: DNSError.noServers) { try s.resolver.lookupIPv4(host: "www.example.test", handler: s.results) }
        s.resolver.setServers(addresses: [IPv4Address(10, 0, 0, 54)])
        #expect(s.resolver.servers == [ns2])
        let id = try s.resolver.lookupIPv4(host: "www.example.test", handler: s.results)
        s.net.settle()
        #expect(try s.results.results[id]?.get().ipv4Addresses.count == 2)
        #expect(throws: DNSError.self) { try s.resolver.lookupIPv4(host: "bad host", handler: s.results) }
    }

    @Test("forged answers with wrong IDs, sent ahead of each real one to the right port, are counted and never taken")
    func forgeriesDropped() throws {
        let s = setUp()
        s.net.forgeriesPerAnswer = 10
        var ids: [LookupID] = []
        for name in ["www", "alias", "missing"] {
            ids.append(try s.resolver.lookupIPv4(host: "\(name).example.test", handler: s.results))
        }
        s.net.settle()
        #expect(try s.results.results[ids[0]]?.get().ipv4Addresses == [IPv4Address(10, 1, 0, 1), IPv4Address(10, 1, 0, 2)])
        #expect(try s.results.results[ids[1]]?.get().ipv4Addresses.count == 2)
        guard case .success(.nameError) = s.results.results[ids[2]] else { Issue.record("NXDOMAIN expected"); return }
        #expect(s.resolver.statistics.mismatchedID == 30)
        #expect(s.net.forged == 30)
    }
}

@Suite struct ResolverNameResolverTests {
    @Test("resolveHost: addresses; NXDOMAIN → nameNotFound; no A but AAAA → the IPv6 address; bad text → invalidName")
    func nameResolver() throws {
        let s = setUp()
        let names = NameCollector()
        let resolver: any NameResolver = s.resolver
        let www = try resolver.resolveHost("www.example.test", handler: names)
        let missing = try resolver.resolveHost("missing.example.test", handler: names)
        let v6 = try resolver.resolveHost("v6only.example.test", handler: names)
        let txt = try resolver.resolveHost("txt.example.test.", handler: names)
        #expect(throws: NameResolutionError.invalidName) { try resolver.resolveHost("no spaces.example.test", handler: names) }
        #expect(throws: NameResolutionError.invalidName) { try resolver.resolveHost("a..b", handler: names) }
        #expect(throws: NameResolutionError.invalidName) { try resolver.resolveHost("", handler: names) }
        s.net.settle()
        #expect(names.addresses[www] == [.v4(IPv4Address(10, 1, 0, 1)), .v4(IPv4Address(10, 1, 0, 2))])
        #expect(names.errors[missing] == .nameNotFound)
        #expect(names.addresses[v6] == [.v6(IPv6Address(high: 0x2001_0db8_0000_0000, low: 1))])
        #expect(names.errors[txt] == .noAddresses)
    }

    @Test("an IP literal is its own answer, from the run loop; cancelled before then, nothing")
    func literals() throws {
        let s = setUp()
        let names = NameCollector()
        let v4 = try s.resolver.resolveHost("10.7.7.7", handler: names)
        let v6 = try s.resolver.resolveHost("2001:db8::1", handler: names)
        let gone = try s.resolver.resolveHost("10.8.8.8", handler: names)
        #expect(names.addresses.isEmpty, "not inside the call")
        s.resolver.cancel(gone)
        s.net.settle()
        #expect(names.addresses[v4] == [.v4(IPv4Address(10, 7, 7, 7))])
        #expect(names.addresses[v6] == [.v6(IPv6Address(high: 0x2001_0db8_0000_0000, low: 1))])
        #expect(names.addresses[gone] == nil)
        #expect(Set([v4, v6, gone]).count == 3)
        #expect(s.net.datagramsSent == 0)
    }

    @Test("cancelling a name lookup (also during its AAAA step) silences it and closes its sockets")
    func cancelNameLookup() throws {
        let s = setUp()
        let names = NameCollector()
        let a = try s.resolver.resolveHost("www.example.test", handler: names)
        s.resolver.cancel(a)
        let b = try s.resolver.resolveHost("v6only.example.test", handler: names)
        // Past the A answer (NODATA), while AAAA is asked.
        s.net.run(until: .milliseconds(25))
        #expect(s.resolver.openQueries == 1)
        s.resolver.cancel(b)
        s.net.settle()
        #expect(names.addresses.isEmpty && names.errors.isEmpty)
        #expect(s.net.openUDPSockets == 0)
    }

    @Test("servers failing and silent map to serverFailure and timedOut")
    func failuresMapped() throws {
        let failing = setUp { $0.attempts = 1 }
        failing.net.responder.failing = [ns1, ns2]
        let names = NameCollector()
        let a = try failing.resolver.resolveHost("www.example.test", handler: names)
        failing.net.settle()
        #expect(names.errors[a] == .serverFailure(DNSError.serverFailure(rcode: 2).description))
        let silent = setUp { $0.attempts = 1 }
        silent.net.responder.silent = [ns1, ns2]
        let b = try silent.resolver.resolveHost("www.example.test", handler: names)
        silent.net.settle()
        #expect(names.errors[b] == .timedOut)
    }
}

@Suite struct ResolverLossyLinkTests {
    @Test("200 lookups through 15% loss, 10% duplication and 0–300 ms jitter each way: every one gets the right answer or times out after all attempts",
          arguments: [UInt64(1), 2, 3])
    func lossyLink(seed: UInt64) throws {
        let s = setUp(seed: seed) { $0.maximumLookups = 256 }
        s.net.faults = DatagramFaults(dropPercent: 15, duplicatePercent: 10, jitter: .milliseconds(300))
        // What the responder's data says: a record count, "nxdomain" or "nodata".
        var expected: [LookupID: String] = [:]
        let kinds = ["www", "alias", "missing", "txt", "big", "away"]
        let types: [RecordType] = [.a, .aaaa, .mx, .txt, .srv, .caa, .ns, .ptr]
        for i in 0..<200 {
            let kind = kinds[i % kinds.count]
            // Distinct questions, so the cache does not answer them.
            let host = kind == "missing" ? "missing\(i).example.test" : "\(kind).example.test"
            let type = kind == "missing" ? RecordType.a : types[(i / kinds.count) % types.count]
            let id = try s.resolver.resolve(try Resolver<FakeDNSNetwork>.hostName(host), type: type, handler: s.results)
            switch (kind, type) {
            case ("missing", _): expected[id] = "nxdomain"
            case ("txt", .txt): expected[id] = "1"
            case ("big", .a): expected[id] = "100"
            case ("away", .a): expected[id] = "1"
            case ("www", .a), ("alias", .a): expected[id] = "2"
            default: expected[id] = "nodata"
            }
        }
        s.net.settle()
        #expect(s.results.results.count == 200)
        var right = 0
        var timedOut = 0
        for (id, want) in expected {
            switch s.results.results[id] {
            case .failure(.timedOut)?: timedOut += 1
            case .success(.answer(let a))? where String(a.records.count) == want: right += 1
            case .success(.nameError)? where want == "nxdomain": right += 1
            case .success(.noData)? where want == "nodata": right += 1
            case let other: Issue.record("\(id): wanted \(want), got \(String(describing: other))")
            }
        }
        #expect(right + timedOut == 200)
        #expect(timedOut <= 4, "with 4 attempts a lookup fails only if all are lost (about 0.5%)")
        #expect(s.net.dropped > 0 && s.net.duplicated > 0)
        #expect(s.resolver.statistics.timeouts > 0, "losses were recovered by retries")
        #expect(s.net.openUDPSockets == 0 && s.net.openConnections == 0)
        #expect(s.resolver.openQueries == 0)
        #expect(Set(s.net.requestedPorts) == [0])
    }
}
