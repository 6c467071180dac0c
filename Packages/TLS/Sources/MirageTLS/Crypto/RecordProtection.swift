/// One direction's record protection (RFC 8446 §5.2–5.5): the AEAD key and
/// IV of a traffic secret and the 64-bit sequence number. A new traffic
/// secret (handshake → application, KeyUpdate) means a new value, with the
/// sequence number back at zero (§5.3).
///
/// The same type protects TLS 1.2 records (`init(tls12Suite:…)`, RFC 5246
/// §6.2.3.3 with RFC 5288 and RFC 7905), so the engine seals and opens both
/// versions' records alike; `isTLS12` tells the modes apart.
public struct RecordProtection {
    /// The suite whose AEAD protects the records.
    public let suite: CipherSuite
    /// The number of the next record sealed or opened with this key (§5.3).
    public private(set) var sequenceNumber: UInt64

    private let key: any AEADKey
    private let iv: [UInt8]
    private let tagLength: Int
    /// True for TLS 1.2 record protection (explicit nonce for AES-GCM, the
    /// real content type in the header, no inner plaintext).
    public let isTLS12: Bool

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
        self.isTLS12 = false
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
    ///
    /// In TLS 1.2 mode see `sealTLS12`: the header carries `contentType` and
    /// `padding` must be 0.
    public mutating func seal(contentType: ContentType, plaintext: [UInt8], padding: Int = 0) throws(TLSError) -> [UInt8] {
        var record: [UInt8] = []
        try seal(contentType: contentType, plaintext: plaintext, padding: padding, appendingTo: &record)
        return record
    }

    /// `seal`, with the whole record appended to `output` (the bytes waiting
    /// to be sent) instead of returned: one copy fewer per record on the bulk path.
    public mutating func seal(contentType: ContentType, plaintext: [UInt8], padding: Int = 0,
                              appendingTo output: inout [UInt8]) throws(TLSError) {
        if isTLS12 {
            try sealTLS12(contentType: contentType, plaintext: plaintext, padding: padding, appendingTo: &output)
            return
        }
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
        output.append(contentsOf: additionalData)
        key.seal(nonce: nonce(sequenceNumber), additionalData: additionalData, plaintext: inner, appendingTo: &output)
        sequenceNumber += 1
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
    ///
    /// In TLS 1.2 mode see `openTLS12`: the content type is the header's.
    public mutating func open(header: RecordHeader, fragment: [UInt8]) throws(TLSError) -> (ContentType, [UInt8]) {
        if isTLS12 { return try openTLS12(header: header, fragment: fragment) }
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

// MARK: - TLS 1.2 (RFC 5246 §6.2.3.3, RFC 5288 §3, RFC 7905 §2)

extension RecordProtection {
    /// Length of the explicit nonce that precedes an AES-GCM record's
    /// ciphertext in TLS 1.2 (RFC 5288 §3: GenericAEADCipher.nonce_explicit).
    public static let tls12ExplicitNonceLength = 8
    /// Length of the AEAD additional data in TLS 1.2: seq_num (8), type (1),
    /// version (2), length (2) (RFC 5246 §6.2.3.3).
    public static let tls12AdditionalDataLength = 13

    /// TLS 1.2 protection with the key and the fixed IV from the key block
    /// (`TLS12KeySchedule.recordProtections`), sequence number 0. AES-GCM
    /// takes a 4-byte salt (RFC 5288 §3), ChaCha20-Poly1305 a 12-byte IV
    /// (RFC 7905 §2). The suite must be an implemented TLS 1.2 suite and the
    /// lengths must fit it (a caller's bug otherwise).
    public init(tls12Suite suite: CipherSuite, key: [UInt8], iv: [UInt8], crypto: any CryptoProvider) {
        self.init(tls12Suite: suite, key: key, iv: iv, crypto: crypto, sequenceNumber: 0)
    }

    /// The same, starting at a given sequence number (tests of the limits).
    public init(tls12Suite suite: CipherSuite, key: [UInt8], iv: [UInt8], crypto: any CryptoProvider,
                sequenceNumber: UInt64) {
        guard let aead = suite.aead, suite.version == .tls12 else {
            preconditionFailure("TLS 1.2 record protection for a suite that is not an implemented TLS 1.2 suite: \(suite)")
        }
        precondition(key.count == aead.keyLength && iv.count == TLS12KeySchedule.fixedIVLength(aead),
                     "TLS 1.2 record protection with a key or IV of the wrong length")
        self.suite = suite
        self.key = crypto.makeAEADKey(aead, key: key)
        self.iv = iv
        self.tagLength = aead.tagLength
        self.sequenceNumber = sequenceNumber
        self.isTLS12 = true
    }

    /// True when the nonce has an explicit part on the wire (AES-GCM, RFC 5288 §3).
    private var hasExplicitNonce: Bool { suite.aead != .chacha20Poly1305 }

    /// The sequence number as 8 big-endian bytes (seq_num, RFC 5246 §6.1).
    private static func sequenceBytes(_ sequence: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8)
        out.appendUInt32(UInt32(truncatingIfNeeded: sequence >> 32))
        out.appendUInt32(UInt32(truncatingIfNeeded: sequence))
        return out
    }

    /// additional_data = seq_num + TLSCompressed.type + TLSCompressed.version
    /// + TLSCompressed.length (RFC 5246 §6.2.3.3), the length being the
    /// plaintext's. `length` is at most 2^14 here.
    static func tls12AdditionalData(sequence: UInt64, type: ContentType, length: Int) -> [UInt8] {
        var out = sequenceBytes(sequence)
        out.reserveCapacity(tls12AdditionalDataLength)
        out.appendUInt8(type.rawValue)
        out.appendUInt16(ProtocolVersion.tls12.rawValue)
        out.appendUInt16(UInt16(truncatingIfNeeded: length))
        return out
    }

    /// Seals one TLS 1.2 record: the header carries `contentType` and
    /// version 0x0303. AES-GCM: nonce = salt(4) + explicit(8), the explicit
    /// part being the sequence number, sent before the ciphertext (RFC 5288
    /// §3: the explicit nonce MUST be distinct per record, which the
    /// sequence number is). ChaCha20-Poly1305: nonce = IV XOR the padded
    /// sequence number, nothing explicit (RFC 7905 §2). Throws
    /// `.limitExceeded` when the plaintext exceeds 2^14 (RFC 5246 §6.2.1) or
    /// the sequence numbers are spent (§6.1: they MUST NOT wrap),
    /// `.internalError` for content type 0 or any padding (TLS 1.2 has none).
    /// The record is appended to `output`.
    public mutating func sealTLS12(contentType: ContentType, plaintext: [UInt8], padding: Int = 0,
                                   appendingTo output: inout [UInt8]) throws(TLSError) {
        guard contentType != .invalid, padding == 0 else {
            throw .internalError("TLS 1.2 record of type 0 or with padding")
        }
        guard plaintext.count <= RecordHeader.maximumPlaintextLength else {
            throw .limitExceeded("TLS 1.2 record of \(plaintext.count) bytes exceeds 2^14 (RFC 5246 §6.2.1)")
        }
        guard sequenceNumber <= Self.lastSequenceNumber else {
            throw .limitExceeded("sequence numbers exhausted; the connection must end (RFC 5246 §6.1)")
        }
        let additionalData = Self.tls12AdditionalData(sequence: sequenceNumber, type: contentType, length: plaintext.count)
        let explicit = hasExplicitNonce ? Self.sequenceBytes(sequenceNumber) : []
        let nonce = hasExplicitNonce ? iv + explicit : self.nonce(sequenceNumber)
        output.append(contentsOf: RecordHeader(contentType: contentType, legacyVersion: .tls12,
                                               length: explicit.count + plaintext.count + tagLength).encode())
        output.append(contentsOf: explicit)
        key.seal(nonce: nonce, additionalData: additionalData, plaintext: plaintext, appendingTo: &output)
        sequenceNumber += 1
    }

    /// Opens one TLS 1.2 record (RFC 5246 §6.2.3.3): the content type is
    /// the header's; handshake, alert and application_data are accepted.
    /// AES-GCM takes the explicit nonce from the first 8 bytes, whatever the
    /// peer chose. Returns the header's type and the plaintext.
    /// - `.unexpectedMessage` for another header content type;
    /// - `.recordOverflow` when the fragment exceeds 2^14 + 256 or the
    ///   plaintext exceeds 2^14 (RFC 5246 §6.2.1, §6.2.3);
    /// - `.decodeError` when the header length is not the fragment's;
    /// - `.badRecordMAC` when it is too short for the nonce and tag or does
    ///   not authenticate (RFC 5246 §6.2.3.3: "MUST" bad_record_mac);
    /// - `.limitExceeded` when the sequence numbers are spent.
    public mutating func openTLS12(header: RecordHeader, fragment: [UInt8]) throws(TLSError) -> (ContentType, [UInt8]) {
        guard header.contentType == .handshake || header.contentType == .alert
                || header.contentType == .applicationData
        else {
            throw .unexpectedMessage("protected TLS 1.2 record of content type \(header.contentType.rawValue)")
        }
        guard fragment.count <= RecordHeader.maximumCiphertextLength else {
            throw .recordOverflow(length: fragment.count)
        }
        guard header.length == fragment.count else {
            throw .decodeError("record header length \(header.length) but \(fragment.count) bytes of fragment")
        }
        guard sequenceNumber <= Self.lastSequenceNumber else {
            throw .limitExceeded("sequence numbers exhausted; the connection must end (RFC 5246 §6.1)")
        }
        let explicitLength = hasExplicitNonce ? Self.tls12ExplicitNonceLength : 0
        guard fragment.count >= explicitLength + tagLength else { throw .badRecordMAC }
        let plaintextLength = fragment.count - explicitLength - tagLength
        let nonce = hasExplicitNonce ? iv + Array(fragment[0..<explicitLength]) : self.nonce(sequenceNumber)
        let ciphertext = hasExplicitNonce ? Array(fragment[explicitLength...]) : fragment
        let additionalData = Self.tls12AdditionalData(sequence: sequenceNumber, type: header.contentType,
                                                      length: min(plaintextLength, 0xFFFF))
        guard let plaintext = key.open(nonce: nonce, additionalData: additionalData, ciphertextAndTag: ciphertext) else {
            throw .badRecordMAC
        }
        sequenceNumber += 1
        guard plaintext.count <= RecordHeader.maximumPlaintextLength else {
            throw .recordOverflow(length: plaintext.count)
        }
        return (header.contentType, plaintext)
    }
}
