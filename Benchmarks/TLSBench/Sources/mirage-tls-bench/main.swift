// mirage-tls-bench: MirageTLS's server for Scripts/bench-tls.
//
//   mirage-tls-bench --cert C.pem --key K.pem [--port P] [--mode handshake|bulk]
//                    [--bytes N] [--suite NAME]... [--tls12] [--tickets]
//
// TLSStack over SocketStack on 127.0.0.1, one EventLoop on the main thread
// (the only thread that does TLS work), as mirage-www --tls serves. Prints
// `listening 127.0.0.1:PORT threads=N` once it accepts connections, then
// serves until killed (SIGTERM, SIGINT: their default action).
//
// Modes, chosen to match what the OpenSSL peer and clients do:
// - handshake: complete the handshake and wait. `openssl s_time` without
//   -www only handshakes, then closes (close_notify), which we answer by
//   closing; with -www it sends `GET … HTTP/1.0` and reads until the close,
//   which gets a tiny page and a close, as `s_server -www` would. The idle
//   connection test holds connections open in this mode.
// - bulk: on the first bytes received (the client's request), send an
//   HTTP/1.0 header and then N bytes, then close — as `s_server -WWW`
//   serving an N-byte file does.
import Glibc
import MirageDevices
import MiragePlatform
import MirageTLSCrypto

enum Mode: String {
    case handshake
    case bulk
}

struct Options {
    var cert = ""
    var key = ""
    var port: UInt16 = 0
    var mode = Mode.handshake
    var bytes = 256 << 20
    var suites: [CipherSuite] = []
    var tls12 = false
    var tickets = false
}

func fail(_ message: String) -> Never {
    writeError("mirage-tls-bench: \(message)")
    exit(2)
}

func writeError(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { buffer in _ = write(STDERR_FILENO, buffer.baseAddress, buffer.count) }
}

func writeOut(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { buffer in _ = write(STDOUT_FILENO, buffer.baseAddress, buffer.count) }
}

/// IANA names (and OpenSSL's TLS 1.2 names) of the suites MirageTLS implements.
let suiteNames: [String: CipherSuite] = [
    "TLS_AES_128_GCM_SHA256": .aes128GCMSHA256,
    "TLS_AES_256_GCM_SHA384": .aes256GCMSHA384,
    "TLS_CHACHA20_POLY1305_SHA256": .chacha20Poly1305SHA256,
    "ECDHE-ECDSA-AES128-GCM-SHA256": .ecdheECDSAWithAES128GCMSHA256,
    "ECDHE-ECDSA-AES256-GCM-SHA384": .ecdheECDSAWithAES256GCMSHA384,
    "ECDHE-ECDSA-CHACHA20-POLY1305": .ecdheECDSAWithChaCha20Poly1305SHA256,
    "ECDHE-RSA-AES128-GCM-SHA256": .ecdheRSAWithAES128GCMSHA256,
    "ECDHE-RSA-AES256-GCM-SHA384": .ecdheRSAWithAES256GCMSHA384,
    "ECDHE-RSA-CHACHA20-POLY1305": .ecdheRSAWithChaCha20Poly1305SHA256,
]

func parseOptions() -> Options {
    var options = Options()
    var arguments = CommandLine.arguments.dropFirst()
    func value(_ name: String) -> String {
        guard let next = arguments.popFirst() else { fail("\(name) needs a value") }
        return next
    }
    while let argument = arguments.popFirst() {
        switch argument {
        case "--cert": options.cert = value(argument)
        case "--key": options.key = value(argument)
        case "--port":
            guard let port = UInt16(value(argument)) else { fail("--port takes 0-65535") }
            options.port = port
        case "--mode":
            guard let mode = Mode(rawValue: value(argument)) else { fail("--mode takes handshake or bulk") }
            options.mode = mode
        case "--bytes":
            guard let bytes = Int(value(argument)), bytes >= 0 else { fail("--bytes takes a byte count") }
            options.bytes = bytes
        case "--suite":
            let name = value(argument)
            guard let suite = suiteNames[name] else {
                fail("unknown suite \(name) (one of \(suiteNames.keys.sorted().joined(separator: ", ")))")
            }
            options.suites.append(suite)
        case "--tls12": options.tls12 = true
        case "--tickets": options.tickets = true
        case "--help", "-h":
            writeOut("usage: mirage-tls-bench --cert C.pem --key K.pem [--port P] [--mode handshake|bulk] "
                + "[--bytes N] [--suite NAME]... [--tls12] [--tickets]")
            exit(0)
        default: fail("unknown argument \(argument)")
        }
    }
    guard !options.cert.isEmpty, !options.key.isEmpty else { fail("--cert and --key are required") }
    return options
}

/// The benchmark's application: counts, answers s_time's request, or sends
/// `bytes` bytes, over any stack (here the TLSStack).
final class BenchServer<S: Stack>: TCPHandler {
    let stack: S
    let mode: Mode
    let bytes: Int
    /// What one write offers: 64 KiB of zeros (TLSStack cuts it into
    /// 16 KiB records and takes what its pending-ciphertext limit allows).
    let chunk = [UInt8](repeating: 0, count: 64 * 1024)
    let header: [UInt8] = Array("HTTP/1.0 200 ok\r\nContent-type: text/plain\r\n\r\n".utf8)
    let page: [UInt8] = Array("HTTP/1.0 200 ok\r\nContent-type: text/html\r\n\r\n<html><body>mirage-tls-bench</body></html>\r\n".utf8)

    final class Session {
        /// Bytes of the response not yet taken by the stack (header included).
        var remaining = 0
        var headerSent = false
        var responding = false
        var closing = false
    }

    var sessions: [ConnectionID: Session] = [:]

    init(stack: S, mode: Mode, bytes: Int) {
        self.stack = stack
        self.mode = mode
        self.bytes = bytes
    }

    func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {
        sessions[connection] = Session()
        _ = try? stack.setNoDelay(true, for: connection)
    }

    func connectionEstablished(_ connection: ConnectionID) {}

    func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {
        guard let session = sessions[connection], !session.closing, !session.responding else { return }
        session.responding = true
        switch mode {
        case .handshake:
            // s_time -www: a tiny page, then the close it reads until.
            let page = self.page  // a local: its span may not outlive the property access
            _ = try? stack.write(page.span, on: connection)
            session.closing = true
            stack.close(connection)
        case .bulk:
            session.remaining = self.bytes
            pump(connection, session)
        }
    }

    func endOfStream(on connection: ConnectionID) {
        guard let session = sessions[connection], !session.closing else { return }
        if session.responding && session.remaining > 0 { return }
        session.closing = true
        stack.close(connection)
    }

    func writable(_ connection: ConnectionID) {
        guard let session = sessions[connection], !session.closing, session.responding else { return }
        pump(connection, session)
    }

    func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {
        sessions[connection] = nil
    }

    private func pump(_ connection: ConnectionID, _ session: Session) {
        if !session.headerSent {
            let taken: Int
            do throws(DeviceError) {
                let header = self.header
                taken = try stack.write(header.span, on: connection)
            } catch {
                return
            }
            // The header is tiny; a stack that takes part of it is not one
            // this benchmark runs on.
            guard taken == header.count else { return }
            session.headerSent = true
        }
        let chunk = self.chunk
        while session.remaining > 0 {
            let count = min(session.remaining, chunk.count)
            let taken: Int
            do throws(DeviceError) {
                taken = try stack.write(chunk.span.extracting(0..<count), on: connection)
            } catch {
                return  // Reset: the close event follows.
            }
            session.remaining -= taken
            if taken < count { return }  // `writable` follows.
        }
        session.closing = true
        stack.close(connection)
    }
}

/// Threads of this process (from /proc/self/status).
func threadCount() -> Int {
    guard let file = fopen("/proc/self/status", "r") else { return -1 }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), file) != nil {
        let length = line.firstIndex(of: 0) ?? line.count
        let text = String(decoding: line[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix("Threads:") {
            return Int(text.dropFirst("Threads:".count).filter { !$0.isWhitespace }) ?? -1
        }
    }
    return -1
}

let options = parseOptions()
let loop: EventLoop
do throws(DeviceError) {
    loop = try EventLoop()
} catch {
    fail("cannot create the event loop: \(error)")
}
let certified: CertifiedKey
do throws(TLSError) {
    certified = try CertifiedKey.load(certificateChainFile: options.cert, privateKeyFile: options.key)
} catch {
    fail("cannot load \(options.cert) and \(options.key): \(error)")
}
var server = TLSServerConfiguration(certificates: [certified])
server.versions = options.tls12 ? [.tls12] : [.tls13]
if !options.suites.isEmpty { server.cipherSuites = options.suites }
if options.tickets {
    #if MIRAGE_TLS_TICKETS
    server.sessionTickets = SessionTicketKeys(crypto: SwiftCryptoProvider(), entropy: SystemEntropy())
    #else
    fail("--tickets: built without session tickets (build with MIRAGE_TLS_TICKETS=1 once the engine has SessionTicketKeys)")
    #endif
}
var stackConfiguration = TLSStackConfiguration()
stackConfiguration.maximumConcurrentHandshakes = 4096
let sockets = SocketStack(loop: loop)
let tls = TLSStack(base: sockets, server: server, crypto: SwiftCryptoProvider(), verifier: nil,
                   entropy: SystemEntropy(), timers: loop, clock: loop, configuration: stackConfiguration)
let application = BenchServer(stack: tls, mode: options.mode, bytes: options.bytes)
let listener: ListenerID
do throws(DeviceError) {
    listener = try tls.listen(port: options.port, address: .v4(.loopback), backlog: 1024, handler: application)
} catch {
    fail("cannot listen on port \(options.port): \(error)")
}
guard let endpoint = tls.localEndpoint(of: listener) else { fail("the listener has no endpoint") }
writeOut("listening \(endpoint) threads=\(threadCount())")
do throws(DeviceError) {
    try loop.run()
} catch {
    fail("the event loop failed: \(error)")
}
