import MirageDevices

/// What an `EchoServer` has done so far. A plain value: copy it out to look.
public struct EchoCounters: Hashable, Sendable {
    /// Connections accepted and served.
    public var connectionsAccepted = 0
    /// Connections aborted at once because `maximumConnections` were open.
    public var connectionsRejected = 0
    /// Served connections that have ended (any reason).
    public var connectionsClosed = 0
    /// Served connections that ended with `normal`.
    public var closedNormal = 0
    /// Served connections that ended with `reset`.
    public var closedReset = 0
    /// Served connections that ended with `timeout`.
    public var closedTimeout = 0
    /// Served connections that ended with `aborted`.
    public var closedAborted = 0
    /// Served connections that ended with `refused` or `unreachable`
    /// (not expected for accepted connections; counted all the same).
    public var closedOther = 0
    /// Peers that finished sending with FIN (`endOfStream`).
    public var endOfStreams = 0

    /// Bytes received by echo connections.
    public var echoBytesReceived: UInt64 = 0
    /// Bytes the stack accepted from echo connections.
    public var echoBytesSent: UInt64 = 0
    /// Bytes received and dropped by discard connections.
    public var discardBytes: UInt64 = 0
    /// Bytes of pattern the stack accepted from source connections.
    public var sourceBytesSent: UInt64 = 0

    /// UDP datagrams sent back by the echo service.
    public var datagramsEchoed = 0
    /// UDP datagrams received by the discard service.
    public var datagramsDiscarded = 0
    /// Bytes of UDP datagrams received by the discard service.
    public var datagramBytesDiscarded: UInt64 = 0
    /// UDP datagrams not echoed: the stack said `wouldBlock` or
    /// `messageTooLarge`, or the source port was one of ours (loop guard).
    public var datagramsDropped = 0

    /// Echo connections aborted because held bytes passed `echoBufferLimit`.
    public var echoBufferOverflows = 0
    /// Source connections aborted because the stack kept taking whole
    /// writes past the per-event bound (a stack breaking its contract).
    public var writeBoundHits = 0

    /// An empty set of counters.
    public init() {}

    /// How many served connections ended with `reason`.
    public func closed(_ reason: CloseReason) -> Int {
        switch reason {
        case .normal: closedNormal
        case .reset: closedReset
        case .timeout: closedTimeout
        case .aborted: closedAborted
        case .refused, .unreachable: closedOther
        }
    }

    mutating func recordClose(_ reason: CloseReason) {
        connectionsClosed += 1
        switch reason {
        case .normal: closedNormal += 1
        case .reset: closedReset += 1
        case .timeout: closedTimeout += 1
        case .aborted: closedAborted += 1
        case .refused, .unreachable: closedOther += 1
        }
    }
}
