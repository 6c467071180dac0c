/// A fixed-capacity ring of bytes: the storage of TCP's send and receive
/// buffers. Appends copy in, reads copy out into a caller's buffer or hand
/// out the (at most two) contiguous spans; nothing reallocates after init.
public struct ByteRing {
    private var storage: [UInt8]
    private var start = 0
    /// Bytes held.
    public private(set) var count = 0

    /// A ring holding at most `capacity` bytes.
    public init(capacity: Int) {
        precondition(capacity > 0, "a ring needs room")
        storage = [UInt8](repeating: 0, count: capacity)
    }

    /// The most bytes the ring holds.
    public var capacity: Int { storage.count }
    /// Bytes that can still be appended.
    public var freeSpace: Int { storage.count - count }
    /// Whether nothing is held.
    public var isEmpty: Bool { count == 0 }

    /// Appends as much of `bytes` as fits; returns how much that was.
    @discardableResult
    public mutating func append(_ bytes: Span<UInt8>) -> Int {
        let n = min(bytes.count, freeSpace)
        var end = (start + count) % storage.count
        var i = 0
        while i < n {
            let run = min(n - i, storage.count - end)
            var destination = storage.mutableSpan
            destination.copy(bytes.extracting(i..<(i + run)), to: end)
            _ = consume destination
            i += run
            end = (end + run) % storage.count
        }
        count += n
        return n
    }

    /// Writes into `buffer` at `at` the `length` bytes that begin `offset`
    /// bytes into the ring. The range must be held.
    public func copy(from offset: Int, length: Int, into buffer: inout MutableSpan<UInt8>, at: Int) {
        precondition(offset >= 0 && length >= 0 && offset + length <= count, "read past the bytes held")
        var done = 0
        var position = (start + offset) % storage.count
        while done < length {
            let run = min(length - done, storage.count - position)
            buffer.copy(storage.span.extracting(position..<(position + run)), to: at + done)
            done += run
            position = (position + run) % storage.count
        }
    }

    /// Calls `body` with the held bytes from `offset` on, as one or two
    /// contiguous spans in order (the ring wraps at most once).
    public func withBytes(from offset: Int, length: Int, _ body: (Span<UInt8>) -> Void) {
        precondition(offset >= 0 && length >= 0 && offset + length <= count, "read past the bytes held")
        var done = 0
        var position = (start + offset) % storage.count
        while done < length {
            let run = min(length - done, storage.count - position)
            body(storage.span.extracting(position..<(position + run)))
            done += run
            position = (position + run) % storage.count
        }
    }

    /// Forgets the first `n` bytes (acknowledged, or read by the application).
    public mutating func discard(_ n: Int) {
        precondition(n >= 0 && n <= count, "discard past the bytes held")
        start = (start + n) % storage.count
        count -= n
        if count == 0 { start = 0 }
    }
}
