/// Bulk byte copies between spans: the one audited place where the cores
/// drop to buffer pointers, because `MutableSpan` offers no bulk update
/// from a `Span` yet and a bounds-checked loop per byte dominated the cost
/// of sending (see Docs/PERFORMANCE.md).
extension MutableSpan where Element == UInt8 {
    /// Copies `source` to `offset...`; the caller guarantees the room
    /// (checked: a violation is a programming error, not bad input).
    public mutating func copy(_ source: Span<UInt8>, to offset: Int) {
        let count = source.count
        precondition(offset >= 0 && count <= self.count - offset, "copy past the end of the buffer")
        guard count > 0 else { return }
        withUnsafeMutableBufferPointer { destination in
            source.withUnsafeBufferPointer { from in
                guard let to = destination.baseAddress, let base = from.baseAddress else { return }
                (to + offset).update(from: base, count: count)
            }
        }
    }
}

extension Array where Element == UInt8 {
    /// Appends `source` in one bulk copy.
    public mutating func append(span source: Span<UInt8>) {
        source.withUnsafeBufferPointer { append(contentsOf: $0) }
    }
}
