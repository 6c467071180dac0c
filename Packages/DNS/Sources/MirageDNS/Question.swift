/// One entry of the question section (RFC 1035 §4.1.2).
public struct Question: Hashable, Sendable {
    /// QNAME.
    public var name: DomainName
    /// QTYPE.
    public var type: RecordType
    /// QCLASS.
    public var `class`: RecordClass

    /// A question for `name`, `type`, `class`.
    public init(name: DomainName, type: RecordType, class: RecordClass = .in) {
        self.name = name
        self.type = type
        self.class = `class`
    }
}
