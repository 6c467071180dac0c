/// A resource record CLASS (RFC 1035 §3.2.4, §3.2.5).
public struct RecordClass: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The class number.
    public var rawValue: UInt16

    /// The class with number `rawValue`.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// The Internet.
    public static let `in` = RecordClass(rawValue: 1)
    /// Chaos (RFC 1035 §3.2.4).
    public static let ch = RecordClass(rawValue: 3)
    /// Hesiod.
    public static let hs = RecordClass(rawValue: 4)
    /// NONE (RFC 2136 §1.3, dynamic update).
    public static let none = RecordClass(rawValue: 254)
    /// ANY ("*", RFC 1035 §3.2.5; query class).
    public static let any = RecordClass(rawValue: 255)

    /// Mnemonics of the named classes.
    static let mnemonics: [(UInt16, String)] = [(1, "IN"), (3, "CH"), (4, "HS"), (254, "NONE"), (255, "ANY")]

    /// "IN", "CH", "CLASS5" (case-insensitive); nil for anything else.
    public init?(mnemonic: String) {
        guard let value = parseMnemonic(Array(mnemonic.utf8).span, table: Self.mnemonics, generic: "CLASS") else { return nil }
        rawValue = value
    }

    /// The class named by raw token bytes; nil if none.
    public init?(mnemonic bytes: Span<UInt8>) {
        guard let value = parseMnemonic(bytes, table: Self.mnemonics, generic: "CLASS") else { return nil }
        rawValue = value
    }

    /// "IN", "CH", "CLASS5".
    public var description: String {
        for (value, name) in Self.mnemonics where value == rawValue { return name }
        return "CLASS\(rawValue)"
    }
}
