import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SwiftASN1
@_spi(FixedExpiryValidationTime) import X509

/// Validates a peer's chain with swift-certificates: path building to
/// `TrustRoots`, RFC 5280 checks (version, validity at the injected clock's
/// time, basic and name constraints), RFC 6125 identity of the leaf for the
/// DNS name or IP literal the client asked for, and the leaf's key usage and
/// extended key usage for its TLS role.
///
/// Names follow swift-certificates' RFC 6125 rules: case-insensitive, a
/// `*` only as the whole left-most label, IP literals against iPAddress
/// entries only, and the subject's commonName only when the leaf has no
/// subjectAltName at all.
///
/// Revocation is not checked: no CRL, no OCSP, no stapled OCSP response.
/// A revoked but otherwise valid certificate is trusted until it expires.
///
/// swift-certificates' verifier is asynchronous; `verify(_:completion:)`
/// runs it in a `Task` and hands the result to `post`, which must run the
/// closure on the driver's loop (e.g. `EventLoop.execute`). Give the loop
/// as `executor` too when the program may block the cooperative pool's
/// threads (a synchronous test running a loop does): the task then runs on
/// the loop's thread and cannot be starved.
///
/// Usage rules applied to the leaf (intermediates and roots are not held to
/// EKU, as browsers and swift-certificates do not):
/// - key usage, when present, must include digitalSignature (RFC 8446
///   §4.4.2.2: TLS 1.3 keys sign the handshake);
/// - extended key usage, when present, must include serverAuth (server
///   certificates) or clientAuth (client certificates); anyExtendedKeyUsage
///   alone does not do, as in OpenSSL (RFC 5280 §4.2.1.12 allows this);
/// - a leaf without extended key usage may be used for any purpose
///   (RFC 5280 §4.2.1.12), so it is accepted for either role.
public final class X509CertificateVerifier: CertificateVerifier {
    /// Presented chains longer than this are refused before path building,
    /// which searches the presented intermediates depth-first (RFC 8446
    /// §4.4.2 sets no bound; real chains have 2–4 certificates).
    public static let maximumChainLength = 10

    /// A `post` that runs the completion at once on the verification task.
    /// For tests and callers without a loop; a driver must hop back to its loop.
    public static let runInline: @Sendable (@escaping @Sendable () -> Void) -> Void = { $0() }

    /// The anchors.
    public let roots: TrustRoots
    private let clock: @Sendable () -> Date
    private let post: @Sendable (@escaping @Sendable () -> Void) -> Void
    private let executor: (any TaskExecutor)?

    /// A verifier trusting `roots`, checking validity at `clock()` (read when
    /// `verify` is called), answering through `post`; its task prefers
    /// `executor` (nil: the global pool).
    public init(
        roots: TrustRoots,
        clock: @escaping @Sendable () -> Date = { Date() },
        post: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void = X509CertificateVerifier.runInline,
        executor: (any TaskExecutor)? = nil
    ) {
        self.roots = roots
        self.clock = clock
        self.post = post
        self.executor = executor
    }

    /// Checks `request` on a task and calls `completion` once, through `post`.
    public func verify(_ request: CertificateVerificationRequest, completion: @escaping (CertificateVerificationResult) -> Void) {
        let box = CompletionBox(completion)
        let roots = self.roots
        let now = clock()
        let post = self.post
        Task(executorPreference: executor) {
            await X509CertificateVerifier.answer(request, roots: roots, at: now, post: post, box: box)
        }
    }

    /// The task's body: evaluate, then post the answer back.
    private static func answer(
        _ request: CertificateVerificationRequest, roots: TrustRoots, at now: Date,
        post: @Sendable (@escaping @Sendable () -> Void) -> Void, box: CompletionBox
    ) async {
        let result = await evaluate(request, roots: roots, at: now)
        post { box.completion(result) }
    }

    /// The same check, awaited (no `post`): for async callers and tests.
    public func evaluate(_ request: CertificateVerificationRequest) async -> CertificateVerificationResult {
        await Self.evaluate(request, roots: roots, at: clock())
    }

    /// The whole check at time `now`.
    static func evaluate(_ request: CertificateVerificationRequest, roots: TrustRoots, at now: Date) async -> CertificateVerificationResult {
        guard !request.chain.isEmpty else { return .rejected(.emptyChain) }
        guard request.chain.count <= maximumChainLength else {
            return .rejected(.other("chain of \(request.chain.count) certificates exceeds the limit of \(maximumChainLength)"))
        }
        var certificates: [Certificate] = []
        for (index, der) in request.chain.enumerated() {
            do {
                certificates.append(try Certificate(derEncoded: der))
            } catch {
                return .rejected(.malformed("certificate \(index) of the chain does not parse: \(error)"))
            }
        }
        let leaf = certificates[0]
        let identity = request.serverName.map(ServerIdentity.init)
        let usage = LeafUsagePolicy(peerIsServer: request.peerIsServer, claimsSubjectAlternativeName: identity == nil)
        var verifier = Verifier(rootCertificates: roots.store) {
            RFC5280Policy(fixedExpiryValidationTime: now)
            usage
            if let identity {
                ServerIdentityPolicy(serverHostname: identity.hostname, serverIP: identity.address)
            }
        }
        let outcome = await verifier.validate(leaf: leaf, intermediates: CertificateStore(certificates.dropFirst()))
        switch outcome {
        case .validCertificate:
            return .trusted
        case .couldNotValidate(let failures):
            if let first = failures.first {
                return .rejected(classify(first, identity: identity, usage: usage, at: now))
            }
            // No chain reached a root, or the leaf was refused before path building.
            let handled = Set(verifier.policy.verifyingCriticalExtensions)
            if let unhandled = leaf.extensions.first(where: { $0.critical && !handled.contains($0.oid) }) {
                return .rejected(.other("leaf has an unsupported critical extension \(unhandled.oid)"))
            }
            return .rejected(.untrustedRoot(issuer: topIssuer(certificates)))
        }
    }

    /// Picks the precise cause of a chain that reached a root but failed a
    /// policy, by re-checking it one rule at a time (the verifier's reasons
    /// are free text): validity first, then identity, then usage.
    static func classify(
        _ failure: CertificateValidationResult.PolicyFailure,
        identity: ServerIdentity?,
        usage: LeafUsagePolicy,
        at now: Date
    ) -> CertificateFailure {
        for certificate in failure.chain {
            if now > certificate.notValidAfter { return .expired(notAfter: timestamp(certificate.notValidAfter)) }
            if now < certificate.notValidBefore { return .notYetValid(notBefore: timestamp(certificate.notValidBefore)) }
        }
        if let identity {
            var policy = ServerIdentityPolicy(serverHostname: identity.hostname, serverIP: identity.address)
            if case .failsToMeetPolicy = policy.chainMeetsPolicyRequirements(chain: failure.chain) {
                return .hostnameMismatch(expected: identity.expected)
            }
        }
        if let problem = usage.check(failure.chain.leaf) { return problem }
        return .other(failure.policyFailureReason.description)
    }

    /// The issuer no trusted path was found for: follow the presented chain
    /// from the leaf by issuer name as far as it goes (bounded by its length).
    static func topIssuer(_ chain: [Certificate]) -> String {
        guard var current = chain.first else { return "" }
        for _ in chain.indices {
            guard current.issuer != current.subject,
                  let parent = chain.first(where: { $0.subject == current.issuer && $0 != current })
            else { break }
            current = parent
        }
        return String(describing: current.issuer)
    }

    /// RFC 3339 UTC, e.g. `2025-01-31T12:00:00Z`.
    static func timestamp(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }
}

/// The name a client expects, as ServerIdentityPolicy wants it: IP literals
/// (RFC 6125 §6.2.1: matched against iPAddress SANs only) apart from DNS names.
struct ServerIdentity: Sendable {
    /// The name as the request gave it, for the failure message.
    let expected: String
    /// A DNS name, or nil for an IP literal.
    let hostname: String?
    /// An IPv4 or IPv6 literal (brackets removed), or nil.
    let address: String?

    init(_ name: String) {
        expected = name
        if ipAddressBytes(name) != nil {
            hostname = nil
            address = unbracketed(name)
        } else {
            hostname = name
            address = nil
        }
    }
}

/// An IPv6 literal without its URI brackets (RFC 3986 §3.2.2); other text unchanged.
func unbracketed(_ literal: String) -> String {
    if literal.hasPrefix("["), literal.hasSuffix("]"), literal.count >= 2 { return String(literal.dropFirst().dropLast()) }
    return literal
}

/// The 4 or 16 network-order bytes of an IPv4 or IPv6 literal (brackets
/// allowed around IPv6), nil when the text is neither.
func ipAddressBytes(_ literal: String) -> [UInt8]? {
    let text = unbracketed(literal)
    var v4 = in_addr()
    if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
    var v6 = in6_addr()
    if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
    return nil
}

/// Key usage and extended key usage of the leaf for its TLS role.
struct LeafUsagePolicy: VerifierPolicy {
    /// True: the leaf is a server's (serverAuth); false: a client's (clientAuth).
    let peerIsServer: Bool
    /// keyUsage and extendedKeyUsage are enforced here, so a leaf marking them
    /// critical is acceptable; without an identity check (client certificates),
    /// a critical subjectAltName (empty subject, RFC 5280 §4.2.1.6) is too.
    let verifyingCriticalExtensions: [ASN1ObjectIdentifier]

    init(peerIsServer: Bool, claimsSubjectAlternativeName: Bool) {
        self.peerIsServer = peerIsServer
        var handled: [ASN1ObjectIdentifier] = [.X509ExtensionID.keyUsage, .X509ExtensionID.extendedKeyUsage]
        if claimsSubjectAlternativeName { handled.append(.X509ExtensionID.subjectAlternativeName) }
        self.verifyingCriticalExtensions = handled
    }

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) -> PolicyEvaluationResult {
        if let problem = check(chain.leaf) { return .failsToMeetPolicy(reason: "\(problem)") }
        return .meetsPolicy
    }

    /// The leaf's usage problem, nil when it may be used for this role.
    func check(_ leaf: Certificate) -> CertificateFailure? {
        do {
            // RFC 8446 §4.4.2.2: digitalSignature MUST be set when key usage is present.
            if let keyUsage = try leaf.extensions.keyUsage, !keyUsage.digitalSignature {
                return .badKeyUsage("key usage \(keyUsage) lacks digitalSignature")
            }
        } catch {
            return .malformed("key usage extension does not parse: \(error)")
        }
        do {
            // RFC 5280 §4.2.1.12: when present, the certificate MUST only be used for a listed purpose.
            if let extendedKeyUsage = try leaf.extensions.extendedKeyUsage {
                let wanted: ExtendedKeyUsage.Usage = peerIsServer ? .serverAuth : .clientAuth
                if !extendedKeyUsage.contains(wanted) {
                    return .missingExtendedKeyUsage(
                        "extended key usage \(extendedKeyUsage) lacks \(peerIsServer ? "serverAuth" : "clientAuth")"
                    )
                }
            }
        } catch {
            return .malformed("extended key usage extension does not parse: \(error)")
        }
        return nil
    }
}

/// Carries the engine's completion (not Sendable: it touches the connection)
/// across the verification task. Safe because it is only called inside
/// `post`, i.e. back on the driver's loop, and exactly once.
private final class CompletionBox: @unchecked Sendable {
    let completion: (CertificateVerificationResult) -> Void
    init(_ completion: @escaping (CertificateVerificationResult) -> Void) { self.completion = completion }
}
