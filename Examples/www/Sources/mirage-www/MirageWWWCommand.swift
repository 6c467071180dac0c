import ArgumentParser
import Glibc
import MirageCommandLine
import MirageDevices
import MirageHTTP
import MiragePlatform
import MirageTLSCrypto
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
            on every request, for editing the deck. With --tls it serves HTTPS (TLS 1.3, MirageTLS) \
            instead, on port \(defaultTLSSocketPort) (socket) or \(defaultTLSTapPort) (tap) by default, \
            with the certificate chain and key of --cert and --key (PEM), or without them a \
            development certificate made at start for localhost, 127.0.0.1 and the stack's \
            addresses, whose SHA-256 fingerprint it prints. SIGUSR1 prints a status line; stop with \
            Ctrl-C or SIGTERM.
            """)

    static let defaultSocketPort: UInt16 = 8080
    static let defaultTapPort: UInt16 = 80
    static let defaultTLSSocketPort: UInt16 = 8443
    static let defaultTLSTapPort: UInt16 = 443

    @OptionGroup var network: MirageOptions
    @OptionGroup var port: PortOption

    @Option(help: ArgumentHelp("Serve this directory instead of the compiled-in deck.", valueName: "dir"))
    var site: String?

    @Option(help: ArgumentHelp("Most connections served at once.", valueName: "n"))
    var maximumConnections: Int = 1024

    @Flag(help: "Serve HTTPS (TLS 1.3, and TLS 1.2 for older clients) instead of plain HTTP.")
    var tls = false

    @Flag(inversion: .prefixedNo, help: "With --tls: issue session tickets so clients resume (TLS 1.3 PSK, TLS 1.2 RFC 5077); keys rotate hourly.")
    var tickets = true

    @Option(help: ArgumentHelp("With --tls: the certificate chain, PEM, leaf first (default: a development certificate).", valueName: "file"))
    var cert: String?

    @Option(help: ArgumentHelp("With --tls: the private key of --cert, PEM (PKCS#8, SEC1 or PKCS#1).", valueName: "file"))
    var key: String?

    func validate() throws {
        guard maximumConnections > 0 else { throw ValidationError("--maximum-connections must be positive") }
        guard (cert == nil) == (key == nil) else { throw ValidationError("--cert and --key go together") }
        guard tls || cert == nil else { throw ValidationError("--cert and --key need --tls") }
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
        guard tls else {
            try serveHTTP(on: stack, store: store, loop: loop, setup: setup, tlsStatus: nil)
            return
        }
        // HTTPS: the same server over a TLSStack wrapping the chosen stack.
        // A server checks no certificates (no client authentication), so it
        // needs no verifier.
        let certified: CertifiedKey
        do {
            certified = try loadCertificate(setup: setup, stack: stack)
        } catch {
            writeLine("mirage-www: error: \(error.message)", to: STDERR_FILENO)
            if case .tap(let tap) = setup { tap.shutdown() }
            throw ExitCode(2)
        }
        var server = TLSServerConfiguration(certificates: [certified])
        server.applicationProtocols = ["http/1.1"]
        let crypto = SwiftCryptoProvider()
        if tickets {
            // Ticket keys from the system's entropy, in memory only: a restart
            // forgets them, and clients fall back to a full handshake.
            server.sessionTickets = SessionTicketKeys(crypto: crypto, entropy: SystemEntropy())
        }
        let tlsStack = TLSStack(base: stack, server: server, crypto: crypto, verifier: nil,
                                entropy: SystemEntropy(), timers: loop, clock: loop)
        try serveHTTP(on: tlsStack, store: store, loop: loop, setup: setup, tlsStatus: {
            let t = tlsStack.statistics
            return "; tls \(t.handshakesCompleted) handshakes (\(t.handshakesResumed) resumed), \(t.handshakesFailed) failed (\(t.handshakeTimeouts) timeouts), "
                + "alerts \(t.alertsSent) sent \(t.alertsReceived) received"
        })
    }

    /// A message for the command line.
    struct SetupFailure: Error {
        var message: String
    }

    /// The chain and key of --cert/--key, or a development certificate for
    /// localhost, 127.0.0.1 and the stack's addresses (its fingerprint printed).
    private func loadCertificate<S: Stack>(setup: NetworkSetup, stack: S) throws(SetupFailure) -> CertifiedKey {
        if let cert, let key {
            do throws(TLSError) {
                return try CertifiedKey.load(certificateChainFile: cert, privateKeyFile: key)
            } catch {
                throw SetupFailure(message: "cannot load \(cert) and \(key): \(error)")
            }
        }
        var addresses = ["127.0.0.1"]
        if case .tap = setup {
            for address in stack.localAddresses where !addresses.contains("\(address)") { addresses.append("\(address)") }
        }
        do {
            let made = try DevelopmentCertificate.make(names: ["localhost"], ipAddresses: addresses)
            writeLine("tls: development certificate for localhost, \(addresses.joined(separator: ", ")) (self-signed, 30 days)",
                      to: STDOUT_FILENO)
            writeLine("tls: SHA-256 fingerprint \(made.sha256Fingerprint)", to: STDOUT_FILENO)
            return made.key
        } catch {
            throw SetupFailure(message: "cannot make a development certificate: \(error)")
        }
    }

    private func serveHTTP<S: Stack, Store: KeyValueStore>(on stack: S, store: Store, loop: EventLoop, setup: NetworkSetup,
                                                           tlsStatus: (() -> String)?) throws {
        var configuration: WWWConfiguration
        switch setup {
        case .socket:
            let port = port.resolved(default: tls ? Self.defaultTLSSocketPort : Self.defaultSocketPort)
            configuration = WWWConfiguration(port: port, address: .v4(.loopback))
        case .tap(let tap):
            configuration = WWWConfiguration(port: port.resolved(default: tls ? Self.defaultTLSTapPort : Self.defaultTapPort), address: nil)
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
        let status = { server.status + (tlsStatus?() ?? "") }
        signals.onSignal(SIGUSR1) { writeLine("status: " + status(), to: STDOUT_FILENO) }
        let files = store.keys(withPrefix: "").count
        for line in Self.reachability(endpoint: endpoint, setup: setup, stack: stack, tls: tls, selfSigned: tls && cert == nil) {
            writeLine(line + (line.hasPrefix("serving") ? " (\(files) files)" : ""), to: STDOUT_FILENO)
        }

        let end = try runUntilSignal(loop, signals: signals, setup: setup, program: "mirage-www",
                                     status: status, stop: { server.stop() })
        writeLine("stopped by signal \(end.signal): \(end.atStop)", to: STDOUT_FILENO)
    }

    /// "serving http://…/" (https with --tls) and, for our own stack in its
    /// own namespace, the command that reaches it.
    static func reachability<S: Stack>(endpoint: Endpoint?, setup: NetworkSetup, stack: S, tls: Bool, selfSigned: Bool) -> [String] {
        guard let endpoint else { return ["serving (no endpoint?)"] }
        let scheme = tls ? "https" : "http"
        let defaultPort: UInt16 = tls ? 443 : 80
        // A development certificate is self-signed: curl needs -k (check the fingerprint by hand).
        let curl = selfSigned ? "curl -k" : "curl"
        switch setup {
        case .socket:
            return ["serving \(scheme)://\(endpoint)/"]
        case .tap(let tap):
            var lines: [String] = []
            for address in stack.localAddresses {
                let url = endpoint.port == defaultPort ? "\(scheme)://\(address)/" : "\(scheme)://\(address):\(endpoint.port)/"
                lines.append("serving \(url)")
                if let namespace = tap.namespace {
                    lines.append("  curl: ip netns exec \(namespace) \(curl) \(url)")
                } else {
                    lines.append("  curl: \(curl) \(url)")
                }
            }
            if lines.isEmpty { lines.append("serving on port \(endpoint.port) once an address is configured (DHCP)") }
            return lines
        }
    }
}
