import Crypto
import Foundation
@testable import MirageTLS
import MirageTLSCrypto
import Testing
import X509

/// X509CertificateVerifier for client certificates (peerIsServer == false):
/// clientAuth in the extended key usage, no host name check; and the engine
/// acting on its answers.
@Suite("Client certificates: X509CertificateVerifier with peerIsServer == false")
struct ClientAuthVerifierTests {
    let pki: TestPKI
    init() throws { pki = try TestPKI() }

    func checkClient(_ chain: [[UInt8]]) async -> CertificateVerificationResult {
        await pki.verifier().evaluate(CertificateVerificationRequest(chain: chain, serverName: nil, peerIsServer: false))
    }

    /// Which extended key usages a client leaf may carry (RFC 5280 §4.2.1.12:
    /// when present, the certificate may only serve a listed purpose).
    static let usages: [([ExtendedKeyUsage.Usage]?, Bool)] = [
        ([.clientAuth], true),
        ([.serverAuth, .clientAuth], true),
        (nil, true),  // no EKU: any purpose
        ([.serverAuth], false),
        ([.emailProtection], false),
        ([.any], false),  // anyExtendedKeyUsage alone is not clientAuth (as for servers)
    ]

    @Test("a client leaf is trusted exactly when its EKU allows clientAuth (or it has none)", arguments: usages)
    func extendedKeyUsage(usage: [ExtendedKeyUsage.Usage]?, trusted: Bool) async throws {
        let leaf = try TestPKI.leaf("client", issuer: pki.intermediate, extendedKeyUsage: usage)
        let result = await checkClient([leaf, pki.intermediate.der])
        if trusted {
            #expect(result == .trusted)
        } else {
            guard case .rejected(.missingExtendedKeyUsage(let detail)) = result else {
                Issue.record("expected missingExtendedKeyUsage, got \(result)")
                return
            }
            #expect(detail.contains("clientAuth"))
        }
    }

    @Test("a clientAuth-only leaf is refused as a server certificate (the role matters)")
    func clientLeafIsNoServer() async throws {
        let leaf = try TestPKI.leaf("client", issuer: pki.intermediate, extendedKeyUsage: [.clientAuth])
        let asServer = await pki.verifier().evaluate(
            CertificateVerificationRequest(chain: [leaf, pki.intermediate.der], serverName: "www.example.com", peerIsServer: true))
        guard case .rejected(.missingExtendedKeyUsage) = asServer else {
            Issue.record("expected missingExtendedKeyUsage, got \(asServer)")
            return
        }
    }

    @Test("no host name is checked for a client: names that match nothing are fine")
    func noHostNameCheck() async throws {
        let leaf = try TestPKI.leaf("alice", issuer: pki.intermediate, dnsNames: ["alice.users.invalid"],
                                    extendedKeyUsage: [.clientAuth])
        #expect(await checkClient([leaf, pki.intermediate.der]) == .trusted)
    }

    @Test("the rest of the chain checks apply to clients too: untrusted root, expiry, key usage, empty chain")
    func chainChecks() async throws {
        let stranger = try TestPKI.root("Stranger Root")
        let foreign = try TestPKI.leaf("client", issuer: stranger, extendedKeyUsage: [.clientAuth])
        guard case .rejected(.untrustedRoot) = await checkClient([foreign, stranger.der]) else {
            Issue.record("a client chain to an unknown root must be untrusted")
            return
        }
        let expired = try TestPKI.leaf("client", issuer: pki.intermediate, notAfter: TestPKI.past, extendedKeyUsage: [.clientAuth])
        #expect(await checkClient([expired, pki.intermediate.der]) == .rejected(.expired(notAfter: "2025-06-01T00:00:00Z")))
        let noSigning = try TestPKI.leaf("client", issuer: pki.intermediate, keyUsage: KeyUsage(keyEncipherment: true),
                                         extendedKeyUsage: [.clientAuth])
        guard case .rejected(.badKeyUsage) = await checkClient([noSigning, pki.intermediate.der]) else {
            Issue.record("a client leaf without digitalSignature must be refused")
            return
        }
        #expect(await checkClient([]) == .rejected(.emptyChain))
    }

    /// A client whose certificate comes from `pki`, against a server asking
    /// for one; the server's verification is answered by the real verifier.
    func handshake(clientUsage: [ExtendedKeyUsage.Usage]) async throws -> ConnectionPair {
        let (der, key) = try TestPKI.leafWithKey("client", issuer: pki.intermediate, extendedKeyUsage: clientUsage)
        var client = TLSClientConfiguration(serverName: "localhost")
        client.certificates = [CertifiedKey(chain: [der, pki.intermediate.der], key: PrivateSigningKey(key))]
        client.verifiesCertificates = false
        var server = TLSServerConfiguration(certificates: [TestCredentials.leaf(.ed25519)])
        server.clientAuthentication = .required
        let pair = ConnectionPair(client: client, server: server)
        // The pair answers synchronously: evaluate the chain the client will send first.
        pair.verification = await checkClient([der, pki.intermediate.der])
        pair.run()
        #expect(pair.verificationRequests == [CertificateVerificationRequest(
            chain: [der, pki.intermediate.der], serverName: nil, peerIsServer: false)])
        return pair
    }

    @Test("engine + verifier: a clientAuth leaf completes the handshake")
    func engineAcceptsClientLeaf() async throws {
        let pair = try await handshake(clientUsage: [.clientAuth])
        #expect(ConnectionPair.completed(pair.serverEvents))
        #expect(pair.server.negotiated?.peerSignatureScheme == .ecdsaSecp256r1SHA256)
    }

    @Test("engine + verifier: a serverAuth-only client leaf ends with unsupported_certificate on both sides")
    func engineRefusesServerOnlyLeaf() async throws {
        let pair = try await handshake(clientUsage: [.serverAuth])
        guard case .badCertificate(.missingExtendedKeyUsage)? = ConnectionPair.failure(pair.serverEvents) else {
            Issue.record("expected missingExtendedKeyUsage, got \(String(describing: ConnectionPair.failure(pair.serverEvents)))")
            return
        }
        #expect(ConnectionPair.failure(pair.clientEvents) == .alertReceived(.unsupportedCertificate))
    }
}
