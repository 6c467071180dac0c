import MirageDevices
import MirageTLS
import MirageTLSCrypto
import Testing

// TLSStack over an in-memory pair of stacks (Support/PipeStack): when the
// application hears of a connection, the verifier's waiting state, late
// answers, the handshake timeout, back-pressure, pause/resume, and how
// failures are reported. The real-peer tests are Tests/InteropTests/TLS*.

/// A verifier that answers at once with `answer`, or holds the completion.
final class ScriptedVerifier: CertificateVerifier {
    var answer: CertificateVerificationResult?
    var requests: [CertificateVerificationRequest] = []
    var held: [(CertificateVerificationResult) -> Void] = []

    func verify(_ request: CertificateVerificationRequest, completion: @escaping (CertificateVerificationResult) -> Void) {
        requests.append(request)
        if let answer { completion(answer) } else { held.append(completion) }
    }
}

/// An application: records events; the server side echoes what it gets.
final class StackRecorder: TCPHandler {
    var stack: TLSStack<PipeStack>?
    var echo = false
    var pauseOnAccept = false
    var accepted: [ConnectionID] = []
    var established: [ConnectionID] = []
    var received: [UInt8] = []
    var endOfStream = 0
    var closed: [(ConnectionID, CloseReason, TLSError?)] = []
    var writableCount = 0
    /// Bytes still to write (client of the back-pressure test).
    var toSend: [UInt8] = []
    var firstWriteTook: Int?

    func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {
        accepted.append(connection)
        if pauseOnAccept { stack?.pauseReading(connection) }
    }

    func connectionEstablished(_ connection: ConnectionID) {
        established.append(connection)
        pump(connection)
    }

    func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {
        var copy: [UInt8] = []
        copy.append(span: bytes)
        received += copy
        if echo { _ = try? stack?.write(copy.span, on: connection) }
    }

    func endOfStream(on connection: ConnectionID) {
        endOfStream += 1
        stack?.close(connection)
    }

    func writable(_ connection: ConnectionID) {
        writableCount += 1
        pump(connection)
    }

    func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {
        closed.append((connection, reason, stack?.failure(of: connection)))
    }

    private func pump(_ connection: ConnectionID) {
        while !toSend.isEmpty {
            let bytes = toSend
            guard let took = try? stack?.write(bytes.span, on: connection) else { return }
            if firstWriteTook == nil { firstWriteTook = took }
            toSend.removeFirst(took)
            if took < bytes.count { return }
        }
    }
}

/// A TLS client and server over a PipeNetwork, with a manual clock.
final class StackPair {
    let network = PipeNetwork()
    let clock = ManualClock()
    let timers: ManualTimerScheduler
    let serverBase: PipeStack
    let clientBase: PipeStack
    let server: TLSStack<PipeStack>
    let client: TLSStack<PipeStack>
    let verifier = ScriptedVerifier()
    let serverApp = StackRecorder()
    let clientApp = StackRecorder()
    let port: UInt16 = 443

    init(configuration: TLSStackConfiguration = TLSStackConfiguration()) throws {
        timers = ManualTimerScheduler(clock: clock)
        serverBase = network.stack(IPv4Address(10, 0, 0, 1))
        clientBase = network.stack(IPv4Address(10, 0, 0, 2))
        let key = try TestCredentials.makeLeaf(.p256, authority: try TestCredentials.makeAuthority())
        server = TLSStack(base: serverBase, server: TLSServerConfiguration(certificates: [key]), crypto: SwiftCryptoProvider(),
                          verifier: nil, entropy: SeededEntropy(seed: 1), timers: timers, clock: clock,
                          configuration: configuration)
        client = TLSStack(base: clientBase, client: TLSClientConfiguration(serverName: "localhost"), crypto: SwiftCryptoProvider(),
                          verifier: verifier, entropy: SeededEntropy(seed: 2), timers: timers, clock: clock,
                          configuration: configuration)
        serverApp.stack = server
        serverApp.echo = true
        clientApp.stack = client
        _ = try server.listen(port: port, address: nil, backlog: 8, handler: serverApp)
    }

    func connect() throws -> ConnectionID {
        try client.connect(to: Endpoint(.v4(IPv4Address(10, 0, 0, 1)), port), timeout: nil, handler: clientApp)
    }
}

@Suite("TLSStack over in-memory stacks")
struct StackTests {
    @Test("the application hears of the connection only after the handshake, which waits for the verifier; then data both ways and close_notify")
    func handshakeWaitsForVerifier() throws {
        let pair = try StackPair()
        let id = try pair.connect()
        pair.network.run()
        #expect(pair.verifier.requests.count == 1)
        #expect(pair.verifier.requests.first?.serverName == "localhost" && pair.verifier.requests.first?.peerIsServer == true)
        #expect(pair.clientApp.established.isEmpty && pair.serverApp.accepted.isEmpty, "nothing before the verifier answers")

        let completion = try #require(pair.verifier.held.first)
        completion(.trusted)
        pair.network.run()
        #expect(pair.clientApp.established == [id])
        #expect(pair.serverApp.accepted.count == 1)
        #expect(pair.client.negotiated(of: id)?.version == .tls13)

        let ping = Array("ping over TLS".utf8)
        #expect(try pair.client.write(ping.span, on: id) == ping.count)
        pair.network.run()
        #expect(pair.serverApp.received == ping)
        #expect(pair.clientApp.received == ping, "the server echoed")

        pair.client.close(id)
        pair.network.run()
        #expect(pair.serverApp.endOfStream == 1, "close_notify is the server's end of stream")
        #expect(pair.clientApp.closed.map { $0.1 } == [.normal])
        #expect(pair.serverApp.closed.map { $0.1 } == [.normal])
        #expect(pair.client.statistics.closeNotifySent == 1 && pair.server.statistics.closeNotifyReceived == 1)
        #expect(pair.client.statistics.handshakesCompleted == 1 && pair.server.statistics.handshakesCompleted == 1)
    }

    @Test("a rejected chain ends the client with .aborted and failure(of:) naming the cause; the server never announces it and counts the alert")
    func rejectedChain() throws {
        let pair = try StackPair()
        pair.verifier.answer = .rejected(.untrustedRoot(issuer: "CN=Nobody"))
        let id = try pair.connect()
        pair.network.run()
        #expect(pair.clientApp.established.isEmpty)
        #expect(pair.clientApp.closed.count == 1)
        #expect(pair.clientApp.closed.first?.0 == id && pair.clientApp.closed.first?.1 == .aborted)
        #expect(pair.clientApp.closed.first?.2 == .badCertificate(.untrustedRoot(issuer: "CN=Nobody")))
        #expect(pair.client.failure(of: id) == nil, "forgotten after connectionClosed")
        #expect(pair.serverApp.accepted.isEmpty && pair.serverApp.closed.isEmpty)
        #expect(pair.client.statistics.alertsSent == 1 && pair.client.statistics.handshakesFailed == 1)
        #expect(pair.server.statistics.alertsReceived == 1 && pair.server.statistics.handshakesFailed == 1)
        #expect(pair.server.handshakesInProgress == 0)
    }

    @Test("a verifier answer that comes after the connection ended is dropped and counted")
    func lateVerification() throws {
        let pair = try StackPair()
        let id = try pair.connect()
        pair.network.run()
        let completion = try #require(pair.verifier.held.first)
        pair.client.abort(id)
        pair.network.run()
        #expect(pair.clientApp.closed.first?.1 == .aborted)
        completion(.trusted)
        pair.network.run()
        #expect(pair.client.statistics.lateVerifications == 1)
        #expect(pair.clientApp.established.isEmpty)
    }

    @Test("a client that never speaks is dropped at the handshake timeout, unseen by the application")
    func handshakeTimeout() throws {
        let pair = try StackPair()
        let silent = StackRecorder()
        _ = try pair.clientBase.connect(to: Endpoint(.v4(IPv4Address(10, 0, 0, 1)), pair.port), timeout: nil, handler: silent)
        pair.network.run()
        #expect(pair.server.handshakesInProgress == 1)
        pair.timers.run(until: pair.clock.now() + .seconds(29))
        pair.network.run()
        #expect(pair.server.handshakesInProgress == 1 && silent.closed.isEmpty, "not before 30 s")
        pair.timers.run(until: pair.clock.now() + .seconds(2))
        pair.network.run()
        #expect(pair.server.handshakesInProgress == 0)
        #expect(pair.server.statistics.handshakeTimeouts == 1 && pair.server.statistics.handshakesFailed == 1)
        #expect(pair.serverBase.aborts == 1)
        #expect(silent.closed.map { $0.1 } == [.reset])
        #expect(pair.serverApp.accepted.isEmpty && pair.serverApp.closed.isEmpty)
    }

    @Test("write takes what the pending-ciphertext limit allows, writable follows, and every byte arrives in order")
    func backPressure() throws {
        var configuration = TLSStackConfiguration()
        configuration.maximumPendingCiphertext = 20_000
        let pair = try StackPair(configuration: configuration)
        pair.verifier.answer = .trusted
        pair.serverApp.echo = false
        pair.clientBase.writeCapacity = 4_096
        let data = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) }
        pair.clientApp.toSend = data
        _ = try pair.connect()
        pair.network.run()
        #expect(pair.clientApp.toSend.isEmpty)
        // Cut at the limit: what the base took (4,096) plus what stays pending (≤ 20,000).
        #expect((pair.clientApp.firstWriteTook ?? 0) <= 20_000 + 4_096, "the first write is cut at the limit")
        #expect(pair.clientApp.writableCount > 0)
        #expect(pair.serverApp.received == data)
    }

    @Test("a write larger than the pending limit is taken whole when the base stack takes every record (no writable owed)")
    func largeWriteWithRoom() throws {
        var configuration = TLSStackConfiguration()
        configuration.maximumPendingCiphertext = 20_000
        let pair = try StackPair(configuration: configuration)
        pair.verifier.answer = .trusted
        pair.serverApp.echo = false
        let data = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        pair.clientApp.toSend = data
        _ = try pair.connect()
        pair.network.run()
        #expect(pair.clientApp.firstWriteTook == data.count, "the whole write is taken at once")
        #expect(pair.clientApp.toSend.isEmpty)
        #expect(pair.serverApp.received == data)
    }

    @Test("a client closed during its handshake is never reported established, and its close completes")
    func closedDuringHandshake() throws {
        let pair = try StackPair()
        pair.verifier.answer = .trusted
        // The ClientHello still waits for the base when the application
        // closes: the close waits for it to go out, then ends the connection.
        pair.clientBase.writeCapacity = 64
        let connection = try pair.connect()
        pair.client.close(connection)
        pair.network.run()
        #expect(pair.clientApp.established.isEmpty)
        #expect(pair.clientApp.closed.count == 1, "\(pair.clientApp.closed)")
    }

    @Test("pauseReading holds decrypted data; resumeReading delivers it after the call returns, not inside it")
    func pauseAndResume() throws {
        let pair = try StackPair()
        pair.verifier.answer = .trusted
        pair.serverApp.echo = false
        pair.serverApp.pauseOnAccept = true
        let id = try pair.connect()
        pair.network.run()
        let serverID = try #require(pair.serverApp.accepted.first)
        let hello = Array("held back".utf8)
        _ = try pair.client.write(hello.span, on: id)
        pair.network.run()
        #expect(pair.serverApp.received.isEmpty)
        pair.server.resumeReading(serverID)
        #expect(pair.serverApp.received.isEmpty, "never re-entrantly inside resumeReading")
        pair.network.run()
        pair.timers.runDue()
        #expect(pair.serverApp.received == hello)
    }

    @Test("calls on a connection still in its handshake or unknown are refused; UDP is not TLS's")
    func refusedCalls() throws {
        let pair = try StackPair()
        let id = try pair.connect()
        let bytes: [UInt8] = [1, 2, 3]
        #expect(throws: DeviceError.notConnected) { _ = try pair.client.write(bytes.span, on: id) }
        #expect(throws: DeviceError.unknownHandle) { _ = try pair.client.write(bytes.span, on: ConnectionID(rawValue: 999)) }
        #expect(throws: DeviceError.unsupported("UDP")) { _ = try pair.client.bindUDP(port: 53, address: nil, handler: NoUDP()) }
        #expect(throws: DeviceError.invalidArgument("TLSStack has no server configuration to listen with")) {
            _ = try pair.client.listen(port: 1, address: nil, backlog: 1, handler: pair.clientApp)
        }
    }
}

private final class NoUDP: UDPHandler {
    func datagramReceived(_ payload: Span<UInt8>, from source: Endpoint, to destination: Endpoint, on socket: UDPSocketID) {}
}
