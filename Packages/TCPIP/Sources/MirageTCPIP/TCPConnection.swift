import MirageDevices

/// One TCP connection's state machine (RFC 9293 §3.3.2, event processing
/// of §3.10), sans-I/O: it is given segments, application calls and the
/// time, and leaves segments to send in `outbox` and events for the
/// application in `events`; the stack turns those into frames and handler
/// calls. It owns the send and receive buffers (bounded), the
/// retransmission timer (RFC 6298), CUBIC or Reno congestion control
/// (`CongestionControl`, RFC 9438, RFC 5681) with SACK-based loss recovery
/// (RFC 6675, `TCPConnection+SACK.swift`) or NewReno's (RFC 6582), window
/// scaling and timestamps (RFC 7323), SACK blocks as a receiver
/// (RFC 2018), delayed ACKs (RFC 1122 §4.2.3.2) and Nagle
/// (RFC 896), and RFC 5961's defences against blind RST, SYN and data.
///
/// `IPStack` owns one per connection (Docs/ARCHITECTURE.md, "TCP in
/// MirageTCPIP").
public struct TCPConnection {
    /// Tunables.
    public struct Configuration: Sendable {
        /// Bytes the application may write ahead of acknowledgment.
        public var sendBufferSize = 256 * 1024
        /// Bytes received and not yet read: the largest window we offer.
        public var receiveBufferSize = 256 * 1024
        /// Our MSS as announced (the path MTU less 40 is used when smaller).
        public var maximumSegmentSize = 1460
        /// Offer window scaling, timestamps and SACK (RFC 7323, RFC 2018).
        public var windowScaling = true
        /// Offer timestamps.
        public var timestamps = true
        /// Offer SACK.
        public var selectiveAcknowledgment = true
        /// Coalesce small writes while data is unacknowledged (RFC 896).
        public var nagle = true
        /// Longest an ACK is delayed (RFC 1122 §4.2.3.2: at most 500 ms).
        public var delayedAcknowledgment = Interval.milliseconds(40)
        /// Maximum segment lifetime; TIME-WAIT lasts twice this.
        public var maximumSegmentLifetime = Interval.seconds(30)
        /// Retransmissions of one segment before the connection times out
        /// (RFC 9293 §3.8.3's R2: at least 100 s; 15 backoffs is Linux's).
        public var maximumRetransmissions = 15
        /// SYN retransmissions before `connect` times out.
        public var maximumSynRetransmissions = 6
        /// How long FIN-WAIT-2 waits for the peer's FIN (Linux: 60 s).
        public var finWait2Timeout = Interval.seconds(60)
        /// Retransmission timeout bounds.
        public var minimumRetransmissionTimeout = RTTEstimator.defaultMinimum
        /// Idle time before the first keep-alive probe (RFC 1122 §4.2.3.6:
        /// off unless asked for, and at least two hours by default when on);
        /// nil turns keep-alive off.
        public var keepAliveIdle: Interval? = nil
        /// Time between unanswered keep-alive probes (Linux: 75 s).
        public var keepAliveInterval = Interval.seconds(75)
        /// Unanswered probes after which the connection times out (Linux: 9).
        public var keepAliveProbes = 9
        /// Congestion control: CUBIC (RFC 9438, the default, as in Linux) or
        /// NewReno's Reno growth (RFC 5681).
        public var congestionControl = CongestionControlAlgorithm.cubic
        /// The defaults.
        public init() {}
    }

    /// RFC 9293's states (LISTEN lives in the stack's listener table).
    public enum State: Equatable, Sendable {
        /// Our SYN sent, waiting for the peer's.
        case synSent
        /// The peer's SYN received and ours sent, waiting for its ACK.
        case synReceived
        /// Data flows both ways.
        case established
        /// Our FIN sent, not yet acknowledged.
        case finWait1
        /// Our FIN acknowledged, waiting for the peer's.
        case finWait2
        /// The peer's FIN received; we may still send.
        case closeWait
        /// Both FINs sent, ours not yet acknowledged.
        case closing
        /// The peer's FIN received and ours sent, waiting for its ACK.
        case lastAck
        /// Both directions closed; old duplicates drain for 2 MSL.
        case timeWait
        /// Nothing left.
        case closed
    }

    /// What the application hears about.
    public enum Event: Equatable, Sendable {
        /// The handshake completed.
        case established
        /// New in-order data can be read (`receiveBuffer`).
        case readable
        /// The peer sent FIN: no more data will arrive.
        case endOfStream
        /// Room in the send buffer after a short write.
        case writable
        /// The connection ended.
        case closed(CloseReason)
    }

    /// Whether a queued segment's data is still in the send buffer (the
    /// stack sends the outbox right after each call, so it always is then).
    public func payloadIsHeld(_ out: Outgoing) -> Bool {
        out.payloadLength == 0 || (!(out.payloadStart < sendBuffer.unacknowledged)
            && !(sendBuffer.end < out.payloadStart + out.payloadLength))
    }

    /// A segment to send: the header, and the span of the send buffer (from
    /// `payloadStart`, `payloadLength` bytes) that is its data.
    ///
    /// With segmentation offload (`setSegmentationOffload`) one `Outgoing`
    /// may carry more than a segment's worth of data: the device cuts it
    /// into segments of `segmentSize` data bytes, each with this header's
    /// options (TSO/GSO). Without it `payloadLength` never exceeds
    /// `segmentSize`.
    public struct Outgoing: Sendable {
        /// The header (ports, numbers, flags, window, options).
        public var header: TCPHeader
        /// Sequence number of the first data byte.
        public var payloadStart: SequenceNumber
        /// Data bytes, taken from `sendBuffer`.
        public var payloadLength: Int
        /// Data bytes per segment on the wire (the effective send MSS).
        public var segmentSize: Int
    }

    /// Counters of one connection, for the application and tracing.
    public struct Statistics: Hashable, Sendable {
        /// Segments queued for sending.
        public var segmentsSent: UInt64 = 0
        /// Segments given to `receive`.
        public var segmentsReceived: UInt64 = 0
        /// Segments sent again (timeouts, fast retransmit).
        public var retransmissions: UInt64 = 0
        /// Data bytes acknowledged by the peer.
        public var bytesSent: UInt64 = 0
        /// Data bytes received in order.
        public var bytesReceived: UInt64 = 0
        /// Duplicate ACKs received (RFC 5681 §2).
        public var duplicateAcknowledgments: UInt64 = 0
        /// Challenge ACKs sent (RFC 5961).
        public var challengeAcknowledgments: UInt64 = 0
        /// Segments dropped as unacceptable.
        public var segmentsDropped: UInt64 = 0
        /// Keep-alive probes sent.
        public var keepAliveProbes: UInt64 = 0
        /// NewReno fast recoveries entered (RFC 6582, peers without SACK).
        public var fastRecoveries: UInt64 = 0
        /// SACK-based loss recoveries entered (RFC 6675).
        public var sackRecoveries: UInt64 = 0
        /// Retransmission timer expiries with data outstanding (RFC 6298 §5.4).
        public var timeouts: UInt64 = 0
        /// All zero.
        public init() {}
    }

    /// Our address and port.
    public let local: (address: IPv4Address, port: UInt16)
    /// The peer's.
    public let remote: (address: IPv4Address, port: UInt16)
    let configuration: Configuration
    /// The current state.
    public private(set) var state: State
    /// Segments waiting to be sent, oldest first.
    public var outbox: [Outgoing] = []
    /// Events waiting for the application.
    public var events: [Event] = []
    /// Counters.
    public internal(set) var statistics = Statistics()

    // Send sequence space (RFC 9293 §3.3.1).
    let iss: SequenceNumber
    var sndUna: SequenceNumber
    var sndNxt: SequenceNumber
    /// The highest sequence number sent so far: after a retransmission
    /// timeout SND.NXT goes back, but ACKs up to this are still valid.
    var sndMax: SequenceNumber
    /// The MSS we announce: what we can receive.
    let receiveMSS: Int
    /// Challenge ACKs sent in the current second (RFC 5961 §7 asks for a limit).
    var challengeAcksThisSecond = 0
    var challengeSecond: UInt64 = 0
    var sndWnd = 0
    var sndWl1 = SequenceNumber(0)
    var sndWl2 = SequenceNumber(0)
    var maxSndWnd = 0
    /// Application data waiting to go, from the first byte after the SYN.
    public private(set) var sendBuffer: TCPSendBuffer
    /// Received data not yet read by the application.
    public internal(set) var receiveBuffer: TCPReceiveBuffer
    // Receive sequence space.
    var irs = SequenceNumber(0)
    var rcvNxt: SequenceNumber { receiveBuffer.next }

    // Options negotiated.
    var sendMSS = 536
    var sendShift: UInt8 = 0
    var receiveShift: UInt8 = 0
    var offeredShift: UInt8 = 0
    var timestampsOn = false
    var sackOn = false
    var tsRecent: UInt32 = 0
    var lastAckSent = SequenceNumber(0)

    // Closing.
    /// The application asked for FIN after the buffered data.
    var finQueued = false
    /// Our FIN has been sent (its sequence number is `sendBuffer.end`).
    var finSent = false
    /// The peer's FIN has been received and processed.
    var finReceived = false
    /// A FIN seen out of order, at this sequence number.
    var pendingFin: SequenceNumber?
    /// The application closed for reading: data is acknowledged and dropped.
    var readClosed = false
    var closeReported = false

    // Timers.
    var rtt: RTTEstimator
    var retransmitDeadline: Instant?
    var retransmissions = 0
    var delayedAckDeadline: Instant?
    var unacknowledgedSegments = 0
    var timeWaitDeadline: Instant?
    var finWait2Deadline: Instant?
    var persistDeadline: Instant?
    var timedSegment: (sequence: SequenceNumber, sentAt: Instant)?
    /// When an unanswered `connect` gives up.
    var connectDeadline: Instant?
    /// Keep-alive: the idle time (nil: off), the next probe, probes unanswered.
    var keepAliveIdle: Interval?
    var keepAliveDeadline: Instant?
    var keepAliveProbesSent = 0
    /// Nagle's algorithm on (the application may switch it per connection).
    var nagle: Bool
    var congestion: CongestionControl
    /// What the peer SACKed (RFC 6675), used when `sackOn`.
    var scoreboard: SACKScoreboard
    var writeBlocked = false
    /// The window in the last segment sent, in bytes.
    var advertisedWindow = 0
    /// Most data bytes in one `Outgoing` when the device segments large
    /// frames (0: no offload, one segment each).
    var segmentationLimit = 0

    // Batching (Docs/ARCHITECTURE.md, "TCP in MirageTCPIP"): while the
    // stack feeds a batch of received segments, new data and the ACK for
    // in-order data wait for `flush`, so a batch gets one ACK and the
    // window the batch opened is sent in as few (large) segments as it can.
    /// Set by `beginBatch`, cleared by `flush`.
    public private(set) var batching = false
    /// Output was asked for during the batch.
    var flushPending = false
    /// An ACK is owed for in-order data received during the batch.
    var ackPending = false

    // MARK: Opening

    /// The fields both opens set the same way; the SYN is the caller's.
    private init(local: (IPv4Address, UInt16), remote: (IPv4Address, UInt16), iss: SequenceNumber, pathMTU: Int,
                 configuration: Configuration, state: State, receiveNext: SequenceNumber) {
        self.local = (local.0, local.1)
        self.remote = (remote.0, remote.1)
        self.configuration = configuration
        self.iss = iss
        sndUna = iss
        sndNxt = iss + 1
        sndMax = iss + 1
        receiveMSS = min(configuration.maximumSegmentSize, max(pathMTU - 40, 536))
        self.state = state
        sendBuffer = TCPSendBuffer(start: iss + 1, capacity: configuration.sendBufferSize)
        receiveBuffer = TCPReceiveBuffer(next: receiveNext, capacity: configuration.receiveBufferSize)
        rtt = RTTEstimator(minimum: configuration.minimumRetransmissionTimeout)
        congestion = CongestionControl(mss: receiveMSS, algorithm: configuration.congestionControl)
        scoreboard = SACKScoreboard(start: iss + 1)
        offeredShift = configuration.windowScaling ? Self.shift(for: configuration.receiveBufferSize) : 0
        keepAliveIdle = configuration.keepAliveIdle
        nagle = configuration.nagle
    }

    /// An active open: the connection in SYN-SENT with its SYN in `outbox`.
    public init(connectFrom local: (IPv4Address, UInt16), to remote: (IPv4Address, UInt16), iss: SequenceNumber,
                pathMTU: Int, configuration: Configuration, now: Instant) {
        self.init(local: local, remote: remote, iss: iss, pathMTU: pathMTU, configuration: configuration,
                  state: .synSent, receiveNext: SequenceNumber(0))
        sendSyn(ack: false, now: now)
    }

    /// A passive open from a SYN a listener accepted: the connection in
    /// SYN-RECEIVED with its SYN-ACK in `outbox`.
    public init(acceptFrom local: (IPv4Address, UInt16), remote: (IPv4Address, UInt16), syn: borrowing TCPSegment,
                iss: SequenceNumber, pathMTU: Int, configuration: Configuration, now: Instant) {
        self.init(local: local, remote: remote, iss: iss, pathMTU: pathMTU, configuration: configuration,
                  state: .synReceived, receiveNext: syn.sequenceNumber + 1)
        irs = syn.sequenceNumber
        negotiate(syn.options, pathMTU: pathMTU)
        sndWnd = Int(syn.window)  // never scaled in a SYN (RFC 7323 §2.2)
        maxSndWnd = sndWnd
        sndWl1 = syn.sequenceNumber
        if let ts = syn.options.timestamps { tsRecent = ts.value }
        sendSyn(ack: true, now: now)
    }

    /// The smallest shift that lets `buffer` be advertised (RFC 7323 §2.3: at most 14).
    static func shift(for buffer: Int) -> UInt8 {
        var s: UInt8 = 0
        while s < 14 && (buffer >> Int(s)) > 65_535 { s += 1 }
        return s
    }

    mutating func negotiate(_ options: TCPOptions, pathMTU: Int) {
        let peerMSS = Int(options.maximumSegmentSize ?? 536)  // RFC 9293 §3.7.1 default
        if configuration.windowScaling, let shift = options.windowScale {
            sendShift = min(shift, 14)
            receiveShift = offeredShift
        } else {
            sendShift = 0
            receiveShift = 0
        }
        timestampsOn = configuration.timestamps && options.timestamps != nil
        sackOn = configuration.selectiveAcknowledgment && options.sackPermitted
        // RFC 9293 §3.7.1: the effective send MSS excludes options we send in every segment.
        var mss = min(peerMSS, pathMTU - 40, configuration.maximumSegmentSize)
        if timestampsOn { mss -= 12 }
        sendMSS = max(mss, 64)
        congestion = CongestionControl(mss: sendMSS, algorithm: configuration.congestionControl)
    }

    // MARK: Application calls

    /// Queues bytes to send; returns how many fit in the send buffer.
    public mutating func write(_ bytes: Span<UInt8>, now: Instant) -> Int {
        guard !finQueued, state != .closed else { return 0 }
        let n = sendBuffer.append(bytes)
        if n < bytes.count { writeBlocked = true }
        if state != .synSent && state != .synReceived { output(now: now) }
        return n
    }

    /// Half-close: FIN after the buffered data.
    public mutating func shutdownWrite(now: Instant) {
        guard !finQueued else { return }
        finQueued = true
        switch state {
        case .synSent:
            enterClosed(.aborted)
        case .established, .synReceived:
            if state == .established { state = .finWait1 }
            output(now: now)
        case .closeWait:
            state = .lastAck
            output(now: now)
        default:
            break
        }
    }

    /// Graceful close: no more data will be delivered; FIN after the
    /// buffered data.
    public mutating func close(now: Instant) {
        readClosed = true
        let unread = receiveBuffer.readable
        if unread > 0 { _ = receiveBuffer.read(maximum: unread) { _ in } }
        shutdownWrite(now: now)
        // Closed after a half-close whose FIN is already acknowledged: from
        // now on nobody reads, so FIN-WAIT-2 must not wait forever.
        if state == .finWait2 && finWait2Deadline == nil { finWait2Deadline = now + configuration.finWait2Timeout }
    }

    /// Abortive close: RST (when synchronized), buffers dropped.
    public mutating func abort() {
        if state != .synSent && state != .closed && state != .timeWait {
            let seq = acceptableSequence
            outbox.append(makeSegment(sequence: seq, acknowledgment: nil, flags: .rst, length: 0, from: seq))
        }
        enterClosed(.aborted)
    }

    /// Holds output and in-order ACKs until `flush` (the stack calls it at
    /// the start of a receive batch). Segments that must go at once —
    /// duplicate ACKs for out-of-order data, challenge ACKs, RSTs,
    /// retransmissions — are still queued immediately.
    public mutating func beginBatch() {
        batching = true
    }

    /// Ends a batch: sends what the windows now allow, and one ACK when
    /// in-order data is owed one and no data segment carried it.
    public mutating func flush(now: Instant) {
        batching = false
        guard flushPending else { return }
        flushPending = false
        output(now: now)
        if ackPending && state != .closed { sendAck(now: now) }
    }

    /// Lets one `Outgoing` carry up to `maximumBytes` of data for the
    /// device to segment (TSO/GSO); 0 turns it off. The stack sets it when
    /// the interface announces TCP segmentation offload.
    public mutating func setSegmentationOffload(maximumBytes: Int) {
        segmentationLimit = max(0, maximumBytes)
    }

    /// The application read data and the window opened: announce it once it
    /// has grown by a segment or half the buffer beyond what we last
    /// advertised (RFC 1122 §4.2.3.3, receiver-side SWS avoidance), which is
    /// also what reopens a window a slow reader closed.
    public mutating func didRead(now: Instant) {
        guard state == .established || state == .finWait1 || state == .finWait2 else { return }
        let threshold = min(configuration.receiveBufferSize / 2, sendMSS)
        if receiveBuffer.window - advertisedWindow >= threshold { sendAck(now: now) }
    }

    // MARK: Timers

    /// When `timerFired` next has work.
    public var nextDeadline: Instant? {
        // Called for every connection on every timer rearm: no array here.
        let timers = Instant.earlier(Instant.earlier(retransmitDeadline, delayedAckDeadline),
                                     Instant.earlier(timeWaitDeadline, finWait2Deadline))
        let waits = Instant.earlier(Instant.earlier(persistDeadline, connectDeadline), keepAliveDeadline)
        return Instant.earlier(timers, waits)
    }

    /// Runs the timers due at `now`.
    public mutating func timerFired(now: Instant) {
        // Timers never fire inside a receive batch; one still open lost its
        // end, and what it held back goes now.
        if batching { flush(now: now) }
        if let d = timeWaitDeadline, d <= now {
            timeWaitDeadline = nil
            state = .closed
            return
        }
        if let d = finWait2Deadline, d <= now {
            finWait2Deadline = nil
            enterClosed(.timeout)
            return
        }
        if let d = connectDeadline, d <= now {
            connectDeadline = nil
            if state == .synSent || state == .synReceived {
                enterClosed(.timeout)
                return
            }
        }
        if let d = keepAliveDeadline, d <= now {
            keepAliveDeadline = nil
            keepAliveFired(now: now)
            if state == .closed { return }
        }
        if let d = delayedAckDeadline, d <= now {
            sendAck(now: now)
        }
        if let d = retransmitDeadline, d <= now {
            retransmitTimeout(now: now)
        }
        if let d = persistDeadline, d <= now {
            persistDeadline = nil
            probeZeroWindow(now: now)
        }
    }

    mutating func retransmitTimeout(now: Instant) {
        retransmitDeadline = nil
        retransmissions += 1
        let limit = (state == .synSent || state == .synReceived)
            ? configuration.maximumSynRetransmissions : configuration.maximumRetransmissions
        guard retransmissions <= limit else {
            enterClosed(.timeout)
            return
        }
        rtt.backOff()
        timedSegment = nil  // Karn: no sample from a retransmitted segment
        switch state {
        case .synSent:
            statistics.retransmissions += 1
            sendSyn(ack: false, now: now)
        case .synReceived:
            statistics.retransmissions += 1
            sendSyn(ack: true, now: now)
        default:
            statistics.timeouts += 1
            congestion.timeout(flight: sndNxt - sndUna, highestSent: sndMax)
            if sackOn { sackTimeout() }
            // Go back to SND.UNA (RFC 5681 §3.1 and RFC 6298 §5.4: resend
            // the earliest unacknowledged segment, then as the window allows).
            // A FIN outstanding is sent again after the data.
            sndNxt = sndUna
            finSent = false
            output(now: now, retransmitting: true)
        }
    }

    /// RFC 1122 §4.2.3.6: after `keepAliveIdle` without a segment from the
    /// peer, send an ACK one byte behind SND.NXT (which the peer answers
    /// with an ACK), every `keepAliveInterval`, and give up after
    /// `keepAliveProbes` unanswered. While data is outstanding the
    /// retransmission timer covers a dead peer instead.
    mutating func keepAliveFired(now: Instant) {
        guard let idle = keepAliveIdle, isSynchronized, state != .timeWait else { return }
        if sndNxt - sndUna > 0 || retransmitDeadline != nil || persistDeadline != nil {
            keepAliveDeadline = now + idle
            return
        }
        guard keepAliveProbesSent < configuration.keepAliveProbes else {
            enterClosed(.timeout)
            return
        }
        keepAliveProbesSent += 1
        statistics.keepAliveProbes += 1
        outbox.append(makeSegment(sequence: sndUna - 1, acknowledgment: rcvNxt, flags: [], length: 0, from: sndUna,
                                  now: now))
        keepAliveDeadline = now + configuration.keepAliveInterval
    }

    /// Turns keep-alive on with the given idle time, or off with nil.
    public mutating func setKeepAlive(_ idle: Interval?, now: Instant) {
        keepAliveIdle = idle
        keepAliveProbesSent = 0
        keepAliveDeadline = idle.map { now + $0 }
    }

    /// Switches Nagle's algorithm off (`noDelay`) or on; switching it off
    /// sends what it was holding back.
    public mutating func setNoDelay(_ noDelay: Bool, now: Instant) {
        nagle = !noDelay
        if noDelay { output(now: now) }
    }

    /// Gives up an unanswered `connect` at `deadline` (closed with `timeout`).
    public mutating func setConnectDeadline(_ deadline: Instant) {
        if state == .synSent || state == .synReceived { connectDeadline = deadline }
    }

    /// Whether the handshake is done (every state after SYN-RECEIVED).
    public var isSynchronized: Bool {
        state != .synSent && state != .synReceived && state != .closed
    }

    /// Whether `write` can still take data: not shut down, reset or closed.
    public var isWritable: Bool {
        !finQueued && state != .closed && state != .timeWait
    }

    /// A SYN for this connection's four-tuple while it is in TIME-WAIT may
    /// open a new incarnation when its sequence number is beyond the old
    /// one's (RFC 9293 §3.6.1, RFC 6191 without timestamps' refinement).
    public func acceptsNewIncarnation(synSequence: SequenceNumber) -> Bool {
        state == .timeWait && rcvNxt < synSequence
    }

    /// An ICMP "fragmentation needed" lowered the path MTU (RFC 1191 §6.1):
    /// use smaller segments from now on and resend the first
    /// unacknowledged one, which was too big to arrive.
    public mutating func pathMTUDecreased(to mtu: Int, now: Instant) {
        var mss = max(mtu, 68) - 40
        if timestampsOn { mss -= 12 }
        mss = max(mss, 64)
        guard isSynchronized, mss < sendMSS else { return }
        sendMSS = mss
        if sndNxt - sndUna > 0 { retransmitFirst(now: now) }
    }

    /// Whether `sequence` lies in what we sent and the peer has not yet
    /// acknowledged (RFC 5927 §4.1's check on a quoted segment).
    public func sentRecently(_ sequence: SequenceNumber) -> Bool {
        !(sequence < sndUna) && sequence < sndMax
    }

    /// An ICMP destination-unreachable about this connection: a hard error
    /// while connecting (RFC 1122 §4.2.3.9 lets us abort, as Linux does),
    /// a soft one afterwards that retransmission deals with.
    public mutating func destinationUnreachable() {
        if state == .synSent { enterClosed(.unreachable) }
    }

    /// The figures the `Stack` contract reports for a connection.
    public var connectionStatistics: ConnectionStatistics {
        var s = ConnectionStatistics()
        s.segmentsSent = statistics.segmentsSent
        s.segmentsReceived = statistics.segmentsReceived
        s.retransmissions = statistics.retransmissions
        s.bytesAcknowledged = statistics.bytesSent
        s.bytesReceived = statistics.bytesReceived
        s.bytesInFlight = max(0, sndNxt - sndUna)
        s.congestionWindow = congestion.congestionWindow
        s.slowStartThreshold = congestion.slowStartThreshold
        s.sendWindow = sndWnd
        s.receiveWindow = receiveBuffer.window
        s.maximumSegmentSize = sendMSS
        s.smoothedRTT = rtt.smoothed
        s.rttVariation = rtt.smoothed == nil ? nil : rtt.variation
        s.retransmissionTimeout = rtt.timeout
        return s
    }

    mutating func probeZeroWindow(now: Instant) {
        // RFC 9293 §3.8.6.1: send one byte beyond the window, backing off.
        guard offeredWindow == 0, sendBuffer.end - sndNxt > 0 || sndNxt - sndUna > 0 else { return }
        let probeStart = sndUna
        let length = min(1, sendBuffer.end - probeStart)
        guard length > 0 else { return }
        // With `now`, so the probe carries timestamps like every other
        // non-RST segment (RFC 7323 §3.2).
        outbox.append(makeSegment(sequence: probeStart, acknowledgment: rcvNxt, flags: .ack, length: length, from: probeStart,
                                  now: now))
        // The peer may accept the probe's byte and acknowledge it; an ACK
        // beyond SND.MAX would be refused (§3.10.7.4). SND.NXT stays, so
        // the probe is not flight: no RTO, no duplicate ACKs from answers.
        if sndMax < probeStart + length { sndMax = probeStart + length }
        rtt.backOff()
        persistDeadline = now + rtt.timeout
    }

    // MARK: Receiving

    /// Processes one segment for this connection (RFC 9293 §3.10.7).
    public mutating func receive(_ segment: borrowing TCPSegment, now: Instant) {
        statistics.segmentsReceived += 1
        switch state {
        case .closed:
            return
        case .synSent:
            receiveInSynSent(segment, now: now)
        default:
            receiveSynchronized(segment, now: now)
        }
        if isSynchronized {
            connectDeadline = nil
            // Anything from the peer shows it alive (RFC 1122 §4.2.3.6).
            keepAliveProbesSent = 0
            if let idle = keepAliveIdle, state != .timeWait { keepAliveDeadline = now + idle }
        }
    }

    mutating func receiveInSynSent(_ s: borrowing TCPSegment, now: Instant) {
        let flags = s.flags
        var ackAcceptable = false
        if flags.contains(.ack) {
            let ack = s.acknowledgmentNumber
            // First check: the ACK must cover our SYN and nothing unsent.
            guard iss < ack, !(sndNxt < ack) else {
                if !flags.contains(.rst) {
                    outbox.append(makeSegment(sequence: ack, acknowledgment: nil, flags: .rst, length: 0, from: ack))
                }
                statistics.segmentsDropped += 1
                return
            }
            ackAcceptable = true
        }
        if flags.contains(.rst) {
            // RFC 5961 §3.2 asks SYN-SENT to accept a RST only with an acceptable ACK.
            if ackAcceptable { enterClosed(.refused) }
            return
        }
        guard flags.contains(.syn) else { return }
        irs = s.sequenceNumber
        receiveBuffer = TCPReceiveBuffer(next: irs + 1, capacity: configuration.receiveBufferSize)
        negotiate(s.options, pathMTU: receiveMSS + 40)
        if let ts = s.options.timestamps { tsRecent = ts.value }
        if ackAcceptable {
            acknowledge(upTo: s.acknowledgmentNumber, now: now, timestampEcho: s.options.timestamps?.echoReply)
            sndWnd = Int(s.window)  // SYN windows are not scaled
            maxSndWnd = sndWnd
            sndWl1 = s.sequenceNumber
            sndWl2 = s.acknowledgmentNumber
            state = .established
            events.append(.established)
            if finQueued { state = .finWait1 }
            sendAck(now: now)
            output(now: now)
        } else {
            // Simultaneous open (§3.5, figure 8).
            state = .synReceived
            sndWnd = Int(s.window)
            sendSyn(ack: true, now: now)
        }
    }

    /// The four acceptability cases of §3.10.7.4.
    func acceptable(_ seq: SequenceNumber, length: Int) -> Bool {
        let window = receiveBuffer.window
        if length == 0 {
            return window == 0 ? seq == rcvNxt : seq.isIn(rcvNxt, rcvNxt + window)
        }
        guard window > 0 else { return false }
        return seq.isIn(rcvNxt, rcvNxt + window) || (seq + (length - 1)).isIn(rcvNxt, rcvNxt + window)
    }

    mutating func receiveSynchronized(_ s: borrowing TCPSegment, now: Instant) {
        let flags = s.flags
        let seq = s.sequenceNumber
        let length = s.sequenceLength

        // RFC 7323 §5.3 PAWS: an old timestamp marks an old duplicate.
        if timestampsOn, let ts = s.options.timestamps, !flags.contains(.rst),
           Int32(bitPattern: ts.value &- tsRecent) < 0 {
            sendAck(now: now)
            statistics.segmentsDropped += 1
            return
        }
        // First: sequence number.
        if !acceptable(seq, length: length) {
            if state == .timeWait && flags.contains(.syn) {
                statistics.segmentsDropped += 1
                return
            }
            if !flags.contains(.rst) { sendAck(now: now) }
            statistics.segmentsDropped += 1
            return
        }
        // Second: RST (RFC 5961 §3.2: exact match resets, in-window challenges).
        if flags.contains(.rst) {
            if seq == rcvNxt {
                switch state {
                case .synReceived: enterClosed(.refused)
                case .timeWait, .lastAck, .closing: enterClosed(.normal)
                default: enterClosed(.reset)
                }
            } else {
                sendChallengeAck(now: now)
            }
            return
        }
        // Fourth: SYN in a synchronized state (RFC 5961 §4).
        if flags.contains(.syn) {
            if state == .synReceived && seq == irs { return }  // a retransmitted SYN: our SYN-ACK timer covers it
            sendChallengeAck(now: now)
            return
        }
        // Fifth: ACK.
        guard flags.contains(.ack) else {
            statistics.segmentsDropped += 1
            return
        }
        let ack = s.acknowledgmentNumber
        // RFC 5961 §5.2: an ACK older than the window we ever advertised is blind.
        if ack < sndUna - max(maxSndWnd, 1) || sndMax < ack {
            sendChallengeAck(now: now)
            return
        }
        // RFC 7323 §4.3: remember the timestamp of a segment at or before
        // the last ACK we sent (PAWS above ensured it is not older).
        if timestampsOn, let ts = s.options.timestamps, !(lastAckSent < seq) {
            tsRecent = ts.value
        }
        if state == .synReceived {
            guard sndUna < ack else {
                outbox.append(makeSegment(sequence: ack, acknowledgment: nil, flags: .rst, length: 0, from: ack))
                return
            }
            state = .established
            events.append(.established)
            sndWnd = Int(s.window) << Int(sendShift)
            maxSndWnd = max(maxSndWnd, sndWnd)
            sndWl1 = seq
            sndWl2 = ack
            if finQueued { state = .finWait1 }
        }
        processAck(s, now: now)
        if state == .closed { return }
        // Seventh: data.
        let payload = s.payload
        if payload.count > 0 {
            switch state {
            case .established, .finWait1, .finWait2:
                let before = receiveBuffer.readable
                let delivered = receiveBuffer.insert(payload, at: seq)
                statistics.bytesReceived += UInt64(delivered)
                if readClosed {
                    _ = receiveBuffer.read(maximum: receiveBuffer.readable) { _ in }
                } else if receiveBuffer.readable > before {
                    events.append(.readable)
                }
                if seq != rcvNxt - delivered || receiveBuffer.outOfOrderBytes > 0 || delivered < payload.count {
                    sendAck(now: now)  // out of order or a gap: ACK at once (RFC 5681 §4.2)
                } else {
                    scheduleAck(dataBytes: payload.count, now: now)
                }
            default:
                break  // after the peer's FIN, data is ignored
            }
        }
        // Eighth: FIN.
        if flags.contains(.fin) {
            pendingFin = seq + (length - 1)
        }
        if let fin = pendingFin, fin == rcvNxt, !finReceived {
            processFin(now: now)
        }
        if batching {
            flushPending = true
        } else {
            output(now: now)
        }
    }

    mutating func processAck(_ s: borrowing TCPSegment, now: Instant) {
        let ack = s.acknowledgmentNumber
        let window = Int(s.window) << Int(sendShift)
        let seq = s.sequenceNumber
        let newlySACKed = sackOn && !(ack < sndUna) ? recordSACK(s.options, acknowledgment: ack) : 0
        if sndUna < ack {
            let flight = sndNxt - sndUna
            let acknowledged = ack - sndUna
            acknowledge(upTo: ack, now: now, timestampEcho: s.options.timestamps?.echoReply)
            if state != .synReceived,
               congestion.newAcknowledgment(acknowledged, acknowledgment: ack, flightBefore: flight, now: now,
                                            rtt: rtt.smoothed ?? .zero) == .retransmit {
                retransmitFirst(now: now)
            }
            if sackOn && state != .synReceived { sackRecoveryStep(duplicate: newlySACKed > 0, now: now) }
        } else if ack == sndUna, sndNxt - sndUna > 0,
                  newlySACKed > 0 || (s.payload.count == 0 && !s.flags.contains(.fin) && window == sndWnd && window > 0) {
            // RFC 5681 §2: a duplicate ACK; with SACK, RFC 6675 §2 adds
            // any ACK that SACKs new data.
            statistics.duplicateAcknowledgments += 1
            if sackOn {
                sackRecoveryStep(duplicate: true, now: now)
            } else if congestion.duplicateAcknowledgment(flight: sndNxt - sndUna, highestSent: sndNxt) == .retransmit {
                statistics.fastRecoveries += 1
                retransmitFirst(now: now)
            }
        }
        // Window update (§3.10.7.4, SND.WL1/WL2), only from an ACK at or
        // after SND.UNA: an older one's window ends before data we may send.
        if !(ack < sndUna), sndWl1 < seq || (sndWl1 == seq && !(ack < sndWl2)) {
            sndWnd = window
            maxSndWnd = max(maxSndWnd, window)
            sndWl1 = seq
            sndWl2 = ack
            if sndWnd > 0 { persistDeadline = nil }
        }
        // Our FIN acknowledged?
        let finAcked = (finSent || sndMax == sendBuffer.end + 1) && ack == sendBuffer.end + 1
        switch state {
        case .finWait1 where finAcked:
            state = .finWait2
            finWait2Deadline = readClosed ? now + configuration.finWait2Timeout : nil
        case .closing where finAcked:
            enterTimeWait(now: now)
        case .lastAck where finAcked:
            enterClosed(.normal)
        default:
            break
        }
    }

    mutating func acknowledge(upTo ack: SequenceNumber, now: Instant, timestampEcho: UInt32?) {
        // The SYN and FIN occupy sequence space outside the buffer.
        var dataAck = ack
        if sendBuffer.end < dataAck { dataAck = sendBuffer.end }
        if dataAck < sendBuffer.unacknowledged { dataAck = sendBuffer.unacknowledged }
        let freed = sendBuffer.acknowledge(upTo: dataAck)
        statistics.bytesSent += UInt64(freed)
        sndUna = ack
        if sndNxt < sndUna { sndNxt = sndUna }
        if sndMax < sndNxt { sndMax = sndNxt }
        retransmissions = 0
        // RTT: from the timestamp echo (RFC 7323 §4.1) or the timed segment (Karn).
        if timestampsOn, let echo = timestampEcho, echo != 0 {
            let nowMs = UInt32(truncatingIfNeeded: now.nanoseconds / 1_000_000)
            let sample = Int64(Int32(bitPattern: nowMs &- echo))
            if sample >= 0 { rtt.sample(.milliseconds(sample)) }
        } else if let timed = timedSegment, timed.sequence < ack {
            rtt.sample(now - timed.sentAt)
            timedSegment = nil
        }
        retransmitDeadline = sndNxt - sndUna > 0 ? now + rtt.timeout : nil
        if writeBlocked && sendBuffer.freeSpace > 0 {
            writeBlocked = false
            events.append(.writable)
        }
    }

    mutating func processFin(now: Instant) {
        finReceived = true
        receiveBuffer.insertFin()
        if !readClosed { events.append(.endOfStream) }
        sendAck(now: now)
        switch state {
        case .synReceived, .established:
            state = .closeWait
        case .finWait1:
            let finAcked = finSent && sndUna == sendBuffer.end + 1
            if finAcked { enterTimeWait(now: now) } else { state = .closing }
        case .finWait2:
            enterTimeWait(now: now)
        default:
            break
        }
    }

    mutating func enterTimeWait(now: Instant) {
        state = .timeWait
        retransmitDeadline = nil
        finWait2Deadline = nil
        persistDeadline = nil
        keepAliveDeadline = nil
        timeWaitDeadline = now + configuration.maximumSegmentLifetime * 2
        reportClosed(.normal)
    }

    mutating func enterClosed(_ reason: CloseReason) {
        state = .closed
        retransmitDeadline = nil
        delayedAckDeadline = nil
        timeWaitDeadline = nil
        finWait2Deadline = nil
        persistDeadline = nil
        connectDeadline = nil
        keepAliveDeadline = nil
        reportClosed(reason)
    }

    mutating func reportClosed(_ reason: CloseReason) {
        guard !closeReported else { return }
        closeReported = true
        events.append(.closed(reason))
    }

    // MARK: Sending

    mutating func scheduleAck(dataBytes: Int, now: Instant) {
        // A segment the device coalesced (GRO) stands for as many as it holds.
        unacknowledgedSegments += max(1, dataBytes / max(receiveMSS - 40, 1))
        // RFC 5681 §4.2: ACK at least every second full-sized segment —
        // within a batch, once at its end (a device that coalesces
        // segments, GRO, gives the same stretch ACKs, which RFC 5681 §4.2
        // allows and every modern sender counts by bytes).
        if unacknowledgedSegments >= 2 {
            if batching {
                ackPending = true
                flushPending = true
                // Should the batch never end (a device that does not call
                // receiveBatchEnded), the delayed ACK still goes out.
                if delayedAckDeadline == nil { delayedAckDeadline = now + configuration.delayedAcknowledgment }
            } else {
                sendAck(now: now)
            }
        } else if delayedAckDeadline == nil {
            delayedAckDeadline = now + configuration.delayedAcknowledgment
        }
    }

    /// A pure ACK carries SND.MAX (within the peer's window), not SND.NXT: after a retransmission
    /// timeout SND.NXT goes back, but the peer may have received up to
    /// SND.MAX, and a segment below its RCV.NXT would be unacceptable to it
    /// (RFC 9293 §3.10.7.4) with its acknowledgment ignored; two stacks
    /// both recovering would then only trade ACKs.
    mutating func sendAck(now: Instant) {
        let seq = acceptableSequence
        outbox.append(makeSegment(sequence: seq, acknowledgment: rcvNxt, flags: .ack, length: 0, from: seq, now: now))
    }

    /// SND.MAX, or the right edge of the peer's window when that is lower
    /// (a zero window accepts only RCV.NXT itself), as Linux does.
    var acceptableSequence: SequenceNumber {
        let windowEnd = sndUna + sndWnd
        return windowEnd < sndMax ? windowEnd : sndMax
    }

    /// At most this many challenge ACKs per second (RFC 5961 §7).
    public static let challengeAckLimit = 10

    mutating func sendChallengeAck(now: Instant) {
        let second = now.nanoseconds / 1_000_000_000
        if second != challengeSecond {
            challengeSecond = second
            challengeAcksThisSecond = 0
        }
        guard challengeAcksThisSecond < Self.challengeAckLimit else { return }
        challengeAcksThisSecond += 1
        statistics.challengeAcknowledgments += 1
        sendAck(now: now)
    }

    mutating func sendSyn(ack: Bool, now: Instant) {
        var options = TCPOptions()
        options.maximumSegmentSize = UInt16(clamping: receiveMSS)
        if configuration.windowScaling && (!ack || sendShift > 0 || receiveShift > 0) { options.windowScale = offeredShift }
        if configuration.selectiveAcknowledgment && (!ack || sackOn) { options.sackPermitted = true }
        if configuration.timestamps && (!ack || timestampsOn) {
            options.timestamps = (Self.timestamp(now), ack ? tsRecent : 0)
        }
        let window = UInt16(clamping: receiveBuffer.window)  // never scaled in a SYN
        let header = TCPHeader(sourcePort: local.port, destinationPort: remote.port, sequenceNumber: iss,
                               acknowledgmentNumber: ack ? rcvNxt : SequenceNumber(0), flags: ack ? [.syn, .ack] : .syn,
                               window: window, options: options)
        outbox.append(Outgoing(header: header, payloadStart: iss + 1, payloadLength: 0, segmentSize: 0))
        statistics.segmentsSent += 1
        retransmitDeadline = now + rtt.timeout
        if ack { lastAckSent = rcvNxt }
    }

    static func timestamp(_ now: Instant) -> UInt32 { UInt32(truncatingIfNeeded: now.nanoseconds / 1_000_000) }

    /// A segment from this connection: the window, timestamps and SACK
    /// blocks filled in; sending any ACK cancels a delayed one.
    mutating func makeSegment(sequence: SequenceNumber, acknowledgment: SequenceNumber?, flags: TCPFlags, length: Int,
                              from start: SequenceNumber, now: Instant? = nil, segmentSize: Int = 0) -> Outgoing {
        var options = TCPOptions()
        if timestampsOn, let now { options.timestamps = (Self.timestamp(now), tsRecent) }
        if sackOn && acknowledgment != nil {
            for block in receiveBuffer.sackBlocks(maximum: timestampsOn ? 3 : 4) { options.appendSACKBlock(block) }
        }
        var f = flags
        if acknowledgment != nil { f.insert(.ack) }
        let window = UInt16(clamping: receiveBuffer.window >> Int(receiveShift))
        advertisedWindow = Int(window) << Int(receiveShift)
        let header = TCPHeader(sourcePort: local.port, destinationPort: remote.port, sequenceNumber: sequence,
                               acknowledgmentNumber: acknowledgment ?? SequenceNumber(0), flags: f, window: window,
                               options: options)
        if let acknowledgment {
            lastAckSent = acknowledgment
            delayedAckDeadline = nil
            unacknowledgedSegments = 0
            ackPending = false
        }
        statistics.segmentsSent += 1
        return Outgoing(header: header, payloadStart: start, payloadLength: length,
                        segmentSize: segmentSize > 0 ? segmentSize : length)
    }

    /// The peer's window counted from SND.UNA: its right edge is where the
    /// ACK that last updated the window put it (SND.WL2 + SND.WND). An ACK
    /// that advances SND.UNA without updating the window (an older
    /// SEG.SEQ, §3.10.7.4) must not slide that edge forward.
    var offeredWindow: Int { max(0, (sndWl2 + sndWnd) - sndUna) }

    /// Data bytes that fit in a segment sent now. The send MSS already
    /// leaves room for timestamps, which every segment carries (RFC 9293
    /// §3.7.1); SACK blocks come and go, so their room is taken from the
    /// data of the segments that carry them, as Linux does.
    var dataPerSegment: Int {
        guard sackOn, receiveBuffer.holdsOutOfOrderData else { return sendMSS }
        var options = TCPOptions()
        if timestampsOn { options.timestamps = (0, 0) }
        let base = options.encodedLength
        for block in receiveBuffer.sackBlocks(maximum: timestampsOn ? 3 : 4) { options.appendSACKBlock(block) }
        return max(1, sendMSS - (options.encodedLength - base))
    }

    mutating func retransmitFirst(now: Instant) {
        let unsentFrom = sndUna
        // Only data sent before (up to SND.MAX, the FIN aside): bytes never
        // sent may lie past the peer's window.
        let sentEnd = sndMax < sendBuffer.end ? sndMax : sendBuffer.end
        let available = sackOn ? scoreboard.unsackedLength(from: unsentFrom, limit: sentEnd) : sentEnd - unsentFrom
        let length = min(dataPerSegment, max(0, available))
        if length > 0 {
            outbox.append(makeSegment(sequence: unsentFrom, acknowledgment: rcvNxt, flags: .psh, length: length,
                                      from: unsentFrom, now: now))
            statistics.retransmissions += 1
            timedSegment = nil
        } else if finSent {
            outbox.append(makeSegment(sequence: sendBuffer.end, acknowledgment: rcvNxt, flags: .fin, length: 0,
                                      from: sendBuffer.end, now: now))
        }
        retransmitDeadline = now + rtt.timeout
    }

    /// Queues `length` bytes from SND.NXT (new data, or data again after a
    /// timeout) and moves SND.NXT, SND.MAX and the retransmission timer.
    mutating func sendFromNext(length: Int, segmentSize: Int, now: Instant) {
        outbox.append(makeSegment(sequence: sndNxt, acknowledgment: rcvNxt, flags: .psh, length: length,
                                  from: sndNxt, now: now, segmentSize: segmentSize))
        sndNxt = sndNxt + length
        if sndMax < sndNxt { sndMax = sndNxt }
        if retransmitDeadline == nil { retransmitDeadline = now + rtt.timeout }
    }

    /// Sends what the windows allow: new data, then FIN when queued.
    mutating func output(now: Instant, retransmitting: Bool = false) {
        guard state != .closed && state != .synSent && state != .synReceived && state != .timeWait else { return }
        let window = min(offeredWindow, congestion.congestionWindow)
        let mss = dataPerSegment
        // With segmentation offload one frame carries up to the limit, in
        // whole segments, so every segment but the last is full-sized.
        let perFrame = segmentationLimit > mss ? segmentationLimit / mss * mss : mss
        while true {
            let flight = sndNxt - sndUna
            // Going back after a timeout, skip what the peer SACKed (RFC 6675 §5.1).
            if sackOn && sndNxt < sndMax, let end = scoreboard.sackedRangeEnd(containing: sndNxt) {
                sndNxt = end
                continue
            }
            var unsent = sendBuffer.end - sndNxt
            if sackOn && sndNxt < sndMax { unsent = scoreboard.unsackedLength(from: sndNxt, limit: sendBuffer.end) }
            guard unsent > 0 else { break }
            let room = window - flight
            if room <= 0 {
                if offeredWindow == 0 && persistDeadline == nil && retransmitDeadline == nil {
                    persistDeadline = now + rtt.timeout
                }
                break
            }
            let length = min(unsent, perFrame, room)
            // Nagle (RFC 896, RFC 1122 §4.2.3.4): hold a small segment while
            // data is unacknowledged, unless it is the last before FIN.
            if nagle && length < mss && flight > 0 && !finQueued && !retransmitting { break }
            if length < min(mss, unsent) && length < sndWnd / 2 && flight > 0 { break }  // sender SWS avoidance
            if sndNxt < sendBuffer.end && retransmitting { statistics.retransmissions += 1 }
            if timedSegment == nil && !retransmitting { timedSegment = (sndNxt, now) }
            sendFromNext(length: length, segmentSize: mss, now: now)
        }
        if finQueued && !finSent && sndNxt == sendBuffer.end
            && (state == .finWait1 || state == .lastAck || state == .closing) {
            outbox.append(makeSegment(sequence: sndNxt, acknowledgment: rcvNxt, flags: .fin, length: 0, from: sndNxt, now: now))
            if sndNxt < sndMax { statistics.retransmissions += 1 }  // the FIN again, after a timeout
            finSent = true
            sndNxt = sndNxt + 1
            if sndMax < sndNxt { sndMax = sndNxt }
            if retransmitDeadline == nil { retransmitDeadline = now + rtt.timeout }
        }
    }
}

extension TCPReceiveBuffer {
    /// The peer's FIN occupies one sequence number after the data.
    mutating func insertFin() { advance(by: 1) }
}

extension TCPConnection {
    /// Reads up to `maximum` received in-order bytes (`receiveBuffer`'s
    /// `read`, for callers outside this module, whose `receiveBuffer` is
    /// read-only); call `didRead` afterwards so the window reopens.
    public mutating func read(maximum: Int, _ body: (Span<UInt8>) -> Void) -> Int {
        receiveBuffer.read(maximum: maximum, body)
    }
}
