import MirageDevices

/// A checked view of a BOOTP/DHCP message (RFC 2131 §2, RFC 2132).
/// Options are walked once at construction, so a malformed option list is
/// refused up front and `options` afterwards cannot fail.
public struct DHCPMessage: ~Escapable {
    enum Offset {
        static let op = 0
        static let htype = 1
        static let hlen = 2
        static let xid = 4
        static let secs = 8
        static let flags = 10
        static let ciaddr = 12
        static let yiaddr = 16
        static let siaddr = 20
        static let giaddr = 24
        static let chaddr = 28
        static let sname = 44
        static let file = 108
        static let cookie = 236
        static let options = 240
    }

    /// Fixed fields plus the magic cookie (RFC 2131 §3).
    public static let minimumLength = 240
    /// The magic cookie 99.130.83.99.
    public static let magicCookie: UInt32 = 0x6382_5363
    /// BOOTREQUEST.
    public static let bootRequest: UInt8 = 1
    /// BOOTREPLY.
    public static let bootReply: UInt8 = 2
    static let snameLength = 64
    static let fileLength = 128

    /// The message bytes.
    public let bytes: Span<UInt8>
    /// Option 52 (overload): 1 = `file` holds options, 2 = `sname`, 3 = both.
    let overload: UInt8

    /// Checks the fixed part, the cookie, and every option's length in the
    /// options field and in any overloaded `file`/`sname` field.
    @_lifetime(copy bytes)
    public init(checking bytes: Span<UInt8>) throws(TCPIPError) {
        guard bytes.count >= Self.minimumLength else {
            throw .truncated(layer: .dhcp, expected: Self.minimumLength, got: bytes.count)
        }
        let cookie = bytes.u32(at: Offset.cookie)
        guard cookie == Self.magicCookie else { throw .badDHCPCookie(cookie) }
        var overload: UInt8 = 0
        let main = bytes.extracting(Offset.options...)
        try Self.validate(main) { code, value in
            if code == DHCPOption.overload, value.count == 1 { overload = value[0] & 3 }
        }
        if overload & 1 != 0 {
            try Self.validate(bytes.extracting(Offset.file..<(Offset.file + Self.fileLength))) { _, _ in }
        }
        if overload & 2 != 0 {
            try Self.validate(bytes.extracting(Offset.sname..<(Offset.sname + Self.snameLength))) { _, _ in }
        }
        self.bytes = bytes
        self.overload = overload
    }

    /// Walks an option field: pad (0) and end (255) are single bytes, every
    /// other option is code, length, value. Stops at end or the field's end.
    static func validate(_ field: Span<UInt8>, _ visit: (UInt8, Span<UInt8>) -> Void) throws(TCPIPError) {
        var i = 0
        while i < field.count {
            let code = field[i]
            if code == DHCPOption.pad { i += 1; continue }
            if code == DHCPOption.end { return }
            guard i + 1 < field.count else { throw .malformedDHCPOption(code: code) }
            let length = Int(field[i + 1])
            guard i + 2 + length <= field.count else { throw .malformedDHCPOption(code: code) }
            visit(code, field.extracting((i + 2)..<(i + 2 + length)))
            i += 2 + length
        }
    }

    /// BOOTREQUEST or BOOTREPLY.
    public var op: UInt8 { bytes[Offset.op] }
    /// Transaction ID.
    public var xid: UInt32 { bytes.u32(at: Offset.xid) }
    /// Flags (bit 15: broadcast).
    public var flags: UInt16 { bytes.u16(at: Offset.flags) }
    /// Client address (when renewing).
    public var ciaddr: IPv4Address { IPv4Address(rawValue: bytes.u32(at: Offset.ciaddr)) }
    /// "Your" address: the address offered or assigned.
    public var yiaddr: IPv4Address { IPv4Address(rawValue: bytes.u32(at: Offset.yiaddr)) }
    /// Next server address.
    public var siaddr: IPv4Address { IPv4Address(rawValue: bytes.u32(at: Offset.siaddr)) }
    /// Client hardware address, when Ethernet (htype 1, hlen 6).
    public var clientHardwareAddress: MACAddress? {
        guard bytes[Offset.htype] == 1, bytes[Offset.hlen] == 6 else { return nil }
        return readMAC(bytes, Offset.chaddr)
    }

    /// Calls `body` with each option (code and value) in order: the options
    /// field, then `file`, then `sname` when overloaded (RFC 2131 §4.1).
    public func forEachOption(_ body: (UInt8, Span<UInt8>) -> Void) {
        try? Self.validate(bytes.extracting(Offset.options...), body)
        if overload & 1 != 0 { try? Self.validate(bytes.extracting(Offset.file..<(Offset.file + Self.fileLength)), body) }
        if overload & 2 != 0 { try? Self.validate(bytes.extracting(Offset.sname..<(Offset.sname + Self.snameLength)), body) }
    }
}

/// DHCP option codes used here (RFC 2132).
public enum DHCPOption {
    /// Pad.
    public static let pad: UInt8 = 0
    /// Subnet mask (§3.3).
    public static let subnetMask: UInt8 = 1
    /// Routers (§3.5).
    public static let router: UInt8 = 3
    /// Domain name servers (§3.8).
    public static let domainNameServer: UInt8 = 6
    /// Interface MTU (§5.1).
    public static let interfaceMTU: UInt8 = 26
    /// Requested IP address (§9.1).
    public static let requestedAddress: UInt8 = 50
    /// IP address lease time (§9.2).
    public static let leaseTime: UInt8 = 51
    /// Option overload (§9.3).
    public static let overload: UInt8 = 52
    /// DHCP message type (§9.6).
    public static let messageType: UInt8 = 53
    /// Server identifier (§9.7).
    public static let serverIdentifier: UInt8 = 54
    /// Parameter request list (§9.8).
    public static let parameterRequestList: UInt8 = 55
    /// Maximum DHCP message size (§9.10).
    public static let maximumMessageSize: UInt8 = 57
    /// Renewal (T1) time (§9.11).
    public static let renewalTime: UInt8 = 58
    /// Rebinding (T2) time (§9.12).
    public static let rebindingTime: UInt8 = 59
    /// Client identifier (§9.14).
    public static let clientIdentifier: UInt8 = 61
    /// End.
    public static let end: UInt8 = 255
}

/// DHCP message types (RFC 2132 §9.6).
public enum DHCPMessageType: UInt8, Sendable {
    case discover = 1, offer, request, decline, ack, nak, release, inform
}
