import MirageDevices

/// Typed record data (RDATA) for the types this module knows; any other
/// type is carried as opaque bytes (RFC 3597).
public enum RData: Hashable, Sendable {
    /// A: an IPv4 address (RFC 1035 §3.4.1).
    case a(IPv4Address)
    /// AAAA: an IPv6 address (RFC 3596 §2.2).
    case aaaa(IPv6Address)
    /// NS: an authoritative server (RFC 1035 §3.3.11).
    case ns(DomainName)
    /// CNAME: the canonical name (RFC 1035 §3.3.1).
    case cname(DomainName)
    /// PTR: a pointer (RFC 1035 §3.3.12).
    case ptr(DomainName)
    /// SOA (RFC 1035 §3.3.13).
    case soa(SOA)
    /// MX (RFC 1035 §3.3.9).
    case mx(preference: UInt16, exchange: DomainName)
    /// TXT: character-strings, each ≤ 255 bytes, at least one (RFC 1035 §3.3.14).
    case txt([[UInt8]])
    /// SRV (RFC 2782).
    case srv(SRV)
    /// NAPTR (RFC 3403).
    case naptr(NAPTR)
    /// CAA (RFC 8659).
    case caa(CAA)
    /// SSHFP (RFC 4255).
    case sshfp(SSHFP)
    /// TLSA (RFC 6698).
    case tlsa(TLSA)
    /// DS (RFC 4034 §5).
    case ds(DS)
    /// DNSKEY (RFC 4034 §2).
    case dnskey(DNSKEY)
    /// RRSIG (RFC 4034 §3).
    case rrsig(RRSIG)
    /// NSEC (RFC 4034 §4).
    case nsec(NSEC)
    /// NSEC3 (RFC 5155 §3).
    case nsec3(NSEC3)
    /// NSEC3PARAM (RFC 5155 §4).
    case nsec3param(NSEC3PARAM)
    /// RFC 3597: any other type, opaque.
    case unknown(type: RecordType, data: [UInt8])

    /// The record type of this data.
    public var type: RecordType {
        switch self {
        case .a: .a
        case .aaaa: .aaaa
        case .ns: .ns
        case .cname: .cname
        case .ptr: .ptr
        case .soa: .soa
        case .mx: .mx
        case .txt: .txt
        case .srv: .srv
        case .naptr: .naptr
        case .caa: .caa
        case .sshfp: .sshfp
        case .tlsa: .tlsa
        case .ds: .ds
        case .dnskey: .dnskey
        case .rrsig: .rrsig
        case .nsec: .nsec
        case .nsec3: .nsec3
        case .nsec3param: .nsec3param
        case .unknown(let type, _): type
        }
    }

    /// Names this data points at whose addresses go to the additional section
    /// (NS nsdname, MX exchange, SRV target), nil otherwise.
    public var additionalTarget: DomainName? {
        switch self {
        case .ns(let name): name
        case .mx(_, let exchange): exchange
        case .srv(let srv): srv.target
        default: nil
        }
    }
}
