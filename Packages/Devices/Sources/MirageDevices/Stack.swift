/// A TCP connection owned by a stack. Valid from the event or call that
/// produced it until the `connectionClosed` event for it; afterwards the
/// stack answers `unknownHandle` (identifiers are not reused soon).
public struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
    /// The stack's number for the connection.
    public var rawValue: UInt32
    /// A connection handle.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public var description: String { "conn#\(rawValue)" }
}

/// A TCP listener owned by a stack.
public struct ListenerID: Hashable, Sendable {
    /// The stack's number for the listener.
    public var rawValue: UInt32
    /// A listener handle.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
}

/// A bound UDP socket owned by a stack.
public struct UDPSocketID: Hashable, Sendable {
    /// The stack's number for the socket.
    public var rawValue: UInt32
    /// A socket handle.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
}

/// Why a connection ended. Every connection handle ends with exactly one
/// `connectionClosed` event carrying one of these.
public enum CloseReason: Hashable, Sendable {
    /// Both directions finished with FIN (or the application closed after
    /// the peer's end of stream).
    case normal
    /// The peer reset the connection (RST, `ECONNRESET`).
    case reset
    /// Retransmissions, keep-alive probes or the connect timeout ran out.
    case timeout
    /// The peer refused the connection attempt (RST in answer to SYN).
    case refused
    /// The destination is unreachable (ICMP error, no route).
    case unreachable
    /// The application aborted it with `abort`; a RST was sent.
    case aborted
}

/// Receives the events of TCP connections and listeners. Register one per
/// listener or per `connect`; a connection's handler can be changed with
/// `Stack.setHandler`.
///
/// Events are delivered from the stack's run loop, never re-entrantly from
/// inside a stack call: a call made from inside an event (write, close,
/// connect) takes effect at once, and the events it causes are delivered
/// after the current event returns.
public protocol TCPHandler: AnyObject {
    /// A listener accepted `connection` (three-way handshake complete).
    func connectionAccepted(_ connection: ConnectionID, listener: ListenerID)
    /// An outgoing `connect` completed.
    func connectionEstablished(_ connection: ConnectionID)
    /// Bytes arrived, in order. Borrowed: valid only during the call.
    func received(_ bytes: Span<UInt8>, on connection: ConnectionID)
    /// The peer finished sending (FIN): no more `received` for this
    /// connection. The application may still write, then close.
    func endOfStream(on connection: ConnectionID)
    /// A `write` accepted fewer bytes than offered earlier; there is room now.
    func writable(_ connection: ConnectionID)
    /// The connection is gone; the handle is invalid from now on.
    func connectionClosed(_ connection: ConnectionID, reason: CloseReason)
}

/// An ICMP error reported about a datagram a socket sent (RFC 792,
/// RFC 1122 §4.1.3.3: UDP passes them to the application).
public enum ICMPReport: Hashable, Sendable {
    /// Destination unreachable with its ICMP code (3: port unreachable).
    case destinationUnreachable(code: UInt8)
    /// Fragmentation needed but DF set; the next-hop MTU (RFC 1191), 0 if
    /// the router did not say.
    case fragmentationNeeded(nextHopMTU: Int)
    /// The datagram's TTL ran out, or reassembly timed out.
    case timeExceeded(code: UInt8)
    /// A header field was wrong.
    case parameterProblem
}

/// Receives UDP datagrams.
public protocol UDPHandler: AnyObject {
    /// A datagram for `socket`, borrowed for the duration of the call;
    /// `destination` is the address it was sent to (useful with a wildcard
    /// bind).
    func datagramReceived(_ payload: Span<UInt8>, from source: Endpoint, to destination: Endpoint, on socket: UDPSocketID)
    /// An ICMP error arrived about a datagram this socket sent to
    /// `destination`. Optional: the default ignores it.
    func errorReceived(_ report: ICMPReport, about destination: Endpoint, on socket: UDPSocketID)
}

extension UDPHandler {
    public func errorReceived(_ report: ICMPReport, about destination: Endpoint, on socket: UDPSocketID) {}
}

/// The contract applications are written against, implemented by
/// `SocketStack` (the kernel's sockets) and by `MirageTCPIP` (our own
/// stack). The same application code runs over both.
///
/// Back-pressure works in both directions: `write` takes what fits in the
/// send buffer and reports how much, followed by `writable` once more fits;
/// `pauseReading` stops `received` events so the receive window closes.
public protocol Stack: AnyObject {
    /// The addresses this stack answers on.
    var localAddresses: [IPAddress] { get }

    /// Listens for TCP connections on `port` (0 picks an ephemeral port) of
    /// `address` (nil: every local address), with at most `backlog`
    /// connections waiting in the handshake.
    func listen(port: UInt16, address: IPAddress?, backlog: Int, handler: any TCPHandler) throws(DeviceError) -> ListenerID
    /// The address and port a listener is bound to.
    func localEndpoint(of listener: ListenerID) -> Endpoint?
    /// Stops listening; established connections are not affected.
    func closeListener(_ listener: ListenerID)

    /// Opens a TCP connection; `connectionEstablished` or `connectionClosed`
    /// (`refused`, `timeout`, `unreachable`) follows. A nil `timeout` uses
    /// the stack's default.
    func connect(to remote: Endpoint, timeout: Interval?, handler: any TCPHandler) throws(DeviceError) -> ConnectionID
    /// Local and remote endpoints of a connection.
    func endpoints(of connection: ConnectionID) -> (local: Endpoint, remote: Endpoint)?
    /// Routes the connection's future events to `handler`.
    func setHandler(_ handler: any TCPHandler, for connection: ConnectionID) throws(DeviceError)

    /// Queues bytes for sending and returns how many were accepted (0 up to
    /// `bytes.count`); when fewer than all, `writable` follows once there is
    /// room. No limit on `bytes.count` beyond the buffer.
    func write(_ bytes: Span<UInt8>, on connection: ConnectionID) throws(DeviceError) -> Int
    /// Stops delivering `received` until `resumeReading`; data stays in the
    /// receive buffer and the window closes as it fills.
    func pauseReading(_ connection: ConnectionID)
    /// Resumes `received` events (and reopens the window).
    func resumeReading(_ connection: ConnectionID)
    /// Sends FIN after the queued bytes (half-close); reading continues.
    func shutdownWrite(_ connection: ConnectionID)
    /// Graceful close: FIN after the queued bytes; no further `received`
    /// events. `connectionClosed` follows when the exchange is complete.
    func close(_ connection: ConnectionID)
    /// Abortive close: RST now, queued data discarded; `connectionClosed`
    /// with `aborted` follows.
    func abort(_ connection: ConnectionID)
    /// Turns Nagle's algorithm (RFC 896: small writes wait while data is
    /// unacknowledged) off with `true`, on with `false` (the default).
    func setNoDelay(_ noDelay: Bool, for connection: ConnectionID) throws(DeviceError)
    /// Sends keep-alive probes after `idle` without traffic (RFC 1122
    /// §4.2.3.6); nil turns them off (the default). A peer that stops
    /// answering ends the connection with `timeout`.
    func setKeepAlive(_ idle: Interval?, for connection: ConnectionID) throws(DeviceError)
    /// The connection's counters and congestion state.
    func statistics(of connection: ConnectionID) -> ConnectionStatistics?

    /// Binds a UDP socket to `port` (0: ephemeral) of `address` (nil: every
    /// local address).
    func bindUDP(port: UInt16, address: IPAddress?, handler: any UDPHandler) throws(DeviceError) -> UDPSocketID
    /// The address and port a UDP socket is bound to.
    func localEndpoint(of socket: UDPSocketID) -> Endpoint?
    /// Sends one datagram; `wouldBlock` when the device or socket is full
    /// (UDP has no writable event: the datagram is the caller's to drop or
    /// retry), `messageTooLarge` above the stack's limit. A send from inside
    /// `datagramReceived` may be queued and written after the event: its
    /// handle, destination and size are still checked (and thrown) at once,
    /// but a later refusal (a full socket or device) is not thrown; the
    /// stack only counts the lost datagram.
    func send(_ payload: Span<UInt8>, to destination: Endpoint, from socket: UDPSocketID) throws(DeviceError)
    /// Closes a UDP socket.
    func closeUDP(_ socket: UDPSocketID)
}

/// Ephemeral port selection per RFC 6056 §3.3.1 (Algorithm 1, simple port
/// randomisation): a random start in the range, then the first free port
/// going up, wrapping. Used by stacks that choose ports themselves.
public struct EphemeralPortRange: Hashable, Sendable {
    /// The lowest port handed out (IANA's dynamic range starts at 49152).
    public var lowest: UInt16
    /// The highest port handed out.
    public var highest: UInt16

    /// RFC 6056 §2.1 recommends the whole 1024–65535 range; we use IANA's
    /// 49152–65535 by default so listeners below it are never taken.
    public static let `default` = EphemeralPortRange(lowest: 49152, highest: 65535)

    /// A range; `lowest` must not exceed `highest` and must be above 0.
    public init(lowest: UInt16, highest: UInt16) {
        precondition(lowest > 0 && lowest <= highest, "invalid ephemeral port range")
        self.lowest = lowest
        self.highest = highest
    }

    /// A free port, or nil when `isInUse` says every port in the range is taken.
    public func choose(using entropy: any EntropySource, isInUse: (UInt16) -> Bool) -> UInt16? {
        let count = UInt64(highest - lowest) + 1
        var offset = entropy.next(below: count)
        for _ in 0..<count {
            let port = UInt16(UInt64(lowest) + offset)
            if !isInUse(port) { return port }
            offset = offset + 1 == count ? 0 : offset + 1
        }
        return nil
    }
}
