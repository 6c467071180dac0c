import ArgumentParser
import Glibc
import MirageDevices
import MiragePlatform
import MirageTCPIP

/// `mirage-tcp-bench`: the processes Scripts/bench-tcp runs to measure bulk
/// TCP throughput between the kernel and MirageTCPIP over a tap device, and
/// between two kernels over veth (the baseline). Each mode moves one
/// connection's worth of bytes and prints one `result key=value …` line.
@main
struct TCPBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mirage-tcp-bench",
        abstract: "Bulk TCP throughput: kernel sockets and MirageTCPIP on a tap device (run by Scripts/bench-tcp).",
        discussion: """
            Each mode moves one connection and prints a line \
            `result role=R bytes=N seconds=S mbps=M user=U sys=S threads=T allocations=A segments=G retransmissions=X` \
            (CPU seconds and allocations of this process during the timed part; -1 where a \
            figure does not apply). The mirage modes attach to an existing tap device \
            (--tap) whose kernel side the caller has set up, normally in a network namespace \
            this program then runs in.
            """,
        subcommands: [KernelSink.self, KernelSource.self, MirageSink.self, MirageSource.self, ProbeOffload.self])
}

/// `--to A:P`.
struct EndpointArgument: ExpressibleByArgument {
    var address: String
    var port: UInt16

    init?(argument: String) {
        guard let colon = argument.lastIndex(of: ":"), let port = UInt16(argument[argument.index(after: colon)...]),
              IPv4Address(String(argument[..<colon])) != nil
        else { return nil }
        self.address = String(argument[..<colon])
        self.port = port
    }
}

/// Options of the two modes that run our stack.
struct MirageHostOptions: ParsableArguments {
    @Option(help: "An existing tap device (`ip tuntap add NAME mode tap`), in this process's namespace.")
    var tap: String
    @Option(help: "Our stack's address and prefix.")
    var address = "10.199.90.2/24"
    @Option(help: "The link MTU.")
    var mtu = TapInterface.defaultMTU
    @Flag(help: "Open the tap with IFF_VNET_HDR (checksum and segmentation offloads), when TapInterface supports it.")
    var offload = false
    @Option(help: "Seconds before the transfer is abandoned (exit status 1).")
    var timeout = 110

    func makeHost() throws(BenchFailure) -> MirageHost {
        try MirageHost(tap: tap, cidr: address, mtu: mtu, offload: offload)
    }
}

/// Exit status 1 with the message, for every failure.
func fail(_ mode: String, _ failure: BenchFailure) -> ExitCode {
    writeError("mirage-tcp-bench \(mode): error: \(failure)")
    return ExitCode(1)
}

struct KernelSink: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel-sink", abstract: "Kernel socket: accept one connection, read and discard until EOF.")
    @Option(help: "Local address to listen on.") var address = "0.0.0.0"
    @Option(help: "Port to listen on.") var port: UInt16

    func run() throws {
        do throws(BenchFailure) {
            try KernelSide.sink(address: address, port: port).print()
        } catch {
            throw fail("kernel-sink", error)
        }
    }
}

struct KernelSource: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel-source", abstract: "Kernel socket: connect, write --bytes, close, wait for the peer's close.")
    @Option(help: "The sink, A.B.C.D:PORT.") var to: EndpointArgument
    @Option(help: "Bytes to send.") var bytes: UInt64

    func run() throws {
        do throws(BenchFailure) {
            try KernelSide.source(address: to.address, port: to.port, bytes: bytes).print()
        } catch {
            throw fail("kernel-source", error)
        }
    }
}

struct MirageSink: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mirage-sink", abstract: "Our stack on --tap: accept one connection, discard until EOF, close.")
    @OptionGroup var host: MirageHostOptions
    @Option(help: "Port to listen on.") var port: UInt16

    func run() throws {
        do throws(BenchFailure) {
            let counterWorks = allocationCounterWorks()
            let mirage = try host.makeHost()
            let sink = try DiscardSink(host: mirage, port: port)
            writeOut("listening \(host.address.split(separator: "/").first ?? ""):\(port)")
            try mirage.run(timeout: host.timeout) { sink.finished }
            let threads = threadCount()
            mirage.shutdown()
            guard let reason = sink.closeReason else {
                throw BenchFailure("timed out after \(host.timeout) s with \(sink.bytes) bytes received")
            }
            guard reason == .normal else { throw BenchFailure("connection ended \(reason) after \(sink.bytes) bytes") }
            let end = sink.end ?? MirageHost.Mark(snapshot: .now(), segments: 0)
            let start = sink.start ?? MirageHost.Mark(snapshot: end.snapshot, segments: 0)
            ResultLine(role: "mirage-sink", bytes: sink.bytes, start: start.snapshot, end: end.snapshot,
                       threads: threads, segments: end.segments &- start.segments,
                       retransmissions: sink.retransmissions, countsAllocations: counterWorks).print()
        } catch {
            throw fail("mirage-sink", error)
        }
    }
}

struct MirageSource: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mirage-source", abstract: "Our stack on --tap: connect, write --bytes, close, wait for the close.")
    @OptionGroup var host: MirageHostOptions
    @Option(help: "The sink, A.B.C.D:PORT.") var to: EndpointArgument
    @Option(help: "Bytes to send.") var bytes: UInt64

    func run() throws {
        do throws(BenchFailure) {
            let counterWorks = allocationCounterWorks()
            let mirage = try host.makeHost()
            guard let address = IPv4Address(to.address) else { throw BenchFailure("bad address \(to.address)") }
            let source = try BulkSource(host: mirage, to: Endpoint(.v4(address), to.port), bytes: bytes)
            try mirage.run(timeout: host.timeout) { source.finished }
            let threads = threadCount()
            mirage.shutdown()
            guard let reason = source.closeReason else {
                throw BenchFailure("timed out after \(host.timeout) s with \(source.sent) bytes written")
            }
            guard reason == .normal, source.sent == bytes else {
                throw BenchFailure("connection ended \(reason) after \(source.sent) of \(bytes) bytes"
                                   + (source.writeError.map { " (write: \($0))" } ?? ""))
            }
            let end = source.end ?? MirageHost.Mark(snapshot: .now(), segments: 0)
            let start = source.start ?? MirageHost.Mark(snapshot: end.snapshot, segments: 0)
            ResultLine(role: "mirage-source", bytes: source.sent, start: start.snapshot, end: end.snapshot,
                       threads: threads, segments: end.segments &- start.segments,
                       retransmissions: source.retransmissions, countsAllocations: counterWorks).print()
        } catch {
            throw fail("mirage-source", error)
        }
    }
}

/// Whether `--offload` works on this build: prints `offload supported …`
/// (status 0) or `offload unsupported: why` (status 3), so the script runs
/// the offload variant only where it can.
struct ProbeOffload: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe-offload", abstract: "Exit 0 if --tap opens with IFF_VNET_HDR and announces offloads, else 3.")
    @Option(help: "An existing tap device.") var tap: String

    func run() throws {
        let loop: EventLoop
        do throws(DeviceError) { loop = try EventLoop() } catch {
            writeOut("offload unsupported: event loop: \(error)")
            throw ExitCode(3)
        }
        let device: TapInterface
        do throws(DeviceError) {
            device = try TapInterface(name: tap, loop: loop, virtioNetHeader: true)
        } catch {
            writeOut("offload unsupported: \(error)")
            throw ExitCode(3)
        }
        let offloads = device.offloads
        device.close()
        guard !offloads.isEmpty else {
            writeOut("offload unsupported: the device opened with IFF_VNET_HDR but announces no offloads")
            throw ExitCode(3)
        }
        writeOut("offload supported: offloads 0x\(String(offloads.rawValue, radix: 16))")
    }
}
