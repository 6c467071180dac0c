/// Bytes a connection state machine has produced and the driver has not
/// sent yet: appended at the end, consumed from the front as the stack
/// takes them, compacted only when the consumed prefix is large.
struct OutputQueue: Sendable {
    /// The bytes; the first `start` are already sent. Serializers append here.
    var bytes: [UInt8] = []
    private(set) var start = 0

    /// Bytes not sent yet.
    var count: Int { bytes.count - start }

    /// The bytes not sent yet, borrowed.
    func withUnsent<R, E: Error>(_ body: (Span<UInt8>) throws(E) -> R) throws(E) -> R {
        try body(bytes.span.extracting(start..<bytes.count))
    }

    /// `n` bytes were sent.
    mutating func consume(_ n: Int) {
        precondition(n >= 0 && n <= count, "consumed more output than there is")
        start += n
        if start == bytes.count {
            bytes.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 64 * 1024 && start > bytes.count / 2 {
            bytes.removeSubrange(0..<start)
            start = 0
        }
    }

    /// Forgets everything not sent (the peer will not read it).
    mutating func drop() {
        bytes.removeAll(keepingCapacity: false)
        start = 0
    }
}
