import MirageDevices

/// An interface's IPv4 address, prefix and default gateway.
public struct IPv4Configuration: Hashable, Sendable, CustomStringConvertible {
    /// The interface's address.
    public var address: IPv4Address
    /// Prefix length, 0...32.
    public var prefixLength: Int
    /// The default gateway, if any (must be on-link).
    public var gateway: IPv4Address?

    /// A configuration; `prefixLength` must be 0...32.
    public init(address: IPv4Address, prefixLength: Int, gateway: IPv4Address? = nil) {
        precondition((0...32).contains(prefixLength), "prefix length must be 0...32")
        self.address = address
        self.prefixLength = prefixLength
        self.gateway = gateway
    }

    /// Parses `"10.0.0.2/24"`; nil when malformed.
    public init?(cidr: String, gateway: IPv4Address? = nil) {
        let parts = cidr.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = IPv4Address(String(parts[0])),
              let p = Int(String(parts[1])), (0...32).contains(p), parts[1].count <= 2 else { return nil }
        self.init(address: a, prefixLength: p, gateway: gateway)
    }

    /// The network mask.
    public var netmask: UInt32 { prefixLength == 0 ? 0 : UInt32.max << UInt32(32 - prefixLength) }
    /// The subnet's directed broadcast address.
    public var broadcast: IPv4Address { IPv4Address(rawValue: address.rawValue | ~netmask) }

    /// Whether `other` is on the same link.
    public func isOnLink(_ other: IPv4Address) -> Bool {
        other.rawValue & netmask == address.rawValue & netmask
    }

    public var description: String {
        "\(address)/\(prefixLength)" + (gateway.map { " via \($0)" } ?? "")
    }
}
