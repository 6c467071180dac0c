import MirageTLS
import Testing

/// The body of a handshake message (after its 4-byte header).
func wireBody(_ message: [UInt8]) -> [UInt8] { Array(message.dropFirst(4)) }

/// Parses `message` (header included) as `M` and encodes it back.
func wireRoundTrip<M: HandshakeMessage>(_ type: M.Type, _ message: [UInt8]) throws(TLSError) -> (M, [UInt8]) {
    let parsed = try M(parsing: wireBody(message))
    return (parsed, parsed.encode())
}

/// One RFC 8448 message and the codec for it.
struct WireTraceMessage: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    let recode: @Sendable ([UInt8]) throws(TLSError) -> [UInt8]
    var testDescription: String { name }

    init<M: HandshakeMessage>(_ name: String, _ bytes: [UInt8], _ type: M.Type) {
        self.name = name
        self.bytes = bytes
        self.recode = { (b: [UInt8]) throws(TLSError) -> [UInt8] in try M(parsing: b).encode() }
    }

    static let all: [WireTraceMessage] = [
        .init("§3 ClientHello", RFC8448.clientHello, ClientHello.self),
        .init("§3 ServerHello", RFC8448.serverHello, ServerHello.self),
        .init("§3 EncryptedExtensions", RFC8448.encryptedExtensions, EncryptedExtensions.self),
        .init("§3 Certificate", RFC8448.certificate, CertificateMessage.self),
        .init("§3 CertificateVerify", RFC8448.certificateVerify, CertificateVerify.self),
        .init("§3 server Finished", RFC8448.serverFinished, Finished.self),
        .init("§3 client Finished", RFC8448.clientFinished, Finished.self),
        .init("§3 NewSessionTicket", RFC8448.newSessionTicket, NewSessionTicket.self),
        .init("§5 ClientHello 1", RFC8448.hrrClientHello1, ClientHello.self),
        .init("§5 HelloRetryRequest", RFC8448.helloRetryRequest, ServerHello.self),
        .init("§5 ClientHello 2", RFC8448.hrrClientHello2, ClientHello.self),
        .init("§5 ServerHello", RFC8448.hrrServerHello, ServerHello.self),
    ]
}

@Suite("Wire: RFC 8448 handshake messages")
struct WireMessageTests {
    @Test("each RFC 8448 message parses and re-encodes byte for byte", arguments: WireTraceMessage.all)
    func reencode(message: WireTraceMessage) throws {
        let header = Array(message.bytes.prefix(4))
        let length = Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
        #expect(length + 4 == message.bytes.count, "fixture length disagrees with its header")
        let body = wireBody(message.bytes)
        let encoded = try message.recode(body)
        #expect(encoded == message.bytes)
    }

    @Test("every proper prefix of an RFC 8448 body is a decode error (or a hello cut before its extensions)",
          arguments: WireTraceMessage.all.filter { !$0.name.contains("Finished") })
    func truncations(message: WireTraceMessage) {
        let full = wireBody(message.bytes)
        var accepted: [Int] = []
        for cut in 0..<full.count {
            do {
                _ = try message.recode(Array(full.prefix(cut)))
                accepted.append(cut)
            } catch {
                #expect(error.alert == .decodeError, "cut at \(cut): \(error)")
            }
        }
        // Only a hello may stop before its extension block (a pre-1.3 peer):
        // ClientHello after the compression methods, ServerHello after its method.
        if message.name.contains("Hello") {
            #expect(accepted.count == 1, "accepted cuts \(accepted)")
        } else {
            #expect(accepted.isEmpty, "accepted cuts \(accepted)")
        }
    }

    @Test("§3 ClientHello: fields and typed extensions")
    func clientHello() throws {
        let (hello, _) = try wireRoundTrip(ClientHello.self, RFC8448.clientHello)
        #expect(hello.legacyVersion == .tls12)
        #expect(hello.random.prefix(4) == [0xcb, 0x34, 0xec, 0xb1])
        #expect(hello.legacySessionID.isEmpty)
        #expect(hello.cipherSuites == [.aes128GCMSHA256, .chacha20Poly1305SHA256, .aes256GCMSHA384])
        #expect(hello.legacyCompressionMethods == [0])
        #expect(hello.extensions.map(\.type.rawValue) == [0, 0xff01, 10, 35, 51, 43, 13, 45, 28])

        let sni = try #require(hello.extensions.first(.serverName))
        #expect(try ServerNameList(parsing: sni.data).hostName == "server")
        let groups = try #require(hello.extensions.first(.supportedGroups))
        let groupList = try SupportedGroupsList(parsing: groups.data)
        #expect(groupList.groups.prefix(3) == [.x25519, .secp256r1, .secp384r1])
        #expect(groupList.groups.count == 9)
        let share = try KeyShareClientHello(parsing: try #require(hello.extensions.first(.keyShare)).data)
        #expect(share.shares.count == 1)
        #expect(share.shares.first?.group == .x25519)
        #expect(share.shares.first?.keyExchange.count == 32)
        let versions = try SupportedVersionsClient(parsing: try #require(hello.extensions.first(.supportedVersions)).data)
        #expect(versions.versions == [.tls13])
        let schemes = try SignatureSchemeList(parsing: try #require(hello.extensions.first(.signatureAlgorithms)).data)
        #expect(schemes.schemes.count == 15)
        #expect(schemes.schemes.prefix(3) == [.ecdsaSecp256r1SHA256, .ecdsaSecp384r1SHA384, SignatureScheme(rawValue: 0x0603)])
        let modes = try PSKKeyExchangeModes(parsing: try #require(hello.extensions.first(.pskKeyExchangeModes)).data)
        #expect(modes.modes == [PSKKeyExchangeModes.pskDHEKE])
        #expect(hello.extensions.first(.alpn) == nil)
    }

    @Test("§3 ServerHello: a plain ServerHello with an x25519 share")
    func serverHello() throws {
        let (hello, _) = try wireRoundTrip(ServerHello.self, RFC8448.serverHello)
        #expect(!hello.isHelloRetryRequest)
        #expect(hello.cipherSuite == .aes128GCMSHA256)
        #expect(hello.legacyCompressionMethod == 0)
        let share = try KeyShareServerHello(parsing: try #require(hello.extensions.first(.keyShare)).data)
        #expect(share.share.group == .x25519)
        #expect(share.share.keyExchange.prefix(2) == [0xc9, 0x82])
        let version = try SupportedVersionsServer(parsing: try #require(hello.extensions.first(.supportedVersions)).data)
        #expect(version.selected == .tls13)
    }

    @Test("§5 HelloRetryRequest: detected by its random, asks for secp256r1, carries a cookie")
    func helloRetryRequest() throws {
        let (hrr, _) = try wireRoundTrip(ServerHello.self, RFC8448.helloRetryRequest)
        #expect(hrr.isHelloRetryRequest)
        #expect(hrr.random == ServerHello.helloRetryRequestRandom)
        #expect(hrr.cipherSuite == .aes128GCMSHA256)
        let share = try KeyShareHelloRetryRequest(parsing: try #require(hrr.extensions.first(.keyShare)).data)
        #expect(share.selectedGroup == .secp256r1)
        let cookie = try Cookie(parsing: try #require(hrr.extensions.first(.cookie)).data)
        #expect(cookie.cookie.count == 0x72)
        // The second ClientHello echoes the cookie and sends a P-256 share.
        let (second, _) = try wireRoundTrip(ClientHello.self, RFC8448.hrrClientHello2)
        #expect(try Cookie(parsing: try #require(second.extensions.first(.cookie)).data) == cookie)
        let shares = try KeyShareClientHello(parsing: try #require(second.extensions.first(.keyShare)).data)
        #expect(shares.shares.map(\.group) == [.secp256r1])
        #expect(shares.shares.first?.keyExchange.count == 65)
        #expect(second.extensions.last?.type == .padding)
        let (after, _) = try wireRoundTrip(ServerHello.self, RFC8448.hrrServerHello)
        #expect(!after.isHelloRetryRequest)
        #expect(try KeyShareServerHello(parsing: try #require(after.extensions.first(.keyShare)).data).share.group == .secp256r1)
    }

    @Test("§3 EncryptedExtensions: supported_groups, record_size_limit, the empty server_name acknowledgement")
    func encryptedExtensions() throws {
        let (ee, _) = try wireRoundTrip(EncryptedExtensions.self, RFC8448.encryptedExtensions)
        #expect(ee.extensions.map(\.type) == [.supportedGroups, .recordSizeLimit, .serverName])
        let sni = try #require(ee.extensions.first(.serverName))
        #expect(sni.data.isEmpty)
        let ack = try ServerNameList(parsing: sni.data)
        #expect(ack.hostName == nil)
        #expect(ack.encode().isEmpty)
    }

    @Test("§3 Certificate: one 432-byte RSA certificate, empty context, no entry extensions")
    func certificate() throws {
        let (message, _) = try wireRoundTrip(CertificateMessage.self, RFC8448.certificate)
        #expect(message.context.isEmpty)
        #expect(message.entries.count == 1)
        #expect(message.entries.first?.data.count == 432)
        #expect(message.entries.first?.data.prefix(4) == [0x30, 0x82, 0x01, 0xac])
        #expect(message.entries.first?.extensions == [])
    }

    @Test("§3 CertificateVerify, Finished, NewSessionTicket: fields")
    func laterMessages() throws {
        let (verify, _) = try wireRoundTrip(CertificateVerify.self, RFC8448.certificateVerify)
        #expect(verify.scheme == .rsaPSSRSAESHA256)
        #expect(verify.signature.count == 128)
        let (finished, _) = try wireRoundTrip(Finished.self, RFC8448.serverFinished)
        #expect(finished.verifyData.count == 32)
        #expect(finished.verifyData.prefix(2) == [0x9b, 0x9b])
        let (ticket, _) = try wireRoundTrip(NewSessionTicket.self, RFC8448.newSessionTicket)
        #expect(ticket.lifetime == 30)
        #expect(ticket.ageAdd == 0xfad6_aac5)
        #expect(ticket.nonce == [0, 0])
        #expect(ticket.ticket.count == 0xb2)
        #expect(ticket.extensions == [Extension(type: .earlyData, data: [0, 0, 4, 0])])
    }

    @Test("KeyUpdate: 0 and 1 round-trip")
    func keyUpdate() throws {
        #expect(KeyUpdate(requestUpdate: true).encode() == [24, 0, 0, 1, 1])
        #expect(KeyUpdate(requestUpdate: false).encode() == [24, 0, 0, 1, 0])
        #expect(try KeyUpdate(parsing: [1]).requestUpdate)
        #expect(try !KeyUpdate(parsing: [0]).requestUpdate)
    }

    @Test("messages built from fields encode to what parses back equal")
    func builtMessages() throws {
        let hello = ClientHello(random: Array(repeating: 7, count: 32), legacySessionID: Array(repeating: 1, count: 32),
                                cipherSuites: CipherSuite.tls13, extensions: [
                                    Extension(type: .serverName, data: ServerNameList(hostName: "example.com").encode()),
                                    Extension(type: .alpn, data: ProtocolNameList(protocols: [Array("h2".utf8), Array("http/1.1".utf8)]).encode()),
                                    Extension(type: .supportedVersions, data: SupportedVersionsClient(versions: [.tls13]).encode()),
                                ])
        let encoded = hello.encode()
        #expect(encoded[0] == 1)
        let parsed = try ClientHello(parsing: wireBody(encoded))
        #expect(parsed == hello)
        let alpn = try ProtocolNameList(parsing: try #require(parsed.extensions.first(.alpn)).data)
        #expect(alpn.protocols == [Array("h2".utf8), Array("http/1.1".utf8)])
        #expect(try ServerNameList(parsing: try #require(parsed.extensions.first(.serverName)).data).hostName == "example.com")

        let request = CertificateRequest(context: [], extensions: [
            Extension(type: .signatureAlgorithms, data: SignatureSchemeList(schemes: SignatureScheme.tls13).encode()),
        ])
        #expect(try CertificateRequest(parsing: request.encodeBody()) == request)
        let chain = CertificateMessage(context: [9], entries: [CertificateEntry(data: [1, 2, 3]), CertificateEntry(data: [4], extensions: [Extension(type: .statusRequest, data: [5])])])
        #expect(try CertificateMessage(parsing: chain.encodeBody()) == chain)
        #expect(try CertificateMessage(parsing: CertificateMessage(context: [], entries: []).encodeBody()).entries.isEmpty)
    }
}
