import ArgumentParser
import MirageDevices
import MiragePlatform

#if canImport(Glibc)
import Glibc
#endif

/// The network a program runs on, named like MirageOS's `--net` boot parameter.
public enum NetworkBackend: String, CaseIterable, ExpressibleByArgument, Sendable {
    /// The kernel's TCP/IP through ordinary sockets (`SocketStack`); needs no root.
    case socket
    /// Our own TCP/IP stack (MirageTCPIP) on a tap device.
    case tap
}

/// `--fault-direction`: which frames a fault injector hits.
public enum FaultDirectionOption: String, CaseIterable, ExpressibleByArgument, Sendable {
    /// Frames our stack sends (towards the kernel).
    case transmit
    /// Frames our stack receives (from the kernel).
    case receive
    /// Both.
    case both

    /// The injector's directions.
    public var directions: FaultDirections {
        switch self {
        case .transmit: .transmit
        case .receive: .receive
        case .both: .both
        }
    }
}

/// An IPv4 address with its prefix length, as in `10.0.0.2/24`.
public struct IPv4Prefix: Hashable, Sendable, CustomStringConvertible, ExpressibleByArgument {
    /// The interface address.
    public var address: IPv4Address
    /// The network prefix length, 0 through 32.
    public var prefixLength: Int

    /// An address and prefix length; nil when the length is above 32 or negative.
    public init?(address: IPv4Address, prefixLength: Int) {
        guard (0...32).contains(prefixLength) else { return nil }
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses `a.b.c.d/n`; throws a message that says which part is wrong.
    public init(parsing text: String) throws(MirageOptionsError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw .missingPrefixLength(text) }
        guard let address = IPv4Address(String(parts[0])) else { throw .badIPv4Address(String(parts[0])) }
        guard let length = Int(parts[1]), (0...32).contains(length), parts[1].allSatisfy({ $0.isASCII && $0.isNumber })
        else { throw .badPrefixLength(String(parts[1])) }
        self.address = address
        self.prefixLength = length
    }

    /// Parses `a.b.c.d/n` from the command line.
    public init?(argument: String) {
        guard let value = try? IPv4Prefix(parsing: argument) else { return nil }
        self = value
    }

    /// The network mask, e.g. 255.255.255.0 for /24.
    public var netmask: IPv4Address {
        IPv4Address(rawValue: prefixLength == 0 ? 0 : UInt32.max << UInt32(32 - prefixLength))
    }

    /// Whether `other` is on this network.
    public func contains(_ other: IPv4Address) -> Bool {
        (other.rawValue & netmask.rawValue) == (address.rawValue & netmask.rawValue)
    }

    public var description: String { "\(address)/\(prefixLength)" }
}

/// What is wrong with the command line, said precisely.
public enum MirageOptionsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `--ipv4` without `/prefix`.
    case missingPrefixLength(String)
    /// Not a dotted-quad IPv4 address.
    case badIPv4Address(String)
    /// A prefix length that is not a number from 0 to 32.
    case badPrefixLength(String)
    /// Two options that cannot be used together.
    case conflicting(String, String)
    /// An option that needs another one.
    case requires(String, String)
    /// The gateway is not on the `--ipv4` network.
    case gatewayOffNetwork(gateway: IPv4Address, network: IPv4Prefix)
    /// `--port-base` so high that a service port would pass 65535.
    case portOutOfRange(base: UInt16, offset: UInt16)
    /// A `--fault-*` rate that is not a percentage from 0 to 100.
    case badPercentage(String)
    /// A `--fault-*` time that is not a whole number of milliseconds in range.
    case badMilliseconds(String)
    /// The event loop or stack could not be set up.
    case platform(DeviceError)

    public var description: String {
        switch self {
        case .missingPrefixLength(let text):
            "'\(text)' needs a prefix length, as in 10.0.0.2/24"
        case .badIPv4Address(let text):
            "'\(text)' is not an IPv4 address (four decimal octets, as in 10.0.0.2)"
        case .badPrefixLength(let text):
            "'\(text)' is not a prefix length (a number from 0 to 32)"
        case .conflicting(let a, let b):
            "\(a) and \(b) cannot be used together"
        case .requires(let a, let b):
            "\(a) needs \(b)"
        case .gatewayOffNetwork(let gateway, let network):
            "the gateway \(gateway) is not on the network \(network)"
        case .portOutOfRange(let base, let offset):
            "--port-base \(base) puts port \(offset) past 65535"
        case .badPercentage(let text):
            "'\(text)' is not a percentage (a number from 0 to 100, as in 1 or 0.5)"
        case .badMilliseconds(let text):
            "'\(text)' is not a time in milliseconds (a whole number from 0 to \(MirageOptions.maximumFaultMilliseconds))"
        case .platform(let error):
            "cannot set up the network: \(error)"
        }
    }
}

/// The network options every MirageSwift program shares, named like
/// MirageOS's boot parameters. Include with `@OptionGroup var network: MirageOptions`.
public struct MirageOptions: ParsableArguments, Sendable {
    /// `--net socket|tap`.
    @Option(help: "The network stack: 'socket' (the kernel's, no root) or 'tap' (MirageTCPIP on a tap device).")
    public var net: NetworkBackend = .socket

    /// `--tap NAME`.
    @Option(help: ArgumentHelp("The tap device to use with --net tap.", valueName: "name"))
    public var tap: String?

    /// `--ipv4 ADDRESS/PREFIX`.
    @Option(
        name: .customLong("ipv4"),
        help: ArgumentHelp("The interface address and prefix length, e.g. 10.0.0.2/24.", valueName: "address/prefix"),
        transform: { text in
            do throws(MirageOptionsError) {
                return try IPv4Prefix(parsing: text)
            } catch {
                throw ValidationError(error.description)
            }
        })
    public var ipv4: IPv4Prefix?

    /// `--ipv4-gateway ADDRESS`.
    @Option(
        name: .customLong("ipv4-gateway"),
        help: ArgumentHelp("The default IPv4 gateway, e.g. 10.0.0.1.", valueName: "address"),
        transform: { text in
            guard let address = IPv4Address(text) else {
                throw ValidationError(MirageOptionsError.badIPv4Address(text).description)
            }
            return address
        })
    public var ipv4Gateway: IPv4Address?

    /// `--dhcp`.
    @Flag(help: "Configure IPv4 with DHCP instead of --ipv4.")
    public var dhcp = false

    /// `--offload`.
    @Flag(help: "Open the tap with the virtio-net header: the kernel segments our large TCP frames (TSO), hands us coalesced ones (GRO) and checks checksums (with --net tap).")
    public var offload = false

    /// `--pcap FILE`.
    @Option(help: ArgumentHelp("Record every frame to this pcap file (with --net tap).", valueName: "file"))
    public var pcap: String?

    /// `--fault-drop PCT`.
    @Option(
        name: .customLong("fault-drop"),
        help: ArgumentHelp("Lose this percentage of frames, e.g. 1 or 0.5 (with --net tap).", valueName: "percent"),
        transform: { text in try MirageOptions.percentage(text) })
    public var faultDrop: Double?

    /// `--fault-corrupt PCT`.
    @Option(
        name: .customLong("fault-corrupt"),
        help: ArgumentHelp(
            "Change one byte after the Ethernet and IPv4 headers in this percentage of frames (with --net tap).",
            valueName: "percent"),
        transform: { text in try MirageOptions.percentage(text) })
    public var faultCorrupt: Double?

    /// `--fault-duplicate PCT`.
    @Option(
        name: .customLong("fault-duplicate"),
        help: ArgumentHelp("Send this percentage of frames twice (with --net tap).", valueName: "percent"),
        transform: { text in try MirageOptions.percentage(text) })
    public var faultDuplicate: Double?

    /// `--fault-reorder PCT`.
    @Option(
        name: .customLong("fault-reorder"),
        help: ArgumentHelp(
            "Hold back this percentage of frames behind up to 4 later ones (at most 10 ms) (with --net tap).",
            valueName: "percent"),
        transform: { text in try MirageOptions.percentage(text) })
    public var faultReorder: Double?

    /// `--fault-delay MS`.
    @Option(
        name: .customLong("fault-delay"),
        help: ArgumentHelp("Delay every frame by this many milliseconds (with --net tap).", valueName: "ms"),
        transform: { text in try MirageOptions.milliseconds(text) })
    public var faultDelay: Int?

    /// `--fault-direction transmit|receive|both`.
    @Option(
        name: .customLong("fault-direction"),
        help: ArgumentHelp(
            "Which frames the --fault-* options hit: 'transmit' (ours, the default), 'receive' (the kernel's) or 'both'.",
            valueName: "direction"))
    public var faultDirection: FaultDirectionOption?

    /// `--fault-seed N`.
    @Option(
        name: .customLong("fault-seed"),
        help: ArgumentHelp(
            "Seed of the fault injector's random choices, so a run can be replayed (default \(MirageOptions.defaultFaultSeed)).",
            valueName: "n"))
    public var faultSeed: UInt64?

    /// Options as parsed from nothing: `--net socket` and no addresses.
    public init() {}

    /// Checks the combination of options (see `check`), for ArgumentParser.
    public func validate() throws {
        do throws(MirageOptionsError) {
            try check()
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// The cross-option rules, as a typed error.
    public func check() throws(MirageOptionsError) {
        if dhcp && ipv4 != nil { throw .conflicting("--dhcp", "--ipv4") }
        if dhcp && ipv4Gateway != nil { throw .conflicting("--dhcp", "--ipv4-gateway") }
        if let gateway = ipv4Gateway {
            guard let network = ipv4 else { throw .requires("--ipv4-gateway", "--ipv4") }
            guard network.contains(gateway) else { throw .gatewayOffNetwork(gateway: gateway, network: network) }
        }
        if tap != nil && net != .tap { throw .requires("--tap", "--net tap") }
        if let option = givenFaultOptions.first {
            if net != .tap { throw .requires(option, "--net tap") }
            if faultRateOptions.isEmpty {
                throw .requires(option, "a fault to inject (\(Self.faultRateOptionNames.joined(separator: ", ")))")
            }
        }
    }

    // MARK: Fault injection

    /// Where `--fault-corrupt` starts: after the Ethernet (14) and a
    /// minimal IPv4 header (20), which also spares ARP's sender fields.
    public static let faultCorruptFrom = 34
    /// `--fault-seed` when not given.
    public static let defaultFaultSeed: UInt64 = 1
    /// The longest `--fault-delay`: ten seconds is already far beyond any
    /// real link and keeps held frames (bounded by the injector) meaningful.
    public static let maximumFaultMilliseconds = 10_000
    /// The options that inject a fault, in the order `--help` lists them.
    static let faultRateOptionNames = ["--fault-drop", "--fault-corrupt", "--fault-duplicate", "--fault-reorder", "--fault-delay"]

    /// The fault options that inject something (a rate or a delay was given).
    var faultRateOptions: [String] {
        let given: [Bool] = [faultDrop != nil, faultCorrupt != nil, faultDuplicate != nil, faultReorder != nil, faultDelay != nil]
        return zip(Self.faultRateOptionNames, given).filter { $0.1 }.map { $0.0 }
    }

    /// Every `--fault-*` option given, rates first.
    var givenFaultOptions: [String] {
        var options = faultRateOptions
        if faultDirection != nil { options.append("--fault-direction") }
        if faultSeed != nil { options.append("--fault-seed") }
        return options
    }

    /// What the `--fault-*` options ask of a `FaultInjector`; nil when none
    /// was given (no injector at all).
    public var faultConfiguration: FaultConfiguration? {
        guard !faultRateOptions.isEmpty else { return nil }
        var configuration = FaultConfiguration()
        configuration.directions = (faultDirection ?? .transmit).directions
        configuration.dropRate = (faultDrop ?? 0) / 100
        configuration.corruptRate = (faultCorrupt ?? 0) / 100
        // A real link's FCS drops frames with damaged headers; past them the
        // IPv4, TCP and UDP checksums must catch it. A damaged ARP sender
        // field would instead poison the kernel's neighbour table.
        configuration.corruptFrom = Self.faultCorruptFrom
        configuration.duplicateRate = (faultDuplicate ?? 0) / 100
        configuration.reorderRate = (faultReorder ?? 0) / 100
        configuration.delay = .milliseconds(Int64(faultDelay ?? 0))
        return configuration
    }

    /// The seed for the fault injector.
    public var resolvedFaultSeed: UInt64 { faultSeed ?? Self.defaultFaultSeed }

    /// Parses a percentage from 0 to 100 (decimals allowed).
    static func percentage(_ text: String) throws -> Double {
        guard let value = Double(text), value.isFinite, (0...100).contains(value) else {
            throw ValidationError(MirageOptionsError.badPercentage(text).description)
        }
        return value
    }

    /// Parses whole milliseconds from 0 to `maximumFaultMilliseconds`.
    static func milliseconds(_ text: String) throws -> Int {
        guard let value = Int(text), (0...maximumFaultMilliseconds).contains(value) else {
            throw ValidationError(MirageOptionsError.badMilliseconds(text).description)
        }
        return value
    }

    /// Remarks on options that a socket stack does not use, one line each
    /// (print them before starting).
    public var socketStackNotes: [String] {
        guard net == .socket else { return [] }
        var notes: [String] = []
        if pcap != nil { notes.append("note: --pcap records only with --net tap; the kernel's sockets show no frames") }
        if dhcp { notes.append("note: --dhcp is ignored with --net socket: the kernel's addresses are used") }
        if offload { notes.append("note: --offload applies only to --net tap; the kernel's sockets use its own offloads") }
        if ipv4Gateway != nil { notes.append("note: --ipv4-gateway is ignored with --net socket: the kernel routes") }
        return notes
    }

    /// The kernel-socket stack these options ask for, on `loop` (`--net
    /// socket`); `--ipv4` adds its address to the stack's `localAddresses`.
    /// `makeNetwork` chooses between this and `--net tap`.
    public func makeStack(loop: EventLoop) throws(MirageOptionsError) -> SocketStack {
        try check()
        var configuration = SocketStack.Configuration()
        if let ipv4 { configuration.addresses.append(.v4(ipv4.address)) }
        return SocketStack(loop: loop, configuration: configuration)
    }

    /// Prints `error` to standard error as `program: error: …`.
    public static func report(_ error: MirageOptionsError, program: String) {
        writeLine("\(program): error: \(error.description)", to: STDERR_FILENO)
    }
}

/// `--port N`: for programs that serve one port. Include with
/// `@OptionGroup var port: PortOption` and read `port.resolved(default:)`.
public struct PortOption: ParsableArguments, Sendable {
    /// `--port N`; nil when not given.
    @Option(help: ArgumentHelp("The port to listen on (default: the program's own).", valueName: "port"))
    public var port: UInt16?

    /// Options as parsed from nothing.
    public init() {}

    /// The given port, or the program's default.
    public func resolved(default port: UInt16) -> UInt16 { self.port ?? port }
}

/// `--port-base N`: for programs that serve several well-known ports, moved
/// up by N so they run without privileges (7000: echo on 7007).
public struct PortBaseOption: ParsableArguments, Sendable {
    /// `--port-base N`; nil when not given.
    @Option(
        name: .customLong("port-base"),
        help: ArgumentHelp("Added to every standard port (default: the program's own).", valueName: "base"))
    public var portBase: UInt16?

    /// Options as parsed from nothing.
    public init() {}

    /// The given base, or the program's default.
    public func resolved(default base: UInt16) -> UInt16 { portBase ?? base }

    /// `base + port`, or `portOutOfRange` when it would pass 65535.
    public static func port(_ port: UInt16, base: UInt16) throws(MirageOptionsError) -> UInt16 {
        let (sum, overflow) = base.addingReportingOverflow(port)
        if overflow { throw .portOutOfRange(base: base, offset: port) }
        return sum
    }
}

/// Writes `line` and a newline to `fd` (standard output or error) at once,
/// unbuffered, so a supervising process sees it immediately.
public func writeLine(_ line: String, to fd: Int32) {
    StandardConsole(fileDescriptor: fd).log(line)
}
