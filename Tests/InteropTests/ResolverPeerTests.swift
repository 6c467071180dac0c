import Foundation
import MirageDNS
import MirageDevices
import MiragePlatform
import MirageTCPIP
import MirageTestNetwork
import Testing

// Issue #8: "The stub resolver resolves names against NSD and against our
// server, over both stacks." NSD (Debian's, run by nsd_server.py with the
// issue's settings) and mirage-dns serve the same zone; MirageDNS's
// `Resolver` asks each in turn for an A, an AAAA and an MX RRset, a name at
// the head of a CNAME chain, a name that does not exist, a name without
// data of the type, and an RRset too large for 1232 bytes of UDP, which
// must come over TCP. Both servers must give the same results, and those
// must be the zone's data. First over SocketStack on 127.0.0.1, then over
// MirageTCPIP on a tap device into a namespace where both servers run on
// kernel sockets at 10.199.93.1 (10.199.93.0/24 exists only there).

/// The zone both servers serve, kept as records: the test writes them out
/// as a zone file and expects exactly them back.
private enum PeerZone {
    static let origin = "peer.test."
    /// RFC 2308 §5: a negative answer is cached for min(SOA TTL, MINIMUM).
    static let soaTTL: UInt32 = 3600
    static let negativeTTL: UInt32 = 300
    /// More AAAA records than fit in 1232 bytes (28 bytes each with a
    /// compressed owner name: 80 × 28 = 2240).
    static let bigCount = 80

    static func name(_ text: String) throws -> DomainName {
        try DomainName(text, origin: DomainName(origin))
    }

    static func soa(ttl: UInt32) throws -> ResourceRecord {
        ResourceRecord(name: try name("@"), ttl: ttl, data: .soa(SOA(
            mname: try name("ns1"), rname: try name("hostmaster"), serial: 2024_0601,
            refresh: 7200, retry: 3600, expire: 1_209_600, minimum: negativeTTL)))
    }

    static func records() throws -> [ResourceRecord] {
        func record(_ owner: String, _ ttl: UInt32, _ data: RData) throws -> ResourceRecord {
            ResourceRecord(name: try name(owner), ttl: ttl, data: data)
        }
        var records = [
            try soa(ttl: soaTTL),
            try record("@", 3600, .ns(try name("ns1"))),
            try record("@", 7200, .mx(preference: 10, exchange: try name("mail"))),
            try record("@", 7200, .mx(preference: 20, exchange: try name("mail2"))),
            try record("ns1", 3600, .a(IPv4Address(192, 0, 2, 1))),
            try record("mail", 3600, .a(IPv4Address(192, 0, 2, 25))),
            try record("mail2", 3600, .a(IPv4Address(192, 0, 2, 26))),
            try record("www", 3600, .a(IPv4Address(192, 0, 2, 10))),
            try record("www", 3600, .a(IPv4Address(192, 0, 2, 11))),
            try record("www", 3600, .a(IPv4Address(192, 0, 2, 12))),
            try record("www", 1800, .aaaa(IPv6Address(groups: [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10]))),
            try record("www", 1800, .aaaa(IPv6Address(groups: [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11]))),
            try record("alias", 600, .cname(try name("alias2"))),
            try record("alias2", 900, .cname(try name("www"))),
        ]
        for n in 1...bigCount {
            records.append(try record("big", 1200, .aaaa(IPv6Address(groups: [0x2001, 0xdb8, 0xb16, 0, 0, 0, 0, UInt16(n)]))))
        }
        return records
    }

    /// The zone file: `$ORIGIN` first (nsd_server.py takes the origin from
    /// it), then every record with its absolute owner name.
    static func text() throws -> String {
        var lines = ["$ORIGIN \(origin)", "$TTL 3600"]
        for r in try records() { lines.append("\(r.name) \(r.ttl) IN \(r.type) \(r.data.presentation)") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The RRset of `type` at `owner`.
    static func rrset(_ owner: String, _ type: RecordType) throws -> Set<ResourceRecord> {
        let owner = try name(owner)
        return Set(try records().filter { $0.name == owner && $0.type == type })
    }

    /// Every lookup the test makes and what the zone says it must find.
    static func cases() throws -> [(PeerQuery, PeerOutcome)] {
        let www = try name("www")
        let negativeSOA = try soa(ttl: negativeTTL)
        return [
            (PeerQuery("www", .a), .answer(name: www, records: try rrset("www", .a), aliases: [], ttl: 3600)),
            (PeerQuery("www", .aaaa), .answer(name: www, records: try rrset("www", .aaaa), aliases: [], ttl: 1800)),
            (PeerQuery("@", .mx), .answer(name: try name("@"), records: try rrset("@", .mx), aliases: [], ttl: 7200)),
            // The chain alias → alias2 → www, in order, then www's addresses;
            // the answer lasts as long as its shortest link (600 s).
            (PeerQuery("alias", .a), .answer(
                name: www, records: try rrset("www", .a),
                aliases: [try rrset("alias", .cname), try rrset("alias2", .cname)].flatMap { $0 }, ttl: 600)),
            (PeerQuery("nothing", .a), .nameError(name: try name("nothing"), soa: negativeSOA, ttl: negativeTTL)),
            (PeerQuery("www", .txt), .noData(name: www, soa: negativeSOA, ttl: negativeTTL)),
            (PeerQuery("big", .aaaa), .answer(name: try name("big"), records: try rrset("big", .aaaa), aliases: [], ttl: 1200)),
        ]
    }
}

/// A question the test asks: an owner relative to the zone, and a type.
private struct PeerQuery: Hashable, CustomStringConvertible {
    var owner: String
    var type: RecordType
    init(_ owner: String, _ type: RecordType) {
        self.owner = owner
        self.type = type
    }
    var description: String { "\(owner) \(type)" }
}

/// A lookup's result in a form compared across servers: record sets as
/// sets (the order within an RRset is the server's choice), the CNAME
/// chain in order.
private enum PeerOutcome: Equatable, CustomStringConvertible {
    case answer(name: DomainName, records: Set<ResourceRecord>, aliases: [ResourceRecord], ttl: UInt32)
    case nameError(name: DomainName, soa: ResourceRecord?, ttl: UInt32)
    case noData(name: DomainName, soa: ResourceRecord?, ttl: UInt32)
    case failed(String)
    case missing

    init(_ result: Result<LookupResult, DNSError>?) {
        switch result {
        case nil: self = .missing
        case .failure(let error): self = .failed("\(error)")
        case .success(.answer(let a)):
            self = .answer(name: a.name, records: Set(a.records), aliases: a.aliases, ttl: a.ttl)
        case .success(.nameError(let n)):
            self = n.aliases.isEmpty ? .nameError(name: n.name, soa: n.soa, ttl: n.ttl) : .failed("NXDOMAIN after aliases \(n.aliases)")
        case .success(.noData(let n)):
            self = n.aliases.isEmpty ? .noData(name: n.name, soa: n.soa, ttl: n.ttl) : .failed("NODATA after aliases \(n.aliases)")
        }
    }

    var description: String {
        func show(_ records: [ResourceRecord]) -> String {
            let lines = records.map { "\($0.name) \($0.ttl) \($0.type) \($0.data.presentation)" }.sorted()
            return lines.count <= 6 ? lines.joined(separator: "; ") : "\(lines.count) records: \(lines.prefix(3).joined(separator: "; ")); …"
        }
        switch self {
        case .answer(let name, let records, let aliases, let ttl):
            return "answer \(name) ttl \(ttl) [\(show(Array(records)))] via [\(show(aliases))]"
        case .nameError(let name, let soa, let ttl): return "NXDOMAIN \(name) ttl \(ttl) soa [\(show(soa.map { [$0] } ?? []))]"
        case .noData(let name, let soa, let ttl): return "NODATA \(name) ttl \(ttl) soa [\(show(soa.map { [$0] } ?? []))]"
        case .failed(let why): return "failed: \(why)"
        case .missing: return "no result within the deadline"
        }
    }
}

/// What one resolver found asking one server.
private struct PeerRun {
    var outcomes: [PeerQuery: PeerOutcome]
    var statistics: StubResolver.Statistics
    var openQueries: Int
    var milliseconds: Int
}

/// Makes every lookup of `queries` at once through a fresh `Resolver` on
/// `stack` asking `server` alone, and runs the loop until all have ended
/// or 10 s have passed.
private func resolveAll<S: Stack>(_ queries: [PeerQuery], stack: S, loop: EventLoop, server: Endpoint) throws -> PeerRun {
    let resolver = Resolver(stack: stack, timers: loop, clock: loop, entropy: SystemEntropy(), servers: [server])
    let collector = LookupCollector(wanted: queries.count, loop: loop)
    let started = ContinuousClock.now
    var ids: [PeerQuery: LookupID] = [:]
    for query in queries {
        ids[query] = try resolver.resolve(try PeerZone.name(query.owner), type: query.type, handler: collector)
    }
    try loop.run(until: loop.now() + .seconds(10))
    let elapsed = ContinuousClock.now - started
    // Let closes started by the last answer finish (a TCP connection's
    // FIN exchange) before counting what is still open.
    if resolver.openQueries > 0 { try loop.run(until: loop.now() + .milliseconds(200)) }
    var outcomes: [PeerQuery: PeerOutcome] = [:]
    for (query, id) in ids { outcomes[query] = PeerOutcome(collector.results[id]) }
    let milliseconds = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
    return PeerRun(outcomes: outcomes, statistics: resolver.statistics, openQueries: resolver.openQueries, milliseconds: milliseconds)
}

/// Resolves every case against each server in turn and checks: each
/// result is the zone's data, NSD's and mirage-dns's results are the same,
/// the large RRset came over TCP after a truncated UDP answer, and nothing
/// is left open.
private func checkAgainstBothServers<S: Stack>(
    stack: S, loop: EventLoop, servers: [(name: String, endpoint: Endpoint)], stackName: String
) throws {
    let cases = try PeerZone.cases()
    let queries = cases.map { $0.0 }
    #expect(try PeerZone.rrset("big", .aaaa).count == PeerZone.bigCount)
    var runs: [String: PeerRun] = [:]
    for server in servers {
        let run = try resolveAll(queries, stack: stack, loop: loop, server: server.endpoint)
        runs[server.name] = run
        let s = run.statistics
        print("resolver over \(stackName) against \(server.name) at \(server.endpoint): \(queries.count) lookups in \(run.milliseconds) ms; "
              + "udp \(s.udpQueries) tcp \(s.tcpQueries) truncated \(s.truncated) timeouts \(s.timeouts) answered \(s.answered) failed \(s.failed)")
        for (query, expected) in cases {
            let got = run.outcomes[query] ?? .missing
            #expect(got == expected, "\(server.name) over \(stackName), \(query): got \(got)\nzone says \(expected)")
        }
        // One UDP query per lookup; the big RRset's came back truncated and
        // was asked again over TCP (RFC 1035 §4.2.1, RFC 7766 §5).
        #expect(s.udpQueries == UInt64(queries.count), "\(server.name): \(s)")
        #expect(s.truncated == 1 && s.tcpQueries == 1, "\(server.name): the big RRset must come over TCP: \(s)")
        #expect(s.timeouts == 0 && s.failed == 0 && s.answered == UInt64(queries.count), "\(server.name): \(s)")
        #expect(run.openQueries == 0, "\(server.name): \(run.openQueries) sockets or connections left open")
    }
    if let nsd = runs[servers[0].name], let ours = runs[servers[1].name] {
        for query in queries {
            #expect(nsd.outcomes[query] == ours.outcomes[query],
                    "\(query): \(servers[0].name) gave \(nsd.outcomes[query] ?? .missing), \(servers[1].name) \(ours.outcomes[query] ?? .missing)")
        }
    }
}

@Suite("Stub resolver against NSD and mirage-dns over both stacks", .serialized,
       .interop(tools: ["nsd", "dig", "python3"], needsRoot: false))
struct ResolverPeerTests {
    @Test("over SocketStack on 127.0.0.1: NSD and mirage-dns give the zone's A, AAAA, MX, CNAME chain, NXDOMAIN, NODATA and an RRset too big for UDP (over TCP)")
    func overSocketStack() throws {
        try withZoneDirectory(try PeerZone.text()) { dir in
            let zone = dir + "/example.test.zone"
            let nsd = try startNSD(directory: dir + "/nsd", zones: [zone])
            defer { _ = nsd.process.terminate(grace: 5) }
            let ours = try startDNS(["--zone", zone, "--port", "0"])
            defer { _ = ours.process.terminate(grace: 5) }

            let loop = try EventLoop()
            let stack = SocketStack(loop: loop)
            defer { stack.closeAll() }
            try checkAgainstBothServers(stack: stack, loop: loop, servers: [
                ("NSD", Endpoint(.v4(.loopback), nsd.port)),
                ("mirage-dns", Endpoint(.v4(.loopback), ours.port)),
            ], stackName: "SocketStack")
            #expect(nsd.process.isRunning, "NSD exited: \(nsd.process.output().stderr)")
            _ = try stopDNS(ours.process)
        }
    }

    @Test("over MirageTCPIP on a tap device: the same lookups against NSD and mirage-dns in a namespace, the TCP fallback over our TCP",
          .interop(tools: ["ip", "nsd", "dig", "python3"]))
    func overMirageTCPIP() throws {
        try withZoneDirectory(try PeerZone.text()) { dir in
            let zone = dir + "/example.test.zone"
            try withStackOnTap(net: 93) { ns, stack, loop in
                let nsd = try startNSD(directory: dir + "/nsd", zones: [zone], in: ns, address: "10.199.93.1", port: 53)
                defer { _ = nsd.process.terminate(grace: 5) }
                let ours = try startDNS(["--zone", zone, "--address", "10.199.93.1", "--port", "5353"], in: ns)
                defer { _ = ours.process.terminate(grace: 5) }
                let server = IPAddress.v4(IPv4Address(10, 199, 93, 1))
                try checkAgainstBothServers(stack: stack, loop: loop, servers: [
                    ("NSD", Endpoint(server, nsd.port)),
                    ("mirage-dns", Endpoint(server, ours.port)),
                ], stackName: "MirageTCPIP")
                #expect(nsd.process.isRunning, "NSD exited: \(nsd.process.output().stderr)")
                _ = try stopDNS(ours.process)
            }
        }
    }
}
