import MirageDevices
import MirageHTTP

/// What `mirage-www` serves and where: a plain value, so the same server
/// starts from a Linux command line or a unikernel's boot parameters.
public struct WWWConfiguration: Sendable {
    /// The TCP port.
    public var port: UInt16
    /// The address to listen on (nil: every address of the stack).
    public var address: IPAddress?
    /// HTTP limits, timeouts and connection bounds.
    public var http = HTTPServerConfiguration()

    /// A configuration serving on `port` of `address`.
    public init(port: UInt16, address: IPAddress?) {
        self.port = port
        self.address = address
    }
}

/// The web server of `mirage-www`: the files of a key-value store (the
/// slide deck compiled into the program, or a directory while editing it)
/// over HTTP/1.1 on any stack of the contract. Portable: callback API, no
/// Foundation, so it builds for Embedded Swift too.
///
/// Call everything from the stack's run loop.
public final class WWWServer<S: Stack, Store: KeyValueStore> {
    /// The static-file handler.
    public let files: HTTPFileHandler<Store>
    /// The HTTP server.
    public let http: HTTPServer<S>
    /// The settings.
    public let configuration: WWWConfiguration
    private var listener: ListenerID?

    /// A server for `store` on `stack`; `timers` and `clock` drive the HTTP
    /// timeouts, `wallClock` the Date field.
    public init(stack: S, store: Store, timers: any TimerScheduler, clock: any MonotonicClock,
                wallClock: (any WallClock)?, configuration: WWWConfiguration) {
        self.configuration = configuration
        files = HTTPFileHandler(store: store)
        http = HTTPServer(stack: stack, handler: files, timers: timers, clock: clock, wallClock: wallClock,
                          configuration: configuration.http)
        files.responder = http
    }

    /// Starts listening; returns where.
    @discardableResult
    public func start() throws(DeviceError) -> Endpoint? {
        let id = try http.listen(port: configuration.port, address: configuration.address)
        listener = id
        return http.localEndpoint(of: id)
    }

    /// Where it listens, once started.
    public var endpoint: Endpoint? { listener.flatMap { http.localEndpoint(of: $0) } }

    /// Stops listening and closes the connections.
    public func stop() {
        http.stop()
        listener = nil
    }

    /// One status line: connections and requests so far.
    public var status: String {
        let s = http.statistics
        let a = files.answered
        return "\(s.connectionsOpen) open, \(s.connectionsAccepted) accepted, \(s.connectionsRejected) rejected; "
            + "\(s.requests) requests, \(s.responses) responses (2xx \(a[2]), 3xx \(a[3]), 4xx \(a[4]), 5xx \(a[5])), "
            + "\(s.badRequests) refused as malformed, \(s.timeouts) timeouts, \(s.aborted) aborted"
    }
}
