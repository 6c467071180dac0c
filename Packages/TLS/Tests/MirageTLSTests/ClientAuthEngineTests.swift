import Foundation
import MirageDevices
@testable import MirageTLS
import MirageTLSCrypto
import Testing

/// Client leaves of each key type (EKU serverAuth+clientAuth), from the
/// engine tests' CA but distinct from the server's leaves, so a test can
/// tell which chain went where. Built once (RSA key generation is slow).
enum ClientAuthCredentials {
    nonisolated(unsafe) static let leaves: [TestCredentials.KeyType: CertifiedKey] = {
        var leaves: [TestCredentials.KeyType: CertifiedKey] = [:]
        for type in TestCredentials.KeyType.allCases {
            leaves[type] = try! TestCredentials.makeLeaf(type, authority: TestCredentials.shared.authority, names: ["client.test"])
        }
        return leaves
    }()

    static func leaf(_ type: TestCredentials.KeyType) -> CertifiedKey { leaves[type]! }

    /// The scheme a client with this key signs its CertificateVerify with
    /// when the server accepts every TLS 1.3 scheme: the key's first.
    static func scheme(_ type: TestCredentials.KeyType) -> SignatureScheme {
        switch type {
        case .ed25519: return .ed25519
        case .p256: return .ecdsaSecp256r1SHA256
        case .rsa2048: return .rsaPSSRSAESHA256
        }
    }
}

/// A signing key that only claims schemes (for the chooser; never signs).
final class SchemesOnlyKey: SigningKey {
    let signatureSchemes: [SignatureScheme]
    init(_ schemes: [SignatureScheme]) { signatureSchemes = schemes }
    func sign(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> [UInt8] {
        throw .internalError("not a real key")
    }
}

@Suite("Client certificates (TLS 1.3): engines back to back")
struct ClientAuthEngineTests {
    typealias Tamper = ([UInt8]) -> [UInt8]

    /// A pair whose server asks for client certificates (`mode`) and whose
    /// client holds `clientKeys`. The client does not verify the server here
    /// unless `clientVerifies`, so every verification request is the server's.
    static func pair(_ mode: ClientAuthentication, clientKeys: [TestCredentials.KeyType],
                     serverSchemes: [SignatureScheme] = SignatureScheme.tls13, clientVerifies: Bool = false) -> ConnectionPair {
        var client = TLSClientConfiguration(serverName: "localhost")
        client.cipherSuites = [.aes128GCMSHA256]
        client.certificates = clientKeys.map(ClientAuthCredentials.leaf)
        client.verifiesCertificates = clientVerifies
        var server = TLSServerConfiguration(certificates: [TestCredentials.leaf(.p256)])
        server.clientAuthentication = mode
        server.signatureSchemes = serverSchemes
        return ConnectionPair(client: client, server: server)
    }

    static func on(_ type: HandshakeType, _ rewrite: @escaping ([UInt8]) throws -> [UInt8]) -> Tamper {
        return { message in
            guard message.first == type.rawValue else { return message }
            return (try? rewrite(message)) ?? message
        }
    }

    static func body(_ message: [UInt8]) -> [UInt8] { Array(message.dropFirst(4)) }

    static func alertOf(_ error: TLSError?) -> AlertDescription? { error?.alert }

    @Test("required + a client certificate of each key type: both complete, the server has the chain and the scheme",
          arguments: TestCredentials.KeyType.allCases)
    func requiredWithCertificate(key: TestCredentials.KeyType) throws {
        let pair = Self.pair(.required, clientKeys: [key], clientVerifies: true)
        pair.run()
        #expect(ConnectionPair.completed(pair.clientEvents))
        #expect(ConnectionPair.completed(pair.serverEvents))
        let chain = ClientAuthCredentials.leaf(key).chain
        #expect(pair.server.negotiated?.peerCertificates == chain)
        #expect(pair.server.negotiated?.peerSignatureScheme == ClientAuthCredentials.scheme(key))
        // The client's own view of the server is unchanged.
        #expect(pair.client.negotiated?.peerCertificates == TestCredentials.leaf(.p256).chain)
        #expect(pair.client.negotiated?.peerSignatureScheme == .ecdsaSecp256r1SHA256)
        // One request per side: the client's for the server, the server's for the client.
        #expect(pair.verificationRequests == [
            CertificateVerificationRequest(chain: TestCredentials.leaf(.p256).chain, serverName: "localhost", peerIsServer: true),
            CertificateVerificationRequest(chain: chain, serverName: nil, peerIsServer: false),
        ])
        let request = Array("authenticated".utf8)
        try pair.send(request, from: pair.client)
        #expect(ConnectionPair.data(pair.serverEvents) == request)
        try pair.send([9, 8, 7], from: pair.server)
        #expect(ConnectionPair.data(pair.clientEvents) == [9, 8, 7])
    }

    @Test("the server's CertificateRequest: empty context, signature_algorithms = its TLS 1.3 schemes, right after EncryptedExtensions")
    func certificateRequestContents() throws {
        let pair = Self.pair(.optional, clientKeys: [], serverSchemes: [.ed25519, .ecdsaSecp256r1SHA256, .rsaPKCS1SHA256])
        var sent: [HandshakeType] = []
        var request: CertificateRequest?
        pair.server.tamperWithOutgoingHandshake = { message in
            if let type = message.first { sent.append(HandshakeType(rawValue: type)) }
            if message.first == HandshakeType.certificateRequest.rawValue {
                request = try? CertificateRequest(parsing: Self.body(message))
            }
            return message
        }
        pair.run()
        #expect(sent == [.serverHello, .encryptedExtensions, .certificateRequest, .certificate, .certificateVerify, .finished])
        let got = try #require(request)
        #expect(got.context.isEmpty)
        let schemes = try SignatureSchemeList(parsing: try #require(got.extensions.first(.signatureAlgorithms)).data).schemes
        // rsa_pkcs1 is not a TLS 1.3 CertificateVerify scheme (§4.2.3): left out.
        #expect(schemes == [.ed25519, .ecdsaSecp256r1SHA256])
        #expect(got.extensions.count == 1)
    }

    @Test("clientAuthentication .none sends no CertificateRequest (and a client with certificates sends none)")
    func noneSendsNoRequest() {
        let pair = Self.pair(.none, clientKeys: [.p256])
        var sent: [UInt8] = []
        pair.server.tamperWithOutgoingHandshake = { message in sent.append(message.first ?? 0); return message }
        var clientSent: [UInt8] = []
        pair.client.tamperWithOutgoingHandshake = { message in clientSent.append(message.first ?? 0); return message }
        pair.run()
        #expect(ConnectionPair.completed(pair.serverEvents))
        #expect(!sent.contains(HandshakeType.certificateRequest.rawValue))
        #expect(clientSent == [HandshakeType.clientHello.rawValue, HandshakeType.finished.rawValue])
        #expect(pair.server.negotiated?.peerCertificates == [])
    }

    @Test("optional + no client certificate: both complete, no peer certificates, no verification on the server")
    func optionalWithout() throws {
        let pair = Self.pair(.optional, clientKeys: [])
        var clientSent: [UInt8] = []
        pair.client.tamperWithOutgoingHandshake = { message in clientSent.append(message.first ?? 0); return message }
        pair.run()
        #expect(ConnectionPair.completed(pair.clientEvents))
        #expect(ConnectionPair.completed(pair.serverEvents))
        #expect(pair.server.negotiated?.peerCertificates == [])
        #expect(pair.server.negotiated?.peerSignatureScheme == nil)
        #expect(pair.verificationRequests.isEmpty)
        // An empty Certificate and no CertificateVerify (§4.4.3).
        #expect(clientSent == [HandshakeType.clientHello.rawValue, HandshakeType.certificate.rawValue, HandshakeType.finished.rawValue])
        try pair.send([1, 2, 3], from: pair.client)
        #expect(ConnectionPair.data(pair.serverEvents) == [1, 2, 3])
    }

    @Test("optional + a client certificate: the server still verifies it and records it")
    func optionalWith() {
        let pair = Self.pair(.optional, clientKeys: [.ed25519])
        pair.run()
        #expect(ConnectionPair.completed(pair.serverEvents))
        #expect(pair.server.negotiated?.peerCertificates == ClientAuthCredentials.leaf(.ed25519).chain)
        #expect(pair.server.negotiated?.peerSignatureScheme == .ed25519)
        #expect(pair.verificationRequests.map { $0.peerIsServer } == [false])
    }

    @Test("required + no client certificate: certificate_required on the server, and the client gets the alert")
    func requiredWithout() {
        let pair = Self.pair(.required, clientKeys: [])
        pair.run()
        #expect(ConnectionPair.failure(pair.serverEvents) == .certificateRequired)
        #expect(!ConnectionPair.completed(pair.serverEvents))
        // The client finished its side before the server judged it (TLS 1.3), then hears why.
        #expect(ConnectionPair.failure(pair.clientEvents) == .alertReceived(.certificateRequired))
        #expect(pair.client.isEnded && pair.server.isEnded)
    }

    @Test("a client whose keys fit none of the requested schemes sends an empty Certificate",
          arguments: [(ClientAuthentication.optional, nil as TLSError?), (.required, .certificateRequired)])
    func noFittingKey(mode: ClientAuthentication, serverError: TLSError?) {
        // The server takes only Ed25519; the client has P-256 and RSA keys.
        let pair = Self.pair(mode, clientKeys: [.p256, .rsa2048], serverSchemes: [.ed25519, .ecdsaSecp256r1SHA256])
        // The server signs with P-256 itself, so restrict what it requests, not what it signs with.
        pair.server.tamperWithOutgoingHandshake = Self.on(.certificateRequest) { _ in
            CertificateRequest(context: [], extensions: [
                Extension(type: .signatureAlgorithms, data: SignatureSchemeList(schemes: [.ed25519]).encode()),
            ]).encode()
        }
        pair.run()
        #expect(ConnectionPair.failure(pair.serverEvents) == serverError)
        #expect(ConnectionPair.completed(pair.serverEvents) == (serverError == nil))
        #expect(pair.server.negotiated?.peerCertificates == [])
    }

    @Test("the client sends the first certificate whose key fits the request")
    func firstFittingCertificate() {
        let pair = Self.pair(.required, clientKeys: [.p256, .ed25519, .rsa2048])
        pair.server.tamperWithOutgoingHandshake = Self.on(.certificateRequest) { _ in
            CertificateRequest(context: [], extensions: [
                Extension(type: .signatureAlgorithms, data: SignatureSchemeList(schemes: [.rsaPSSRSAESHA384, .ed25519]).encode()),
            ]).encode()
        }
        pair.run()
        #expect(ConnectionPair.completed(pair.serverEvents))
        // P-256 does not fit; Ed25519 is the first that does (the request's order does not matter).
        #expect(pair.server.negotiated?.peerCertificates == ClientAuthCredentials.leaf(.ed25519).chain)
        #expect(pair.server.negotiated?.peerSignatureScheme == .ed25519)
    }

    @Test("the chooser: request ∩ TLS 1.3 schemes in the key's order; PKCS#1 v1.5 alone does not fit")
    func chooser() {
        let rsa = CertifiedKey(chain: [[1]], key: SchemesOnlyKey([.rsaPKCS1SHA256, .rsaPSSRSAESHA384, .rsaPSSRSAESHA256]))
        let ed = CertifiedKey(chain: [[2]], key: SchemesOnlyKey([.ed25519]))
        let noChain = CertifiedKey(chain: [], key: SchemesOnlyKey([.ed25519]))
        #expect(TLSConnection.chooseClientCertificate([rsa, ed], requested: [.rsaPKCS1SHA256]) == nil)
        let picked = TLSConnection.chooseClientCertificate([rsa, ed], requested: [.rsaPSSRSAESHA256, .rsaPSSRSAESHA384, .rsaPKCS1SHA256])
        #expect(picked?.0 === rsa && picked?.1 == .rsaPSSRSAESHA384)
        let second = TLSConnection.chooseClientCertificate([rsa, ed], requested: [.ed25519])
        #expect(second?.0 === ed && second?.1 == .ed25519)
        #expect(TLSConnection.chooseClientCertificate([noChain], requested: [.ed25519]) == nil)
        #expect(TLSConnection.chooseClientCertificate([], requested: SignatureScheme.tls13) == nil)
    }

    @Test("a bad client signature: decrypt_error", arguments: TestCredentials.KeyType.allCases)
    func badSignature(key: TestCredentials.KeyType) {
        let pair = Self.pair(.required, clientKeys: [key])
        pair.client.tamperWithOutgoingHandshake = Self.on(.certificateVerify) { message throws in
            var verify = try CertificateVerify(parsing: Self.body(message))
            verify.signature[verify.signature.count / 2] ^= 0x01
            return verify.encode()
        }
        pair.run()
        #expect(Self.alertOf(ConnectionPair.failure(pair.serverEvents)) == .decryptError)
        #expect(ConnectionPair.failure(pair.clientEvents) == .alertReceived(.decryptError))
        #expect(!ConnectionPair.completed(pair.serverEvents))
    }

    @Test("a client signature over the server's context string does not verify: decrypt_error")
    func wrongContextString() throws {
        // The client's CertificateVerify replaced by one signed with the server context string.
        let pair = Self.pair(.required, clientKeys: [.ed25519])
        let client = pair.client
        defer { client.tamperWithOutgoingHandshake = nil }  // the hook holds the client
        client.tamperWithOutgoingHandshake = { message in
            guard message.first == HandshakeType.certificateVerify.rawValue,
                  let hash = try? client.transcriptHash(),
                  let signature = try? ClientAuthCredentials.leaf(.ed25519).key.sign(
                      TLSConnection.signedContent(context: TLSConnection.serverSignatureContext, transcriptHash: hash), scheme: .ed25519)
            else { return message }
            return CertificateVerify(scheme: .ed25519, signature: signature).encode()
        }
        pair.run()
        #expect(Self.alertOf(ConnectionPair.failure(pair.serverEvents)) == .decryptError)
    }

    @Test("a client chain the verifier rejects ends the server with the failure's alert, which the client receives",
          arguments: [
              (CertificateFailure.untrustedRoot(issuer: "CN=Nobody"), AlertDescription.unknownCA),
              (.expired(notAfter: "2025-06-01T00:00:00Z"), .certificateExpired),
              (.missingExtendedKeyUsage("no clientAuth"), .unsupportedCertificate),
              (.malformed("junk"), .badCertificate),
          ])
    func verifierRejects(failure: CertificateFailure, alert: AlertDescription) {
        let pair = Self.pair(.required, clientKeys: [.p256])
        pair.verification = .rejected(failure)
        pair.run()
        #expect(ConnectionPair.failure(pair.serverEvents) == .badCertificate(failure))
        #expect(ConnectionPair.failure(pair.clientEvents) == .alertReceived(alert))
        #expect(!ConnectionPair.completed(pair.serverEvents))
    }

    @Test("a CertificateVerify scheme the server did not request: illegal_parameter",
          arguments: [SignatureScheme.ed25519, .rsaPKCS1SHA256, .rsaPSSRSAESHA256])
    func schemeNotRequested(scheme: SignatureScheme) {
        // The server requests P-256 only (its list also limits its own signing, which is P-256).
        let pair = Self.pair(.required, clientKeys: [.p256], serverSchemes: [.ecdsaSecp256r1SHA256])
        pair.client.tamperWithOutgoingHandshake = Self.on(.certificateVerify) { message throws in
            var verify = try CertificateVerify(parsing: Self.body(message))
            verify.scheme = scheme
            return verify.encode()
        }
        pair.run()
        #expect(Self.alertOf(ConnectionPair.failure(pair.serverEvents)) == .illegalParameter)
        #expect(ConnectionPair.failure(pair.clientEvents) == .alertReceived(.illegalParameter))
    }

    @Test("the client's flight out of order or incomplete: unexpected_message",
          arguments: [HandshakeType.certificate, .certificateVerify])
    func droppedMessage(dropped: HandshakeType) {
        // Dropping Certificate: CertificateVerify arrives where Certificate is due.
        // Dropping CertificateVerify: Finished arrives where CertificateVerify is due.
        let pair = Self.pair(.required, clientKeys: [.p256])
        pair.client.tamperWithOutgoingHandshake = Self.on(dropped) { _ in [] }
        pair.run()
        #expect(Self.alertOf(ConnectionPair.failure(pair.serverEvents)) == .unexpectedMessage)
        #expect(ConnectionPair.failure(pair.clientEvents) == .alertReceived(.unexpectedMessage))
    }

    @Test("a client that ignores the request and sends only Finished: unexpected_message")
    func missingCertificate() {
        let pair = Self.pair(.optional, clientKeys: [])
        pair.client.tamperWithOutgoingHandshake = Self.on(.certificate) { _ in [] }
        pair.run()
        #expect(Self.alertOf(ConnectionPair.failure(pair.serverEvents)) == .unexpectedMessage)
    }

    @Test("a CertificateVerify after an empty Certificate: unexpected_message")
    func verifyAfterEmptyCertificate() {
        let pair = Self.pair(.optional, clientKeys: [.p256])
        pair.client.tamperWithOutgoingHandshake = Self.on(.certificate) { message throws in
            var certificate = try CertificateMessage(parsing: Self.body(message))
            certificate.entries = []
            return certificate.encode()
        }
        pair.run()
        #expect(Self.alertOf(ConnectionPair.failure(pair.serverEvents)) == .unexpectedMessage)
    }

    @Test("a client Certificate with a request context the server never sent: illegal_parameter")
    func certificateWithContext() {
        let pair = Self.pair(.required, clientKeys: [.p256])
        pair.client.tamperWithOutgoingHandshake = Self.on(.certificate) { message throws in
            var certificate = try CertificateMessage(parsing: Self.body(message))
            certificate.context = [7]
            return certificate.encode()
        }
        pair.run()
        #expect(Self.alertOf(ConnectionPair.failure(pair.serverEvents)) == .illegalParameter)
    }

    @Test("a client certificate entry with an extension the request did not offer: unsupported_extension")
    func entryExtension() {
        let pair = Self.pair(.required, clientKeys: [.p256])
        pair.client.tamperWithOutgoingHandshake = Self.on(.certificate) { message throws in
            var certificate = try CertificateMessage(parsing: Self.body(message))
            certificate.entries[0].extensions = [Extension(type: .statusRequest, data: [])]
            return certificate.encode()
        }
        pair.run()
        #expect(ConnectionPair.failure(pair.serverEvents) == .unsupportedExtension(.statusRequest))
    }

    @Test("a client Finished computed without its Certificate and CertificateVerify does not verify: decrypt_error")
    func finishedMustCoverClientMessages() {
        // The client's Finished is replaced by the value over the transcript
        // through the server Finished only (what the server used to precompute).
        let pair = Self.pair(.required, clientKeys: [.p256])
        var early: [UInt8]?
        let client = pair.client
        defer { client.tamperWithOutgoingHandshake = nil }  // the hook holds the client
        client.tamperWithOutgoingHandshake = { message in
            if message.first == HandshakeType.certificate.rawValue, let schedule = client.schedule,
               let hash = try? client.transcriptHash() {
                early = schedule.finishedVerifyData(trafficSecret: client.clientHandshakeSecret, transcriptHash: hash)
            }
            if message.first == HandshakeType.finished.rawValue, let early { return Finished(verifyData: early).encode() }
            return message
        }
        pair.run()
        #expect(Self.alertOf(ConnectionPair.failure(pair.serverEvents)) == .decryptError)
    }

    @Test("the server waits for its verifier; the client's records arriving meanwhile are held, then processed in order",
          arguments: [1, 7, Int.max])
    func serverWaitsForVerification(chunk: Int) throws {
        let pair = Self.pair(.required, clientKeys: [.rsa2048])
        pair.client.start()
        pair.deliver(pair.client.takeOutput(), to: pair.server, chunk: chunk)
        pair.deliver(pair.server.takeOutput(), to: pair.client, chunk: chunk)
        pair.drain(pair.client, into: &pair.clientEvents)
        #expect(ConnectionPair.completed(pair.clientEvents), "the client is done once its Finished is out")
        // The client's application data goes out right behind its flight.
        let early = Array("sent before the server trusts me".utf8)
        try pair.client.write(early.span)
        pair.deliver(pair.client.takeOutput(), to: pair.server, chunk: chunk)

        // The server holds everything after the Certificate until the verifier answers.
        var events: [TLSEvent] = []
        while let event = pair.server.nextEvent() { events.append(event) }
        #expect(events == [.verifyCertificates(CertificateVerificationRequest(
            chain: ClientAuthCredentials.leaf(.rsa2048).chain, serverName: nil, peerIsServer: false))])
        #expect(!pair.server.isHandshakeComplete && !pair.server.hasOutput)
        // More bytes while waiting: still held.
        try pair.client.write([1, 2, 3].span)
        pair.deliver(pair.client.takeOutput(), to: pair.server, chunk: chunk)
        #expect(pair.server.nextEvent() == nil)
        #expect(pair.server.negotiated?.peerSignatureScheme == nil, "CertificateVerify not processed yet")

        pair.server.certificateVerificationCompleted(.trusted)
        events = []
        while let event = pair.server.nextEvent() { events.append(event) }
        #expect(events == [.handshakeCompleted, .applicationData(early), .applicationData([1, 2, 3])])
        #expect(pair.server.negotiated?.peerSignatureScheme == .rsaPSSRSAESHA256)
        #expect(pair.server.negotiated?.peerCertificates == ClientAuthCredentials.leaf(.rsa2048).chain)
    }

    @Test("while the server waits, buffered bytes are bounded (limitExceeded → internal_error)")
    func bufferedWhileWaitingIsBounded() throws {
        let pair = Self.pair(.required, clientKeys: [.p256])
        pair.client.start()
        pair.deliver(pair.client.takeOutput(), to: pair.server, chunk: .max)
        pair.deliver(pair.server.takeOutput(), to: pair.client, chunk: .max)
        pair.drain(pair.client, into: &pair.clientEvents)
        pair.deliver(pair.client.takeOutput(), to: pair.server, chunk: .max)
        #expect(pair.server.nextEvent().map { if case .verifyCertificates = $0 { true } else { false } } == true)
        let flood = [UInt8](repeating: 0x55, count: TLSLimits().maximumBufferedWhileVerifying + 1_000)
        try pair.client.write(flood.span)
        pair.deliver(pair.client.takeOutput(), to: pair.server, chunk: .max)
        guard case .limitExceeded? = ConnectionPair.failure(Array(sequence(state: pair.server) { $0.nextEvent() })) else {
            Issue.record("expected limitExceeded")
            return
        }
        #expect(pair.server.isEnded)
    }

    @Test("the schemes a server requests: its configured ones that TLS 1.3 allows in CertificateVerify")
    func requestedSchemes() {
        var server = TLSServerConfiguration(certificates: [TestCredentials.leaf(.p256)])
        server.clientAuthentication = .optional
        let connection = TLSConnection(server: server, crypto: SwiftCryptoProvider(), entropy: SeededEntropy(seed: 3))
        #expect(connection.clientCertificateSchemes(server) == SignatureScheme.tls13)
        server.signatureSchemes = [.rsaPKCS1SHA256, .rsaPSSRSAESHA384, .ecdsaSecp384r1SHA384]
        #expect(connection.clientCertificateSchemes(server) == [.rsaPSSRSAESHA384])
        server.signatureSchemes = [.rsaPKCS1SHA256]
        #expect(connection.clientCertificateSchemes(server).isEmpty)
    }

    @Test("the tls-engine fuzz harness reaches client authentication: its seeds complete (or fail) as the mode says",
          arguments: [("client-auth-optional", 2), ("client-auth-required", 2), ("client-auth-required-none", 1)])
    func fuzzSeeds(name: String, completions: Int) throws {
        // First byte: bit 1 optional, bit 2 required, bit 3 no client certificate;
        // then the operations of handshake-and-data. `decoded` counts completions.
        let file = WireCorpusReplayTests.corpus.appendingPathComponent("tls-engine").appendingPathComponent(name)
        let bytes = try [UInt8](Data(contentsOf: file))
        let report = fuzzEngine(bytes.span)
        #expect(report.decoded == completions)
        if completions == 1 {
            #expect(report.error == .alertReceived(.certificateRequired) || report.error == .certificateRequired)
        } else {
            #expect(report.error == nil)
        }
    }
}
