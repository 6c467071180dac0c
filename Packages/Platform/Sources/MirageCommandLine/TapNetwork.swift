import Foundation
import MirageDevices
import MiragePlatform
import MirageTCPIP

/// `--net tap`: MirageTCPIP's `IPStack` on a Linux tap device, optionally
/// recorded to a pcap file. Without `--tap NAME` it makes its own network
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
    let detach: () -> Void

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
            tap = try TapInterface(name: tapName, loop: loop)
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

        var configuration = IPStack<TapInterface>.Configuration(dhcp: options.dhcp)
        if let ipv4 {
            configuration.ipv4 = IPv4Configuration(address: ipv4.address, prefixLength: ipv4.prefixLength,
                                                   gateway: options.ipv4Gateway)
        }
        let entropy = SystemEntropy()
        if let sink = pcapSink {
            let wrapped = PcapInterface(tap, writer: PcapWriter(sink: sink), clock: loop)
            var c = IPStack<PcapInterface<TapInterface>>.Configuration(dhcp: configuration.dhcp)
            c.ipv4 = configuration.ipv4
            let ip = IPStack(interface: wrapped, configuration: c, clock: loop, scheduler: loop, entropy: entropy)
            stack = ip
            ip.configurationHandler = reporter
            statistics = { ip.statistics.description }
            configurationText = { ip.ipv4.map { "\($0)" } ?? "no address yet (DHCP: \(ip.dhcpState ?? "off"))" }
            detach = { ip.detach(); wrapped.detach() }
        } else {
            let ip = IPStack(interface: tap, configuration: configuration, clock: loop, scheduler: loop, entropy: entropy)
            stack = ip
            ip.configurationHandler = reporter
            statistics = { ip.statistics.description }
            configurationText = { ip.ipv4.map { "\($0)" } ?? "no address yet (DHCP: \(ip.dhcpState ?? "off"))" }
            detach = { ip.detach() }
        }
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
        if let pcap { lines.append("recording frames to \(pcap.path)") }
        return lines
    }

    /// The stack's counters, one `name value` per line.
    public var statisticsDescription: String { statistics() }

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
