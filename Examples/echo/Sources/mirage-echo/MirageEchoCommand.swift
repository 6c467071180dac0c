import ArgumentParser
import Glibc
import MirageCommandLine
import MirageDevices
import MirageEcho
import MiragePlatform

/// `mirage-echo`: the echo, discard and character generator services of
/// `MirageEcho` on Linux. The logic is the portable library; this is only
/// the command line, the loop and the signals.
@main
struct MirageEchoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mirage-echo",
        abstract: "Echo (RFC 862), discard (RFC 863) and character generator (RFC 864) over MirageSwift's stack contract.",
        discussion: """
            With --net socket (the default) the services listen on 127.0.0.1 on the \
            standard ports moved up by --port-base (default \(defaultPortBase)): echo on \
            \(defaultPortBase + 7), discard on \(defaultPortBase + 9), source on \(defaultPortBase + 19). \
            With --net tap (root) they run over MirageTCPIP on the standard ports \
            (--port-base 0 unless given), TCP and UDP; without --tap the program makes its own \
            network namespace and tap device and prints how to reach it, and the \
            --fault-* options put a seeded fault injector between the stack and the \
            tap (its counters are printed at exit). SIGUSR1 prints a status line \
            (open connections); stop with Ctrl-C or SIGTERM.
            """)

    /// Default `--port-base`, so nothing needs privileges.
    static let defaultPortBase: UInt16 = 7000

    @OptionGroup var network: MirageOptions
    @OptionGroup var ports: PortBaseOption

    func validate() throws {
        let base = ports.resolved(default: Self.defaultPortBase)
        do throws(MirageOptionsError) {
            _ = try PortBaseOption.port(EchoService.source.standardPort, base: base)
        } catch {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        // Our own stack needs no privilege for low ports: the standard
        // ports by default there; the kernel's sockets move up by 7000.
        let base = ports.resolved(default: network.net == .tap ? 0 : Self.defaultPortBase)

        let loop: EventLoop
        do throws(DeviceError) {
            loop = try EventLoop()
        } catch {
            standardError("mirage-echo: error: cannot create the event loop: \(error)")
            throw ExitCode(1)
        }
        let setup: NetworkSetup
        do throws(MirageOptionsError) {
            setup = try network.makeNetwork(loop: loop)
        } catch {
            MirageOptions.report(error, program: "mirage-echo")
            throw ExitCode(2)
        }
        for note in network.socketStackNotes { standardError(note) }
        var listenAddress: IPAddress? = .v4(.loopback)
        if case .tap(let tap) = setup {
            listenAddress = nil
            for line in tap.summary { standardOutput(line) }
        }
        guard let configuration = EchoConfiguration.offset(by: base, address: listenAddress) else {
            throw ValidationError(MirageOptionsError.portOutOfRange(base: base, offset: EchoService.source.standardPort).description)
        }
        // Before the "listening" lines: whoever reads them may signal at once.
        let signals = SignalWatcher(loop: loop, signals: [SIGINT, SIGTERM])

        try serve(on: setup.stack, configuration: configuration, loop: loop, signals: signals, setup: setup)
    }

    /// Runs the portable server on `stack` until a signal stops the loop.
    func serve(on stack: some Stack, configuration: EchoConfiguration, loop: EventLoop,
               signals: SignalWatcher, setup: NetworkSetup) throws {
        // The loop thread is this thread until `run`, so setting up here is
        // on the loop's thread.
        let server = EchoServer(stack: stack, configuration: configuration)
        do throws(DeviceError) {
            try server.start()
        } catch {
            standardError("mirage-echo: error: cannot listen: \(error)")
            if case .tap(let tap) = setup { tap.shutdown() }
            throw ExitCode(1)
        }
        signals.onSignal(SIGUSR1) {
            standardOutput("status: " + Self.describe(server, setup: setup))
        }
        for service in [EchoService.echo, .discard, .source] {
            let tcp = server.tcpEndpoint(service)
            let udp = server.udpEndpoint(service)
            guard let endpoint = tcp ?? udp else { continue }
            let transports = [tcp != nil ? "tcp" : nil, udp != nil ? "udp" : nil].compactMap { $0 }.joined(separator: ", ")
            standardOutput("\(service) on \(endpoint) (\(transports))")
        }

        // What was open when the signal came is described before `stop` closes it.
        let end = try runUntilSignal(loop, signals: signals, setup: setup, program: "mirage-echo",
                                     status: { Self.describe(server, setup: setup) }, stop: { server.stop() })
        let counters = server.counters
        standardOutput(
            "stopped by signal \(end.signal): \(counters.connectionsAccepted) connections, "
                + "\(counters.echoBytesSent) bytes echoed, \(counters.discardBytes) discarded, "
                + "\(counters.sourceBytesSent) generated, \(counters.datagramsEchoed) datagrams echoed; "
                + "at the signal: \(end.atStop)")
    }

    /// One line about the connections: open now, and how those closed
    /// ended; with --net tap also what the stack itself still holds
    /// (TIME-WAIT and half-open connections included).
    static func describe<S: Stack>(_ server: EchoServer<S>, setup: NetworkSetup) -> String {
        let c = server.counters
        var line = "\(server.openConnections) open, \(c.connectionsAccepted) accepted, \(c.connectionsRejected) rejected, "
            + "\(c.connectionsClosed) closed (\(c.closedNormal) normal, \(c.closedReset) reset, "
            + "\(c.closedTimeout) timeout, \(c.closedAborted) aborted, \(c.closedOther) other)"
        if case .tap(let tap) = setup { line += "; stack holds \(tap.tcpConnectionsDescription)" }
        return line
    }
}

/// Writes a line to standard output now (not held in a buffer when the
/// output is a pipe or file, so a supervising process sees it at once).
func standardOutput(_ line: String) {
    writeLine(line, to: STDOUT_FILENO)
}

/// Writes a line to standard error.
func standardError(_ line: String) {
    writeLine(line, to: STDERR_FILENO)
}
