import CMiragePlatform
import Glibc
import MirageDevices

/// The stack contract over the kernel's TCP and UDP sockets, non-blocking on
/// an `EventLoop` (MirageOS's "socket" stack). It needs no privileges and
/// serves IPv4 and IPv6.
///
/// It behaves as our own stack will, so applications cannot tell them apart:
///
/// - **Threading.** Create it anywhere; call everything else on the loop's
///   thread. Events are delivered on the loop's thread and never from inside
///   a stack call: what a call causes is queued with `EventLoop.enqueue`.
/// - **Writing.** There is no user-space send buffer: `write` hands the bytes
///   straight to the kernel, which takes what fits in its send buffer, and
///   `writable` follows once after a short write. To keep one fast loopback
///   peer (whose kernel drains our send buffer as fast as we fill it) from
///   holding the loop, a connection takes at most
///   `Configuration.writeBudget` bytes per readiness event; past it a write
///   is short and `writable` follows on the next loop iteration.
/// - **Reading.** `received` borrows one reusable buffer of the stack (no
///   allocation per read); at most `readsPerWakeup` reads per readiness.
///   `pauseReading` drops read interest, so the kernel's receive buffer fills
///   and its window closes.
/// - **Closing.** `close` sends FIN (`shutdown(SHUT_WR)`) after the queued
///   bytes, then keeps reading and discarding until the peer's FIN, and only
///   then closes the descriptor and reports `normal`; a peer that does not
///   finish within `closeTimeout` ends it with `timeout`. `shutdownWrite`
///   plus the peer's FIN ends it with `normal` too. `abort` sets SO_LINGER 0
///   and closes, so the kernel sends RST (`aborted`). A graceful close of a
///   connection still connecting drops the attempt (`aborted`).
/// - **Errors.** ECONNRESET and EPIPE → `reset`, ECONNREFUSED → `refused`,
///   ETIMEDOUT and the connect timer → `timeout`, EHOSTUNREACH,
///   ENETUNREACH, EHOSTDOWN, ENETDOWN → `unreachable`. A `connect` with no
///   route at all throws `networkUnreachable` at once.
/// - **UDP.** A readable socket is read with `recvmmsg`, up to
///   `datagramsPerWakeup` datagrams per call into a receive arena allocated
///   at the first `bindUDP`, and each is delivered in order (borrowed, as
///   above). A `send` made while such a batch is being delivered is checked
///   at once (handle, port, family, size), then copied into a bounded send
///   batch (`sendBatchDatagramLimit` datagrams, `sendBatchByteCapacity`
///   bytes; a full batch is written first) and written with `sendmmsg` once
///   the receive batch has been delivered, as NSD does. What the kernel
///   refuses then is dropped and counted in
///   `Counters.datagramsSendFailedAfterBatch`, never retried. Any other
///   `send` (from a timer, a TCP event, async code) goes out at once and
///   throws the kernel's refusal, as before.
/// - **Flush point.** Nothing to do for TCP: every write is already the
///   kernel's, and the kernel batches ACKs itself. UDP sends queued by a
///   receive batch are written when that batch ends, so the stack registers
///   no flush handler.
public final class SocketStack: Stack {
    /// The stack's settings; every bound has a named default.
    public struct Configuration: Sendable {
        /// Addresses the stack answers on besides 127.0.0.1 and ::1 (the
        /// kernel's own, e.g. from `--ipv4`). `listen` and `bindUDP` refuse
        /// other addresses with `addressNotAvailable`, as our stack would.
        public var addresses: [IPAddress] = []
        /// A `connect` gives up with `timeout` after this long (unless the call gives its own).
        public var connectTimeout: Interval = SocketStack.defaultConnectTimeout
        /// How long `close` waits for the peer's FIN.
        public var closeTimeout: Interval = SocketStack.defaultCloseTimeout
        /// Size of the shared TCP receive buffer (at least the default).
        public var receiveBufferSize: Int = SocketStack.defaultReceiveBufferSize
        /// Bytes one connection may write per readiness event (fairness bound).
        public var writeBudget: Int = SocketStack.defaultWriteBudget
        /// `recv` calls per readable connection per wakeup.
        public var readsPerWakeup: Int = SocketStack.defaultReadsPerWakeup
        /// `accept` calls per readable listener per wakeup.
        public var acceptsPerWakeup: Int = SocketStack.defaultAcceptsPerWakeup
        /// Datagrams received per readable UDP socket per wakeup, read with
        /// one `recvmmsg` each batch of up to `maximumDatagramsPerBatch`.
        public var datagramsPerWakeup: Int = SocketStack.defaultDatagramsPerWakeup
        /// Room for one received UDP payload (1 to
        /// `defaultDatagramBufferSize`); a longer datagram is dropped and
        /// counted in `datagramsTruncated`. The receive arena holds one per
        /// datagram of a batch.
        public var datagramBufferSize: Int = SocketStack.defaultDatagramBufferSize
        /// Open TCP connections at most; accepted ones beyond are reset and counted.
        public var maximumConnections: Int = SocketStack.defaultMaximumConnections
        /// Largest backlog passed to `listen(2)`.
        public var maximumBacklog: Int = SocketStack.defaultMaximumBacklog

        /// The defaults.
        public init() {}
    }

    /// Default connect timeout: 30 s, about the kernel's SYN retries at their
    /// first backoff steps (RFC 6298 §2 starts at 1 s and doubles).
    public static let defaultConnectTimeout = Interval.seconds(30)
    /// Default wait for the peer's FIN after `close`.
    public static let defaultCloseTimeout = Interval.seconds(10)
    /// Default TCP receive buffer: 64 KiB, a large TCP read.
    public static let defaultReceiveBufferSize = 65_536
    /// Default write budget per connection and readiness event (1 MiB).
    public static let defaultWriteBudget = 1 << 20
    /// Default reads per readable connection per wakeup.
    public static let defaultReadsPerWakeup = 16
    /// Default accepts per readable listener per wakeup.
    public static let defaultAcceptsPerWakeup = 64
    /// Default datagrams per readable UDP socket per wakeup.
    public static let defaultDatagramsPerWakeup = 64
    /// Most datagrams one `recvmmsg` or `sendmmsg` takes (the C shim's bound).
    public static let maximumDatagramsPerBatch = Int(MIRAGE_DATAGRAM_BATCH_MAX)
    /// Default (and largest) room per received datagram: 64 KiB, above the
    /// largest UDP payload (RFC 768's 16-bit length field).
    public static let defaultDatagramBufferSize = 65_536
    /// Datagrams a receive batch's sends may queue before they are written early.
    public static let sendBatchDatagramLimit = 64
    /// Payload bytes a receive batch's sends may queue before they are
    /// written early: 64 KiB, so the largest datagram fits an empty batch.
    public static let sendBatchByteCapacity = 65_536
    /// Default connection table size.
    public static let defaultMaximumConnections = 16_384
    /// Default largest listen backlog (Linux's default somaxconn).
    public static let defaultMaximumBacklog = 4096
    /// Largest UDP payload over IPv4: 65535 − 20 (IPv4 header) − 8 (UDP header).
    public static let maximumIPv4DatagramSize = 65_507
    /// Largest UDP payload over IPv6 without jumbograms: 65535 − 8 (UDP header), RFC 8200 §4.5.
    public static let maximumIPv6DatagramSize = 65_527
    /// How long a listener rests after `accept` ran out of descriptors.
    static let acceptRetryDelay = Interval.milliseconds(100)

    /// Counts of what the stack dropped or failed, and of its UDP batches,
    /// for diagnostics.
    public struct Counters: Hashable, Sendable {
        /// Accepted connections reset at once because the table was full.
        public var connectionsRejected = 0
        /// `accept` failures other than "nothing pending".
        public var acceptFailures = 0
        /// Datagrams dropped because they did not fit the receive buffer.
        public var datagramsTruncated = 0
        /// `recvmmsg` failures on UDP sockets (ICMP errors included).
        public var datagramReceiveErrors = 0
        /// `recvmmsg` calls on UDP sockets (those finding nothing included).
        public var datagramReceiveCalls = 0
        /// Datagrams `recvmmsg` returned (truncated ones included).
        public var datagramsReceived = 0
        /// `sendmmsg` calls writing the sends queued by receive batches.
        public var datagramSendCalls = 0
        /// Datagrams those `sendmmsg` calls sent.
        public var datagramsSentInBatches = 0
        /// Datagrams queued by a receive batch that the kernel refused when
        /// the batch was written (EAGAIN, ENOBUFS, ECONNREFUSED, …): dropped,
        /// as UDP may drop, and reported nowhere else (their `send` had
        /// already returned).
        public var datagramsSendFailedAfterBatch = 0
        /// An empty set.
        public init() {}
    }

    /// The loop the stack runs on.
    public let loop: EventLoop
    /// The settings given at creation.
    public let configuration: Configuration
    /// What was dropped so far.
    public internal(set) var counters = Counters()

    var connections: [UInt32: TCPConnection] = [:]
    var listeners: [UInt32: TCPListener] = [:]
    var udpSockets: [UInt32: UDPSocket] = [:]
    /// What each registered descriptor is.
    var descriptors: [Int32: Descriptor] = [:]
    /// What each pending timer is for.
    var timers: [TimerID: TimerPurpose] = [:]
    let receiveBuffer: SocketReceiveBuffer
    /// UDP's receive arena and send batch, allocated at the first `bindUDP`
    /// (a TCP-only stack never pays for them).
    var datagramReceiveBatch: DatagramReceiveBatch?
    var datagramSendBatch: DatagramSendBatch?
    /// A receive batch is being delivered: `send` queues in the send batch.
    var deliveringDatagrams = false
    private var lastID: UInt32 = 0

    /// A stack on `loop`. Touches no socket until it is used.
    public init(loop: EventLoop, configuration: Configuration = Configuration()) {
        self.loop = loop
        self.configuration = configuration
        receiveBuffer = SocketReceiveBuffer(capacity: max(configuration.receiveBufferSize, Self.defaultReceiveBufferSize))
    }

    deinit {
        // Only reached once nothing is registered on the loop (the loop holds
        // the stack while a descriptor or timer is), so what is left are
        // descriptors the loop no longer watches (a paused connection whose
        // peer hung up).
        for connection in connections.values where connection.fd >= 0 { FileDescriptor.close(connection.fd) }
        for listener in listeners.values { FileDescriptor.close(listener.fd) }
        for socket in udpSockets.values { FileDescriptor.close(socket.fd) }
    }

    public var localAddresses: [IPAddress] {
        var addresses: [IPAddress] = [.v4(.loopback), .v6(.loopback)]
        for address in configuration.addresses where !addresses.contains(address) { addresses.append(address) }
        return addresses
    }

    /// Closes every listener and UDP socket and aborts every connection
    /// (their `connectionClosed(.aborted)` events follow), so that the loop
    /// lets go of the stack.
    public func closeAll() {
        for id in Array(listeners.keys) { closeListener(ListenerID(rawValue: id)) }
        for id in Array(udpSockets.keys) { closeUDP(UDPSocketID(rawValue: id)) }
        for id in Array(connections.keys) { abort(ConnectionID(rawValue: id)) }
    }

    /// Number of connections whose handle is still valid.
    public var connectionCount: Int { connections.count }

    // MARK: Identifiers and descriptors

    /// What a registered descriptor belongs to.
    enum Descriptor {
        case connection(UInt32)
        case listener(UInt32)
        case udp(UInt32)
    }

    /// What a timer is for.
    enum TimerPurpose {
        case connect(UInt32)
        case close(UInt32)
        case acceptRetry(UInt32)
    }

    /// A fresh identifier, unused by any live handle: counts up and wraps,
    /// so a closed handle's number comes back only after four billion others.
    func nextID() -> UInt32 {
        // At most `live` numbers are taken, so one of the next `live + 1` is free.
        let live = connections.count + listeners.count + udpSockets.count
        for _ in 0...live {
            lastID = lastID == .max ? 1 : lastID + 1
            if connections[lastID] == nil && listeners[lastID] == nil && udpSockets[lastID] == nil { break }
        }
        return lastID
    }

    /// Registers `fd` for `handle`, closing it if the loop refuses.
    func register(_ fd: Int32, interest: FDInterest, as descriptor: Descriptor) throws(DeviceError) {
        do {
            try loop.register(fd, interest: interest, handler: self)
        } catch {
            FileDescriptor.close(fd)
            throw error
        }
        descriptors[fd] = descriptor
    }

    /// Unregisters and closes `fd`.
    func release(_ fd: Int32) {
        guard fd >= 0 else { return }
        if descriptors.removeValue(forKey: fd) != nil { loop.unregister(fd) }
        FileDescriptor.close(fd)
    }

    /// Checks that `address` (nil: every address) is one of this stack's.
    func checkLocal(_ address: IPAddress?) throws(DeviceError) {
        guard let address else { return }
        if address.isLoopback || localAddresses.contains(address) { return }
        if case .v4(let v4) = address, v4 == .any { return }
        if case .v6(let v6) = address, v6 == .any { return }
        throw .addressNotAvailable(address)
    }

    /// Opens a socket of `type` bound to `port` of `address` (nil: every
    /// address, dual-stack where IPv6 is available). Returns the descriptor
    /// and its family.
    func openBound(type: Int32, port: UInt16, address: IPAddress?, reuseAddress: Bool) throws(DeviceError) -> (fd: Int32, family: Int32) {
        try checkLocal(address)
        var family: Int32
        var bindTo: IPAddress
        switch address {
        case .v4(let v4)?: family = AF_INET; bindTo = .v4(v4)
        case .v6(let v6)?: family = AF_INET6; bindTo = .v6(v6)
        case nil: family = AF_INET6; bindTo = .v6(.any)
        }
        var fd: Int32
        do {
            fd = try SocketCalls.open(family: family, type: type)
        } catch {
            guard address == nil, case .system(_, let code) = error, code == EAFNOSUPPORT else { throw error }
            // No IPv6 in this kernel: every address means every IPv4 address.
            family = AF_INET
            bindTo = .v4(.any)
            fd = try SocketCalls.open(family: family, type: type)
        }
        if reuseAddress { SocketCalls.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1) }
        if family == AF_INET6 {
            // The wildcard serves IPv4 too (as ::ffff:a.b.c.d); a specific
            // IPv6 address only itself.
            SocketCalls.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, address == nil ? 0 : 1)
        }
        let code = SocketCalls.bind(fd, SocketAddress(Endpoint(bindTo, port), family: family))
        if code != 0 {
            FileDescriptor.close(fd)
            switch code {
            case EADDRINUSE: throw .addressInUse(Endpoint(address ?? bindTo, port))
            case EADDRNOTAVAIL: throw .addressNotAvailable(address ?? bindTo)
            default: throw .system(call: "bind", errno: code)
            }
        }
        return (fd, family)
    }
}

extension SocketStack: FDHandler {
    func fdReadable(_ fd: Int32) {
        switch descriptors[fd] {
        case .connection(let id)?: if let connection = connections[id] { connectionReadable(connection) }
        case .listener(let id)?: if let listener = listeners[id] { acceptConnections(listener) }
        case .udp(let id)?: if let socket = udpSockets[id] { receiveDatagrams(socket) }
        case nil: break
        }
    }

    func fdWritable(_ fd: Int32) {
        if case .connection(let id)? = descriptors[fd], let connection = connections[id] {
            connectionWritable(connection)
        }
    }

    func fdError(_ fd: Int32, errno code: Int32) {
        switch descriptors[fd] {
        case .connection(let id)?:
            if let connection = connections[id] { connectionFailed(connection, errno: code) }
        case .listener(let id)?:
            counters.acceptFailures += 1
            if let listener = listeners[id] { restAcceptor(listener) }
        case .udp:
            // An ICMP error queued on the socket: read it to clear it.
            counters.datagramReceiveErrors += 1
            _ = SocketCalls.pendingError(fd)
        case nil:
            break
        }
    }
}

extension SocketStack: TimerHandler {
    /// The stack's connect, close and accept-retry timers (called by the loop).
    public func timerFired(_ id: TimerID, now: Instant) {
        guard let purpose = timers.removeValue(forKey: id) else { return }
        switch purpose {
        case .connect(let connection):
            if let connection = connections[connection], connection.timer == id, connection.phase == .connecting {
                connection.timer = nil
                finish(connection, .timeout, deferred: false)
            }
        case .close(let connection):
            if let connection = connections[connection], connection.timer == id, connection.phase == .closing {
                connection.timer = nil
                finish(connection, .timeout, deferred: false)
            }
        case .acceptRetry(let listener):
            if let listener = listeners[listener], listener.retryTimer == id {
                listener.retryTimer = nil
                try? loop.setInterest(listener.fd, .read)
            }
        }
    }
}
