/// The 12-byte message header (RFC 1035 §4.1.1).
public struct Header: Hashable, Sendable {
    /// Size of the header in bytes.
    public static let size = 12

    /// Transaction ID, copied into the answer.
    public var id: UInt16
    /// QR: the message is a response.
    public var isResponse: Bool
    /// OPCODE: the kind of query.
    public var opcode: Opcode
    /// AA: the answer comes from an authority for the name.
    public var isAuthoritative: Bool
    /// TC: the message was truncated to fit the transport.
    public var isTruncated: Bool
    /// RD: the client wants recursion.
    public var recursionDesired: Bool
    /// RA: the server offers recursion.
    public var recursionAvailable: Bool
    /// AD: authentic data (RFC 4035 §3.2.3).
    public var authenticData: Bool
    /// CD: checking disabled (RFC 4035 §3.2.2).
    public var checkingDisabled: Bool
    /// The low 4 bits of the response code (RCODE field); EDNS carries the rest.
    public var responseCode: UInt8
    /// QDCOUNT.
    public var questionCount: UInt16
    /// ANCOUNT.
    public var answerCount: UInt16
    /// NSCOUNT.
    public var authorityCount: UInt16
    /// ARCOUNT (the OPT record included).
    public var additionalCount: UInt16

    /// A query header with this ID; every flag false, every count 0, opcode QUERY.
    public init(id: UInt16 = 0) {
        self.id = id
        isResponse = false
        opcode = .query
        isAuthoritative = false
        isTruncated = false
        recursionDesired = false
        recursionAvailable = false
        authenticData = false
        checkingDisabled = false
        responseCode = 0
        questionCount = 0
        answerCount = 0
        authorityCount = 0
        additionalCount = 0
    }

    /// Parses the first 12 bytes of `bytes`. The Z bit (RFC 1035 §4.1.1,
    /// "must be zero") is ignored, as RFC 6895 §2.1 leaves it reserved.
    public init(parsing bytes: Span<UInt8>) throws(DNSError) {
        guard bytes.count >= Self.size else { throw .truncated(offset: bytes.count, needed: Self.size - bytes.count) }
        func u16(_ i: Int) -> UInt16 { UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]) }
        id = u16(0)
        let flags = u16(2)
        isResponse = flags & 0x8000 != 0
        opcode = Opcode(rawValue: UInt8(truncatingIfNeeded: flags >> 11) & 0x0F)
        isAuthoritative = flags & 0x0400 != 0
        isTruncated = flags & 0x0200 != 0
        recursionDesired = flags & 0x0100 != 0
        recursionAvailable = flags & 0x0080 != 0
        authenticData = flags & 0x0020 != 0
        checkingDisabled = flags & 0x0010 != 0
        responseCode = UInt8(truncatingIfNeeded: flags) & 0x0F
        questionCount = u16(4)
        answerCount = u16(6)
        authorityCount = u16(8)
        additionalCount = u16(10)
    }

    /// The flags word (bytes 2-3).
    var flags: UInt16 {
        var f = UInt16(opcode.rawValue & 0x0F) << 11 | UInt16(responseCode & 0x0F)
        if isResponse { f |= 0x8000 }
        if isAuthoritative { f |= 0x0400 }
        if isTruncated { f |= 0x0200 }
        if recursionDesired { f |= 0x0100 }
        if recursionAvailable { f |= 0x0080 }
        if authenticData { f |= 0x0020 }
        if checkingDisabled { f |= 0x0010 }
        return f
    }

    /// Overwrites the 12 bytes at `offset` (which the caller has made room for).
    public func emit(into buffer: inout [UInt8], at offset: Int) {
        precondition(offset >= 0 && offset + Self.size <= buffer.count, "no room for the header")
        func put(_ value: UInt16, _ i: Int) {
            buffer[offset + i] = UInt8(truncatingIfNeeded: value >> 8)
            buffer[offset + i + 1] = UInt8(truncatingIfNeeded: value)
        }
        put(id, 0)
        put(flags, 2)
        put(questionCount, 4)
        put(answerCount, 6)
        put(authorityCount, 8)
        put(additionalCount, 10)
    }
}

/// The OPCODE header field (RFC 1035 §4.1.1, RFC 1996, RFC 2136).
public struct Opcode: RawRepresentable, Hashable, Sendable {
    /// The 4-bit value.
    public var rawValue: UInt8
    /// The opcode with value `rawValue`.
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// A standard query.
    public static let query = Opcode(rawValue: 0)
    /// An inverse query (obsolete, RFC 3425).
    public static let iquery = Opcode(rawValue: 1)
    /// A server status request.
    public static let status = Opcode(rawValue: 2)
    /// A zone change notification (RFC 1996).
    public static let notify = Opcode(rawValue: 4)
    /// A dynamic update (RFC 2136).
    public static let update = Opcode(rawValue: 5)
}

/// A response code, extended to 12 bits by EDNS (RFC 6891 §6.1.3).
public struct ResponseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// 12-bit extended rcode (EDNS high bits << 4 | header low 4).
    public var rawValue: UInt16
    /// The code with value `rawValue`.
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// NOERROR.
    public static let noError = ResponseCode(rawValue: 0)
    /// FORMERR: the server could not interpret the query.
    public static let formatError = ResponseCode(rawValue: 1)
    /// SERVFAIL.
    public static let serverFailure = ResponseCode(rawValue: 2)
    /// NXDOMAIN: the name does not exist.
    public static let nameError = ResponseCode(rawValue: 3)
    /// NOTIMP.
    public static let notImplemented = ResponseCode(rawValue: 4)
    /// REFUSED.
    public static let refused = ResponseCode(rawValue: 5)
    /// BADVERS: unsupported EDNS version (RFC 6891 §6.1.3).
    public static let badVersion = ResponseCode(rawValue: 16)

    /// The low 4 bits, for the header's RCODE field.
    public var headerBits: UInt8 { UInt8(truncatingIfNeeded: rawValue) & 0x0F }
    /// The high 8 bits, for the OPT record's EXTENDED-RCODE.
    public var extendedBits: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 4) }

    /// "NOERROR", "NXDOMAIN", …, "RCODE12".
    public var description: String {
        switch rawValue {
        case 0: "NOERROR"
        case 1: "FORMERR"
        case 2: "SERVFAIL"
        case 3: "NXDOMAIN"
        case 4: "NOTIMP"
        case 5: "REFUSED"
        case 6: "YXDOMAIN"
        case 7: "YXRRSET"
        case 8: "NXRRSET"
        case 9: "NOTAUTH"
        case 10: "NOTZONE"
        case 16: "BADVERS"
        default: "RCODE\(rawValue)"
        }
    }
}
