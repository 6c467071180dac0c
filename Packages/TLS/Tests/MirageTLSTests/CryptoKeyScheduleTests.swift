// RFC 8446 §7.1 key schedule, §4.4.1 transcript and §4.4.4 Finished,
// reproduced against RFC 8448's traces (§3 Simple 1-RTT, §5 HelloRetryRequest).

import MirageTLS
import MirageTLSCrypto
import Testing

@Suite struct CryptoKeyScheduleTests {
    let crypto = SwiftCryptoProvider()

    /// The §3 transcript up to and including `count` messages of
    /// ClientHello, ServerHello, EE, Certificate, CertificateVerify, server Finished, client Finished.
    func transcript(_ count: Int) -> TranscriptHash {
        let messages = [RFC8448.clientHello, RFC8448.serverHello, RFC8448.encryptedExtensions, RFC8448.certificate,
                        RFC8448.certificateVerify, RFC8448.serverFinished, RFC8448.clientFinished]
        var transcript = TranscriptHash(.sha256)
        for message in messages.prefix(count) { transcript.append(message) }
        return transcript
    }

    @Test func x25519SharedSecretFromTheRFCsFixedKeys() throws {
        let client = try crypto.makeKeyExchange(.x25519, privateKey: RFC8448.clientX25519PrivateKey)
        let server = try crypto.makeKeyExchange(.x25519, privateKey: RFC8448.serverX25519PrivateKey)
        #expect(client.group == .x25519)
        #expect(client.publicKey == RFC8448.clientX25519PublicKey)
        #expect(server.publicKey == RFC8448.serverX25519PublicKey)
        #expect(try client.sharedSecret(peerPublicKey: server.publicKey) == RFC8448.sharedSecret)
        #expect(try server.sharedSecret(peerPublicKey: client.publicKey) == RFC8448.sharedSecret)
    }

    @Test func transcriptHashesMatchTheTrace() {
        #expect(transcript(2).current(crypto) == RFC8448.helloHash)
        #expect(transcript(6).current(crypto) == RFC8448.serverFinishedHash)
        #expect(transcript(7).current(crypto) == RFC8448.clientFinishedHash)
    }

    @Test func everySecretOfTheSimpleHandshake() {
        var schedule = KeySchedule(suite: .aes128GCMSHA256, crypto: crypto)
        #expect(schedule.earlySecret == RFC8448.earlySecret)
        let emptyHash = crypto.hash(.sha256, [])
        #expect(KeySchedule.expandLabel(crypto, .sha256, secret: RFC8448.earlySecret, label: "derived", context: emptyHash, length: 32) == RFC8448.derivedFromEarly)

        let handshake = schedule.deriveHandshakeSecrets(sharedSecret: RFC8448.sharedSecret, transcriptHash: RFC8448.helloHash)
        #expect(schedule.handshakeSecret == RFC8448.handshakeSecret)
        #expect(handshake.client == RFC8448.clientHandshakeTrafficSecret)
        #expect(handshake.server == RFC8448.serverHandshakeTrafficSecret)
        #expect(KeySchedule.expandLabel(crypto, .sha256, secret: RFC8448.handshakeSecret, label: "derived", context: emptyHash, length: 32) == RFC8448.derivedFromHandshake)
        #expect(schedule.masterSecret == nil && schedule.exporterMasterSecret == nil)

        let application = schedule.deriveApplicationSecrets(transcriptHash: RFC8448.serverFinishedHash)
        #expect(schedule.masterSecret == RFC8448.masterSecret)
        #expect(application.client == RFC8448.clientApplicationTrafficSecret)
        #expect(application.server == RFC8448.serverApplicationTrafficSecret)
        #expect(schedule.exporterMasterSecret == RFC8448.exporterMasterSecret)

        #expect(schedule.resumptionMasterSecret == nil)
        let resumption = schedule.deriveResumptionMasterSecret(transcriptHash: RFC8448.clientFinishedHash)
        #expect(resumption == RFC8448.resumptionMasterSecret)
        #expect(schedule.resumptionMasterSecret == RFC8448.resumptionMasterSecret)
    }

    /// (traffic secret, write key, write IV) for each direction and phase of §3.
    static let trafficKeys: [(String, [UInt8], [UInt8], [UInt8])] = [
        ("server handshake", RFC8448.serverHandshakeTrafficSecret, RFC8448.serverHandshakeKey, RFC8448.serverHandshakeIV),
        ("client handshake", RFC8448.clientHandshakeTrafficSecret, RFC8448.clientHandshakeKey, RFC8448.clientHandshakeIV),
        ("server application", RFC8448.serverApplicationTrafficSecret, RFC8448.serverApplicationKey, RFC8448.serverApplicationIV),
        ("client application", RFC8448.clientApplicationTrafficSecret, RFC8448.clientApplicationKey, RFC8448.clientApplicationIV),
    ]

    @Test(arguments: trafficKeys)
    func trafficKeyAndIV(_ row: (String, [UInt8], [UInt8], [UInt8])) {
        let schedule = KeySchedule(suite: .aes128GCMSHA256, crypto: crypto)
        let derived = schedule.trafficKey(row.1)
        #expect(derived.key == row.2, "\(row.0) key")
        #expect(derived.iv == row.3, "\(row.0) iv")
    }

    @Test func serverAndClientFinishedVerifyData() throws {
        let schedule = KeySchedule(suite: .aes128GCMSHA256, crypto: crypto)
        // Server Finished: over ClientHello … CertificateVerify with the server handshake secret.
        let serverVerifyData = schedule.finishedVerifyData(trafficSecret: RFC8448.serverHandshakeTrafficSecret, transcriptHash: transcript(5).current(crypto))
        #expect(serverVerifyData == Array(RFC8448.serverFinished.dropFirst(4)))
        // Client Finished: over ClientHello … server Finished with the client handshake secret.
        let clientVerifyData = schedule.finishedVerifyData(trafficSecret: RFC8448.clientHandshakeTrafficSecret, transcriptHash: RFC8448.serverFinishedHash)
        #expect(clientVerifyData == Array(RFC8448.clientFinished.dropFirst(4)))
        try schedule.verifyFinished(clientVerifyData, trafficSecret: RFC8448.clientHandshakeTrafficSecret, transcriptHash: RFC8448.serverFinishedHash)
    }

    @Test func aWrongFinishedIsADecryptError() {
        let schedule = KeySchedule(suite: .aes128GCMSHA256, crypto: crypto)
        var tampered = Array(RFC8448.clientFinished.dropFirst(4))
        tampered[31] ^= 0x01
        #expect(throws: TLSError.decryptError("Finished verify_data does not match")) {
            try schedule.verifyFinished(tampered, trafficSecret: RFC8448.clientHandshakeTrafficSecret, transcriptHash: RFC8448.serverFinishedHash)
        }
        // A truncated verify_data is refused too, not compared as a prefix.
        #expect(throws: TLSError.self) {
            try schedule.verifyFinished(Array(RFC8448.clientFinished.dropFirst(4).prefix(16)), trafficSecret: RFC8448.clientHandshakeTrafficSecret, transcriptHash: RFC8448.serverFinishedHash)
        }
    }

    @Test func keyUpdateUsesTheTrafficUpdLabel() {
        let schedule = KeySchedule(suite: .aes128GCMSHA256, crypto: crypto)
        let next = schedule.nextApplicationSecret(RFC8448.clientApplicationTrafficSecret)
        // HKDF-Expand of one block is HMAC(PRK, info || 0x01); HkdfLabel is
        // length 32, label "tls13 traffic upd" (17 bytes), empty context (§7.1, §7.2).
        let info: [UInt8] = [0x00, 0x20, 17] + Array("tls13 traffic upd".utf8) + [0x00]
        #expect(next == crypto.hmac(.sha256, key: RFC8448.clientApplicationTrafficSecret, data: info + [0x01]))
        #expect(next != RFC8448.clientApplicationTrafficSecret)
        #expect(schedule.nextApplicationSecret(next) != next)
    }

    @Test func sha384SuiteUsesSHA384Lengths() {
        var schedule = KeySchedule(suite: .aes256GCMSHA384, crypto: crypto)
        #expect(schedule.hash == .sha384)
        #expect(schedule.earlySecret.count == 48)
        let secrets = schedule.deriveHandshakeSecrets(sharedSecret: RFC8448.sharedSecret, transcriptHash: crypto.hash(.sha384, RFC8448.clientHello + RFC8448.serverHello))
        #expect(secrets.client.count == 48 && secrets.server.count == 48 && secrets.client != secrets.server)
        let keys = schedule.trafficKey(secrets.server)
        #expect(keys.key.count == 32 && keys.iv.count == 12)
        #expect(schedule.finishedVerifyData(trafficSecret: secrets.server, transcriptHash: crypto.hash(.sha384, [])).count == 48)
    }

    @Test func exporterIsDerivedFromTheExporterMasterSecret() {
        var schedule = KeySchedule(suite: .aes128GCMSHA256, crypto: crypto)
        #expect(schedule.exportKeyingMaterial(label: "EXPORTER-test", context: [], length: 32) == nil)
        _ = schedule.deriveHandshakeSecrets(sharedSecret: RFC8448.sharedSecret, transcriptHash: RFC8448.helloHash)
        _ = schedule.deriveApplicationSecrets(transcriptHash: RFC8448.serverFinishedHash)
        let emptyHash = crypto.hash(.sha256, [])
        let secret = KeySchedule.expandLabel(crypto, .sha256, secret: RFC8448.exporterMasterSecret, label: "EXPORTER-test", context: emptyHash, length: 32)
        let expected = KeySchedule.expandLabel(crypto, .sha256, secret: secret, label: "exporter", context: crypto.hash(.sha256, [1, 2, 3]), length: 20)
        #expect(schedule.exportKeyingMaterial(label: "EXPORTER-test", context: [1, 2, 3], length: 20) == expected)
    }

    // MARK: §5 HelloRetryRequest

    @Test func helloRetryRequestTranscriptUsesMessageHash() {
        var transcript = TranscriptHash(.sha256)
        transcript.append(RFC8448.hrrClientHello1)
        transcript.replaceWithMessageHash(crypto)
        // §4.4.1: handshake type message_hash(254), length Hash.length, Hash(ClientHello1).
        #expect(transcript.bytes == [254, 0, 0, 32] + crypto.hash(.sha256, RFC8448.hrrClientHello1))
        transcript.append(RFC8448.helloRetryRequest)
        transcript.append(RFC8448.hrrClientHello2)
        transcript.append(RFC8448.hrrServerHello)
        #expect(transcript.current(crypto) == RFC8448.hrrHelloHash)
    }

    @Test func helloRetryRequestHandshakeDecryptsAndBothFinishedVerify() throws {
        // The secp256r1 exchange from the RFC's fixed client key.
        let clientHello2 = try ClientHello(parsing: Array(RFC8448.hrrClientHello2.dropFirst(4)))
        let serverHello = try ServerHello(parsing: Array(RFC8448.hrrServerHello.dropFirst(4)))
        let clientShares = try KeyShareClientHello(parsing: try #require(clientHello2.extensions.first(.keyShare)).data)
        let serverShare = try KeyShareServerHello(parsing: try #require(serverHello.extensions.first(.keyShare)).data)
        let exchange = try crypto.makeKeyExchange(.secp256r1, privateKey: RFC8448.hrrClientP256PrivateKey)
        #expect(clientShares.shares.map { $0.group } == [.secp256r1])
        #expect(exchange.publicKey == clientShares.shares.first?.keyExchange)
        #expect(serverShare.share.group == .secp256r1)
        let shared = try exchange.sharedSecret(peerPublicKey: serverShare.share.keyExchange)
        #expect(shared == RFC8448.hrrSharedSecret)

        var transcript = TranscriptHash(.sha256)
        transcript.append(RFC8448.hrrClientHello1)
        transcript.replaceWithMessageHash(crypto)
        for message in [RFC8448.helloRetryRequest, RFC8448.hrrClientHello2, RFC8448.hrrServerHello] { transcript.append(message) }
        var schedule = KeySchedule(suite: serverHello.cipherSuite, crypto: crypto)
        let secrets = schedule.deriveHandshakeSecrets(sharedSecret: shared, transcriptHash: transcript.current(crypto))
        let serverKeys = schedule.trafficKey(secrets.server)
        #expect(serverKeys.key == RFC8448.hrrServerHandshakeKey)
        #expect(serverKeys.iv == RFC8448.hrrServerHandshakeIV)

        // The server's flight decrypts to EE, Certificate, CertificateVerify, Finished.
        var reader = RecordProtection(suite: serverHello.cipherSuite, secret: secrets.server, crypto: crypto)
        let record = RFC8448.hrrServerHandshakeRecord
        let header = RecordHeader(contentType: .applicationData, legacyVersion: .tls12, length: record.count - RecordHeader.size)
        let (type, plaintext) = try reader.open(header: header, fragment: Array(record.dropFirst(RecordHeader.size)))
        #expect(type == .handshake)
        var messages = HandshakeReassembler()
        messages.append(plaintext)
        var types: [HandshakeType] = []
        var serverFinished: [UInt8] = []
        for _ in 0..<4 {
            guard let message = try messages.next() else { break }
            types.append(message.type)
            if message.type == .finished {
                try schedule.verifyFinished(message.body, trafficSecret: secrets.server, transcriptHash: transcript.current(crypto))
                serverFinished = message.body
            }
            transcript.append(message.raw)
        }
        #expect(types == [.encryptedExtensions, .certificate, .certificateVerify, .finished])
        #expect(serverFinished.count == 32)
        #expect(messages.isEmpty)

        // And the client's Finished is the RFC's.
        let clientVerifyData = schedule.finishedVerifyData(trafficSecret: secrets.client, transcriptHash: transcript.current(crypto))
        #expect(clientVerifyData == Array(RFC8448.hrrClientFinished.dropFirst(4)))
    }
}

@Suite struct CryptoFixedKeyProviderTests {
    @Test func handsOutTheRFCKeysThenFreshOnes() throws {
        let provider = FixedKeyCryptoProvider.rfc8448Client()
        #expect(try provider.makeKeyExchange(.x25519).publicKey == RFC8448.clientX25519PublicKey)
        let second = try provider.makeKeyExchange(.x25519).publicKey
        #expect(second != RFC8448.clientX25519PublicKey && second.count == 32)
        let server = FixedKeyCryptoProvider.rfc8448Server()
        #expect(try server.makeKeyExchange(.x25519).publicKey == RFC8448.serverX25519PublicKey)
    }
}
