import MirageDevices
@testable import MirageTLS
import MirageTLSCrypto
import Testing

// RFC 8448 §4 ("Resumed 0-RTT Handshake"), resuming §3's session with the
// ticket §3's NewSessionTicket carries. We do not do 0-RTT: these tests check
// the resumption PSK, the PSK key schedule, the binder and the handshake
// secrets, not early data.
extension RFC8448 {
    /// §4 ClientHello (512 octets) up to, not including, its binders: the
    /// 477 octets the binder is computed over ("ClientHello prefix").
    static let resumedClientHelloPrefix = hex("""
        01 00 01 fc 03 03 1b c3 ce b6 bb e3 9c ff 93 83 55 b5 a5 0a db 6d b2 1b 7a 6a f6 49 d7 b4 bc 41
        9d 78 76 48 7d 95 00 00 06 13 01 13 03 13 02 01 00 01 cd 00 00 00 0b 00 09 00 00 06 73 65 72 76
        65 72 ff 01 00 01 00 00 0a 00 14 00 12 00 1d 00 17 00 18 00 19 01 00 01 01 01 02 01 03 01 04 00
        33 00 26 00 24 00 1d 00 20 e4 ff b6 8a c0 5f 8d 96 c9 9d a2 66 98 34 6c 6b e1 64 82 ba dd da fe
        05 1a 66 b4 f1 8d 66 8f 0b 00 2a 00 00 00 2b 00 03 02 03 04 00 0d 00 20 00 1e 04 03 05 03 06 03
        02 03 08 04 08 05 08 06 04 01 05 01 06 01 02 01 04 02 05 02 06 02 02 02 00 2d 00 02 01 01 00 1c
        00 02 40 01 00 15 00 57 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        29 00 dd 00 b8 00 b2 2c 03 5d 82 93 59 ee 5f f7 af 4e c9 00 00 00 00 26 2a 64 94 dc 48 6d 2c 8a
        34 cb 33 fa 90 bf 1b 00 70 ad 3c 49 88 83 c9 36 7c 09 a2 be 78 5a bc 55 cd 22 60 97 a3 a9 82 11
        72 83 f8 2a 03 a1 43 ef d3 ff 5d d3 6d 64 e8 61 be 7f d6 1d 28 27 db 27 9c ce 14 50 77 d4 54 a3
        66 4d 4e 6d a4 d2 9e e0 37 25 a6 a4 da fc d0 fc 67 d2 ae a7 05 29 51 3e 3d a2 67 7f a5 90 6c 5b
        3f 7d 8f 92 f2 28 bd a4 0d da 72 14 70 f9 fb f2 97 b5 ae a6 17 64 6f ac 5c 03 27 2e 97 07 27 c6
        21 a7 91 41 ef 5f 7d e6 50 5e 5b fb c3 88 e9 33 43 69 40 93 93 4a e4 d3 57 fa d6 aa cb
        """)
    /// §4 binders field: one 32-byte binder ("calculate PSK binder", finished value).
    static let resumedBinders = hex("00 21 20 3a dd 4f b2 d8 fd f8 22 a0 ca 3c f7 67 8e f5 e8 8d ae 99 01 41 c5 92 4d 57 bb 6f a3 1b 9e 5f 9d")
    /// §4 ServerHello (96 octets): pre_shared_key selecting identity 0, x25519 share.
    static let resumedServerHello = hex("""
        02 00 00 5c 03 03 3c cf d2 de c8 90 22 27 63 47 2a e8 13 67 77 c9 d7 35 87 77 bb 66 e9 1e a5 12
        24 95 f5 59 ea 2d 00 13 01 00 00 34 00 29 00 02 00 00 00 33 00 24 00 1d 00 20 12 17 61 ee 42 c3
        33 e1 b9 e7 7b 60 dd 57 c2 05 3c d9 45 12 ab 47 f1 15 e8 6e ff 50 94 2c ea 31 00 2b 00 02 03 04
        """)
    /// §4 EncryptedExtensions (44 octets, with early_data).
    static let resumedEncryptedExtensions = hex("""
        08 00 00 28 00 26 00 0a 00 14 00 12 00 1d 00 17 00 18 00 19 01 00 01 01 01 02 01 03 01 04 00 1c
        00 02 40 01 00 00 00 00 00 2a 00 00
        """)
    /// §4 server Finished.
    static let resumedServerFinished = hex("14 00 00 20 48 d3 e0 e1 b3 d9 07 c6 ac ff 14 5e 16 09 03 88 c7 7b 05 c0 50 b6 34 ab 1a 88 bb d0 dd 1a 34 b2")

    /// "generate resumption secret "tls13 resumption"" (§3): the PSK of the ticket.
    static let resumptionPSK = hex("4e cd 0e b6 ec 3b 4d 87 f5 d6 02 8f 92 2c a4 c5 85 1a 27 7f d4 13 11 c9 e6 2d 2c 94 92 e1 c4 f3")
    /// §4 extract secret "early" from the PSK.
    static let resumedEarlySecret = hex("9b 21 88 e9 b2 fc 6d 64 d7 1d c3 29 90 0e 20 bb 41 91 50 00 f6 78 aa 83 9c bb 79 7c b7 d8 33 2c")
    /// §4 binder hash: Transcript-Hash(ClientHello prefix).
    static let resumedBinderHash = hex("63 22 4b 2e 45 73 f2 d3 45 4c a8 4b 9d 00 9a 04 f6 be 9e 05 71 1a 83 96 47 3a ef a0 1e 92 4a 14")
    /// §4 derive secret "tls13 res binder" (the binder key).
    static let resumedBinderKey = hex("69 fe 13 1a 3b ba d5 d6 3c 64 ee bc c3 0e 39 5b 9d 81 07 72 6a 13 d0 74 e3 89 db c8 a4 e4 72 56")
    /// §4 the PSK binder.
    static let resumedBinder = hex("3a dd 4f b2 d8 fd f8 22 a0 ca 3c f7 67 8e f5 e8 8d ae 99 01 41 c5 92 4d 57 bb 6f a3 1b 9e 5f 9d")
    /// §4 (EC)DHE shared secret.
    static let resumedSharedSecret = hex("f4 41 94 75 6f f9 ec 9d 25 18 06 35 d6 6e a6 82 4c 6a b3 bf 17 99 77 be 37 f7 23 57 0e 7c cb 2e")
    /// §4 extract secret "handshake".
    static let resumedHandshakeSecret = hex("00 5c b1 12 fd 8e b4 cc c6 23 bb 88 a0 7c 64 b3 ed e1 60 53 63 fc 7d 0d f8 c7 ce 4f f0 fb 4a e6")
    /// §4 derive secret "tls13 c hs traffic".
    static let resumedClientHandshakeTrafficSecret = hex("2f aa c0 8f 85 1d 35 fe a3 60 4f cb 4d e8 2d c6 2c 9b 16 4a 70 97 4d 04 62 e2 7f 1a b2 78 70 0f")
    /// §4 derive secret "tls13 s hs traffic".
    static let resumedServerHandshakeTrafficSecret = hex("fe 92 7a e2 71 31 2e 8b f0 27 5b 58 1c 54 ee f0 20 45 0d c4 ec ff aa 05 a1 a3 5d 27 51 8e 78 03")
    /// §4 extract secret "master".
    static let resumedMasterSecret = hex("e2 d3 2d 4e d6 6d d3 78 97 a0 e8 0c 84 10 75 03 ce 58 bf 8a ad 4c b5 5a 50 02 d7 7e cb 89 0e ce")
    /// §4 derive secret "tls13 c ap traffic".
    static let resumedClientApplicationTrafficSecret = hex("2a bb f2 b8 e3 81 d2 3d be be 1d d2 a7 d1 6a 8b f4 84 cb 49 50 d2 3f b7 fb 7f a8 54 70 62 d9 a1")
    /// §4 derive secret "tls13 s ap traffic".
    static let resumedServerApplicationTrafficSecret = hex("cc 21 f1 bf 8f eb 7d d5 fa 50 5b d9 c4 b4 68 a9 98 4d 55 4a 99 3d c4 9e 6d 28 55 98 fb 67 26 91")
}

@Suite("Resumption: RFC 8448 §4 PSK key schedule and binder")
struct ResumptionRFC8448Tests {
    let crypto = SwiftCryptoProvider()

    @Test("the ticket's PSK is HKDF-Expand-Label(resumption_master_secret, \"resumption\", ticket_nonce) (§3)")
    func resumptionPSK() throws {
        let ticket = try NewSessionTicket(parsing: Array(RFC8448.newSessionTicket.dropFirst(4)))
        #expect(ticket.nonce == [0, 0])
        let psk = KeySchedule.resumptionPSK(crypto, .sha256, resumptionMasterSecret: RFC8448.resumptionMasterSecret,
                                            ticketNonce: ticket.nonce)
        #expect(psk == RFC8448.resumptionPSK)
    }

    @Test("early secret, binder key and binder from the PSK over the ClientHello prefix (§4)")
    func binder() {
        let schedule = KeySchedule(suite: .aes128GCMSHA256, crypto: crypto, psk: RFC8448.resumptionPSK)
        #expect(schedule.earlySecret == RFC8448.resumedEarlySecret)
        #expect(schedule.binderKey == RFC8448.resumedBinderKey)
        #expect(RFC8448.resumedClientHelloPrefix.count == 477)
        let binderHash = crypto.hash(.sha256, RFC8448.resumedClientHelloPrefix)
        #expect(binderHash == RFC8448.resumedBinderHash)
        #expect(schedule.binder(transcriptHash: binderHash) == RFC8448.resumedBinder)
    }

    @Test("the §4 ClientHello parses: pre_shared_key last, the §3 ticket, its binder; the truncation is the prefix")
    func clientHelloOffer() throws {
        let raw = RFC8448.resumedClientHelloPrefix + RFC8448.resumedBinders
        #expect(raw.count == 512)
        let hello = try ClientHello(parsing: Array(raw.dropFirst(4)))
        #expect(hello.extensions.last?.type == .preSharedKey)
        let offered = try #require(try hello.extensions.parse(.preSharedKey, as: OfferedPSKs.self))
        let ticket = try NewSessionTicket(parsing: Array(RFC8448.newSessionTicket.dropFirst(4)))
        #expect(offered.identities == [PSKIdentity(identity: ticket.ticket, obfuscatedTicketAge: 0xfad6_aacb)])
        #expect(offered.binders == [RFC8448.resumedBinder])
        #expect(offered.encode() == hello.extensions.last?.data)
        #expect(ClientHello.truncatedForBinders(raw, bindersLength: offered.bindersLength) == RFC8448.resumedClientHelloPrefix)
        // The ticket's age the client claims: obfuscated age minus ticket_age_add.
        #expect(offered.identities[0].obfuscatedTicketAge &- ticket.ageAdd == 6)
        let modes = try #require(try hello.extensions.parse(.pskKeyExchangeModes, as: PSKKeyExchangeModes.self))
        #expect(modes.modes == [PSKKeyExchangeModes.pskDHEKE])
    }

    @Test("the §4 ServerHello selects identity 0; handshake and application secrets follow from the PSK")
    func handshakeSecrets() throws {
        let serverHello = try ServerHello(parsing: Array(RFC8448.resumedServerHello.dropFirst(4)))
        let selected = try #require(try serverHello.extensions.parse(.preSharedKey, as: PreSharedKeyServerHello.self))
        #expect(selected.selectedIdentity == 0)
        let clientHello = RFC8448.resumedClientHelloPrefix + RFC8448.resumedBinders
        var schedule = KeySchedule(suite: .aes128GCMSHA256, crypto: crypto, psk: RFC8448.resumptionPSK)
        let helloHash = crypto.hash(.sha256, clientHello + RFC8448.resumedServerHello)
        let handshake = schedule.deriveHandshakeSecrets(sharedSecret: RFC8448.resumedSharedSecret, transcriptHash: helloHash)
        #expect(schedule.handshakeSecret == RFC8448.resumedHandshakeSecret)
        #expect(handshake.client == RFC8448.resumedClientHandshakeTrafficSecret)
        #expect(handshake.server == RFC8448.resumedServerHandshakeTrafficSecret)
        // §4's server flight has no Certificate/CertificateVerify: EncryptedExtensions then Finished.
        let beforeFinished = clientHello + RFC8448.resumedServerHello + RFC8448.resumedEncryptedExtensions
        let finished = schedule.finishedVerifyData(trafficSecret: handshake.server, transcriptHash: crypto.hash(.sha256, beforeFinished))
        #expect(finished == Array(RFC8448.resumedServerFinished.dropFirst(4)))
        let application = schedule.deriveApplicationSecrets(
            transcriptHash: crypto.hash(.sha256, beforeFinished + RFC8448.resumedServerFinished))
        #expect(schedule.masterSecret == RFC8448.resumedMasterSecret)
        #expect(application.client == RFC8448.resumedClientApplicationTrafficSecret)
        #expect(application.server == RFC8448.resumedServerApplicationTrafficSecret)
    }

    @Test("a server holding the §3 PSK verifies the §4 binder and rejects one flipped bit")
    func serverBinderCheck() throws {
        let raw = RFC8448.resumedClientHelloPrefix + RFC8448.resumedBinders
        let offered = try #require(try ClientHello(parsing: Array(raw.dropFirst(4))).extensions.parse(.preSharedKey, as: OfferedPSKs.self))
        let schedule = KeySchedule(suite: .aes128GCMSHA256, crypto: crypto, psk: RFC8448.resumptionPSK)
        let partial = try #require(ClientHello.truncatedForBinders(raw, bindersLength: offered.bindersLength))
        let expected = schedule.binder(transcriptHash: crypto.hash(.sha256, partial))
        #expect(constantTimeEqual(expected, offered.binders[0]))
        var flipped = offered.binders[0]
        flipped[31] ^= 0x01
        #expect(!constantTimeEqual(expected, flipped))
    }
}
