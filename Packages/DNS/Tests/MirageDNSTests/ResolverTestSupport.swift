import MirageDNS
import MirageDevices
import Testing

// Helpers for the resolver tests: names, records, server answers built
// from the query bytes the resolver sent, and action filters.

let server1 = Endpoint(.v4(IPv4Address(192, 0, 2, 1)), 53)
let server2 = Endpoint(.v4(IPv4Address(192, 0, 2, 2)), 53)

/// A name from presentation text (absolute when it ends in ".").
func dn(_ text: String) -> DomainName {
    do { return try DomainName(text, origin: .root) } catch {
        Issue.record("bad test name \(text): \(error)")
        return .root
    }
}

func aRecord(_ owner: String, _ ttl: UInt32, _ address: IPv4Address) -> ResourceRecord {
    ResourceRecord(name: dn(owner), ttl: ttl, data: .a(address))
}

func cnameRecord(_ owner: String, _ ttl: UInt32, _ target: String) -> ResourceRecord {
    ResourceRecord(name: dn(owner), ttl: ttl, data: .cname(dn(target)))
}

func soaRecord(_ zone: String, ttl: UInt32, minimum: UInt32) -> ResourceRecord {
    ResourceRecord(name: dn(zone), ttl: ttl, data: .soa(SOA(mname: dn("ns1." + zone), rname: dn("hostmaster." + zone),
                                                           serial: 2024010101, refresh: 3600, retry: 600, expire: 86400,
                                                           minimum: minimum)))
}

func nsRecord(_ zone: String, _ ttl: UInt32, _ server: String) -> ResourceRecord {
    ResourceRecord(name: dn(zone), ttl: ttl, data: .ns(dn(server)))
}

/// An answer to `query` (the bytes the resolver sent): same ID and
/// question, QR and RA set, an OPT when the query had one.
func reply(to query: [UInt8], rcode: ResponseCode = .noError, answers: [ResourceRecord] = [],
           authority: [ResourceRecord] = [], truncated: Bool = false, authoritative: Bool = false,
           withEDNS: Bool = true, id: UInt16? = nil, question: Question? = nil) throws -> [UInt8] {
    let q = try Message(parsing: query.span)
    var m = Message(header: q.header)
    m.header.isResponse = true
    m.header.recursionAvailable = true
    m.header.isTruncated = truncated
    m.header.isAuthoritative = authoritative
    if let id { m.header.id = id }
    m.questions = question.map { [$0] } ?? q.questions
    m.answers = answers
    m.authority = authority
    if withEDNS && q.edns != nil { m.edns = EDNS() }
    m.responseCode = rcode
    return try m.encode()
}

/// The same, framed for TCP (two-byte length first).
func framed(_ message: [UInt8]) -> [UInt8] {
    [UInt8(truncatingIfNeeded: message.count >> 8), UInt8(truncatingIfNeeded: message.count)] + message
}

struct SentQuery {
    var bytes: [UInt8]
    var server: Endpoint
    var query: StubResolver.QueryID
    var message: Message
}

func udpSends(_ actions: [StubResolver.Action]) -> [SentQuery] {
    var out: [SentQuery] = []
    for case .sendUDP(let bytes, let server, let query) in actions {
        guard let m = try? Message(parsing: bytes.span) else {
            Issue.record("the resolver sent bytes that do not parse")
            continue
        }
        out.append(SentQuery(bytes: bytes, server: server, query: query, message: m))
    }
    return out
}

func tcpSends(_ actions: [StubResolver.Action]) -> [SentQuery] {
    var out: [SentQuery] = []
    for case .sendTCP(let bytes, let server, let query) in actions {
        guard bytes.count >= 2, Int(bytes[0]) << 8 | Int(bytes[1]) == bytes.count - 2,
              let m = try? Message(parsing: bytes.span.extracting(2...)) else {
            Issue.record("the resolver sent a TCP query that is not one framed message")
            continue
        }
        out.append(SentQuery(bytes: Array(bytes[2...]), server: server, query: query, message: m))
    }
    return out
}

func completions(_ actions: [StubResolver.Action]) -> [(LookupID, Result<LookupResult, DNSError>)] {
    var out: [(LookupID, Result<LookupResult, DNSError>)] = []
    for case .complete(let id, let result) in actions { out.append((id, result)) }
    return out
}

func releases(_ actions: [StubResolver.Action]) -> [StubResolver.QueryID] {
    var out: [StubResolver.QueryID] = []
    for case .release(let q) in actions { out.append(q) }
    return out
}

/// The one completion in `actions`, or nil (recorded as an issue when
/// there is not exactly one).
func onlyCompletion(_ actions: [StubResolver.Action], sourceLocation: SourceLocation = #_sourceLocation)
    -> Result<LookupResult, DNSError>? {
    let c = completions(actions)
    guard c.count == 1 else {
        Issue.record("expected one completion, got \(c.count)", sourceLocation: sourceLocation)
        return nil
    }
    return c[0].1
}

extension Instant {
    static func seconds(_ s: Int64) -> Instant { .zero + .seconds(s) }
    static func milliseconds(_ ms: Int64) -> Instant { .zero + .milliseconds(ms) }
}

/// The error of the one completion in `actions`, if it is a failure.
func failure(_ actions: [StubResolver.Action]) -> DNSError? {
    guard case .failure(let error)? = onlyCompletion(actions) else { return nil }
    return error
}

/// The IPv4 addresses of the one completion in `actions`, if it is an answer.
func addresses(_ actions: [StubResolver.Action]) -> [IPv4Address]? {
    guard case .success(let result)? = onlyCompletion(actions) else { return nil }
    return result.ipv4Addresses
}

extension StubResolver {
    /// `datagramReceived` with an array (bound first: Swift 6.3.1 miscompiles
    /// `try f().span` passed as an argument).
    mutating func receive(_ bytes: [UInt8], from source: Endpoint, query: QueryID, now: Instant) -> [Action] {
        datagramReceived(bytes.span, from: source, query: query, now: now)
    }
}
