import Crypto
import Foundation
import MirageTLSCrypto
import Synchronization
import Testing
import X509

@Suite("X509 certificate verifier")
struct X509VerifierTests {
    let pki: TestPKI
    init() throws { pki = try TestPKI() }

    func check(_ chain: [[UInt8]], name: String? = "www.example.com", server: Bool = true,
               roots: [TestPKI.Authority]? = nil) async -> CertificateVerificationResult {
        await pki.verifier(roots: roots).evaluate(
            CertificateVerificationRequest(chain: chain, serverName: name, peerIsServer: server))
    }

    @Test("leaf + intermediate to a trusted root is trusted")
    func validChain() async throws {
        let leaf = try TestPKI.leaf(issuer: pki.intermediate)
        #expect(await check([leaf, pki.intermediate.der]) == .trusted)
    }

    @Test("intermediates sent out of order (and an unrelated extra) still chain")
    func outOfOrder() async throws {
        let second = try TestPKI.intermediate("Second Intermediate", issuer: pki.intermediate)
        let leaf = try TestPKI.leaf(issuer: second)
        let stray = try TestPKI.root("Stray")
        #expect(await check([leaf, pki.intermediate.der, second.der]) == .trusted)
        #expect(await check([leaf, stray.der, pki.intermediate.der, second.der]) == .trusted)
    }

    @Test("a leaf whose notAfter has passed is expired, naming the time")
    func expiredLeaf() async throws {
        let leaf = try TestPKI.leaf(issuer: pki.intermediate, notAfter: TestPKI.past)
        #expect(await check([leaf, pki.intermediate.der]) == .rejected(.expired(notAfter: "2025-06-01T00:00:00Z")))
    }

    @Test("an expired intermediate is reported as expired too")
    func expiredIntermediate() async throws {
        let old = try TestPKI.intermediate("Old Intermediate", issuer: pki.root, notAfter: TestPKI.past)
        let leaf = try TestPKI.leaf(issuer: old)
        #expect(await check([leaf, old.der]) == .rejected(.expired(notAfter: "2025-06-01T00:00:00Z")))
    }

    @Test("a leaf whose notBefore is ahead is not yet valid, naming the time")
    func notYetValid() async throws {
        let leaf = try TestPKI.leaf(issuer: pki.intermediate, notBefore: TestPKI.future)
        #expect(await check([leaf, pki.intermediate.der]) == .rejected(.notYetValid(notBefore: "2025-07-01T00:00:00Z")))
    }

    @Test("a name the leaf does not carry is a hostname mismatch")
    func wrongHost() async throws {
        let leaf = try TestPKI.leaf(issuer: pki.intermediate)
        #expect(await check([leaf, pki.intermediate.der], name: "mail.example.com")
            == .rejected(.hostnameMismatch(expected: "mail.example.com")))
        // Names compare case-insensitively (RFC 6125 §6.4.1).
        #expect(await check([leaf, pki.intermediate.der], name: "WWW.Example.COM") == .trusted)
        // A fully qualified name with its root dot is the same name.
        #expect(await check([leaf, pki.intermediate.der], name: "www.example.com.") == .trusted)
    }

    @Test("IP literals match iPAddress SANs only", arguments: [
        ("192.0.2.7", true), ("192.0.2.8", false), ("2001:db8::1", true), ("[2001:db8::1]", true),
        ("2001:db8::2", false), ("www.example.com", true), ("198.51.100.1", false),
    ])
    func ipAddresses(name: String, matches: Bool) async throws {
        let v6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1]
        let leaf = try TestPKI.leaf(issuer: pki.intermediate, ipAddresses: [[192, 0, 2, 7], v6])
        let result = await check([leaf, pki.intermediate.der], name: name)
        #expect(result == (matches ? .trusted : .rejected(.hostnameMismatch(expected: name))))
    }

    @Test("a DNS SAN spelling an address does not match that address")
    func dnsNameIsNotAnAddress() async throws {
        let leaf = try TestPKI.leaf(issuer: pki.intermediate, dnsNames: ["192.0.2.7"])
        #expect(await check([leaf, pki.intermediate.der], name: "192.0.2.7")
            == .rejected(.hostnameMismatch(expected: "192.0.2.7")))
    }

    @Test("a wildcard covers exactly one left-most label", arguments: [
        ("a.example.com", true), ("B.EXAMPLE.com", true), ("a.b.example.com", false), ("example.com", false),
    ])
    func wildcard(name: String, matches: Bool) async throws {
        let leaf = try TestPKI.leaf(issuer: pki.intermediate, dnsNames: ["*.example.com"])
        let result = await check([leaf, pki.intermediate.der], name: name)
        #expect(result == (matches ? .trusted : .rejected(.hostnameMismatch(expected: name))))
    }

    @Test("a chain to a root we do not trust names the unknown issuer")
    func untrustedRoot() async throws {
        let other = try TestPKI.root("Other Root")
        let otherIntermediate = try TestPKI.intermediate("Other Intermediate", issuer: other)
        let leaf = try TestPKI.leaf(issuer: otherIntermediate)
        #expect(await check([leaf, otherIntermediate.der])
            == .rejected(.untrustedRoot(issuer: "CN=Other Root,O=MirageSwift Tests")))
        // The peer sending its root does not make it trusted.
        #expect(await check([leaf, otherIntermediate.der, other.der])
            == .rejected(.untrustedRoot(issuer: "CN=Other Root,O=MirageSwift Tests")))
    }

    @Test("a missing intermediate names the intermediate as the unknown issuer")
    func missingIntermediate() async throws {
        let leaf = try TestPKI.leaf(issuer: pki.intermediate)
        #expect(await check([leaf]) == .rejected(.untrustedRoot(issuer: "CN=Test Intermediate,O=MirageSwift Tests")))
    }

    @Test("a certificate claiming a trusted issuer's name without its signature is untrusted")
    func forgedIssuer() async throws {
        let impostor = try TestPKI.intermediate("Test Intermediate", issuer: try TestPKI.root("Test Root"))
        let leaf = try TestPKI.leaf(issuer: impostor)
        #expect(await check([leaf, impostor.der]) == .rejected(.untrustedRoot(issuer: "CN=Test Root,O=MirageSwift Tests")))
    }

    @Test("EKU present without serverAuth is refused for a server, accepted for a client")
    func extendedKeyUsageWithoutServerAuth() async throws {
        let leaf = try TestPKI.leaf(issuer: pki.intermediate, extendedKeyUsage: [.clientAuth])
        let result = await check([leaf, pki.intermediate.der])
        guard case .rejected(.missingExtendedKeyUsage(let detail)) = result else {
            Issue.record("expected missingExtendedKeyUsage, got \(result)")
            return
        }
        #expect(detail.contains("serverAuth"))
        #expect(await check([leaf, pki.intermediate.der], name: nil, server: false) == .trusted)
    }

    @Test("EKU present without clientAuth is refused for a client")
    func extendedKeyUsageWithoutClientAuth() async throws {
        let leaf = try TestPKI.leaf(issuer: pki.intermediate, extendedKeyUsage: [.serverAuth])
        let result = await check([leaf, pki.intermediate.der], name: nil, server: false)
        guard case .rejected(.missingExtendedKeyUsage(let detail)) = result else {
            Issue.record("expected missingExtendedKeyUsage, got \(result)")
            return
        }
        #expect(detail.contains("clientAuth"))
    }

    @Test("anyExtendedKeyUsage alone is not serverAuth")
    func anyExtendedKeyUsage() async throws {
        let leaf = try TestPKI.leaf(issuer: pki.intermediate, extendedKeyUsage: [.any])
        let result = await check([leaf, pki.intermediate.der])
        guard case .rejected(.missingExtendedKeyUsage) = result else {
            Issue.record("expected missingExtendedKeyUsage, got \(result)")
            return
        }
    }

    @Test("a leaf without EKU or KU may be used for either role (RFC 5280 §4.2.1.12)")
    func noUsageExtensions() async throws {
        let leaf = try TestPKI.leaf(issuer: pki.intermediate, keyUsage: nil, extendedKeyUsage: nil)
        #expect(await check([leaf, pki.intermediate.der]) == .trusted)
        #expect(await check([leaf, pki.intermediate.der], name: nil, server: false) == .trusted)
    }

    @Test("key usage without digitalSignature is a bad key usage")
    func keyUsageWithoutDigitalSignature() async throws {
        let leaf = try TestPKI.leaf(issuer: pki.intermediate, keyUsage: KeyUsage(keyEncipherment: true))
        let result = await check([leaf, pki.intermediate.der])
        guard case .rejected(.badKeyUsage(let detail)) = result else {
            Issue.record("expected badKeyUsage, got \(result)")
            return
        }
        #expect(detail.contains("digitalSignature"))
    }

    @Test("garbage DER is malformed, wherever it sits in the chain")
    func garbage() async throws {
        let leaf = try TestPKI.leaf(issuer: pki.intermediate)
        let garbage: [UInt8] = [0x30, 0x03, 0x02, 0x01, 0x05, 0xFF]
        for chain in [[garbage], [leaf, garbage], [Array(leaf.dropLast(7))]] {
            let result = await check(chain)
            guard case .rejected(.malformed) = result else {
                Issue.record("expected malformed, got \(result)")
                continue
            }
        }
    }

    @Test("a leaf with a critical extension no policy knows is refused, naming the OID")
    func unknownCriticalExtension() async throws {
        let unknown = Certificate.Extension(oid: [1, 3, 6, 1, 4, 1, 99999, 1], critical: true, value: [0x05, 0x00])
        let leaf = try TestPKI.leaf(issuer: pki.intermediate, extra: unknown)
        #expect(await check([leaf, pki.intermediate.der])
            == .rejected(.other("leaf has an unsupported critical extension 1.3.6.1.4.1.99999.1")))
        // The same extension, not critical, is ignored (RFC 5280 §4.2).
        let ignorable = Certificate.Extension(oid: [1, 3, 6, 1, 4, 1, 99999, 1], critical: false, value: [0x05, 0x00])
        #expect(await check([try TestPKI.leaf(issuer: pki.intermediate, extra: ignorable), pki.intermediate.der]) == .trusted)
    }

    @Test("an empty chain is emptyChain")
    func emptyChain() async throws {
        #expect(await check([]) == .rejected(.emptyChain))
    }

    @Test("a chain longer than the limit is refused before path building")
    func tooLong() async throws {
        let leaf = try TestPKI.leaf(issuer: pki.intermediate)
        let chain = [leaf] + Array(repeating: pki.intermediate.der, count: X509CertificateVerifier.maximumChainLength)
        let result = await check(chain)
        guard case .rejected(.other(let detail)) = result else {
            Issue.record("expected other, got \(result)")
            return
        }
        #expect(detail.contains("exceeds"))
    }

    @Test("a self-signed leaf nobody trusts is an untrusted root naming itself")
    func selfSignedUntrusted() async throws {
        let made = try DevelopmentCertificate.generate(names: ["localhost"], ipAddresses: [], now: TestPKI.now)
        #expect(await check([made.certificateDER], name: "localhost")
            == .rejected(.untrustedRoot(issuer: "CN=localhost,O=MirageSwift development certificate")))
    }

    @Test("verify(_:completion:) answers once, through post")
    func completionGoesThroughPost() async throws {
        let leaf = try TestPKI.leaf(issuer: pki.intermediate)
        let posts = Atomic<Int>(0)
        let roots = TrustRoots(certificates: [pki.root.der])
        let verifier = X509CertificateVerifier(roots: roots, clock: { TestPKI.now }, post: { work in
            posts.add(1, ordering: .relaxed)
            work()
        })
        let request = CertificateVerificationRequest(chain: [leaf, pki.intermediate.der], serverName: "www.example.com",
                                                     peerIsServer: true)
        let result = await withCheckedContinuation { continuation in
            verifier.verify(request) { continuation.resume(returning: $0) }
        }
        #expect(result == .trusted)
        #expect(posts.load(ordering: .relaxed) == 1)
    }

    @Test("the clock decides validity: the same leaf is trusted now and expired a year on")
    func clockIsInjected() async throws {
        let leaf = try TestPKI.leaf(issuer: pki.intermediate, notAfter: TestPKI.future)
        let request = CertificateVerificationRequest(chain: [leaf, pki.intermediate.der], serverName: "www.example.com",
                                                     peerIsServer: true)
        let roots = TrustRoots(certificates: [pki.root.der])
        #expect(await X509CertificateVerifier(roots: roots, clock: { TestPKI.now }).evaluate(request) == .trusted)
        #expect(await X509CertificateVerifier(roots: roots, clock: { TestPKI.farAhead }).evaluate(request)
            == .rejected(.expired(notAfter: "2025-07-01T00:00:00Z")))
    }
}
