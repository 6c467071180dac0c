import Foundation
import X509

/// The certificates a verifier trusts as anchors: a value the caller
/// provides (a test CA, a private CA, or the system bundle).
public struct TrustRoots: Sendable {
    /// The path of the system bundle on Debian, Ubuntu, Alpine and Arch
    /// (one PEM file of every trusted root, kept by ca-certificates).
    public static let systemBundlePath = "/etc/ssl/certs/ca-certificates.crt"

    /// The parsed roots.
    public let certificates: [Certificate]
    /// Entries skipped because swift-certificates could not parse them
    /// (only `init(certificates:)` and `system()` skip; a PEM bundle throws).
    public let skippedCount: Int
    /// The roots indexed by subject, as the chain builder wants them.
    let store: CertificateStore

    /// Roots from DER certificates. Entries that do not parse are skipped and
    /// counted in `skippedCount` (this initialiser cannot throw by contract).
    public init(certificates: [[UInt8]]) {
        var parsed: [Certificate] = []
        var skipped = 0
        for der in certificates {
            if let certificate = try? Certificate(derEncoded: der) {
                parsed.append(certificate)
            } else {
                skipped += 1
            }
        }
        self.init(parsed: parsed, skipped: skipped)
    }

    /// Roots from swift-certificates values.
    public init(_ certificates: [Certificate]) {
        self.init(parsed: certificates, skipped: 0)
    }

    /// Roots from a PEM bundle (every `CERTIFICATE` block). Throws
    /// `.configuration` when the bundle has no certificate or one of them
    /// does not parse: a hand-made bundle with a broken entry is a mistake.
    public init(pemBundle: String) throws(TLSError) {
        var parsed: [Certificate] = []
        for (index, der) in try PEM.certificates(pemBundle).enumerated() {
            do {
                parsed.append(try Certificate(derEncoded: der))
            } catch {
                throw .configuration("certificate \(index) of the PEM bundle does not parse: \(error)")
            }
        }
        self.init(parsed: parsed, skipped: 0)
    }

    /// The system's roots from `systemBundlePath`. Throws `.configuration`
    /// when the file cannot be read or holds no certificate; entries
    /// swift-certificates cannot parse are skipped (counted in `skippedCount`)
    /// so one odd root does not disable TLS.
    public static func system() throws(TLSError) -> TrustRoots {
        try load(bundleAt: systemBundlePath)
    }

    /// Roots from the PEM bundle file at `path`, tolerant like `system()`.
    public static func load(bundleAt path: String) throws(TLSError) -> TrustRoots {
        let roots = TrustRoots(certificates: try PEM.certificates(readText(path)))
        guard !roots.certificates.isEmpty else {
            throw .configuration("no certificate of \(path) parses")
        }
        return roots
    }

    /// The number of roots.
    public var count: Int { certificates.count }

    private init(parsed: [Certificate], skipped: Int) {
        self.certificates = parsed
        self.skippedCount = skipped
        self.store = CertificateStore(parsed)
    }
}
