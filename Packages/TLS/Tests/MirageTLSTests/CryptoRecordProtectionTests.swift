// RFC 8446 §5.2–5.4 record protection: RFC 8448 §3's records opened and
// re-sealed byte for byte, then padding, limits, tampering and sequence numbers.

import MirageTLS
import MirageTLSCrypto
import Testing

@Suite struct CryptoRecordProtectionTests {
    let crypto = SwiftCryptoProvider()

    /// Splits a whole record into its header and fragment.
    func split(_ record: [UInt8]) -> (RecordHeader, [UInt8]) {
        let length = Int(record[3]) << 8 | Int(record[4])
        return (RecordHeader(contentType: ContentType(rawValue: record[0]), legacyVersion: ProtocolVersion(rawValue: UInt16(record[1]) << 8 | UInt16(record[2])), length: length),
                Array(record.dropFirst(RecordHeader.size)))
    }

    func protection(_ secret: [UInt8], suite: CipherSuite = .aes128GCMSHA256, sequenceNumber: UInt64 = 0) -> RecordProtection {
        RecordProtection(suite: suite, secret: secret, crypto: crypto, sequenceNumber: sequenceNumber)
    }

    // MARK: RFC 8448 §3

    @Test func serverHandshakeRecordDecryptsToEncryptedExtensionsThroughFinished() throws {
        var reader = protection(RFC8448.serverHandshakeTrafficSecret)
        let (header, fragment) = split(RFC8448.serverHandshakeRecord)
        let (type, plaintext) = try reader.open(header: header, fragment: fragment)
        #expect(type == .handshake)
        #expect(plaintext == RFC8448.encryptedExtensions + RFC8448.certificate + RFC8448.certificateVerify + RFC8448.serverFinished)
        #expect(reader.sequenceNumber == 1)
    }

    @Test func serverHandshakeRecordSealsToTheRFCsBytes() throws {
        var writer = protection(RFC8448.serverHandshakeTrafficSecret)
        let plaintext = RFC8448.encryptedExtensions + RFC8448.certificate + RFC8448.certificateVerify + RFC8448.serverFinished
        #expect(try writer.seal(contentType: .handshake, plaintext: plaintext) == RFC8448.serverHandshakeRecord)
    }

    @Test func clientFinishedRecordSealsToTheRFCsBytes() throws {
        var writer = protection(RFC8448.clientHandshakeTrafficSecret)
        #expect(try writer.seal(contentType: .handshake, plaintext: RFC8448.clientFinished) == RFC8448.clientFinishedRecord)
        var reader = protection(RFC8448.clientHandshakeTrafficSecret)
        let (header, fragment) = split(RFC8448.clientFinishedRecord)
        let opened = try reader.open(header: header, fragment: fragment)
        #expect(opened.0 == .handshake && opened.1 == RFC8448.clientFinished)
    }

    @Test func clientApplicationRecordsSealToTheRFCsBytes() throws {
        var writer = protection(RFC8448.clientApplicationTrafficSecret)
        #expect(try writer.seal(contentType: .applicationData, plaintext: RFC8448.applicationPayload) == RFC8448.clientApplicationRecord)
        // Sequence 1: the close_notify alert (warning(1), close_notify(0)).
        #expect(try writer.seal(contentType: .alert, plaintext: [1, 0]) == RFC8448.clientAlertRecord)
        #expect(writer.sequenceNumber == 2)
    }

    @Test func serverApplicationRecordsSealToTheRFCsBytes() throws {
        var writer = protection(RFC8448.serverApplicationTrafficSecret)
        #expect(try writer.seal(contentType: .handshake, plaintext: RFC8448.newSessionTicket) == RFC8448.newSessionTicketRecord)
        #expect(try writer.seal(contentType: .applicationData, plaintext: RFC8448.applicationPayload) == RFC8448.serverApplicationRecord)
        #expect(try writer.seal(contentType: .alert, plaintext: [1, 0]) == RFC8448.serverAlertRecord)
    }

    @Test func applicationRecordsOpenInSequence() throws {
        var reader = protection(RFC8448.serverApplicationTrafficSecret)
        var opened: [(ContentType, [UInt8])] = []
        for record in [RFC8448.newSessionTicketRecord, RFC8448.serverApplicationRecord, RFC8448.serverAlertRecord] {
            let (header, fragment) = split(record)
            opened.append(try reader.open(header: header, fragment: fragment))
        }
        #expect(opened.map { $0.0 } == [.handshake, .applicationData, .alert])
        #expect(opened[0].1 == RFC8448.newSessionTicket)
        #expect(opened[1].1 == RFC8448.applicationPayload)
        #expect(opened[2].1 == [1, 0])
    }

    @Test func aRecordOpenedOutOfSequenceFailsAuthentication() {
        // The server's application record is sequence 1; at sequence 0 the nonce differs.
        var reader = protection(RFC8448.serverApplicationTrafficSecret)
        let (header, fragment) = split(RFC8448.serverApplicationRecord)
        #expect(throws: TLSError.badRecordMAC) { try reader.open(header: header, fragment: fragment) }
        // A failed record does not advance the sequence number.
        #expect(reader.sequenceNumber == 0)
    }

    // MARK: Padding, limits, tampering

    static let suites: [CipherSuite] = CipherSuite.tls13

    @Test(arguments: suites)
    func roundTripWithPaddingStripsThePadding(_ suite: CipherSuite) throws {
        let secret = [UInt8](repeating: 0x42, count: suite.hash?.outputLength ?? 32)
        var writer = protection(secret, suite: suite)
        var reader = protection(secret, suite: suite)
        for (plaintext, padding) in [([UInt8]("hello".utf8), 0), ([UInt8]("hello".utf8), 100), ([0, 0, 0], 7), ([], 3)] {
            let record = try writer.seal(contentType: .applicationData, plaintext: plaintext, padding: padding)
            #expect(record.count == RecordHeader.size + plaintext.count + 1 + padding + 16)
            #expect(Array(record.prefix(3)) == [23, 3, 3])
            let (header, fragment) = split(record)
            let opened = try reader.open(header: header, fragment: fragment)
            #expect(opened.0 == .applicationData)
            #expect(opened.1 == plaintext)
        }
        #expect(writer.sequenceNumber == 4 && reader.sequenceNumber == 4)
    }

    @Test(arguments: suites)
    func anyFlippedBitIsABadRecordMAC(_ suite: CipherSuite) throws {
        let secret = [UInt8](repeating: 0x17, count: suite.hash?.outputLength ?? 32)
        var writer = protection(secret, suite: suite)
        let record = try writer.seal(contentType: .applicationData, plaintext: Array("attack at dawn".utf8))
        for index in record.indices where index != 0 {
            var tampered = record
            tampered[index] ^= 0x80
            var reader = protection(secret, suite: suite)
            let (header, fragment) = split(tampered)
            if index == 3 || index == 4 {
                // A changed length no longer matches the fragment.
                #expect(throws: TLSError.self) { try reader.open(header: header, fragment: fragment) }
            } else {
                #expect(throws: TLSError.badRecordMAC) { try reader.open(header: header, fragment: fragment) }
            }
        }
    }

    @Test func aFragmentShorterThanATagIsABadRecordMAC() {
        var reader = protection(RFC8448.serverApplicationTrafficSecret)
        let fragment = [UInt8](repeating: 0, count: 15)
        #expect(throws: TLSError.badRecordMAC) {
            try reader.open(header: RecordHeader(contentType: .applicationData, legacyVersion: .tls12, length: 15), fragment: fragment)
        }
    }

    /// Seals `inner` (a whole TLSInnerPlaintext, chosen by the test) the way a peer would.
    func rawRecord(secret: [UInt8], inner: [UInt8]) -> (RecordHeader, [UInt8]) {
        let keys = KeySchedule(suite: .aes128GCMSHA256, crypto: crypto).trafficKey(secret)
        let header = RecordHeader(contentType: .applicationData, legacyVersion: .tls12, length: inner.count + 16)
        let fragment = crypto.makeAEADKey(.aes128GCM, key: keys.key).seal(nonce: keys.iv, additionalData: header.encode(), plaintext: inner)
        return (header, fragment)
    }

    @Test func anAllZeroInnerPlaintextIsAnUnexpectedMessage() {
        let secret = RFC8448.clientApplicationTrafficSecret
        let (header, fragment) = rawRecord(secret: secret, inner: [0, 0, 0, 0])
        var reader = protection(secret)
        expectCryptoAlert(.unexpectedMessage) { () throws(TLSError) in _ = try reader.open(header: header, fragment: fragment) }
    }

    @Test func anInnerPlaintextOver2To14Plus1IsARecordOverflow() throws {
        let secret = RFC8448.clientApplicationTrafficSecret
        // 2^14 + 1 bytes of content then the type: one byte too many (§5.4).
        let (header, fragment) = rawRecord(secret: secret, inner: [UInt8](repeating: 0x61, count: (1 << 14) + 1) + [23])
        var reader = protection(secret)
        #expect(throws: TLSError.recordOverflow(length: (1 << 14) + 2)) { try reader.open(header: header, fragment: fragment) }
        // Exactly 2^14 of content plus the type is allowed.
        let (okHeader, okFragment) = rawRecord(secret: secret, inner: [UInt8](repeating: 0x61, count: 1 << 14) + [23])
        var okReader = protection(secret)
        #expect(try okReader.open(header: okHeader, fragment: okFragment).1.count == 1 << 14)
    }

    @Test func aCiphertextOver2To14Plus256IsARecordOverflow() {
        var reader = protection(RFC8448.clientApplicationTrafficSecret)
        let length = (1 << 14) + 257
        #expect(throws: TLSError.recordOverflow(length: length)) {
            try reader.open(header: RecordHeader(contentType: .applicationData, legacyVersion: .tls12, length: length), fragment: [UInt8](repeating: 0, count: length))
        }
    }

    @Test func onlyApplicationDataRecordsAreProtected() {
        var reader = protection(RFC8448.clientApplicationTrafficSecret)
        var (header, fragment) = split(RFC8448.clientApplicationRecord)
        header.contentType = .handshake
        expectCryptoAlert(.unexpectedMessage) { () throws(TLSError) in _ = try reader.open(header: header, fragment: fragment) }
        fragment.removeLast()
        header.contentType = .applicationData
        expectCryptoAlert(.decodeError) { () throws(TLSError) in _ = try reader.open(header: header, fragment: fragment) }
    }

    @Test func sealRefusesMoreThan2To14OfContentAndPadding() throws {
        var writer = protection(RFC8448.clientApplicationTrafficSecret)
        _ = try writer.seal(contentType: .applicationData, plaintext: [UInt8](repeating: 1, count: 1 << 14))
        _ = try writer.seal(contentType: .applicationData, plaintext: [UInt8](repeating: 1, count: 100), padding: (1 << 14) - 100)
        expectCryptoAlert(.internalError) { () throws(TLSError) in _ = try writer.seal(contentType: .applicationData, plaintext: [UInt8](repeating: 1, count: (1 << 14) + 1)) }
        expectCryptoAlert(.internalError) { () throws(TLSError) in _ = try writer.seal(contentType: .applicationData, plaintext: [1], padding: 1 << 14) }
        expectCryptoAlert(.internalError) { () throws(TLSError) in _ = try writer.seal(contentType: .invalid, plaintext: [1]) }
        #expect(writer.sequenceNumber == 2)
    }

    @Test func sequenceNumbersNeverWrap() throws {
        let secret = RFC8448.clientApplicationTrafficSecret
        var writer = protection(secret, sequenceNumber: RecordProtection.lastSequenceNumber)
        var reader = protection(secret, sequenceNumber: RecordProtection.lastSequenceNumber)
        let record = try writer.seal(contentType: .applicationData, plaintext: [1, 2, 3])
        let (header, fragment) = split(record)
        #expect(try reader.open(header: header, fragment: fragment).1 == [1, 2, 3])
        // The next sequence number would be 2^64 − 1 and then wrap: both directions stop.
        #expect(throws: TLSError.self) { try writer.seal(contentType: .applicationData, plaintext: [4]) }
        #expect(throws: TLSError.self) { try reader.open(header: header, fragment: fragment) }
        expectCryptoAlert(.internalError) { () throws(TLSError) in _ = try writer.seal(contentType: .applicationData, plaintext: [4]) }
    }

    @Test func theNonceIsTheIVXorTheSequenceNumber() throws {
        // Sealed at sequence 0x0102030405060708 with our record layer, opened with the bare AEAD and our own nonce.
        let secret = RFC8448.clientApplicationTrafficSecret
        let sequence: UInt64 = 0x0102_0304_0506_0708
        var writer = protection(secret, sequenceNumber: sequence)
        let record = try writer.seal(contentType: .applicationData, plaintext: [9, 9])
        let keys = KeySchedule(suite: .aes128GCMSHA256, crypto: crypto).trafficKey(secret)
        var nonce = keys.iv
        let sequenceBytes: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
        for i in 0..<8 { nonce[4 + i] ^= sequenceBytes[i] }
        let inner = crypto.makeAEADKey(.aes128GCM, key: keys.key).open(nonce: nonce, additionalData: Array(record.prefix(5)), ciphertextAndTag: Array(record.dropFirst(5)))
        #expect(inner == [9, 9, 23])
    }
}

/// Expects `body` to throw a TLSError whose alert is `alert`.
func expectCryptoAlert(_ alert: AlertDescription, _ comment: String = "", sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws(TLSError) -> Void) {
    do {
        try body()
        Issue.record("expected \(alert), nothing thrown \(comment)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.alert == alert, "\(error) \(comment)", sourceLocation: sourceLocation)
    }
}
