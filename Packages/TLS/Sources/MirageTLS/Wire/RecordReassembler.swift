/// The 5-byte header of a TLSPlaintext or TLSCiphertext record (RFC 8446 §5.1, §5.2).
public struct RecordHeader: Hashable, Sendable {
    /// Size of the header: type (1), legacy_record_version (2), length (2).
    public static let size = 5
    /// Largest TLSPlaintext.fragment and TLSInnerPlaintext content: 2^14 (§5.1).
    public static let maximumPlaintextLength = 1 << 14
    /// Largest TLSCiphertext.encrypted_record: 2^14 + 256 (§5.2).
    public static let maximumCiphertextLength = (1 << 14) + 256

    /// The record's (outer) content type.
    public var contentType: ContentType
    /// legacy_record_version: ignored on receipt (§5.1).
    public var legacyVersion: ProtocolVersion
    /// Length of the fragment that follows.
    public var length: Int

    /// A header from its fields.
    public init(contentType: ContentType, legacyVersion: ProtocolVersion, length: Int) {
        self.contentType = contentType
        self.legacyVersion = legacyVersion
        self.length = length
    }

    /// The 5 header bytes (also the additional data of record protection, §5.2).
    /// `length` must fit in 16 bits.
    public func encode() -> [UInt8] {
        precondition(length >= 0 && length <= 0xFFFF, "record length out of range")
        var out: [UInt8] = []
        out.reserveCapacity(Self.size)
        out.appendUInt8(contentType.rawValue)
        out.appendUInt16(legacyVersion.rawValue)
        out.appendUInt16(UInt16(truncatingIfNeeded: length))
        return out
    }
}

/// Cuts the byte stream from TCP into whole records. Feed it whatever
/// arrived with `append`, then call `next()` until it returns nil.
///
/// Checks, as soon as a header is complete (before its fragment arrives):
/// - a length above 2^14 + 256 throws `.recordOverflow` (§5.2: "MUST NOT
///   exceed 2^14 + 256 bytes"); the tighter 2^14 bound on unprotected
///   records is the engine's, which knows whether a record is protected;
/// - a content type other than change_cipher_spec, alert, handshake or
///   application_data throws `.unexpectedMessage` (§5: an unexpected record
///   type MUST be answered with unexpected_message);
/// - a zero-length handshake, alert or change_cipher_spec record throws
///   `.decodeError` (§5.1: zero-length fragments are allowed only for
///   application data). Zero-length application_data passes through; an
///   encrypted one then fails to decrypt.
///
/// Nothing is consumed when it throws, so the same error repeats.
public struct RecordReassembler {
    private var buffer = ByteQueue()

    /// An empty reassembler.
    public init() {}

    /// Adds received bytes (copied). Call `next()` until nil after each
    /// append; buffering is bounded by one record plus what one append adds.
    public mutating func append(_ bytes: Span<UInt8>) {
        buffer.append(bytes)
    }

    /// The next whole record, or nil when more bytes are needed.
    public mutating func next() throws(TLSError) -> (header: RecordHeader, fragment: [UInt8])? {
        guard buffer.count >= RecordHeader.size else { return nil }
        let type = ContentType(rawValue: buffer[0])
        let version = ProtocolVersion(rawValue: UInt16(buffer[1]) << 8 | UInt16(buffer[2]))
        let length = Int(buffer[3]) << 8 | Int(buffer[4])
        switch type {
        case .changeCipherSpec, .alert, .handshake:
            guard length > 0 else { throw .decodeError("zero-length record of content type \(type.rawValue)") }
        case .applicationData:
            break
        default:
            throw .unexpectedMessage("record of unknown content type \(type.rawValue)")
        }
        guard length <= RecordHeader.maximumCiphertextLength else { throw .recordOverflow(length: length) }
        guard buffer.count >= RecordHeader.size + length else { return nil }
        _ = buffer.take(RecordHeader.size)
        let fragment = buffer.take(length)
        return (RecordHeader(contentType: type, legacyVersion: version, length: length), fragment)
    }

    /// Bytes buffered and not yet returned as records.
    public var bufferedCount: Int { buffer.count }
}
