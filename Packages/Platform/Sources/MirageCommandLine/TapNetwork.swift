import Foundation
import MirageDevices
import MiragePlatform
import MirageTCPIP

/// `--net tap`: MirageTCPIP's `IPStack` on a Linux tap device, optionally
/// recorded to a pcap file (`--pcap`) and behind a seeded `FaultInjector`
/// (`--fault-*`, for trying the stack on a bad link). Without `--tap NAME` it makes its own network
/// namespace holding the kernel's side of a new tap device, so the program
/// has a private link to the kernel and touches no other network; the
/// namespace is removed by `shutdown()` (and the tap device with our file
/// descriptor).
public final class TapNetwork {
    /// The stack the application uses.
    public let stack: any Stack
    /// The tap device.
    public let tap: TapInterface
    /// The namespace we made, if `--tap` was not given.
    public let namespace: String?
    /// The kernel's address in our namespace, if we made one.
    public let kernelAddress: IPv4Address?
    let pcap: FilePcapSink?
    let reporter = ConfigurationReporter()
    let statistics: () -> String
    let configurationText: () -> String
    let tcpConnections: () -> String
    let faultStatistics: (() -> (receive: FaultStatistics, transmit: FaultStatistics))?
    let detach: () -> Void
    /// The faults injected (`--fault-*`), if any.
    public let faultConfiguration: FaultConfiguration?
    /// The fault injector's seed (`--fault-seed`).
    public let faultSeed: UInt64

    /// The default prefix for a namespace of our own: we are .2, the kernel .1.
    public static let defaultPrefix = "10.0.0.2/24"

    /// Opens the tap (creating a namespace first when `tapName` is nil) and
    /// brings the stack up on it. Call on the loop's thread.
    public init(options: MirageOptions, loop: EventLoop) throws(MirageOptionsError) {
        var ipv4 = options.ipv4
        if ipv4 == nil && !options.dhcp && options.tap == nil { ipv4 = try IPv4Prefix(parsing: Self.defaultPrefix) }
        let ownNamespace = options.tap == nil
        let tapName = options.tap ?? "mtap\(getpid() % 100_000)"
        let tap: TapInterface
        do throws(DeviceError) {
            tap = try TapInterface(name: tapName, loop: loop, virtioNetHeader: options.offload)
        } catch {
            throw .platform(error)
        }
        var namespace: String? = nil
        var kernelAddress: IPv4Address? = nil
        if ownNamespace {
            Self.removeStaleNamespaces()
            let name = "\(Self.namespacePrefix)\(getpid())"
            let ours = ipv4?.address ?? IPv4Address(10, 0, 0, 2)
            let prefix = ipv4?.prefixLength ?? 24
            let network = IPv4Prefix(address: ours, prefixLength: prefix)?.netmask.rawValue ?? 0
            var kernel = IPv4Address(rawValue: (ours.rawValue & network) | 1)
            if kernel == ours { kernel = IPv4Address(rawValue: (ours.rawValue & network) | 2) }
            let steps: [[String]] = [
                ["netns", "add", name],
                ["link", "set", "dev", tap.name, "netns", name],
                ["-n", name, "addr", "add", "\(kernel)/\(prefix)", "dev", tap.name],
                ["-n", name, "link", "set", tap.name, "up"],
                ["-n", name, "link", "set", "lo", "up"],
            ]
            for step in steps {
                if let failure = Self.ip(step) {
                    _ = Self.ip(["netns", "del", name])
                    tap.close()
                    throw .platform(.invalidArgument("ip \(step.joined(separator: " ")): \(failure)"))
                }
            }
            namespace = name
            kernelAddress = kernel
        }

        var pcapSink: FilePcapSink? = nil
        if let path = options.pcap {
            do throws(DeviceError) {
                pcapSink = try FilePcapSink(path: path)
            } catch {
                tap.close()
                if let namespace { _ = Self.ip(["netns", "del", namespace]) }
                throw .platform(error)
            }
        }

        var ipConfiguration: IPv4Configuration? = nil
        if let ipv4 {
            ipConfiguration = IPv4Configuration(address: ipv4.address, prefixLength: ipv4.prefixLength,
                                                gateway: options.ipv4Gateway)
        }
        let plan = StackPlan(ipv4: ipConfiguration, dhcp: options.dhcp, pcap: pcapSink,
                             faults: options.faultConfiguration, faultSeed: options.resolvedFaultSeed,
                             loop: loop, reporter: reporter)
        // One path for every combination: tap, then the capture (closest to
        // the wire, so it records what the kernel sees), then the faults.
        let built = plan.wrapInCapture(tap)
        stack = built.stack
        statistics = built.statistics
        configurationText = built.configurationText
        tcpConnections = built.tcpConnections
        faultStatistics = built.faultStatistics
        detach = built.detach
        faultConfiguration = options.faultConfiguration
        faultSeed = options.resolvedFaultSeed
        self.tap = tap
        self.namespace = namespace
        self.kernelAddress = kernelAddress
        self.pcap = pcapSink
    }

    /// Lines telling the user where the stack is and how to reach it.
    public var summary: [String] {
        var lines = ["MirageTCPIP on tap \(tap.name) (\(tap.macAddress)): \(configurationText())"]
        if let namespace, let kernelAddress {
            lines.append("the kernel's side is \(kernelAddress) in network namespace \(namespace); reach us with:")
            lines.append("  ip netns exec \(namespace) ping \(configurationText().split(separator: "/").first ?? "")")
        }
        if !tap.offloads.isEmpty { lines.append("offloads on (virtio-net header): checksums, TSO, GRO") }
        if let pcap { lines.append("recording frames to \(pcap.path)") }
        if let faults = faultConfiguration { lines.append(Self.describe(faults, seed: faultSeed)) }
        return lines
    }

    /// The stack's counters, one `name value` per line.
    public var statisticsDescription: String { statistics() }

    /// The TCP connections the stack holds (TIME-WAIT and half-open ones
    /// included), as `N tcp connections` and the count per state.
    public var tcpConnectionsDescription: String { tcpConnections() }

    /// What the fault injector did, one line per direction it works on
    /// (`fault transmit: frames N dropped N …`); nil without `--fault-*`.
    public var faultStatisticsDescription: String? {
        guard let faultStatistics, let configuration = faultConfiguration else { return nil }
        let counters = faultStatistics()
        var lines: [String] = []
        if configuration.directions.contains(.transmit) { lines.append(Self.describe(counters.transmit, direction: "transmit")) }
        if configuration.directions.contains(.receive) { lines.append(Self.describe(counters.receive, direction: "receive")) }
        return lines.joined(separator: "\n")
    }

    static func describe(_ s: FaultStatistics, direction: String) -> String {
        "fault \(direction): frames \(s.frames) dropped \(s.dropped) corrupted \(s.corrupted) "
            + "duplicated \(s.duplicated) reordered \(s.reordered) delayed \(s.delayed) "
            + "held-overflow \(s.heldOverflow) release-failed \(s.releaseFailed)"
    }

    static func describe(_ c: FaultConfiguration, seed: UInt64) -> String {
        var directions: [String] = []
        if c.directions.contains(.transmit) { directions.append("transmit") }
        if c.directions.contains(.receive) { directions.append("receive") }
        func percent(_ rate: Double) -> String { "\(rate * 100)%" }
        return "injecting faults on \(directions.joined(separator: " and ")) (seed \(seed)): "
            + "drop \(percent(c.dropRate)), corrupt \(percent(c.corruptRate)), duplicate \(percent(c.duplicateRate)), "
            + "reorder \(percent(c.reorderRate)), delay \(c.delay.nanoseconds / 1_000_000) ms"
    }

    /// Stops the stack, closes the tap and the capture, and removes the
    /// namespace we made.
    public func shutdown() {
        detach()
        tap.close()
        pcap?.close()
        if let namespace { _ = Self.ip(["netns", "del", namespace]) }
    }

    /// Our namespaces are `mirage-<pid>`.
    static let namespacePrefix = "mirage-"

    /// Removes namespaces an earlier `--net tap` run made and could not
    /// remove (killed with SIGKILL): those whose pid is no longer alive.
    static func removeStaleNamespaces() {
        let process = Process()
        guard let path = ipPath else { return }
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["netns", "list"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        for line in text.split(separator: "\n") {
            let name = String(line.split(separator: " ").first ?? "")
            guard name.hasPrefix(namespacePrefix), let pid = Int32(name.dropFirst(namespacePrefix.count)),
                  pid != getpid(), kill(pid, 0) != 0, errno == ESRCH
            else { continue }
            _ = ip(["netns", "del", name])
        }
    }

    /// Where iproute2's `ip` is, if installed.
    static var ipPath: String? {
        ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs `ip ARGS`; nil on success, else what it printed.
    static func ip(_ arguments: [String]) -> String? {
        let process = Process()
        guard let path = ipPath else { return "the ip command (iproute2) is not installed" }
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do { try process.run() } catch { return "\(error)" }
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return process.terminationStatus == 0 ? nil : text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// How to build the stack over a chain of interface wrappers. Each step is
/// generic over the interface below it, so the tap, the optional capture
/// and the optional fault injector compose on one code path whatever the
/// combination, and the stack is specialised for the chain it runs on.
struct StackPlan {
    let ipv4: IPv4Configuration?
    let dhcp: Bool
    let pcap: FilePcapSink?
    let faults: FaultConfiguration?
    let faultSeed: UInt64
    let loop: EventLoop
    let reporter: ConfigurationReporter

    /// What the chosen chain exposes to `TapNetwork`.
    struct Built {
        var stack: any Stack
        var statistics: () -> String
        var configurationText: () -> String
        var tcpConnections: () -> String
        var faultStatistics: (() -> (receive: FaultStatistics, transmit: FaultStatistics))?
        var detach: () -> Void
    }

    /// Step 1: record frames to the pcap file, if asked.
    func wrapInCapture<Base: NetworkInterface>(_ base: Base) -> Built {
        guard let pcap else { return wrapInFaults(base) }
        let recorder = PcapInterface(base, writer: PcapWriter(sink: pcap), clock: loop)
        var built = wrapInFaults(recorder)
        let inner = built.detach
        built.detach = { inner(); recorder.detach() }
        return built
    }

    /// Step 2: inject faults, if asked.
    func wrapInFaults<Base: NetworkInterface>(_ base: Base) -> Built {
        guard let faults else { return makeStack(base) }
        let injector = FaultInjector(base, configuration: faults, seed: faultSeed, clock: loop, scheduler: loop)
        var built = makeStack(injector)
        let inner = built.detach
        built.detach = { inner(); injector.detach() }
        built.faultStatistics = { (injector.receiveStatistics, injector.transmitStatistics) }
        return built
    }

    /// Last step: the stack on whatever chain the steps made.
    func makeStack<Interface: NetworkInterface>(_ interface: Interface) -> Built {
        var configuration = IPStack<Interface>.Configuration(dhcp: dhcp)
        configuration.ipv4 = ipv4
        let ip = IPStack(interface: interface, configuration: configuration, clock: loop, scheduler: loop,
                         entropy: SystemEntropy())
        ip.configurationHandler = reporter
        return Built(
            stack: ip,
            statistics: { ip.statistics.description },
            configurationText: { ip.ipv4.map { "\($0)" } ?? "no address yet (DHCP: \(ip.dhcpState ?? "off"))" },
            tcpConnections: {
                var perState: [String: Int] = [:]
                for state in ip.tcpConnectionStates { perState["\(state)", default: 0] += 1 }
                let states = perState.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
                return "\(ip.tcpConnectionCount) tcp connections" + (states.isEmpty ? "" : " (\(states.joined(separator: ", ")))")
            },
            faultStatistics: nil,
            detach: { ip.detach() })
    }
}

/// Prints address changes and DHCP renewals as they happen.
final class ConfigurationReporter: IPConfigurationHandler {
    func ipv4ConfigurationChanged(_ configuration: IPv4Configuration?) {
        writeLine(configuration.map { "ipv4 configured: \($0)" } ?? "ipv4 address lost", to: STDOUT_FILENO)
    }

    func dhcpLeaseRenewed(_ lease: DHCPLease) {
        writeLine("dhcp lease renewed: \(lease.address)/\(lease.prefixLength) for \(lease.leaseTime.milliseconds / 1000) s", to: STDOUT_FILENO)
    }
}

/// The stack chosen by `--net`.
public enum NetworkSetup {
    /// The kernel's sockets.
    case socket(SocketStack)
    /// MirageTCPIP on a tap device.
    case tap(TapNetwork)

    /// The stack, whichever it is.
    public var stack: any Stack {
        switch self {
        case .socket(let s): s
        case .tap(let t): t.stack
        }
    }

    /// Ends the network at a program's exit: the kernel's sockets are
    /// closed; our stack's counters (and the fault injector's, if any) are
    /// printed to standard output, then the tap and any namespace we made
    /// are removed.
    public func shutdown() {
        switch self {
        case .socket(let stack):
            stack.closeAll()
        case .tap(let tap):
            writeLine("stack counters:\n" + tap.statisticsDescription, to: STDOUT_FILENO)
            if let faults = tap.faultStatisticsDescription { writeLine(faults, to: STDOUT_FILENO) }
            tap.shutdown()
        }
    }
}

extension MirageOptions {
    /// The stack `--net` asks for, on `loop` (call on the loop's thread).
    public func makeNetwork(loop: EventLoop) throws(MirageOptionsError) -> NetworkSetup {
        try check()
        switch net {
        case .socket:
            return .socket(try makeStack(loop: loop))
        case .tap:
            return .tap(try TapNetwork(options: self, loop: loop))
        }
    }
}
