import MirageDevices

// The presentation (zone file) form of each type's data, in and out.

extension RData {
    /// The generic form's marker, "\#" (RFC 3597 §5).
    static let genericMarker: [UInt8] = [UInt8(ascii: "\\"), UInt8(ascii: "#")]

    /// Presentation form: fields after the type in a zone file. Tokens keep their
    /// backslash escapes (undecoded) so names can tell "\." from "."; quotes are stripped.
    /// Handles the generic "\# LEN HEX" form (RFC 3597 §5) for every type.
    public init(type: RecordType, presentation tokens: [ZoneToken], origin: DomainName) throws(DNSError) {
        if let first = tokens.first, !first.quoted, first.text == Self.genericMarker {
            // RFC 3597 §5: "\#", the RDATA length in decimal, then the data in
            // hex, possibly split into several words.
            guard tokens.count >= 2, let length = Presentation.decimal(tokens[1].text, maximum: 65535) else {
                throw .syntax(reason: "\\# needs the data length")
            }
            var hex: [UInt8] = []
            for t in tokens.dropFirst(2) { hex.append(contentsOf: t.text) }
            let data = try Presentation.hex(hex)
            guard data.count == Int(length) else {
                throw .syntax(reason: "\\# length \(length) but \(data.count) bytes of data")
            }
            guard type != .opt else { throw .syntax(reason: "OPT is not zone data") }
            do {
                self = try RData.parse(type: type, data: data)
            } catch {
                throw .syntax(reason: "\\# data is not valid \(type): \(error)")
            }
            return
        }
        var p = FieldReader(tokens: tokens, origin: origin)
        switch type {
        case .a:
            let t = try p.word("address")
            guard let address = IPv4Address(String(decoding: t, as: UTF8.self)) else { throw .syntax(reason: "bad IPv4 address") }
            self = .a(address)
        case .aaaa:
            let t = try p.word("address")
            guard let address = IPv6Address(String(decoding: t, as: UTF8.self)) else { throw .syntax(reason: "bad IPv6 address") }
            self = .aaaa(address)
        case .ns:
            self = .ns(try p.name())
        case .cname:
            self = .cname(try p.name())
        case .ptr:
            self = .ptr(try p.name())
        case .soa:
            let mname = try p.name(), rname = try p.name()
            let serial = try p.number(UInt32.max, "serial")
            self = .soa(SOA(mname: mname, rname: rname, serial: serial, refresh: try p.period("refresh"),
                            retry: try p.period("retry"), expire: try p.period("expire"), minimum: try p.period("minimum")))
        case .mx:
            let preference = UInt16(truncatingIfNeeded: try p.number(65535, "preference"))
            self = .mx(preference: preference, exchange: try p.name())
        case .txt:
            var strings: [[UInt8]] = []
            while !p.atEnd { strings.append(try p.characterString()) }
            guard !strings.isEmpty else { throw .syntax(reason: "TXT needs at least one string") }
            self = .txt(strings)
        case .srv:
            let priority = UInt16(truncatingIfNeeded: try p.number(65535, "priority"))
            let weight = UInt16(truncatingIfNeeded: try p.number(65535, "weight"))
            let port = UInt16(truncatingIfNeeded: try p.number(65535, "port"))
            self = .srv(SRV(priority: priority, weight: weight, port: port, target: try p.name()))
        case .naptr:
            let order = UInt16(truncatingIfNeeded: try p.number(65535, "order"))
            let preference = UInt16(truncatingIfNeeded: try p.number(65535, "preference"))
            let flags = try p.characterString(), services = try p.characterString(), regexp = try p.characterString()
            self = .naptr(NAPTR(order: order, preference: preference, flags: flags, services: services, regexp: regexp,
                                replacement: try p.name()))
        case .caa:
            // RFC 8659 §4.1.1: flags, tag, then the value as one (usually quoted) string.
            let flags = UInt8(truncatingIfNeeded: try p.number(255, "flags"))
            let tag = try Presentation.unescape(try p.word("tag"))
            do { try CAA.checkTag(tag) } catch { throw .syntax(reason: "CAA tag must be 1-15 letters or digits") }
            let value = try Presentation.unescape(try p.word("value"))
            self = .caa(CAA(flags: flags, tag: tag, value: value))
        case .sshfp:
            let algorithm = UInt8(truncatingIfNeeded: try p.number(255, "algorithm"))
            let fingerprintType = UInt8(truncatingIfNeeded: try p.number(255, "fingerprint type"))
            self = .sshfp(SSHFP(algorithm: algorithm, fingerprintType: fingerprintType, fingerprint: try Presentation.hex(p.rest("fingerprint"))))
        case .tlsa:
            let usage = UInt8(truncatingIfNeeded: try p.number(255, "usage"))
            let selector = UInt8(truncatingIfNeeded: try p.number(255, "selector"))
            let matchingType = UInt8(truncatingIfNeeded: try p.number(255, "matching type"))
            self = .tlsa(TLSA(usage: usage, selector: selector, matchingType: matchingType, data: try Presentation.hex(p.rest("data"))))
        case .ds:
            let keyTag = UInt16(truncatingIfNeeded: try p.number(65535, "key tag"))
            let algorithm = try p.algorithm()
            let digestType = UInt8(truncatingIfNeeded: try p.number(255, "digest type"))
            self = .ds(DS(keyTag: keyTag, algorithm: algorithm, digestType: digestType, digest: try Presentation.hex(p.rest("digest"))))
        case .dnskey:
            let flags = UInt16(truncatingIfNeeded: try p.number(65535, "flags"))
            let proto = UInt8(truncatingIfNeeded: try p.number(255, "protocol"))
            let algorithm = try p.algorithm()
            self = .dnskey(DNSKEY(flags: flags, protocol: proto, algorithm: algorithm, publicKey: try Presentation.base64(p.rest("public key"))))
        case .rrsig:
            let covered = try p.type()
            let algorithm = try p.algorithm()
            let labels = UInt8(truncatingIfNeeded: try p.number(255, "labels"))
            let originalTTL = try p.number(UInt32.max, "original TTL")
            let expiration = try Presentation.time(p.word("expiration"))
            let inception = try Presentation.time(p.word("inception"))
            let keyTag = UInt16(truncatingIfNeeded: try p.number(65535, "key tag"))
            let signer = try p.name()
            self = .rrsig(RRSIG(typeCovered: covered, algorithm: algorithm, labels: labels, originalTTL: originalTTL,
                                expiration: expiration, inception: inception, keyTag: keyTag, signerName: signer,
                                signature: try Presentation.base64(p.rest("signature"))))
        case .nsec:
            let next = try p.name()
            var types: [RecordType] = []
            while !p.atEnd { types.append(try p.type()) }
            self = .nsec(NSEC(nextDomainName: next, types: types))
        case .nsec3:
            let algorithm = UInt8(truncatingIfNeeded: try p.number(255, "hash algorithm"))
            let flags = UInt8(truncatingIfNeeded: try p.number(255, "flags"))
            let iterations = UInt16(truncatingIfNeeded: try p.number(65535, "iterations"))
            let salt = try p.salt()
            let next = try Presentation.base32Hex(p.word("next hashed owner name"))
            guard !next.isEmpty, next.count <= 255 else { throw .syntax(reason: "next hashed owner name of \(next.count) bytes (1-255)") }
            var types: [RecordType] = []
            while !p.atEnd { types.append(try p.type()) }
            self = .nsec3(NSEC3(hashAlgorithm: algorithm, flags: flags, iterations: iterations, salt: salt,
                                nextHashedOwnerName: next, types: types))
        case .nsec3param:
            let algorithm = UInt8(truncatingIfNeeded: try p.number(255, "hash algorithm"))
            let flags = UInt8(truncatingIfNeeded: try p.number(255, "flags"))
            let iterations = UInt16(truncatingIfNeeded: try p.number(65535, "iterations"))
            self = .nsec3param(NSEC3PARAM(hashAlgorithm: algorithm, flags: flags, iterations: iterations, salt: try p.salt()))
        default:
            throw .syntax(reason: "\(type) data must be written in the \\# form (RFC 3597)")
        }
        guard p.atEnd else { throw .syntax(reason: "extra fields after the \(type) data") }
    }

    /// Presentation text of the data ("10 mail.example.com.", "\"v=spf1 -all\"").
    public var presentation: String {
        var out: [UInt8] = []
        appendPresentation(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the presentation text of the data.
    public func appendPresentation(to out: inout [UInt8]) {
        let space = UInt8(ascii: " ")
        func number<T: BinaryInteger>(_ v: T) {
            Presentation.appendDecimal(v, to: &out)
            out.append(space)
        }
        if needsGenericPresentation {
            var w = MessageWriter()
            w.compressionEnabled = false
            if (try? emit(into: &w)) != nil {
                Self.appendGeneric(w.bytes, to: &out)
                return
            }
        }
        switch self {
        case .a(let address):
            out.append(contentsOf: address.description.utf8)
        case .aaaa(let address):
            out.append(contentsOf: address.description.utf8)
        case .ns(let name), .cname(let name), .ptr(let name):
            name.appendPresentation(to: &out)
        case .soa(let soa):
            soa.mname.appendPresentation(to: &out)
            out.append(space)
            soa.rname.appendPresentation(to: &out)
            out.append(space)
            number(soa.serial)
            number(soa.refresh)
            number(soa.retry)
            number(soa.expire)
            Presentation.appendDecimal(soa.minimum, to: &out)
        case .mx(let preference, let exchange):
            number(preference)
            exchange.appendPresentation(to: &out)
        case .txt(let strings):
            for (i, s) in strings.enumerated() {
                if i > 0 { out.append(space) }
                Presentation.appendQuoted(s, to: &out)
            }
        case .srv(let srv):
            number(srv.priority)
            number(srv.weight)
            number(srv.port)
            srv.target.appendPresentation(to: &out)
        case .naptr(let naptr):
            number(naptr.order)
            number(naptr.preference)
            for s in [naptr.flags, naptr.services, naptr.regexp] {
                Presentation.appendQuoted(s, to: &out)
                out.append(space)
            }
            naptr.replacement.appendPresentation(to: &out)
        case .caa(let caa):
            number(caa.flags)
            for c in caa.tag { appendEscaped(c, to: &out) }
            out.append(space)
            Presentation.appendQuoted(caa.value, to: &out)
        case .sshfp(let sshfp):
            number(sshfp.algorithm)
            number(sshfp.fingerprintType)
            Presentation.appendHex(sshfp.fingerprint, to: &out)
        case .tlsa(let tlsa):
            number(tlsa.usage)
            number(tlsa.selector)
            number(tlsa.matchingType)
            Presentation.appendHex(tlsa.data, to: &out)
        case .ds(let ds):
            number(ds.keyTag)
            number(ds.algorithm)
            number(ds.digestType)
            Presentation.appendHex(ds.digest, to: &out)
        case .dnskey(let key):
            number(key.flags)
            number(key.protocol)
            number(key.algorithm)
            Presentation.appendBase64(key.publicKey, to: &out)
        case .rrsig(let sig):
            out.append(contentsOf: sig.typeCovered.description.utf8)
            out.append(space)
            number(sig.algorithm)
            number(sig.labels)
            number(sig.originalTTL)
            Presentation.appendTime(sig.expiration, to: &out)
            out.append(space)
            Presentation.appendTime(sig.inception, to: &out)
            out.append(space)
            number(sig.keyTag)
            sig.signerName.appendPresentation(to: &out)
            out.append(space)
            Presentation.appendBase64(sig.signature, to: &out)
        case .nsec(let nsec):
            nsec.nextDomainName.appendPresentation(to: &out)
            Self.appendTypes(nsec.types, to: &out)
        case .nsec3(let nsec3):
            number(nsec3.hashAlgorithm)
            number(nsec3.flags)
            number(nsec3.iterations)
            Self.appendSalt(nsec3.salt, to: &out)
            out.append(space)
            Presentation.appendBase32Hex(nsec3.nextHashedOwnerName, to: &out)
            Self.appendTypes(nsec3.types, to: &out)
        case .nsec3param(let param):
            number(param.hashAlgorithm)
            number(param.flags)
            number(param.iterations)
            Self.appendSalt(param.salt, to: &out)
        case .unknown(_, let data):
            Self.appendGeneric(data, to: &out)
        }
    }

    /// Appends the RFC 3597 §5 generic form, "\# LEN HEX" ("\# 0" when empty).
    static func appendGeneric(_ data: [UInt8], to out: inout [UInt8]) {
        out.append(contentsOf: genericMarker)
        out.append(UInt8(ascii: " "))
        Presentation.appendDecimal(data.count, to: &out)
        if !data.isEmpty {
            out.append(UInt8(ascii: " "))
            Presentation.appendHex(data, to: &out)
        }
    }

    /// Whether a field the presentation form cannot show empty is empty:
    /// such data is written in the generic form instead.
    var needsGenericPresentation: Bool {
        switch self {
        case .sshfp(let v): v.fingerprint.isEmpty
        case .tlsa(let v): v.data.isEmpty
        case .ds(let v): v.digest.isEmpty
        case .dnskey(let v): v.publicKey.isEmpty
        case .rrsig(let v): v.signature.isEmpty
        default: false
        }
    }

    /// A salt in hex, "-" when empty (RFC 5155 §3.3).
    private static func appendSalt(_ salt: [UInt8], to out: inout [UInt8]) {
        if salt.isEmpty {
            out.append(UInt8(ascii: "-"))
        } else {
            Presentation.appendHex(salt, to: &out)
        }
    }

    /// " A NS SOA …" for a type bitmap.
    private static func appendTypes(_ types: [RecordType], to out: inout [UInt8]) {
        for t in types {
            out.append(UInt8(ascii: " "))
            out.append(contentsOf: t.description.utf8)
        }
    }
}

/// Reads the fields of one record's data from its tokens.
private struct FieldReader {
    let tokens: [ZoneToken]
    let origin: DomainName
    var index = 0

    init(tokens: [ZoneToken], origin: DomainName) {
        self.tokens = tokens
        self.origin = origin
    }

    var atEnd: Bool { index >= tokens.count }

    /// The next token's raw bytes.
    mutating func word(_ what: String) throws(DNSError) -> [UInt8] {
        guard index < tokens.count else { throw .syntax(reason: "missing \(what)") }
        index += 1
        return tokens[index - 1].text
    }

    /// A decimal number of at most `maximum`.
    mutating func number(_ maximum: UInt32, _ what: String) throws(DNSError) -> UInt32 {
        let t = try word(what)
        guard let v = Presentation.decimal(t, maximum: maximum) else {
            throw .syntax(reason: "bad \(what) \"\(String(decoding: t, as: UTF8.self))\" (0-\(maximum))")
        }
        return v
    }

    /// A time period (SOA timers), with BIND's units allowed.
    mutating func period(_ what: String) throws(DNSError) -> UInt32 {
        let t = try word(what)
        guard let v = Presentation.period(t) else { throw .syntax(reason: "bad \(what) \"\(String(decoding: t, as: UTF8.self))\"") }
        return v
    }

    /// A domain name, relative to the origin unless absolute.
    mutating func name() throws(DNSError) -> DomainName {
        try DomainName(presentation: try word("name"), origin: origin)
    }

    /// A <character-string>: escapes decoded, at most 255 bytes.
    mutating func characterString() throws(DNSError) -> [UInt8] {
        let bytes = try Presentation.unescape(try word("string"))
        guard bytes.count <= RData.maximumCharacterStringLength else {
            throw .syntax(reason: "character-string of \(bytes.count) bytes (at most 255)")
        }
        return bytes
    }

    /// A type mnemonic or TYPEnnn.
    mutating func type() throws(DNSError) -> RecordType {
        let t = try word("type")
        guard let type = RecordType(mnemonic: t.span) else { throw .syntax(reason: "unknown type \"\(String(decoding: t, as: UTF8.self))\"") }
        return type
    }

    /// A DNSSEC algorithm number or mnemonic (RFC 4034 §2.2, §3.2, §5.3).
    mutating func algorithm() throws(DNSError) -> UInt8 {
        let t = try word("algorithm")
        if let v = Presentation.decimal(t, maximum: 255) { return UInt8(truncatingIfNeeded: v) }
        for (value, name) in Presentation.algorithms where matchesFolded(t.span, name) {
            return UInt8(truncatingIfNeeded: value)
        }
        throw .syntax(reason: "unknown algorithm \"\(String(decoding: t, as: UTF8.self))\"")
    }

    /// An NSEC3 salt: hex, or "-" for none (RFC 5155 §3.3).
    mutating func salt() throws(DNSError) -> [UInt8] {
        let t = try word("salt")
        if t == [UInt8(ascii: "-")] { return [] }
        let salt = try Presentation.hex(t)
        guard salt.count <= 255 else { throw .syntax(reason: "salt over 255 bytes") }
        return salt
    }

    /// The remaining tokens joined (hex and base64 may be split by spaces).
    mutating func rest(_ what: String) throws(DNSError) -> [UInt8] {
        guard index < tokens.count else { throw .syntax(reason: "missing \(what)") }
        var out: [UInt8] = []
        while index < tokens.count {
            out.append(contentsOf: tokens[index].text)
            index += 1
        }
        return out
    }
}
