// The registries' code points (RFC 8446 §4 and the IANA TLS registries).
// Each is a struct over its wire value so unknown values from a peer are
// representable and skipped rather than rejected.

/// A record's content type (RFC 8446 §5.1).
public struct ContentType: RawRepresentable, Hashable, Sendable {
    /// The wire value.
    public var rawValue: UInt8
    /// A content type from its wire value.
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// invalid(0): never sent; an inner plaintext that is all zeros has no type.
    public static let invalid = ContentType(rawValue: 0)
    /// change_cipher_spec(20): only the middlebox-compatibility dummy (§D.4).
    public static let changeCipherSpec = ContentType(rawValue: 20)
    /// alert(21)
    public static let alert = ContentType(rawValue: 21)
    /// handshake(22)
    public static let handshake = ContentType(rawValue: 22)
    /// application_data(23)
    public static let applicationData = ContentType(rawValue: 23)
}

/// A protocol version number (§4.2.1).
public struct ProtocolVersion: RawRepresentable, Hashable, Sendable, Comparable {
    /// The wire value.
    public var rawValue: UInt16
    /// A version from its wire value.
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// TLS 1.0 (0x0301): the record version of a first ClientHello (§5.1).
    public static let tls10 = ProtocolVersion(rawValue: 0x0301)
    /// TLS 1.1 (0x0302)
    public static let tls11 = ProtocolVersion(rawValue: 0x0302)
    /// TLS 1.2 (0x0303): legacy_version of every TLS 1.3 hello and record.
    public static let tls12 = ProtocolVersion(rawValue: 0x0303)
    /// TLS 1.3 (0x0304), carried in supported_versions.
    public static let tls13 = ProtocolVersion(rawValue: 0x0304)
    public static func < (a: ProtocolVersion, b: ProtocolVersion) -> Bool { a.rawValue < b.rawValue }
    /// True for GREASE values (RFC 8701: 0x?A?A with equal bytes).
    public var isGREASE: Bool { rawValue & 0x0F0F == 0x0A0A && rawValue >> 8 == rawValue & 0xFF }
}

/// A handshake message type (§4).
public struct HandshakeType: RawRepresentable, Hashable, Sendable {
    /// The wire value.
    public var rawValue: UInt8
    /// A handshake type from its wire value.
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// client_hello(1)
    public static let clientHello = HandshakeType(rawValue: 1)
    /// server_hello(2), also HelloRetryRequest
    public static let serverHello = HandshakeType(rawValue: 2)
    /// new_session_ticket(4)
    public static let newSessionTicket = HandshakeType(rawValue: 4)
    /// end_of_early_data(5)
    public static let endOfEarlyData = HandshakeType(rawValue: 5)
    /// encrypted_extensions(8)
    public static let encryptedExtensions = HandshakeType(rawValue: 8)
    /// certificate(11)
    public static let certificate = HandshakeType(rawValue: 11)
    /// certificate_request(13)
    public static let certificateRequest = HandshakeType(rawValue: 13)
    /// certificate_verify(15)
    public static let certificateVerify = HandshakeType(rawValue: 15)
    /// finished(20)
    public static let finished = HandshakeType(rawValue: 20)
    /// key_update(24)
    public static let keyUpdate = HandshakeType(rawValue: 24)
    /// message_hash(254): the synthetic transcript entry after a HelloRetryRequest (§4.4.1).
    public static let messageHash = HandshakeType(rawValue: 254)
}

/// A hash function of a cipher suite (§B.4).
public enum HashAlgorithm: Hashable, Sendable {
    /// SHA-256
    case sha256
    /// SHA-384
    case sha384
    /// Hash.length in bytes.
    public var outputLength: Int {
        switch self {
        case .sha256: return 32
        case .sha384: return 48
        }
    }
}

/// An AEAD algorithm of a cipher suite (§5.2). All three use 12-byte nonces
/// and 16-byte tags.
public enum AEADAlgorithm: Hashable, Sendable {
    /// AES-128-GCM (RFC 5116)
    case aes128GCM
    /// AES-256-GCM (RFC 5116)
    case aes256GCM
    /// ChaCha20-Poly1305 (RFC 8439)
    case chacha20Poly1305
    /// Key length in bytes.
    public var keyLength: Int {
        switch self {
        case .aes128GCM: return 16
        case .aes256GCM, .chacha20Poly1305: return 32
        }
    }
    /// iv_length: 12 for every suite here (§5.3: max(8, N_MIN)).
    public var nonceLength: Int { 12 }
    /// Authentication tag length.
    public var tagLength: Int { 16 }
}

/// How a TLS 1.2 suite's server authenticates its ServerKeyExchange
/// (RFC 8422 §5.1: ECDSA suites also serve Ed25519 certificates).
public enum TLS12Authentication: Hashable, Sendable {
    /// ECDHE_ECDSA suites: ECDSA or Ed25519 certificates.
    case ecdsa
    /// ECDHE_RSA suites: RSA certificates.
    case rsa
}

/// A cipher suite: TLS 1.3 (RFC 8446 §B.4) or a TLS 1.2 ECDHE AEAD suite
/// (RFC 5289, RFC 7905).
public struct CipherSuite: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The wire value.
    public var rawValue: UInt16
    /// A suite from its wire value.
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// TLS_AES_128_GCM_SHA256 (0x1301)
    public static let aes128GCMSHA256 = CipherSuite(rawValue: 0x1301)
    /// TLS_AES_256_GCM_SHA384 (0x1302)
    public static let aes256GCMSHA384 = CipherSuite(rawValue: 0x1302)
    /// TLS_CHACHA20_POLY1305_SHA256 (0x1303)
    public static let chacha20Poly1305SHA256 = CipherSuite(rawValue: 0x1303)
    /// The suites this library implements, in default preference order.
    public static let tls13: [CipherSuite] = [.aes128GCMSHA256, .aes256GCMSHA384, .chacha20Poly1305SHA256]

    /// TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 (0xC02B, RFC 5289)
    public static let ecdheECDSAWithAES128GCMSHA256 = CipherSuite(rawValue: 0xC02B)
    /// TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 (0xC02C, RFC 5289)
    public static let ecdheECDSAWithAES256GCMSHA384 = CipherSuite(rawValue: 0xC02C)
    /// TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 (0xC02F, RFC 5289)
    public static let ecdheRSAWithAES128GCMSHA256 = CipherSuite(rawValue: 0xC02F)
    /// TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 (0xC030, RFC 5289)
    public static let ecdheRSAWithAES256GCMSHA384 = CipherSuite(rawValue: 0xC030)
    /// TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 (0xCCA8, RFC 7905)
    public static let ecdheRSAWithChaCha20Poly1305SHA256 = CipherSuite(rawValue: 0xCCA8)
    /// TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 (0xCCA9, RFC 7905)
    public static let ecdheECDSAWithChaCha20Poly1305SHA256 = CipherSuite(rawValue: 0xCCA9)
    /// TLS_EMPTY_RENEGOTIATION_INFO_SCSV (0x00FF, RFC 5746 §3.3): a client's
    /// signal in place of an empty renegotiation_info; not a real suite.
    public static let emptyRenegotiationInfoSCSV = CipherSuite(rawValue: 0x00FF)
    /// TLS_FALLBACK_SCSV (0x5600, RFC 7507): a client retrying with a lower
    /// version than it supports; not a real suite.
    public static let fallbackSCSV = CipherSuite(rawValue: 0x5600)
    /// The TLS 1.2 suites this library implements (ECDHE, AEAD only), in
    /// default preference order.
    public static let tls12: [CipherSuite] = [
        .ecdheECDSAWithAES128GCMSHA256, .ecdheECDSAWithChaCha20Poly1305SHA256, .ecdheECDSAWithAES256GCMSHA384,
        .ecdheRSAWithAES128GCMSHA256, .ecdheRSAWithChaCha20Poly1305SHA256, .ecdheRSAWithAES256GCMSHA384,
    ]

    /// The protocol version the suite belongs to, or nil for an unknown suite.
    public var version: ProtocolVersion? {
        switch self {
        case .aes128GCMSHA256, .aes256GCMSHA384, .chacha20Poly1305SHA256: return .tls13
        case .ecdheECDSAWithAES128GCMSHA256, .ecdheECDSAWithAES256GCMSHA384, .ecdheRSAWithAES128GCMSHA256,
             .ecdheRSAWithAES256GCMSHA384, .ecdheRSAWithChaCha20Poly1305SHA256, .ecdheECDSAWithChaCha20Poly1305SHA256:
            return .tls12
        default: return nil
        }
    }

    /// The authentication of a TLS 1.2 suite; nil for TLS 1.3 and unknown suites.
    public var tls12Authentication: TLS12Authentication? {
        switch self {
        case .ecdheECDSAWithAES128GCMSHA256, .ecdheECDSAWithAES256GCMSHA384, .ecdheECDSAWithChaCha20Poly1305SHA256: return .ecdsa
        case .ecdheRSAWithAES128GCMSHA256, .ecdheRSAWithAES256GCMSHA384, .ecdheRSAWithChaCha20Poly1305SHA256: return .rsa
        default: return nil
        }
    }

    /// The AEAD, or nil for a suite this library does not implement.
    public var aead: AEADAlgorithm? {
        switch self {
        case .aes128GCMSHA256, .ecdheECDSAWithAES128GCMSHA256, .ecdheRSAWithAES128GCMSHA256: return .aes128GCM
        case .aes256GCMSHA384, .ecdheECDSAWithAES256GCMSHA384, .ecdheRSAWithAES256GCMSHA384: return .aes256GCM
        case .chacha20Poly1305SHA256, .ecdheECDSAWithChaCha20Poly1305SHA256, .ecdheRSAWithChaCha20Poly1305SHA256:
            return .chacha20Poly1305
        default: return nil
        }
    }
    /// The hash for HKDF (TLS 1.3) or the PRF (TLS 1.2) and the transcript,
    /// or nil for an unknown suite.
    public var hash: HashAlgorithm? {
        switch self {
        case .aes128GCMSHA256, .chacha20Poly1305SHA256, .ecdheECDSAWithAES128GCMSHA256, .ecdheRSAWithAES128GCMSHA256,
             .ecdheECDSAWithChaCha20Poly1305SHA256, .ecdheRSAWithChaCha20Poly1305SHA256: return .sha256
        case .aes256GCMSHA384, .ecdheECDSAWithAES256GCMSHA384, .ecdheRSAWithAES256GCMSHA384: return .sha384
        default: return nil
        }
    }
    public var description: String {
        switch self {
        case .aes128GCMSHA256: return "TLS_AES_128_GCM_SHA256"
        case .aes256GCMSHA384: return "TLS_AES_256_GCM_SHA384"
        case .chacha20Poly1305SHA256: return "TLS_CHACHA20_POLY1305_SHA256"
        case .ecdheECDSAWithAES128GCMSHA256: return "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
        case .ecdheECDSAWithAES256GCMSHA384: return "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
        case .ecdheRSAWithAES128GCMSHA256: return "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        case .ecdheRSAWithAES256GCMSHA384: return "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        case .ecdheRSAWithChaCha20Poly1305SHA256: return "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
        case .ecdheECDSAWithChaCha20Poly1305SHA256: return "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        default: return "suite(0x\(String(rawValue, radix: 16)))"
        }
    }
}

/// A key-exchange group (§4.2.7).
public struct NamedGroup: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The wire value.
    public var rawValue: UInt16
    /// A group from its wire value.
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// secp256r1 (23)
    public static let secp256r1 = NamedGroup(rawValue: 0x0017)
    /// secp384r1 (24)
    public static let secp384r1 = NamedGroup(rawValue: 0x0018)
    /// x25519 (29)
    public static let x25519 = NamedGroup(rawValue: 0x001D)
    public var description: String {
        switch self {
        case .secp256r1: return "secp256r1"
        case .secp384r1: return "secp384r1"
        case .x25519: return "x25519"
        default: return "group(\(rawValue))"
        }
    }
}

/// A signature scheme (§4.2.3).
public struct SignatureScheme: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The wire value.
    public var rawValue: UInt16
    /// A scheme from its wire value.
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// rsa_pkcs1_sha256: in certificates only, never in CertificateVerify (§4.2.3).
    public static let rsaPKCS1SHA256 = SignatureScheme(rawValue: 0x0401)
    /// rsa_pkcs1_sha384: in certificates only.
    public static let rsaPKCS1SHA384 = SignatureScheme(rawValue: 0x0501)
    /// rsa_pkcs1_sha512: in certificates only.
    public static let rsaPKCS1SHA512 = SignatureScheme(rawValue: 0x0601)
    /// ecdsa_secp256r1_sha256
    public static let ecdsaSecp256r1SHA256 = SignatureScheme(rawValue: 0x0403)
    /// ecdsa_secp384r1_sha384
    public static let ecdsaSecp384r1SHA384 = SignatureScheme(rawValue: 0x0503)
    /// rsa_pss_rsae_sha256
    public static let rsaPSSRSAESHA256 = SignatureScheme(rawValue: 0x0804)
    /// rsa_pss_rsae_sha384
    public static let rsaPSSRSAESHA384 = SignatureScheme(rawValue: 0x0805)
    /// rsa_pss_rsae_sha512
    public static let rsaPSSRSAESHA512 = SignatureScheme(rawValue: 0x0806)
    /// ed25519
    public static let ed25519 = SignatureScheme(rawValue: 0x0807)
    /// The schemes this library signs and verifies CertificateVerify with, in default preference order.
    public static let tls13: [SignatureScheme] = [.ed25519, .ecdsaSecp256r1SHA256, .rsaPSSRSAESHA256, .rsaPSSRSAESHA384]
    /// Schemes accepted for TLS 1.2 ServerKeyExchange and CertificateVerify
    /// (RFC 5246 §7.4.1.4.1 with RFC 8446 §4.2.3's codes): no SHA-1, no DSA.
    public static let tls12: [SignatureScheme] = [
        .ed25519, .ecdsaSecp256r1SHA256, .ecdsaSecp384r1SHA384, .rsaPSSRSAESHA256, .rsaPSSRSAESHA384,
        .rsaPSSRSAESHA512, .rsaPKCS1SHA256, .rsaPKCS1SHA384, .rsaPKCS1SHA512,
    ]
    /// The schemes accepted in certificate signatures (signature_algorithms_cert): the above plus RSA PKCS#1 and P-384.
    public static let certificates: [SignatureScheme] = tls13 + [.ecdsaSecp384r1SHA384, .rsaPSSRSAESHA512, .rsaPKCS1SHA256, .rsaPKCS1SHA384, .rsaPKCS1SHA512]
    public var description: String {
        switch self {
        case .rsaPKCS1SHA256: return "rsa_pkcs1_sha256"
        case .rsaPKCS1SHA384: return "rsa_pkcs1_sha384"
        case .rsaPKCS1SHA512: return "rsa_pkcs1_sha512"
        case .ecdsaSecp256r1SHA256: return "ecdsa_secp256r1_sha256"
        case .ecdsaSecp384r1SHA384: return "ecdsa_secp384r1_sha384"
        case .rsaPSSRSAESHA256: return "rsa_pss_rsae_sha256"
        case .rsaPSSRSAESHA384: return "rsa_pss_rsae_sha384"
        case .rsaPSSRSAESHA512: return "rsa_pss_rsae_sha512"
        case .ed25519: return "ed25519"
        default: return "scheme(0x\(String(rawValue, radix: 16)))"
        }
    }
}

/// An extension type (§4.2 and the registry).
public struct ExtensionType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The wire value.
    public var rawValue: UInt16
    /// An extension type from its wire value.
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    /// server_name(0), RFC 6066
    public static let serverName = ExtensionType(rawValue: 0)
    /// max_fragment_length(1), RFC 6066
    public static let maxFragmentLength = ExtensionType(rawValue: 1)
    /// status_request(5), RFC 6066
    public static let statusRequest = ExtensionType(rawValue: 5)
    /// supported_groups(10), RFC 8422/7919
    public static let supportedGroups = ExtensionType(rawValue: 10)
    /// ec_point_formats(11): TLS 1.2's, ignored in 1.3
    public static let ecPointFormats = ExtensionType(rawValue: 11)
    /// signature_algorithms(13)
    public static let signatureAlgorithms = ExtensionType(rawValue: 13)
    /// use_srtp(14), RFC 5764
    public static let useSRTP = ExtensionType(rawValue: 14)
    /// heartbeat(15), RFC 6520
    public static let heartbeat = ExtensionType(rawValue: 15)
    /// application_layer_protocol_negotiation(16), RFC 7301
    public static let alpn = ExtensionType(rawValue: 16)
    /// signed_certificate_timestamp(18), RFC 6962
    public static let signedCertificateTimestamp = ExtensionType(rawValue: 18)
    /// client_certificate_type(19), RFC 7250
    public static let clientCertificateType = ExtensionType(rawValue: 19)
    /// server_certificate_type(20), RFC 7250
    public static let serverCertificateType = ExtensionType(rawValue: 20)
    /// padding(21), RFC 7685
    public static let padding = ExtensionType(rawValue: 21)
    /// encrypt_then_mac(22): TLS 1.2
    public static let encryptThenMAC = ExtensionType(rawValue: 22)
    /// extended_master_secret(23): TLS 1.2, RFC 7627
    public static let extendedMasterSecret = ExtensionType(rawValue: 23)
    /// record_size_limit(28), RFC 8449
    public static let recordSizeLimit = ExtensionType(rawValue: 28)
    /// session_ticket(35): TLS 1.2, RFC 5077
    public static let sessionTicket = ExtensionType(rawValue: 35)
    /// pre_shared_key(41)
    public static let preSharedKey = ExtensionType(rawValue: 41)
    /// early_data(42)
    public static let earlyData = ExtensionType(rawValue: 42)
    /// supported_versions(43)
    public static let supportedVersions = ExtensionType(rawValue: 43)
    /// cookie(44)
    public static let cookie = ExtensionType(rawValue: 44)
    /// psk_key_exchange_modes(45)
    public static let pskKeyExchangeModes = ExtensionType(rawValue: 45)
    /// certificate_authorities(47)
    public static let certificateAuthorities = ExtensionType(rawValue: 47)
    /// oid_filters(48)
    public static let oidFilters = ExtensionType(rawValue: 48)
    /// post_handshake_auth(49)
    public static let postHandshakeAuth = ExtensionType(rawValue: 49)
    /// signature_algorithms_cert(50)
    public static let signatureAlgorithmsCert = ExtensionType(rawValue: 50)
    /// key_share(51)
    public static let keyShare = ExtensionType(rawValue: 51)
    /// renegotiation_info(0xff01): TLS 1.2, RFC 5746
    public static let renegotiationInfo = ExtensionType(rawValue: 0xFF01)
    public var description: String {
        switch self {
        case .serverName: return "server_name"
        case .supportedGroups: return "supported_groups"
        case .signatureAlgorithms: return "signature_algorithms"
        case .alpn: return "application_layer_protocol_negotiation"
        case .preSharedKey: return "pre_shared_key"
        case .earlyData: return "early_data"
        case .supportedVersions: return "supported_versions"
        case .cookie: return "cookie"
        case .pskKeyExchangeModes: return "psk_key_exchange_modes"
        case .signatureAlgorithmsCert: return "signature_algorithms_cert"
        case .keyShare: return "key_share"
        case .statusRequest: return "status_request"
        case .certificateAuthorities: return "certificate_authorities"
        case .postHandshakeAuth: return "post_handshake_auth"
        default: return "extension(\(rawValue))"
        }
    }
}

// MARK: - TLS 1.2 handshake types (RFC 5246 §7.4)

extension HandshakeType {
    /// hello_request(0): TLS 1.2 only; a server asking for renegotiation, which we refuse (RFC 5246 §7.4.1.1).
    public static let helloRequest = HandshakeType(rawValue: 0)
    /// server_key_exchange(12): TLS 1.2 only (RFC 5246 §7.4.3, RFC 8422 §5.4).
    public static let serverKeyExchange = HandshakeType(rawValue: 12)
    /// server_hello_done(14): TLS 1.2 only (RFC 5246 §7.4.5).
    public static let serverHelloDone = HandshakeType(rawValue: 14)
    /// client_key_exchange(16): TLS 1.2 only (RFC 5246 §7.4.7, RFC 8422 §5.7).
    public static let clientKeyExchange = HandshakeType(rawValue: 16)
}
