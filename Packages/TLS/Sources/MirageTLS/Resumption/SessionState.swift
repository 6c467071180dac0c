// What a server seals into a ticket: everything it needs to resume a
// session without keeping state (RFC 8446 §4.6.1 for TLS 1.3, RFC 5077 §4
// for TLS 1.2). Only the server reads it back, after SessionTicketKeys
// authenticated it, but it is still parsed with the checked reader: a
// ticket sealed by an older build must fail cleanly, never trap.

/// The contents of a session ticket (server side). TLS 1.3 keeps the
/// resumption PSK, TLS 1.2 the master secret.
struct SessionState: Hashable {
    /// Format of the encoding; a ticket in another format does not decode
    /// (and so resumes nothing: a full handshake follows).
    static let formatVersion: UInt8 = 1
    /// Largest secret: a SHA-384 PSK is 48 bytes, a TLS 1.2 master secret 48.
    static let maximumSecretLength = 64
    /// Largest certificate chain kept (the peer's, DER): a ticket must fit
    /// NewSessionTicket's `ticket<1..2^16-1>` with room for the sealing.
    static let maximumCertificateBytes = 32_768
    /// Most certificates kept in a chain.
    static let maximumCertificates = 8

    /// TLS 1.3 or TLS 1.2.
    var version: ProtocolVersion
    /// The suite of the connection that issued the ticket.
    var suite: CipherSuite
    /// TLS 1.3: the resumption PSK (§4.6.1); TLS 1.2: the master secret.
    var secret: [UInt8]
    /// The ALPN protocol of the original connection.
    var applicationProtocol: String?
    /// The SNI name of the original connection.
    var serverName: String?
    /// The client's certificates of the original connection (DER, leaf first).
    var peerCertificates: [[UInt8]]
    /// ticket_age_add (TLS 1.3 only; 0 for TLS 1.2).
    var ageAdd: UInt32 = 0

    /// True when the state can be encoded within the bounds `init?(decoding:)` accepts.
    var isEncodable: Bool {
        guard !secret.isEmpty, secret.count <= Self.maximumSecretLength,
              peerCertificates.count <= Self.maximumCertificates,
              (applicationProtocol?.utf8.count ?? 0) <= 255, (serverName?.utf8.count ?? 0) <= 255 else { return false }
        var total = 0
        for certificate in peerCertificates {
            guard !certificate.isEmpty else { return false }
            total += certificate.count
        }
        return total <= Self.maximumCertificateBytes
    }

    /// The encoding: format(1) version(2) suite(2) secret<1..255> age_add(4)
    /// alpn<0..255> sni<0..255> certificates<0..2^24-1> of cert<1..2^24-1>
    /// (an empty ALPN or SNI means none: neither may be empty on the wire).
    /// Check `isEncodable` first; out-of-bounds fields are cut to fit and
    /// then fail to decode.
    func encode() -> [UInt8] {
        var out: [UInt8] = []
        out.appendUInt8(Self.formatVersion)
        out.appendUInt16(version.rawValue)
        out.appendUInt16(suite.rawValue)
        out.appendVector8 { $0.append(contentsOf: secret.prefix(255)) }
        out.appendUInt32(ageAdd)
        out.appendVector8 { $0.append(contentsOf: Array((applicationProtocol ?? "").utf8).prefix(255)) }
        out.appendVector8 { $0.append(contentsOf: Array((serverName ?? "").utf8).prefix(255)) }
        out.appendVector24 { out in
            for certificate in peerCertificates.prefix(Self.maximumCertificates) {
                out.appendVector24 { $0.append(contentsOf: certificate.prefix(Self.maximumCertificateBytes)) }
            }
        }
        return out
    }

    /// A state from its fields.
    init(version: ProtocolVersion, suite: CipherSuite, secret: [UInt8], applicationProtocol: String?, serverName: String?,
         peerCertificates: [[UInt8]], ageAdd: UInt32 = 0) {
        self.version = version
        self.suite = suite
        self.secret = secret
        self.applicationProtocol = applicationProtocol
        self.serverName = serverName
        self.peerCertificates = peerCertificates
        self.ageAdd = ageAdd
    }

    /// Decodes `encode()`'s output; nil for another format, a version other
    /// than TLS 1.2/1.3, a suite without a hash, or any bound broken.
    init?(decoding bytes: [UInt8]) {
        do throws(TLSError) {
            var r = ByteReader(bytes)
            guard try r.readUInt8() == Self.formatVersion else { return nil }
            version = ProtocolVersion(rawValue: try r.readUInt16())
            guard version == .tls13 || version == .tls12 else { return nil }
            suite = CipherSuite(rawValue: try r.readUInt16())
            guard suite.hash != nil, suite.version == version else { return nil }
            secret = try r.readVector8()
            guard !secret.isEmpty, secret.count <= Self.maximumSecretLength else { return nil }
            ageAdd = try r.readUInt32()
            let alpn = try r.readVector8()
            applicationProtocol = alpn.isEmpty ? nil : String(decoding: alpn, as: UTF8.self)
            let name = try r.readVector8()
            serverName = name.isEmpty ? nil : String(decoding: name, as: UTF8.self)
            let chainBytes = try r.readVector24()
            guard chainBytes.count <= Self.maximumCertificateBytes + 3 * Self.maximumCertificates else { return nil }
            var chain = ByteReader(chainBytes)
            peerCertificates = []
            // Each entry takes at least 4 bytes, and their number is capped.
            while !chain.isAtEnd {
                let certificate = try chain.readVector24()
                guard !certificate.isEmpty, peerCertificates.count < Self.maximumCertificates else { return nil }
                peerCertificates.append(certificate)
            }
            try r.expectEnd("session state")
        } catch {
            return nil
        }
    }
}
