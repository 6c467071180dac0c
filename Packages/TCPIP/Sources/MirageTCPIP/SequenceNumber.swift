/// A TCP sequence number: arithmetic and comparison modulo 2^32 (RFC 9293
/// §3.4). `a < b` means `b` is ahead of `a` by less than 2^31, which is
/// meaningful only between numbers within half the space of each other —
/// always true of the numbers a connection compares.
public struct SequenceNumber: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The 32-bit value on the wire.
    public var rawValue: UInt32

    /// The sequence number `rawValue`.
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    /// Ordering modulo 2^32.
    public static func < (a: SequenceNumber, b: SequenceNumber) -> Bool {
        Int32(bitPattern: a.rawValue &- b.rawValue) < 0
    }

    /// `n` bytes later (wrapping).
    public static func + (a: SequenceNumber, n: Int) -> SequenceNumber {
        SequenceNumber(a.rawValue &+ UInt32(truncatingIfNeeded: n))
    }

    /// `n` bytes earlier (wrapping).
    public static func - (a: SequenceNumber, n: Int) -> SequenceNumber {
        SequenceNumber(a.rawValue &- UInt32(truncatingIfNeeded: n))
    }

    /// Signed distance from `b` to `a` (positive when `a` is ahead).
    public static func - (a: SequenceNumber, b: SequenceNumber) -> Int {
        Int(Int32(bitPattern: a.rawValue &- b.rawValue))
    }

    /// Whether `self` lies in `low..<high` modulo 2^32 (RFC 9293's
    /// `low =< x < high` for the window checks of §3.10.7.4).
    public func isIn(_ low: SequenceNumber, _ high: SequenceNumber) -> Bool {
        (rawValue &- low.rawValue) < (high.rawValue &- low.rawValue)
    }

    public var description: String { "\(rawValue)" }
}
