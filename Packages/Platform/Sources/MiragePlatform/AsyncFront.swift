import MirageDevices

/// The async/await front of a `Stack` driven by an `EventLoop` (Linux only).
///
/// It adds nothing the callback API cannot do: each object is an ordinary
/// handler of the stack, turning events into resumed continuations. Every
/// stack call is made on the loop's thread: directly when the caller already
/// runs there, through `EventLoop.execute` otherwise. Run the tasks that use
/// it with the loop as executor preference (`Task(executorPreference: loop)`
/// or `withTaskExecutorPreference(loop)`), and a request runs and resumes on
/// the loop thread without hopping threads.
///
/// Buffers are bounded: a connection holds at most
/// `AsyncTCPConnection.receiveBufferLimit` unread bytes before it pauses
/// reading, a listener `AsyncTCPListener.pendingLimit` unaccepted
/// connections, a UDP socket `AsyncUDPSocket.pendingLimit` datagrams.
///
/// Connections, listeners and sockets are held by the stack until closed:
/// close them (or let the peer close) so that they are released.
public final class AsyncStack: @unchecked Sendable {
    /// The loop that drives the stack.
    public let loop: EventLoop
    /// Loop-confined: touched only on the loop thread.
    let stack: any Stack

    /// The front of `stack`, which `loop` drives. The loop must run (on its
    /// thread) for any operation to complete.
    public init(stack: any Stack, loop: EventLoop) {
        self.stack = stack
        self.loop = loop
    }

    /// Listens for TCP connections; iterate the listener to accept them.
    public func listen(port: UInt16, address: IPAddress? = nil, backlog: Int = 128) async throws(AsyncStackError) -> AsyncTCPListener {
        try await perform { () throws(AsyncStackError) -> AsyncTCPListener in
            let listener = AsyncTCPListener(front: self)
            do throws(DeviceError) {
                let id = try self.stack.listen(port: port, address: address, backlog: backlog, handler: listener)
                listener.opened(id, local: self.stack.localEndpoint(of: id))
            } catch {
                throw .device(error)
            }
            return listener
        }
    }

    /// Opens a TCP connection; throws `closed(.refused)`, `closed(.timeout)`
    /// or `closed(.unreachable)` when it fails. Cancelling the task abandons
    /// the attempt.
    public func connect(to remote: Endpoint, timeout: Interval? = nil) async throws(AsyncStackError) -> AsyncTCPConnection {
        let attempt = ConnectAttempt(front: self)
        return try await suspend { waiter in
            attempt.start(waiter, remote: remote, timeout: timeout)
        } onCancel: { waiter in
            attempt.cancel(waiter)
        }
    }

    /// Binds a UDP socket; iterate it to receive.
    public func bindUDP(port: UInt16 = 0, address: IPAddress? = nil) async throws(AsyncStackError) -> AsyncUDPSocket {
        try await perform { () throws(AsyncStackError) -> AsyncUDPSocket in
            let socket = AsyncUDPSocket(front: self)
            do throws(DeviceError) {
                let id = try self.stack.bindUDP(port: port, address: address, handler: socket)
                socket.opened(id, local: self.stack.localEndpoint(of: id))
            } catch {
                throw .device(error)
            }
            return socket
        }
    }

    /// The addresses the stack answers on.
    public var localAddresses: [IPAddress] {
        get async {
            (try? await perform { () throws(AsyncStackError) -> [IPAddress] in self.stack.localAddresses }) ?? []
        }
    }

    // MARK: Reaching the loop

    /// Runs `body` on the loop thread and returns its result.
    func perform<Value: Sendable>(_ body: @escaping @Sendable () throws(AsyncStackError) -> Value) async throws(AsyncStackError) -> Value {
        if loop.inLoopThread { return try body() }
        return try await suspend { waiter in
            waiter.resume(Result(catching: body))
        } onCancel: { _ in
            // Too short to cancel: it runs on the loop's next iteration.
        }
    }

    /// Suspends until `install` (run on the loop thread) or a later event
    /// resumes the waiter. Cancelling the task runs `onCancel` on the loop
    /// thread, which resumes the waiter with `cancelled` if it still waits.
    func suspend<Value: Sendable>(
        _ install: @escaping @Sendable (LoopWaiter<Value>) -> Void,
        onCancel: @escaping @Sendable (LoopWaiter<Value>) -> Void
    ) async throws(AsyncStackError) -> Value {
        let waiter = LoopWaiter<Value>()
        let loop = self.loop
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<Value, AsyncStackError>, Never>) in
                waiter.set(continuation)
                let body: @Sendable () -> Void = {
                    // A cancellation that came first wins; otherwise the
                    // cancel body (queued after this one) finds the waiter.
                    if waiter.isCancelled {
                        waiter.resume(.failure(.cancelled))
                    } else {
                        install(waiter)
                    }
                }
                if loop.inLoopThread { body() } else { loop.execute(body) }
            }
        } onCancel: {
            waiter.markCancelled()
            loop.execute { onCancel(waiter) }
        }
        return try result.get()
    }
}

/// Copies borrowed bytes into a new array (the one copy the front makes).
func copyBytes(_ bytes: Span<UInt8>) -> [UInt8] {
    bytes.withUnsafeBufferPointer { Array($0) }
}
