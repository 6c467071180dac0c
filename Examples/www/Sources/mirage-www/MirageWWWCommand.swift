import ArgumentParser
import Glibc
import MirageCommandLine
import MirageDevices
import MirageHTTP
import MiragePlatform
import MirageWWW
import MirageWWWSite

/// `mirage-www`: the slide deck compiled into the program, served over
/// HTTP/1.1 by `MirageWWW` on either stack. The logic is the portable
/// library; this is only the command line, the loop and the signals.
@main
struct MirageWWWCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mirage-www",
        abstract: "Serves the MirageSwift slide deck over HTTP/1.1 on MirageSwift's stack contract.",
        discussion: """
            With --net socket (the default) it listens on 127.0.0.1, port \(defaultSocketPort) unless \
            --port says otherwise, through the kernel's sockets. With --net tap (root) it runs over \
            MirageTCPIP on a tap device, port \(defaultTapPort) by default, on every address of the \
            stack; without --tap it makes its own network namespace and tap device and prints the \
            address and a curl command that reaches it. The files are compiled into the program \
            (Examples/www/Sources/MirageWWWSite/Site); --site DIR serves a directory instead, read \
            on every request, for editing the deck. SIGUSR1 prints a status line; stop with Ctrl-C \
            or SIGTERM.
            """)

    static let defaultSocketPort: UInt16 = 8080
    static let defaultTapPort: UInt16 = 80

    @OptionGroup var network: MirageOptions
    @OptionGroup var port: PortOption

    @Option(help: ArgumentHelp("Serve this directory instead of the compiled-in deck.", valueName: "dir"))
    var site: String?

    @Option(help: ArgumentHelp("Most connections served at once.", valueName: "n"))
    var maximumConnections: Int = 1024

    func validate() throws {
        guard maximumConnections > 0 else { throw ValidationError("--maximum-connections must be positive") }
    }

    func run() throws {
        let loop: EventLoop
        do throws(DeviceError) {
            loop = try EventLoop()
        } catch {
            writeLine("mirage-www: error: cannot create the event loop: \(error)", to: STDERR_FILENO)
            throw ExitCode(1)
        }
        if let site {
            let store: DirectoryKeyValueStore
            do throws(DeviceError) {
                store = try DirectoryKeyValueStore(root: site)
            } catch {
                writeLine("mirage-www: error: cannot serve \(site): \(error)", to: STDERR_FILENO)
                throw ExitCode(2)
            }
            try start(store: store, loop: loop)
        } else {
            try start(store: WWWSite.store(), loop: loop)
        }
    }

    private func start<Store: KeyValueStore>(store: Store, loop: EventLoop) throws {
        let setup: NetworkSetup
        do throws(MirageOptionsError) {
            setup = try network.makeNetwork(loop: loop)
        } catch {
            MirageOptions.report(error, program: "mirage-www")
            throw ExitCode(2)
        }
        for note in network.socketStackNotes { writeLine(note, to: STDERR_FILENO) }
        try serve(on: setup.stack, store: store, loop: loop, setup: setup)
    }

    private func serve<S: Stack, Store: KeyValueStore>(on stack: S, store: Store, loop: EventLoop, setup: NetworkSetup) throws {
        var configuration: WWWConfiguration
        switch setup {
        case .socket:
            configuration = WWWConfiguration(port: port.resolved(default: Self.defaultSocketPort), address: .v4(.loopback))
        case .tap(let tap):
            configuration = WWWConfiguration(port: port.resolved(default: Self.defaultTapPort), address: nil)
            for line in tap.summary { writeLine(line, to: STDOUT_FILENO) }
        }
        configuration.http.maximumConnections = maximumConnections
        // Before the "serving" line: whoever reads it may signal at once.
        let signals = SignalWatcher(loop: loop, signals: [SIGINT, SIGTERM])
        let server = WWWServer(stack: stack, store: store, timers: loop, clock: loop, wallClock: loop, configuration: configuration)
        let endpoint: Endpoint?
        do throws(DeviceError) {
            endpoint = try server.start()
        } catch {
            writeLine("mirage-www: error: cannot listen on port \(configuration.port): \(error)", to: STDERR_FILENO)
            if case .tap(let tap) = setup { tap.shutdown() }
            throw ExitCode(1)
        }
        signals.onSignal(SIGUSR1) { writeLine("status: " + server.status, to: STDOUT_FILENO) }
        let files = store.keys(withPrefix: "").count
        for line in Self.reachability(endpoint: endpoint, setup: setup, stack: stack) {
            writeLine(line + (line.hasPrefix("serving") ? " (\(files) files)" : ""), to: STDOUT_FILENO)
        }

        let end = try runUntilSignal(loop, signals: signals, setup: setup, program: "mirage-www",
                                     status: { server.status }, stop: { server.stop() })
        writeLine("stopped by signal \(end.signal): \(end.atStop)", to: STDOUT_FILENO)
    }

    /// "serving http://…/" and, for our own stack in its own namespace, the
    /// command that reaches it.
    static func reachability<S: Stack>(endpoint: Endpoint?, setup: NetworkSetup, stack: S) -> [String] {
        guard let endpoint else { return ["serving (no endpoint?)"] }
        switch setup {
        case .socket:
            return ["serving http://\(endpoint)/"]
        case .tap(let tap):
            var lines: [String] = []
            for address in stack.localAddresses {
                let url = endpoint.port == 80 ? "http://\(address)/" : "http://\(address):\(endpoint.port)/"
                lines.append("serving \(url)")
                if let namespace = tap.namespace {
                    lines.append("  curl: ip netns exec \(namespace) curl \(url)")
                } else {
                    lines.append("  curl: curl \(url)")
                }
            }
            if lines.isEmpty { lines.append("serving on port \(endpoint.port) once an address is configured (DHCP)") }
            return lines
        }
    }
}
