/// One EDNS option (RFC 6891 §6.1.2): a code and opaque data.
public struct EDNSOption: Hashable, Sendable {
    /// OPTION-CODE.
    public var code: UInt16
    /// OPTION-DATA.
    public var data: [UInt8]

    /// An option with this code and data.
    public init(code: UInt16, data: [UInt8]) {
        self.code = code
        self.data = data
    }
}

/// The EDNS(0) information an OPT pseudo-record carries (RFC 6891 §6.1).
public struct EDNS: Hashable, Sendable {
    /// The UDP payload size we offer (the DNS Flag Day 2020 value: fits an
    /// IPv6 minimum-MTU path without fragmentation).
    public static let ourPayloadSize: UInt16 = 1232
    /// The OPT record's fixed part: root owner, TYPE, CLASS, TTL, RDLENGTH.
    static let fixedSize = 11

    /// OPT CLASS: the requestor's UDP payload size (values < 512 treated as 512 by users, RFC 6891 §6.2.3).
    public var payloadSize: UInt16
    /// High 8 bits of the 12-bit rcode.
    public var extendedRCode: UInt8
    /// EDNS version (0 here; others earn BADVERS, RFC 6891 §6.1.3).
    public var version: UInt8
    /// DO: DNSSEC records wanted (RFC 3225).
    public var dnssecOK: Bool
    /// Options, in order.
    public var options: [EDNSOption]

    /// Version 0, no extended rcode, no options.
    public init(payloadSize: UInt16 = EDNS.ourPayloadSize, dnssecOK: Bool = false) {
        self.payloadSize = payloadSize
        extendedRCode = 0
        version = 0
        self.dnssecOK = dnssecOK
        options = []
    }

    /// Reads an OPT record's CLASS, TTL and RDATA (RFC 6891 §6.1.2-§6.1.3).
    /// The Z bits other than DO are ignored, as §6.1.4 asks.
    init(payloadSize: UInt16, ttl: UInt32, data r: inout MessageReader) throws(DNSError) {
        self.payloadSize = payloadSize
        extendedRCode = UInt8(truncatingIfNeeded: ttl >> 24)
        version = UInt8(truncatingIfNeeded: ttl >> 16)
        dnssecOK = ttl & 0x8000 != 0
        options = []
        while r.remaining > 0 {
            guard r.remaining >= 4 else { throw .badRecordData(type: RecordType.opt.rawValue, reason: "EDNS option header cut short") }
            let code = try r.u16()
            let length = Int(try r.u16())
            guard length <= r.remaining else { throw .badRecordData(type: RecordType.opt.rawValue, reason: "EDNS option longer than the OPT data") }
            options.append(EDNSOption(code: code, data: try r.bytes(length)))
        }
    }

    /// The OPT TTL field: extended rcode, version, DO.
    var ttl: UInt32 {
        UInt32(extendedRCode) << 24 | UInt32(version) << 16 | (dnssecOK ? 0x8000 : 0)
    }

    /// Size of the OPT record in a message.
    var encodedSize: Int {
        var n = Self.fixedSize
        for o in options { n += 4 + o.data.count }
        return n
    }

    /// Writes the OPT record (root owner, RFC 6891 §6.1.2).
    func write(into w: inout MessageWriter) throws(DNSError) {
        try w.write(UInt8(0))
        try w.write(RecordType.opt.rawValue)
        try w.write(payloadSize)
        try w.write(ttl)
        let lengthAt = w.count
        try w.write(UInt16(0))
        for o in options {
            guard o.data.count <= Int(UInt16.max) else { throw .badRecordData(type: RecordType.opt.rawValue, reason: "EDNS option over 65535 bytes") }
            try w.write(o.code)
            try w.write(UInt16(truncatingIfNeeded: o.data.count))
            try w.write(o.data)
        }
        let length = w.count - lengthAt - 2
        guard length <= Int(UInt16.max) else { throw .badRecordData(type: RecordType.opt.rawValue, reason: "OPT data over 65535 bytes") }
        w.patch(UInt16(truncatingIfNeeded: length), at: lengthAt)
    }
}
