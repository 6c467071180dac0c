// Embedded check program for MirageTLS (Scripts/check-embedded).
//
// A TLS 1.3 client and server TLSConnection back to back over FuzzCrypto (a
// deterministic stand-in provider: the engine needs nothing of swift-crypto,
// so another provider can serve it on bare metal): a full handshake, one
// through a HelloRetryRequest, data both ways in small pieces, KeyUpdate,
// close_notify, and a tampered record ending in bad_record_mac; then a
// TLSStack<FakeStack> server (the generic wrapper, specialised here) serving
// an application through a handshake, data both ways and close_notify, and
// its handshake timeout.
// `mirage_main` returns the number of failed checks (0 = pass).

import MirageDevices
import MirageTLS

final class Side {
    let connection: TLSConnection
    var received: [UInt8] = []
    var completed = false
    var closed = false
    var failure: TLSError? = nil
    init(_ connection: TLSConnection) { self.connection = connection }

    func drain() {
        while let event = connection.nextEvent() {
            switch event {
            case .verifyCertificates: connection.certificateVerificationCompleted(.trusted)
            case .handshakeCompleted: completed = true
            case .applicationData(let bytes): received += bytes
            case .closeNotify: closed = true
            case .failed(let error): failure = error
            }
        }
    }
}

func makePair(retry: Bool, tls12: Bool = false) -> (Side, Side) {
    let crypto = FuzzCrypto()
    let certificate = CertifiedKey(chain: [[0x30, 0x03, 0x02, 0x01, 0x01]], key: FuzzCrypto.Signer(), serverNames: ["embedded.test"])
    var client = TLSClientConfiguration(serverName: "embedded.test")
    client.signatureSchemes = [.ed25519]
    client.applicationProtocols = ["http/1.1"]
    var server = TLSServerConfiguration(certificates: [certificate])
    server.signatureSchemes = [.ed25519]
    server.applicationProtocols = ["http/1.1"]
    if retry {
        client.groups = [.x25519, .secp256r1]
        server.groups = [.secp256r1]
    }
    if tls12 {
        client.versions = [.tls12]
        server.clientAuthentication = .required
        client.certificates = [certificate]
    }
    return (Side(TLSConnection(client: client, crypto: crypto, entropy: SeededEntropy(seed: 11))),
            Side(TLSConnection(server: server, crypto: crypto, entropy: SeededEntropy(seed: 12))))
}

/// Moves bytes both ways, `piece` bytes at a time, until both are quiet.
func pump(_ a: Side, _ b: Side, piece: Int, _ report: Report) {
    for _ in 0..<64 {
        let ab = a.connection.takeOutput()
        let ba = b.connection.takeOutput()
        if ab.isEmpty && ba.isEmpty { return }
        report.mix(ab)
        var offset = 0
        while offset < ab.count {
            let end = min(ab.count, offset + piece)
            b.connection.receive(ab.span.extracting(offset..<end))
            offset = end
        }
        b.drain()
        offset = 0
        while offset < ba.count {
            let end = min(ba.count, offset + piece)
            a.connection.receive(ba.span.extracting(offset..<end))
            offset = end
        }
        a.drain()
    }
}

func checkHandshake(_ report: Report, retry: Bool, piece: Int) {
    let (client, server) = makePair(retry: retry)
    client.connection.start()
    pump(client, server, piece: piece, report)
    report.expect(client.completed && server.completed, "handshake completes")
    report.expect(client.connection.negotiated?.usedHelloRetryRequest == retry, "HelloRetryRequest as expected")
    report.expect(client.connection.negotiated?.group == (retry ? NamedGroup.secp256r1 : .x25519), "group")
    report.expect(server.connection.negotiated?.applicationProtocol == "http/1.1", "ALPN")
    report.expect(server.connection.negotiated?.serverName == "embedded.test", "SNI")

    var request: [UInt8] = []
    for i in 0..<20_000 { request.append(UInt8(truncatingIfNeeded: i &* 7)) }
    do throws(TLSError) {
        try client.connection.write(request.span)
        pump(client, server, piece: piece, report)
        try client.connection.updateKeys(requestPeerUpdate: true)
        try server.connection.write(bytes("after key update").span)
        pump(client, server, piece: piece, report)
    } catch {
        report.expect(false, "write or key update threw")
    }
    report.expect(server.received == request, "client to server data")
    report.expect(client.received == bytes("after key update"), "server to client data after KeyUpdate")
    client.connection.close()
    server.connection.close()
    pump(client, server, piece: piece, report)
    report.expect(client.closed && server.closed, "close_notify both ways")
    report.expect(client.connection.isEnded && server.connection.isEnded, "both ended")
    report.expect(client.failure == nil && server.failure == nil, "no failure")
}

/// TLS 1.2 with a client certificate, and renegotiation refused, on bare metal too.
func checkTLS12(_ report: Report, piece: Int) {
    let (client, server) = makePair(retry: false, tls12: true)
    client.connection.start()
    pump(client, server, piece: piece, report)
    report.expect(client.completed && server.completed, "TLS 1.2 handshake completes")
    report.expect(client.connection.negotiated?.version == .tls12 && server.connection.negotiated?.version == .tls12, "TLS 1.2 negotiated")
    report.expect(client.connection.negotiated?.cipherSuite == .ecdheECDSAWithAES128GCMSHA256, "TLS 1.2 suite")
    report.expect(server.connection.negotiated?.peerCertificates.count == 1, "the server has the client's certificate")
    var request: [UInt8] = []
    for i in 0..<20_000 { request.append(UInt8(truncatingIfNeeded: i &* 3)) }
    do throws(TLSError) {
        try client.connection.write(request.span)
        try server.connection.write(bytes("tls 1.2 reply").span)
        pump(client, server, piece: piece, report)
    } catch {
        report.expect(false, "TLS 1.2 write threw")
    }
    report.expect(server.received == request && client.received == bytes("tls 1.2 reply"), "TLS 1.2 data both ways")
    client.connection.close()
    server.connection.close()
    pump(client, server, piece: piece, report)
    report.expect(client.failure == nil && server.failure == nil && client.closed && server.closed, "TLS 1.2 closes cleanly")
}

func checkTampering(_ report: Report) {
    let (client, server) = makePair(retry: false)
    client.connection.start()
    pump(client, server, piece: 1 << 20, report)
    do throws(TLSError) {
        try server.connection.write(bytes("secret").span)
    } catch {
        report.expect(false, "write threw")
    }
    var record = server.connection.takeOutput()
    record[record.count - 1] ^= 0x20
    client.connection.receive(record.span)
    client.drain()
    report.expect(client.failure == .badRecordMAC, "bad_record_mac")
    report.expect(client.received.isEmpty, "nothing delivered from a bad record")
    server.connection.receive(client.connection.takeOutput().span)
    server.drain()
    report.expect(server.failure == .alertReceived(.badRecordMAC), "the peer hears bad_record_mac")
}

/// The application behind the TLS stack: what it saw.
final class App: TCPHandler {
    var accepted: [ConnectionID] = []
    var received: [UInt8] = []
    var ended = 0
    var closed: [CloseReason] = []
    func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) { accepted.append(connection) }
    func connectionEstablished(_ connection: ConnectionID) {}
    func received(_ bytes: Span<UInt8>, on connection: ConnectionID) { received.append(span: bytes) }
    func endOfStream(on connection: ConnectionID) { ended += 1 }
    func writable(_ connection: ConnectionID) {}
    func connectionClosed(_ connection: ConnectionID, reason: CloseReason) { closed.append(reason) }
}

func checkStack(_ report: Report) {
    let (client, _) = makePair(retry: false)
    let certificate = CertifiedKey(chain: [[0x30, 0x03, 0x02, 0x01, 0x01]], key: FuzzCrypto.Signer(), serverNames: ["embedded.test"])
    var configuration = TLSServerConfiguration(certificates: [certificate])
    configuration.signatureSchemes = [.ed25519]
    let base = FakeStack()
    let clock = ManualClock()
    let timers = ManualTimerScheduler(clock: clock)
    let tls = TLSStack(base: base, server: configuration, crypto: FuzzCrypto(), verifier: nil, entropy: SeededEntropy(seed: 5),
                       timers: timers, clock: clock)
    let app = App()
    guard let listener = try? tls.listen(port: 443, address: nil, backlog: 8, handler: app) else {
        report.expect(false, "listen")
        return
    }
    let connection = ConnectionID(rawValue: 40)
    tls.connectionAccepted(connection, listener: listener)
    report.expect(app.accepted.isEmpty, "not accepted before the handshake")
    client.connection.start()
    for _ in 0..<8 {
        let out = client.connection.takeOutput()
        if !out.isEmpty { tls.received(out.span, on: connection) }
        let back = base.take(connection)
        if !back.isEmpty { client.connection.receive(back.span); client.drain() }
        if out.isEmpty && back.isEmpty { break }
    }
    report.expect(client.completed, "client handshake over the stack")
    report.expect(app.accepted == [connection], "accepted after the handshake")
    do throws(TLSError) {
        try client.connection.write(bytes("GET / HTTP/1.1\r\n\r\n").span)
    } catch {
        report.expect(false, "client write")
    }
    tls.received(client.connection.takeOutput().span, on: connection)
    report.expect(app.received == bytes("GET / HTTP/1.1\r\n\r\n"), "request through the stack")
    let written = (try? tls.write(bytes("HTTP/1.1 204 No Content\r\n\r\n").span, on: connection)) ?? -1
    report.expect(written == 27, "response accepted")
    client.connection.receive(base.take(connection).span)
    client.drain()
    report.expect(client.received == bytes("HTTP/1.1 204 No Content\r\n\r\n"), "response through the stack")
    tls.close(connection)
    client.connection.receive(base.take(connection).span)
    client.drain()
    report.expect(client.closed, "close_notify from the stack")
    report.expect(tls.negotiated(of: connection)?.cipherSuite == .aes128GCMSHA256 || base.closed.contains(connection), "negotiated or closed")

    // A client that never speaks is dropped when the handshake timeout fires.
    let silent = ConnectionID(rawValue: 41)
    tls.connectionAccepted(silent, listener: listener)
    timers.run(until: clock.now() + .seconds(31))
    report.expect(base.aborted.contains(silent) || base.closed.contains(silent), "silent client dropped after the timeout")
    report.expect(app.accepted == [connection], "the silent client never reached the application")
    report.expect(tls.statistics.handshakesCompleted == 1, "one handshake counted")
}

@_cdecl("mirage_main")
public func mirageMain() -> Int32 {
    let report = Report()
    checkHandshake(report, retry: false, piece: 1 << 20)
    checkHandshake(report, retry: false, piece: 3)
    checkHandshake(report, retry: true, piece: 64)
    checkTLS12(report, piece: 1 << 20)
    checkTLS12(report, piece: 5)
    checkTampering(report)
    checkStack(report)
    print("MirageTLS: \(report.checks) checks, \(report.failed) failed, digest \(report.digest)")
    return Int32(report.failed)
}
