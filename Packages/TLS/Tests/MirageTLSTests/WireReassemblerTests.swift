import MirageTLS
import Testing

/// Every way the tests cut a stream of `count` bytes: fixed chunk sizes 1…count
/// (1 is byte by byte, count is all at once) and every single cut into two
/// pieces. Each is a list of chunk lengths.
func wireChunkings(_ count: Int) -> [[Int]] {
    var result: [[Int]] = []
    for size in 1...max(count, 1) {
        var lengths: [Int] = []
        var left = count
        while left > 0 {
            lengths.append(min(size, left))
            left -= size
        }
        result.append(lengths)
    }
    for cut in 1..<max(count, 1) { result.append([cut, count - cut]) }
    return result
}

/// A TLSPlaintext record: 5-byte header then `fragment`.
func wireRecord(_ type: ContentType, _ fragment: [UInt8], version: ProtocolVersion = .tls12) -> [UInt8] {
    RecordHeader(contentType: type, legacyVersion: version, length: fragment.count).encode() + fragment
}

/// The handshake messages of the RFC 8448 §3 server flight after ServerHello.
let wireServerFlight = [RFC8448.encryptedExtensions, RFC8448.certificate, RFC8448.certificateVerify, RFC8448.serverFinished]

/// Feeds `stream` to a handshake reassembler in `lengths`-sized chunks and
/// returns the raw messages in order, draining after each chunk.
func wireReassembleHandshake(_ stream: [UInt8], _ lengths: [Int], limit: Int = HandshakeReassembler.defaultMaximumMessageSize)
    throws(TLSError) -> (messages: [[UInt8]], types: [HandshakeType], bodies: [[UInt8]], empty: Bool)
{
    var reassembler = HandshakeReassembler(maximumMessageSize: limit)
    var messages: [[UInt8]] = []
    var types: [HandshakeType] = []
    var bodies: [[UInt8]] = []
    var offset = 0
    for length in lengths {
        reassembler.append(Array(stream[offset..<offset + length]))
        offset += length
        while let message = try reassembler.next() {
            messages.append(message.raw)
            types.append(message.type)
            bodies.append(message.body)
        }
    }
    return (messages, types, bodies, reassembler.isEmpty)
}

/// Feeds `stream` to a record reassembler in `lengths`-sized chunks.
func wireReassembleRecords(_ stream: [UInt8], _ lengths: [Int]) throws(TLSError) -> (records: [(RecordHeader, [UInt8])], buffered: Int) {
    var reassembler = RecordReassembler()
    var records: [(RecordHeader, [UInt8])] = []
    var offset = 0
    for length in lengths {
        let chunk = Array(stream[offset..<offset + length])
        reassembler.append(chunk.span)
        offset += length
        while let r = try reassembler.next() { records.append((r.header, r.fragment)) }
    }
    return (records, reassembler.bufferedCount)
}

@Suite("Wire: reassemblers")
struct WireReassemblerTests {
    @Test("handshake: the §3 server flight comes out whole in every chunking")
    func serverFlightChunkings() throws {
        let stream = wireServerFlight.flatMap { $0 }
        #expect(stream.count == 657)  // RFC 8448 §3: "payload (657 octets)"
        for lengths in wireChunkings(stream.count) {
            let out = try wireReassembleHandshake(stream, lengths)
            #expect(out.messages == wireServerFlight, "chunks \(lengths.prefix(3))…")
            #expect(out.types == [.encryptedExtensions, .certificate, .certificateVerify, .finished])
            #expect(out.bodies == wireServerFlight.map { Array($0.dropFirst(4)) })
            #expect(out.empty)
        }
    }

    @Test("handshake: every §3 and §5 message alone, in every chunking, and the whole trace in one append",
          arguments: WireTraceMessage.all)
    func eachMessage(message: WireTraceMessage) throws {
        for lengths in wireChunkings(message.bytes.count) {
            let out = try wireReassembleHandshake(message.bytes, lengths)
            #expect(out.messages == [message.bytes])
            #expect(out.empty)
        }
    }

    @Test("handshake: isEmpty is false while a message is partial")
    func partial() throws {
        var reassembler = HandshakeReassembler()
        #expect(reassembler.isEmpty)
        reassembler.append(Array(RFC8448.serverFinished.prefix(3)))
        #expect(try reassembler.next() == nil)
        #expect(!reassembler.isEmpty)
        reassembler.append(Array(RFC8448.serverFinished.dropFirst(3)) + Array(RFC8448.clientFinished.prefix(10)))
        #expect(try reassembler.next()?.raw == RFC8448.serverFinished)
        #expect(try reassembler.next() == nil)
        #expect(!reassembler.isEmpty)
        #expect(reassembler.bufferedCount == 10)
    }

    @Test("handshake: a message above the limit is refused from its header, before its body arrives")
    func tooLarge() throws {
        // The default limit: a header announcing 65 537 bytes of body.
        var big = HandshakeReassembler()
        big.append([11, 0x01, 0x00, 0x01])
        #expect(throws: TLSError.self) { _ = try big.next() }
        do {
            _ = try big.next()
        } catch {
            #expect(error.alert == .decodeError)
        }
        // Exactly at the limit is accepted.
        var edge = HandshakeReassembler(maximumMessageSize: 40)
        edge.append(RFC8448.encryptedExtensions)  // 40 bytes
        #expect(try edge.next()?.raw == RFC8448.encryptedExtensions)
        // One over a custom limit: the §3 Certificate (445 bytes) against 444.
        #expect(throws: TLSError.self) { _ = try wireReassembleHandshake(RFC8448.certificate, [4], limit: 444) }
        #expect(try wireReassembleHandshake(RFC8448.certificate, [445], limit: 445).messages == [RFC8448.certificate])
    }

    @Test("records: the §3 ClientHello and ServerHello records, a CCS, application data of every size class, in every chunking")
    func recordChunkings() throws {
        let maximum = Array(repeating: UInt8(0xAB), count: RecordHeader.maximumCiphertextLength)
        let records: [[UInt8]] = [
            wireRecord(.handshake, RFC8448.clientHello, version: .tls10),  // "complete record (201 octets)": 16 03 01 00 c4
            wireRecord(.handshake, RFC8448.serverHello),
            wireRecord(.changeCipherSpec, [1]),
            wireRecord(.applicationData, []),
            wireRecord(.applicationData, Array(0..<200)),
        ]
        #expect(records[0].prefix(5) == [0x16, 0x03, 0x01, 0x00, 0xc4])
        #expect(records[0].count == 201)
        let stream = records.flatMap { $0 }
        for lengths in wireChunkings(stream.count) {
            let out = try wireReassembleRecords(stream, lengths)
            #expect(out.records.count == records.count)
            #expect(out.records.map { $0.0.encode() + $0.1 } == records)
            #expect(out.buffered == 0)
        }
        // The largest record allowed (2^14 + 256), byte by byte and whole.
        let big = wireRecord(.applicationData, maximum)
        for lengths in [Array(repeating: 1, count: big.count), [big.count], [3, big.count - 3]] {
            let out = try wireReassembleRecords(big, lengths)
            #expect(out.records.count == 1)
            #expect(out.records.first?.0.length == RecordHeader.maximumCiphertextLength)
            #expect(out.records.first?.1 == maximum)
        }
    }

    @Test("records then handshake: the server flight split across records of every size comes out whole")
    func recordsThenHandshake() throws {
        let flight = wireServerFlight.flatMap { $0 }
        for size in [1, 2, 3, 5, 17, 100, 256, 656, 657] {
            var stream: [UInt8] = []
            var offset = 0
            while offset < flight.count {
                let end = min(offset + size, flight.count)
                stream += wireRecord(.handshake, Array(flight[offset..<end]))
                offset = end
            }
            for chunk in [1, 7, stream.count] {
                let lengths = wireChunkings(stream.count)[chunk - 1]
                let records = try wireReassembleRecords(stream, lengths).records
                var handshake = HandshakeReassembler()
                var messages: [[UInt8]] = []
                for (header, fragment) in records {
                    #expect(header.contentType == .handshake)
                    handshake.append(fragment)
                    while let m = try handshake.next() { messages.append(m.raw) }
                }
                #expect(messages == wireServerFlight, "records of \(size), chunks of \(chunk)")
                #expect(handshake.isEmpty)
            }
        }
    }

    @Test("records: a length above 2^14 + 256 is record_overflow as soon as the header is in")
    func overflow() throws {
        var reassembler = RecordReassembler()
        let header = RecordHeader(contentType: .applicationData, legacyVersion: .tls12,
                                  length: RecordHeader.maximumCiphertextLength + 1).encode()
        reassembler.append(header.span)
        do {
            _ = try reassembler.next()
            Issue.record("no error")
        } catch {
            #expect(error == .recordOverflow(length: 16_641))
            #expect(error.alert == .recordOverflow)
        }
        #expect(reassembler.bufferedCount == 5)  // nothing consumed
    }

    @Test("records: unknown content type is unexpected_message; empty handshake, alert, CCS records are decode errors",
          arguments: [
              (UInt8(0), UInt16(4), AlertDescription.unexpectedMessage),
              (24, 4, .unexpectedMessage),  // heartbeat: never negotiated
              (255, 4, .unexpectedMessage),
              (22, 0, .decodeError),
              (21, 0, .decodeError),
              (20, 0, .decodeError),
          ])
    func badHeaders(type: UInt8, length: UInt16, alert: AlertDescription) throws {
        var reassembler = RecordReassembler()
        let bytes: [UInt8] = [type, 3, 3, UInt8(length >> 8), UInt8(length & 0xFF), 1, 2, 3, 4]
        reassembler.append(bytes.span)
        do {
            _ = try reassembler.next()
            Issue.record("no error")
        } catch {
            #expect(error.alert == alert)
        }
    }

    @Test("records: fewer than 5 bytes, or a header without its whole fragment, is nil (need more)")
    func needMore() throws {
        var reassembler = RecordReassembler()
        let bytes: [UInt8] = [23, 3, 3, 0, 3, 1, 2]
        let first = Array(bytes.prefix(4))
        let rest = Array(bytes.dropFirst(4))
        reassembler.append(first.span)
        #expect(try reassembler.next() == nil)
        reassembler.append(rest.span)
        #expect(try reassembler.next() == nil)
        #expect(reassembler.bufferedCount == 7)
        let last: [UInt8] = [3]
        reassembler.append(last.span)
        let r = try #require(try reassembler.next())
        #expect(r.header == RecordHeader(contentType: .applicationData, legacyVersion: .tls12, length: 3))
        #expect(r.fragment == [1, 2, 3])
        #expect(reassembler.bufferedCount == 0)
    }
}
