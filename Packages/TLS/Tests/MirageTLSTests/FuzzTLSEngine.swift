// `tls-engine`: the TLSConnection state machine under fuzzing. libFuzzer
// builds this file with MirageDevices and MirageTLS only (no swift-crypto),
// so the engine runs over `FuzzCrypto` (FuzzCrypto.swift), a deterministic stand-in whose
// records a fuzzer cannot forge (each carries a 128-bit keyed checksum) but
// whose handshakes complete: a client and a server engine talk through a
// channel the input drives, so every state is reached, and the input also
// flips bytes in flight and injects its own bytes into either side.
//
// Promises checked: nothing traps; no event follows `.failed`; a completed
// handshake was reported as such; application data that arrives is exactly
// what the other side wrote, in order, unless the input tampered with the
// channel (then it may only be a failure, never different data).

import MirageDevices
import MirageTLS

/// One side of the fuzzed conversation and what it has seen.
final class FuzzSide {
    let connection: TLSConnection
    var failed = false
    var completed = false
    var received: [UInt8] = []
    var events = 0
    init(_ connection: TLSConnection) { self.connection = connection }

    func drain(_ report: inout FuzzReport) {
        while let event = connection.nextEvent() {
            fuzzCheck(!failed, "engine: an event after .failed")
            events += 1
            report.messages += 1
            switch event {
            case .verifyCertificates:
                connection.certificateVerificationCompleted(.trusted)
            case .handshakeCompleted:
                fuzzCheck(!completed, "engine: handshakeCompleted twice")
                completed = true
                report.decoded += 1
            case .applicationData(let bytes):
                fuzzCheck(completed, "engine: application data before handshakeCompleted")
                received += bytes
            case .closeNotify:
                break
            case .failed(let error):
                failed = true
                report.error = error
            }
        }
        if connection.isHandshakeComplete { fuzzCheck(completed || failed, "engine: complete without the event") }
    }
}

/// `tls-engine`: the input is a program of operations on a client, a server
/// and the two directions between them.
func fuzzEngine(_ input: Span<UInt8>) -> FuzzReport {
    let bytes = fuzzCopy(input)
    var report = FuzzReport()
    let crypto = FuzzCrypto()
    let certificate = CertifiedKey(chain: [[0x30, 0x03, 0x02, 0x01, 0x01]], key: FuzzCrypto.Signer(), serverNames: ["fuzz.test"])
    var clientConfiguration = TLSClientConfiguration(serverName: "fuzz.test")
    clientConfiguration.signatureSchemes = [.ed25519]
    clientConfiguration.applicationProtocols = ["h2", "http/1.1"]
    var serverConfiguration = TLSServerConfiguration(certificates: [certificate])
    serverConfiguration.signatureSchemes = [.ed25519]
    serverConfiguration.applicationProtocols = ["http/1.1"]
    // The first byte picks groups so HelloRetryRequest is reached too.
    if let first = bytes.first, first & 1 == 1 {
        serverConfiguration.groups = [.secp256r1]
        clientConfiguration.groups = [.x25519, .secp256r1]
    }
    // Its next bits make the server ask for a client certificate (issue #10),
    // optionally or required, and give the client one (or not).
    if let first = bytes.first, first & 6 != 0 {
        serverConfiguration.clientAuthentication = first & 2 != 0 ? .optional : .required
        if first & 8 == 0 { clientConfiguration.certificates = [certificate] }
    }
    // Bit 16 makes the client offer only TLS 1.2 (issue #10), so the TLS 1.2
    // handshake, with or without client certificates, is fuzzed too.
    if let first = bytes.first, first & 16 != 0 { clientConfiguration.versions = [.tls12] }
    let client = FuzzSide(TLSConnection(client: clientConfiguration, crypto: crypto, entropy: SeededEntropy(seed: 1)))
    let server = FuzzSide(TLSConnection(server: serverConfiguration, crypto: crypto, entropy: SeededEntropy(seed: 2)))
    var toServer: [UInt8] = []
    var toClient: [UInt8] = []
    var sentByClient: [UInt8] = []
    var sentByServer: [UInt8] = []
    var tampered = false
    client.connection.start()

    var i = 1
    var steps = 0
    while i < bytes.count && steps < 256 {
        let op = bytes[i]
        let argument = i + 1 < bytes.count ? Int(bytes[i + 1]) : 0
        i += 2
        steps += 1
        report.records += 1
        toServer += client.connection.takeOutput()
        toClient += server.connection.takeOutput()
        switch op % 8 {
        case 0, 1:  // deliver up to argument+1 bytes (0: everything) one way
            var queue = op % 8 == 0 ? toServer : toClient
            let count = argument == 0 ? queue.count : min(queue.count, argument + 1)
            let piece = Array(queue.prefix(count))
            queue.removeFirst(count)
            if op % 8 == 0 { toServer = queue; server.connection.receive(piece.span); server.drain(&report) }
            else { toClient = queue; client.connection.receive(piece.span); client.drain(&report) }
        case 2:  // flip a bit of what is in flight
            if !toServer.isEmpty { toServer[argument % toServer.count] ^= 1 << UInt8(argument & 7); tampered = true }
        case 3:
            if !toClient.isEmpty { toClient[argument % toClient.count] ^= 1 << UInt8(argument & 7); tampered = true }
        case 4, 5:  // inject input bytes into one side
            let start = min(i, bytes.count)
            let count = max(0, min(argument, bytes.count - start))
            let injected = Array(bytes[start..<(start + count)])
            i += count
            tampered = true
            if op % 8 == 4 { server.connection.receive(injected.span); server.drain(&report) }
            else { client.connection.receive(injected.span); client.drain(&report) }
        case 6:  // the application writes (or updates keys, or closes)
            let side = argument & 1 == 0 ? client : server
            let data = [UInt8](repeating: UInt8(truncatingIfNeeded: argument), count: argument * 67 + 1)
            switch (argument >> 1) % 4 {
            case 0, 1:
                if (try? side.connection.write(data.span)) != nil {
                    if side === client { sentByClient += data } else { sentByServer += data }
                }
            case 2: _ = try? side.connection.updateKeys(requestPeerUpdate: argument & 8 != 0)
            default: side.connection.close()
            }
        default:  // deliver everything both ways
            let a = toServer, b = toClient
            toServer = []; toClient = []
            server.connection.receive(a.span); server.drain(&report)
            client.connection.receive(b.span); client.drain(&report)
        }
    }
    // Undisturbed, what arrived is a prefix of what was sent, byte for byte.
    if !tampered {
        fuzzCheck(server.received.count <= sentByClient.count && Array(sentByClient.prefix(server.received.count)) == server.received,
                  "engine: the server received data the client did not send")
        fuzzCheck(client.received.count <= sentByServer.count && Array(sentByServer.prefix(client.received.count)) == client.received,
                  "engine: the client received data the server did not send")
    } else {
        // Tampered: data may stop, but what got through must still be what was sent.
        fuzzCheck(Array(sentByClient.prefix(server.received.count)) == server.received, "engine: corrupted data reached the server")
        fuzzCheck(Array(sentByServer.prefix(client.received.count)) == client.received, "engine: corrupted data reached the client")
    }
    report.mix(UInt64(client.events &* 31 &+ server.events))
    return report
}
