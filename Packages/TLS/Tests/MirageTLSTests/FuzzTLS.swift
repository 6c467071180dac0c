// The TLS fuzz targets, shared by libFuzzer (`Scripts/fuzz`, which compiles
// this file with a generated LLVMFuzzerTestOneInput against MirageDevices
// and MirageTLS: see Scripts/fuzzing/targets.txt) and by
// WireCorpusReplayTests, which runs every file of Corpus/<target>/ through
// the same function. So this file imports only MirageTLS and the standard
// library, and uses only MirageTLS's public API.
//
// A broken promise traps with `fuzzCheck` (a `fatalError`, whose message
// survives -O); libFuzzer reports it as a crash and the replay test dies
// on it: that trap is the assertion.

import MirageTLS

/// The fuzz targets of this package: name → run. Add a target with a line
/// here and one in Scripts/fuzzing/targets.txt.
let fuzzTargets: [(name: String, run: @Sendable (Span<UInt8>) -> FuzzReport)] = [
    ("tls-record", fuzzRecords),
    ("tls-handshake", fuzzHandshake),
    ("tls-engine", fuzzEngine),
]

/// What a run saw; folded so the optimiser keeps every read.
struct FuzzReport: CustomStringConvertible {
    /// Whole records cut from the input (tls-record).
    var records = 0
    /// Whole handshake messages cut from the input or the records.
    var messages = 0
    /// Messages that parsed as their type.
    var decoded = 0
    /// Extension bodies that parsed as a typed body.
    var extensions = 0
    /// The reassembler's error, if it stopped on one.
    var error: TLSError? = nil
    var digest: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func mix(_ value: UInt64) { digest = (digest ^ value) &* 0x100_0000_01b3 }
    mutating func mix(_ bytes: [UInt8]) { for b in bytes { mix(UInt64(b)) } }

    var description: String {
        "records \(records), messages \(messages), decoded \(decoded), extensions \(extensions), error \(error.map { "\($0)" } ?? "-")"
    }
}

// MARK: - tls-record

/// `tls-record`: the input is what TCP delivered. Cut into records whole,
/// one byte at a time and in input-driven chunk sizes, the same records and
/// the same error must come out; every record re-encodes to the bytes it came
/// from and respects §5.1/§5.2. The handshake records' fragments then go
/// through the handshake reassembler and every message parser.
func fuzzRecords(_ input: Span<UInt8>) -> FuzzReport {
    let bytes = fuzzCopy(input)
    var report = FuzzReport()
    let whole = cutRecords(bytes, chunk: { _ in bytes.count })
    let single = cutRecords(bytes, chunk: { _ in 1 })
    let mixed = cutRecords(bytes, chunk: { i in 1 + Int(bytes[i % max(bytes.count, 1)] % 97) })
    for other in [single, mixed] {
        fuzzCheck(other.error == whole.error, "records: chunking changed the error")
        fuzzCheck(other.records.count == whole.records.count, "records: chunking changed the record count")
        for (a, b) in zip(whole.records, other.records) {
            fuzzCheck(a.header == b.header && a.fragment == b.fragment, "records: chunking changed a record")
        }
    }
    report.records = whole.records.count
    report.error = whole.error
    var offset = 0
    var handshake = HandshakeReassembler()
    for (header, fragment) in whole.records {
        fuzzCheck(header.length == fragment.count, "record length is not its fragment's")
        fuzzCheck(header.length <= RecordHeader.maximumCiphertextLength, "record over 2^14 + 256 accepted")
        fuzzCheck(header.length > 0 || header.contentType == .applicationData, "empty non-application record accepted")
        let encoded = header.encode() + fragment
        fuzzCheck(offset + encoded.count <= bytes.count && Array(bytes[offset..<offset + encoded.count]) == encoded,
                  "record does not re-encode to its bytes")
        offset += encoded.count
        report.mix(UInt64(header.contentType.rawValue))
        if header.contentType == .handshake {
            handshake.append(fragment)
            do {
                while let message = try handshake.next() {
                    report.messages += 1
                    fuzzMessage(message.type, message.body, message.raw, &report)
                }
            } catch {
                report.mix(UInt64(error.alert.rawValue))
            }
        }
    }
    if whole.error == nil {
        fuzzCheck(offset + whole.buffered == bytes.count, "records: bytes lost or invented")
    }
    return report
}

/// Records cut from `bytes` in chunks of `chunk(offset)` bytes, draining after each.
func cutRecords(_ bytes: [UInt8], chunk: (Int) -> Int)
    -> (records: [(header: RecordHeader, fragment: [UInt8])], error: TLSError?, buffered: Int)
{
    var reassembler = RecordReassembler()
    var records: [(header: RecordHeader, fragment: [UInt8])] = []
    var offset = 0
    while offset < bytes.count {
        let end = min(bytes.count, offset + max(1, chunk(offset)))
        let piece = Array(bytes[offset..<end])
        reassembler.append(piece.span)
        offset = end
        do {
            while let record = try reassembler.next() { records.append(record) }
        } catch {
            return (records, error, reassembler.bufferedCount)
        }
    }
    return (records, nil, reassembler.bufferedCount)
}

// MARK: - tls-handshake

/// `tls-handshake`: the input is the handshake byte stream (the plaintext of
/// handshake records). Cut whole and one byte at a time it gives the same
/// messages and error; each message goes through its parser (TLS 1.3's
/// and, where the type is shared or TLS 1.2's own, TLS 1.2's), and whatever
/// parses re-encodes to its bytes (a hello without an extension block gains
/// an empty one), parses back equal, and every extension body that parses
/// as a typed body re-encodes to its data.
func fuzzHandshake(_ input: Span<UInt8>) -> FuzzReport {
    let bytes = fuzzCopy(input)
    var report = FuzzReport()
    let whole = cutMessages(bytes, step: bytes.count)
    let single = cutMessages(bytes, step: 1)
    fuzzCheck(single.error == whole.error, "handshake: chunking changed the error")
    fuzzCheck(single.messages.count == whole.messages.count, "handshake: chunking changed the message count")
    for (a, b) in zip(whole.messages, single.messages) {
        fuzzCheck(a.type == b.type && a.body == b.body && a.raw == b.raw, "handshake: chunking changed a message")
    }
    report.error = whole.error
    var consumed = 0
    for message in whole.messages {
        fuzzCheck(message.raw.count == 4 + message.body.count && message.raw[0] == message.type.rawValue
                  && Array(message.raw.dropFirst(4)) == message.body, "message raw bytes are not header + body")
        fuzzCheck(Array(bytes[consumed..<consumed + message.raw.count]) == message.raw, "message is not its input bytes")
        consumed += message.raw.count
        report.messages += 1
        fuzzMessage(message.type, message.body, message.raw, &report)
    }
    if whole.error == nil { fuzzCheck(consumed + whole.buffered == bytes.count, "handshake: bytes lost or invented") }
    return report
}

/// Messages cut from `bytes` in chunks of `step` bytes, draining after each.
func cutMessages(_ bytes: [UInt8], step: Int)
    -> (messages: [(type: HandshakeType, body: [UInt8], raw: [UInt8])], error: TLSError?, buffered: Int)
{
    var reassembler = HandshakeReassembler()
    var messages: [(type: HandshakeType, body: [UInt8], raw: [UInt8])] = []
    var offset = 0
    while offset < bytes.count {
        let end = min(bytes.count, offset + max(1, step))
        reassembler.append(Array(bytes[offset..<end]))
        offset = end
        do {
            while let message = try reassembler.next() { messages.append(message) }
        } catch {
            return (messages, error, reassembler.bufferedCount)
        }
    }
    return (messages, nil, reassembler.bufferedCount)
}

// MARK: - Message and extension checks

/// Parses one message by its type and checks the round trip.
func fuzzMessage(_ type: HandshakeType, _ body: [UInt8], _ raw: [UInt8], _ report: inout FuzzReport) {
    switch type {
    case .clientHello:
        if let m = fuzzRoundTrip(ClientHello.self, body, raw, hello: true, &report) {
            fuzzCheck(m.random.count == 32 && m.legacySessionID.count <= 32 && !m.cipherSuites.isEmpty, "ClientHello bounds")
            fuzzExtensions(m.extensions, &report)
        }
    case .serverHello:
        if let m = fuzzRoundTrip(ServerHello.self, body, raw, hello: true, &report) {
            fuzzCheck(m.isHelloRetryRequest == (m.random == ServerHello.helloRetryRequestRandom), "HRR detection")
            fuzzExtensions(m.extensions, &report)
        }
    case .encryptedExtensions:
        if let m = fuzzRoundTrip(EncryptedExtensions.self, body, raw, hello: false, &report) { fuzzExtensions(m.extensions, &report) }
    case .certificateRequest:
        if let m = fuzzRoundTrip(CertificateRequest.self, body, raw, hello: false, &report) {
            fuzzCheck(!m.extensions.isEmpty, "CertificateRequest without extensions accepted")
            fuzzExtensions(m.extensions, &report)
        }
        if let m = fuzzRoundTrip(CertificateRequest12.self, body, raw, hello: false, &report) {
            fuzzCheck(!m.certificateTypes.isEmpty && !m.schemes.isEmpty, "TLS 1.2 CertificateRequest with an empty list accepted")
            fuzzCheck(m.authorities.allSatisfy { !$0.isEmpty }, "empty DistinguishedName accepted")
        }
    case .certificate:
        if let m = fuzzRoundTrip(CertificateMessage.self, body, raw, hello: false, &report) {
            for entry in m.entries {
                fuzzCheck(!entry.data.isEmpty, "empty cert_data accepted")
                fuzzExtensions(entry.extensions, &report)
            }
        }
        if let m = fuzzRoundTrip(CertificateMessage12.self, body, raw, hello: false, &report) {
            fuzzCheck(m.chain.allSatisfy { !$0.isEmpty }, "empty TLS 1.2 ASN.1Cert accepted")
        }
    case .certificateVerify:
        _ = fuzzRoundTrip(CertificateVerify.self, body, raw, hello: false, &report)
    case .finished:
        _ = fuzzRoundTrip(Finished.self, body, raw, hello: false, &report)
    case .newSessionTicket:
        if let m = fuzzRoundTrip(NewSessionTicket.self, body, raw, hello: false, &report) {
            fuzzCheck(!m.ticket.isEmpty, "empty ticket accepted")
            fuzzExtensions(m.extensions, &report)
        }
        _ = fuzzRoundTrip(NewSessionTicket12.self, body, raw, hello: false, &report)
    case .serverKeyExchange:
        if let m = fuzzRoundTrip(ServerKeyExchangeECDHE.self, body, raw, hello: false, &report) {
            fuzzCheck(!m.publicKey.isEmpty && m.publicKey.count <= ServerKeyExchangeECDHE.maximumPointLength, "ServerKeyExchange point bounds")
            fuzzCheck(m.params.first == ServerKeyExchangeECDHE.namedCurveType && Array(body.prefix(m.params.count)) == m.params,
                      "ServerKeyExchange params are not the body's first bytes")
        }
    case .clientKeyExchange:
        if let m = fuzzRoundTrip(ClientKeyExchangeECDHE.self, body, raw, hello: false, &report) {
            fuzzCheck(!m.publicKey.isEmpty, "empty ClientKeyExchange point accepted")
        }
    case .serverHelloDone:
        if fuzzRoundTrip(ServerHelloDone.self, body, raw, hello: false, &report) != nil {
            fuzzCheck(body.isEmpty, "ServerHelloDone with a body accepted")
        }
    case .helloRequest:
        if fuzzRoundTrip(HelloRequest.self, body, raw, hello: false, &report) != nil {
            fuzzCheck(body.isEmpty, "HelloRequest with a body accepted")
        }
    case .keyUpdate:
        if let m = fuzzRoundTrip(KeyUpdate.self, body, raw, hello: false, &report) {
            fuzzCheck(body == [m.requestUpdate ? 1 : 0], "KeyUpdate accepted a value other than 0 or 1")
        }
    default:
        report.mix(UInt64(type.rawValue))
    }
}

/// Parses `body` as `M`; if it parses, checks encode() against `raw` (a hello
/// may lack its extension block: then it has no extensions and encodes with
/// an empty one) and that the encoding parses back equal.
func fuzzRoundTrip<M: HandshakeMessage>(_ type: M.Type, _ body: [UInt8], _ raw: [UInt8], hello: Bool,
                                        _ report: inout FuzzReport) -> M? {
    let message: M
    do {
        message = try M(parsing: body)
    } catch {
        report.mix(UInt64(error.alert.rawValue))
        return nil
    }
    report.decoded += 1
    let encoded = message.encode()
    if encoded != raw {
        // Only a hello without an extension block may differ: by the two bytes of an empty one.
        fuzzCheck(hello && encoded.count == raw.count + 2 && encoded.suffix(2) == [0, 0]
                  && Array(encoded.dropFirst(4).dropLast(2)) == body, "message does not re-encode to its bytes")
    }
    do {
        let again = try M(parsing: message.encodeBody())
        fuzzCheck(again == message, "re-encoded message parses to something else")
    } catch {
        fuzzFail("re-encoded message does not parse")
    }
    report.mix(encoded)
    return message
}

/// Tries every typed body that fits each extension's type; whatever parses
/// must re-encode to exactly its data.
func fuzzExtensions(_ extensions: [Extension], _ report: inout FuzzReport) {
    var seen: Set<UInt16> = []
    for e in extensions {
        fuzzCheck(seen.insert(e.type.rawValue).inserted, "duplicate extension accepted")
        let d = e.data
        switch e.type {
        case .serverName:
            fuzzBody(ServerNameList.self, d, &report)
        case .supportedGroups:
            fuzzBody(SupportedGroupsList.self, d, &report)
        case .signatureAlgorithms, .signatureAlgorithmsCert:
            fuzzBody(SignatureSchemeList.self, d, &report)
        case .alpn:
            if let list = fuzzBody(ProtocolNameList.self, d, &report) {
                fuzzCheck(!list.protocols.isEmpty && list.protocols.allSatisfy { !$0.isEmpty }, "empty ALPN accepted")
            }
        case .supportedVersions:
            fuzzBody(SupportedVersionsClient.self, d, &report)
            fuzzBody(SupportedVersionsServer.self, d, &report)
        case .keyShare:
            if let shares = fuzzBody(KeyShareClientHello.self, d, &report) {
                fuzzCheck(Set(shares.shares.map { $0.group.rawValue }).count == shares.shares.count, "duplicate key share group accepted")
            }
            fuzzBody(KeyShareServerHello.self, d, &report)
            fuzzBody(KeyShareHelloRetryRequest.self, d, &report)
        case .cookie:
            fuzzBody(Cookie.self, d, &report)
        case .pskKeyExchangeModes:
            fuzzBody(PSKKeyExchangeModes.self, d, &report)
        case .preSharedKey:
            if let offered = fuzzBody(OfferedPSKs.self, d, &report) {
                fuzzCheck(offered.identities.count == offered.binders.count, "pre_shared_key: identities and binders differ in number")
            }
            fuzzBody(PreSharedKeyServerHello.self, d, &report)
        case .renegotiationInfo:
            fuzzBody(RenegotiationInfo.self, d, &report)
        case .ecPointFormats:
            if let list = fuzzBody(ECPointFormatList.self, d, &report) {
                fuzzCheck(!list.formats.isEmpty, "empty ec_point_formats accepted")
            }
        default:
            report.mix(UInt64(e.type.rawValue))
        }
    }
}

/// Parses `data` as `T`; if it parses, encoding must give `data` back.
@discardableResult
func fuzzBody<T: ExtensionBody>(_ type: T.Type, _ data: [UInt8], _ report: inout FuzzReport) -> T? {
    do {
        let value = try T(parsing: data)
        fuzzCheck(value.encode() == data, "extension body does not re-encode to its data")
        report.extensions += 1
        return value
    } catch {
        report.mix(UInt64(error.alert.rawValue))
        return nil
    }
}

// MARK: - Helpers

/// The input as an array (the parsers take arrays).
func fuzzCopy(_ input: Span<UInt8>) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(input.count)
    for i in input.indices { bytes.append(input[i]) }
    return bytes
}

/// Traps with `message` unless `condition` holds.
func fuzzCheck(_ condition: Bool, _ message: StaticString, file: StaticString = #file, line: UInt = #line) {
    if !condition { fuzzFail(message, file: file, line: line) }
}

/// Traps with `message`.
func fuzzFail(_ message: StaticString, file: StaticString = #file, line: UInt = #line) -> Never {
    fatalError("fuzz: \(message)", file: file, line: line)
}
