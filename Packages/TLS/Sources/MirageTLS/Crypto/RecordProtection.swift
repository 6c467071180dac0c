/// One direction's record protection (RFC 8446 §5.2–5.5): the AEAD key and
/// IV of a traffic secret and the 64-bit sequence number. A new traffic
/// secret (handshake → application, KeyUpdate) means a new value, with the
/// sequence number back at zero (§5.3).
public struct RecordProtection {
    /// The suite whose AEAD protects the records.
    public let suite: CipherSuite
    /// The number of the next record sealed or opened with this key (§5.3).
    public private(set) var sequenceNumber: UInt64

    private let key: any AEADKey
    private let iv: [UInt8]
    private let tagLength: Int

    /// Largest TLSInnerPlaintext: content plus padding at most 2^14, plus the
    /// type byte (§5.4: "MUST NOT exceed 2^14 + 1 octets").
    public static let maximumInnerPlaintextLength = RecordHeader.maximumPlaintextLength + 1
    /// The last sequence number we use: the next would wrap, and §5.3 forbids
    /// that ("MUST either rekey or terminate the connection"). Giving up one
    /// value of 2^64 keeps the check simple.
    public static let lastSequenceNumber = UInt64.max - 1

    /// Protection with the keys of `secret` (§7.3), sequence number 0. The
    /// suite must be one this library implements (`suite.aead != nil`).
    public init(suite: CipherSuite, secret: [UInt8], crypto: any CryptoProvider) {
        self.init(suite: suite, secret: secret, crypto: crypto, sequenceNumber: 0)
    }

    /// The same, starting at a given sequence number (tests of the limits).
    public init(suite: CipherSuite, secret: [UInt8], crypto: any CryptoProvider, sequenceNumber: UInt64) {
        guard let aead = suite.aead else { preconditionFailure("record protection for unimplemented suite \(suite)") }
        let (key, iv) = KeySchedule.trafficKey(crypto, suite: suite, secret: secret)
        self.suite = suite
        self.key = crypto.makeAEADKey(aead, key: key)
        self.iv = iv
        self.tagLength = aead.tagLength
        self.sequenceNumber = sequenceNumber
    }

    /// The per-record nonce (§5.3): the sequence number, big-endian, left-padded
    /// with zeros to iv_length, XORed with the static IV.
    func nonce(_ sequence: UInt64) -> [UInt8] {
        var nonce = iv
        let count = nonce.count
        for byteIndex in 0..<min(8, count) {
            nonce[count - 1 - byteIndex] ^= UInt8(truncatingIfNeeded: sequence >> (8 * UInt64(byteIndex)))
        }
        return nonce
    }

    /// Encrypts one record: TLSInnerPlaintext = plaintext || type || `padding`
    /// zeros (§5.4), sealed with the 5-byte record header as additional data
    /// (§5.2). Returns the whole TLSCiphertext, header included. Throws
    /// `.limitExceeded` when plaintext + padding exceeds 2^14 or the sequence
    /// numbers are spent, `.internalError` for content type 0 or negative padding.
    public mutating func seal(contentType: ContentType, plaintext: [UInt8], padding: Int = 0) throws(TLSError) -> [UInt8] {
        guard contentType != .invalid, padding >= 0 else {
            throw .internalError("record of type 0 or with negative padding")
        }
        guard plaintext.count <= RecordHeader.maximumPlaintextLength,
              padding <= RecordHeader.maximumPlaintextLength - plaintext.count
        else {
            throw .limitExceeded("record of \(plaintext.count) bytes plus \(padding) padding exceeds 2^14 (RFC 8446 §5.4)")
        }
        guard sequenceNumber <= Self.lastSequenceNumber else {
            throw .limitExceeded("sequence numbers exhausted; the key must be updated (RFC 8446 §5.3)")
        }
        var inner = plaintext
        inner.reserveCapacity(plaintext.count + 1 + padding)
        inner.append(contentType.rawValue)
        if padding > 0 { inner.append(contentsOf: repeatElement(0, count: padding)) }

        // opaque_type is application_data and legacy_record_version 0x0303 (§5.2).
        let header = RecordHeader(contentType: .applicationData, legacyVersion: .tls12, length: inner.count + tagLength)
        let additionalData = header.encode()
        let sealed = key.seal(nonce: nonce(sequenceNumber), additionalData: additionalData, plaintext: inner)
        sequenceNumber += 1
        return additionalData + sealed
    }

    /// Decrypts a TLSCiphertext (§5.2): the additional data is the record
    /// header as received. Returns the inner content type and the content with
    /// the padding removed (§5.4).
    /// - `.unexpectedMessage` when the outer type is not application_data or
    ///   the inner plaintext is all zeros (no content type, §5.4);
    /// - `.recordOverflow` when the ciphertext exceeds 2^14 + 256 (§5.2) or
    ///   the inner plaintext exceeds 2^14 + 1 (§5.4);
    /// - `.badRecordMAC` when it does not authenticate (§5.2);
    /// - `.limitExceeded` when the sequence numbers are spent (§5.3).
    public mutating func open(header: RecordHeader, fragment: [UInt8]) throws(TLSError) -> (ContentType, [UInt8]) {
        guard header.contentType == .applicationData else {
            throw .unexpectedMessage("protected record of outer type \(header.contentType.rawValue) (§5.2: application_data only)")
        }
        guard fragment.count <= RecordHeader.maximumCiphertextLength else {
            throw .recordOverflow(length: fragment.count)
        }
        guard header.length == fragment.count else {
            throw .decodeError("record header length \(header.length) but \(fragment.count) bytes of fragment")
        }
        guard sequenceNumber <= Self.lastSequenceNumber else {
            throw .limitExceeded("sequence numbers exhausted; the peer should have updated its key (RFC 8446 §5.3)")
        }
        guard fragment.count >= tagLength,
              let inner = key.open(nonce: nonce(sequenceNumber), additionalData: header.encode(), ciphertextAndTag: fragment)
        else { throw .badRecordMAC }
        sequenceNumber += 1

        guard inner.count <= Self.maximumInnerPlaintextLength else {
            throw .recordOverflow(length: inner.count)
        }
        // The content type is the last non-zero byte; everything after it is padding (§5.4).
        var end = inner.count
        while end > 0 && inner[end - 1] == 0 { end -= 1 }
        guard end > 0 else {
            throw .unexpectedMessage("protected record with no non-zero content type (§5.4)")
        }
        let type = ContentType(rawValue: inner[end - 1])
        return (type, Array(inner[0..<(end - 1)]))
    }
}
