// The TLS 1.2 handshake messages (RFC 5246 §7.4, RFC 8422 §5, RFC 5077 §3.3)
// and extension bodies (RFC 5746, RFC 8422 §5.1.2): byte layouts written out
// by hand from the RFCs' structures, round trips, and a trap table in which
// every malformed body must end with its alert and nothing may trap.

import MirageTLS
import Testing

/// A TLS 1.2 message body, the bytes it must encode to, and its name.
struct Wire12Vector: Sendable, CustomTestStringConvertible {
    let name: String
    let type: HandshakeType
    let body: [UInt8]
    let check: @Sendable ([UInt8]) throws -> [UInt8]
    var testDescription: String { name }
}

/// Parses `body` as `M` and returns its re-encoded body.
func wire12Reencode<M: HandshakeMessage>(_ type: M.Type) -> @Sendable ([UInt8]) throws -> [UInt8] {
    { body in try M(parsing: body).encodeBody() }
}

let wire12X25519Point: [UInt8] = Array(0..<32)

let wire12Vectors: [Wire12Vector] = [
    Wire12Vector(name: "HelloRequest", type: .helloRequest, body: [], check: wire12Reencode(HelloRequest.self)),
    Wire12Vector(name: "ServerHelloDone", type: .serverHelloDone, body: [], check: wire12Reencode(ServerHelloDone.self)),
    Wire12Vector(name: "ServerKeyExchange x25519 rsa_pkcs1_sha256", type: .serverKeyExchange,
                 body: [3, 0x00, 0x1D, 32] + wire12X25519Point + [0x04, 0x01, 0x00, 0x03, 0xAA, 0xBB, 0xCC],
                 check: wire12Reencode(ServerKeyExchangeECDHE.self)),
    Wire12Vector(name: "ServerKeyExchange with an empty signature", type: .serverKeyExchange,
                 body: [3, 0x00, 0x17, 1, 0x04, 0x04, 0x03, 0x00, 0x00],
                 check: wire12Reencode(ServerKeyExchangeECDHE.self)),
    Wire12Vector(name: "ClientKeyExchange", type: .clientKeyExchange, body: [32] + wire12X25519Point,
                 check: wire12Reencode(ClientKeyExchangeECDHE.self)),
    Wire12Vector(name: "CertificateRequest without authorities", type: .certificateRequest,
                 body: [2, 1, 64, 0, 4, 0x04, 0x03, 0x08, 0x04, 0, 0],
                 check: wire12Reencode(CertificateRequest12.self)),
    Wire12Vector(name: "CertificateRequest with two authorities", type: .certificateRequest,
                 body: [1, 64, 0, 2, 0x04, 0x03, 0, 9, 0, 2, 0x30, 0x00, 0, 3, 0x30, 0x01, 0x05],
                 check: wire12Reencode(CertificateRequest12.self)),
    Wire12Vector(name: "Certificate with two certificates", type: .certificate,
                 body: [0, 0, 11, 0, 0, 3, 0x30, 0x01, 0x00, 0, 0, 2, 0x30, 0x00],
                 check: wire12Reencode(CertificateMessage12.self)),
    Wire12Vector(name: "Certificate empty (a client without one)", type: .certificate, body: [0, 0, 0],
                 check: wire12Reencode(CertificateMessage12.self)),
    Wire12Vector(name: "NewSessionTicket", type: .newSessionTicket, body: [0, 0, 0x1C, 0x20, 0, 3, 7, 8, 9],
                 check: wire12Reencode(NewSessionTicket12.self)),
    Wire12Vector(name: "NewSessionTicket with an empty ticket", type: .newSessionTicket, body: [0, 0, 0, 0, 0, 0],
                 check: wire12Reencode(NewSessionTicket12.self)),
]

/// Malformed TLS 1.2 bodies and the alert each must end with.
let wire12Traps: [WireTrap] = [
    // Empty messages with a body (RFC 5246 §7.4.1.1, §7.4.5: `struct { }`).
    WireTrap("ServerHelloDone with a body", .decodeError) { _ = try ServerHelloDone(parsing: [0]) },
    WireTrap("HelloRequest with a body", .decodeError) { _ = try HelloRequest(parsing: [0, 0, 0]) },
    // ServerKeyExchange (RFC 8422 §5.4).
    WireTrap("ServerKeyExchange empty", .decodeError) { _ = try ServerKeyExchangeECDHE(parsing: []) },
    WireTrap("ServerKeyExchange explicit_prime curve", .illegalParameter) {
        _ = try ServerKeyExchangeECDHE(parsing: [1, 0x00, 0x1D, 1, 4, 4, 1, 0, 0])
    },
    WireTrap("ServerKeyExchange explicit_char2 curve", .illegalParameter) {
        _ = try ServerKeyExchangeECDHE(parsing: [2, 0x00, 0x1D, 1, 4, 4, 1, 0, 0])
    },
    WireTrap("ServerKeyExchange curve_type 0", .illegalParameter) { _ = try ServerKeyExchangeECDHE(parsing: [0]) },
    WireTrap("ServerKeyExchange curve_type 255", .illegalParameter) { _ = try ServerKeyExchangeECDHE(parsing: [255, 0, 0x1D]) },
    WireTrap("ServerKeyExchange empty point", .decodeError) {
        _ = try ServerKeyExchangeECDHE(parsing: [3, 0x00, 0x1D, 0, 4, 1, 0, 0])
    },
    WireTrap("ServerKeyExchange point longer than the body", .decodeError) {
        _ = try ServerKeyExchangeECDHE(parsing: [3, 0x00, 0x1D, 200, 1, 2, 3])
    },
    WireTrap("ServerKeyExchange truncated in the group", .decodeError) { _ = try ServerKeyExchangeECDHE(parsing: [3, 0x00]) },
    WireTrap("ServerKeyExchange without a signature", .decodeError) {
        _ = try ServerKeyExchangeECDHE(parsing: [3, 0x00, 0x1D, 1, 9])
    },
    WireTrap("ServerKeyExchange truncated in the scheme", .decodeError) {
        _ = try ServerKeyExchangeECDHE(parsing: [3, 0x00, 0x1D, 1, 9, 4])
    },
    WireTrap("ServerKeyExchange signature longer than the body", .decodeError) {
        _ = try ServerKeyExchangeECDHE(parsing: [3, 0x00, 0x1D, 1, 9, 4, 1, 0xFF, 0xFF, 1])
    },
    WireTrap("ServerKeyExchange trailing byte", .decodeError) {
        _ = try ServerKeyExchangeECDHE(parsing: [3, 0x00, 0x1D, 1, 9, 4, 1, 0, 1, 7, 0])
    },
    // ClientKeyExchange (RFC 8422 §5.7).
    WireTrap("ClientKeyExchange empty", .decodeError) { _ = try ClientKeyExchangeECDHE(parsing: []) },
    WireTrap("ClientKeyExchange empty point", .decodeError) { _ = try ClientKeyExchangeECDHE(parsing: [0]) },
    WireTrap("ClientKeyExchange point longer than the body", .decodeError) { _ = try ClientKeyExchangeECDHE(parsing: [5, 1, 2]) },
    WireTrap("ClientKeyExchange trailing byte", .decodeError) { _ = try ClientKeyExchangeECDHE(parsing: [1, 4, 0]) },
    // CertificateRequest (RFC 5246 §7.4.4).
    WireTrap("CertificateRequest empty", .decodeError) { _ = try CertificateRequest12(parsing: []) },
    WireTrap("CertificateRequest no certificate types", .decodeError) {
        _ = try CertificateRequest12(parsing: [0, 0, 2, 4, 3, 0, 0])
    },
    WireTrap("CertificateRequest no schemes", .decodeError) { _ = try CertificateRequest12(parsing: [1, 64, 0, 0, 0, 0]) },
    WireTrap("CertificateRequest odd scheme list", .decodeError) {
        _ = try CertificateRequest12(parsing: [1, 64, 0, 3, 4, 3, 8, 0, 0])
    },
    WireTrap("CertificateRequest types longer than the body", .decodeError) { _ = try CertificateRequest12(parsing: [9, 64]) },
    WireTrap("CertificateRequest without authorities", .decodeError) { _ = try CertificateRequest12(parsing: [1, 64, 0, 2, 4, 3]) },
    WireTrap("CertificateRequest empty DistinguishedName", .decodeError) {
        _ = try CertificateRequest12(parsing: [1, 64, 0, 2, 4, 3, 0, 2, 0, 0])
    },
    WireTrap("CertificateRequest DistinguishedName longer than its list", .decodeError) {
        _ = try CertificateRequest12(parsing: [1, 64, 0, 2, 4, 3, 0, 3, 0, 5, 0x30])
    },
    WireTrap("CertificateRequest authorities list longer than the body", .decodeError) {
        _ = try CertificateRequest12(parsing: [1, 64, 0, 2, 4, 3, 0xFF, 0xFF, 0, 1, 0x30])
    },
    WireTrap("CertificateRequest trailing byte", .decodeError) {
        _ = try CertificateRequest12(parsing: [1, 64, 0, 2, 4, 3, 0, 0, 9])
    },
    // Certificate (RFC 5246 §7.4.2).
    WireTrap("Certificate empty body", .decodeError) { _ = try CertificateMessage12(parsing: []) },
    WireTrap("Certificate list longer than the body", .decodeError) { _ = try CertificateMessage12(parsing: [0, 0, 9, 0, 0, 1, 0x30]) },
    WireTrap("Certificate empty ASN.1Cert", .decodeError) { _ = try CertificateMessage12(parsing: [0, 0, 3, 0, 0, 0]) },
    WireTrap("Certificate entry longer than the list", .decodeError) {
        _ = try CertificateMessage12(parsing: [0, 0, 4, 0, 0, 5, 0x30])
    },
    WireTrap("Certificate entry length truncated", .decodeError) { _ = try CertificateMessage12(parsing: [0, 0, 2, 0, 0]) },
    WireTrap("Certificate trailing byte", .decodeError) { _ = try CertificateMessage12(parsing: [0, 0, 0, 0]) },
    WireTrap("Certificate huge lying lengths", .decodeError) {
        _ = try CertificateMessage12(parsing: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
    },
    // NewSessionTicket (RFC 5077 §3.3).
    WireTrap("NewSessionTicket empty", .decodeError) { _ = try NewSessionTicket12(parsing: []) },
    WireTrap("NewSessionTicket truncated hint", .decodeError) { _ = try NewSessionTicket12(parsing: [0, 0, 1]) },
    WireTrap("NewSessionTicket without a ticket vector", .decodeError) { _ = try NewSessionTicket12(parsing: [0, 0, 1, 0]) },
    WireTrap("NewSessionTicket ticket longer than the body", .decodeError) {
        _ = try NewSessionTicket12(parsing: [0, 0, 1, 0, 0, 5, 1])
    },
    WireTrap("NewSessionTicket trailing byte", .decodeError) { _ = try NewSessionTicket12(parsing: [0, 0, 1, 0, 0, 1, 1, 2]) },
    // Extension bodies (RFC 5746 §3.2, RFC 8422 §5.1.2).
    WireTrap("renegotiation_info empty data", .decodeError) { _ = try RenegotiationInfo(parsing: []) },
    WireTrap("renegotiation_info longer than its data", .decodeError) { _ = try RenegotiationInfo(parsing: [12, 1, 2]) },
    WireTrap("renegotiation_info trailing byte", .decodeError) { _ = try RenegotiationInfo(parsing: [0, 0]) },
    WireTrap("ec_point_formats empty list", .decodeError) { _ = try ECPointFormatList(parsing: [0]) },
    WireTrap("ec_point_formats empty data", .decodeError) { _ = try ECPointFormatList(parsing: []) },
    WireTrap("ec_point_formats longer than its data", .decodeError) { _ = try ECPointFormatList(parsing: [3, 0]) },
    WireTrap("ec_point_formats trailing byte", .decodeError) { _ = try ECPointFormatList(parsing: [1, 0, 1]) },
]

@Suite("Wire12: TLS 1.2 messages")
struct Wire12MessageTests {
    @Test("each TLS 1.2 message parses and re-encodes byte for byte", arguments: wire12Vectors)
    func roundTrip(_ vector: Wire12Vector) throws {
        #expect(try vector.check(vector.body) == vector.body)
    }

    @Test("malformed TLS 1.2 input ends with the right alert", arguments: wire12Traps)
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

    @Test("every prefix and every one-byte change of each vector parses or throws, never traps",
          arguments: wire12Vectors)
    func truncationsAndMutations(_ vector: Wire12Vector) {
        var outcomes = 0
        for length in 0..<vector.body.count {
            outcomes += (try? vector.check(Array(vector.body.prefix(length)))) == nil ? 1 : 0
        }
        // No strict prefix of a non-empty message re-encodes to itself: each lacks a required part.
        #expect(outcomes == vector.body.count)
        for index in vector.body.indices {
            for delta: UInt8 in [1, 0x80, 0xFF] {
                var mutated = vector.body
                mutated[index] &+= delta
                if let encoded = try? vector.check(mutated) { #expect(encoded == mutated) }
            }
        }
    }

    @Test("the handshake types and no_renegotiation have the registry's values")
    func codes() {
        #expect(HandshakeType.helloRequest.rawValue == 0)
        #expect(HandshakeType.serverKeyExchange.rawValue == 12)
        #expect(HandshakeType.serverHelloDone.rawValue == 14)
        #expect(HandshakeType.clientKeyExchange.rawValue == 16)
        #expect(NewSessionTicket12.handshakeType == .newSessionTicket)
        #expect(CertificateRequest12.handshakeType == .certificateRequest)
        #expect(CertificateMessage12.handshakeType == .certificate)
        #expect(AlertDescription.noRenegotiation.rawValue == 100)
        #expect(CertificateRequest12.rsaSign == 1 && CertificateRequest12.ecdsaSign == 64)
    }

    @Test("the downgrade sentinels are \"DOWNGRD\" then 01 or 00 (RFC 8446 §4.1.3)")
    func sentinels() {
        #expect(ServerHello.downgradeTLS12Sentinel == Array("DOWNGRD".utf8) + [1])
        #expect(ServerHello.downgradeTLS11Sentinel == Array("DOWNGRD".utf8) + [0])
    }

    @Test("ServerKeyExchange: fields, params and the signed content")
    func serverKeyExchange() throws {
        let body: [UInt8] = [3, 0x00, 0x1D, 32] + wire12X25519Point + [0x08, 0x04, 0x00, 0x02, 0xAB, 0xCD]
        let message = try ServerKeyExchangeECDHE(parsing: body)
        #expect(message.group == .x25519)
        #expect(message.publicKey == wire12X25519Point)
        #expect(message.scheme == .rsaPSSRSAESHA256)
        #expect(message.signature == [0xAB, 0xCD])
        // ServerECDHParams: curve_type, named_curve, point<1..255> (RFC 8422 §5.4).
        #expect(message.params == Array(body.prefix(4 + 32)))
        let built = ServerKeyExchangeECDHE(group: .x25519, publicKey: wire12X25519Point, scheme: .rsaPSSRSAESHA256,
                                           signature: [0xAB, 0xCD])
        #expect(built == message)
        #expect(built.encode() == [12, 0, 0, UInt8(body.count)] + body)
        // client_random + server_random + params, in that order.
        let client = [UInt8](repeating: 0xC1, count: 32), server = [UInt8](repeating: 0x5E, count: 32)
        #expect(ServerKeyExchangeECDHE.signedContent(clientRandom: client, serverRandom: server, params: message.params)
                == client + server + message.params)
    }

    @Test("ClientKeyExchange, CertificateRequest, Certificate, NewSessionTicket: fields")
    func fields() throws {
        #expect(try ClientKeyExchangeECDHE(parsing: [2, 7, 9]).publicKey == [7, 9])
        #expect(ClientKeyExchangeECDHE(publicKey: [4, 1]).encode() == [16, 0, 0, 3, 2, 4, 1])

        let request = try CertificateRequest12(parsing: [1, 64, 0, 2, 0x04, 0x03, 0, 9, 0, 2, 0x30, 0x00, 0, 3, 0x30, 0x01, 0x05])
        #expect(request.certificateTypes == [CertificateRequest12.ecdsaSign])
        #expect(request.schemes == [.ecdsaSecp256r1SHA256])
        #expect(request.authorities == [[0x30, 0x00], [0x30, 0x01, 0x05]])
        let built = CertificateRequest12(certificateTypes: [1, 64], schemes: [.rsaPKCS1SHA256, .ed25519])
        #expect(built.encodeBody() == [2, 1, 64, 0, 4, 0x04, 0x01, 0x08, 0x07, 0, 0])

        let chain = try CertificateMessage12(parsing: [0, 0, 11, 0, 0, 3, 0x30, 0x01, 0x00, 0, 0, 2, 0x30, 0x00])
        #expect(chain.chain == [[0x30, 0x01, 0x00], [0x30, 0x00]])
        #expect(CertificateMessage12(chain: []).encode() == [11, 0, 0, 3, 0, 0, 0])

        let ticket = try NewSessionTicket12(parsing: [0, 0, 0x1C, 0x20, 0, 3, 7, 8, 9])
        #expect(ticket.lifetimeHint == 7200)
        #expect(ticket.ticket == [7, 8, 9])
        #expect(NewSessionTicket12(lifetimeHint: 1, ticket: [5]).encode() == [4, 0, 0, 7, 0, 0, 0, 1, 0, 1, 5])
        #expect(HelloRequest().encode() == [0, 0, 0, 0])
        #expect(ServerHelloDone().encode() == [14, 0, 0, 0])
    }

    @Test("a 255-byte point is the longest; lists at their limits parse")
    func limits() throws {
        let point = [UInt8](repeating: 4, count: ServerKeyExchangeECDHE.maximumPointLength)
        let message = ServerKeyExchangeECDHE(group: .secp256r1, publicKey: point, scheme: .ecdsaSecp256r1SHA256, signature: [])
        #expect(try ServerKeyExchangeECDHE(parsing: message.encodeBody()) == message)
        #expect(try ClientKeyExchangeECDHE(parsing: ClientKeyExchangeECDHE(publicKey: point).encodeBody()).publicKey == point)
        let formats = [UInt8](repeating: 0, count: 255)
        #expect(try ECPointFormatList(parsing: [255] + formats).formats == formats)
    }

    @Test("renegotiation_info and ec_point_formats bodies")
    func extensionBodies() throws {
        #expect(try RenegotiationInfo(parsing: [0]).renegotiatedConnection.isEmpty)
        #expect(RenegotiationInfo().encode() == [0])
        let verifyData = [UInt8](repeating: 9, count: 24)
        #expect(try RenegotiationInfo(parsing: [24] + verifyData).renegotiatedConnection == verifyData)
        #expect(RenegotiationInfo(renegotiatedConnection: verifyData).encode() == [24] + verifyData)
        #expect(try ECPointFormatList(parsing: [3, 0, 1, 2]).formats == [0, 1, 2])
        #expect(ECPointFormatList().encode() == [1, ECPointFormatList.uncompressed])
        let extensions = [Extension(type: .renegotiationInfo, data: [0]), Extension(type: .ecPointFormats, data: [1, 0])]
        #expect(try extensions.parse(.renegotiationInfo, as: RenegotiationInfo.self) == RenegotiationInfo())
        #expect(try extensions.parse(.ecPointFormats, as: ECPointFormatList.self)?.formats == [0])
    }

    @Test("TLS 1.2 messages come through the handshake reassembler in any chunking")
    func reassembly() throws {
        let stream = ServerKeyExchangeECDHE(group: .x25519, publicKey: wire12X25519Point, scheme: .ed25519,
                                            signature: [UInt8](repeating: 1, count: 64)).encode()
            + CertificateRequest12(certificateTypes: [64], schemes: [.ed25519]).encode()
            + ServerHelloDone().encode()
        for step in [1, 3, 7, stream.count] {
            var reassembler = HandshakeReassembler()
            var types: [HandshakeType] = []
            var offset = 0
            while offset < stream.count {
                reassembler.append(Array(stream[offset..<min(stream.count, offset + step)]))
                offset += step
                while let message = try reassembler.next() { types.append(message.type) }
            }
            #expect(types == [.serverKeyExchange, .certificateRequest, .serverHelloDone], "step \(step)")
        }
    }
}
