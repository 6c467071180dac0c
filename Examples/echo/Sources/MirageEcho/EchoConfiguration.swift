import MirageDevices

/// The three services of the example.
public enum EchoService: Hashable, Sendable, CustomStringConvertible {
    /// RFC 862: every byte received is sent back.
    case echo
    /// RFC 863: every byte received is thrown away.
    case discard
    /// RFC 864 (character generator): a stream of pattern lines until the
    /// client closes; TCP only.
    case source

    /// The IANA port: 7, 9 or 19.
    public var standardPort: UInt16 {
        switch self {
        case .echo: 7
        case .discard: 9
        case .source: 19
        }
    }

    public var description: String {
        switch self {
        case .echo: "echo"
        case .discard: "discard"
        case .source: "source"
        }
    }
}

/// What an `EchoServer` serves and its limits: a plain value, so the same
/// server boots from a command line on Linux or a fixed configuration in a
/// unikernel.
public struct EchoConfiguration: Hashable, Sendable {
    /// The local address to listen on; nil listens on every address of the stack.
    public var address: IPAddress?
    /// TCP (and UDP) port of the echo service; nil turns it off, 0 lets the stack choose.
    public var echoPort: UInt16?
    /// TCP (and UDP) port of the discard service; nil turns it off, 0 lets the stack choose.
    public var discardPort: UInt16?
    /// TCP port of the character generator; nil turns it off, 0 lets the stack choose.
    public var sourcePort: UInt16?
    /// Whether echo and discard are served on UDP too.
    public var udp: Bool
    /// Whether the services are served on TCP (off for a stack without
    /// TCP, such as MirageTCPIP before TCPIP part 2).
    public var tcp: Bool
    /// Connections waiting in the handshake, per listener.
    public var backlog: Int
    /// Open connections at most; further ones are aborted and counted.
    public var maximumConnections: Int
    /// Bytes an echo connection may hold when the stack takes less than it
    /// was given; reading pauses as soon as anything is held, so this only
    /// bounds a stack that delivers more after `pauseReading`.
    public var echoBufferLimit: Int

    /// Default of `backlog`.
    public static let defaultBacklog = 128
    /// Default of `maximumConnections`.
    public static let defaultMaximumConnections = 1024
    /// Default of `echoBufferLimit` (256 KiB).
    public static let defaultEchoBufferLimit = 256 * 1024

    /// A configuration; by default the standard ports 7, 9 and 19 on every address.
    public init(
        address: IPAddress? = nil,
        echoPort: UInt16? = EchoService.echo.standardPort,
        discardPort: UInt16? = EchoService.discard.standardPort,
        sourcePort: UInt16? = EchoService.source.standardPort,
        udp: Bool = true,
        tcp: Bool = true,
        backlog: Int = EchoConfiguration.defaultBacklog,
        maximumConnections: Int = EchoConfiguration.defaultMaximumConnections,
        echoBufferLimit: Int = EchoConfiguration.defaultEchoBufferLimit
    ) {
        self.address = address
        self.echoPort = echoPort
        self.discardPort = discardPort
        self.sourcePort = sourcePort
        self.udp = udp
        self.tcp = tcp
        self.backlog = backlog
        self.maximumConnections = maximumConnections
        self.echoBufferLimit = echoBufferLimit
    }

    /// The standard ports moved up by `base` (7000 gives 7007, 7009, 7019), so
    /// the example runs without privileges; nil when a port would pass 65535.
    public static func offset(by base: UInt16, address: IPAddress? = nil) -> EchoConfiguration? {
        func shifted(_ service: EchoService) -> UInt16? {
            let (port, overflow) = base.addingReportingOverflow(service.standardPort)
            return overflow ? nil : port
        }
        guard let echo = shifted(.echo), let discard = shifted(.discard), let source = shifted(.source) else { return nil }
        return EchoConfiguration(address: address, echoPort: echo, discardPort: discard, sourcePort: source)
    }

    /// Every service on a port the stack chooses (tests).
    public static func ephemeral(address: IPAddress? = nil) -> EchoConfiguration {
        EchoConfiguration(address: address, echoPort: 0, discardPort: 0, sourcePort: 0)
    }

    /// The configured port of `service`, nil when it is off.
    public func port(of service: EchoService) -> UInt16? {
        switch service {
        case .echo: echoPort
        case .discard: discardPort
        case .source: sourcePort
        }
    }
}
