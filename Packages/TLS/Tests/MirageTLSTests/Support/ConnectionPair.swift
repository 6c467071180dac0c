import MirageDevices
@testable import MirageTLS
import MirageTLSCrypto

/// A client and a server engine back to back in memory. Bytes move in
/// pieces of at most `chunk`; certificate requests are answered with
/// `verification`; events are collected per side.
final class ConnectionPair {
    let client: TLSConnection
    let server: TLSConnection
    var clientEvents: [TLSEvent] = []
    var serverEvents: [TLSEvent] = []
    var verification: CertificateVerificationResult = .trusted
    /// The answer for a client's certificates (on the server), when it differs from `verification`.
    var clientCertificateVerification: CertificateVerificationResult?
    var verificationRequests: [CertificateVerificationRequest] = []
    /// Client-to-server bytes seen on the wire, for inspection.
    var clientWire: [UInt8] = []
    var serverWire: [UInt8] = []
    /// Rewrites what the server sends before the client sees it (whole output batches).
    var serverToClient: (([UInt8]) -> [UInt8])?
    var clientToServer: (([UInt8]) -> [UInt8])?

    init(client configuration: TLSClientConfiguration, server serverConfiguration: TLSServerConfiguration,
         crypto: any CryptoProvider = SwiftCryptoProvider(), seed: UInt64 = 1) {
        client = TLSConnection(client: configuration, crypto: crypto, entropy: SeededEntropy(seed: seed))
        server = TLSConnection(server: serverConfiguration, crypto: crypto, entropy: SeededEntropy(seed: seed &+ 1000))
    }

    /// Runs until neither side has anything to send (bounded).
    func run(chunk: Int = Int.max) {
        client.start()
        for _ in 0..<64 {
            var moved = false
            if client.hasOutput {
                var bytes = client.takeOutput()
                if let clientToServer { bytes = clientToServer(bytes) }
                clientWire += bytes
                deliver(bytes, to: server, chunk: chunk)
                moved = true
            }
            drain(server, into: &serverEvents)
            if server.hasOutput {
                var bytes = server.takeOutput()
                if let serverToClient { bytes = serverToClient(bytes) }
                serverWire += bytes
                deliver(bytes, to: client, chunk: chunk)
                moved = true
            }
            drain(client, into: &clientEvents)
            if !moved && !client.hasOutput && !server.hasOutput { return }
        }
    }

    func deliver(_ bytes: [UInt8], to connection: TLSConnection, chunk: Int) {
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + max(1, chunk))
            let piece = Array(bytes[offset..<end])
            connection.receive(piece.span)
            offset = end
        }
    }

    func drain(_ connection: TLSConnection, into events: inout [TLSEvent]) {
        while let event = connection.nextEvent() {
            events.append(event)
            if case .verifyCertificates(let request) = event {
                verificationRequests.append(request)
                let answer = request.peerIsServer ? verification : (clientCertificateVerification ?? verification)
                connection.certificateVerificationCompleted(answer)
            }
        }
    }

    /// Application data a side received, concatenated.
    static func data(_ events: [TLSEvent]) -> [UInt8] {
        var all: [UInt8] = []
        for case .applicationData(let bytes) in events { all += bytes }
        return all
    }

    static func failure(_ events: [TLSEvent]) -> TLSError? {
        for case .failed(let error) in events { return error }
        return nil
    }

    static func completed(_ events: [TLSEvent]) -> Bool {
        events.contains(.handshakeCompleted)
    }

    /// Writes through `from` and moves the records to the other side.
    func send(_ bytes: [UInt8], from sender: TLSConnection, chunk: Int = Int.max) throws(TLSError) {
        try sender.write(bytes.span)
        run(chunk: chunk)
    }
}
