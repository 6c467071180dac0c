/// A whole DNS message (RFC 1035 §4.1): header, question, answer,
/// authority and additional sections, with the OPT record (RFC 6891) held
/// apart as `edns`.
public struct Message: Hashable, Sendable {
    /// The header; its counts are recomputed on emit.
    public var header: Header
    /// The question section.
    public var questions: [Question]
    /// The answer section.
    public var answers: [ResourceRecord]
    /// The authority section.
    public var authority: [ResourceRecord]
    /// The additional section, without the OPT record.
    public var additional: [ResourceRecord]
    /// The OPT record's contents, if the message has one.
    public var edns: EDNS?

    /// An empty message with this header.
    public init(header: Header) {
        self.header = header
        questions = []
        answers = []
        authority = []
        additional = []
        edns = nil
    }

    /// The full 12-bit response code: EDNS's high bits over the header's
    /// low four (RFC 6891 §6.1.3). Setting a code above 15 on a message
    /// without EDNS adds an OPT record, which is the only way to carry it.
    public var responseCode: ResponseCode {
        get { ResponseCode(rawValue: UInt16(edns?.extendedRCode ?? 0) << 4 | UInt16(header.responseCode & 0x0F)) }
        set {
            header.responseCode = newValue.headerBits
            if edns != nil || newValue.extendedBits != 0 {
                if edns == nil { edns = EDNS() }
                edns?.extendedRCode = newValue.extendedBits
            }
        }
    }
}
