// A provider for reproducing fixed traces (RFC 8448): everything comes from
// SwiftCryptoProvider except the ephemeral keys, which are handed out from
// a queue of given private keys per group.

import MirageTLS
import MirageTLSCrypto

/// SwiftCryptoProvider with predetermined (EC)DHE private keys. When a
/// group's queue is empty it falls back to fresh keys.
final class FixedKeyCryptoProvider: CryptoProvider {
    let base: SwiftCryptoProvider
    /// Private keys still to hand out, per group, in order.
    var privateKeys: [NamedGroup: [[UInt8]]]

    init(privateKeys: [NamedGroup: [[UInt8]]], base: SwiftCryptoProvider = SwiftCryptoProvider(minimumRSAKeySize: 1024)) {
        self.privateKeys = privateKeys
        self.base = base
    }

    /// RFC 8448 §3's client (X25519) and §5's client (secp256r1) keys, for a client engine.
    static func rfc8448Client() -> FixedKeyCryptoProvider {
        FixedKeyCryptoProvider(privateKeys: [.x25519: [RFC8448.clientX25519PrivateKey], .secp256r1: [RFC8448.hrrClientP256PrivateKey]])
    }

    /// RFC 8448 §3's server key (X25519), for a server engine.
    static func rfc8448Server() -> FixedKeyCryptoProvider {
        FixedKeyCryptoProvider(privateKeys: [.x25519: [RFC8448.serverX25519PrivateKey]])
    }

    func makeKeyExchange(_ group: NamedGroup) throws(TLSError) -> any KeyExchange {
        if var queue = privateKeys[group], !queue.isEmpty {
            let key = queue.removeFirst()
            privateKeys[group] = queue
            return try base.makeKeyExchange(group, privateKey: key)
        }
        return try base.makeKeyExchange(group)
    }

    func hash(_ algorithm: HashAlgorithm, _ data: [UInt8]) -> [UInt8] { base.hash(algorithm, data) }
    func hmac(_ algorithm: HashAlgorithm, key: [UInt8], data: [UInt8]) -> [UInt8] { base.hmac(algorithm, key: key, data: data) }
    func hkdfExtract(_ algorithm: HashAlgorithm, salt: [UInt8], inputKeyMaterial: [UInt8]) -> [UInt8] {
        base.hkdfExtract(algorithm, salt: salt, inputKeyMaterial: inputKeyMaterial)
    }
    func hkdfExpand(_ algorithm: HashAlgorithm, pseudorandomKey: [UInt8], info: [UInt8], length: Int) -> [UInt8] {
        base.hkdfExpand(algorithm, pseudorandomKey: pseudorandomKey, info: info, length: length)
    }
    func makeAEADKey(_ algorithm: AEADAlgorithm, key: [UInt8]) -> any AEADKey { base.makeAEADKey(algorithm, key: key) }
    func verify(signature: [UInt8], scheme: SignatureScheme, message: [UInt8], certificate: [UInt8]) throws(TLSError) {
        try base.verify(signature: signature, scheme: scheme, message: message, certificate: certificate)
    }
    var supportedGroups: [NamedGroup] { base.supportedGroups }
    var supportedSignatureSchemes: [SignatureScheme] { base.supportedSignatureSchemes }
}
