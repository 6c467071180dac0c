import MirageDevices
@testable import MirageTLS
import MirageTLSCrypto
import Testing

/// The known traps (issue #9): a misbehaving peer is played by rewriting one
/// handshake message on its way out (`tamperWithOutgoingHandshake`), or the
/// bytes on the wire; the other side must fail with the right error and alert.
@Suite("Engine: misbehaving peers")
struct EngineTrapTests {
    typealias Tamper = ([UInt8]) -> [UInt8]

    static func pair(suites: [CipherSuite] = [.aes128GCMSHA256], clientGroups: [NamedGroup] = [.x25519],
                     serverGroups: [NamedGroup] = [.x25519, .secp256r1], key: TestCredentials.KeyType = .p256,
                     clientSchemes: [SignatureScheme] = SignatureScheme.tls13) -> ConnectionPair {
        var client = TLSClientConfiguration(serverName: "localhost")
        client.cipherSuites = suites
        client.groups = clientGroups
        client.keyShareGroups = [clientGroups[0]]
        client.signatureSchemes = clientSchemes
        var server = TLSServerConfiguration(certificates: [TestCredentials.leaf(key)])
        server.groups = serverGroups
        return ConnectionPair(client: client, server: server)
    }

    /// Rewrites messages of one handshake type; others pass unchanged.
    static func on(_ type: HandshakeType, _ rewrite: @escaping ([UInt8]) throws -> [UInt8]) -> Tamper {
        return { message in
            guard message.first == type.rawValue else { return message }
            return (try? rewrite(message)) ?? message
        }
    }

    static func body(_ message: [UInt8]) -> [UInt8] { Array(message.dropFirst(4)) }

    static func rewriteClientHello(_ change: @escaping (inout ClientHello) -> Void) -> Tamper {
        on(.clientHello) { message throws in
            var hello = try ClientHello(parsing: body(message))
            change(&hello)
            return hello.encode()
        }
    }

    static func rewriteServerHello(_ change: @escaping (inout ServerHello) -> Void) -> Tamper {
        on(.serverHello) { message throws in
            var hello = try ServerHello(parsing: body(message))
            change(&hello)
            return hello.encode()
        }
    }

    static func expect(_ pair: ConnectionPair, client: TLSError?, server: TLSError?, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(ConnectionPair.failure(pair.clientEvents) == client, sourceLocation: sourceLocation)
        #expect(ConnectionPair.failure(pair.serverEvents) == server, sourceLocation: sourceLocation)
        #expect(!ConnectionPair.completed(pair.clientEvents) || client == nil, sourceLocation: sourceLocation)
    }

    @Test("a ClientHello without key_share: missing_extension")
    func missingKeyShare() {
        let pair = Self.pair()
        pair.client.tamperWithOutgoingHandshake = Self.rewriteClientHello { $0.extensions.removeAll { $0.type == .keyShare } }
        pair.run()
        Self.expect(pair, client: .alertReceived(.missingExtension), server: .missingExtension(.keyShare))
    }

    @Test("a ClientHello without signature_algorithms: missing_extension")
    func missingSignatureAlgorithms() {
        let pair = Self.pair()
        pair.client.tamperWithOutgoingHandshake = Self.rewriteClientHello { $0.extensions.removeAll { $0.type == .signatureAlgorithms } }
        pair.run()
        Self.expect(pair, client: .alertReceived(.missingExtension), server: .missingExtension(.signatureAlgorithms))
    }

    @Test("a duplicated extension: illegal_parameter")
    func duplicateExtension() {
        let pair = Self.pair()
        pair.client.tamperWithOutgoingHandshake = Self.rewriteClientHello { hello in
            if let groups = hello.extensions.first(.supportedGroups) { hello.extensions.insert(groups, at: 0) }
        }
        pair.run()
        #expect(ConnectionPair.failure(pair.clientEvents) == .alertReceived(.illegalParameter))
        guard case .illegalParameter = ConnectionPair.failure(pair.serverEvents) else {
            Issue.record("server: \(String(describing: ConnectionPair.failure(pair.serverEvents)))")
            return
        }
    }

    @Test("a key share for a group supported_groups does not offer: illegal_parameter")
    func shareForGroupNotOffered() {
        let pair = Self.pair()
        pair.client.tamperWithOutgoingHandshake = Self.rewriteClientHello { hello in
            hello.extensions.removeAll { $0.type == .supportedGroups }
            hello.extensions.append(Extension(type: .supportedGroups, data: SupportedGroupsList(groups: [.secp256r1]).encode()))
        }
        pair.run()
        #expect(ConnectionPair.failure(pair.clientEvents) == .alertReceived(.illegalParameter))
        guard case .illegalParameter = ConnectionPair.failure(pair.serverEvents) else {
            Issue.record("server: \(String(describing: ConnectionPair.failure(pair.serverEvents)))")
            return
        }
    }

    @Test("a ServerHello key share for a group the client sent no share for: illegal_parameter")
    func mismatchedKeyShare() throws {
        let pair = Self.pair(clientGroups: [.x25519, .secp256r1])
        let otherKey = try SwiftCryptoProvider().makeKeyExchange(.secp256r1).publicKey
        pair.server.tamperWithOutgoingHandshake = Self.rewriteServerHello { hello in
            hello.extensions.removeAll { $0.type == .keyShare }
            hello.extensions.append(Extension(type: .keyShare, data: KeyShareServerHello(
                share: KeyShareEntry(group: .secp256r1, keyExchange: otherKey)).encode()))
        }
        pair.run()
        guard case .illegalParameter = ConnectionPair.failure(pair.clientEvents) else {
            Issue.record("client: \(String(describing: ConnectionPair.failure(pair.clientEvents)))")
            return
        }
        #expect(ConnectionPair.failure(pair.serverEvents) == .alertReceived(.illegalParameter))
    }

    @Test("a cipher suite changed between HelloRetryRequest and ServerHello: illegal_parameter")
    func suiteChangedAfterRetry() {
        let pair = Self.pair(suites: [.aes128GCMSHA256, .chacha20Poly1305SHA256], clientGroups: [.x25519, .secp256r1],
                             serverGroups: [.secp256r1])
        pair.server.tamperWithOutgoingHandshake = Self.rewriteServerHello { hello in
            if !hello.isHelloRetryRequest { hello.cipherSuite = .chacha20Poly1305SHA256 }
        }
        pair.run()
        #expect(ConnectionPair.failure(pair.clientEvents)
                == .illegalParameter("cipher suite changed from TLS_AES_128_GCM_SHA256 after the HelloRetryRequest to TLS_CHACHA20_POLY1305_SHA256"))
        #expect(ConnectionPair.failure(pair.serverEvents) == .alertReceived(.illegalParameter))
    }

    @Test("a ServerHello choosing a suite that was not offered: illegal_parameter")
    func suiteNotOffered() {
        let pair = Self.pair()
        pair.server.tamperWithOutgoingHandshake = Self.rewriteServerHello { $0.cipherSuite = .aes256GCMSHA384 }
        pair.run()
        guard case .illegalParameter = ConnectionPair.failure(pair.clientEvents) else {
            Issue.record("client: \(String(describing: ConnectionPair.failure(pair.clientEvents)))")
            return
        }
    }

    @Test("a truncated certificate: the client rejects the chain as malformed")
    func truncatedCertificate() {
        let pair = Self.pair()
        pair.server.tamperWithOutgoingHandshake = Self.on(.certificate) { message throws in
            var certificate = try CertificateMessage(parsing: Self.body(message))
            certificate.entries[0].data = Array(certificate.entries[0].data.prefix(100))
            return certificate.encode()
        }
        pair.run()
        guard case .badCertificate(.malformed) = ConnectionPair.failure(pair.clientEvents) else {
            Issue.record("client: \(String(describing: ConnectionPair.failure(pair.clientEvents)))")
            return
        }
        #expect(ConnectionPair.failure(pair.serverEvents) == .alertReceived(.badCertificate))
    }

    @Test("a Certificate message whose length lies: decode_error")
    func certificateLengthLies() {
        let pair = Self.pair()
        pair.server.tamperWithOutgoingHandshake = Self.on(.certificate) { message in
            var cut = Array(message.dropLast(10))
            let length = cut.count - 4
            cut[1] = UInt8(length >> 16); cut[2] = UInt8(truncatingIfNeeded: length >> 8); cut[3] = UInt8(truncatingIfNeeded: length)
            return cut
        }
        pair.run()
        guard case .decodeError = ConnectionPair.failure(pair.clientEvents) else {
            Issue.record("client: \(String(describing: ConnectionPair.failure(pair.clientEvents)))")
            return
        }
        #expect(ConnectionPair.failure(pair.serverEvents) == .alertReceived(.decodeError))
    }

    @Test("no signature scheme in common with the server's key: handshake_failure")
    func schemeNotOffered() {
        let pair = Self.pair(key: .ed25519, clientSchemes: [.ecdsaSecp256r1SHA256, .rsaPSSRSAESHA256])
        pair.run()
        Self.expect(pair, client: .alertReceived(.handshakeFailure),
                    server: .handshakeFailure("no signature scheme in common with the certificate's key"))
    }

    @Test("a CertificateVerify in a scheme the client did not offer: illegal_parameter")
    func certificateVerifySchemeNotOffered() {
        let pair = Self.pair(key: .p256, clientSchemes: [.ecdsaSecp256r1SHA256])
        pair.server.tamperWithOutgoingHandshake = Self.on(.certificateVerify) { message throws in
            var verify = try CertificateVerify(parsing: Self.body(message))
            verify.scheme = .ed25519
            return verify.encode()
        }
        pair.run()
        #expect(ConnectionPair.failure(pair.clientEvents) == .illegalParameter("CertificateVerify uses ed25519, which was not offered"))
    }

    @Test("a CertificateVerify signature that does not verify: decrypt_error")
    func badSignature() {
        let pair = Self.pair(key: .ed25519)
        pair.server.tamperWithOutgoingHandshake = Self.on(.certificateVerify) { message throws in
            var verify = try CertificateVerify(parsing: Self.body(message))
            verify.signature[5] ^= 1
            return verify.encode()
        }
        pair.run()
        guard case .decryptError = ConnectionPair.failure(pair.clientEvents) else {
            Issue.record("client: \(String(describing: ConnectionPair.failure(pair.clientEvents)))")
            return
        }
        #expect(ConnectionPair.failure(pair.serverEvents) == .alertReceived(.decryptError))
    }

    @Test("an invalid server Finished: decrypt_error", arguments: [true, false])
    func invalidFinished(serverSide: Bool) {
        let pair = Self.pair()
        let corrupt = Self.on(.finished) { message in
            var changed = message
            changed[changed.count - 1] ^= 0x80
            return changed
        }
        if serverSide { pair.server.tamperWithOutgoingHandshake = corrupt } else { pair.client.tamperWithOutgoingHandshake = corrupt }
        pair.run()
        if serverSide {
            Self.expect(pair, client: .decryptError("the server's Finished does not verify"), server: .alertReceived(.decryptError))
        } else {
            #expect(ConnectionPair.failure(pair.serverEvents) == .decryptError("the client's Finished does not verify"))
            #expect(!ConnectionPair.completed(pair.serverEvents))
        }
    }

    @Test("an unexpected handshake message in place of CertificateVerify: unexpected_message")
    func unexpectedMessage() {
        let pair = Self.pair()
        pair.server.tamperWithOutgoingHandshake = Self.on(.certificateVerify) { _ in
            EncryptedExtensions(extensions: []).encode()
        }
        pair.run()
        guard case .unexpectedMessage = ConnectionPair.failure(pair.clientEvents) else {
            Issue.record("client: \(String(describing: ConnectionPair.failure(pair.clientEvents)))")
            return
        }
        #expect(ConnectionPair.failure(pair.serverEvents) == .alertReceived(.unexpectedMessage))
    }

    @Test("a record that fails to decrypt ends the connection with bad_record_mac")
    func badRecordMAC() throws {
        let pair = Self.pair()
        pair.run()
        try pair.server.write([1, 2, 3].span)
        var record = pair.server.takeOutput()
        record[record.count - 3] ^= 1
        pair.client.receive(record.span)
        pair.drain(pair.client, into: &pair.clientEvents)
        #expect(ConnectionPair.failure(pair.clientEvents) == .badRecordMAC)
        // The alert goes out encrypted; the server decodes it.
        pair.server.receive(pair.client.takeOutput().span)
        pair.drain(pair.server, into: &pair.serverEvents)
        #expect(ConnectionPair.failure(pair.serverEvents) == .alertReceived(.badRecordMAC))
    }

    @Test("a record longer than 2^14 + 256: record_overflow")
    func recordOverflow() {
        let pair = Self.pair()
        pair.server.receive([22, 3, 3, 0x41, 0x01].span)
        pair.drain(pair.server, into: &pair.serverEvents)
        guard case .recordOverflow = ConnectionPair.failure(pair.serverEvents) else {
            Issue.record("server: \(String(describing: ConnectionPair.failure(pair.serverEvents)))")
            return
        }
        #expect(pair.server.takeOutput() == [21, 3, 3, 0, 2, 2, 22])
    }

    @Test("application data before the handshake, and change_cipher_spec after it: unexpected_message")
    func outOfPlaceRecords() throws {
        let early = Self.pair()
        early.server.receive([23, 3, 3, 0, 1, 0x41].span)
        early.drain(early.server, into: &early.serverEvents)
        guard case .unexpectedMessage = ConnectionPair.failure(early.serverEvents) else {
            Issue.record("server: \(String(describing: ConnectionPair.failure(early.serverEvents)))")
            return
        }
        let late = Self.pair()
        late.run()
        late.client.receive([20, 3, 3, 0, 1, 1].span)
        late.drain(late.client, into: &late.clientEvents)
        guard case .unexpectedMessage = ConnectionPair.failure(late.clientEvents) else {
            Issue.record("client: \(String(describing: ConnectionPair.failure(late.clientEvents)))")
            return
        }
    }

    @Test("a ClientHello without TLS 1.3 in supported_versions: protocol_version")
    func noTLS13() {
        var client = TLSClientConfiguration(serverName: "localhost")
        client.cipherSuites = [.aes128GCMSHA256]
        var server = TLSServerConfiguration(certificates: [TestCredentials.leaf(.p256)])
        server.versions = [.tls13]  // a TLS 1.3-only server; TLS 1.2 servers are EngineTLS12Tests'
        let pair = ConnectionPair(client: client, server: server)
        pair.client.tamperWithOutgoingHandshake = Self.rewriteClientHello { hello in
            hello.extensions.removeAll { $0.type == .supportedVersions }
        }
        pair.run()
        Self.expect(pair, client: .alertReceived(.protocolVersion),
                    server: .protocolVersion("the client offers no version we speak (its hello says 0x303)"))
    }

    @Test("a HelloRetryRequest cookie too large to echo fails the client cleanly (illegal_parameter), no trap")
    func hugeCookie() {
        var client = TLSClientConfiguration(serverName: "localhost")
        client.groups = [.x25519, .secp256r1]
        client.keyShareGroups = [.x25519]
        client.limits.maximumHandshakeMessageSize = 200_000
        var server = TLSServerConfiguration(certificates: [TestCredentials.leaf(.p256)])
        server.groups = [.secp256r1]
        let pair = ConnectionPair(client: client, server: server)
        pair.server.tamperWithOutgoingHandshake = Self.rewriteServerHello { hello in
            guard hello.isHelloRetryRequest else { return }
            hello.extensions.append(Extension(type: .cookie, data: Cookie(cookie: [UInt8](repeating: 7, count: 65_500)).encode()))
        }
        pair.run()
        #expect(ConnectionPair.failure(pair.clientEvents) == .illegalParameter("a HelloRetryRequest cookie of 65500 bytes does not fit a ClientHello"))
    }

    @Test("records after close_notify are ignored, even in the same batch (RFC 8446 §6.1)")
    func dataAfterCloseNotify() throws {
        let pair = Self.pair()
        pair.run()
        pair.server.close()
        let closeRecord = pair.server.takeOutput()
        // Play a peer that goes on sending after its close_notify.
        var protection = try #require(pair.server.writeProtection)
        let late = try protection.seal(contentType: .applicationData, plaintext: [1, 2, 3], padding: 0)
        pair.client.receive((closeRecord + late).span)
        pair.drain(pair.client, into: &pair.clientEvents)
        #expect(pair.clientEvents.last == .closeNotify)
        #expect(ConnectionPair.data(pair.clientEvents).isEmpty)
        #expect(ConnectionPair.failure(pair.clientEvents) == nil)
    }

    @Test("several KeyUpdate requests received together get one KeyUpdate back (RFC 8446 §4.6.3)")
    func keyUpdatesCoalesced() throws {
        let pair = Self.pair()
        pair.run()
        for _ in 0..<3 { try pair.client.updateKeys(requestPeerUpdate: true) }
        pair.server.receive(pair.client.takeOutput().span)
        pair.drain(pair.server, into: &pair.serverEvents)
        let answer = pair.server.takeOutput()
        #expect(answer.count == 5 + 5 + 1 + 16, "one KeyUpdate record, not three: \(answer.count) bytes")
        pair.client.receive(answer.span)
        try pair.send([42], from: pair.server)
        try pair.send([43], from: pair.client)
        #expect(ConnectionPair.data(pair.clientEvents) == [42])
        #expect(ConnectionPair.data(pair.serverEvents) == [43])
    }

    @Test("close_notify during the handshake ends it rather than leaving it waiting")
    func closeNotifyDuringHandshake() {
        let pair = Self.pair()
        pair.client.start()
        pair.server.receive(pair.client.takeOutput().span)
        pair.drain(pair.server, into: &pair.serverEvents)
        _ = pair.server.takeOutput()
        pair.server.receive([21, 3, 3, 0, 2, 1, 0].span)
        pair.drain(pair.server, into: &pair.serverEvents)
        #expect(ConnectionPair.failure(pair.serverEvents) == .alertReceived(.closeNotify))
        #expect(pair.server.isEnded)
        #expect(!pair.server.hasOutput, "no alert answers a close_notify")
    }

    @Test("a change_cipher_spec between the fragments of a handshake message: unexpected_message (§5.1)")
    func changeCipherSpecInsideMessage() {
        let pair = Self.pair()
        pair.client.start()
        let record = pair.client.takeOutput()
        let message = Array(record.dropFirst(5))
        let first = [22, 3, 1, 0, 10] + Array(message.prefix(10))
        let rest = Array(message.dropFirst(10))
        let second = [22, 3, 3, UInt8(rest.count >> 8), UInt8(rest.count & 0xFF)] + rest
        pair.server.receive((first + [20, 3, 3, 0, 1, 1] + second).span)
        pair.drain(pair.server, into: &pair.serverEvents)
        guard case .unexpectedMessage = ConnectionPair.failure(pair.serverEvents) else {
            Issue.record("server: \(String(describing: ConnectionPair.failure(pair.serverEvents)))")
            return
        }
    }

    @Test("pre_shared_key without psk_key_exchange_modes: missing_extension (§4.2.9)")
    func pskWithoutModes() {
        let pair = Self.pair()
        pair.client.tamperWithOutgoingHandshake = Self.rewriteClientHello { hello in
            hello.extensions.append(Extension(type: .preSharedKey, data: [0, 7, 0, 1, 9, 0, 0, 0, 0, 0, 33, 32] + [UInt8](repeating: 1, count: 32)))
        }
        pair.run()
        Self.expect(pair, client: .alertReceived(.missingExtension), server: .missingExtension(.pskKeyExchangeModes))
    }

    @Test("an unsolicited extension in EncryptedExtensions: unsupported_extension")
    func unsolicitedEncryptedExtension() {
        let pair = Self.pair()
        pair.server.tamperWithOutgoingHandshake = Self.on(.encryptedExtensions) { _ in
            EncryptedExtensions(extensions: [Extension(type: .alpn, data: ProtocolNameList(protocols: [Array("h2".utf8)]).encode())]).encode()
        }
        pair.run()
        #expect(ConnectionPair.failure(pair.clientEvents) == .unsupportedExtension(.alpn))
        #expect(ConnectionPair.failure(pair.serverEvents) == .alertReceived(.unsupportedExtension))
    }
}
