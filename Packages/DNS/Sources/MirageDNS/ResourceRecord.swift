/// A resource record (RFC 1035 §3.2.1, §4.1.3): owner, class, TTL and typed data.
public struct ResourceRecord: Hashable, Sendable {
    /// The owner name.
    public var name: DomainName
    /// CLASS.
    public var `class`: RecordClass
    /// TTL in seconds.
    public var ttl: UInt32
    /// RDATA, which also determines TYPE.
    public var data: RData
    /// TYPE, from the data.
    public var type: RecordType { data.type }

    /// A record owned by `name`.
    public init(name: DomainName, class: RecordClass = .in, ttl: UInt32, data: RData) {
        self.name = name
        self.class = `class`
        self.ttl = ttl
        self.data = data
    }
}
