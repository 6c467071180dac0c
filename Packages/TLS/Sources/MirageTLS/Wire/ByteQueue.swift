import MirageDevices

/// A FIFO of bytes for the reassemblers: appends at the back, consumes from
/// the front without moving the rest each time (the consumed prefix is
/// dropped once it is larger than what is left).
struct ByteQueue {
    private var storage: [UInt8] = []
    private var start = 0

    /// Bytes buffered and not yet consumed.
    var count: Int { storage.count - start }

    /// Appends bytes at the back.
    mutating func append(_ bytes: Span<UInt8>) {
        compactIfWorthIt()
        storage.append(span: bytes)
    }

    /// Appends bytes at the back.
    mutating func append(_ bytes: [UInt8]) {
        compactIfWorthIt()
        storage.append(contentsOf: bytes)
    }

    /// The byte `offset` places from the front; the caller checked `offset < count`.
    subscript(offset: Int) -> UInt8 { storage[start + offset] }

    /// Removes and returns the first `n` bytes; the caller checked `n <= count`.
    mutating func take(_ n: Int) -> [UInt8] {
        let bytes = Array(storage[start..<start + n])
        start += n
        if start == storage.count {
            storage.removeAll(keepingCapacity: true)
            start = 0
        }
        return bytes
    }

    private mutating func compactIfWorthIt() {
        if start > 0 && start >= count {
            storage.removeFirst(start)
            start = 0
        }
    }
}
