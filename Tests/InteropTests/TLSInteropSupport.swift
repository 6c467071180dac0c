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

    /// The TLS 1.2 suites whose authentication fits this key (RFC 8422 §5.1:
    /// ECDHE_ECDSA for ECDSA and Ed25519 certificates; ECDHE_RSA for RSA).
    var tls12Suites: [CipherSuite] {
        let authentication: TLS12Authentication = self == .rsa2048 ? .rsa : .ecdsa
        return CipherSuite.tls12.filter { $0.tls12Authentication == authentication }
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
/// `expired` (January 2020), `untrusted` (signed by a CA nobody trusts),
/// `clientonly` (EKU clientAuth only) and `client` (the client certificate
/// of the client-authentication tests: CN=Mirage Test Client, EKU
/// clientAuth only).
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
        script += "leaf client '\(LeafKind.ecdsaP256.genpkey)' clientAuth ca 'Mirage Test Client'\n"
        script += Self.expired
        script += Self.noExtendedMasterSecret
        let out = try runCommand(["sh", "-c", "cd '\(directory)' && " + script], timeout: 60)
        guard out.succeeded else { throw TestNetworkError.commandFailed(out) }
    }

    /// The environment that makes openssl leave out the extended master
    /// secret (RFC 7627): `OPENSSL_CONF` naming a file whose system default
    /// SSL options include `-ExtendedMasterSecret`.
    var withoutExtendedMasterSecret: [String: String] { ["OPENSSL_CONF": directory + "/no-ems.cnf"] }

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
        openssl req -new -key "$1.key" -subj "/CN=${5:-localhost}" -out "$1.csr"
        ext "$1" "$3"
        openssl x509 -req -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" -CAcreateserial -days 30 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
        }

        """#

    private static let noExtendedMasterSecret = #"""
        printf 'openssl_conf = openssl_init\n[openssl_init]\nssl_conf = ssl_sect\n[ssl_sect]\nsystem_default = tls_defaults\n[tls_defaults]\nOptions = -ExtendedMasterSecret\n' > no-ems.cnf

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
    /// `-ciphersuites`/`-cipher` spelling: the IANA name for TLS 1.3, OpenSSL's own for TLS 1.2.
    var opensslName: String {
        switch self {
        case .ecdheECDSAWithAES128GCMSHA256: return "ECDHE-ECDSA-AES128-GCM-SHA256"
        case .ecdheECDSAWithAES256GCMSHA384: return "ECDHE-ECDSA-AES256-GCM-SHA384"
        case .ecdheECDSAWithChaCha20Poly1305SHA256: return "ECDHE-ECDSA-CHACHA20-POLY1305"
        case .ecdheRSAWithAES128GCMSHA256: return "ECDHE-RSA-AES128-GCM-SHA256"
        case .ecdheRSAWithAES256GCMSHA384: return "ECDHE-RSA-AES256-GCM-SHA384"
        case .ecdheRSAWithChaCha20Poly1305SHA256: return "ECDHE-RSA-CHACHA20-POLY1305"
        default: return description
        }
    }
}

extension ProtocolVersion {
    /// The `s_client`/`s_server` flag that pins this version.
    var opensslFlag: String { self == .tls12 ? "-tls1_2" : "-tls1_3" }
    /// How openssl prints it ("New, TLSv1.2, Cipher is …", "Protocol version: TLSv1.3").
    var opensslName: String { self == .tls12 ? "TLSv1.2" : "TLSv1.3" }
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
/// `versionFlags` pin the version (none: TLS 1.2 and 1.3, as openssl's
/// default); `connections` is how many it serves before it exits.
func startOpenSSLServer(certificate: String, key: String, extra: [String], versionFlags: [String] = ["-tls1_3"],
                        connections: Int = 1, environment: [String: String] = [:]) throws -> (process: SpawnedProcess, port: UInt16) {
    let argv = ["openssl", "s_server", "-accept", "127.0.0.1:0"] + versionFlags + ["-cert", certificate, "-key", key,
                "-naccept", "\(connections)"] + extra
    let process = try SpawnedProcess(argv, environment: environment)
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
/// the server closes (-ign_eof), in the background; `versionFlags` pin
/// the version (none: openssl's default, TLS 1.2 and 1.3).
func startOpenSSLClient(port: UInt16, caFile: String, input: String, extra: [String],
                        versionFlags: [String] = ["-tls1_3"], environment: [String: String] = [:]) throws -> SpawnedProcess {
    let argv = ["openssl", "s_client", "-connect", "127.0.0.1:\(port)"] + versionFlags + ["-CAfile", caFile,
                "-servername", "localhost", "-verify_hostname", "localhost", "-verify_return_error", "-ign_eof"] + extra
    let quoted = argv.map { "'" + $0 + "'" }.joined(separator: " ")
    return try SpawnedProcess(["sh", "-c", "printf '%s' '\(input)' | " + quoted], environment: environment)
}

/// `openssl s_client` (as `startOpenSSLClient`) against our server on
/// `loop`, which runs until s_client has ended (at most 20 s).
func runOpenSSLClient(serverLoop loop: EventLoop, port: UInt16, caFile: String, input: String, extra: [String],
                      versionFlags: [String], environment: [String: String] = [:]) throws -> SpawnedProcess {
    let client = try startOpenSSLClient(port: port, caFile: caFile, input: input, extra: extra, versionFlags: versionFlags,
                                        environment: environment)
    try runLoop(loop, seconds: 20) { !client.isRunning }
    if client.isRunning {
        Issue.record("s_client did not end: \(client.output())")
        _ = client.terminate(grace: 1)
    }
    return client
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
/// and closes; records the connection (`record`: the latest one, each
/// accepted one also in `negotiatedHistory`) and stops the loop when it is gone.
final class TLSEchoServerProbe: TCPHandler {
    let stack: TLSStack<SocketStack>
    let loop: EventLoop
    var record = TLSConnectionRecord()
    var accepted = 0
    /// What each accepted connection negotiated, in order.
    var negotiatedHistory: [NegotiatedParameters?] = []

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
        record = TLSConnectionRecord()  // one client after another: each starts afresh
        record.connected = true
        record.negotiated = stack.negotiated(of: connection)
        negotiatedHistory.append(record.negotiated)
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

// MARK: - Reading openssl's output

/// The messages `openssl … -trace` printed under `name` ("ServerHello",
/// "Certificate", …): each one's lines, from its "    <name>, Length=…"
/// header up to the next message or record header.
func opensslTraceMessages(_ output: String, named name: String) -> [String] {
    var messages: [String] = []
    var current: [Substring]?
    for line in output.split(separator: "\n", omittingEmptySubsequences: false) {
        let isMessageHeader = line.hasPrefix("    ") && !line.hasPrefix("     ") && line.contains(", Length=")
        let isRecordHeader = line.hasPrefix("Sent Record") || line.hasPrefix("Received Record")
        if isMessageHeader || isRecordHeader {
            if let done = current { messages.append(done.joined(separator: "\n")) }
            current = isMessageHeader && line.hasPrefix("    \(name), Length=") ? [line] : nil
        } else if current != nil {
            current?.append(line)
        }
    }
    if let done = current { messages.append(done.joined(separator: "\n")) }
    return messages
}

/// How many of the lines `openssl … -msg` printed end with ", <message>"
/// (`>>>` lines are what that program sent, `<<<` what it received).
func opensslMessageCount(_ output: String, direction: String, message: String) -> Int {
    output.split(separator: "\n").filter { $0.hasPrefix(direction) && $0.hasSuffix(", \(message)") }.count
}

// MARK: - Session files

/// Flips one byte in the middle of the session ticket of an `s_client
/// -sess_out` file and writes the result next to it: the ticket's length
/// and the file's ASN.1 stay valid, so s_client offers the forged ticket
/// (with a binder still made from the session's PSK in TLS 1.3). Returns
/// the new file's path.
func writeSessionWithCorruptedTicket(_ path: String) throws -> String {
    let text = try runCommand(["openssl", "sess_id", "-in", path, "-noout", "-text"], timeout: 10)
    try #require(text.succeeded, "\(text)")
    // "    TLS session ticket:" then lines "    0000 - 9f f0 … f5-94 …   ascii".
    var ticket: [UInt8] = []
    var inTicket = false
    for line in text.stdout.split(separator: "\n") {
        if line.contains("TLS session ticket:") { inTicket = true; continue }
        guard inTicket else { continue }
        guard let dash = line.range(of: " - "), line[..<dash.lowerBound].trimmingCharacters(in: .whitespaces).count == 4 else { break }
        // The hex column ends at the three-space gap before the ASCII column.
        for token in line[dash.upperBound...].split(separator: " ", omittingEmptySubsequences: false) {
            if token.isEmpty { break }
            for byte in token.split(separator: "-") {
                ticket.append(try #require(UInt8(byte, radix: 16), "ticket dump: \(line)"))
            }
        }
    }
    try #require(ticket.count >= 32, "no ticket in the session: \(text.stdout)")
    let der = try runCommand(["openssl", "sess_id", "-in", path, "-outform", "DER"], timeout: 10)
    try #require(der.succeeded, "\(der)")
    var bytes = der.stdoutBytes
    try #require(bytes.count >= ticket.count, "\(der)")
    let start = try #require((0...(bytes.count - ticket.count)).first { Array(bytes[$0..<($0 + ticket.count)]) == ticket },
                             "the ticket is not in the session's DER")
    bytes[start + ticket.count / 2] ^= 0x5A
    let forgedDER = path + ".forged.der", forged = path + ".forged.pem"
    try Data(bytes).write(to: URL(fileURLWithPath: forgedDER))
    let pem = try runCommand(["openssl", "sess_id", "-inform", "DER", "-in", forgedDER, "-out", forged], timeout: 10)
    try #require(pem.succeeded, "\(pem)")
    return forged
}

// MARK: - A relay that rewrites the ClientHello

/// The downgrade sentinel a TLS 1.3 server puts at the end of its
/// ServerHello.random when it negotiates TLS 1.2 (RFC 8446 §4.1.3), as
/// `-trace` prints it.
let downgradeTLS12SentinelHex = "444F574E47524401"

/// A one-connection TCP relay from 127.0.0.1 (port chosen by the kernel)
/// to 127.0.0.1:`target`, on its own thread with blocking sockets: the
/// client's first TLS record (its ClientHello) passes through `rewrite`
/// (nil: unchanged), everything else is copied unchanged both ways. It ends
/// when both sides have closed, or `lifetime` seconds after it started.
final class TLSRelay: @unchecked Sendable {
    /// Where clients connect.
    let port: UInt16
    private let listener: KernelListener
    private let lock = NSLock()
    private var rewritten = 0
    private var relayed = 0
    private let finished = DispatchSemaphore(value: 0)

    /// How many first records `rewrite` changed (0 or 1).
    var rewrites: Int { lock.withLock { rewritten } }
    /// Bytes copied in both directions.
    var bytesRelayed: Int { lock.withLock { relayed } }

    init(target: UInt16, lifetime: Double = 30, rewrite: @escaping @Sendable ([UInt8]) -> [UInt8]?) throws {
        listener = try KernelListener(backlog: 1)
        port = listener.endpoint.port
        let deadline = Date().addingTimeInterval(lifetime)
        let thread = Thread { [self] in
            defer { finished.signal() }
            serve(target: target, deadline: deadline, rewrite: rewrite)
        }
        thread.start()
    }

    /// Waits (at most `timeout` seconds) for the relay to end.
    @discardableResult
    func wait(timeout: Double) -> Bool { finished.wait(timeout: .now() + timeout) == .success }

    private func serve(target: UInt16, deadline: Date, rewrite: ([UInt8]) -> [UInt8]?) {
        guard let client = try? listener.accept(),
              let server = try? KernelSocket(connectingTo: Endpoint(.v4(.loopback), target)) else { return }
        var buffer = [UInt8](repeating: 0, count: 16_384)
        // The first record whole: a 5-byte header (type, version, length) and its body.
        var first: [UInt8] = []
        while first.count < 5 || first.count < 5 + (Int(first[3]) << 8 | Int(first[4])) {
            guard let n = try? client.receive(into: &buffer), n > 0 else { return }
            first += buffer[..<n]
        }
        let end = 5 + (Int(first[3]) << 8 | Int(first[4]))
        var record = Array(first[..<end])
        if let changed = rewrite(record) {
            record = changed
            lock.withLock { rewritten += 1 }
        }
        guard (try? server.sendAll(record + first[end...])) != nil else { return }
        lock.withLock { relayed += first.count }
        // Then both ways until both sides closed; an end is passed on as a FIN.
        var open = [true, true]
        let sockets = [client, server]
        while open.contains(true) && Date() < deadline {
            var fds = (0..<2).map { pollfd(fd: open[$0] ? sockets[$0].fd : -1, events: Int16(POLLIN), revents: 0) }
            guard poll(&fds, 2, 100) >= 0 else { if errno == EINTR { continue } else { return } }
            for side in 0..<2 where open[side] && fds[side].revents != 0 {
                let n = (try? sockets[side].receive(into: &buffer)) ?? 0
                if n > 0, (try? sockets[1 - side].sendAll(Array(buffer[..<n]))) != nil {
                    lock.withLock { relayed += n }
                } else {
                    open[side] = false
                    sockets[1 - side].shutdownWrite()
                }
            }
        }
    }

    /// A rewrite for `rewrite:`: in a ClientHello record, replaces TLS 1.3
    /// (0x0304) in supported_versions with a GREASE value (0x0A0A, RFC 8701),
    /// keeping every length, so a TLS 1.3 server sees a client that offers
    /// TLS 1.2 at best. nil when the record has no such entry.
    static func hidingTLS13(_ record: [UInt8]) -> [UInt8]? {
        // record header 5, handshake header 4, legacy_version 2, random 32 (RFC 8446 §4.1.2)
        guard record.count > 43, record[0] == 22, record[5] == 1 else { return nil }
        var out = record
        var at = 43
        func skip(_ lengthBytes: Int) -> Bool {
            guard at + lengthBytes <= out.count else { return false }
            var length = 0
            for i in 0..<lengthBytes { length = length << 8 | Int(out[at + i]) }
            at += lengthBytes + length
            return at <= out.count
        }
        guard skip(1), skip(2), skip(1) else { return nil }  // session id, cipher suites, compression
        guard at + 2 <= out.count else { return nil }
        at += 2  // extensions length
        var changed = false
        while at + 4 <= out.count {
            let type = Int(out[at]) << 8 | Int(out[at + 1])
            let length = Int(out[at + 2]) << 8 | Int(out[at + 3])
            let body = at + 4
            guard body + length <= out.count else { return nil }
            if type == 43, length >= 1 {  // supported_versions: u8 length, then u16 versions
                var v = body + 1
                while v + 1 < body + length {
                    if out[v] == 0x03 && out[v + 1] == 0x04 { out[v] = 0x0A; out[v + 1] = 0x0A; changed = true }
                    v += 2
                }
            }
            at = body + length
        }
        return changed ? out : nil
    }
}
