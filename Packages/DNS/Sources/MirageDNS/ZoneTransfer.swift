/// An AXFR in progress (RFC 5936): the zone as it was when the transfer
/// began, sent as a sequence of messages, each holding as many whole
/// records as fit, the SOA first and last (§2.2).
///
/// The first message also carries the question (§2.2.1) and the OPT
/// record; later ones neither (as NSD). A reload while a transfer runs does not change what it sends.
public struct ZoneTransfer: Sendable {
    /// The most a transfer message holds: the TCP length prefix allows
    /// 65535; staying well under keeps each write and each client buffer small.
    public static let messageSizeLimit = 16383

    private let zone: Zone
    private let header: Header
    private let question: Question
    private let edns: EDNS?
    private let payloadSize: UInt16
    /// Index of the next record to send; `zone.records.count` stands for the closing SOA.
    private var next = 0
    private var finished = false
    private var firstMessage = true

    init(zone: Zone, header: Header, question: Question, edns: EDNS?, payloadSize: UInt16) {
        self.payloadSize = payloadSize
        self.zone = zone
        self.header = header
        self.question = question
        self.edns = edns
    }

    /// Whether every message has been written.
    public var isFinished: Bool { finished }

    /// Writes the next message into `writer` (reset first). False when the
    /// transfer was already finished and nothing was written.
    public mutating func next(into writer: inout MessageWriter) -> Bool {
        guard !finished else { return false }
        writer.reset()
        writer.limit = Self.messageSizeLimit - (edns != nil && firstMessage ? AuthoritativeServer.optRecordSize : 0)
        var header = header
        var answers: UInt16 = 0
        do {
            try writer.writeHeaderPlaceholder()
            if firstMessage { try writer.write(question) }
        } catch {
            finished = true
            return false
        }
        let records = zone.records
        while next <= records.count {
            // The closing SOA repeats the first record (§2.2).
            let record = next == records.count ? zone.soa : records[next]
            let mark = writer.count
            do {
                try writer.write(record)
            } catch {
                writer.truncate(to: mark)
                guard answers == 0 else { break }
                // A record too large for a usual message gets one of its
                // own, up to the 65535 the length prefix allows; one larger
                // still cannot be sent at all and is left out.
                let largest = AuthoritativeServer.maximumMessageSize - AuthoritativeServer.optRecordSize
                if writer.limit < largest {
                    writer.limit = largest
                } else {
                    next += 1
                }
                continue
            }
            answers += 1
            next += 1
        }
        if next > records.count { finished = true }
        writer.limit = AuthoritativeServer.maximumMessageSize
        var additional: UInt16 = 0
        if let edns, firstMessage {
            writer.writeOPT(payloadSize: payloadSize, extendedRCode: 0, dnssecOK: edns.dnssecOK)
            additional = 1
        }
        header.questionCount = firstMessage ? 1 : 0
        header.answerCount = answers
        header.authorityCount = 0
        header.additionalCount = additional
        writer.patch(header)
        firstMessage = false
        return true
    }
}
