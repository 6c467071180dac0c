import MirageDevices

// RDATA wire formats. Only the RFC 1035 types whose data holds names (NS,
// CNAME, SOA, PTR, MX) may compress them (RFC 3597 §4), so only those are
// compressed on write. On read, a pointer is followed in any name of a
// message's RDATA: some senders compress SRV and NAPTR targets (dnspython
// does), and a pointer that follows the rules reads unambiguously.

extension RData {
    /// Longest <character-string> (RFC 1035 §3.3).
    public static let maximumCharacterStringLength = 255

    /// Decodes `length` bytes at `offset` of `message` (names of NS, CNAME, SOA,
    /// PTR, MX may be compressed — RFC 3597 §4; other types' names should not
    /// be, but a valid pointer in them is followed too).
    public static func parse(type: RecordType, message: Span<UInt8>, offset: Int, length: Int) throws(DNSError) -> RData {
        try parse(type: type, message: message, offset: offset, length: length, compressed: true)
    }

    /// Decodes `bytes` as the whole RDATA of `type` outside a message (the
    /// generic "\#" form): no name may be compressed.
    public static func parse(type: RecordType, data bytes: [UInt8]) throws(DNSError) -> RData {
        try parse(type: type, message: bytes.span, offset: 0, length: bytes.count, compressed: false)
    }

    private static func parse(type: RecordType, message: Span<UInt8>, offset: Int, length: Int, compressed: Bool) throws(DNSError) -> RData {
        guard offset >= 0, length >= 0, length <= message.count - offset else {
            throw .truncated(offset: message.count, needed: max(0, offset + length - message.count))
        }
        var r = MessageReader(message, offset: offset, end: offset + length)
        r.compressed = compressed
        let data: RData
        do {
            data = try parseFields(type: type, &r)
        } catch {
            // Running out inside the RDATA means RDLENGTH and the content disagree.
            switch error {
            case .truncated: throw .badRecordData(type: type.rawValue, reason: "RDATA shorter than its fields")
            case .badRecordData(0, let reason): throw .badRecordData(type: type.rawValue, reason: reason)
            default: throw error
            }
        }
        guard r.remaining == 0 else {
            throw .badRecordData(type: type.rawValue, reason: "\(r.remaining) bytes after the fields")
        }
        return data
    }

    private static func parseFields(type: RecordType, _ r: inout MessageReader) throws(DNSError) -> RData {
        switch type {
        case .a:
            return .a(IPv4Address(rawValue: try r.u32()))
        case .aaaa:
            let high = UInt64(try r.u32()) << 32 | UInt64(try r.u32())
            let low = UInt64(try r.u32()) << 32 | UInt64(try r.u32())
            return .aaaa(IPv6Address(high: high, low: low))
        case .ns:
            return .ns(try r.name())
        case .cname:
            return .cname(try r.name())
        case .ptr:
            return .ptr(try r.name())
        case .soa:
            let mname = try r.name()
            let rname = try r.name()
            return .soa(SOA(mname: mname, rname: rname, serial: try r.u32(), refresh: try r.u32(),
                            retry: try r.u32(), expire: try r.u32(), minimum: try r.u32()))
        case .mx:
            let preference = try r.u16()
            return .mx(preference: preference, exchange: try r.name())
        case .txt:
            guard r.remaining > 0 else { throw .badRecordData(type: type.rawValue, reason: "TXT without a string") }
            var strings: [[UInt8]] = []
            while r.remaining > 0 { strings.append(try r.characterString()) }
            return .txt(strings)
        case .srv:
            let priority = try r.u16(), weight = try r.u16(), port = try r.u16()
            return .srv(SRV(priority: priority, weight: weight, port: port, target: try r.name()))
        case .naptr:
            let order = try r.u16(), preference = try r.u16()
            let flags = try r.characterString(), services = try r.characterString(), regexp = try r.characterString()
            return .naptr(NAPTR(order: order, preference: preference, flags: flags, services: services, regexp: regexp,
                                replacement: try r.name()))
        case .caa:
            let flags = try r.u8()
            let tag = try r.characterString()
            try CAA.checkTag(tag)
            return .caa(CAA(flags: flags, tag: tag, value: try r.bytes(r.remaining)))
        case .sshfp:
            let algorithm = try r.u8(), fingerprintType = try r.u8()
            return .sshfp(SSHFP(algorithm: algorithm, fingerprintType: fingerprintType, fingerprint: try r.bytes(r.remaining)))
        case .tlsa:
            let usage = try r.u8(), selector = try r.u8(), matchingType = try r.u8()
            return .tlsa(TLSA(usage: usage, selector: selector, matchingType: matchingType, data: try r.bytes(r.remaining)))
        case .ds:
            let keyTag = try r.u16(), algorithm = try r.u8(), digestType = try r.u8()
            return .ds(DS(keyTag: keyTag, algorithm: algorithm, digestType: digestType, digest: try r.bytes(r.remaining)))
        case .dnskey:
            let flags = try r.u16(), proto = try r.u8(), algorithm = try r.u8()
            return .dnskey(DNSKEY(flags: flags, protocol: proto, algorithm: algorithm, publicKey: try r.bytes(r.remaining)))
        case .rrsig:
            let covered = RecordType(rawValue: try r.u16())
            let algorithm = try r.u8(), labels = try r.u8()
            let originalTTL = try r.u32(), expiration = try r.u32(), inception = try r.u32()
            let keyTag = try r.u16()
            let signer = try r.name()
            return .rrsig(RRSIG(typeCovered: covered, algorithm: algorithm, labels: labels, originalTTL: originalTTL,
                                expiration: expiration, inception: inception, keyTag: keyTag, signerName: signer,
                                signature: try r.bytes(r.remaining)))
        case .nsec:
            let next = try r.name()
            return .nsec(NSEC(nextDomainName: next, types: try TypeBitmap.read(&r)))
        case .nsec3:
            let algorithm = try r.u8(), flags = try r.u8(), iterations = try r.u16()
            let salt = try r.characterString()
            let hashLength = Int(try r.u8())
            // RFC 5155 §3.2: the hash length is at least 1.
            guard hashLength > 0 else { throw .badRecordData(type: type.rawValue, reason: "empty next hashed owner name") }
            let next = try r.bytes(hashLength)
            return .nsec3(NSEC3(hashAlgorithm: algorithm, flags: flags, iterations: iterations, salt: salt,
                                nextHashedOwnerName: next, types: try TypeBitmap.read(&r)))
        case .nsec3param:
            let algorithm = try r.u8(), flags = try r.u8(), iterations = try r.u16()
            return .nsec3param(NSEC3PARAM(hashAlgorithm: algorithm, flags: flags, iterations: iterations, salt: try r.characterString()))
        default:
            return .unknown(type: type, data: try r.bytes(r.remaining))
        }
    }

    /// Writes the RDATA (without RDLENGTH); compresses only NS/CNAME/SOA/PTR/MX names (RFC 3597 §4).
    public func emit(into writer: inout MessageWriter) throws(DNSError) {
        do {
            try emitFields(into: &writer)
        } catch {
            if case .badRecordData(0, let reason) = error { throw .badRecordData(type: type.rawValue, reason: reason) }
            throw error
        }
    }

    private func emitFields(into w: inout MessageWriter) throws(DNSError) {
        switch self {
        case .a(let address):
            try w.write(address.rawValue)
        case .aaaa(let address):
            try w.write(UInt32(truncatingIfNeeded: address.high >> 32))
            try w.write(UInt32(truncatingIfNeeded: address.high))
            try w.write(UInt32(truncatingIfNeeded: address.low >> 32))
            try w.write(UInt32(truncatingIfNeeded: address.low))
        case .ns(let name), .cname(let name), .ptr(let name):
            try w.write(name, compress: true)
        case .soa(let soa):
            try w.write(soa.mname, compress: true)
            try w.write(soa.rname, compress: true)
            try w.write(soa.serial)
            try w.write(soa.refresh)
            try w.write(soa.retry)
            try w.write(soa.expire)
            try w.write(soa.minimum)
        case .mx(let preference, let exchange):
            try w.write(preference)
            try w.write(exchange, compress: true)
        case .txt(let strings):
            guard !strings.isEmpty else { throw .badRecordData(type: 0, reason: "TXT without a string") }
            for s in strings { try w.write(characterString: s) }
        case .srv(let srv):
            try w.write(srv.priority)
            try w.write(srv.weight)
            try w.write(srv.port)
            try w.write(srv.target, compress: false)
        case .naptr(let naptr):
            try w.write(naptr.order)
            try w.write(naptr.preference)
            try w.write(characterString: naptr.flags)
            try w.write(characterString: naptr.services)
            try w.write(characterString: naptr.regexp)
            try w.write(naptr.replacement, compress: false)
        case .caa(let caa):
            try CAA.checkTag(caa.tag)
            try w.write(caa.flags)
            try w.write(characterString: caa.tag)
            try w.write(caa.value)
        case .sshfp(let sshfp):
            try w.write(sshfp.algorithm)
            try w.write(sshfp.fingerprintType)
            try w.write(sshfp.fingerprint)
        case .tlsa(let tlsa):
            try w.write(tlsa.usage)
            try w.write(tlsa.selector)
            try w.write(tlsa.matchingType)
            try w.write(tlsa.data)
        case .ds(let ds):
            try w.write(ds.keyTag)
            try w.write(ds.algorithm)
            try w.write(ds.digestType)
            try w.write(ds.digest)
        case .dnskey(let key):
            try w.write(key.flags)
            try w.write(key.protocol)
            try w.write(key.algorithm)
            try w.write(key.publicKey)
        case .rrsig(let sig):
            try w.write(sig.typeCovered.rawValue)
            try w.write(sig.algorithm)
            try w.write(sig.labels)
            try w.write(sig.originalTTL)
            try w.write(sig.expiration)
            try w.write(sig.inception)
            try w.write(sig.keyTag)
            try w.write(sig.signerName, compress: false)
            try w.write(sig.signature)
        case .nsec(let nsec):
            try w.write(nsec.nextDomainName, compress: false)
            try TypeBitmap.write(nsec.types, into: &w)
        case .nsec3(let nsec3):
            try w.write(nsec3.hashAlgorithm)
            try w.write(nsec3.flags)
            try w.write(nsec3.iterations)
            try w.write(characterString: nsec3.salt)
            guard !nsec3.nextHashedOwnerName.isEmpty else { throw .badRecordData(type: 0, reason: "empty next hashed owner name") }
            try w.write(characterString: nsec3.nextHashedOwnerName)
            try TypeBitmap.write(nsec3.types, into: &w)
        case .nsec3param(let param):
            try w.write(param.hashAlgorithm)
            try w.write(param.flags)
            try w.write(param.iterations)
            try w.write(characterString: param.salt)
        case .unknown(_, let data):
            try w.write(data)
        }
    }
}

extension CAA {
    /// Longest tag (RFC 8659 §4.1: 1-15 characters).
    public static let maximumTagLength = 15

    /// RFC 8659 §4.1: a tag is 1-15 ASCII letters and digits.
    static func checkTag(_ tag: [UInt8]) throws(DNSError) {
        guard !tag.isEmpty, tag.count <= maximumTagLength else {
            throw .badRecordData(type: RecordType.caa.rawValue, reason: "CAA tag of \(tag.count) characters (1-15)")
        }
        for c in tag {
            let letter = asciiLower(c) &- UInt8(ascii: "a") < 26
            guard letter || isDigit(c) else { throw .badRecordData(type: RecordType.caa.rawValue, reason: "CAA tag not alphanumeric") }
        }
    }
}

/// The NSEC/NSEC3 type bit maps (RFC 4034 §4.1.2): per 256-type window
/// present, the window number, a bitmap length of 1-32 and the bitmap, where
/// bit k of the window (most significant first) stands for type window·256+k.
enum TypeBitmap {
    /// Longest bitmap of one window (RFC 4034 §4.1.2).
    static let maximumBitmapLength = 32

    /// `types` ascending without duplicates.
    static func normalized(_ types: [RecordType]) -> [RecordType] {
        var sorted = types
        var isSorted = true
        var i = 1
        while i < sorted.count {
            if sorted[i - 1].rawValue >= sorted[i].rawValue { isSorted = false; break }
            i += 1
        }
        if isSorted { return types }
        sorted.sort()
        var out: [RecordType] = []
        out.reserveCapacity(sorted.count)
        for t in sorted where out.last != t { out.append(t) }
        return out
    }

    /// Reads the windows up to the reader's end. Windows must ascend (RFC
    /// 4034 §4.1.2) and lengths be 1-32; a block of zeros is tolerated.
    static func read(_ r: inout MessageReader) throws(DNSError) -> [RecordType] {
        var types: [RecordType] = []
        var lastWindow = -1
        while r.remaining > 0 {
            let window = Int(try r.u8())
            let length = Int(try r.u8())
            guard window > lastWindow else { throw .badRecordData(type: 0, reason: "type bitmap windows out of order") }
            guard length >= 1, length <= maximumBitmapLength else {
                throw .badRecordData(type: 0, reason: "type bitmap length \(length) (1-32)")
            }
            try r.need(length)
            for i in 0..<length {
                let byte = r.message[r.offset + i]
                guard byte != 0 else { continue }
                for bit in 0..<8 where byte & (0x80 >> UInt8(bit)) != 0 {
                    types.append(RecordType(rawValue: UInt16(truncatingIfNeeded: window << 8 | i << 3 | bit)))
                }
            }
            r.offset += length
            lastWindow = window
        }
        return types
    }

    /// Writes `types` in canonical form: ascending windows, only windows
    /// with a type, no trailing zero bytes.
    static func write(_ types: [RecordType], into w: inout MessageWriter) throws(DNSError) {
        let sorted = normalized(types)
        var i = 0
        while i < sorted.count {
            let window = sorted[i].rawValue >> 8
            var bitmap = InlineArray<32, UInt8>(repeating: 0)
            var length = 0
            while i < sorted.count, sorted[i].rawValue >> 8 == window {
                let low = Int(sorted[i].rawValue & 0xFF)
                bitmap[low >> 3] |= 0x80 >> UInt8(low & 7)
                length = max(length, (low >> 3) + 1)
                i += 1
            }
            try w.write(UInt8(truncatingIfNeeded: window))
            try w.write(UInt8(truncatingIfNeeded: length))
            for k in 0..<length { try w.write(bitmap[k]) }
        }
    }
}
