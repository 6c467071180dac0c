import MirageDevices

/// The handler of an outgoing connection until it is established; then it
/// hands the connection to a new `AsyncTCPConnection`.
final class ConnectAttempt: TCPHandler, @unchecked Sendable {
    private let front: AsyncStack
    private var waiter: LoopWaiter<AsyncTCPConnection>?
    private var connection: ConnectionID?

    init(front: AsyncStack) { self.front = front }

    /// Loop thread.
    func start(_ waiter: LoopWaiter<AsyncTCPConnection>, remote: Endpoint, timeout: Interval?) {
        do {
            connection = try front.stack.connect(to: remote, timeout: timeout, handler: self)
            self.waiter = waiter
        } catch {
            waiter.resume(.failure(.device(error)))
        }
    }

    /// Loop thread.
    func cancel(_ waiter: LoopWaiter<AsyncTCPConnection>) {
        guard self.waiter === waiter else { return }
        self.waiter = nil
        if let connection { front.stack.abort(connection) }
        waiter.resume(.failure(.cancelled))
    }

    func connectionEstablished(_ connection: ConnectionID) {
        guard let waiter else {
            front.stack.abort(connection)
            return
        }
        self.waiter = nil
        let async = AsyncTCPConnection(front: front, id: connection, endpoints: front.stack.endpoints(of: connection))
        do {
            try front.stack.setHandler(async, for: connection)
        } catch {
            waiter.resume(.failure(.device(error)))
            return
        }
        waiter.resume(.success(async))
    }

    func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {
        guard let waiter else { return }
        self.waiter = nil
        waiter.resume(.failure(.closed(reason)))
    }

    func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {}
    func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {}
    func endOfStream(on connection: ConnectionID) {}
    func writable(_ connection: ConnectionID) {}
}
