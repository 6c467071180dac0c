/// What a descriptor registered on an `EventLoop` waits for.
struct FDInterest: OptionSet, Hashable, Sendable {
    let rawValue: UInt8
    init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Readable (EPOLLIN, plus EPOLLRDHUP so a peer's half-close wakes the reader).
    static let read = FDInterest(rawValue: 1 << 0)
    /// Writable (EPOLLOUT).
    static let write = FDInterest(rawValue: 1 << 1)
}

/// Receives readiness events of a descriptor registered on an `EventLoop`,
/// always on the loop's thread. The loop holds the handler strongly until
/// `unregister`.
protocol FDHandler: AnyObject {
    /// The descriptor is readable, or hung up (EPOLLHUP/EPOLLRDHUP) while
    /// read interest is set, so the reader drains what is left and sees
    /// end of file.
    func fdReadable(_ fd: Int32)
    /// The descriptor is writable and write interest is set.
    func fdWritable(_ fd: Int32)
    /// The descriptor failed: EPOLLERR (`errno` from SO_ERROR for a socket,
    /// EIO otherwise), or EPOLLHUP with no read interest set (EPIPE). Level
    /// triggered: it repeats every iteration until the handler unregisters
    /// the descriptor.
    func fdError(_ fd: Int32, errno: Int32)
}

/// Called once at the end of every loop iteration that did work, after all
/// of that iteration's events and queued bodies: the point where a stack
/// writes out what it batched (one ACK per batch, output written together).
protocol FlushHandler: AnyObject {
    /// Writes out batched output.
    func flush()
}
