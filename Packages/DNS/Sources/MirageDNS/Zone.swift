import MirageDevices

/// The records of one owner name and type (an RRset, RFC 2181 §5).
public struct RRSet: Hashable, Sendable {
    /// The owner name, as the zone file spelled it.
    public var name: DomainName
    /// The type every record of the set has.
    public var type: RecordType
    /// The records, in zone-file order, without duplicates (RFC 2181 §5).
    public var records: [ResourceRecord]
}

/// One name of a zone: its RRsets, or none for an empty non-terminal.
struct ZoneNode: Sendable {
    var name: DomainName
    var rrsets: [RRSet] = []
    /// An NS RRset below the apex: a zone cut (RFC 1034 §4.2.1).
    var isDelegation = false
    /// Only NSEC3 records (and their signatures) live here: hashed owner
    /// names are not part of the zone's namespace, and queries for them
    /// are answered as if they did not exist (RFC 5155 §7.2.8).
    var isHidden: Bool {
        !rrsets.isEmpty && rrsets.allSatisfy { $0.type == .nsec3 || $0.type == .rrsig } && rrsets.contains { $0.type == .nsec3 }
    }

    @inline(__always) func rrset(_ type: RecordType) -> RRSet? {
        for set in rrsets where set.type == type { return set }
        return nil
    }
}

/// A zone loaded and checked: the data an authoritative server answers
/// from (RFC 1034 §4.3.2). Immutable once built; a reload builds a new one.
public struct Zone: Sendable {
    /// Records in one zone; more is refused as a configuration mistake
    /// rather than risking the memory of a small unikernel.
    public static let maximumRecords = 1_000_000

    /// The apex.
    public let origin: DomainName
    /// The apex SOA record.
    public let soa: ResourceRecord
    /// The SOA serial (RFC 1982 arithmetic decides which of two is newer).
    public var serial: UInt32 { if case .soa(let value) = soa.data { value.serial } else { 0 } }
    /// Every record, SOA first, then in canonical order of owner names (AXFR order).
    public let records: [ResourceRecord]

    /// Names, with empty non-terminals (RFC 4592 §2.2.2) as nodes without RRsets.
    let nodes: [ZoneNode]
    /// Name → index into `nodes`.
    let table: NameTable
    /// Whether any name starts with the `*` label: lookups skip the source-of-synthesis step without.
    let hasWildcards: Bool

    /// Checks and indexes `entries` as the zone at `origin`. Refuses (with the
    /// file and line of the offending record): records outside the zone,
    /// classes other than IN, no SOA or more than one at the apex, an SOA
    /// elsewhere, CNAME beside other data or a second CNAME (RFC 1034 §3.6.2,
    /// RFC 2181 §10.1; RRSIG and NSEC may sit beside it, RFC 4035 §2.5), no NS
    /// at the apex (RFC 1035 §5.2), and an in-zone name server without an
    /// address (the glue a delegation needs, RFC 1034 §4.2.1). Identical
    /// records are kept once (RFC 2181 §5).
    public init(origin: DomainName, entries: [ZoneFileEntry]) throws(DNSError) {
        let firstFile = entries.first?.file ?? origin.description
        guard entries.count <= Self.maximumRecords else {
            throw .zone(file: firstFile, line: 0, reason: "more than \(Self.maximumRecords) records")
        }
        var builder = Builder(origin: origin)
        for entry in entries {
            try builder.add(entry)
        }
        self.soa = try builder.check(file: firstFile)
        self.origin = origin
        self.nodes = builder.nodes
        self.table = builder.table
        self.hasWildcards = builder.hasWildcards
        self.records = builder.transferOrder()
    }

    /// Reads the zone file `file` from `store`, parses it with `origin` as
    /// the initial `$ORIGIN` (its `$INCLUDE`s come from the same store), and
    /// checks it.
    public static func load<Store: KeyValueStore>(file: String, origin: DomainName, store: Store) throws(DNSError) -> Zone {
        let text: [UInt8]
        do {
            text = try store.value(of: file)
        } catch {
            throw .zone(file: file, line: 0, reason: "cannot read the file: \(error)")
        }
        let entries = try ZoneFileParser.parse(text, file: file, origin: origin, includes: store)
        return try Zone(origin: origin, entries: entries)
    }

    /// The node at `name`, if the name exists (also as an empty non-terminal).
    func node(_ name: DomainName) -> ZoneNode? {
        table.value(of: name).map { nodes[$0] }
    }

    /// The RRset of `type` at `name`.
    public func rrset(_ name: DomainName, _ type: RecordType) -> RRSet? {
        node(name)?.rrset(type)
    }

    /// Collects the zone while checking each record.
    private struct Builder {
        let origin: DomainName
        var nodes: [ZoneNode] = []
        var table = NameTable(minimumCapacity: 64)
        var soa: ResourceRecord?
        var soaLine: (file: String, line: Int)?
        var hasWildcards = false
        /// Name servers named by NS records, with where, checked for addresses at the end.
        var nameServers: [(owner: DomainName, target: DomainName, file: String, line: Int)] = []
        var recordCount = 0

        init(origin: DomainName) {
            self.origin = origin
            nodes.append(ZoneNode(name: origin))
            table.insert(origin, value: 0)
        }

        mutating func add(_ entry: ZoneFileEntry) throws(DNSError) {
            let record = entry.record
            func fail(_ reason: String) -> DNSError { .zone(file: entry.file, line: entry.line, reason: reason) }
            guard record.name.isSubdomain(of: origin) else {
                throw fail("\(record.name) is outside the zone \(origin)")
            }
            guard record.class == .in else {
                throw fail("class \(record.class) in an IN zone")
            }
            let type = record.type
            if type == .soa {
                guard record.name == origin else { throw fail("SOA record at \(record.name), not at the apex \(origin)") }
                if let soa, soa != record { throw fail("a second SOA record at the apex \(origin)") }
                if soa == nil { soaLine = (entry.file, entry.line) }
                soa = record
            }
            if type == .opt || type == .axfr || type == .ixfr || type == .any {
                throw fail("type \(type) cannot appear in a zone")
            }
            if record.name.isWildcard { hasWildcards = true }
            let index = nodeIndex(record.name)
            var node = nodes[index]
            // RFC 1034 §3.6.2: a CNAME owner has no other data (RRSIG and
            // NSEC excepted, RFC 4035 §2.5), and one CNAME at most.
            let exempt = type == .rrsig || type == .nsec
            if type == .cname {
                if node.rrsets.contains(where: { $0.type != .cname && $0.type != .rrsig && $0.type != .nsec }) {
                    throw fail("CNAME and other data at \(record.name)")
                }
                if let existing = node.rrset(.cname), existing.records.contains(where: { $0.data != record.data }) {
                    throw fail("more than one CNAME record at \(record.name)")
                }
            } else if !exempt && node.rrset(.cname) != nil {
                throw fail("CNAME and other data at \(record.name)")
            }
            if let at = node.rrsets.firstIndex(where: { $0.type == type }) {
                if node.rrsets[at].records.contains(where: { $0.data == record.data }) { return }
                node.rrsets[at].records.append(record)
            } else {
                node.rrsets.append(RRSet(name: record.name, type: type, records: [record]))
            }
            if type == .ns {
                if index != 0 { node.isDelegation = true }
                if case .ns(let target) = record.data { nameServers.append((record.name, target, entry.file, entry.line)) }
            }
            recordCount += 1
            nodes[index] = node
        }

        /// The node for `name`, created with its empty non-terminal ancestors.
        mutating func nodeIndex(_ name: DomainName) -> Int {
            if let index = table.value(of: name) { return index }
            // Ancestors first, so every existing name's parent exists.
            if let parent = name.parent(), parent != origin, parent.isSubdomain(of: origin) {
                _ = nodeIndex(parent)
            }
            nodes.append(ZoneNode(name: name))
            table.insert(name, value: nodes.count - 1)
            return nodes.count - 1
        }

        /// The apex SOA, once the whole zone is in: what needs every record.
        func check(file: String) throws(DNSError) -> ResourceRecord {
            guard let soa else { throw .zone(file: file, line: 0, reason: "no SOA record at the apex \(origin)") }
            guard nodes[0].rrset(.ns) != nil else {
                let at = soaLine ?? (file, 0)
                throw .zone(file: at.file, line: at.line, reason: "no NS records at the apex \(origin)")
            }
            // Name servers inside the zone need addresses, or no resolver
            // could reach them (the apex's and every delegation's).
            for server in nameServers where server.target.isSubdomain(of: origin) {
                let hasAddress = table.value(of: server.target).map { index in
                    nodes[index].rrset(.a) != nil || nodes[index].rrset(.aaaa) != nil
                } ?? false
                if !hasAddress {
                    throw .zone(file: server.file, line: server.line,
                                reason: "NS \(server.target) of \(server.owner) is in the zone but has no address record")
                }
            }
            return soa
        }

        /// SOA first, then every record by canonical owner order (RFC 4034 §6.1).
        func transferOrder() -> [ResourceRecord] {
            var out: [ResourceRecord] = []
            out.reserveCapacity(recordCount)
            if let soa { out.append(soa) }
            let order = nodes.indices.sorted { nodes[$0].name < nodes[$1].name }
            for index in order {
                for set in nodes[index].rrsets where set.type != .soa {
                    out.append(contentsOf: set.records)
                }
            }
            return out
        }
    }
}
