import MirageTLS
import Testing

/// One malformed input and the alert its parser must end with.
struct WireTrap: Sendable, CustomTestStringConvertible {
    let name: String
    let alert: AlertDescription
    let parse: @Sendable () throws -> Void
    var testDescription: String { name }

    init(_ name: String, _ alert: AlertDescription, _ parse: @escaping @Sendable () throws -> Void) {
        self.name = name
        self.alert = alert
        self.parse = parse
    }
}

/// An extension list (with its u16 length) holding `extensions`.
func wireExtensionBlock(_ extensions: [(UInt16, [UInt8])]) -> [UInt8] {
    var out: [UInt8] = []
    out.appendVector16 { out in
        for (type, data) in extensions {
            out.appendUInt16(type)
            out.appendVector16 { $0.append(contentsOf: data) }
        }
    }
    return out
}

/// The §3 ClientHello with its extensions replaced by `extensions`.
func wireClientHelloBody(extensions: [Extension]) -> [UInt8] {
    // The fixture parses (WireMessageTests); build from its fields.
    var hello = try! ClientHello(parsing: wireBody(RFC8448.clientHello))
    hello.extensions = extensions
    return hello.encodeBody()
}

let wireX25519Share: [UInt8] = [0x00, 0x1d, 0x00, 0x04, 1, 2, 3, 4]

let wireTraps: [WireTrap] = [
    // Duplicate extensions (RFC 8446 §4.2).
    WireTrap("EncryptedExtensions with supported_groups twice", .illegalParameter) {
        _ = try EncryptedExtensions(parsing: wireExtensionBlock([(10, [0, 2, 0, 0x1d]), (0, []), (10, [0, 2, 0, 0x17])]))
    },
    WireTrap("ClientHello with key_share twice", .illegalParameter) {
        let hello = try ClientHello(parsing: wireBody(RFC8448.clientHello))
        let share = hello.extensions.first(.keyShare)!
        _ = try ClientHello(parsing: wireClientHelloBody(extensions: hello.extensions + [share]))
    },
    WireTrap("Certificate entry with status_request twice", .illegalParameter) {
        _ = try CertificateMessage(parsing: [0, 0, 0, 14, 0, 0, 1, 0x30] + wireExtensionBlock([(5, []), (5, [])]))
    },
    WireTrap("pre_shared_key not last in a ClientHello", .illegalParameter) {
        _ = try ClientHello(parsing: wireClientHelloBody(extensions: [Extension(type: .preSharedKey, data: [0]), Extension(type: .serverName, data: [])]))
    },
    // Lengths that lie.
    WireTrap("extension data longer than the list", .decodeError) {
        _ = try EncryptedExtensions(parsing: [0, 4, 0, 10, 0, 9])
    },
    WireTrap("extension list longer than the body", .decodeError) {
        _ = try EncryptedExtensions(parsing: [0, 9, 0, 10, 0, 0])
    },
    WireTrap("extension list shorter than the body (trailing bytes)", .decodeError) {
        _ = try EncryptedExtensions(parsing: [0, 4, 0, 10, 0, 0, 0xFF])
    },
    WireTrap("extension list cut inside an extension header", .decodeError) {
        _ = try EncryptedExtensions(parsing: [0, 3, 0, 10, 0])
    },
    WireTrap("Certificate list length past the end", .decodeError) {
        _ = try CertificateMessage(parsing: [0, 0, 0, 9, 0, 0, 1, 0x30, 0, 0])
    },
    WireTrap("cert_data length past the list", .decodeError) {
        _ = try CertificateMessage(parsing: [0, 0, 0, 6, 0, 0, 9, 0x30, 0, 0])
    },
    WireTrap("CertificateVerify signature length past the end", .decodeError) {
        _ = try CertificateVerify(parsing: [8, 4, 0, 0x80, 1, 2])
    },
    WireTrap("CertificateVerify with trailing bytes", .decodeError) {
        _ = try CertificateVerify(parsing: [8, 4, 0, 1, 1, 2])
    },
    WireTrap("ClientHello legacy_session_id of 33 bytes", .decodeError) {
        _ = try ClientHello(parsing: [3, 3] + Array(repeating: 0, count: 32) + [33] + Array(repeating: 0, count: 33) + [0, 2, 0x13, 0x01, 1, 0, 0, 0])
    },
    WireTrap("ServerHello legacy_session_id_echo of 33 bytes", .decodeError) {
        _ = try ServerHello(parsing: [3, 3] + Array(repeating: 0, count: 32) + [33] + Array(repeating: 0, count: 33) + [0x13, 0x01, 0, 0, 0])
    },
    WireTrap("ClientHello with an odd-length cipher_suites", .decodeError) {
        _ = try ClientHello(parsing: [3, 3] + Array(repeating: 0, count: 32) + [0, 0, 3, 0x13, 0x01, 0x13, 1, 0, 0, 0])
    },
    WireTrap("key_share entry length past the list", .decodeError) {
        _ = try KeyShareClientHello(parsing: [0, 8, 0, 0x1d, 0, 32, 1, 2, 3, 4])
    },
    WireTrap("ServerHello key_share with trailing bytes", .decodeError) {
        _ = try KeyShareServerHello(parsing: wireX25519Share + [0])
    },
    WireTrap("supported_versions (server) of 3 bytes", .decodeError) {
        _ = try SupportedVersionsServer(parsing: [3, 4, 0])
    },
    WireTrap("HelloRetryRequest key_share of 1 byte", .decodeError) {
        _ = try KeyShareHelloRetryRequest(parsing: [0])
    },
    // Empty where the RFC requires at least one element.
    WireTrap("ClientHello with no cipher suites", .decodeError) {
        _ = try ClientHello(parsing: [3, 3] + Array(repeating: 0, count: 32) + [0, 0, 0, 1, 0, 0, 0])
    },
    WireTrap("ClientHello with no compression methods", .decodeError) {
        _ = try ClientHello(parsing: [3, 3] + Array(repeating: 0, count: 32) + [0, 0, 2, 0x13, 0x01, 0, 0, 0])
    },
    WireTrap("CertificateRequest with no extensions", .decodeError) {
        _ = try CertificateRequest(parsing: [0, 0, 0])
    },
    WireTrap("Certificate entry with empty cert_data", .decodeError) {
        _ = try CertificateMessage(parsing: [0, 0, 0, 5, 0, 0, 0, 0, 0])
    },
    WireTrap("NewSessionTicket with an empty ticket", .decodeError) {
        _ = try NewSessionTicket(parsing: [0, 0, 0, 30, 1, 2, 3, 4, 0, 0, 0, 0, 0])
    },
    WireTrap("empty supported_groups", .decodeError) { _ = try SupportedGroupsList(parsing: [0, 0]) },
    WireTrap("odd-length supported_groups", .decodeError) { _ = try SupportedGroupsList(parsing: [0, 3, 0, 0x1d, 0]) },
    WireTrap("empty signature_algorithms", .decodeError) { _ = try SignatureSchemeList(parsing: [0, 0]) },
    WireTrap("empty supported_versions", .decodeError) { _ = try SupportedVersionsClient(parsing: [0]) },
    WireTrap("empty psk_key_exchange_modes", .decodeError) { _ = try PSKKeyExchangeModes(parsing: [0]) },
    WireTrap("empty cookie", .decodeError) { _ = try Cookie(parsing: [0, 0]) },
    WireTrap("empty ALPN list", .decodeError) { _ = try ProtocolNameList(parsing: [0, 0]) },
    WireTrap("ALPN with an empty protocol name", .decodeError) { _ = try ProtocolNameList(parsing: [0, 4, 2, 0x68, 0x32, 0]) },
    WireTrap("ALPN name length past the list", .decodeError) { _ = try ProtocolNameList(parsing: [0, 3, 3, 0x68, 0x32]) },
    WireTrap("key_share entry with an empty key_exchange", .decodeError) { _ = try KeyShareClientHello(parsing: [0, 4, 0, 0x1d, 0, 0]) },
    WireTrap("empty server_name list", .decodeError) { _ = try ServerNameList(parsing: [0, 0]) },
    WireTrap("server_name with an empty host_name", .decodeError) { _ = try ServerNameList(parsing: [0, 3, 0, 0, 0]) },
    // Values the RFCs forbid.
    WireTrap("key_share offering x25519 twice", .illegalParameter) {
        _ = try KeyShareClientHello(parsing: [0, 16] + wireX25519Share + wireX25519Share)
    },
    WireTrap("server_name with two host_names", .decodeError) {
        _ = try ServerNameList(parsing: [0, 10, 0, 0, 2, 0x61, 0x62, 0, 0, 2, 0x63, 0x64])
    },
    WireTrap("server_name of name_type 1", .decodeError) { _ = try ServerNameList(parsing: [0, 4, 1, 0, 1, 0x61]) },
    WireTrap("server_name with a NUL byte", .decodeError) { _ = try ServerNameList(parsing: [0, 5, 0, 0, 2, 0x61, 0]) },
    WireTrap("server_name with a UTF-8 byte", .decodeError) { _ = try ServerNameList(parsing: [0, 5, 0, 0, 2, 0xC3, 0xA9]) },
    WireTrap("KeyUpdate request_update 2", .illegalParameter) { _ = try KeyUpdate(parsing: [2]) },
    WireTrap("KeyUpdate request_update 255", .illegalParameter) { _ = try KeyUpdate(parsing: [255]) },
    WireTrap("KeyUpdate with two bytes", .decodeError) { _ = try KeyUpdate(parsing: [1, 0]) },
    WireTrap("empty KeyUpdate", .decodeError) { _ = try KeyUpdate(parsing: []) },
    // Reassemblers.
    WireTrap("record of 2^14 + 257 bytes", .recordOverflow) {
        var r = RecordReassembler()
        let header: [UInt8] = [23, 3, 3, 0x41, 0x01]
        r.append(header.span)
        _ = try r.next()
    },
    WireTrap("record of 65 535 bytes", .recordOverflow) {
        var r = RecordReassembler()
        let header: [UInt8] = [22, 3, 3, 0xFF, 0xFF]
        r.append(header.span)
        _ = try r.next()
    },
    WireTrap("handshake message of 2^24 - 1 bytes", .decodeError) {
        var h = HandshakeReassembler()
        h.append([11, 0xFF, 0xFF, 0xFF])
        _ = try h.next()
    },
    WireTrap("handshake message just above the default limit", .decodeError) {
        var h = HandshakeReassembler()
        h.append([1, 0x01, 0x00, 0x01])
        _ = try h.next()
    },
]

@Suite("Wire: traps")
struct WireTrapTests {
    @Test("malformed input ends with the right alert", arguments: wireTraps)
    func trap(_ trap: WireTrap) {
        do {
            try trap.parse()
            Issue.record("parsed without error")
        } catch let error as TLSError {
            #expect(error.alert == trap.alert, "\(error)")
        } catch {
            Issue.record("not a TLSError: \(error)")
        }
    }

    @Test("the limits are the RFC's numbers")
    func limits() {
        #expect(RecordHeader.maximumCiphertextLength == 16_640)
        #expect(RecordHeader.maximumPlaintextLength == 16_384)
        #expect(HandshakeReassembler.defaultMaximumMessageSize == 65_540)
        #expect(ClientHello.maximumSessionIDLength == 32)
    }

    @Test("ByteReader: every read checks what is left")
    func reader() throws {
        var r = ByteReader([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        #expect(try r.readUInt8() == 1)
        #expect(try r.readUInt16() == 0x0203)
        #expect(try r.readUInt24() == 0x040506)
        #expect(try r.readUInt32() == 0x0708_090A)
        #expect(r.isAtEnd)
        #expect(r.remaining == 0)
        try r.expectEnd("x")
        #expect(throws: TLSError.self) { try r.readUInt8() }
        var s = ByteReader([0, 0, 3, 1, 2])
        #expect(throws: TLSError.self) { try s.readVector24() }
        var t = ByteReader([1, 2])
        #expect(throws: TLSError.self) { try t.readBytes(-1) }
        #expect(throws: TLSError.decodeError("trailing bytes in thing")) { try t.expectEnd("thing") }
        #expect(try t.readBytes(2) == [1, 2])
    }

    @Test("writer: vectors get their lengths patched in")
    func writer() {
        var out: [UInt8] = []
        out.appendVector8 { $0.append(contentsOf: [1, 2]) }
        out.appendVector16 { $0.appendUInt32(0x0A0B_0C0D) }
        out.appendVector24 { $0.appendVector8 { _ in } }
        out.appendUInt24(0x010203)
        #expect(out == [2, 1, 2, 0, 4, 0x0A, 0x0B, 0x0C, 0x0D, 0, 0, 1, 0, 1, 2, 3])
    }
}
