import MirageDevices

/// One TLS connection of a `TLSStack`: the engine and what the driver
/// tracks around it. (Outside the generic stack, so it needs no generic
/// metadata at run time.)
final class TLSSession {
    /// Where the connection is.
    enum Phase {
        /// Client: the TCP connection is being opened.
        case connecting
        /// The TLS handshake is running (timer armed).
        case handshaking
        /// The handshake completed; application data flows.
        case established
        /// The engine failed, or the handshake timed out: only `connectionClosed` is left.
        case failed
    }

    /// What to do with the base connection once the pending ciphertext is written.
    enum AfterFlush {
        /// Nothing.
        case none
        /// `shutdownWrite` (after our close_notify).
        case shutdownWrite
        /// `close` (after our close_notify or fatal alert).
        case close
    }

    /// What a session's timer is for.
    enum TimerPurpose {
        /// The handshake deadline.
        case handshake
        /// The deadline for draining records after close or a failure.
        case close
        /// Deliver events held while reading was paused (armed by `resumeReading`).
        case drain
    }

    /// The connection handle (the base stack's; the application sees the same one).
    let id: ConnectionID
    /// The TLS state machine.
    let engine: TLSConnection
    /// The application's handler.
    var handler: any TCPHandler
    /// Server side: the listener that accepted it; nil for a client.
    let listener: ListenerID?
    /// Where the connection is.
    var phase: Phase
    /// The application has been given this connection (always true for a
    /// client, which got the handle from `connect`; a server's only after
    /// `connectionAccepted`).
    var announced: Bool
    /// Counted in the stack's handshakes in progress.
    var countedInProgress = false
    /// Records the base stack has not taken yet, from `pendingStart` on.
    var pending: [UInt8] = []
    /// The first byte of `pending` not yet written.
    var pendingStart = 0
    /// A `write` took fewer bytes than offered: `writable` is owed.
    var owesWritable = false
    /// The application paused reading.
    var paused = false
    /// Reading is paused because our own records (answers the peer provoked) wait to be sent.
    var pausedForOutput = false
    /// The application closed or aborted: no more events but `connectionClosed`.
    var applicationClosed = false
    /// The application shut down writing (or closed): `write` refuses.
    var writeShutdown = false
    /// The peer's close_notify or end of stream has been passed on.
    var endOfStreamDelivered = false
    /// The peer sent close_notify.
    var closeNotifyReceived = false
    /// The base stack reported the end of the peer's stream.
    var baseEnded = false
    /// A base `close` or `abort` has been requested.
    var baseCloseRequested = false
    /// Done once `pending` is empty.
    var afterFlush = AfterFlush.none
    /// The outstanding certificate verification's token.
    var verification: UInt64?
    /// The handshake or close timer.
    var timer: TimerID?
    /// The drain timer.
    var drainTimer: TimerID?
    /// Why the connection failed.
    var failure: TLSError?
    /// The reason reported to the application instead of the base stack's.
    var closeReason: CloseReason?
    /// Events are being handled: a nested `process` returns at once.
    var processing = false

    init(id: ConnectionID, engine: TLSConnection, handler: any TCPHandler, listener: ListenerID?, phase: Phase) {
        self.id = id
        self.engine = engine
        self.handler = handler
        self.listener = listener
        self.phase = phase
        announced = listener == nil
    }

    /// Bytes in `pending` not yet written.
    var pendingCount: Int { pending.count - pendingStart }
}
