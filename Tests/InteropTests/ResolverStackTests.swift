import Foundation
import MirageDNS
import MirageDevices
import MirageHTTP
import MiragePlatform
import MirageTCPIP
import MirageTestNetwork
import Testing

// MirageDNS's stub resolver over both stacks of the contract: each query
// leaves from a fresh socket bound to port 0, and both stacks pick that
// port at random (the kernel for SocketStack; RFC 6056 §3.3.1 with the
// stack's entropy for MirageTCPIP), which the responder sees. Then the
// resolver fed from a real DHCP lease (dnsmasq) on a tap device.

/// Answers `hN.mirage.test A` with 10.9.0.N, the names in `hosts` with
/// their address (NXDOMAIN for anything else) over any stack, and records
/// the source port of every query.
private final class PortRecordingResponder<S: Stack>: UDPHandler {
    let stack: S
    var hosts: [DomainName: IPv4Address] = [:]
    var sourcePorts: [UInt16] = []
    init(stack: S) { self.stack = stack }

    func datagramReceived(_ payload: Span<UInt8>, from source: Endpoint, to destination: Endpoint, on socket: UDPSocketID) {
        guard let query = try? Message(parsing: payload), let question = query.questions.first else { return }
        sourcePorts.append(source.port)
        var answer = Message(header: query.header)
        answer.header.isResponse = true
        answer.header.recursionAvailable = true
        answer.questions = query.questions
        if query.edns != nil { answer.edns = EDNS() }
        let labels = question.name.labels
        if let address = hosts[question.name], question.type == .a {
            answer.answers = [ResourceRecord(name: question.name, ttl: 60, data: .a(address))]
        } else if labels.count == 3, labels[0].first == UInt8(ascii: "h"),
           let n = UInt8(String(decoding: labels[0].dropFirst(), as: UTF8.self)), question.type == .a {
            answer.answers = [ResourceRecord(name: question.name, ttl: 60, data: .a(IPv4Address(10, 9, 0, n)))]
        } else {
            answer.responseCode = .nameError
        }
        guard let bytes = try? answer.encode(limit: 1232) else { return }
        try? stack.send(bytes.span, to: source, from: socket)
    }
}

/// Collects `Resolver` results; stops `loop` (if any) when `wanted` have
/// arrived. Shared with ResolverPeerTests.
final class LookupCollector: ResolverHandler {
    var results: [LookupID: Result<LookupResult, DNSError>] = [:]
    let wanted: Int
    let loop: EventLoop?
    init(wanted: Int, loop: EventLoop? = nil) {
        self.wanted = wanted
        self.loop = loop
    }
    func resolved(_ lookup: LookupID, result: Result<LookupResult, DNSError>) {
        results[lookup] = result
        if results.count == wanted { loop?.stop() }
    }
}

/// Source ports look random: all distinct, spread over the range, and
/// not handed out in sequence.
private func expectRandomPorts(_ ports: [UInt16], count: Int, range: ClosedRange<UInt16>,
                               sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(ports.count == count, sourceLocation: sourceLocation)
    #expect(Set(ports).count == ports.count, "a fresh port per query: \(ports)", sourceLocation: sourceLocation)
    #expect(ports.allSatisfy { range.contains($0) }, "\(ports)", sourceLocation: sourceLocation)
    guard let low = ports.min(), let high = ports.max() else { return }
    // 20 uniform draws from thousands of ports span far more than this.
    #expect(Int(high) - Int(low) > (Int(range.upperBound) - Int(range.lowerBound)) / 4, "\(ports)", sourceLocation: sourceLocation)
    var steps = 0
    for i in 1..<ports.count where Int(ports[i]) - Int(ports[i - 1]) == 1 { steps += 1 }
    #expect(steps < 3, "ports in sequence: \(ports)", sourceLocation: sourceLocation)
}

/// Answers every request with 204, recording its Host field.
private final class HostRecordingServer: HTTPServerHandler {
    var server: HTTPServer<SocketStack>?
    var hosts: [String] = []
    func requestReceived(_ head: HTTPRequestHead, exchange: HTTPExchange) {
        hosts.append(head.fields["Host"] ?? "-")
        try? server?.respond(exchange, status: .noContent)
    }
    func connectionUpgraded(_ connection: ConnectionID, exchange: HTTPExchange, leftover: [UInt8]) {}
}

/// Records responses and failures; stops the loop after `wanted` of them.
private final class HTTPOutcomes: HTTPClientHandler {
    let loop: EventLoop
    let wanted: Int
    var statuses: [HTTPClientRequestID: Int] = [:]
    var failures: [HTTPClientRequestID: HTTPError] = [:]
    init(loop: EventLoop, wanted: Int) {
        self.loop = loop
        self.wanted = wanted
    }
    private func done() { if statuses.count + failures.count == wanted { loop.stop() } }
    func responseReceived(_ head: HTTPResponseHead, request: HTTPClientRequestID) { statuses[request] = head.status.code }
    func bodyReceived(_ bytes: Span<UInt8>, request: HTTPClientRequestID) {}
    func responseEnded(_ request: HTTPClientRequestID, trailers: HTTPFields) { done() }
    func requestFailed(_ request: HTTPClientRequestID, error: HTTPError) {
        failures[request] = error
        done()
    }
}

@Suite("Stub resolver over both stacks", .serialized)
struct ResolverStackTests {
    @Test("HTTPClient takes a host name: the DNS Resolver (its NameResolver) finds it, Host carries it; NXDOMAIN fails the request")
    func httpClientWithHostNames() throws {
        let loop = try EventLoop()
        let stack = SocketStack(loop: loop)
        defer { stack.closeAll() }
        let dns = PortRecordingResponder(stack: stack)
        dns.hosts[try DomainName("www.mirage.test.")] = .loopback
        let dnsSocket = try stack.bindUDP(port: 0, address: .v4(.loopback), handler: dns)
        let app = HostRecordingServer()
        let server = HTTPServer(stack: stack, handler: app, timers: loop, clock: loop, wallClock: nil)
        app.server = server
        let listener = try server.listen(port: 0, address: .v4(.loopback))
        let port = try #require(server.localEndpoint(of: listener)?.port)
        let resolver = Resolver(stack: stack, timers: loop, clock: loop, entropy: SystemEntropy(),
                                servers: [try #require(stack.localEndpoint(of: dnsSocket))])
        let client = HTTPClient(stack: stack, timers: loop, clock: loop)
        client.resolver = resolver
        let outcomes = HTTPOutcomes(loop: loop, wanted: 2)
        let found = try client.request(HTTPRequestHead(method: .get, target: "/"), host: "www.mirage.test", port: port, handler: outcomes)
        let missing = try client.request(HTTPRequestHead(method: .get, target: "/"), host: "nope.mirage.test", port: port, handler: outcomes)
        try loop.run(until: loop.now() + .seconds(10))
        #expect(outcomes.statuses[found] == 204)
        #expect(app.hosts == ["www.mirage.test:\(port)"])
        #expect(outcomes.failures[missing] == .nameResolution(host: "nope.mirage.test", .nameNotFound))
        #expect(client.statistics.lookups == 2)
    }

    @Test("over SocketStack on loopback: 20 lookups answered, each from a kernel-chosen random port")
    func overSocketStack() throws {
        let loop = try EventLoop()
        let stack = SocketStack(loop: loop)
        defer { stack.closeAll() }
        let responder = PortRecordingResponder(stack: stack)
        let socket = try stack.bindUDP(port: 0, address: .v4(.loopback), handler: responder)
        let server = try #require(stack.localEndpoint(of: socket))
        let resolver = Resolver(stack: stack, timers: loop, clock: loop, entropy: SystemEntropy(), servers: [server])
        let collector = LookupCollector(wanted: 21, loop: loop)
        var ids: [UInt8: LookupID] = [:]
        for n in UInt8(1)...20 { ids[n] = try resolver.lookupIPv4(host: "h\(n).mirage.test", handler: collector) }
        let missing = try resolver.lookupIPv4(host: "nothing.mirage.test", handler: collector)
        try loop.run(until: loop.now() + .seconds(10))
        for (n, id) in ids {
            #expect(try collector.results[id]?.get().ipv4Addresses == [IPv4Address(10, 9, 0, n)])
        }
        guard case .success(.nameError)? = collector.results[missing] else {
            Issue.record("NXDOMAIN expected, got \(String(describing: collector.results[missing]))")
            return
        }
        // Linux draws from net.ipv4.ip_local_port_range (32768–60999 by default).
        expectRandomPorts(Array(responder.sourcePorts.prefix(20)), count: 20, range: 1024...65535)
        #expect(resolver.openQueries == 0)
    }

    @Test("over MirageTCPIP on an in-memory network: 20 lookups answered, each from a random port in 49152–65535")
    func overMirageTCPIP() throws {
        let clock = ManualClock()
        let timers = ManualTimerScheduler(clock: clock)
        let net = MemoryNetwork()
        func host(_ last: UInt8) -> IPStack<MemoryInterface> {
            IPStack(interface: net.attach(mac: MACAddress(0x02, 0, 0, 0, 0, last)),
                    configuration: .init(ipv4: IPv4Configuration(address: IPv4Address(10, 0, 0, last), prefixLength: 24)),
                    clock: clock, scheduler: timers, entropy: SeededEntropy(seed: UInt64(last)))
        }
        let client = host(2)
        let serverStack = host(53)
        let responder = PortRecordingResponder(stack: serverStack)
        _ = try serverStack.bindUDP(port: 53, address: nil, handler: responder)
        let resolver = Resolver(stack: client, timers: timers, clock: clock, entropy: SeededEntropy(seed: 99))
        resolver.setServers(addresses: [IPv4Address(10, 0, 0, 53)])
        let collector = LookupCollector(wanted: 20)
        var ids: [UInt8: LookupID] = [:]
        for n in UInt8(1)...20 { ids[n] = try resolver.lookupIPv4(host: "h\(n).mirage.test", handler: collector) }
        var steps = 0
        while collector.results.count < 20 && steps < 10_000 {
            if net.deliverPending() == 0, let next = timers.nextDeadline() {
                clock.advance(to: max(next, clock.now()))
                timers.runDue()
            }
            steps += 1
        }
        for (n, id) in ids {
            #expect(try collector.results[id]?.get().ipv4Addresses == [IPv4Address(10, 9, 0, n)])
        }
        expectRandomPorts(responder.sourcePorts, count: 20, range: 49152...65535)
        #expect(resolver.openQueries == 0)
    }
}

/// Points the resolver at the lease's DNS servers whenever the stack's
/// configuration changes, and looks `host` up once it has some.
private final class LeaseFeed: IPConfigurationHandler {
    let stack: IPStack<TapInterface>
    let resolver: Resolver<IPStack<TapInterface>>
    let collector: LookupCollector
    let hosts: [String]
    var servers: [IPv4Address] = []
    var ids: [String: LookupID] = [:]
    var error: DNSError?

    init(stack: IPStack<TapInterface>, resolver: Resolver<IPStack<TapInterface>>, collector: LookupCollector, hosts: [String]) {
        self.stack = stack
        self.resolver = resolver
        self.collector = collector
        self.hosts = hosts
    }

    func ipv4ConfigurationChanged(_ configuration: IPv4Configuration?) {
        feed()
    }

    func dhcpLeaseRenewed(_ lease: DHCPLease) {
        feed()
    }

    private func feed() {
        servers = stack.dhcpLease?.dnsServers ?? []
        resolver.setServers(addresses: servers)
        guard !servers.isEmpty, ids.isEmpty else { return }
        do throws(DNSError) {
            for host in hosts { ids[host] = try resolver.lookupIPv4(host: host, handler: collector) }
        } catch {
            self.error = error
        }
    }
}

@Suite("Stub resolver fed by a DHCP lease", .serialized, .interop(tools: ["ip", "dnsmasq", "tcpdump"]))
struct ResolverDHCPTests {
    @Test("dnsmasq leases an address and names itself DNS server; MirageTCPIP's resolver asks it, from random ports")
    func leaseFeedsResolver() throws {
        let loop = try EventLoop()
        let name = TestNames.linkBaseName() + "d"
        let tap = try TapInterface(name: name, loop: loop)
        defer { tap.close() }
        try withNamespace { ns in
            try ns.adoptLink(name: name, address: "10.199.57.1/24", up: true)
            let leases = FileManager.default.temporaryDirectory.appendingPathComponent("mswt-\(getpid())-\(name).leases").path
            defer { try? FileManager.default.removeItem(atPath: leases) }
            let dnsmasq = try ns.spawn([
                "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--interface=\(name)", "--bind-interfaces",
                "--no-resolv", "--no-hosts", "--local=/mirage.test/", "--host-record=printer.mirage.test,10.199.57.77",
                "--host-record=nas.mirage.test,10.199.57.78",
                "--dhcp-range=10.199.57.50,10.199.57.60,255.255.255.0,120", "--dhcp-option=option:dns-server,10.199.57.1",
                "--dhcp-leasefile=\(leases)", "--log-queries", "--log-facility=-", "--pid-file=",
            ])
            defer { _ = dnsmasq.terminate(grace: 2) }
            try dnsmasq.waitForOutput(containing: "DHCP, IP range", timeout: 10)
            let capture = try ns.spawn(["tcpdump", "-l", "-n", "-i", name, "udp dst port 53"])
            defer { _ = capture.terminate(grace: 2) }
            try capture.waitForOutput(containing: "listening on", timeout: 10)

            let stack = IPStack(interface: tap, configuration: .init(dhcp: true), clock: loop, scheduler: loop, entropy: SystemEntropy())
            defer { stack.detach() }
            let resolver = Resolver(stack: stack, timers: loop, clock: loop, entropy: SystemEntropy())
            let hosts = ["printer.mirage.test", "nas.mirage.test", "missing.mirage.test"]
                + (1...7).map { "n\($0).mirage.test" }
            let collector = LookupCollector(wanted: hosts.count, loop: loop)
            let feed = LeaseFeed(stack: stack, resolver: resolver, collector: collector, hosts: hosts)
            stack.configurationHandler = feed
            try loop.run(until: loop.now() + .seconds(40))

            #expect(feed.error == nil)
            #expect(feed.servers == [IPv4Address(10, 199, 57, 1)])
            #expect(resolver.servers == [Endpoint(.v4(IPv4Address(10, 199, 57, 1)), 53)])
            let printer = try #require(feed.ids["printer.mirage.test"])
            let nas = try #require(feed.ids["nas.mirage.test"])
            #expect(try collector.results[printer]?.get().ipv4Addresses == [IPv4Address(10, 199, 57, 77)])
            #expect(try collector.results[nas]?.get().ipv4Addresses == [IPv4Address(10, 199, 57, 78)])
            for host in hosts.dropFirst(2) {
                let id = try #require(feed.ids[host])
                guard case .success(.nameError)? = collector.results[id] else {
                    Issue.record("\(host): NXDOMAIN expected, got \(String(describing: collector.results[id]))")
                    continue
                }
            }
            // The source ports on the wire, as tcpdump saw them.
            _ = TestEnvironment.waitUntil(timeout: 5) { capture.output().stdout.split(separator: "\n").count >= hosts.count }
            let ports = capture.output().stdout.split(separator: "\n").compactMap { line -> UInt16? in
                // "12:00:00.000000 IP 10.199.57.55.51234 > 10.199.57.1.53: …"
                let fields = line.split(separator: " ")
                guard fields.count > 2, fields[1] == "IP" else { return nil }
                return fields[2].split(separator: ".").last.flatMap { UInt16($0) }
            }
            expectRandomPorts(ports, count: hosts.count, range: 49152...65535)
            let log = dnsmasq.output()
            #expect((log.stdout + log.stderr).contains("query[A] printer.mirage.test"))
        }
    }
}
