import MirageDevices

/// TLS 1.3 over any stack of the contract (`SocketStack`, MirageTCPIP's
/// `IPStack`): itself a `Stack`, so an application written against the
/// contract (MirageHTTP's server and client, mirage-www) gets TLS by being
/// handed a `TLSStack` instead of the plain stack.
///
/// - `listen` runs a TLS server (`server` configuration) on every accepted
///   connection; the application sees `connectionAccepted` only after the
///   handshake completed. A handshake that fails or times out is never
///   shown to it.
/// - `connect` runs a TLS client (`client` configuration); the application
///   sees `connectionEstablished` after the handshake, or `connectionClosed`.
/// - `write` encrypts; at most `maximumPendingCiphertext` bytes of records
///   wait for the base stack, beyond that `write` takes fewer bytes and
///   `writable` follows. `received` carries decrypted data.
/// - `shutdownWrite` and `close` send close_notify first (RFC 8446 §6.1); the
///   peer's close_notify arrives as `endOfStream`.
/// - A failure (an alert either way, a bad record, the handshake timeout)
///   ends the base connection and reports `connectionClosed` with `.aborted`
///   (we detected it), `.reset` (the peer sent an alert) or `.timeout`;
///   `failure(of:)` says why during that callback.
/// - UDP passes straight through to the base stack.
///
/// Connection handles are the base stack's. Certificate checks go to the
/// `CertificateVerifier`, whose answer may come later on the loop; the
/// connection waits meanwhile. Call everything from the base stack's loop.
public final class TLSStack<Base: Stack>: Stack, TCPHandler, TimerHandler {
    /// The stack TLS runs over.
    public let base: Base
    /// Used by `listen`; nil: this stack only connects.
    public let server: TLSServerConfiguration?
    /// Used by `connect`; nil: this stack only listens.
    public let client: TLSClientConfiguration?
    /// Limits and timeouts.
    public let configuration: TLSStackConfiguration
    /// Counters over all connections.
    public private(set) var statistics = TLSStackStatistics()
    /// Handshakes of accepted connections in progress now.
    public private(set) var handshakesInProgress = 0

    private let crypto: any CryptoProvider
    private let verifier: (any CertificateVerifier)?
    private let entropy: any EntropySource
    private let timers: any TimerScheduler
    private let clock: any MonotonicClock
    private var sessions: [ConnectionID: TLSSession] = [:]
    private var listeners: [ListenerID: any TCPHandler] = [:]
    private var timerOwners: [TimerID: (ConnectionID, TLSSession.TimerPurpose)] = [:]
    private var nextVerificationToken: UInt64 = 0

    /// A TLS stack over `base`. `verifier` checks peer certificates when the
    /// engine asks (a client with `verifiesCertificates`; a server never asks
    /// without client authentication, so it may pass nil); a request with no
    /// verifier is rejected. `timers` and `clock` (an `EventLoop` is both)
    /// drive the handshake and close timeouts.
    public init(base: Base, server: TLSServerConfiguration? = nil, client: TLSClientConfiguration? = nil,
                crypto: any CryptoProvider, verifier: (any CertificateVerifier)?, entropy: any EntropySource,
                timers: any TimerScheduler, clock: any MonotonicClock,
                configuration: TLSStackConfiguration = TLSStackConfiguration()) {
        self.base = base
        self.server = server
        self.client = client
        self.crypto = crypto
        self.verifier = verifier
        self.entropy = entropy
        self.timers = timers
        self.clock = clock
        self.configuration = configuration
    }

    // MARK: What the application asks about a connection

    /// Why `connection` failed: readable until its `connectionClosed`
    /// callback returns; nil for a connection that did not fail.
    public func failure(of connection: ConnectionID) -> TLSError? {
        sessions[connection]?.failure
    }

    /// The parameters the handshake settled (suite, group, ALPN protocol,
    /// peer certificates); nil before the handshake completed.
    public func negotiated(of connection: ConnectionID) -> NegotiatedParameters? {
        sessions[connection]?.engine.negotiated
    }

    /// Sends a KeyUpdate (RFC 8446 §4.6.3), asking the peer to update its
    /// keys too when `requestPeerUpdate`.
    public func updateKeys(on connection: ConnectionID, requestPeerUpdate: Bool) throws(DeviceError) {
        guard let s = sessions[connection] else { throw .unknownHandle }
        guard s.phase == .established, !s.writeShutdown else { throw .notConnected }
        s.engine.now = clock.now()  // ticket ages and expiry (the engine reads no clock)
        do { try s.engine.updateKeys(requestPeerUpdate: requestPeerUpdate) } catch { throw .notConnected }
        flushEngine(s)
    }

    // MARK: Stack: listeners and connections

    public var localAddresses: [IPAddress] { base.localAddresses }

    /// Listens on the base stack; every accepted connection runs the server
    /// handshake before `handler` hears of it. Needs a server configuration.
    public func listen(port: UInt16, address: IPAddress?, backlog: Int, handler: any TCPHandler) throws(DeviceError) -> ListenerID {
        guard server != nil else { throw .invalidArgument("TLSStack has no server configuration to listen with") }
        let id = try base.listen(port: port, address: address, backlog: backlog, handler: self)
        listeners[id] = handler
        return id
    }

    public func localEndpoint(of listener: ListenerID) -> Endpoint? { base.localEndpoint(of: listener) }

    /// Stops listening; handshakes already under way finish and reach the
    /// listener's handler.
    public func closeListener(_ listener: ListenerID) {
        base.closeListener(listener)
        listeners[listener] = nil
    }

    /// Connects with the client configuration as it is (its `serverName` for
    /// SNI and certificate verification).
    public func connect(to remote: Endpoint, timeout: Interval?, handler: any TCPHandler) throws(DeviceError) -> ConnectionID {
        try connect(to: remote, serverName: client?.serverName, timeout: timeout, handler: handler)
    }

    /// Connects, naming `serverName` in SNI and verifying the certificate for
    /// it (a DNS name or an IP literal; nil: neither). `timeout` bounds the
    /// TCP connect; the handshake has its own timeout.
    public func connect(to remote: Endpoint, serverName: String?, timeout: Interval?, handler: any TCPHandler) throws(DeviceError) -> ConnectionID {
        guard var settings = client else { throw .invalidArgument("TLSStack has no client configuration to connect with") }
        settings.serverName = serverName
        let id = try base.connect(to: remote, timeout: timeout, handler: self)
        let engine = TLSConnection(client: settings, crypto: crypto, entropy: entropy)
        sessions[id] = TLSSession(id: id, engine: engine, handler: handler, listener: nil, phase: .connecting)
        return id
    }

    public func endpoints(of connection: ConnectionID) -> (local: Endpoint, remote: Endpoint)? {
        guard let s = sessions[connection], s.announced else { return nil }
        return base.endpoints(of: connection)
    }

    public func setHandler(_ handler: any TCPHandler, for connection: ConnectionID) throws(DeviceError) {
        guard let s = sessions[connection], s.announced else { throw .unknownHandle }
        s.handler = handler
    }

    /// Encrypts as much of `bytes` as the pending-ciphertext limit allows and
    /// hands the records to the base stack; returns the plaintext bytes
    /// taken (`writable` follows when fewer than offered).
    public func write(_ bytes: Span<UInt8>, on connection: ConnectionID) throws(DeviceError) -> Int {
        guard let s = sessions[connection], s.announced else { throw .unknownHandle }
        guard s.phase == .established, !s.writeShutdown, !s.applicationClosed else { throw .notConnected }
        // Encrypt while the base stack keeps taking the records: stop only
        // when ciphertext waits, so the base owes us the `writable` we pass on.
        var taken = 0
        while taken < bytes.count {
            let room = configuration.maximumPendingCiphertext - s.pendingCount
            guard room > 0 else { break }
            let count = min(bytes.count - taken, room)
            do {
                s.engine.now = clock.now()
                try s.engine.write(bytes.extracting(taken..<(taken + count)))
            } catch {
                throw .notConnected
            }
            taken += count
            flushEngine(s)
        }
        if taken < bytes.count { s.owesWritable = true }
        return taken
    }

    public func pauseReading(_ connection: ConnectionID) {
        guard let s = sessions[connection], s.announced else { return }
        s.paused = true
        base.pauseReading(connection)
    }

    /// Resumes reading; records decrypted before the pause are delivered
    /// from a timer right after this call returns (never inside it).
    public func resumeReading(_ connection: ConnectionID) {
        guard let s = sessions[connection], s.announced, s.paused else { return }
        s.paused = false
        if !s.pausedForOutput { base.resumeReading(connection) }
        if s.drainTimer == nil {
            let id = timers.schedule(at: clock.now(), self)
            s.drainTimer = id
            timerOwners[id] = (connection, .drain)
        }
    }

    /// Sends close_notify, then shuts the base connection down for writing.
    public func shutdownWrite(_ connection: ConnectionID) {
        guard let s = sessions[connection], s.announced, !s.writeShutdown else { return }
        guard s.phase == .established else {
            close(connection)
            return
        }
        s.writeShutdown = true
        sendCloseNotify(s)
        if s.pendingCount == 0 { base.shutdownWrite(connection) } else if s.afterFlush == .none { s.afterFlush = .shutdownWrite }
    }

    /// Sends close_notify (after the queued records), then closes the base
    /// connection; `connectionClosed` follows.
    public func close(_ connection: ConnectionID) {
        guard let s = sessions[connection], s.announced, !s.applicationClosed else { return }
        s.applicationClosed = true
        if s.phase == .established && !s.writeShutdown { sendCloseNotify(s) }
        s.writeShutdown = true
        closeBase(s)
    }

    public func abort(_ connection: ConnectionID) {
        guard let s = sessions[connection], s.announced else { return }
        s.applicationClosed = true
        s.writeShutdown = true
        s.baseCloseRequested = true
        base.abort(connection)
    }

    public func setNoDelay(_ noDelay: Bool, for connection: ConnectionID) throws(DeviceError) {
        try base.setNoDelay(noDelay, for: connection)
    }

    public func setKeepAlive(_ idle: Interval?, for connection: ConnectionID) throws(DeviceError) {
        try base.setKeepAlive(idle, for: connection)
    }

    public func statistics(of connection: ConnectionID) -> ConnectionStatistics? { base.statistics(of: connection) }

    // MARK: Stack: UDP, straight through

    public func bindUDP(port: UInt16, address: IPAddress?, handler: any UDPHandler) throws(DeviceError) -> UDPSocketID {
        try base.bindUDP(port: port, address: address, handler: handler)
    }

    public func localEndpoint(of socket: UDPSocketID) -> Endpoint? { base.localEndpoint(of: socket) }

    public func send(_ payload: Span<UInt8>, to destination: Endpoint, from socket: UDPSocketID) throws(DeviceError) {
        try base.send(payload, to: destination, from: socket)
    }

    public func closeUDP(_ socket: UDPSocketID) { base.closeUDP(socket) }

    // MARK: TCPHandler: the base stack's events

    public func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {
        guard let server, let handler = listeners[listener] else {
            base.abort(connection)
            return
        }
        guard handshakesInProgress < configuration.maximumConcurrentHandshakes else {
            statistics.handshakesRefused += 1
            base.abort(connection)
            return
        }
        let engine = TLSConnection(server: server, crypto: crypto, entropy: entropy)
        let s = TLSSession(id: connection, engine: engine, handler: handler, listener: listener, phase: .handshaking)
        sessions[connection] = s
        startHandshake(s)
    }

    public func connectionEstablished(_ connection: ConnectionID) {
        guard let s = sessions[connection], s.phase == .connecting else { return }
        s.phase = .handshaking
        startHandshake(s)
    }

    public func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {
        guard let s = sessions[connection], s.phase == .handshaking || s.phase == .established else { return }
        s.engine.now = clock.now()
        s.engine.receive(bytes)
        process(s)
        // Records the peer provokes (KeyUpdates, alerts) must not pile up
        // while it does not read: stop reading until they drain.
        if s.pendingCount > configuration.maximumPendingCiphertext && !s.pausedForOutput && sessions[connection] === s {
            s.pausedForOutput = true
            base.pauseReading(connection)
        }
    }

    public func endOfStream(on connection: ConnectionID) {
        guard let s = sessions[connection] else { return }
        s.baseEnded = true
        switch s.phase {
        case .connecting, .handshaking:
            fail(s, .handshakeFailure("the peer closed the connection during the handshake"))
        case .established:
            process(s)
        case .failed:
            break
        }
    }

    public func writable(_ connection: ConnectionID) {
        guard let s = sessions[connection] else { return }
        flushPending(s)
        if s.pausedForOutput && s.pendingCount <= configuration.maximumPendingCiphertext {
            s.pausedForOutput = false
            if !s.paused { base.resumeReading(connection) }
        }
        if s.owesWritable && s.pendingCount < configuration.maximumPendingCiphertext
            && s.phase == .established && !s.writeShutdown && !s.applicationClosed {
            s.owesWritable = false
            s.handler.writable(connection)
        }
    }

    public func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {
        guard let s = sessions[connection] else { return }
        cancelTimers(s)
        endHandshake(s, completed: false)
        if s.announced {
            s.handler.connectionClosed(connection, reason: s.closeReason ?? reason)
        }
        sessions[connection] = nil
    }

    // MARK: TimerHandler

    public func timerFired(_ id: TimerID, now: Instant) {
        guard let owner = timerOwners.removeValue(forKey: id), let s = sessions[owner.0] else { return }
        let connection = owner.0
        switch owner.1 {
        case .drain:
            s.drainTimer = nil
            process(s)
        case .handshake:
            s.timer = nil
            guard s.phase == .handshaking else { return }
            statistics.handshakeTimeouts += 1
            let seconds = configuration.handshakeTimeout.milliseconds / 1000
            s.failure = .limitExceeded("the handshake did not complete within \(seconds) s")
            s.closeReason = .timeout
            endHandshake(s, completed: false)
            s.phase = .failed
            s.baseCloseRequested = true
            base.abort(connection)
        case .close:
            s.timer = nil
            s.pending.removeAll()
            s.pendingStart = 0
            base.abort(connection)
        }
    }

    // MARK: Driving the engine

    private func startHandshake(_ s: TLSSession) {
        if s.listener != nil {
            s.countedInProgress = true
            handshakesInProgress += 1
        }
        arm(s, .handshake, after: configuration.handshakeTimeout)
        s.engine.now = clock.now()
        s.engine.start()
        process(s)
    }

    /// Counts a handshake's end once.
    private func endHandshake(_ s: TLSSession, completed: Bool) {
        if s.countedInProgress {
            s.countedInProgress = false
            handshakesInProgress -= 1
        }
        guard s.phase == .handshaking else { return }
        if completed {
            statistics.handshakesCompleted += 1
            if s.engine.negotiated?.resumed == true { statistics.handshakesResumed += 1 }
        } else {
            statistics.handshakesFailed += 1
        }
    }

    /// Writes the engine's output and handles its events until it has none,
    /// the application paused reading, or the connection failed.
    private func process(_ s: TLSSession) {
        if s.processing { return }  // a synchronous verifier answer: the loop below goes on
        s.processing = true
        defer { s.processing = false }
        flushEngine(s)
        while s.phase != .failed && sessions[s.id] === s {
            if s.paused && s.announced { return }
            guard let event = s.engine.nextEvent() else { break }
            handle(event, s)
            flushEngine(s)
        }
        // The peer's TCP FIN after the last record: end of stream for the
        // application, once every record before it has been delivered.
        if s.phase == .established && s.baseEnded && !s.endOfStreamDelivered && !(s.paused && s.announced) {
            s.endOfStreamDelivered = true
            if !s.closeNotifyReceived { statistics.endsWithoutCloseNotify += 1 }
            if !s.applicationClosed { s.handler.endOfStream(on: s.id) }
        }
    }

    private func handle(_ event: TLSEvent, _ s: TLSSession) {
        switch event {
        case .verifyCertificates(let request):
            requestVerification(request, s)
        case .handshakeCompleted:
            endHandshake(s, completed: true)
            s.phase = .established
            // Closed by the application during its handshake: the base close
            // (and its timer) is under way; nothing more to tell it.
            if s.applicationClosed { return }
            cancelTimers(s)
            s.announced = true
            if let listener = s.listener {
                s.handler.connectionAccepted(s.id, listener: listener)
            } else {
                s.handler.connectionEstablished(s.id)
            }
        case .applicationData(let data):
            guard !s.applicationClosed else { return }
            let bytes = data
            s.handler.received(bytes.span, on: s.id)
        case .closeNotify:
            statistics.closeNotifyReceived += 1
            s.closeNotifyReceived = true
            guard !s.endOfStreamDelivered else { return }
            s.endOfStreamDelivered = true
            if !s.applicationClosed && s.announced { s.handler.endOfStream(on: s.id) }
        case .failed(let error):
            fail(s, error)
        }
    }

    private func requestVerification(_ request: CertificateVerificationRequest, _ s: TLSSession) {
        guard let verifier else {
            s.engine.now = clock.now()
            s.engine.certificateVerificationCompleted(.rejected(.other("no certificate verifier is configured")))
            return
        }
        nextVerificationToken &+= 1
        let token = nextVerificationToken
        s.verification = token
        verifier.verify(request) { result in
            self.verificationCompleted(result, s, token: token)
        }
    }

    /// The verifier's answer: dropped when the connection ended meanwhile
    /// (or this is not the answer it waits for).
    private func verificationCompleted(_ result: CertificateVerificationResult, _ s: TLSSession, token: UInt64) {
        guard s.verification == token, s.phase == .handshaking, sessions[s.id] === s else {
            statistics.lateVerifications += 1
            return
        }
        s.verification = nil
        s.engine.now = clock.now()
        s.engine.certificateVerificationCompleted(result)
        process(s)
    }

    /// Ends `s` after a failure: the engine's alert (if any) goes out, then
    /// the base connection closes; `connectionClosed` reports it.
    private func fail(_ s: TLSSession, _ error: TLSError) {
        guard s.phase != .failed else { return }
        endHandshake(s, completed: false)
        cancelTimers(s)
        s.failure = error
        s.phase = .failed
        switch error {
        case .alertReceived:
            statistics.alertsReceived += 1
            s.closeReason = .reset
        case .closed, .notReady:
            // Misuse, not a protocol failure: the engine sends no alert.
            s.closeReason = .aborted
        default:
            // The engine queued the alert `error.alert` (already taken
            // with the output before this event was handled).
            statistics.alertsSent += 1
            s.closeReason = .aborted
        }
        flushEngine(s)
        closeBase(s)
    }

    private func sendCloseNotify(_ s: TLSSession) {
        s.engine.now = clock.now()
        s.engine.close()
        statistics.closeNotifySent += 1
        flushEngine(s)
    }

    /// Closes the base connection once the pending records are written (or
    /// the close timeout runs out).
    private func closeBase(_ s: TLSSession) {
        guard !s.baseCloseRequested else { return }
        if s.pendingCount == 0 {
            s.baseCloseRequested = true
            cancelTimers(s)
            base.close(s.id)
        } else {
            s.afterFlush = .close
            arm(s, .close, after: configuration.closeTimeout)
        }
    }

    private func flushEngine(_ s: TLSSession) {
        if s.engine.hasOutput {
            let output = s.engine.takeOutput()
            if s.pendingStart == s.pending.count {
                s.pending = output
                s.pendingStart = 0
            } else {
                s.pending.append(contentsOf: output)
            }
        }
        flushPending(s)
    }

    /// Hands the pending records to the base stack until it takes less than offered.
    private func flushPending(_ s: TLSSession) {
        guard !s.baseCloseRequested else { return }
        while s.pendingCount > 0 {
            let buffer = s.pending
            let written: Int
            do {
                written = try base.write(buffer.span.extracting(s.pendingStart..<buffer.count), on: s.id)
            } catch {
                // The base connection cannot send any more: its close event follows.
                s.pending.removeAll()
                s.pendingStart = 0
                break
            }
            s.pendingStart += written
            if written == 0 { break }
        }
        if s.pendingStart == s.pending.count {
            s.pending.removeAll(keepingCapacity: s.pending.count <= configuration.maximumPendingCiphertext)
            s.pendingStart = 0
        } else if s.pendingStart >= 16_384 && s.pendingStart * 2 >= s.pending.count {
            s.pending.removeFirst(s.pendingStart)
            s.pendingStart = 0
        }
        guard s.pendingCount == 0 else { return }
        switch s.afterFlush {
        case .none:
            break
        case .shutdownWrite:
            s.afterFlush = .none
            base.shutdownWrite(s.id)
        case .close:
            s.afterFlush = .none
            s.baseCloseRequested = true
            cancelTimers(s)
            base.close(s.id)
        }
    }

    private func arm(_ s: TLSSession, _ purpose: TLSSession.TimerPurpose, after interval: Interval) {
        if let id = s.timer {
            timers.cancel(id)
            timerOwners[id] = nil
        }
        let id = timers.schedule(at: clock.now() + interval, self)
        s.timer = id
        timerOwners[id] = (s.id, purpose)
    }

    private func cancelTimers(_ s: TLSSession) {
        for id in [s.timer, s.drainTimer] {
            if let id {
                timers.cancel(id)
                timerOwners[id] = nil
            }
        }
        s.timer = nil
        s.drainTimer = nil
    }
}
