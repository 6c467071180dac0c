// The TLS 1.2 key schedule (RFC 5246 §5, §6.3, §7.4.9; RFC 7627 §4) and
// record protection (RFC 5246 §6.2.3.3, RFC 5288 §3, RFC 7905 §2).
//
// Oracles, none computed by the code under test:
// - the PRF: the TLS working group's P_SHA256 / P_SHA384 "test label"
//   vectors (IETF TLS list, msg03416; also in GnuTLS's tests);
// - extended master secret, verify_data and key blocks: OpenSSL 3.0's
//   `openssl kdf … TLS1-PRF` with the label prepended to the seed;
// - records: Python `cryptography` AESGCM / ChaCha20Poly1305 over the keys of
//   those key blocks, nonce and additional data laid out per the RFCs.

import MirageTLS
import MirageTLSCrypto
import Testing

enum TLS12Vectors {
    static let hex = RFC8448.hex
    /// master_secret 0x30…0x5F, client_random 0xC1 × 32, server_random 0x5E × 32.
    static let masterSecret: [UInt8] = Array(0x30...0x5F)
    static let clientRandom = [UInt8](repeating: 0xC1, count: 32)
    static let serverRandom = [UInt8](repeating: 0x5E, count: 32)
    /// pre_master_secret 0x00…0x1F; session hash SHA-256("handshake") / SHA-384("handshake").
    static let preMasterSecret: [UInt8] = Array(0x00...0x1F)
    static let sessionHashSHA256 = hex("dfff30d188055f20aaa1610f29102805528465bbad91709ded764e8899f5ad2b")
    /// A Finished message: header and 12 bytes of verify_data 1…12.
    static let finishedPlaintext: [UInt8] = [20, 0, 0, 12] + Array(1...12)

    /// openssl kdf -keylen 48 -kdfopt digest:SHA256 -kdfopt hexsecret:<pms> -kdfopt hexseed:"extended master secret"+<hash> TLS1-PRF
    static let extendedMasterSecretSHA256 = hex("""
        7F4D93C007B440C188B5D4CDEE6B98EAE475BD534404FB92A96B2ACB49FCF61EFE152919E234C0390AFB077711313FED
        """)
    /// The same with SHA-384 and SHA-384("handshake").
    static let extendedMasterSecretSHA384 = hex("""
        699E874040220964400FC1D53F121C154EEEEAE699E526610371FB6E28408DFBFF6B6145C8275CDB9A662B0D12B4C9E6
        """)
    /// verify_data with "client finished" / "server finished" over sessionHashSHA256.
    static let clientVerifyData = hex("B33408F858633424C1DF5BB5")
    static let serverVerifyData = hex("27686D94925667FD5FFFA2C3")

    /// AES-128-GCM (0xC02F): the client's Finished, sequence 0.
    static let aes128ClientFinishedRecord = hex("""
        16030300280000000000000000444ae4b6dd4e6abb340f4d450989340221d882f04ff702eec0ad31bd242e5abc
        """)
    /// AES-128-GCM: the server's application data "ping", sequence 1.
    static let aes128ServerPingRecord = hex("170303001c00000000000000019045ed11380695375ce7d3c562de582f589a4e7f")
    /// AES-256-GCM-SHA384 (0xC030): the server's alert [1, 0], sequence 0.
    static let aes256ServerAlertRecord = hex("150303001a0000000000000000a307602b698016affe0d9366b66415f7791b")
    /// ChaCha20-Poly1305 (0xCCA8): the client's Finished, sequence 0.
    static let chachaClientFinishedRecord = hex("""
        160303002090d802fd721b650e967be05e80fbe92cd2c5811cea3b33d72baed5df960608b5
        """)
    /// ChaCha20-Poly1305: the server's "ping", sequence 1.
    static let chachaServerPingRecord = hex("1703030014cb154c4a7869f550d6505ae3e9b6a33a3f3ceac5")
}

@Suite("Wire12: TLS 1.2 key schedule")
struct Wire12KeyScheduleTests {
    let crypto = SwiftCryptoProvider()
    let hex = RFC8448.hex

    @Test("the PRF reproduces the published P_SHA256 vector (100 bytes)")
    func prfSHA256() {
        let out = TLS12KeySchedule.prf(crypto, .sha256, secret: hex("9bbe436ba940f017b17652849a71db35"), label: "test label",
                                       seed: hex("a0ba9f936cda311827a6f796ffd5198c"), length: 100)
        #expect(out == hex("""
            e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af
            0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701
            87347b66
            """))
    }

    @Test("the PRF reproduces the published P_SHA384 vector (148 bytes)")
    func prfSHA384() {
        let out = TLS12KeySchedule.prf(crypto, .sha384, secret: hex("b80b733d6ceefcdc71566ea48e5567df"), label: "test label",
                                       seed: hex("cd665cf6a8447dd6ff8b27555edb7465"), length: 148)
        #expect(out == hex("""
            7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cde9ca0faa60be9fe34f82b1233c9146a0
            e534cb400fed2700884f9dc236f80edd8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d918425
            9b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee691c8f3a26854308d5eaa3be85e099070
            3d73e56f
            """))
    }

    @Test("a shorter PRF output is a prefix of a longer one, at every length around the hash blocks",
          arguments: [HashAlgorithm.sha256, .sha384])
    func prfPrefix(_ hash: HashAlgorithm) {
        let long = TLS12KeySchedule.prf(crypto, hash, secret: [1, 2, 3], label: "l", seed: [4], length: 200)
        #expect(long.count == 200)
        for length in [0, 1, 11, 12, 31, 32, 33, 47, 48, 49, 96, 97, 199] {
            #expect(TLS12KeySchedule.prf(crypto, hash, secret: [1, 2, 3], label: "l", seed: [4], length: length)
                    == Array(long.prefix(length)), "length \(length)")
        }
        // The label is part of the seed: another label, another stream.
        #expect(TLS12KeySchedule.prf(crypto, hash, secret: [1, 2, 3], label: "m", seed: [4], length: 32) != Array(long.prefix(32)))
    }

    @Test("the extended master secret is PRF(pre_master_secret, \"extended master secret\", session_hash)[0..47]")
    func extendedMasterSecret() {
        let ems = TLS12KeySchedule.extendedMasterSecret(crypto, .sha256, preMasterSecret: TLS12Vectors.preMasterSecret,
                                                        sessionHash: TLS12Vectors.sessionHashSHA256)
        #expect(ems == TLS12Vectors.extendedMasterSecretSHA256)
        // By construction (RFC 7627 §4): the PRF with the label and the session hash as the seed.
        #expect(ems == TLS12KeySchedule.prf(crypto, .sha256, secret: TLS12Vectors.preMasterSecret, label: "extended master secret",
                                            seed: TLS12Vectors.sessionHashSHA256, length: 48))
        let sessionHash384 = crypto.hash(.sha384, Array("handshake".utf8))
        #expect(TLS12KeySchedule.extendedMasterSecret(crypto, .sha384, preMasterSecret: TLS12Vectors.preMasterSecret,
                                                      sessionHash: sessionHash384) == TLS12Vectors.extendedMasterSecretSHA384)
        // Another transcript, another master secret (the point of RFC 7627).
        var other = TLS12Vectors.sessionHashSHA256
        other[0] ^= 1
        #expect(TLS12KeySchedule.extendedMasterSecret(crypto, .sha256, preMasterSecret: TLS12Vectors.preMasterSecret,
                                                      sessionHash: other) != ems)
        #expect(TLS12KeySchedule.masterSecretLength == 48)
    }

    @Test("verify_data is 12 bytes of PRF(master, \"client finished\" / \"server finished\", hash)")
    func finished() {
        let client = TLS12KeySchedule.finishedVerifyData(crypto, .sha256, masterSecret: TLS12Vectors.masterSecret, isClient: true,
                                                         handshakeHash: TLS12Vectors.sessionHashSHA256)
        let server = TLS12KeySchedule.finishedVerifyData(crypto, .sha256, masterSecret: TLS12Vectors.masterSecret, isClient: false,
                                                         handshakeHash: TLS12Vectors.sessionHashSHA256)
        #expect(client == TLS12Vectors.clientVerifyData)
        #expect(server == TLS12Vectors.serverVerifyData)
        #expect(TLS12KeySchedule.finishedVerifyData(crypto, .sha384, masterSecret: TLS12Vectors.masterSecret, isClient: true,
                                                    handshakeHash: crypto.hash(.sha384, [])).count == 12)
    }

    @Test("the fixed IV is GCM's 4-byte salt or ChaCha20's 12-byte IV")
    func fixedIVLengths() {
        #expect(TLS12KeySchedule.fixedIVLength(.aes128GCM) == 4)
        #expect(TLS12KeySchedule.fixedIVLength(.aes256GCM) == 4)
        #expect(TLS12KeySchedule.fixedIVLength(.chacha20Poly1305) == 12)
    }

    @Test("the key block is cut client key, server key, client IV, server IV: the records match the oracle's")
    func keyBlock() throws {
        let cases: [(CipherSuite, [UInt8], [UInt8])] = [
            (.ecdheRSAWithAES128GCMSHA256, TLS12Vectors.aes128ClientFinishedRecord, TLS12Vectors.aes128ServerPingRecord),
            (.ecdheRSAWithChaCha20Poly1305SHA256, TLS12Vectors.chachaClientFinishedRecord, TLS12Vectors.chachaServerPingRecord),
        ]
        for (suite, clientRecord, serverRecord) in cases {
            var (client, server) = TLS12KeySchedule.recordProtections(
                crypto, suite: suite, masterSecret: TLS12Vectors.masterSecret,
                clientRandom: TLS12Vectors.clientRandom, serverRandom: TLS12Vectors.serverRandom)
            #expect(client.isTLS12 && server.isTLS12)
            #expect(try client.seal(contentType: .handshake, plaintext: TLS12Vectors.finishedPlaintext) == clientRecord, "\(suite)")
            let emptyRecord = try server.seal(contentType: .applicationData, plaintext: [])
            #expect(try server.seal(contentType: .applicationData, plaintext: Array("ping".utf8)) == serverRecord, "\(suite)")
            #expect(client.sequenceNumber == 1 && server.sequenceNumber == 2)

            // The peer's readers, from the same key block, open them.
            var (clientReader, serverReader) = TLS12KeySchedule.recordProtections(
                crypto, suite: suite, masterSecret: TLS12Vectors.masterSecret,
                clientRandom: TLS12Vectors.clientRandom, serverRandom: TLS12Vectors.serverRandom)
            let (h1, f1) = wire12Split(clientRecord)
            let (type1, plaintext1) = try clientReader.open(header: h1, fragment: f1)
            #expect(type1 == .handshake && plaintext1 == TLS12Vectors.finishedPlaintext)
            // The server's record of sequence 1 does not open at sequence 0, and
            // a failed open does not advance the sequence number.
            let (h2, f2) = wire12Split(serverRecord)
            #expect(throws: TLSError.badRecordMAC) { _ = try serverReader.open(header: h2, fragment: f2) }
            #expect(serverReader.sequenceNumber == 0)
            let (h0, f0) = wire12Split(emptyRecord)
            let (type0, plaintext0) = try serverReader.open(header: h0, fragment: f0)
            #expect(type0 == .applicationData && plaintext0.isEmpty)
            let (type2, plaintext2) = try serverReader.open(header: h2, fragment: f2)
            #expect(type2 == .applicationData && plaintext2 == Array("ping".utf8))
            // Client and server keys differ: the client's record does not open as the server's.
            var wrongDirection = TLS12KeySchedule.recordProtections(
                crypto, suite: suite, masterSecret: TLS12Vectors.masterSecret,
                clientRandom: TLS12Vectors.clientRandom, serverRandom: TLS12Vectors.serverRandom).server
            #expect(throws: TLSError.badRecordMAC) { _ = try wrongDirection.open(header: h1, fragment: f1) }
        }
        // AES-256-GCM with SHA-384: 32-byte keys from a SHA-384 key block.
        var server = TLS12KeySchedule.recordProtections(
            crypto, suite: .ecdheECDSAWithAES256GCMSHA384, masterSecret: TLS12Vectors.masterSecret,
            clientRandom: TLS12Vectors.clientRandom, serverRandom: TLS12Vectors.serverRandom).server
        #expect(try server.seal(contentType: .alert, plaintext: [1, 0]) == TLS12Vectors.aes256ServerAlertRecord)
    }
}

/// Splits a whole record into its header and fragment.
func wire12Split(_ record: [UInt8]) -> (RecordHeader, [UInt8]) {
    let length = Int(record[3]) << 8 | Int(record[4])
    let header = RecordHeader(contentType: ContentType(rawValue: record[0]),
                              legacyVersion: ProtocolVersion(rawValue: UInt16(record[1]) << 8 | UInt16(record[2])), length: length)
    return (header, Array(record.dropFirst(RecordHeader.size)))
}
