// The value types carried by `RData` for the record types with more than
// one field. Field names follow the defining RFCs.

/// SOA data (RFC 1035 §3.3.13).
public struct SOA: Hashable, Sendable {
    /// MNAME: the primary name server.
    public var mname: DomainName
    /// RNAME: the responsible person's mailbox, as a name.
    public var rname: DomainName
    /// The zone's serial number (RFC 1982 arithmetic).
    public var serial: UInt32
    /// Seconds between secondary refreshes.
    public var refresh: UInt32
    /// Seconds before a failed refresh is retried.
    public var retry: UInt32
    /// Seconds after which a secondary stops answering without a refresh.
    public var expire: UInt32
    /// TTL for negative answers (RFC 2308 §4).
    public var minimum: UInt32

    /// SOA data with these fields.
    public init(mname: DomainName, rname: DomainName, serial: UInt32, refresh: UInt32, retry: UInt32, expire: UInt32, minimum: UInt32) {
        self.mname = mname
        self.rname = rname
        self.serial = serial
        self.refresh = refresh
        self.retry = retry
        self.expire = expire
        self.minimum = minimum
    }
}

/// SRV data (RFC 2782).
public struct SRV: Hashable, Sendable {
    /// Lower is tried first.
    public var priority: UInt16
    /// Relative weight among equal priorities.
    public var weight: UInt16
    /// The service's port.
    public var port: UInt16
    /// The host providing the service ("." for none); never compressed.
    public var target: DomainName

    /// SRV data with these fields.
    public init(priority: UInt16, weight: UInt16, port: UInt16, target: DomainName) {
        self.priority = priority
        self.weight = weight
        self.port = port
        self.target = target
    }
}

/// NAPTR data (RFC 3403 §4.1).
public struct NAPTR: Hashable, Sendable {
    /// Processing order, lowest first.
    public var order: UInt16
    /// Preference among equal orders.
    public var preference: UInt16
    /// FLAGS character-string.
    public var flags: [UInt8]
    /// SERVICES character-string.
    public var services: [UInt8]
    /// REGEXP character-string.
    public var regexp: [UInt8]
    /// REPLACEMENT name; never compressed.
    public var replacement: DomainName

    /// NAPTR data with these fields.
    public init(order: UInt16, preference: UInt16, flags: [UInt8], services: [UInt8], regexp: [UInt8], replacement: DomainName) {
        self.order = order
        self.preference = preference
        self.flags = flags
        self.services = services
        self.regexp = regexp
        self.replacement = replacement
    }
}

/// CAA data (RFC 8659 §4.1).
public struct CAA: Hashable, Sendable {
    /// Flags; bit 7 (0x80) is Issuer Critical.
    public var flags: UInt8
    /// The property tag ("issue", "issuewild", "iodef"): 1-15 ASCII letters and digits.
    public var tag: [UInt8]
    /// The property value, the rest of the data.
    public var value: [UInt8]

    /// CAA data with these fields.
    public init(flags: UInt8, tag: [UInt8], value: [UInt8]) {
        self.flags = flags
        self.tag = tag
        self.value = value
    }
}

/// SSHFP data (RFC 4255 §3.1).
public struct SSHFP: Hashable, Sendable {
    /// Key algorithm (1 RSA, 2 DSA, 3 ECDSA, 4 Ed25519…).
    public var algorithm: UInt8
    /// Fingerprint type (1 SHA-1, 2 SHA-256).
    public var fingerprintType: UInt8
    /// The fingerprint.
    public var fingerprint: [UInt8]

    /// SSHFP data with these fields.
    public init(algorithm: UInt8, fingerprintType: UInt8, fingerprint: [UInt8]) {
        self.algorithm = algorithm
        self.fingerprintType = fingerprintType
        self.fingerprint = fingerprint
    }
}

/// TLSA data (RFC 6698 §2.1).
public struct TLSA: Hashable, Sendable {
    /// Certificate usage.
    public var usage: UInt8
    /// Selector (full certificate or public key).
    public var selector: UInt8
    /// Matching type (exact, SHA-256, SHA-512).
    public var matchingType: UInt8
    /// Certificate association data.
    public var data: [UInt8]

    /// TLSA data with these fields.
    public init(usage: UInt8, selector: UInt8, matchingType: UInt8, data: [UInt8]) {
        self.usage = usage
        self.selector = selector
        self.matchingType = matchingType
        self.data = data
    }
}

/// DS data (RFC 4034 §5.1).
public struct DS: Hashable, Sendable {
    /// Key tag of the DNSKEY referred to.
    public var keyTag: UInt16
    /// That key's algorithm.
    public var algorithm: UInt8
    /// Digest algorithm.
    public var digestType: UInt8
    /// The digest.
    public var digest: [UInt8]

    /// DS data with these fields.
    public init(keyTag: UInt16, algorithm: UInt8, digestType: UInt8, digest: [UInt8]) {
        self.keyTag = keyTag
        self.algorithm = algorithm
        self.digestType = digestType
        self.digest = digest
    }
}

/// DNSKEY data (RFC 4034 §2.1).
public struct DNSKEY: Hashable, Sendable {
    /// Flags: 256 zone key, 257 zone key + secure entry point.
    public var flags: UInt16
    /// Protocol; 3 (RFC 4034 §2.1.2).
    public var `protocol`: UInt8
    /// Algorithm.
    public var algorithm: UInt8
    /// The public key.
    public var publicKey: [UInt8]

    /// DNSKEY data with these fields.
    public init(flags: UInt16, protocol: UInt8, algorithm: UInt8, publicKey: [UInt8]) {
        self.flags = flags
        self.protocol = `protocol`
        self.algorithm = algorithm
        self.publicKey = publicKey
    }
}

/// RRSIG data (RFC 4034 §3.1).
public struct RRSIG: Hashable, Sendable {
    /// The type of the RRset signed.
    public var typeCovered: RecordType
    /// Algorithm.
    public var algorithm: UInt8
    /// Labels in the original owner name (wildcard aside).
    public var labels: UInt8
    /// TTL of the RRset as in the zone.
    public var originalTTL: UInt32
    /// Signature expiration, seconds since 1970 modulo 2^32 (RFC 4034 §3.1.5).
    public var expiration: UInt32
    /// Signature inception, same form.
    public var inception: UInt32
    /// Key tag of the signing key.
    public var keyTag: UInt16
    /// The signer's name (the zone); never compressed.
    public var signerName: DomainName
    /// The signature.
    public var signature: [UInt8]

    /// RRSIG data with these fields.
    public init(typeCovered: RecordType, algorithm: UInt8, labels: UInt8, originalTTL: UInt32, expiration: UInt32,
                inception: UInt32, keyTag: UInt16, signerName: DomainName, signature: [UInt8]) {
        self.typeCovered = typeCovered
        self.algorithm = algorithm
        self.labels = labels
        self.originalTTL = originalTTL
        self.expiration = expiration
        self.inception = inception
        self.keyTag = keyTag
        self.signerName = signerName
        self.signature = signature
    }
}

/// NSEC data (RFC 4034 §4.1).
public struct NSEC: Hashable, Sendable {
    /// The next owner name in canonical order; never compressed.
    public var nextDomainName: DomainName
    /// The types present at the owner, ascending, no duplicates.
    public var types: [RecordType]

    /// NSEC data; `types` is sorted and duplicates dropped.
    public init(nextDomainName: DomainName, types: [RecordType]) {
        self.nextDomainName = nextDomainName
        self.types = TypeBitmap.normalized(types)
    }
}

/// NSEC3 data (RFC 5155 §3.2).
public struct NSEC3: Hashable, Sendable {
    /// Hash algorithm (1 SHA-1).
    public var hashAlgorithm: UInt8
    /// Flags; bit 0 is Opt-Out.
    public var flags: UInt8
    /// Additional hash iterations.
    public var iterations: UInt16
    /// Salt, 0-255 bytes.
    public var salt: [UInt8]
    /// The next hashed owner name, raw (1-255 bytes).
    public var nextHashedOwnerName: [UInt8]
    /// The types present at the original owner, ascending, no duplicates.
    public var types: [RecordType]

    /// NSEC3 data; `types` is sorted and duplicates dropped.
    public init(hashAlgorithm: UInt8, flags: UInt8, iterations: UInt16, salt: [UInt8], nextHashedOwnerName: [UInt8], types: [RecordType]) {
        self.hashAlgorithm = hashAlgorithm
        self.flags = flags
        self.iterations = iterations
        self.salt = salt
        self.nextHashedOwnerName = nextHashedOwnerName
        self.types = TypeBitmap.normalized(types)
    }
}

/// NSEC3PARAM data (RFC 5155 §4.2).
public struct NSEC3PARAM: Hashable, Sendable {
    /// Hash algorithm (1 SHA-1).
    public var hashAlgorithm: UInt8
    /// Flags (0 in NSEC3PARAM).
    public var flags: UInt8
    /// Additional hash iterations.
    public var iterations: UInt16
    /// Salt, 0-255 bytes.
    public var salt: [UInt8]

    /// NSEC3PARAM data with these fields.
    public init(hashAlgorithm: UInt8, flags: UInt8, iterations: UInt16, salt: [UInt8]) {
        self.hashAlgorithm = hashAlgorithm
        self.flags = flags
        self.iterations = iterations
        self.salt = salt
    }
}
