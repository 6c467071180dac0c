/// The TLS 1.3 key schedule (RFC 8446 §7.1): the early secret from a PSK
/// (resumption) or from zeros, the binder key, the handshake secret from the (EC)DHE shared secret, the
/// master secret, and the traffic secrets, keys and IVs derived from them.
///
/// Call order: `init`, `deriveHandshakeSecrets` (after the ServerHello),
/// `deriveApplicationSecrets` (after the server Finished), then optionally
/// `deriveResumptionMasterSecret` (after the client Finished). Calling them
/// out of order is a programming error and stops the program.
public struct KeySchedule {
    /// The negotiated suite.
    public let suite: CipherSuite
    /// The suite's hash (HKDF and transcript).
    public let hash: HashAlgorithm
    private let crypto: any CryptoProvider

    /// Early Secret = HKDF-Extract(0, PSK), with Hash.length zeros for the
    /// PSK when there is none.
    public let earlySecret: [UInt8]
    /// Handshake Secret, once `deriveHandshakeSecrets` ran.
    public private(set) var handshakeSecret: [UInt8]?
    /// Master Secret, once `deriveApplicationSecrets` ran.
    public private(set) var masterSecret: [UInt8]?
    /// exporter_master_secret (§7.5), once `deriveApplicationSecrets` ran.
    public private(set) var exporterMasterSecret: [UInt8]?
    /// resumption_master_secret (§7.1), once `deriveResumptionMasterSecret` ran.
    public private(set) var resumptionMasterSecret: [UInt8]?

    /// The prefix of every HkdfLabel.label (§7.1).
    static let labelPrefix: [UInt8] = Array("tls13 ".utf8)

    /// A key schedule for `suite`. The suite must be one this library
    /// implements (`suite.hash != nil`); the engine checks a peer's choice first.
    public init(suite: CipherSuite, crypto: any CryptoProvider) {
        self.init(suite: suite, crypto: crypto, psk: nil)
    }

    /// A key schedule whose early secret comes from `psk` (a resumption PSK,
    /// §7.1); nil is the schedule without PSK.
    public init(suite: CipherSuite, crypto: any CryptoProvider, psk: [UInt8]?) {
        guard let hash = suite.hash else { preconditionFailure("KeySchedule for unimplemented suite \(suite)") }
        self.suite = suite
        self.hash = hash
        self.crypto = crypto
        let zeros = [UInt8](repeating: 0, count: hash.outputLength)
        earlySecret = crypto.hkdfExtract(hash, salt: zeros, inputKeyMaterial: psk ?? zeros)
    }

    /// binder_key = Derive-Secret(Early Secret, "res binder", "") for a
    /// resumption PSK (§7.1).
    public var binderKey: [UInt8] {
        deriveSecret(earlySecret, "res binder", transcriptHash: crypto.hash(hash, []))
    }

    /// A PSK binder (§4.2.11.2): computed as Finished is (§4.4.4), with
    /// `binderKey` as the base key, over Transcript-Hash of the partial
    /// ClientHello (after a HelloRetryRequest, of message_hash, the
    /// HelloRetryRequest and the partial second ClientHello).
    public func binder(transcriptHash: [UInt8]) -> [UInt8] {
        finishedVerifyData(trafficSecret: binderKey, transcriptHash: transcriptHash)
    }

    /// The PSK a ticket stands for (§4.6.1):
    /// HKDF-Expand-Label(resumption_master_secret, "resumption", ticket_nonce, Hash.length).
    /// `ticketNonce` is at most 255 bytes (its wire bound).
    public static func resumptionPSK(_ crypto: any CryptoProvider, _ hash: HashAlgorithm, resumptionMasterSecret: [UInt8],
                                     ticketNonce: [UInt8]) -> [UInt8] {
        expandLabel(crypto, hash, secret: resumptionMasterSecret, label: "resumption", context: ticketNonce, length: hash.outputLength)
    }

    /// HKDF-Expand-Label(Secret, Label, Context, Length) (§7.1):
    /// HKDF-Expand(Secret, HkdfLabel, Length) with
    /// HkdfLabel = uint16 length, opaque label<7..255> = "tls13 " + Label, opaque context<0..255>.
    /// Labels and contexts here are ours, never a peer's, and fit their limits.
    public static func expandLabel(_ crypto: any CryptoProvider, _ hash: HashAlgorithm, secret: [UInt8], label: String, context: [UInt8], length: Int) -> [UInt8] {
        let fullLabel = labelPrefix + Array(label.utf8)
        precondition(fullLabel.count <= 255 && context.count <= 255 && length >= 0 && length <= 0xFFFF, "HkdfLabel out of range")
        var info: [UInt8] = []
        info.reserveCapacity(4 + fullLabel.count + context.count)
        info.append(UInt8(truncatingIfNeeded: length >> 8))
        info.append(UInt8(truncatingIfNeeded: length))
        info.append(UInt8(truncatingIfNeeded: fullLabel.count))
        info.append(contentsOf: fullLabel)
        info.append(UInt8(truncatingIfNeeded: context.count))
        info.append(contentsOf: context)
        return crypto.hkdfExpand(hash, pseudorandomKey: secret, info: info, length: length)
    }

    /// Derive-Secret(Secret, Label, Messages) with the transcript hash
    /// already computed (§7.1).
    func deriveSecret(_ secret: [UInt8], _ label: String, transcriptHash: [UInt8]) -> [UInt8] {
        Self.expandLabel(crypto, hash, secret: secret, label: label, context: transcriptHash, length: hash.outputLength)
    }

    /// Derive-Secret(Secret, "derived", "") — the salt of the next stage.
    private func derived(_ secret: [UInt8]) -> [UInt8] {
        deriveSecret(secret, "derived", transcriptHash: crypto.hash(hash, []))
    }

    /// Handshake Secret = HKDF-Extract(Derive-Secret(Early, "derived", ""), (EC)DHE);
    /// returns client/server_handshake_traffic_secret over ClientHello…ServerHello.
    public mutating func deriveHandshakeSecrets(sharedSecret: [UInt8], transcriptHash: [UInt8]) -> (client: [UInt8], server: [UInt8]) {
        precondition(handshakeSecret == nil, "handshake secrets derived twice")
        let secret = crypto.hkdfExtract(hash, salt: derived(earlySecret), inputKeyMaterial: sharedSecret)
        handshakeSecret = secret
        return (deriveSecret(secret, "c hs traffic", transcriptHash: transcriptHash),
                deriveSecret(secret, "s hs traffic", transcriptHash: transcriptHash))
    }

    /// Master Secret = HKDF-Extract(Derive-Secret(Handshake, "derived", ""), 0);
    /// returns client/server_application_traffic_secret_0 over
    /// ClientHello…server Finished, and sets `exporterMasterSecret`.
    public mutating func deriveApplicationSecrets(transcriptHash: [UInt8]) -> (client: [UInt8], server: [UInt8]) {
        guard let handshakeSecret else { preconditionFailure("application secrets before handshake secrets") }
        precondition(masterSecret == nil, "application secrets derived twice")
        let secret = crypto.hkdfExtract(hash, salt: derived(handshakeSecret), inputKeyMaterial: [UInt8](repeating: 0, count: hash.outputLength))
        masterSecret = secret
        exporterMasterSecret = deriveSecret(secret, "exp master", transcriptHash: transcriptHash)
        return (deriveSecret(secret, "c ap traffic", transcriptHash: transcriptHash),
                deriveSecret(secret, "s ap traffic", transcriptHash: transcriptHash))
    }

    /// resumption_master_secret = Derive-Secret(Master, "res master",
    /// ClientHello…client Finished) (§7.1); also returned.
    @discardableResult
    public mutating func deriveResumptionMasterSecret(transcriptHash: [UInt8]) -> [UInt8] {
        guard let masterSecret else { preconditionFailure("resumption secret before the master secret") }
        let secret = deriveSecret(masterSecret, "res master", transcriptHash: transcriptHash)
        resumptionMasterSecret = secret
        return secret
    }

    /// Finished.verify_data = HMAC(finished_key, Transcript-Hash(…)), with
    /// finished_key = HKDF-Expand-Label(BaseKey, "finished", "", Hash.length) (§4.4.4).
    public func finishedVerifyData(trafficSecret: [UInt8], transcriptHash: [UInt8]) -> [UInt8] {
        let finishedKey = Self.expandLabel(crypto, hash, secret: trafficSecret, label: "finished", context: [], length: hash.outputLength)
        return crypto.hmac(hash, key: finishedKey, data: transcriptHash)
    }

    /// Checks a peer's Finished.verify_data in constant time (a mismatch
    /// MUST end the connection with decrypt_error, §4.4.4).
    public func verifyFinished(_ verifyData: [UInt8], trafficSecret: [UInt8], transcriptHash: [UInt8]) throws(TLSError) {
        let expected = finishedVerifyData(trafficSecret: trafficSecret, transcriptHash: transcriptHash)
        guard constantTimeEqual(expected, verifyData) else { throw .decryptError("Finished verify_data does not match") }
    }

    /// application_traffic_secret_N+1 = HKDF-Expand-Label(secret_N, "traffic upd", "", Hash.length) (§7.2).
    public func nextApplicationSecret(_ secret: [UInt8]) -> [UInt8] {
        Self.expandLabel(crypto, hash, secret: secret, label: "traffic upd", context: [], length: hash.outputLength)
    }

    /// write_key = HKDF-Expand-Label(Secret, "key", "", key_length) and
    /// write_iv = HKDF-Expand-Label(Secret, "iv", "", iv_length) (§7.3).
    public func trafficKey(_ secret: [UInt8]) -> (key: [UInt8], iv: [UInt8]) {
        Self.trafficKey(crypto, suite: suite, secret: secret)
    }

    /// `trafficKey(_:)` without a schedule, for the record layer.
    static func trafficKey(_ crypto: any CryptoProvider, suite: CipherSuite, secret: [UInt8]) -> (key: [UInt8], iv: [UInt8]) {
        guard let hash = suite.hash, let aead = suite.aead else { preconditionFailure("traffic keys for unimplemented suite \(suite)") }
        return (expandLabel(crypto, hash, secret: secret, label: "key", context: [], length: aead.keyLength),
                expandLabel(crypto, hash, secret: secret, label: "iv", context: [], length: aead.nonceLength))
    }

    /// TLS-Exporter(label, context_value, key_length) (§7.5):
    /// HKDF-Expand-Label(Derive-Secret(exporter_master_secret, label, ""), "exporter", Hash(context_value), key_length).
    /// nil before `deriveApplicationSecrets`.
    public func exportKeyingMaterial(label: String, context: [UInt8], length: Int) -> [UInt8]? {
        guard let exporterMasterSecret else { return nil }
        let secret = deriveSecret(exporterMasterSecret, label, transcriptHash: crypto.hash(hash, []))
        return Self.expandLabel(crypto, hash, secret: secret, label: "exporter", context: crypto.hash(hash, context), length: length)
    }
}

/// Compares two byte strings without an early exit on the first difference,
/// so the time taken does not tell a peer how much of a MAC it guessed.
public func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for index in a.indices { difference |= a[index] ^ b[index] }
    return difference == 0
}
