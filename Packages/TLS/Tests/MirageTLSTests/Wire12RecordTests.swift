// TLS 1.2 record protection (RFC 5246 §6.2.3.3, RFC 5288 §3, RFC 7905 §2):
// round trips for both AEAD kinds, the explicit-nonce layout, what the
// additional data covers, the limits, and records that must fail without
// trapping.

import MirageTLS
import MirageTLSCrypto
import Testing

@Suite("Wire12: TLS 1.2 record protection")
struct Wire12RecordTests {
    let crypto = SwiftCryptoProvider()

    /// A writer and a reader with the same keys for `suite`.
    func pair(_ suite: CipherSuite, sequenceNumber: UInt64 = 0) -> (writer: RecordProtection, reader: RecordProtection) {
        let aead = suite.aead!
        let key = [UInt8](repeating: 0x42, count: aead.keyLength)
        let iv = Array(UInt8(1)...UInt8(TLS12KeySchedule.fixedIVLength(aead)))
        return (RecordProtection(tls12Suite: suite, key: key, iv: iv, crypto: crypto, sequenceNumber: sequenceNumber),
                RecordProtection(tls12Suite: suite, key: key, iv: iv, crypto: crypto, sequenceNumber: sequenceNumber))
    }

    static let gcmSuites: [CipherSuite] = [.ecdheECDSAWithAES128GCMSHA256, .ecdheRSAWithAES128GCMSHA256,
                                           .ecdheECDSAWithAES256GCMSHA384, .ecdheRSAWithAES256GCMSHA384]
    static let chachaSuites: [CipherSuite] = [.ecdheECDSAWithChaCha20Poly1305SHA256, .ecdheRSAWithChaCha20Poly1305SHA256]

    @Test("seal then open gives back type and plaintext; sequence numbers advance together", arguments: CipherSuite.tls12)
    func roundTrip(_ suite: CipherSuite) throws {
        var (writer, reader) = pair(suite)
        #expect(writer.isTLS12 && writer.suite == suite)
        let cases: [(ContentType, [UInt8])] = [
            (.handshake, [20, 0, 0, 12] + [UInt8](repeating: 7, count: 12)), (.alert, [1, 0]), (.applicationData, []),
            (.applicationData, [0]), (.applicationData, [UInt8](repeating: 0xA5, count: RecordHeader.maximumPlaintextLength)),
        ]
        for (index, (type, plaintext)) in cases.enumerated() {
            let record = try writer.seal(contentType: type, plaintext: plaintext)
            let (header, fragment) = wire12Split(record)
            // The header carries the real content type and 0x0303 (RFC 5246 §6.2.3.3).
            #expect(header.contentType == type && header.legacyVersion == .tls12 && header.length == fragment.count)
            let (openedType, opened) = try reader.open(header: header, fragment: fragment)
            #expect(openedType == type && opened == plaintext)
            #expect(writer.sequenceNumber == UInt64(index + 1) && reader.sequenceNumber == UInt64(index + 1))
        }
    }

    @Test("AES-GCM: the explicit nonce is the 64-bit sequence number, before the ciphertext", arguments: gcmSuites)
    func explicitNonce(_ suite: CipherSuite) throws {
        var (writer, _) = pair(suite, sequenceNumber: 0x0102_0304_0506_0708)
        let record = try writer.seal(contentType: .applicationData, plaintext: [1, 2, 3])
        // header(5) + explicit nonce(8) + ciphertext(3) + tag(16)
        #expect(record.count == 5 + 8 + 3 + 16)
        #expect(Array(record[5..<13]) == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(wire12Split(record).0.length == 8 + 3 + 16)
        #expect(RecordProtection.tls12ExplicitNonceLength == 8)
    }

    @Test("ChaCha20-Poly1305: no explicit nonce; the fragment is ciphertext and tag", arguments: chachaSuites)
    func noExplicitNonce(_ suite: CipherSuite) throws {
        var (writer, _) = pair(suite, sequenceNumber: 5)
        let record = try writer.seal(contentType: .applicationData, plaintext: [1, 2, 3])
        #expect(record.count == 5 + 3 + 16)
    }

    @Test("AES-GCM opens with whatever explicit nonce the peer chose (RFC 5288 §3)", arguments: gcmSuites)
    func peerChosenExplicitNonce(_ suite: CipherSuite) throws {
        // Built by hand: explicit nonce DE AD BE EF 00 11 22 33, sequence 0 in the AAD.
        let aead = suite.aead!
        let key = crypto.makeAEADKey(aead, key: [UInt8](repeating: 0x42, count: aead.keyLength))
        let salt: [UInt8] = [1, 2, 3, 4]
        let explicit: [UInt8] = [0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x11, 0x22, 0x33]
        let additionalData: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 23, 3, 3, 0, 2]
        let fragment = explicit + key.seal(nonce: salt + explicit, additionalData: additionalData, plaintext: [7, 8])
        var (_, reader) = pair(suite)
        let header = RecordHeader(contentType: .applicationData, legacyVersion: .tls12, length: fragment.count)
        let (type, plaintext) = try reader.open(header: header, fragment: fragment)
        #expect(type == .applicationData && plaintext == [7, 8] && reader.sequenceNumber == 1)
    }

    @Test("the additional data binds sequence number, content type and length", arguments: CipherSuite.tls12)
    func additionalData(_ suite: CipherSuite) throws {
        var (writer, _) = pair(suite)
        let record = try writer.seal(contentType: .handshake, plaintext: [1, 2, 3, 4])
        let (header, fragment) = wire12Split(record)
        // Another content type in the header: the AAD differs.
        for type in [ContentType.alert, .applicationData] {
            var (_, reader) = pair(suite)
            var changed = header
            changed.contentType = type
            #expect(throws: TLSError.badRecordMAC) { _ = try reader.open(header: changed, fragment: fragment) }
            #expect(reader.sequenceNumber == 0)
        }
        // Another sequence number.
        var (_, later) = pair(suite, sequenceNumber: 1)
        #expect(throws: TLSError.badRecordMAC) { _ = try later.open(header: header, fragment: fragment) }
        // Any flipped byte of the fragment (nonce, ciphertext or tag).
        for index in fragment.indices {
            var (_, reader) = pair(suite)
            var corrupted = fragment
            corrupted[index] ^= 0x01
            #expect(throws: TLSError.badRecordMAC) { _ = try reader.open(header: header, fragment: corrupted) }
        }
        // The AAD layout: seq_num(8) || type(1) || 0x0303 || length(2) of the plaintext.
        #expect(RecordProtection.tls12AdditionalDataLength == 13)
    }

    @Test("fragments too short for the explicit nonce and tag are bad_record_mac, at every length", arguments: CipherSuite.tls12)
    func tooShort(_ suite: CipherSuite) {
        let minimum = (suite.aead == .chacha20Poly1305 ? 0 : 8) + 16
        for length in 0..<minimum {
            var (_, reader) = pair(suite)
            let fragment = [UInt8](repeating: 0x33, count: length)
            let header = RecordHeader(contentType: .applicationData, legacyVersion: .tls12, length: length)
            #expect(throws: TLSError.badRecordMAC) { _ = try reader.open(header: header, fragment: fragment) }
        }
    }

    @Test("open refuses other content types, lying lengths and oversized fragments", arguments: CipherSuite.tls12)
    func openTraps(_ suite: CipherSuite) throws {
        var (writer, reader) = pair(suite)
        let (header, fragment) = wire12Split(try writer.seal(contentType: .applicationData, plaintext: [1]))
        for type in [ContentType.changeCipherSpec, .invalid, ContentType(rawValue: 99)] {
            var changed = header
            changed.contentType = type
            #expect(throws: TLSError.self) { _ = try reader.open(header: changed, fragment: fragment) }
            do {
                _ = try reader.open(header: changed, fragment: fragment)
            } catch {
                #expect(error.alert == .unexpectedMessage)
            }
        }
        var lying = header
        lying.length += 1
        #expect(throws: TLSError.self) { _ = try reader.open(header: lying, fragment: fragment) }
        do { _ = try reader.open(header: lying, fragment: fragment) } catch { #expect(error.alert == .decodeError) }
        let huge = [UInt8](repeating: 0, count: RecordHeader.maximumCiphertextLength + 1)
        #expect(throws: TLSError.recordOverflow(length: huge.count)) {
            _ = try reader.open(header: RecordHeader(contentType: .applicationData, legacyVersion: .tls12, length: huge.count), fragment: huge)
        }
        #expect(reader.sequenceNumber == 0)
        // Still in step after the refusals.
        let (type, plaintext) = try reader.open(header: header, fragment: fragment)
        #expect(type == .applicationData && plaintext == [1])
    }

    @Test("an authentic record whose plaintext exceeds 2^14 is record_overflow", arguments: CipherSuite.tls12)
    func plaintextOverflow(_ suite: CipherSuite) throws {
        // Built by hand with the same AEAD key: seq 0, nonce and AAD per the RFCs.
        let aead = suite.aead!
        let key = crypto.makeAEADKey(aead, key: [UInt8](repeating: 0x42, count: aead.keyLength))
        let iv = Array(UInt8(1)...UInt8(TLS12KeySchedule.fixedIVLength(aead)))
        let plaintext = [UInt8](repeating: 1, count: RecordHeader.maximumPlaintextLength + 1)
        let sequence = [UInt8](repeating: 0, count: 8)
        let additionalData = sequence + [23, 3, 3, 0x40, 0x01]
        let fragment: [UInt8]
        if aead == .chacha20Poly1305 {
            fragment = key.seal(nonce: iv, additionalData: additionalData, plaintext: plaintext)
        } else {
            fragment = sequence + key.seal(nonce: iv + sequence, additionalData: additionalData, plaintext: plaintext)
        }
        var (_, reader) = pair(suite)
        let header = RecordHeader(contentType: .applicationData, legacyVersion: .tls12, length: fragment.count)
        #expect(throws: TLSError.recordOverflow(length: plaintext.count)) { _ = try reader.open(header: header, fragment: fragment) }
    }

    @Test("seal refuses padding, type 0 and plaintext over 2^14", arguments: CipherSuite.tls12)
    func sealTraps(_ suite: CipherSuite) {
        var (writer, _) = pair(suite)
        #expect(throws: TLSError.self) { _ = try writer.seal(contentType: .applicationData, plaintext: [1], padding: 1) }
        #expect(throws: TLSError.self) { _ = try writer.seal(contentType: .invalid, plaintext: [1]) }
        let tooLong = [UInt8](repeating: 0, count: RecordHeader.maximumPlaintextLength + 1)
        do {
            _ = try writer.seal(contentType: .applicationData, plaintext: tooLong)
            Issue.record("sealed 2^14 + 1 bytes")
        } catch {
            #expect(error.alert == .internalError)
            if case .limitExceeded = error {} else { Issue.record("not limitExceeded: \(error)") }
        }
        #expect(writer.sequenceNumber == 0)
    }

    @Test("the last sequence number is used, the next is refused both ways", arguments: [CipherSuite.ecdheRSAWithAES128GCMSHA256, .ecdheRSAWithChaCha20Poly1305SHA256])
    func sequenceExhaustion(_ suite: CipherSuite) throws {
        var (writer, reader) = pair(suite, sequenceNumber: RecordProtection.lastSequenceNumber)
        let record = try writer.seal(contentType: .applicationData, plaintext: [1])
        let (header, fragment) = wire12Split(record)
        #expect(try reader.open(header: header, fragment: fragment).1 == [1])
        #expect(throws: TLSError.self) { _ = try writer.seal(contentType: .applicationData, plaintext: [1]) }
        #expect(throws: TLSError.self) { _ = try reader.open(header: header, fragment: fragment) }
    }

    @Test("TLS 1.3 protection is not in TLS 1.2 mode")
    func modes() {
        let v13 = RecordProtection(suite: .aes128GCMSHA256, secret: [UInt8](repeating: 1, count: 32), crypto: crypto)
        #expect(!v13.isTLS12)
        #expect(pair(.ecdheRSAWithAES128GCMSHA256).writer.isTLS12)
    }

    @Test("random fragments of every length up to 64 and random headers never trap", arguments: CipherSuite.tls12)
    func randomInput(_ suite: CipherSuite) {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15 &* UInt64(suite.rawValue)
        func next() -> UInt8 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        var failures = 0
        for length in 0...64 {
            var (_, reader) = pair(suite)
            let fragment = (0..<length).map { _ in next() }
            let type = [ContentType.handshake, .alert, .applicationData, .changeCipherSpec][Int(next() % 4)]
            let header = RecordHeader(contentType: type, legacyVersion: ProtocolVersion(rawValue: UInt16(next()) << 8 | 3),
                                      length: length)
            do { _ = try reader.open(header: header, fragment: fragment) } catch { failures += 1 }
        }
        #expect(failures == 65)
    }
}
