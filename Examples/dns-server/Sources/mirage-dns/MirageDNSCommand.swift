import ArgumentParser
import Glibc
import MirageCommandLine
import MirageDNS
import MirageDevices
import MiragePlatform

/// `mirage-dns`: an authoritative DNS server for the zone files given,
/// over UDP and TCP on either stack. The answering logic is MirageDNS's
/// portable `DNSServer`; this is the command line, the loop and signals.
@main
struct MirageDNSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mirage-dns",
        abstract: "Serves DNS zone files authoritatively over UDP and TCP on MirageSwift's stack contract.",
        discussion: """
            Each --zone names a zone file (RFC 1035 master file format). Its origin is ORIGIN when given \
            as ORIGIN=FILE, otherwise the owner of the file's SOA record ($ORIGIN at the top of the file \
            sets it); $INCLUDE names files relative to the zone file's directory. With --net socket (the \
            default) it answers on 127.0.0.1 (or --address), port \(defaultSocketPort) unless --port says otherwise; with \
            --net tap (root) over MirageTCPIP on a tap device, port \(defaultTapPort) by default. SIGHUP \
            reloads every zone file and serves a zone's new contents when its SOA serial went up; SIGUSR1 \
            prints a status line; stop with Ctrl-C or SIGTERM.
            """)

    static let defaultSocketPort: UInt16 = 5353
    static let defaultTapPort: UInt16 = 53

    @OptionGroup var network: MirageOptions
    @OptionGroup var port: PortOption

    @Option(name: .customLong("zone"), help: ArgumentHelp("A zone file to serve, as FILE or ORIGIN=FILE (repeatable).", valueName: "zone"))
    var zones: [String] = []

    @Option(help: ArgumentHelp("With --net socket, the local address to answer on (default 127.0.0.1).", valueName: "address"))
    var address: String?

    @Option(help: ArgumentHelp("Most TCP connections served at once.", valueName: "n"))
    var maximumConnections: Int = 256

    @Option(help: ArgumentHelp("Close a TCP connection after this many seconds without a query.", valueName: "seconds"))
    var tcpIdleTimeout: Int = 10

    @Flag(help: "Refuse zone transfers (AXFR), which are allowed by default.")
    var noTransfers = false

    func validate() throws {
        guard !zones.isEmpty else { throw ValidationError("give at least one --zone FILE") }
        guard maximumConnections > 0 else { throw ValidationError("--maximum-connections must be positive") }
        guard (1...3600).contains(tcpIdleTimeout) else { throw ValidationError("--tcp-idle-timeout must be 1 to 3600 seconds") }
        if let address {
            guard IPAddress(address) != nil else { throw ValidationError("--address \(address) is not an IPv4 or IPv6 address") }
            guard network.net == .socket else { throw ValidationError("--address applies to --net socket; with --net tap use --ipv4") }
        }
    }

    func run() throws {
        let sources: [ZoneSource]
        do {
            sources = try zones.map { try ZoneSource(argument: $0) }
        } catch let error as ZoneSource.Failure {
            writeLine("mirage-dns: error: \(error.message)", to: STDERR_FILENO)
            throw ExitCode(2)
        }
        var loaded: [Zone] = []
        for source in sources {
            do throws(DNSError) {
                loaded.append(try source.load())
            } catch {
                writeLine("mirage-dns: error: \(error)", to: STDERR_FILENO)
                throw ExitCode(2)
            }
        }
        var coreConfiguration = AuthoritativeServerConfiguration()
        coreConfiguration.allowTransfers = !noTransfers
        let core = AuthoritativeServer(zones: loaded, configuration: coreConfiguration)

        let loop: EventLoop
        do throws(DeviceError) {
            loop = try EventLoop()
        } catch {
            writeLine("mirage-dns: error: cannot create the event loop: \(error)", to: STDERR_FILENO)
            throw ExitCode(1)
        }
        var setup: NetworkSetup
        do throws(MirageOptionsError) {
            setup = try network.makeNetwork(loop: loop)
        } catch {
            MirageOptions.report(error, program: "mirage-dns")
            throw ExitCode(2)
        }
        // SocketStack binds only to addresses it counts as its own (the
        // loopback ones and its configuration's), so --address joins them;
        // the stack replaced has opened no socket yet.
        if case .socket(let kernel) = setup, let extra = address.flatMap({ IPAddress($0) }),
           !kernel.localAddresses.contains(extra) {
            var configuration = kernel.configuration
            configuration.addresses.append(extra)
            setup = .socket(SocketStack(loop: loop, configuration: configuration))
        }
        for note in network.socketStackNotes { writeLine(note, to: STDERR_FILENO) }
        try serve(on: setup.stack, core: core, sources: sources, loop: loop, setup: setup)
    }

    private func serve<S: Stack>(on stack: S, core: AuthoritativeServer, sources: [ZoneSource], loop: EventLoop, setup: NetworkSetup) throws {
        var configuration = DNSServerConfiguration()
        configuration.maximumConnections = maximumConnections
        configuration.idleTimeout = .seconds(Int64(tcpIdleTimeout))
        switch setup {
        case .socket:
            configuration.port = port.resolved(default: Self.defaultSocketPort)
            configuration.address = address.flatMap { IPAddress($0) } ?? .v4(.loopback)
        case .tap(let tap):
            configuration.port = port.resolved(default: Self.defaultTapPort)
            configuration.address = nil
            for line in tap.summary { writeLine(line, to: STDOUT_FILENO) }
        }
        let signals = SignalWatcher(loop: loop, signals: [SIGINT, SIGTERM])
        let server = DNSServer(stack: stack, core: core, timers: loop, clock: loop, configuration: configuration)
        let endpoint: Endpoint?
        do throws(DNSError) {
            endpoint = try server.start()
        } catch {
            writeLine("mirage-dns: error: cannot listen on port \(configuration.port): \(error)", to: STDERR_FILENO)
            if case .tap(let tap) = setup { tap.shutdown() }
            throw ExitCode(1)
        }
        signals.onSignal(SIGUSR1) { writeLine("status: " + server.status, to: STDOUT_FILENO) }
        signals.onSignal(SIGHUP) {
            for source in sources {
                writeLine(Self.reload(source, into: core), to: STDOUT_FILENO)
            }
        }
        for zone in core.servedZones {
            writeLine("zone \(zone.origin) serial \(zone.serial): \(zone.records.count) records", to: STDOUT_FILENO)
        }
        let port = endpoint?.port ?? configuration.port
        switch setup {
        case .socket:
            writeLine("serving dns on \(endpoint.map { "\($0)" } ?? "?") (udp and tcp)", to: STDOUT_FILENO)
            let at = configuration.address.map { "\($0)" } ?? "127.0.0.1"
            writeLine("  dig: dig @\(at) -p \(port) \(core.servedZones.first?.origin.description ?? ".") SOA", to: STDOUT_FILENO)
        case .tap(let tap):
            if stack.localAddresses.isEmpty {
                writeLine("serving dns on port \(port) once an address is configured (DHCP)", to: STDOUT_FILENO)
            }
            for address in stack.localAddresses {
                writeLine("serving dns on \(address):\(port) (udp and tcp)", to: STDOUT_FILENO)
                let prefix = tap.namespace.map { "ip netns exec \($0) " } ?? ""
                writeLine("  dig: \(prefix)dig @\(address) -p \(port) \(core.servedZones.first?.origin.description ?? ".") SOA", to: STDOUT_FILENO)
            }
        }

        let end = try runUntilSignal(loop, signals: signals, setup: setup, program: "mirage-dns",
                                     status: { server.status }, stop: { server.stop() })
        writeLine("stopped by signal \(end.signal): \(end.atStop)", to: STDOUT_FILENO)
    }

    /// Loads `source` again and offers it to `core` (RFC 1982: only a newer serial replaces).
    static func reload(_ source: ZoneSource, into core: AuthoritativeServer) -> String {
        let zone: Zone
        do throws(DNSError) {
            zone = try source.load()
        } catch {
            return "reload \(source.path): kept the served zone: \(error)"
        }
        switch core.load(zone) {
        case .added: return "reload \(zone.origin): added, serial \(zone.serial)"
        case .replaced(let previous): return "reload \(zone.origin): serial \(previous) -> \(zone.serial), \(zone.records.count) records"
        case .unchanged(let served): return "reload \(zone.origin): serial \(zone.serial) not newer than \(served), unchanged"
        }
    }
}

/// A `--zone` argument: the file, and the origin if given.
struct ZoneSource: Sendable {
    struct Failure: Error {
        var message: String
    }

    var origin: DomainName?
    var path: String

    init(argument: String) throws {
        if let equals = argument.firstIndex(of: "="), !argument[..<equals].contains("/") {
            let text = String(argument[..<equals])
            do throws(DNSError) {
                origin = try DomainName(text.hasSuffix(".") ? text : text + ".")
            } catch {
                throw Failure(message: "--zone \(argument): bad origin: \(error)")
            }
            path = String(argument[argument.index(after: equals)...])
        } else {
            path = argument
        }
        guard !path.isEmpty else { throw Failure(message: "--zone \(argument): no file") }
    }

    /// Parses and checks the file; without a given origin, the SOA owner
    /// (read with the root as the initial origin) becomes it.
    func load() throws(DNSError) -> Zone {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let file = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let store: DirectoryKeyValueStore
        do {
            store = try DirectoryKeyValueStore(root: directory.isEmpty ? "/" : directory)
        } catch {
            throw .zone(file: path, line: 0, reason: "cannot open its directory: \(error)")
        }
        if let origin {
            return try Zone.load(file: file, origin: origin, store: store)
        }
        let text: [UInt8]
        do {
            text = try store.value(of: file)
        } catch {
            throw .zone(file: path, line: 0, reason: "cannot read the file: \(error)")
        }
        let entries = try ZoneFileParser.parse(text, file: file, origin: .root, includes: store)
        guard let soa = entries.first(where: { $0.record.type == .soa }) else {
            throw .zone(file: path, line: 0, reason: "no SOA record to take the origin from (or give ORIGIN=FILE)")
        }
        return try Zone(origin: soa.record.name, entries: entries)
    }
}
