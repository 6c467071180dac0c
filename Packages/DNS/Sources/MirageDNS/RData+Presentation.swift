extension RData {
    /// Presentation form: fields after the type in a zone file. Tokens keep their
    /// backslash escapes (undecoded) so names can tell "\." from "."; quotes are stripped.
    /// Handles the generic "\# LEN HEX" form (RFC 3597 §5) for every type.
    public init(type: RecordType, presentation tokens: [ZoneToken], origin: DomainName) throws(DNSError) {
        throw .syntax(reason: "not yet")
    }

    /// Presentation text of the data ("10 mail.example.com.", "\"v=spf1 -all\"").
    public var presentation: String { "" }
}
