/// Counters of one network link, as the kernel reports them.
public struct LinkStatistics: Sendable, Equatable, CustomStringConvertible {
    /// Packets received.
    public var rxPackets: UInt64
    /// Packets sent.
    public var txPackets: UInt64
    /// Bytes received.
    public var rxBytes: UInt64
    /// Bytes sent.
    public var txBytes: UInt64
    /// Received packets dropped.
    public var rxDropped: UInt64
    /// Packets dropped on send.
    public var txDropped: UInt64
    /// Receive errors.
    public var rxErrors: UInt64
    /// Send errors.
    public var txErrors: UInt64

    /// Creates counters from explicit values.
    public init(
        rxPackets: UInt64 = 0, txPackets: UInt64 = 0, rxBytes: UInt64 = 0, txBytes: UInt64 = 0,
        rxDropped: UInt64 = 0, txDropped: UInt64 = 0, rxErrors: UInt64 = 0, txErrors: UInt64 = 0
    ) {
        self.rxPackets = rxPackets
        self.txPackets = txPackets
        self.rxBytes = rxBytes
        self.txBytes = txBytes
        self.rxDropped = rxDropped
        self.txDropped = txDropped
        self.rxErrors = rxErrors
        self.txErrors = txErrors
    }

    /// Parses one element of `ip -s -j link show` (its "stats64" object).
    init?(ipJSON link: [String: Any]) {
        guard let stats = link["stats64"] as? [String: Any] ?? link["stats"] as? [String: Any],
              let rx = stats["rx"] as? [String: Any],
              let tx = stats["tx"] as? [String: Any]
        else { return nil }
        func number(_ object: [String: Any], _ key: String) -> UInt64 {
            if let value = object[key] as? UInt64 { return value }
            if let value = object[key] as? Int, value >= 0 { return UInt64(value) }
            if let value = object[key] as? Double, value >= 0, value < 1.8e19 { return UInt64(value) }
            return 0
        }
        self.init(
            rxPackets: number(rx, "packets"), txPackets: number(tx, "packets"),
            rxBytes: number(rx, "bytes"), txBytes: number(tx, "bytes"),
            rxDropped: number(rx, "dropped"), txDropped: number(tx, "dropped"),
            rxErrors: number(rx, "errors"), txErrors: number(tx, "errors"))
    }

    public var description: String {
        "rx \(rxPackets) packets/\(rxBytes) bytes (\(rxDropped) dropped, \(rxErrors) errors), "
            + "tx \(txPackets) packets/\(txBytes) bytes (\(txDropped) dropped, \(txErrors) errors)"
    }
}
