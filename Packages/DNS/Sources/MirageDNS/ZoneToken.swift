/// One whitespace-separated field of a zone file line, as the zone lexer
/// hands it to `RData(type:presentation:origin:)`.
public struct ZoneToken: Hashable, Sendable {
    /// Raw bytes, backslash escapes NOT decoded, surrounding quotes removed.
    public var text: [UInt8]
    /// Whether the field was a quoted string.
    public var quoted: Bool

    /// A token with these bytes.
    public init(text: [UInt8], quoted: Bool) {
        self.text = text
        self.quoted = quoted
    }
}
