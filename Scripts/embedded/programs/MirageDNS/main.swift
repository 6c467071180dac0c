// Embedded check program for MirageDNS (Scripts/check-embedded): a zone
// file parsed from a compiled-in store, served by DNSServer over a fake
// stack — UDP answers, a truncated reply, TCP framing across splits, an
// AXFR — all specialised and run under Embedded Swift, as the unikernel
// will. `mirage_main` returns the failed checks.

import MirageDNS
import MirageDevices

let zoneText = """
    $ORIGIN example.test.
    $TTL 3600
    @       IN SOA ns1 admin ( 2024010101 7200 3600 1209600 300 )
            IN NS  ns1
            IN MX  10 mail
    ns1     IN A   192.0.2.1
    mail    IN A   192.0.2.25
    www     300 IN A 192.0.2.80
    alias   IN CNAME www
    *.wild  IN TXT "wildcard \\"quoted\\""
    sub     IN NS  ns.sub
    ns.sub  IN A   192.0.2.53
    $INCLUDE big.inc
    """

let includeText = (0..<40).map { "big IN AAAA 2001:db8::\($0 + 1)" }.joined(separator: "\n") + "\n"

func query(_ name: String, _ type: RecordType, id: UInt16, edns: Bool = false) -> [UInt8] {
    var header = Header(id: id)
    header.recursionDesired = true
    var message = Message(header: header)
    do throws(DNSError) {
        message.questions = [Question(name: try DomainName(name), type: type)]
        if edns { message.edns = EDNS(payloadSize: 1232, dnssecOK: true) }
        return try message.encode()
    } catch {
        return []
    }
}

func parse(_ bytes: [UInt8]) -> Message? {
    do throws(DNSError) { return try Message(parsing: bytes.span) } catch { return nil }
}

@_cdecl("mirage_main")
public func mirageMain() -> Int32 {
    let report = Report()
    let store = MemoryKeyValueStore(["example.test.zone": bytes(zoneText), "big.inc": bytes(includeText)])
    let zone: Zone
    do throws(DNSError) {
        zone = try Zone.load(file: "example.test.zone", origin: try DomainName("example.test."), store: store)
    } catch {
        print("FAIL: zone load: \(error)")
        return 1
    }
    report.expect(zone.serial == 2024010101, "serial")
    report.expect(zone.records.count == 50, "records \(zone.records.count)")

    let stack = FakeStack()
    let clock = ManualClock()
    let timers = ManualTimerScheduler(clock: clock)
    let core = AuthoritativeServer(zones: [zone])
    var configuration = DNSServerConfiguration()
    configuration.port = 53
    let server = DNSServer(stack: stack, core: core, timers: timers, clock: clock, configuration: configuration)
    do throws(DNSError) { try server.start() } catch {
        print("FAIL: start")
        return 1
    }
    let socket = UDPSocketID(rawValue: 1)
    let client = Endpoint(.v4(IPv4Address(192, 0, 2, 200)), 40000)
    let local = Endpoint(.v4(.loopback), 53)

    func udp(_ bytes: [UInt8]) -> Message? {
        stack.sent.removeAll()
        server.datagramReceived(bytes.span, from: client, to: local, on: socket)
        guard stack.sent.count == 1, stack.sent[0].1 == client else { return nil }
        report.mix(stack.sent[0].0)
        return parse(stack.sent[0].0)
    }

    // A positive answer: AA, the zone's NS in authority, the MX target's address.
    if let reply = udp(query("www.example.test.", .a, id: 1)) {
        report.expect(reply.header.isAuthoritative && reply.header.id == 1, "www: AA and id")
        report.expect(reply.answers.count == 1 && reply.answers[0].data == .a(IPv4Address(192, 0, 2, 80)), "www: A")
        report.expect(reply.authority.count == 1 && reply.authority[0].type == .ns, "www: NS in authority")
        report.expect(reply.additional.count == 1 && reply.additional[0].name == (try? DomainName("ns1.example.test.")), "www: ns1 address")
    } else {
        report.expect(false, "www: reply")
    }
    if let reply = udp(query("example.test.", .mx, id: 2)) {
        report.expect(reply.additional.contains { $0.data == .a(IPv4Address(192, 0, 2, 25)) }, "mx: exchange address")
    } else {
        report.expect(false, "mx: reply")
    }
    // CNAME followed, wildcard synthesized with the escaped quotes intact.
    if let reply = udp(query("ALIAS.example.test.", .a, id: 3)) {
        report.expect(reply.answers.count == 2 && reply.answers[0].type == .cname, "alias: CNAME then A")
    } else {
        report.expect(false, "alias: reply")
    }
    if let reply = udp(query("x.wild.example.test.", .txt, id: 4)) {
        let expected: [[UInt8]] = [bytes("wildcard \"quoted\"")]
        report.expect(reply.answers.count == 1 && reply.answers[0].data == .txt(expected), "wildcard TXT")
        report.expect(reply.answers.first?.name == (try? DomainName("x.wild.example.test.")), "wildcard owner")
    } else {
        report.expect(false, "wildcard: reply")
    }
    // NXDOMAIN with the SOA at its negative TTL; a referral with glue; REFUSED.
    if let reply = udp(query("nope.example.test.", .a, id: 5)) {
        report.expect(reply.responseCode == .nameError && reply.authority.first?.ttl == 300, "nxdomain")
    } else {
        report.expect(false, "nxdomain: reply")
    }
    if let reply = udp(query("host.sub.example.test.", .a, id: 6)) {
        report.expect(!reply.header.isAuthoritative && reply.authority.count == 1 && reply.additional.count == 1, "referral")
    } else {
        report.expect(false, "referral: reply")
    }
    report.expect(udp(query("example.org.", .a, id: 7))?.responseCode == .refused, "refused")
    // 40 AAAA records: TC at 512 bytes, whole with EDNS 1232? no (≈1.2 KB): check both limits hold.
    if let reply = udp(query("big.example.test.", .aaaa, id: 8)) {
        report.expect(reply.header.isTruncated && reply.answers.isEmpty, "truncated at 512")
        report.expect(stack.sent[0].0.count <= 512, "512 limit")
    } else {
        report.expect(false, "big: reply")
    }
    if let reply = udp(query("big.example.test.", .aaaa, id: 9, edns: true)) {
        report.expect(reply.edns?.dnssecOK == true && reply.edns?.payloadSize == 1232, "EDNS answered, DO echoed")
        report.expect(stack.sent[0].0.count <= 1232, "1232 limit")
    } else {
        report.expect(false, "big edns: reply")
    }
    // A response is never answered.
    var response = query("www.example.test.", .a, id: 10)
    response[2] |= 0x80
    stack.sent.removeAll()
    server.datagramReceived(response.span, from: client, to: local, on: socket)
    report.expect(stack.sent.isEmpty, "responses dropped")

    // TCP: two queries in one stream, fed a byte at a time, answered in order.
    let connection = ConnectionID(rawValue: 50)
    server.connectionAccepted(connection, listener: ListenerID(rawValue: 2))
    var stream: [UInt8] = []
    for (id, name) in [(UInt16(11), "www.example.test."), (UInt16(12), "big.example.test.")] {
        let q = query(name, name.hasPrefix("big") ? .aaaa : .a, id: id)
        stream.append(UInt8(q.count >> 8))
        stream.append(UInt8(q.count & 0xFF))
        stream += q
    }
    for byte in stream { server.received([byte].span, on: connection) }
    let out = stack.take(connection)
    var messages: [Message] = []
    var at = 0
    while at + 2 <= out.count {
        let length = Int(out[at]) << 8 | Int(out[at + 1])
        guard at + 2 + length <= out.count, let message = parse(Array(out[(at + 2)..<(at + 2 + length)])) else { break }
        messages.append(message)
        at += 2 + length
    }
    report.expect(messages.count == 2 && messages[0].header.id == 11 && messages[1].header.id == 12, "tcp: two answers in order")
    report.expect(messages.count == 2 && messages[1].answers.count == 40 && !messages[1].header.isTruncated, "tcp: no truncation")

    // AXFR on another connection: SOA first and last, every record.
    let transfer = ConnectionID(rawValue: 51)
    server.connectionAccepted(transfer, listener: ListenerID(rawValue: 2))
    let axfr = query("example.test.", .axfr, id: 13)
    server.received(([UInt8(axfr.count >> 8), UInt8(axfr.count & 0xFF)] + axfr).span, on: transfer)
    let transferred = stack.take(transfer)
    var records: [ResourceRecord] = []
    at = 0
    while at + 2 <= transferred.count {
        let length = Int(transferred[at]) << 8 | Int(transferred[at + 1])
        guard at + 2 + length <= transferred.count, let message = parse(Array(transferred[(at + 2)..<(at + 2 + length)])) else { break }
        records += message.answers
        at += 2 + length
    }
    report.expect(records.count == 51 && records.first?.type == .soa && records.last?.type == .soa, "axfr: \(records.count) records")

    // The idle timeout closes both connections.
    clock.advance(by: .seconds(11))
    _ = timers.runDue()
    report.expect(stack.closed.contains(connection) && stack.closed.contains(transfer), "idle connections closed")
    report.expect(server.statistics.idleTimeouts == 2, "idle count")

    // The stub resolver over the same fake stack: its query goes to the
    // server core, the reply comes back to its socket, the result is
    // delivered from the loop (a timer due now).
    let results = Results()
    let nameServer = Endpoint(.v4(IPv4Address(192, 0, 2, 53)), 53)
    let resolver = Resolver(stack: stack, timers: timers, clock: clock, entropy: SeededEntropy(seed: 7), servers: [nameServer])
    for (host, expected) in [("www.example.test", [IPv4Address(192, 0, 2, 80)]), ("ALIAS.example.test.", [IPv4Address(192, 0, 2, 80)]),
                             ("nope.example.test", [])] {
        stack.sent.removeAll()
        let lookup: LookupID
        do throws(DNSError) { lookup = try resolver.lookupIPv4(host: host, handler: results) } catch {
            report.expect(false, "resolve \(host): \(error)")
            continue
        }
        guard stack.sent.count == 1, stack.sent[0].1 == nameServer, let from = stack.lastSocket,
              let port = stack.localEndpoint(of: from)?.port else {
            report.expect(false, "resolver query for \(host)")
            continue
        }
        var writer = MessageWriter()
        let query = stack.sent[0].0
        guard case .reply = core.respond(to: query.span, transport: .udp, into: &writer) else {
            report.expect(false, "server answered \(host)")
            continue
        }
        let answer = Array(writer.bytes[0..<writer.count])
        resolver.datagramReceived(answer.span, from: nameServer, to: Endpoint(.v4(.loopback), port), on: from)
        _ = timers.runDue()
        if case .success(let result) = results.got[lookup] {
            report.expect(result.ipv4Addresses == expected, "resolved \(host)")
            if expected.isEmpty { report.expect(result.ttl == 300, "negative TTL from the SOA") }
        } else {
            report.expect(false, "no result for \(host)")
        }
    }
    // A second lookup comes from the cache: nothing sent.
    stack.sent.removeAll()
    do throws(DNSError) { _ = try resolver.lookupIPv4(host: "www.example.test", handler: results) } catch {}
    _ = timers.runDue()
    report.expect(stack.sent.isEmpty && resolver.cacheStatistics.hits >= 1, "cache hit")

    print("MirageDNS: \(report.checks) checks, \(report.failed) failed, digest \(report.digest)")
    return Int32(report.failed)
}

/// Collects resolver results.
final class Results: ResolverHandler {
    var got: [LookupID: Result<LookupResult, DNSError>] = [:]
    func resolved(_ lookup: LookupID, result: Result<LookupResult, DNSError>) { got[lookup] = result }
}
