// The `dns-server` fuzz target (see FuzzDNS.swift for how targets are run):
// an AuthoritativeServer with a fixed zone answers whatever a peer sends.
// Imports only MirageDevices and MirageDNS, like the rest of the harness.

import MirageDevices
import MirageDNS

/// The zone every run answers from: a wildcard, a delegation with glue, a
/// CNAME chain, an RRset too large for UDP, and a second zone below it.
private let fuzzServerZones: [Zone] = {
    let parent = """
        $ORIGIN example.test.
        $TTL 300
        @ SOA ns1 admin 1 7200 3600 1209600 60
          NS ns1
          MX 10 mail
        ns1 A 192.0.2.1
        mail A 192.0.2.2
        mail AAAA 2001:db8::2
        www A 192.0.2.3
        a CNAME b
        b CNAME www
        out CNAME www.other.test.
        *.wild TXT "w"
        sub NS ns.sub
        ns.sub A 192.0.2.4
        srv._tcp SRV 0 1 80 www
        child NS ns1
        """
    var big = "$ORIGIN example.test.\n"
    for i in 0..<70 { big += "big 60 AAAA 2001:db8::\(i + 1)\n" }
    let child = """
        $ORIGIN child.example.test.
        @ 300 SOA ns1.example.test. admin 5 7200 3600 1209600 60
          300 NS ns1.example.test.
        host 300 A 192.0.2.9
        """
    let store = MemoryKeyValueStore([
        "parent": Array((parent + "\n" + big).utf8),
        "child": Array(child.utf8),
    ])
    do {
        return [
            try Zone.load(file: "parent", origin: try DomainName("example.test."), store: store),
            try Zone.load(file: "child", origin: try DomainName("child.example.test."), store: store),
        ]
    } catch {
        fuzzFail("the fuzz zone does not load")
    }
}()

/// A server kept across runs, so answers come from its cache as they would
/// on a busy server.
nonisolated(unsafe) private var warmServer = AuthoritativeServer(zones: fuzzServerZones)

/// `dns-server`: byte 0 picks the transport (bit 0: TCP); the rest is the
/// query. Whatever the server sends must decode, be a response with the
/// query's ID, keep to the transport's size (512 without EDNS, 1232 with),
/// and be byte for byte what a server that never saw a query before sends
/// (the answer cache changes nothing). A transfer must end, SOA first and last.
func fuzzServer(_ input: Span<UInt8>) -> FuzzReport {
    var report = FuzzReport()
    guard input.count >= 1 else { return report }
    let transport: DNSTransport = input[0] & 1 == 1 ? .tcp : .udp
    let query = input.extracting(1..<input.count)
    var warmWriter = MessageWriter()
    var coldWriter = MessageWriter()
    let cold = AuthoritativeServer(zones: fuzzServerZones)
    let warmAction = warmServer.respond(to: query, transport: transport, into: &warmWriter)
    let coldAction = cold.respond(to: query, transport: transport, into: &coldWriter)
    switch (warmAction, coldAction) {
    case (.drop, .drop), (.reset, .reset):
        return report
    case (.reply, .reply):
        let warm = Array(warmWriter.bytes[0..<warmWriter.count])
        let cold = Array(coldWriter.bytes[0..<coldWriter.count])
        fuzzCheck(warm == cold, "a cached reply differs from a fresh one")
        let reply: Message
        do {
            reply = try Message(parsing: warm.span)
        } catch {
            fuzzFail("the server's reply does not decode")
        }
        report.decoded = 1
        report.records = reply.answers.count + reply.authority.count + reply.additional.count
        fuzzCheck(reply.header.isResponse, "a reply without QR")
        fuzzCheck(query.count >= 2 && reply.header.id == UInt16(query[0]) << 8 | UInt16(query[1]), "a reply with another ID")
        if transport == .udp {
            fuzzCheck(warm.count <= Int(EDNS.ourPayloadSize), "a UDP reply over 1232 bytes")
            if reply.edns == nil { fuzzCheck(warm.count <= 512, "a UDP reply over 512 bytes without EDNS") }
        }
        report.mix(UInt64(warm.count))
    case (.transfer(var transfer), .transfer):
        var messages = 0
        var first: ResourceRecord?
        var last: ResourceRecord?
        while transfer.next(into: &warmWriter) {
            messages += 1
            fuzzCheck(messages < 1000, "a transfer that does not end")
            let bytes = Array(warmWriter.bytes[0..<warmWriter.count])
            guard let message = try? Message(parsing: bytes.span) else { fuzzFail("a transfer message does not decode") }
            if first == nil { first = message.answers.first }
            last = message.answers.last ?? last
        }
        fuzzCheck(first?.type == .soa && last?.type == .soa, "a transfer not framed by the SOA")
        report.records = messages
    default:
        fuzzFail("a warm and a cold server chose different actions")
    }
    return report
}
