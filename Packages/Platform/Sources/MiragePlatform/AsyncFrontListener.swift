import MirageDevices

/// A TCP listener of the async front: an `AsyncSequence` of accepted
/// connections, which ends when the listener is closed.
///
/// Connections accepted while nobody waits in `accept` are held, at most
/// `pendingLimit` of them; past that they are aborted and counted in
/// `rejected`.
///
/// `@unchecked Sendable`: its state is touched on the loop thread only.
public final class AsyncTCPListener: TCPHandler, AsyncSequence, @unchecked Sendable {
    public typealias Element = AsyncTCPConnection
    public typealias Failure = AsyncStackError

    /// Accepted connections held for `accept` at most.
    public static let pendingLimit = 128

    private let front: AsyncStack
    private var id: ListenerID?
    /// Where the listener is bound (port 0 resolved to the chosen port).
    public private(set) var localEndpoint: Endpoint?
    private let queue = LoopQueue<AsyncTCPConnection>(limit: AsyncTCPListener.pendingLimit)
    private var rejectedCount = 0

    init(front: AsyncStack) { self.front = front }

    func opened(_ id: ListenerID, local: Endpoint?) {
        self.id = id
        localEndpoint = local
    }

    /// The next connection, or nil once the listener is closed.
    public func accept() async throws(AsyncStackError) -> AsyncTCPConnection? {
        try await queue.take(on: front)
    }

    /// Stops listening; connections already accepted are not affected, those
    /// not yet taken by `accept` are aborted. A waiting `accept` returns nil.
    public func close() async {
        try? await front.perform { [self] () throws(AsyncStackError) in
            guard !queue.isClosed else { return }
            if let id { front.stack.closeListener(id) }
            for connection in queue.close() { front.stack.abort(connection.id) }
        }
    }

    /// Connections aborted because `pendingLimit` were waiting.
    public var rejected: Int {
        get async {
            (try? await front.perform { [self] () throws(AsyncStackError) -> Int in rejectedCount }) ?? 0
        }
    }

    // MARK: AsyncSequence

    /// Accepts connections one after another.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let listener: AsyncTCPListener

        public mutating func next() async throws(AsyncStackError) -> AsyncTCPConnection? {
            try await listener.accept()
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async throws(AsyncStackError) -> AsyncTCPConnection? {
            try await listener.accept()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(listener: self) }

    // MARK: TCPHandler (loop thread)

    public func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {
        let stack = front.stack
        guard queue.hasRoom else {
            rejectedCount += 1
            stack.abort(connection)
            return
        }
        let async = AsyncTCPConnection(front: front, id: connection, endpoints: stack.endpoints(of: connection))
        do {
            try stack.setHandler(async, for: connection)
        } catch {
            return
        }
        _ = queue.offer(async)  // hasRoom said yes, on this same thread
    }

    public func connectionEstablished(_ connection: ConnectionID) {}
    public func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {}
    public func endOfStream(on connection: ConnectionID) {}
    public func writable(_ connection: ConnectionID) {}
    public func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {
        // Only connections rejected above still have the listener as handler.
    }
}
