import MirageDevices

/// Everything that can go wrong in MirageDNS: malformed messages from a
/// peer, zone files that do not load, and resolutions that fail.
///
/// Peer input never traps: a decoder throws one of these, and the server
/// answers FORMERR (or drops the datagram when no reply is possible).
public enum DNSError: Error, Equatable, Sendable, CustomStringConvertible {
    // MARK: Wire format (RFC 1035 §4)

    /// The message ends at `offset` inside a field that needs `needed` more bytes.
    case truncated(offset: Int, needed: Int)
    /// A compression pointer at `offset` points to `target`, which is not
    /// strictly before it (RFC 1035 §4.1.4 only allows prior occurrences).
    case badPointer(offset: Int, target: Int)
    /// More compression pointers in one name than a name can have labels.
    case compressionLoop(offset: Int)
    /// A label longer than 63 bytes (RFC 1035 §2.3.4).
    case labelTooLong(length: Int)
    /// A name longer than 255 bytes in wire form (RFC 1035 §2.3.4).
    case nameTooLong(length: Int)
    /// A label type other than a length or a pointer (0b01, 0b10: RFC 6891 §5 retired them).
    case unsupportedLabelType(UInt8)
    /// Bytes left after the last record the counts announce.
    case trailingBytes(count: Int)
    /// A record's data does not match its type's format.
    case badRecordData(type: UInt16, reason: String)
    /// A second OPT record (RFC 6891 §6.1.1: FORMERR).
    case duplicateOPT
    /// An OPT record outside the additional section or with a non-root owner.
    case misplacedOPT
    /// The message does not fit the size limit even without its records.
    case messageTooLarge(size: Int, limit: Int)

    // MARK: Presentation format and zone files (RFC 1035 §5)

    /// Text that is not a valid name, record or value; `reason` says why.
    case syntax(reason: String)
    /// A zone file problem: the file, the line (from 1; 0 when it concerns
    /// the whole zone, such as a missing SOA) and the reason.
    case zone(file: String, line: Int, reason: String)

    // MARK: Stream transport (RFC 7766, RFC 1035 §4.2.2)

    /// A length-prefixed message shorter than a DNS header.
    case frameTooShort(length: Int)

    // MARK: Resolution

    /// No name server is configured.
    case noServers
    /// No server answered before the retries ran out.
    case timedOut
    /// The server answered with an error code (SERVFAIL, REFUSED, NOTIMP, FORMERR…).
    case serverFailure(rcode: UInt16)
    /// More lookups are waiting than the resolver's limit allows.
    case tooManyQueries(limit: Int)
    /// A CNAME chain longer than the resolver follows, or a loop.
    case tooManyCNAMEs
    /// The stack refused an operation.
    case device(DeviceError)

    public var description: String {
        switch self {
        case .truncated(let offset, let needed): "message truncated at byte \(offset) (\(needed) more needed)"
        case .badPointer(let offset, let target): "compression pointer at \(offset) to \(target) does not point backwards"
        case .compressionLoop(let offset): "compression loop in the name at \(offset)"
        case .labelTooLong(let length): "label of \(length) bytes (at most 63)"
        case .nameTooLong(let length): "name of \(length) bytes (at most 255)"
        case .unsupportedLabelType(let byte): "unsupported label type 0x\(String(byte, radix: 16))"
        case .trailingBytes(let count): "\(count) bytes after the last record"
        case .badRecordData(let type, let reason): "bad data for type \(type): \(reason)"
        case .duplicateOPT: "more than one OPT record"
        case .misplacedOPT: "OPT record outside the additional section or not owned by the root"
        case .messageTooLarge(let size, let limit): "message of \(size) bytes over the limit of \(limit)"
        case .syntax(let reason): reason
        case .zone(let file, let line, let reason): line > 0 ? "\(file):\(line): \(reason)" : "\(file): \(reason)"
        case .frameTooShort(let length): "length-prefixed message of \(length) bytes is shorter than a header"
        case .noServers: "no name server configured"
        case .timedOut: "no answer from any name server"
        case .serverFailure(let rcode): "the name server answered with rcode \(rcode)"
        case .tooManyQueries(let limit): "more than \(limit) lookups waiting"
        case .tooManyCNAMEs: "CNAME chain too long or looping"
        case .device(let error): "stack: \(error)"
        }
    }
}
