// (EC)DHE key shares for RFC 8446 §4.2.8 and §7.4.

import Crypto
import Foundation
import MirageTLS

/// X25519 (RFC 7748): 32-byte public values.
final class X25519KeyExchange: KeyExchange {
    /// Length of an X25519 public value and shared secret (RFC 7748 §6.1).
    static let valueLength = 32

    private let privateKey: Curve25519.KeyAgreement.PrivateKey
    let publicKey: [UInt8]
    var group: NamedGroup { .x25519 }

    init(_ privateKey: Curve25519.KeyAgreement.PrivateKey) {
        self.privateKey = privateKey
        publicKey = Array(privateKey.publicKey.rawRepresentation)
    }

    func sharedSecret(peerPublicKey: [UInt8]) throws(TLSError) -> [UInt8] {
        guard peerPublicKey.count == Self.valueLength else {
            throw .illegalParameter("X25519 key share of \(peerPublicKey.count) bytes (\(Self.valueLength) expected)")
        }
        let secret: [UInt8]
        do {
            let peer = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: peerPublicKey)
            secret = try privateKey.sharedSecretFromKeyAgreement(with: peer).withUnsafeBytes { Array($0) }
        } catch {
            // BoringSSL refuses a small-order point, whose result is all zeros.
            throw .illegalParameter("X25519 key share is a small-order point")
        }
        // RFC 8446 §7.4.2: an all-zero shared secret MUST abort with illegal_parameter.
        var accumulated: UInt8 = 0
        for byte in secret { accumulated |= byte }
        guard accumulated != 0, secret.count == Self.valueLength else {
            throw .illegalParameter("X25519 shared secret is all zeros")
        }
        return secret
    }
}

/// secp256r1 ECDHE: public values are uncompressed points (§4.2.8.2), the
/// shared secret is the x-coordinate (§7.4.2).
final class P256KeyExchange: KeyExchange {
    /// 0x04 || X || Y (RFC 8446 §4.2.8.2: only the uncompressed form).
    static let pointLength = 65
    /// The uncompressed-point prefix byte (SEC 1 §2.3.3).
    static let uncompressedPrefix: UInt8 = 0x04

    private let privateKey: P256.KeyAgreement.PrivateKey
    let publicKey: [UInt8]
    var group: NamedGroup { .secp256r1 }

    init(_ privateKey: P256.KeyAgreement.PrivateKey) {
        self.privateKey = privateKey
        publicKey = Array(privateKey.publicKey.x963Representation)
    }

    func sharedSecret(peerPublicKey: [UInt8]) throws(TLSError) -> [UInt8] {
        guard peerPublicKey.count == Self.pointLength, peerPublicKey.first == Self.uncompressedPrefix else {
            throw .illegalParameter("secp256r1 key share is not a 65-byte uncompressed point")
        }
        do {
            // x963Representation parsing checks that the point is on the curve (§4.2.8.2 MUST validate).
            let peer = try P256.KeyAgreement.PublicKey(x963Representation: peerPublicKey)
            return try privateKey.sharedSecretFromKeyAgreement(with: peer).withUnsafeBytes { Array($0) }
        } catch {
            throw .illegalParameter("secp256r1 key share is not a point on the curve")
        }
    }
}
