import MirageDevices

/// A TCP connection of the async front: `read` until nil, `write` (which
/// waits while the stack applies back-pressure), `shutdownWrite`, `close`.
///
/// One `read` and one `write` may wait at a time (a second one throws
/// `busy`). Received bytes are copied once out of the stack's borrowed
/// buffer; when more than `receiveBufferLimit` bytes wait unread, reading
/// pauses (the peer's window closes) until `read` takes them.
///
/// `@unchecked Sendable`: its state is touched on the loop thread only.
public final class AsyncTCPConnection: TCPHandler, @unchecked Sendable {
    /// Unread bytes held before reading pauses (256 KiB).
    public static let receiveBufferLimit = 256 * 1024

    /// The stack's handle.
    public let id: ConnectionID
    /// Our end of the connection.
    public let localEndpoint: Endpoint?
    /// The peer's end.
    public let remoteEndpoint: Endpoint?

    private let front: AsyncStack
    private var chunks: [[UInt8]] = []
    private var chunkHead = 0
    private var buffered = 0
    private var paused = false
    private var peerFinished = false
    private var writeShut = false
    private var closeReason: CloseReason?
    private var readWaiter: LoopWaiter<[UInt8]?>?
    private var writeWaiter: LoopWaiter<Void>?
    private var pendingWrite: [UInt8] = []
    private var pendingOffset = 0
    private var closeWaiters: [LoopWaiter<CloseReason>] = []

    init(front: AsyncStack, id: ConnectionID, endpoints: (local: Endpoint, remote: Endpoint)?) {
        self.front = front
        self.id = id
        localEndpoint = endpoints?.local
        remoteEndpoint = endpoints?.remote
    }

    private var stack: any Stack { front.stack }

    // MARK: Reading

    /// The next bytes received (everything buffered so far, at least one
    /// byte), or nil once the peer finished sending (or the connection was
    /// closed normally). Throws `closed(reason)` when the connection ended
    /// otherwise, after the bytes received before it.
    public func read() async throws(AsyncStackError) -> [UInt8]? {
        try await front.suspend { [self] waiter in
            installRead(waiter)
        } onCancel: { [self] waiter in
            guard readWaiter === waiter else { return }
            readWaiter = nil
            waiter.resume(.failure(.cancelled))
        }
    }

    private func installRead(_ waiter: LoopWaiter<[UInt8]?>) {
        guard readWaiter == nil else {
            waiter.resume(.failure(.busy))
            return
        }
        if let bytes = takeBuffered() {
            waiter.resume(.success(bytes))
        } else if let result = endOfReading() {
            waiter.resume(result)
        } else {
            readWaiter = waiter
        }
    }

    /// What a read gets once nothing is buffered: nil at the end, the
    /// reason when the connection ended badly, nil while reading goes on.
    private func endOfReading() -> Result<[UInt8]?, AsyncStackError>? {
        if peerFinished { return .success(nil) }
        guard let closeReason else { return nil }
        return closeReason == .normal ? .success(nil) : .failure(.closed(closeReason))
    }

    /// Everything buffered, in one array, and reading resumed if it was paused.
    private func takeBuffered() -> [UInt8]? {
        guard buffered > 0 else { return nil }
        var bytes: [UInt8]
        if chunks.count - chunkHead == 1 {
            bytes = chunks[chunkHead]
        } else {
            bytes = []
            bytes.reserveCapacity(buffered)
            for chunk in chunks[chunkHead...] { bytes += chunk }
        }
        chunks.removeAll(keepingCapacity: true)
        chunkHead = 0
        buffered = 0
        if paused && closeReason == nil {
            paused = false
            stack.resumeReading(id)
        }
        return bytes
    }

    // MARK: Writing

    /// Sends all of `bytes`, waiting while the stack takes less than
    /// offered. Throws `closed(reason)` when the connection ends first,
    /// `device(.notConnected)` after `shutdownWrite` or `close`. Cancelling
    /// the task stops the write; bytes already taken stay sent.
    public func write(_ bytes: [UInt8]) async throws(AsyncStackError) {
        guard !bytes.isEmpty else { return }
        try await front.suspend { [self] (waiter: LoopWaiter<Void>) in
            guard writeWaiter == nil else {
                waiter.resume(.failure(.busy))
                return
            }
            if let closeReason {
                waiter.resume(.failure(.closed(closeReason)))
                return
            }
            guard !writeShut else {
                waiter.resume(.failure(.device(.notConnected)))
                return
            }
            pendingWrite = bytes
            pendingOffset = 0
            writeWaiter = waiter
            continueWriting()
        } onCancel: { [self] waiter in
            guard writeWaiter === waiter else { return }
            finishWrite(.failure(.cancelled))
        }
    }

    /// Sends `text` as UTF-8.
    public func write(_ text: String) async throws(AsyncStackError) {
        try await write(Array(text.utf8))
    }

    private func continueWriting() {
        guard writeWaiter != nil else { return }
        let bytes = pendingWrite
        let taken: Int
        do throws(DeviceError) {
            taken = try stack.write(bytes.span.extracting(pendingOffset..<bytes.count), on: id)
        } catch {
            finishWrite(.failure(closeReason.map { .closed($0) } ?? .device(error)))
            return
        }
        pendingOffset += taken
        // A short write: `writable` follows.
        if pendingOffset == bytes.count { finishWrite(.success(())) }
    }

    private func finishWrite(_ result: Result<Void, AsyncStackError>) {
        guard let waiter = writeWaiter else { return }
        writeWaiter = nil
        pendingWrite = []
        pendingOffset = 0
        waiter.resume(result)
    }

    /// Sends FIN after what was written (half-close); reading goes on.
    /// Throws `busy` while a write waits.
    public func shutdownWrite() async throws(AsyncStackError) {
        try await front.perform { [self] () throws(AsyncStackError) in
            guard writeWaiter == nil else { throw .busy }
            writeShut = true
            stack.shutdownWrite(id)
        }
    }

    // MARK: Closing

    /// Graceful close: FIN after what was written, no more bytes read. The
    /// connection ends when the peer finishes too (`waitClosed`).
    public func close() async {
        try? await front.perform { [self] () throws(AsyncStackError) in
            writeShut = true
            finishWrite(.failure(.device(.notConnected)))
            stack.close(id)
        }
    }

    /// Abortive close: RST now; whatever is unsent is dropped.
    public func abort() async {
        try? await front.perform { [self] () throws(AsyncStackError) in
            stack.abort(id)
        }
    }

    /// Waits until the connection has ended and returns why.
    public func waitClosed() async throws(AsyncStackError) -> CloseReason {
        try await front.suspend { [self] waiter in
            if let closeReason {
                waiter.resume(.success(closeReason))
            } else {
                closeWaiters.append(waiter)
            }
        } onCancel: { [self] waiter in
            guard closeWaiters.contains(where: { $0 === waiter }) else { return }
            closeWaiters.removeAll { $0 === waiter }
            waiter.resume(.failure(.cancelled))
        }
    }

    // MARK: TCPHandler (loop thread)

    public func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {}

    public func connectionEstablished(_ connection: ConnectionID) {}

    public func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {
        guard !bytes.isEmpty else { return }
        let copy = copyBytes(bytes)
        if let waiter = readWaiter, buffered == 0 {
            readWaiter = nil
            waiter.resume(.success(copy))
            return
        }
        chunks.append(copy)
        buffered += copy.count
        if buffered > Self.receiveBufferLimit && !paused {
            paused = true
            stack.pauseReading(id)
        }
    }

    public func endOfStream(on connection: ConnectionID) {
        peerFinished = true
        wakeReader()
    }

    public func writable(_ connection: ConnectionID) {
        continueWriting()
    }

    public func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {
        closeReason = reason
        wakeReader()
        finishWrite(.failure(.closed(reason)))
        let waiters = closeWaiters
        closeWaiters = []
        for waiter in waiters { waiter.resume(.success(reason)) }
    }

    private func wakeReader() {
        guard let waiter = readWaiter else { return }
        if let bytes = takeBuffered() {
            readWaiter = nil
            waiter.resume(.success(bytes))
        } else if let result = endOfReading() {
            readWaiter = nil
            waiter.resume(result)
        }
    }
}
