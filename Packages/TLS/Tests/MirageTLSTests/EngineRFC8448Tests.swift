import MirageDevices
@testable import MirageTLS
import MirageTLSCrypto
import Testing

/// RFC 8448 §3 ("Simple 1-RTT Handshake") replayed through the engine, with
/// the trace's fixed inputs: its X25519 keys, its ClientHello (randoms and
/// extensions are the RFC's, not ours) and its server flight. RSA-PSS
/// signatures are randomised, so the server's CertificateVerify cannot be
/// reproduced; everything else that depends only on fixed inputs is.
@Suite("Engine: RFC 8448 traces")
struct EngineRFC8448Tests {
    /// Entropy that first hands out fixed bytes (a hello's random), then zeros.
    final class ScriptedEntropy: EntropySource {
        var script: [UInt8]
        init(_ script: [UInt8]) { self.script = script }
        func fill(_ buffer: inout MutableSpan<UInt8>) {
            for i in 0..<buffer.count { buffer[i] = script.isEmpty ? 0 : script.removeFirst() }
        }
    }

    static func plainRecord(_ type: UInt8, version: UInt16 = 0x0303, _ payload: [UInt8]) -> [UInt8] {
        [type, UInt8(version >> 8), UInt8(version & 0xFF), UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] + payload
    }

    func drain(_ connection: TLSConnection) -> [TLSEvent] {
        var events: [TLSEvent] = []
        while let event = connection.nextEvent() {
            events.append(event)
            if case .verifyCertificates = event { connection.certificateVerificationCompleted(.trusted) }
        }
        return events
    }

    @Test("our client, given §3's ClientHello and key, answers §3's server byte for byte")
    func clientTrace() throws {
        var configuration = TLSClientConfiguration(serverName: "server")
        configuration.cipherSuites = [.aes128GCMSHA256]
        configuration.groups = [.x25519]
        configuration.middleboxCompatibility = false  // §3's client sends an empty session ID and no CCS
        let client = TLSConnection(client: configuration, crypto: FixedKeyCryptoProvider.rfc8448Client(),
                                   entropy: SeededEntropy(seed: 7))
        client.tamperWithOutgoingHandshake = { message in message.first == 1 ? RFC8448.clientHello : message }
        client.start()
        #expect(client.takeOutput() == Self.plainRecord(22, version: 0x0301, RFC8448.clientHello))

        let serverFlight = Self.plainRecord(22, RFC8448.serverHello) + RFC8448.serverHandshakeRecord
        client.receive(serverFlight.span)
        let events = drain(client)
        #expect(events.first == .verifyCertificates(CertificateVerificationRequest(
            chain: [Array(RFC8448.certificate[11..<(RFC8448.certificate.count - 2)])], serverName: "server", peerIsServer: true)))
        #expect(events.contains(.handshakeCompleted), "\(events)")
        #expect(client.negotiated?.peerSignatureScheme == .rsaPSSRSAESHA256)
        #expect(client.takeOutput() == RFC8448.clientFinishedRecord)

        let newSessionTicketRecord = RFC8448.newSessionTicketRecord
        let applicationPayload = RFC8448.applicationPayload
        let serverApplicationRecord = RFC8448.serverApplicationRecord
        let serverAlertRecord = RFC8448.serverAlertRecord
        client.receive(newSessionTicketRecord.span)
        #expect(drain(client).isEmpty)
        try client.write(applicationPayload.span)
        #expect(client.takeOutput() == RFC8448.clientApplicationRecord)
        client.receive(serverApplicationRecord.span)
        #expect(drain(client) == [.applicationData(RFC8448.applicationPayload)])
        client.close()
        #expect(client.takeOutput() == RFC8448.clientAlertRecord)
        client.receive(serverAlertRecord.span)
        #expect(drain(client) == [.closeNotify])
        #expect(client.isEnded)
    }

    @Test("our server, given §3's ClientHello, key and random, sends §3's ServerHello and keys its flight as the RFC does")
    func serverTrace() throws {
        let serverRandom = Array(RFC8448.serverHello[6..<38])
        let authority = try TestCredentials.makeAuthority()
        var configuration = TLSServerConfiguration(certificates: [try TestCredentials.makeLeaf(.p256, authority: authority, names: ["server"])])
        configuration.cipherSuites = [.aes128GCMSHA256]
        let server = TLSConnection(server: configuration, crypto: FixedKeyCryptoProvider.rfc8448Server(),
                                   entropy: ScriptedEntropy(serverRandom))
        server.receive(Self.plainRecord(22, version: 0x0301, RFC8448.clientHello).span)
        #expect(drain(server).isEmpty)
        let output = server.takeOutput()
        let serverHelloRecord = Self.plainRecord(22, RFC8448.serverHello)
        #expect(Array(output.prefix(serverHelloRecord.count)) == serverHelloRecord)
        // §3's client sent no session ID, so no CCS; the next record is the
        // encrypted flight, which opens with the RFC's server handshake secret.
        var reader = RecordReassembler()
        let rest = Array(output.dropFirst(serverHelloRecord.count))
        reader.append(rest.span)
        var protection = RecordProtection(suite: .aes128GCMSHA256, secret: RFC8448.serverHandshakeTrafficSecret, crypto: SwiftCryptoProvider())
        let record = try #require(try reader.next())
        let (type, plaintext) = try protection.open(header: record.header, fragment: record.fragment)
        #expect(type == .handshake)
        #expect(plaintext.first == HandshakeType.encryptedExtensions.rawValue)
        #expect(Array(plaintext[4..<10]) == [0x00, 0x04, 0x00, 0x00, 0x00, 0x00])  // just the server_name acknowledgement
    }

    @Test("our client, given §5's ClientHellos and P-256 key, completes against §5's HelloRetryRequest and server")
    func helloRetryRequestTrace() throws {
        var configuration = TLSClientConfiguration(serverName: "server")
        configuration.cipherSuites = [.aes128GCMSHA256]
        configuration.groups = [.x25519, .secp256r1]
        configuration.keyShareGroups = [.x25519]
        configuration.middleboxCompatibility = false
        let client = TLSConnection(client: configuration, crypto: FixedKeyCryptoProvider.rfc8448Client(), entropy: SeededEntropy(seed: 7))
        var hellos = [RFC8448.hrrClientHello1, RFC8448.hrrClientHello2]
        client.tamperWithOutgoingHandshake = { message in message.first == 1 && !hellos.isEmpty ? hellos.removeFirst() : message }
        client.start()
        #expect(client.takeOutput() == Self.plainRecord(22, version: 0x0301, RFC8448.hrrClientHello1))
        client.receive(Self.plainRecord(22, RFC8448.helloRetryRequest).span)
        #expect(drain(client).isEmpty)
        // The second hello carries the RFC's P-256 share, made from its fixed key by our provider.
        #expect(client.takeOutput() == Self.plainRecord(22, RFC8448.hrrClientHello2))
        let flight = Self.plainRecord(22, RFC8448.hrrServerHello) + RFC8448.hrrServerHandshakeRecord
        client.receive(flight.span)
        let events = drain(client)
        // Completing means the server's Finished verified over our transcript,
        // which starts with message_hash(ClientHello1) (§4.4.1).
        #expect(events.contains(.handshakeCompleted), "\(events)")
        #expect(client.negotiated?.usedHelloRetryRequest == true)
        #expect(client.negotiated?.group == .secp256r1)
        #expect(client.hasOutput)
    }
}
