import MirageDevices

/// Limits and timeouts of a `TLSStack`: what one connection may buffer and
/// how long a handshake may take, with defaults a server of many
/// connections can afford.
public struct TLSStackConfiguration: Hashable, Sendable {
    /// A handshake not complete this long after the TCP connection opened
    /// ends the connection (`connectionClosed(.timeout)`), so a silent or
    /// slow peer cannot hold a connection slot. RFC 8446 sets no bound; 30 s
    /// is what common servers allow for the whole TLS handshake.
    public static let defaultHandshakeTimeout = Interval.seconds(30)
    /// Ciphertext waiting for the underlying stack to take it, beyond which
    /// `write` accepts nothing more until `writable`: four full records
    /// (2^14 bytes of plaintext each, RFC 8446 §5.1) plus their overhead.
    public static let defaultMaximumPendingCiphertext = 4 * (16_384 + 256)
    /// Handshakes of accepted connections in progress at once; further
    /// accepted connections are aborted (counted in `handshakesRefused`).
    public static let defaultMaximumConcurrentHandshakes = 1024
    /// After `close` (or a failure that sends an alert) the queued records
    /// get this long to drain before the connection is aborted.
    public static let defaultCloseTimeout = Interval.seconds(10)

    /// See `defaultHandshakeTimeout`.
    public var handshakeTimeout = TLSStackConfiguration.defaultHandshakeTimeout
    /// See `defaultMaximumPendingCiphertext`.
    public var maximumPendingCiphertext = TLSStackConfiguration.defaultMaximumPendingCiphertext
    /// See `defaultMaximumConcurrentHandshakes`.
    public var maximumConcurrentHandshakes = TLSStackConfiguration.defaultMaximumConcurrentHandshakes
    /// See `defaultCloseTimeout`.
    public var closeTimeout = TLSStackConfiguration.defaultCloseTimeout

    /// The defaults.
    public init() {}
}

/// Counters of a `TLSStack`, over all its connections.
public struct TLSStackStatistics: Hashable, Sendable {
    /// Handshakes that completed (the application saw the connection).
    public var handshakesCompleted = 0
    /// Of the completed handshakes, those that resumed a session (a TLS 1.3
    /// PSK from a ticket or a TLS 1.2 session ticket).
    public var handshakesResumed = 0
    /// Handshakes that failed: an alert either way, the peer closing, a
    /// timeout, or the TCP connection ending first.
    public var handshakesFailed = 0
    /// Of the failed handshakes, those ended by the handshake timeout.
    public var handshakeTimeouts = 0
    /// Accepted connections aborted because `maximumConcurrentHandshakes`
    /// handshakes were already in progress.
    public var handshakesRefused = 0
    /// Fatal alerts sent (the engine failed locally and told the peer).
    public var alertsSent = 0
    /// Fatal alerts received from peers.
    public var alertsReceived = 0
    /// close_notify alerts sent (`close`/`shutdownWrite` on an established connection).
    public var closeNotifySent = 0
    /// close_notify alerts received (delivered as `endOfStream`).
    public var closeNotifyReceived = 0
    /// Established connections whose peer ended TCP without close_notify
    /// (RFC 8446 §6.1 asks for it; the application still sees `endOfStream`,
    /// so it must not trust a body that ends only with the connection).
    public var endsWithoutCloseNotify = 0
    /// Certificate verification answers that came after their connection
    /// had ended, and were dropped.
    public var lateVerifications = 0
    /// A statistics value with every counter at zero.
    public init() {}
}
