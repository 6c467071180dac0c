// Embedded check program for MirageTLS (Scripts/check-embedded).
//
// A TLS 1.3 client and server TLSConnection back to back over FuzzCrypto (a
// deterministic stand-in provider: the engine needs nothing of swift-crypto,
// so another provider can serve it on bare metal): a full handshake, one
// through a HelloRetryRequest, data both ways in small pieces, KeyUpdate,
// close_notify, and a tampered record ending in bad_record_mac.
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

func makePair(retry: Bool) -> (Side, Side) {
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

@_cdecl("mirage_main")
public func mirageMain() -> Int32 {
    let report = Report()
    checkHandshake(report, retry: false, piece: 1 << 20)
    checkHandshake(report, retry: false, piece: 3)
    checkHandshake(report, retry: true, piece: 64)
    checkTampering(report)
    print("MirageTLS: \(report.checks) checks, \(report.failed) failed, digest \(report.digest)")
    return Int32(report.failed)
}
