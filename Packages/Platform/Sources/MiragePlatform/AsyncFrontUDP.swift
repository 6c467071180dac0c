import MirageDevices

/// A UDP datagram received by an `AsyncUDPSocket`.
public struct AsyncDatagram: Hashable, Sendable {
    /// The payload.
    public var payload: [UInt8]
    /// Who sent it.
    public var source: Endpoint
    /// The address and port it was sent to.
    public var destination: Endpoint

    /// A datagram.
    public init(payload: [UInt8], source: Endpoint, destination: Endpoint) {
        self.payload = payload
        self.source = source
        self.destination = destination
    }
}

/// A UDP socket of the async front: an `AsyncSequence` of received
/// datagrams (ending when the socket is closed) and `send`.
///
/// Datagrams received while nobody waits are held, at most `pendingLimit`;
/// further ones are dropped and counted in `dropped`, as a full socket
/// buffer would.
///
/// `@unchecked Sendable`: its state is touched on the loop thread only.
public final class AsyncUDPSocket: UDPHandler, AsyncSequence, @unchecked Sendable {
    public typealias Element = AsyncDatagram
    public typealias Failure = AsyncStackError

    /// Datagrams held for `receive` at most.
    public static let pendingLimit = 1024

    private let front: AsyncStack
    private var id: UDPSocketID?
    /// Where the socket is bound (port 0 resolved to the chosen port).
    public private(set) var localEndpoint: Endpoint?
    private let queue = LoopQueue<AsyncDatagram>(limit: AsyncUDPSocket.pendingLimit)
    private var droppedCount = 0

    init(front: AsyncStack) { self.front = front }

    func opened(_ id: UDPSocketID, local: Endpoint?) {
        self.id = id
        localEndpoint = local
    }

    /// The next datagram, or nil once the socket is closed.
    public func receive() async throws(AsyncStackError) -> AsyncDatagram? {
        try await queue.take(on: front)
    }

    /// Sends one datagram. UDP has no back-pressure event: a full socket
    /// throws `device(.wouldBlock)` and the datagram is the caller's to
    /// drop or retry.
    public func send(_ payload: [UInt8], to destination: Endpoint) async throws(AsyncStackError) {
        try await front.perform { [self] () throws(AsyncStackError) in
            guard let id, !queue.isClosed else { throw .device(.unknownHandle) }
            do throws(DeviceError) {
                try front.stack.send(payload.span, to: destination, from: id)
            } catch {
                throw .device(error)
            }
        }
    }

    /// Closes the socket; a waiting `receive` returns nil.
    public func close() async {
        try? await front.perform { [self] () throws(AsyncStackError) in
            guard !queue.isClosed else { return }
            if let id { front.stack.closeUDP(id) }
            _ = queue.close()
        }
    }

    /// Datagrams dropped because `pendingLimit` were waiting.
    public var dropped: Int {
        get async {
            (try? await front.perform { [self] () throws(AsyncStackError) -> Int in droppedCount }) ?? 0
        }
    }

    // MARK: AsyncSequence

    /// Receives datagrams one after another.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let socket: AsyncUDPSocket

        public mutating func next() async throws(AsyncStackError) -> AsyncDatagram? {
            try await socket.receive()
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async throws(AsyncStackError) -> AsyncDatagram? {
            try await socket.receive()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(socket: self) }

    // MARK: UDPHandler (loop thread)

    public func datagramReceived(_ payload: Span<UInt8>, from source: Endpoint, to destination: Endpoint, on socket: UDPSocketID) {
        guard !queue.isClosed else { return }
        guard queue.hasRoom else {
            droppedCount += 1
            return
        }
        _ = queue.offer(AsyncDatagram(payload: copyBytes(payload), source: source, destination: destination))
    }
}
