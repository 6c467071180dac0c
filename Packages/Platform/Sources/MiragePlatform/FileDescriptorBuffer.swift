import Glibc

/// A fixed block of bytes that devices read into and write from, handed to
/// handlers as `Span`/`MutableSpan` views.
///
/// This is the audited place where MiragePlatform touches raw pointers: the
/// storage is allocated once, bound to `UInt8` and zeroed, every range is
/// checked against `capacity` (a bad range is a programming error of this
/// module, not input), and views never outlive the closure they are given
/// to. It is freed only in `deinit`, so a device closed from inside a
/// handler cannot pull the bytes from under the view the handler holds.
final class FileDescriptorBuffer {
    /// Size in bytes.
    let capacity: Int
    private let base: UnsafeMutablePointer<UInt8>

    /// A zeroed buffer of `capacity` bytes.
    init(capacity: Int) {
        precondition(capacity > 0, "a buffer needs at least one byte")
        self.capacity = capacity
        base = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
        base.initialize(repeating: 0, count: capacity)
    }

    deinit {
        base.deallocate()
    }

    private func check(_ range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= capacity, "range outside the buffer")
    }

    /// `read(2)` from `fd` into `offset..<capacity`: bytes read (0 at end of
    /// file) or `-errno`.
    func read(from fd: Int32, at offset: Int) -> Int {
        check(offset..<capacity)
        for _ in 0..<FileDescriptor.maximumInterruptedRetries {
            let n = Glibc.read(fd, base + offset, capacity - offset)
            if n >= 0 { return n }
            let code = errno
            if code != EINTR { return -Int(code) }
        }
        return -Int(EINTR)
    }

    /// `write(2)` of the bytes in `range` to `fd`: bytes written or `-errno`.
    func write(to fd: Int32, _ range: Range<Int>) -> Int {
        check(range)
        for _ in 0..<FileDescriptor.maximumInterruptedRetries {
            let n = Glibc.write(fd, base + range.lowerBound, range.count)
            if n >= 0 { return n }
            let code = errno
            if code != EINTR { return -Int(code) }
        }
        return -Int(EINTR)
    }

    /// Sets the bytes in `range` to zero.
    func zero(_ range: Range<Int>) {
        check(range)
        (base + range.lowerBound).update(repeating: 0, count: range.count)
    }

    /// Calls `body` with a read-only view of `range`, valid during the call.
    func withSpan<R, E: Error>(_ range: Range<Int>, _ body: (Span<UInt8>) throws(E) -> R) throws(E) -> R {
        check(range)
        let view = UnsafeBufferPointer(start: base + range.lowerBound, count: range.count)
        return try body(view.span)
    }

    /// Calls `body` with a mutable view of `range`, valid during the call.
    func withMutableSpan<R, E: Error>(_ range: Range<Int>, _ body: (inout MutableSpan<UInt8>) throws(E) -> R) throws(E) -> R {
        check(range)
        let view = UnsafeMutableBufferPointer(start: base + range.lowerBound, count: range.count)
        var span = view.mutableSpan
        return try body(&span)
    }
}
