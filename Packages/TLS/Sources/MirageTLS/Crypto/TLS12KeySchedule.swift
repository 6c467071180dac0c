/// The TLS 1.2 key schedule (RFC 5246 §5, §6.3, §7.4.9, §8.1 with RFC 7627):
/// the PRF, the extended master secret, Finished's verify_data and the key
/// block cut into the two directions' record protection. AEAD suites only:
/// no MAC keys (RFC 5246 §6.3, RFC 5288 §3, RFC 7905 §2).
///
/// Lengths and labels here are ours, never a peer's.
public enum TLS12KeySchedule {
    /// Length of the master secret (RFC 5246 §8.1).
    public static let masterSecretLength = 48
    /// Length of Finished.verify_data for every suite here (RFC 5246 §7.4.9:
    /// 12 unless the suite says otherwise; RFC 5289 and RFC 7905 do not).
    public static let verifyDataLength = 12
    /// The PRF label of the extended master secret (RFC 7627 §4).
    public static let extendedMasterSecretLabel = "extended master secret"

    /// PRF(secret, label, seed) = P_hash(secret, label + seed), truncated to
    /// `length` bytes (RFC 5246 §5), with HMAC of the suite's hash:
    /// A(0) = label + seed, A(i) = HMAC(secret, A(i-1)), output
    /// HMAC(secret, A(1) + label + seed) + HMAC(secret, A(2) + label + seed) + ….
    public static func prf(_ crypto: any CryptoProvider, _ hash: HashAlgorithm, secret: [UInt8], label: String,
                           seed: [UInt8], length: Int) -> [UInt8] {
        precondition(length >= 0 && length <= 0xFFFF, "PRF length out of range")
        var labelAndSeed = Array(label.utf8)
        labelAndSeed.append(contentsOf: seed)
        var output: [UInt8] = []
        output.reserveCapacity(length + hash.outputLength)
        var a = labelAndSeed
        // Each pass adds Hash.length bytes, so at most length / Hash.length + 1 passes.
        while output.count < length {
            a = crypto.hmac(hash, key: secret, data: a)
            output.append(contentsOf: crypto.hmac(hash, key: secret, data: a + labelAndSeed))
        }
        return Array(output.prefix(length))
    }

    /// The extended master secret (RFC 7627 §4): PRF(pre_master_secret,
    /// "extended master secret", session_hash)[0..47], where session_hash is
    /// the transcript hash up to and including the ClientKeyExchange (§3).
    public static func extendedMasterSecret(_ crypto: any CryptoProvider, _ hash: HashAlgorithm,
                                            preMasterSecret: [UInt8], sessionHash: [UInt8]) -> [UInt8] {
        prf(crypto, hash, secret: preMasterSecret, label: extendedMasterSecretLabel, seed: sessionHash,
            length: masterSecretLength)
    }

    /// Finished.verify_data (RFC 5246 §7.4.9): PRF(master_secret,
    /// "client finished" or "server finished", Hash(handshake_messages))[0..11].
    public static func finishedVerifyData(_ crypto: any CryptoProvider, _ hash: HashAlgorithm, masterSecret: [UInt8],
                                          isClient: Bool, handshakeHash: [UInt8]) -> [UInt8] {
        prf(crypto, hash, secret: masterSecret, label: isClient ? "client finished" : "server finished",
            seed: handshakeHash, length: verifyDataLength)
    }

    /// The length of the implicit (fixed) part of a TLS 1.2 AEAD nonce:
    /// AES-GCM's 4-byte salt (RFC 5288 §3), ChaCha20-Poly1305's whole 12-byte
    /// IV (RFC 7905 §2).
    public static func fixedIVLength(_ aead: AEADAlgorithm) -> Int {
        switch aead {
        case .aes128GCM, .aes256GCM: return 4
        case .chacha20Poly1305: return 12
        }
    }

    /// The key block (RFC 5246 §6.3): PRF(master_secret, "key expansion",
    /// server_random + client_random), cut into client_write_key,
    /// server_write_key, client_write_IV, server_write_IV (no MAC keys for
    /// AEAD suites), and the two directions' protection at sequence number 0.
    /// The suite must be a TLS 1.2 suite this library implements.
    public static func recordProtections(_ crypto: any CryptoProvider, suite: CipherSuite, masterSecret: [UInt8],
                                         clientRandom: [UInt8], serverRandom: [UInt8])
        -> (client: RecordProtection, server: RecordProtection)
    {
        guard let aead = suite.aead, let hash = suite.hash, suite.version == .tls12 else {
            preconditionFailure("TLS 1.2 key block for a suite that is not an implemented TLS 1.2 suite: \(suite)")
        }
        let keyLength = aead.keyLength
        let ivLength = fixedIVLength(aead)
        let block = prf(crypto, hash, secret: masterSecret, label: "key expansion", seed: serverRandom + clientRandom,
                        length: 2 * keyLength + 2 * ivLength)
        let clientKey = Array(block[0..<keyLength])
        let serverKey = Array(block[keyLength..<2 * keyLength])
        let clientIV = Array(block[2 * keyLength..<2 * keyLength + ivLength])
        let serverIV = Array(block[2 * keyLength + ivLength..<2 * keyLength + 2 * ivLength])
        return (RecordProtection(tls12Suite: suite, key: clientKey, iv: clientIV, crypto: crypto),
                RecordProtection(tls12Suite: suite, key: serverKey, iv: serverIV, crypto: crypto))
    }
}
