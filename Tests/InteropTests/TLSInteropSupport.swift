import Foundation
import MirageDevices
import MiragePlatform
import MirageTLSCrypto
import MirageTestNetwork
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Helpers of TLSInteropTests: a test PKI made by `openssl` (a CA, leaves
// of three key types, and the bad leaves of the negative tests), `openssl
// s_server`/`s_client` launchers, and TCP handlers that drive TLSStack on an
// EventLoop and record what happened.

/// The leaf key types of the interop matrix.
enum LeafKind: String, CaseIterable, Sendable {
    case ecdsaP256 = "ecdsa"
    case ed25519
    case rsa2048 = "rsa"

    /// `openssl genpkey` arguments.
    var genpkey: String {
        switch self {
        case .ecdsaP256: return "-algorithm EC -pkeyopt ec_paramgen_curve:P-256"
        case .ed25519: return "-algorithm ED25519"
        case .rsa2048: return "-algorithm RSA -pkeyopt rsa_keygen_bits:2048"
        }
    }

    /// What `openssl s_client` prints as "Peer signature type".
    var opensslSignatureType: String {
        switch self {
        case .ecdsaP256: return "ECDSA"
        case .ed25519: return "ed25519"
        case .rsa2048: return "RSA-PSS"
        }
    }
}

/// A CA and leaves made with openssl in a scratch directory: every leaf has
/// CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:10.199.78.2 (the tap
/// test's address), KU digitalSignature, EKU serverAuth, 30 days — except
/// `expired` (January 2020), `untrusted` (signed by a CA nobody trusts) and
/// `clientonly` (EKU clientAuth only).
final class TLSTestPKI: @unchecked Sendable {
    /// The directory; files are `<name>.pem` and `<name>.key`.
    let directory: String

    /// Made once per test process (RSA key generation takes a moment).
    static let shared: Result<TLSTestPKI, any Error> = Result { try TLSTestPKI() }

    private init() throws {
        directory = NSTemporaryDirectory() + "/\(TestNames.processTag())-\(TestNames.next())-pki"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var script = Self.functions
        script += "ca ca 'Mirage Test CA'\nca rogue 'Mirage Rogue CA'\n"
        for kind in LeafKind.allCases { script += "leaf \(kind.rawValue) '\(kind.genpkey)' serverAuth ca\n" }
        script += "leaf untrusted '\(LeafKind.ecdsaP256.genpkey)' serverAuth rogue\n"
        script += "leaf clientonly '\(LeafKind.ecdsaP256.genpkey)' clientAuth ca\n"
        script += Self.expired
        let out = try runCommand(["sh", "-c", "cd '\(directory)' && " + script], timeout: 60)
        guard out.succeeded else { throw TestNetworkError.commandFailed(out) }
    }

    /// Path of a certificate (`ca`, `ecdsa`, `expired`, …).
    func certificate(_ name: String) -> String { directory + "/\(name).pem" }
    /// Path of a private key.
    func key(_ name: String) -> String { directory + "/\(name).key" }
    /// The CA certificate's PEM text.
    var caPEM: String { (try? String(contentsOfFile: certificate("ca"), encoding: .utf8)) ?? "" }

    /// A server's certificate and key as MirageTLS loads them.
    func certifiedKey(_ name: String) throws -> CertifiedKey {
        let chain = try String(contentsOfFile: certificate(name), encoding: .utf8)
        let key = try String(contentsOfFile: key(name), encoding: .utf8)
        return try CertifiedKey.load(certificateChainPEM: chain, privateKeyPEM: key)
    }

    private static let functions = #"""
        set -eu
        ext() {
        printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=%s\nsubjectAltName=DNS:localhost,IP:127.0.0.1,IP:10.199.78.2\n' "$2" > "$1.ext"
        }
        ca() {
        openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.pem" -days 30 -subj "/CN=$2" \
          -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
        }
        leaf() {
        openssl genpkey $2 -out "$1.key" 2>/dev/null
        openssl req -new -key "$1.key" -subj "/CN=localhost" -out "$1.csr"
        ext "$1" "$3"
        openssl x509 -req -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" -CAcreateserial -days 30 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
        }

        """#

    // `openssl x509 -req` (3.0) cannot date a certificate in the past; `openssl ca` can.
    private static let expired = #"""
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out expired.key 2>/dev/null
        openssl req -new -key expired.key -subj "/CN=localhost" -out expired.csr
        ext expired serverAuth
        mkdir -p cadb && : > cadb/index.txt && echo 1000 > cadb/serial
        printf '[ca]\ndefault_ca=test\n[test]\ndatabase=cadb/index.txt\nserial=cadb/serial\nnew_certs_dir=cadb\ndefault_md=sha256\npolicy=any\n[any]\ncommonName=supplied\n' > ca.cnf
        openssl ca -batch -notext -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr -out expired.pem \
          -startdate 20200101000000Z -enddate 20200201000000Z -extfile expired.ext 2>/dev/null

        """#
}

/// The shared PKI, or the test's failure.
func testPKI() throws -> TLSTestPKI {
    try TLSTestPKI.shared.get()
}

/// The names openssl uses for our code points.
extension CipherSuite {
    var opensslName: String { description }
}

extension NamedGroup {
    /// `-groups` spelling.
    var opensslName: String { self == .x25519 ? "X25519" : "P-256" }
    /// How `s_client` prints the server's key share ("Server Temp Key: …").
    var opensslTempKey: String { self == .x25519 ? "X25519" : "ECDH, prime256v1" }
}

/// `openssl s_server` on 127.0.0.1 for one connection, listening on a port
/// the kernel chose (`-accept 127.0.0.1:0`), which is read back from `ss`
/// by the process's pid: no port is picked ahead of the bind, so a test
/// running beside this one cannot take it in between (and with -brief it
/// prints no "ACCEPT" line to read it from).
func startOpenSSLServer(certificate: String, key: String, extra: [String]) throws -> (process: SpawnedProcess, port: UInt16) {
    let argv = ["openssl", "s_server", "-accept", "127.0.0.1:0", "-tls1_3", "-cert", certificate, "-key", key,
                "-naccept", "1"] + extra
    let process = try SpawnedProcess(argv)
    var port: UInt16?
    let listening = TestEnvironment.waitUntil(timeout: 20, interval: 0.05) {
        let out = (try? runCommand(["ss", "-Hltnp", "src", "127.0.0.1"], timeout: 10).stdout) ?? ""
        for line in out.split(separator: "\n") where line.contains("pid=\(process.pid),") {
            // "LISTEN 0 128 127.0.0.1:PORT 0.0.0.0:* users:((…))": the fourth column.
            let columns = line.split(separator: " ", omittingEmptySubsequences: true)
            if columns.count > 3, let colon = columns[3].lastIndex(of: ":") {
                port = UInt16(columns[3][columns[3].index(after: colon)...])
            }
        }
        return port != nil
    }
    try #require(listening, "s_server did not listen: \(process.output())")
    return (process, try #require(port))
}

/// `openssl s_client` sending `input` after the handshake and reading until
/// the server closes (-ign_eof), in the background.
func startOpenSSLClient(port: UInt16, caFile: String, input: String, extra: [String]) throws -> SpawnedProcess {
    let argv = ["openssl", "s_client", "-connect", "127.0.0.1:\(port)", "-tls1_3", "-CAfile", caFile,
                "-servername", "localhost", "-verify_hostname", "localhost", "-verify_return_error", "-ign_eof"] + extra
    let quoted = argv.map { "'" + $0 + "'" }.joined(separator: " ")
    return try SpawnedProcess(["sh", "-c", "printf '%s' '\(input)' | " + quoted])
}

/// Our TLS stack over the kernel's sockets on `loop`.
func makeTLSStack(loop: EventLoop, server: TLSServerConfiguration? = nil, client: TLSClientConfiguration? = nil,
                  caPEM: String? = nil) throws -> TLSStack<SocketStack> {
    var verifier: X509CertificateVerifier?
    if let caPEM {
        let roots = try TrustRoots(pemBundle: caPEM)
        // The task on the loop: these tests block cooperative-pool threads.
        verifier = X509CertificateVerifier(roots: roots, post: { body in loop.execute(body) }, executor: loop)
    }
    return TLSStack(base: SocketStack(loop: loop), server: server, client: client, crypto: SwiftCryptoProvider(),
                    verifier: verifier, entropy: SystemEntropy(), timers: loop, clock: loop)
}

/// What happened on one TLS connection of ours.
struct TLSConnectionRecord {
    var connected = false
    var negotiated: NegotiatedParameters?
    var received: [UInt8] = []
    var endOfStream = false
    var closed: CloseReason?
    var failure: TLSError?
    var text: String { String(decoding: received, as: UTF8.self) }
}

/// Our client: once established it writes `message`, closes after
/// `closeAfter` bytes arrived (nil: waits for the peer to close), records
/// everything and stops the loop when the connection is gone.
final class TLSClientProbe: TCPHandler {
    let stack: TLSStack<SocketStack>
    let loop: EventLoop
    let message: [UInt8]
    let closeAfter: Int?
    /// Sends a KeyUpdate asking for the peer's before the message.
    var updateKeysFirst = false
    var record = TLSConnectionRecord()

    init(stack: TLSStack<SocketStack>, loop: EventLoop, message: String, closeAfter: Int?) {
        self.stack = stack
        self.loop = loop
        self.message = Array(message.utf8)
        self.closeAfter = closeAfter
    }

    /// Connects to 127.0.0.1:`port` naming `serverName` and runs the loop
    /// until the connection closed (at most `seconds`).
    func run(port: UInt16, serverName: String?, seconds: Int64 = 20) throws -> TLSConnectionRecord {
        _ = try stack.connect(to: Endpoint(.v4(.loopback), port), serverName: serverName, timeout: .seconds(10), handler: self)
        try loop.run(until: loop.now() + .seconds(seconds))
        return record
    }

    func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {}

    func connectionEstablished(_ connection: ConnectionID) {
        record.connected = true
        record.negotiated = stack.negotiated(of: connection)
        if updateKeysFirst {
            do throws(DeviceError) {
                try stack.updateKeys(on: connection, requestPeerUpdate: true)
            } catch {
                Issue.record("updateKeys: \(error)")
            }
        }
        let bytes = message
        let written = (try? stack.write(bytes.span, on: connection)) ?? -1
        if written != bytes.count { Issue.record("write took \(written) of \(bytes.count) bytes") }
    }

    func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {
        record.received.append(span: bytes)
        if let closeAfter, record.received.count >= closeAfter { stack.close(connection) }
    }

    func endOfStream(on connection: ConnectionID) {
        record.endOfStream = true
        stack.close(connection)
    }

    func writable(_ connection: ConnectionID) {}

    func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {
        record.closed = reason
        record.failure = stack.failure(of: connection)
        loop.stop()
    }
}

/// Our server: answers the first line a client sends with "echo: <line>"
/// and closes; records the connection and stops the loop when it is gone.
final class TLSEchoServerProbe: TCPHandler {
    let stack: TLSStack<SocketStack>
    let loop: EventLoop
    var record = TLSConnectionRecord()
    var accepted = 0

    init(stack: TLSStack<SocketStack>, loop: EventLoop) {
        self.stack = stack
        self.loop = loop
    }

    /// Listens on 127.0.0.1, port chosen by the kernel.
    func listen() throws -> UInt16 {
        let listener = try stack.listen(port: 0, address: .v4(.loopback), backlog: 8, handler: self)
        return try #require(stack.localEndpoint(of: listener)).port
    }

    func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {
        accepted += 1
        record.connected = true
        record.negotiated = stack.negotiated(of: connection)
    }

    func connectionEstablished(_ connection: ConnectionID) {}

    func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {
        record.received.append(span: bytes)
        guard let newline = record.received.firstIndex(of: 0x0A) else { return }
        let reply = Array("echo: ".utf8) + record.received[...newline]
        _ = try? stack.write(reply.span, on: connection)
        stack.close(connection)
    }

    func endOfStream(on connection: ConnectionID) {
        record.endOfStream = true
        stack.close(connection)
    }

    func writable(_ connection: ConnectionID) {}

    func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {
        record.closed = reason
        record.failure = stack.failure(of: connection)
        loop.stop()
    }
}
