/// A resource record TYPE (RFC 1035 §3.2.2; IANA "Resource Record (RR) TYPEs").
/// Any 16-bit value is a type: those this module does not know are carried
/// opaquely (RFC 3597) and written "TYPEnnn".
public struct RecordType: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The type number.
    public var rawValue: UInt16

    /// The type with number `rawValue`.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// IPv4 address (RFC 1035).
    public static let a = RecordType(rawValue: 1)
    /// Authoritative name server (RFC 1035).
    public static let ns = RecordType(rawValue: 2)
    /// Canonical name (RFC 1035).
    public static let cname = RecordType(rawValue: 5)
    /// Start of authority (RFC 1035).
    public static let soa = RecordType(rawValue: 6)
    /// Domain name pointer (RFC 1035).
    public static let ptr = RecordType(rawValue: 12)
    /// Host information (RFC 1035; opaque here).
    public static let hinfo = RecordType(rawValue: 13)
    /// Mail exchange (RFC 1035).
    public static let mx = RecordType(rawValue: 15)
    /// Text strings (RFC 1035).
    public static let txt = RecordType(rawValue: 16)
    /// IPv6 address (RFC 3596).
    public static let aaaa = RecordType(rawValue: 28)
    /// Service location (RFC 2782).
    public static let srv = RecordType(rawValue: 33)
    /// Naming authority pointer (RFC 3403).
    public static let naptr = RecordType(rawValue: 35)
    /// Delegation name (RFC 6672; opaque here).
    public static let dname = RecordType(rawValue: 39)
    /// EDNS pseudo-record (RFC 6891).
    public static let opt = RecordType(rawValue: 41)
    /// Delegation signer (RFC 4034).
    public static let ds = RecordType(rawValue: 43)
    /// SSH key fingerprint (RFC 4255).
    public static let sshfp = RecordType(rawValue: 44)
    /// DNSSEC signature (RFC 4034).
    public static let rrsig = RecordType(rawValue: 46)
    /// Next secure record (RFC 4034).
    public static let nsec = RecordType(rawValue: 47)
    /// DNSSEC public key (RFC 4034).
    public static let dnskey = RecordType(rawValue: 48)
    /// Hashed next secure record (RFC 5155).
    public static let nsec3 = RecordType(rawValue: 50)
    /// NSEC3 parameters (RFC 5155).
    public static let nsec3param = RecordType(rawValue: 51)
    /// TLS certificate association (RFC 6698).
    public static let tlsa = RecordType(rawValue: 52)
    /// Incremental zone transfer (RFC 1995; query type).
    public static let ixfr = RecordType(rawValue: 251)
    /// Full zone transfer (RFC 5936; query type).
    public static let axfr = RecordType(rawValue: 252)
    /// Any type (RFC 1035 "*"; query type).
    public static let any = RecordType(rawValue: 255)
    /// Certification authority authorization (RFC 8659).
    public static let caa = RecordType(rawValue: 257)

    /// Mnemonics of the types known by name (IANA registry), for text in and out.
    static let mnemonics: [(UInt16, String)] = [
        (1, "A"), (2, "NS"), (3, "MD"), (4, "MF"), (5, "CNAME"), (6, "SOA"), (7, "MB"), (8, "MG"),
        (9, "MR"), (10, "NULL"), (11, "WKS"), (12, "PTR"), (13, "HINFO"), (14, "MINFO"), (15, "MX"),
        (16, "TXT"), (17, "RP"), (18, "AFSDB"), (19, "X25"), (20, "ISDN"), (21, "RT"), (22, "NSAP"),
        (24, "SIG"), (25, "KEY"), (26, "PX"), (27, "GPOS"), (28, "AAAA"), (29, "LOC"), (31, "EID"),
        (33, "SRV"), (35, "NAPTR"), (36, "KX"), (37, "CERT"), (38, "A6"), (39, "DNAME"), (41, "OPT"),
        (42, "APL"), (43, "DS"), (44, "SSHFP"), (45, "IPSECKEY"), (46, "RRSIG"), (47, "NSEC"),
        (48, "DNSKEY"), (49, "DHCID"), (50, "NSEC3"), (51, "NSEC3PARAM"), (52, "TLSA"), (53, "SMIMEA"),
        (55, "HIP"), (59, "CDS"), (60, "CDNSKEY"), (61, "OPENPGPKEY"), (62, "CSYNC"), (63, "ZONEMD"),
        (64, "SVCB"), (65, "HTTPS"), (99, "SPF"), (108, "EUI48"), (109, "EUI64"), (249, "TKEY"),
        (250, "TSIG"), (251, "IXFR"), (252, "AXFR"), (253, "MAILB"), (254, "MAILA"), (255, "ANY"),
        (256, "URI"), (257, "CAA"), (32768, "TA"), (32769, "DLV"),
    ]

    /// "A", "aaaa", "TYPE65280" (case-insensitive); nil for anything else.
    public init?(mnemonic: String) {
        guard let value = parseMnemonic(Array(mnemonic.utf8).span, table: Self.mnemonics, generic: "TYPE") else { return nil }
        rawValue = value
    }

    /// The type named by raw token bytes ("A", "TYPE65280"); nil if none.
    public init?(mnemonic bytes: Span<UInt8>) {
        guard let value = parseMnemonic(bytes, table: Self.mnemonics, generic: "TYPE") else { return nil }
        rawValue = value
    }

    /// "A", "NSEC3PARAM", "TYPE65280".
    public var description: String {
        for (value, name) in Self.mnemonics where value == rawValue { return name }
        return "TYPE\(rawValue)"
    }

    /// Numeric order, as type bitmaps list types (RFC 4034 §4.1.2).
    public static func < (a: RecordType, b: RecordType) -> Bool { a.rawValue < b.rawValue }
}

/// Looks `text` up in `table` case-insensitively, else reads `generic`
/// followed by a decimal number of at most 65535 ("TYPE65280", "CLASS5").
func parseMnemonic(_ text: Span<UInt8>, table: [(UInt16, String)], generic: String) -> UInt16? {
    for (value, name) in table where matchesFolded(text, name) { return value }
    var prefix = 0
    for c in generic.utf8 {
        guard prefix < text.count, asciiLower(text[prefix]) == asciiLower(c) else { return nil }
        prefix += 1
    }
    guard prefix < text.count else { return nil }
    var value: UInt32 = 0
    for i in prefix..<text.count {
        guard isDigit(text[i]) else { return nil }
        value = value * 10 + UInt32(text[i] - 48)
        guard value <= 65535 else { return nil }
    }
    return UInt16(truncatingIfNeeded: value)
}

/// Whether `text` equals `name` once ASCII case is folded.
func matchesFolded(_ text: Span<UInt8>, _ name: String) -> Bool {
    var i = 0
    for c in name.utf8 {
        guard i < text.count, asciiEqual(text[i], c) else { return false }
        i += 1
    }
    return i == text.count
}
