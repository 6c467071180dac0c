import Foundation
import SwiftASN1
import X509

extension CertifiedKey {
    /// A server's (or client's) chain and key from PEM text: the chain's
    /// `CERTIFICATE` blocks, leaf first, and the leaf's private key (PKCS#8,
    /// SEC1 or PKCS#1, see `PrivateSigningKey`). `serverNames` are the leaf's
    /// subjectAltName DNS names, for SNI selection. Throws `.configuration`
    /// when a certificate does not parse, the key cannot be read, or the key
    /// is not the leaf's (a server would otherwise fail every handshake).
    public static func load(certificateChainPEM: String, privateKeyPEM: String) throws(TLSError) -> CertifiedKey {
        let chain = try PEM.certificates(certificateChainPEM)
        var certificates: [Certificate] = []
        for (index, der) in chain.enumerated() {
            do {
                certificates.append(try Certificate(derEncoded: der))
            } catch {
                throw .configuration("certificate \(index) of the chain does not parse: \(error)")
            }
        }
        let key = try PrivateSigningKey(pem: privateKeyPEM)
        let leaf = certificates[0]
        let keysPublicKey: Certificate.PublicKey
        do {
            keysPublicKey = try Certificate.PublicKey(derEncoded: key.subjectPublicKeyInfo)
        } catch {
            throw .configuration("the private key's public key cannot be read: \(error)")
        }
        guard keysPublicKey == leaf.publicKey else {
            throw .configuration("the private key does not belong to the leaf certificate \(leaf.subject)")
        }
        return CertifiedKey(chain: chain, key: key, serverNames: try dnsNames(of: leaf))
    }

    /// `load(certificateChainPEM:privateKeyPEM:)` from two files (they may be the same file).
    public static func load(certificateChainFile: String, privateKeyFile: String) throws(TLSError) -> CertifiedKey {
        try load(certificateChainPEM: readText(certificateChainFile), privateKeyPEM: readText(privateKeyFile))
    }

    /// The DNS names of the leaf's subjectAltName, in order.
    static func dnsNames(of leaf: Certificate) throws(TLSError) -> [String] {
        let names: SubjectAlternativeNames?
        do {
            names = try leaf.extensions.subjectAlternativeNames
        } catch {
            throw .configuration("the leaf's subjectAltName does not parse: \(error)")
        }
        var result: [String] = []
        for name in names ?? SubjectAlternativeNames() {
            if case .dnsName(let dnsName) = name { result.append(dnsName) }
        }
        return result
    }
}

/// The UTF-8 text of the file at `path`; `.configuration` when unreadable.
func readText(_ path: String) throws(TLSError) -> String {
    do {
        return try String(contentsOfFile: path, encoding: .utf8)
    } catch {
        throw .configuration("cannot read \(path): \(error)")
    }
}
