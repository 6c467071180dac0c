// Two real TLS 1.2 handshakes between OpenSSL's s_client and s_server
// (Vectors/TLS12OpenSSL.swift) taken apart with the TLS 1.2 API: every
// message parses and re-encodes to the peer's bytes, the ServerKeyExchange
// signature verifies against the certificate (rsa_pkcs1_sha256 and
// ecdsa_secp256r1_sha256), and from the key log's master secret our key
// block opens OpenSSL's protected records (AES-128-GCM with its explicit
// nonce, ChaCha20-Poly1305) and our PRF computes both Finished messages.

import MirageTLS
import MirageTLSCrypto
import Testing

/// One side of a recorded connection: the handshake messages sent in the
/// clear and the protected records after its ChangeCipherSpec.
struct Wire12Flight {
    var messages: [(type: HandshakeType, body: [UInt8], raw: [UInt8])] = []
    var protected: [(header: RecordHeader, fragment: [UInt8])] = []

    init(_ bytes: [UInt8]) throws {
        var records = RecordReassembler()
        records.append(bytes.span)
        var handshake = HandshakeReassembler()
        var changedCipherSpec = false
        while let (header, fragment) = try records.next() {
            if changedCipherSpec {
                protected.append((header, fragment))
            } else if header.contentType == .changeCipherSpec {
                #expect(fragment == [1])
                changedCipherSpec = true
            } else {
                #expect(header.contentType == .handshake)
                handshake.append(fragment)
                while let message = try handshake.next() { messages.append(message) }
            }
        }
        #expect(records.bufferedCount == 0 && handshake.isEmpty)
    }

    /// The raw bytes of the message of `type` (the first one).
    func raw(_ type: HandshakeType) -> [UInt8] { messages.first { $0.type == type }?.raw ?? [] }
}

/// A recorded connection and what it must show.
struct Wire12Capture: Sendable, CustomTestStringConvertible {
    let name: String
    let clientBytes: [UInt8]
    let serverBytes: [UInt8]
    let masterSecret: [UInt8]
    let suite: CipherSuite
    let scheme: SignatureScheme
    var testDescription: String { name }

    static let all: [Wire12Capture] = [
        Wire12Capture(name: "ECDHE-RSA-AES128-GCM-SHA256", clientBytes: TLS12OpenSSL.rsaClientBytes,
                      serverBytes: TLS12OpenSSL.rsaServerBytes, masterSecret: TLS12OpenSSL.rsaMasterSecret,
                      suite: .ecdheRSAWithAES128GCMSHA256, scheme: .rsaPKCS1SHA256),
        Wire12Capture(name: "ECDHE-ECDSA-CHACHA20-POLY1305", clientBytes: TLS12OpenSSL.ecdsaClientBytes,
                      serverBytes: TLS12OpenSSL.ecdsaServerBytes, masterSecret: TLS12OpenSSL.ecdsaMasterSecret,
                      suite: .ecdheECDSAWithChaCha20Poly1305SHA256, scheme: .ecdsaSecp256r1SHA256),
    ]
}

@Suite("Wire12: OpenSSL TLS 1.2 handshakes")
struct Wire12OpenSSLTests {
    let crypto = SwiftCryptoProvider()

    @Test("every handshake message parses as its TLS 1.2 type and re-encodes to OpenSSL's bytes", arguments: Wire12Capture.all)
    func messages(_ capture: Wire12Capture) throws {
        let client = try Wire12Flight(capture.clientBytes)
        let server = try Wire12Flight(capture.serverBytes)
        #expect(client.messages.map(\.type) == [.clientHello, .clientKeyExchange])
        #expect(server.messages.map(\.type) == [.serverHello, .certificate, .serverKeyExchange, .serverHelloDone, .newSessionTicket])

        let hello = try ServerHello(parsing: server.messages[0].body)
        #expect(hello.cipherSuite == capture.suite && hello.legacyVersion == .tls12)
        // RFC 7627 and RFC 5746: extended_master_secret empty, renegotiation_info empty.
        #expect(hello.extensions.first(.extendedMasterSecret)?.data == [])
        #expect(try hello.extensions.parse(.renegotiationInfo, as: RenegotiationInfo.self) == RenegotiationInfo())
        if let formats = try hello.extensions.parse(.ecPointFormats, as: ECPointFormatList.self) {
            #expect(formats.formats.contains(ECPointFormatList.uncompressed))
        }

        let certificate = try CertificateMessage12(parsing: server.messages[1].body)
        #expect(certificate.chain.count == 1)
        #expect(certificate.encode() == server.messages[1].raw)

        let keyExchange = try ServerKeyExchangeECDHE(parsing: server.messages[2].body)
        #expect(keyExchange.group == .x25519 && keyExchange.publicKey.count == 32 && keyExchange.scheme == capture.scheme)
        #expect(keyExchange.encode() == server.messages[2].raw)

        #expect(try ServerHelloDone(parsing: server.messages[3].body).encode() == server.messages[3].raw)
        let ticket = try NewSessionTicket12(parsing: server.messages[4].body)
        #expect(!ticket.ticket.isEmpty && ticket.lifetimeHint > 0)
        #expect(ticket.encode() == server.messages[4].raw)

        let clientKeyExchange = try ClientKeyExchangeECDHE(parsing: client.messages[1].body)
        #expect(clientKeyExchange.publicKey.count == 32)
        #expect(clientKeyExchange.encode() == client.messages[1].raw)
    }

    @Test("the ServerKeyExchange signature verifies over client_random + server_random + params", arguments: Wire12Capture.all)
    func serverKeyExchangeSignature(_ capture: Wire12Capture) throws {
        let client = try Wire12Flight(capture.clientBytes)
        let server = try Wire12Flight(capture.serverBytes)
        let clientRandom = try ClientHello(parsing: client.messages[0].body).random
        let serverRandom = try ServerHello(parsing: server.messages[0].body).random
        let certificate = try CertificateMessage12(parsing: server.messages[1].body).chain[0]
        let keyExchange = try ServerKeyExchangeECDHE(parsing: server.messages[2].body)
        let content = ServerKeyExchangeECDHE.signedContent(clientRandom: clientRandom, serverRandom: serverRandom,
                                                           params: keyExchange.params)
        try crypto.verify(signature: keyExchange.signature, scheme: keyExchange.scheme, message: content, certificate: certificate)
        // The randoms in the other order do not verify.
        let swapped = ServerKeyExchangeECDHE.signedContent(clientRandom: serverRandom, serverRandom: clientRandom,
                                                           params: keyExchange.params)
        expectCryptoAlert(.decryptError) { () throws(TLSError) in
            try crypto.verify(signature: keyExchange.signature, scheme: keyExchange.scheme, message: swapped, certificate: certificate)
        }
    }

    @Test("our key block opens OpenSSL's records and our PRF computes both Finished", arguments: Wire12Capture.all)
    func recordsAndFinished(_ capture: Wire12Capture) throws {
        let client = try Wire12Flight(capture.clientBytes)
        let server = try Wire12Flight(capture.serverBytes)
        let clientRandom = try ClientHello(parsing: client.messages[0].body).random
        let serverRandom = try ServerHello(parsing: server.messages[0].body).random
        let hash = try #require(capture.suite.hash)
        var (clientReader, serverReader) = TLS12KeySchedule.recordProtections(
            crypto, suite: capture.suite, masterSecret: capture.masterSecret, clientRandom: clientRandom, serverRandom: serverRandom)

        // Client: Finished, then close_notify.
        #expect(client.protected.count == 2)
        let (finishedType, clientFinished) = try clientReader.open(header: client.protected[0].header, fragment: client.protected[0].fragment)
        #expect(finishedType == .handshake)
        #expect(clientFinished.count == 4 + 12 && clientFinished.first == HandshakeType.finished.rawValue)
        let clientTranscript = client.raw(.clientHello) + server.raw(.serverHello) + server.raw(.certificate) + server.raw(.serverKeyExchange)
            + server.raw(.serverHelloDone) + client.raw(.clientKeyExchange)
        let clientVerifyData = TLS12KeySchedule.finishedVerifyData(crypto, hash, masterSecret: capture.masterSecret, isClient: true,
                                                                   handshakeHash: crypto.hash(hash, clientTranscript))
        #expect(try Finished(parsing: Array(clientFinished.dropFirst(4))).verifyData == clientVerifyData)
        let (alertType, alert) = try clientReader.open(header: client.protected[1].header, fragment: client.protected[1].fragment)
        #expect(alertType == .alert && alert == Alert(level: .warning, description: .closeNotify).bytes)

        // Server: its Finished covers the client's Finished and the NewSessionTicket (RFC 5077 §3.3).
        #expect(server.protected.count == 2)
        let (serverType, serverFinished) = try serverReader.open(header: server.protected[0].header, fragment: server.protected[0].fragment)
        #expect(serverType == .handshake)
        let serverTranscript = clientTranscript + clientFinished + server.raw(.newSessionTicket)
        let serverVerifyData = TLS12KeySchedule.finishedVerifyData(crypto, hash, masterSecret: capture.masterSecret, isClient: false,
                                                                   handshakeHash: crypto.hash(hash, serverTranscript))
        #expect(serverFinished == Finished(verifyData: serverVerifyData).encode())
        let (serverAlertType, serverAlert) = try serverReader.open(header: server.protected[1].header, fragment: server.protected[1].fragment)
        #expect(serverAlertType == .alert && serverAlert == [1, 0])

        // Sealing the same plaintext at the same sequence number: with ChaCha20 (implicit
        // nonce) OpenSSL's record exactly; with AES-GCM the same but for the explicit nonce,
        // which OpenSSL starts at a random value (RFC 5288 §3 lets the sender choose) and which
        // opened above as it came.
        var clientWriter = TLS12KeySchedule.recordProtections(
            crypto, suite: capture.suite, masterSecret: capture.masterSecret, clientRandom: clientRandom, serverRandom: serverRandom).client
        let resealed = try clientWriter.seal(contentType: .handshake, plaintext: clientFinished)
        let recorded = client.protected[0].header.encode() + client.protected[0].fragment
        if capture.suite.aead == .chacha20Poly1305 {
            #expect(resealed == recorded)
        } else {
            #expect(resealed.count == recorded.count && Array(resealed.prefix(5)) == Array(recorded.prefix(5)))
            #expect(Array(resealed[5..<13]) == [0, 0, 0, 0, 0, 0, 0, 0])
            #expect(Array(recorded[5..<13]) != [0, 0, 0, 0, 0, 0, 0, 0])
        }
    }
}
