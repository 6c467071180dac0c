// A deterministic stand-in for a crypto provider, written against MirageTLS's
// primitives protocols only (no swift-crypto, no Foundation): the tls-engine
// fuzz target runs the engine over it, and so does the Embedded check
// program (Scripts/embedded/programs/MirageTLS, a symbolic link to this
// file), which shows the engine needs nothing of swift-crypto's.

import MirageTLS

/// Deterministic, cheap, and not secure: stands in for swift-crypto.
final class FuzzCrypto: CryptoProvider {
    static func digest(_ seed: UInt64, _ parts: [[UInt8]], length: Int) -> [UInt8] {
        var out: [UInt8] = []
        var lane: UInt64 = 0
        while out.count < length {
            var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed ^ (lane &* 0x9E37_79B9_7F4A_7C15)
            for part in parts {
                for b in part { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
                h = (h ^ UInt64(truncatingIfNeeded: part.count)) &* 0x100_0000_01b3
            }
            h ^= h >> 29
            h = h &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 32
            for shift in stride(from: 0, to: 64, by: 8) where out.count < length { out.append(UInt8(truncatingIfNeeded: h >> UInt64(shift))) }
            lane += 1
        }
        return out
    }

    final class Key: AEADKey {
        let key: [UInt8]
        init(_ key: [UInt8]) { self.key = key }
        func seal(nonce: [UInt8], additionalData: [UInt8], plaintext: [UInt8]) -> [UInt8] {
            plaintext + FuzzCrypto.digest(7, [key, nonce, additionalData, plaintext], length: 16)
        }
        func open(nonce: [UInt8], additionalData: [UInt8], ciphertextAndTag: [UInt8]) -> [UInt8]? {
            guard ciphertextAndTag.count >= 16 else { return nil }
            let plaintext = Array(ciphertextAndTag.dropLast(16))
            guard FuzzCrypto.digest(7, [key, nonce, additionalData, plaintext], length: 16) == Array(ciphertextAndTag.suffix(16)) else { return nil }
            return plaintext
        }
    }

    /// "Diffie–Hellman": both sides derive the secret from the two public values.
    final class Exchange: KeyExchange {
        let group: NamedGroup
        let publicKey: [UInt8]
        init(group: NamedGroup, publicKey: [UInt8]) { self.group = group; self.publicKey = publicKey }
        func sharedSecret(peerPublicKey: [UInt8]) throws(TLSError) -> [UInt8] {
            guard peerPublicKey.count == publicKey.count else { throw .illegalParameter("fuzz: bad share length") }
            let (a, b) = publicKey.lexicographicallyPrecedes(peerPublicKey) ? (publicKey, peerPublicKey) : (peerPublicKey, publicKey)
            return FuzzCrypto.digest(3, [a, b], length: 32)
        }
    }

    final class Signer: SigningKey {
        var signatureSchemes: [SignatureScheme] { [.ed25519] }
        func sign(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> [UInt8] {
            FuzzCrypto.digest(5, [message], length: 64)
        }
    }

    var counter: UInt8 = 0
    func hash(_ algorithm: HashAlgorithm, _ data: [UInt8]) -> [UInt8] { Self.digest(1, [data], length: algorithm.outputLength) }
    func hmac(_ algorithm: HashAlgorithm, key: [UInt8], data: [UInt8]) -> [UInt8] { Self.digest(2, [key, data], length: algorithm.outputLength) }
    func hkdfExtract(_ algorithm: HashAlgorithm, salt: [UInt8], inputKeyMaterial: [UInt8]) -> [UInt8] {
        Self.digest(4, [salt, inputKeyMaterial], length: algorithm.outputLength)
    }
    func hkdfExpand(_ algorithm: HashAlgorithm, pseudorandomKey: [UInt8], info: [UInt8], length: Int) -> [UInt8] {
        Self.digest(6, [pseudorandomKey, info], length: length)
    }
    func makeAEADKey(_ algorithm: AEADAlgorithm, key: [UInt8]) -> any AEADKey { Key(key) }
    func makeKeyExchange(_ group: NamedGroup) throws(TLSError) -> any KeyExchange {
        counter &+= 1
        let length = group == .secp256r1 ? 65 : 32
        return Exchange(group: group, publicKey: [UInt8](repeating: counter, count: length))
    }
    func verify(signature: [UInt8], scheme: SignatureScheme, message: [UInt8], certificate: [UInt8]) throws(TLSError) {
        guard scheme == .ed25519 else { throw .illegalParameter("fuzz: scheme") }
        guard signature == Self.digest(5, [message], length: 64) else { throw .decryptError("fuzz: signature") }
    }
    var supportedGroups: [NamedGroup] { [.x25519, .secp256r1] }
    var supportedSignatureSchemes: [SignatureScheme] { [.ed25519] }
}
