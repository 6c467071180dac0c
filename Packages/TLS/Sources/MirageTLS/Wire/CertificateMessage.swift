/// One certificate of a Certificate message with its per-certificate
/// extensions (RFC 8446 §4.4.2). Only the X.509 form: raw public keys
/// (RFC 7250) are never negotiated here.
public struct CertificateEntry: Hashable, Sendable {
    /// cert_data: one DER certificate, `opaque cert_data<1..2^24-1>`.
    public var data: [UInt8]
    /// The entry's extensions (status_request, signed_certificate_timestamp, …).
    public var extensions: [Extension]

    /// An entry from its certificate and extensions.
    public init(data: [UInt8], extensions: [Extension] = []) {
        self.data = data
        self.extensions = extensions
    }
}

/// The Certificate handshake message (RFC 8446 §4.4.2); named so it does not
/// clash with X.509 certificate types.
public struct CertificateMessage: HandshakeMessage {
    /// certificate(11)
    public static let handshakeType = HandshakeType.certificate
    /// certificate_request_context: empty from a server; the request's context from a client.
    public var context: [UInt8]
    /// The chain, leaf first. Empty only from a client that has no certificate.
    public var entries: [CertificateEntry]

    /// A Certificate message from its fields.
    public init(context: [UInt8], entries: [CertificateEntry]) {
        self.context = context
        self.entries = entries
    }

    /// Parses the body: context, then `CertificateEntry certificate_list<0..2^24-1>`.
    /// An empty cert_data violates its `<1..2^24-1>` bound: decode error.
    public init(parsing body: [UInt8]) throws(TLSError) {
        var r = ByteReader(body)
        context = try r.readVector8()
        var list = ByteReader(try r.readVector24())
        try r.expectEnd("Certificate")
        var entries: [CertificateEntry] = []
        // Each pass consumes at least 5 bytes, so the loop ends.
        while !list.isAtEnd {
            let data = try list.readVector24()
            guard !data.isEmpty else { throw .decodeError("Certificate entry with empty cert_data") }
            let extensions = try parseExtensions(&list)
            entries.append(CertificateEntry(data: data, extensions: extensions))
        }
        self.entries = entries
    }

    /// The encoded body.
    public func encodeBody() -> [UInt8] {
        var out: [UInt8] = []
        out.appendVector8 { $0.append(contentsOf: context) }
        out.appendVector24 { out in
            for entry in entries {
                out.appendVector24 { $0.append(contentsOf: entry.data) }
                entry.extensions.encode(into: &out)
            }
        }
        return out
    }
}
