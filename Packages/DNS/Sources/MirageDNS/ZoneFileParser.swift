import MirageDevices

/// One record as read from a zone file, with where it came from.
public struct ZoneFileEntry: Hashable, Sendable {
    /// The record, its owner and data absolute.
    public var record: ResourceRecord
    /// The file it was read from: the name given to the parser, or the
    /// `$INCLUDE`d key.
    public var file: String
    /// The line (from 1) its entry starts on.
    public var line: Int

    /// An entry for `record` read at `file`:`line`.
    public init(record: ResourceRecord, file: String, line: Int) {
        self.record = record
        self.file = file
        self.line = line
    }
}

/// Reads zone files: the master file format of RFC 1035 §5.1, with `$TTL`
/// (RFC 2308 §4), the generic `TYPEnnn` and `\#` forms (RFC 3597 §5) and
/// BIND's TTL units (`1h30m`, which NSD accepts too).
///
/// How the fields a line may omit are filled in:
/// - owner (the line starts with a blank): the previous record's owner; an
///   error when there is none yet (BIND refuses such a line too);
/// - class: IN; a class given must be IN (only IN zones are served);
/// - TTL: the `$TTL` in force; before any `$TTL`, the TTL of the previous
///   record that gave one, or `defaultTTL` when none did (NSD's zone parser,
///   simdzone, does the same; BIND too). An SOA record read with no TTL
///   available takes its MINIMUM field as its TTL and as the default for the
///   records after it, as BIND does (RFC 1035 §3.3.13 made MINIMUM the
///   zone's default TTL before RFC 2308). Any other record with no TTL
///   available is an error.
///
/// `$INCLUDE name [origin]` reads `name` from the key-value store given;
/// the included text starts with the includer's origin (or `origin`) and
/// current owner, and when it ends, both revert (RFC 1035 §5.1). `$TTL` is
/// not scoped that way: it applies to every record after it (RFC 2308 §4),
/// in the includer too, as in BIND and NSD.
public struct ZoneFileParser {
    /// Deepest nesting of `$INCLUDE`s (a file including itself stops
    /// here). RFC 1035 sets no limit; NSD's default is 10, as is ours.
    public static let maximumIncludeDepth = 10
    /// Most `$INCLUDE` directives followed in one parse. The depth limit
    /// alone lets a file that includes itself twice be read 2¹⁰ times; this
    /// bounds the fan-out (no RFC sets a limit).
    public static let maximumIncludes = 1_000
    /// Most records in one parse, includes counted. No RFC sets a limit;
    /// this bounds the memory a hostile or runaway file can take while
    /// leaving room for zones far larger than one authoritative server
    /// here is expected to serve.
    public static let maximumRecords = 1_000_000
    /// Largest TTL accepted: RFC 2181 §8 limits TTLs to 2³¹ − 1 (values with
    /// the top bit set mean zero on the wire); a zone file asking for more
    /// is refused rather than silently cut, as NSD's simdzone does.
    public static let maximumTTL: UInt32 = 0x7FFF_FFFF

    /// Parses a zone file (RFC 1035 §5.1). `$INCLUDE name [origin]` reads
    /// `name` from `includes` (a KeyValueStore key). Errors:
    /// `.zone(file:line:reason:)` naming the file (the included key for
    /// included lines), the line (from 1) and what is wrong.
    public static func parse<Store: KeyValueStore>(
        _ text: [UInt8], file: String, origin: DomainName,
        defaultTTL: UInt32? = nil, includes: Store
    ) throws(DNSError) -> [ZoneFileEntry] {
        try parse(text, file: file, origin: origin, defaultTTL: defaultTTL, includes: includes, maximumRecords: maximumRecords)
    }

    /// `parse` with another record limit (tests reach the limit with a few records).
    static func parse<Store: KeyValueStore>(
        _ text: [UInt8], file: String, origin: DomainName, defaultTTL: UInt32?, includes: Store, maximumRecords: Int
    ) throws(DNSError) -> [ZoneFileEntry] {
        var reader = Reader(previousTTL: defaultTTL, maximumRecords: maximumRecords)
        try reader.read(text, file: file, origin: origin, owner: nil, depth: 0, store: includes)
        return reader.entries
    }

    /// Reads a TTL field: a decimal number of seconds, or BIND's unit form,
    /// one or more `<number><unit>` with units s, m, h, d, w (any case),
    /// added up (`1h30m` = 5400). At most `maximumTTL`. Throws `.syntax`.
    public static func ttl(_ text: [UInt8]) throws(DNSError) -> UInt32 {
        guard !text.isEmpty else { throw .syntax(reason: "empty TTL") }
        var total: UInt64 = 0
        var number: UInt64 = 0
        var digits = 0
        var sawUnit = false
        for byte in text {
            switch byte {
            case 0x30...0x39:
                number = number * 10 + UInt64(byte - 0x30)
                digits += 1
                // 2³² overflows the field whatever follows; stop before UInt64 could.
                guard number <= UInt64(UInt32.max) else { throw .syntax(reason: "TTL \(printable(text)) is too large") }
            default:
                let multiplier: UInt64
                switch byte | 0x20 {  // ASCII lower case
                case 0x73: multiplier = 1  // s
                case 0x6D: multiplier = 60  // m
                case 0x68: multiplier = 3600  // h
                case 0x64: multiplier = 86_400  // d
                case 0x77: multiplier = 604_800  // w
                default: throw .syntax(reason: "bad TTL \(printable(text)): \(printable([byte])) is neither a digit nor a unit (s, m, h, d, w)")
                }
                guard digits > 0 else { throw .syntax(reason: "bad TTL \(printable(text)): a unit without a number before it") }
                total += number * multiplier
                guard total <= UInt64(UInt32.max) else { throw .syntax(reason: "TTL \(printable(text)) is too large") }
                number = 0
                digits = 0
                sawUnit = true
            }
        }
        if digits > 0 {
            // BIND refuses "1h30": once units are used, every number has one.
            guard !sawUnit else { throw .syntax(reason: "bad TTL \(printable(text)): a number without a unit after one with a unit") }
            total = number
        }
        guard total <= UInt64(maximumTTL) else {
            throw .syntax(reason: "TTL \(printable(text)) is over \(maximumTTL), the largest RFC 2181 §8 allows")
        }
        return UInt32(total)
    }

    /// Whether records of `type` may not be stored in a zone: type 0 and
    /// the Q and meta types (RFC 6895 §3.1: 128–255, and OPT, 41, which
    /// exists only in messages, RFC 6891 §6.1.1). BIND refuses these too.
    static func isMetaType(_ type: RecordType) -> Bool {
        type.rawValue == 0 || type.rawValue == 41 || (128...255).contains(type.rawValue)
    }

    /// Longest piece of input quoted in an error message.
    static let maximumQuotedLength = 128

    /// `bytes` for an error message, in single quotes: printable ASCII as
    /// is, other bytes as `\DDD`, cut to `maximumQuotedLength` bytes.
    static func printable(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = [0x27]
        for byte in bytes.prefix(maximumQuotedLength) {
            if byte >= 0x20 && byte < 0x7F && byte != 0x27 {
                out.append(byte)
            } else {
                out.append(0x5C)
                out.append(0x30 + byte / 100)
                out.append(0x30 + byte / 10 % 10)
                out.append(0x30 + byte % 10)
            }
        }
        if bytes.count > maximumQuotedLength { out += [0x2E, 0x2E, 0x2E] }
        out.append(0x27)
        return String(decoding: out, as: UTF8.self)
    }

    /// The reason an error from a field parser gives, without repeating a
    /// location it does not have.
    static func reason(_ error: DNSError) -> String {
        if case .syntax(let reason) = error { return reason }
        return error.description
    }

    /// `bytes` with ASCII letters upper-cased (no Unicode tables needed).
    static func asciiUppercased(_ bytes: [UInt8]) -> [UInt8] {
        bytes.map { $0 >= 0x61 && $0 <= 0x7A ? $0 - 0x20 : $0 }
    }

    /// Decodes `\X` and `\DDD` in a token (an `$INCLUDE` file name).
    static func decodeEscapes(_ text: [UInt8]) throws(DNSError) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < text.count {
            guard text[i] == 0x5C else {
                out.append(text[i])
                i += 1
                continue
            }
            guard i + 1 < text.count else { throw .syntax(reason: "backslash at the end of \(printable(text))") }
            let next = text[i + 1]
            if next >= 0x30 && next <= 0x39 {
                guard i + 3 < text.count else {
                    throw .syntax(reason: "\\DDD escape with fewer than three digits in \(printable(text))")
                }
                var value = 0
                for d in text[(i + 1)..<(i + 4)] {
                    guard d >= 0x30 && d <= 0x39 else {
                        throw .syntax(reason: "\\DDD escape with fewer than three digits in \(printable(text))")
                    }
                    value = value * 10 + Int(d - 0x30)
                }
                guard value <= 255 else { throw .syntax(reason: "\\DDD escape over 255 in \(printable(text))") }
                out.append(UInt8(value))
                i += 4
            } else {
                out.append(next)
                i += 2
            }
        }
        return out
    }
}

// MARK: - Reading

extension ZoneFileParser {
    /// The state shared by a file and the files it includes.
    struct Reader {
        var entries: [ZoneFileEntry] = []
        /// The `$TTL` in force (RFC 2308 §4); nil before the first.
        var dollarTTL: UInt32? = nil
        /// The TTL of the last record that gave one (or `defaultTTL`), for
        /// records without one before any `$TTL`.
        var previousTTL: UInt32?
        var includesFollowed = 0
        let maximumRecords: Int

        init(previousTTL: UInt32?, maximumRecords: Int) {
            self.previousTTL = previousTTL
            self.maximumRecords = maximumRecords
        }

        /// Reads one file's text, starting from the includer's `origin` and
        /// `owner`; changes to them stay inside this file, the includer keeps
        /// its own (RFC 1035 §5.1: they revert after an `$INCLUDE`).
        mutating func read<Store: KeyValueStore>(
            _ text: [UInt8], file: String, origin startOrigin: DomainName, owner startOwner: DomainName?,
            depth: Int, store: Store
        ) throws(DNSError) {
            var lexer = ZoneLexer(text, file: file)
            var origin = startOrigin
            var owner = startOwner
            while let entry = try lexer.next() {
                let first = entry.tokens[0]
                if !entry.startsWithBlank && !first.quoted && first.text.first == 0x24 {  // '$'
                    try directive(entry, file: file, origin: &origin, owner: owner, depth: depth, store: store)
                } else {
                    let record = try self.record(entry, file: file, origin: origin, owner: owner)
                    owner = record.name
                    guard entries.count < maximumRecords else {
                        throw DNSError.zone(file: file, line: entry.line, reason: "more than \(maximumRecords) records")
                    }
                    entries.append(ZoneFileEntry(record: record, file: file, line: entry.line))
                }
            }
        }

        /// `$ORIGIN`, `$TTL` or `$INCLUDE` (RFC 1035 §5.1, RFC 2308 §4).
        mutating func directive<Store: KeyValueStore>(
            _ entry: ZoneLexer.Entry, file: String, origin: inout DomainName, owner: DomainName?,
            depth: Int, store: Store
        ) throws(DNSError) {
            let name = entry.tokens[0].text
            let arguments = entry.tokens.dropFirst()
            func fail(_ reason: String, at index: Int = 0) -> DNSError {
                .zone(file: file, line: entry.tokenLines[index], reason: reason)
            }
            switch asciiUppercased(name) {
            case Array("$ORIGIN".utf8):
                guard arguments.count == 1 else { throw fail("$ORIGIN takes one domain name, not \(arguments.count) fields") }
                do {
                    // A relative name is taken relative to the current origin, as BIND does.
                    origin = try DomainName(presentation: entry.tokens[1].text, origin: origin)
                } catch {
                    throw fail("bad $ORIGIN \(printable(entry.tokens[1].text)): \(reason(error))", at: 1)
                }
            case Array("$TTL".utf8):
                guard arguments.count == 1 else { throw fail("$TTL takes one TTL, not \(arguments.count) fields") }
                do {
                    let value = try ttl(entry.tokens[1].text)
                    dollarTTL = value
                    previousTTL = value
                } catch {
                    throw fail(reason(error), at: 1)
                }
            case Array("$INCLUDE".utf8):
                guard arguments.count == 1 || arguments.count == 2 else {
                    throw fail("$INCLUDE takes a file name and an optional origin, not \(arguments.count) fields")
                }
                let key: String
                do {
                    key = String(decoding: try decodeEscapes(entry.tokens[1].text), as: UTF8.self)
                } catch {
                    throw fail("bad $INCLUDE file name: \(reason(error))", at: 1)
                }
                var includeOrigin = origin
                if arguments.count == 2 {
                    do {
                        includeOrigin = try DomainName(presentation: entry.tokens[2].text, origin: origin)
                    } catch {
                        throw fail("bad $INCLUDE origin \(printable(entry.tokens[2].text)): \(reason(error))", at: 2)
                    }
                }
                guard depth < maximumIncludeDepth else {
                    throw fail("$INCLUDE nested deeper than \(maximumIncludeDepth) files (does a file include itself?)")
                }
                guard includesFollowed < maximumIncludes else { throw fail("more than \(maximumIncludes) $INCLUDE directives") }
                includesFollowed += 1
                let text: [UInt8]
                do {
                    text = try store.value(of: key)
                } catch {
                    if case .keyNotFound = error { throw fail("cannot read $INCLUDE file '\(key)': no such key in the store", at: 1) }
                    throw fail("cannot read $INCLUDE file '\(key)': \(error)", at: 1)
                }
                // The included file's origin and owner changes stay there (RFC 1035 §5.1).
                try read(text, file: key, origin: includeOrigin, owner: owner, depth: depth + 1, store: store)
            default:
                throw fail("unknown directive \(printable(name)) (only $ORIGIN, $TTL and $INCLUDE are supported)")
            }
        }

        /// A resource record entry: `[owner] [TTL] [class] type data…`, TTL and
        /// class in either order (RFC 1035 §5.1).
        mutating func record(_ entry: ZoneLexer.Entry, file: String, origin: DomainName, owner previousOwner: DomainName?)
            throws(DNSError) -> ResourceRecord
        {
            let tokens = entry.tokens
            func fail(_ reason: String, at index: Int) -> DNSError {
                .zone(file: file, line: entry.tokenLines[min(index, tokens.count - 1)], reason: reason)
            }
            var index = 0
            let owner: DomainName
            if entry.startsWithBlank {
                guard let previousOwner else {
                    throw fail("the line starts with a blank (no owner) but there is no previous owner", at: 0)
                }
                owner = previousOwner
            } else {
                do {
                    owner = try DomainName(presentation: tokens[0].text, origin: origin)
                } catch {
                    throw fail("bad owner name \(printable(tokens[0].text)): \(reason(error))", at: 0)
                }
                index = 1
            }

            var explicitTTL: UInt32? = nil
            var sawClass = false
            // At most one TTL and one class, in either order, before the type.
            fields: while index < tokens.count && !tokens[index].quoted {
                let text = tokens[index].text
                if let first = text.first, first >= 0x30 && first <= 0x39 {
                    guard explicitTTL == nil else { throw fail("a second TTL \(printable(text))", at: index) }
                    do {
                        explicitTTL = try ttl(text)
                    } catch {
                        throw fail(reason(error), at: index)
                    }
                } else if let recordClass = RecordClass(mnemonic: String(decoding: text, as: UTF8.self)) {
                    guard !sawClass else { throw fail("a second class \(printable(text))", at: index) }
                    guard recordClass == .in else {
                        throw fail("class \(recordClass): only class IN is supported", at: index)
                    }
                    sawClass = true
                } else {
                    break fields
                }
                index += 1
            }

            guard index < tokens.count else { throw fail("no record type", at: index) }
            let typeToken = tokens[index]
            guard !typeToken.quoted, let type = RecordType(mnemonic: String(decoding: typeToken.text, as: UTF8.self)) else {
                throw fail("unknown record type \(printable(typeToken.text))", at: index)
            }
            guard !isMetaType(type) else {
                throw fail("type \(type) is a meta type, which cannot be stored in a zone (RFC 6895 §3.1)", at: index)
            }
            let dataTokens = Array(tokens[(index + 1)...])
            let data: RData
            do {
                data = try RData(type: type, presentation: dataTokens, origin: origin)
            } catch {
                throw fail("bad \(type) data: \(reason(error))", at: index + 1 < tokens.count ? index + 1 : index)
            }

            let recordTTL: UInt32
            if let explicitTTL {
                recordTTL = explicitTTL
                previousTTL = explicitTTL
            } else if let ttl = dollarTTL ?? previousTTL {
                recordTTL = ttl
            } else if case .soa(let soa) = data {
                // BIND's fallback: MINIMUM, which also becomes the default.
                recordTTL = min(soa.minimum, maximumTTL)
                dollarTTL = recordTTL
                previousTTL = recordTTL
            } else {
                throw fail("no TTL: none on this record, no $TTL before it and no earlier record with one (RFC 2308 §4)", at: 0)
            }
            return ResourceRecord(name: owner, class: .in, ttl: recordTTL, data: data)
        }
    }
}
