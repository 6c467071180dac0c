import MirageDevices

/// One lookup of a `StubResolver` (and of the `Resolver` driving it).
/// Valid from `resolve` until its completion or `cancel`.
public struct LookupID: Hashable, Sendable, CustomStringConvertible {
    /// The resolver's number for the lookup, from 1, never reused.
    public var rawValue: UInt64
    /// A lookup identifier.
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public var description: String { "lookup#\(rawValue)" }
}

/// The records a lookup found.
public struct LookupAnswer: Hashable, Sendable {
    /// Where the records are: the question's name, or the end of the CNAME
    /// chain leading from it (the canonical name).
    public var name: DomainName
    /// The RRset asked for (type and class of the question) at `name`. From
    /// the cache, each TTL is what remains of it.
    public var records: [ResourceRecord]
    /// The CNAME records followed from the question's name to `name`, in order.
    public var aliases: [ResourceRecord]
    /// Seconds the whole answer may be kept: the smallest TTL of `records`
    /// and `aliases`, capped by the cache's maximum (RFC 2181 §5.2: an RRset
    /// has one TTL; the chain is only as fresh as its shortest link).
    public var ttl: UInt32

    /// An answer.
    public init(name: DomainName, records: [ResourceRecord], aliases: [ResourceRecord] = [], ttl: UInt32) {
        self.name = name
        self.records = records
        self.aliases = aliases
        self.ttl = ttl
    }
}

/// What a negative answer (RFC 2308) said.
public struct NegativeAnswer: Hashable, Sendable {
    /// The name that does not exist or has no data: the question's name or
    /// the end of the CNAME chain (RFC 6604 §2: the RCODE is about it).
    public var name: DomainName
    /// The CNAME records followed to `name`, in order.
    public var aliases: [ResourceRecord]
    /// The SOA record of the authority section whose zone holds `name`,
    /// if the server sent one.
    public var soa: ResourceRecord?
    /// Seconds the negative answer may be cached: min(SOA TTL, SOA MINIMUM)
    /// (RFC 2308 §5), no more than the aliases' TTLs, capped; 0 without an
    /// SOA (RFC 2308 §5: not cached then).
    public var ttl: UInt32

    /// A negative answer.
    public init(name: DomainName, aliases: [ResourceRecord] = [], soa: ResourceRecord? = nil, ttl: UInt32) {
        self.name = name
        self.aliases = aliases
        self.soa = soa
        self.ttl = ttl
    }
}

/// How a lookup ended when a server (or the cache) answered it. NXDOMAIN
/// and NODATA are answers, not errors: failures to get any answer are
/// `DNSError`s.
public enum LookupResult: Hashable, Sendable {
    /// The records asked for.
    case answer(LookupAnswer)
    /// NXDOMAIN: the name does not exist (RFC 1035 §4.1.1 RCODE 3, RFC 2308 §2.1).
    case nameError(NegativeAnswer)
    /// NODATA: the name exists but has no records of the type (RFC 2308 §2.2).
    case noData(NegativeAnswer)

    /// The records found; empty for a negative answer.
    public var records: [ResourceRecord] {
        if case .answer(let a) = self { return a.records }
        return []
    }

    /// The IPv4 addresses of the A records found, in the server's order.
    public var ipv4Addresses: [IPv4Address] {
        var out: [IPv4Address] = []
        for r in records { if case .a(let a) = r.data { out.append(a) } }
        return out
    }

    /// The addresses of the A and AAAA records found, in the server's order.
    public var addresses: [IPAddress] {
        var out: [IPAddress] = []
        for r in records {
            switch r.data {
            case .a(let a): out.append(.v4(a))
            case .aaaa(let a): out.append(.v6(a))
            default: break
            }
        }
        return out
    }

    /// Seconds the result may be cached (0: not at all).
    public var ttl: UInt32 {
        switch self {
        case .answer(let a): a.ttl
        case .nameError(let n), .noData(let n): n.ttl
        }
    }
}
