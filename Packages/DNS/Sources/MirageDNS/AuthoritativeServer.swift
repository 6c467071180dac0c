import MirageDevices

/// How a query reached the server: it decides the size limit (RFC 1035
/// §4.2.1, RFC 6891 §6.2.5) and whether a zone transfer may follow.
public enum DNSTransport: Hashable, Sendable {
    /// A UDP datagram.
    case udp
    /// A length-prefixed message on a TCP connection (RFC 7766).
    case tcp
}

/// What to do with the bytes `AuthoritativeServer.respond` wrote.
public enum ServerAction: Sendable {
    /// Send the writer's bytes as the reply.
    case reply
    /// Send nothing: the input was not a query that can be answered
    /// (a response, fewer bytes than a header). Over TCP the connection is
    /// closed after the replies already queued.
    case drop
    /// Send nothing and reset the TCP connection (a header-only message).
    case reset
    /// A zone transfer (AXFR over TCP, RFC 5936); nothing is written yet:
    /// send each message `ZoneTransfer.next` writes until it returns false.
    case transfer(ZoneTransfer)
}

/// Counters of an `AuthoritativeServer`.
public struct AuthoritativeServerStatistics: Hashable, Sendable {
    /// Messages handed to `respond`.
    public var queries = 0
    /// Replies with NOERROR (answers, NODATA, referrals).
    public var answered = 0
    /// NXDOMAIN replies.
    public var nameErrors = 0
    /// Replies with TC set.
    public var truncated = 0
    /// FORMERR replies.
    public var formatErrors = 0
    /// REFUSED replies (zones not served, transfers refused, other classes).
    public var refused = 0
    /// NOTIMP replies (opcodes other than QUERY).
    public var notImplemented = 0
    /// BADVERS replies (an EDNS version other than 0).
    public var badVersions = 0
    /// Inputs dropped without a reply (responses, runts).
    public var dropped = 0
    /// Zone transfers started.
    public var transfers = 0
    /// Replies copied from the answer cache (counted in `answered` or `nameErrors` too).
    public var cacheHits = 0
    /// A statistics value with every counter at zero.
    public init() {}
}

/// Settings of an `AuthoritativeServer`.
public struct AuthoritativeServerConfiguration: Sendable {
    /// The UDP payload size we announce and the most we send over UDP
    /// (RFC 6891 §6.2.5; 1232 avoids fragmentation, DNS flag day 2020).
    public var udpPayloadSize: UInt16 = EDNS.ourPayloadSize
    /// Whether AXFR over TCP is answered (RFC 5936 §4.2 leaves the policy to
    /// the operator); REFUSED otherwise.
    public var allowTransfers = true
    /// A configuration with the defaults.
    public init() {}
}

/// The authoritative answering logic (RFC 1034 §4.3.2, RFC 4592 wildcards,
/// RFC 2308 negative answers, RFC 6891 EDNS): a query's bytes in, the
/// reply's bytes out, for every zone it serves. No I/O: `DNSServer` runs it
/// over a stack; a test or a fuzzer can call it directly.
///
/// Sections are filled as NSD fills them by default: the zone's NS RRset in
/// authority beside positive answers, and the addresses of NS, MX and SRV
/// targets the zone has in additional.
public final class AuthoritativeServer {
    /// CNAMEs followed in one answer before giving up with what was found
    /// (loops are also caught when a CNAME repeats).
    public static let maximumCNAMEChain = 16
    /// The size of a reply to a query without EDNS (RFC 1035 §4.2.1).
    public static let classicUDPSize = 512
    /// The largest DNS message (the TCP length prefix is 16 bits, RFC 1035 §4.2.2).
    public static let maximumMessageSize = 65535

    /// The settings.
    public let configuration: AuthoritativeServerConfiguration
    /// The counters.
    public private(set) var statistics = AuthoritativeServerStatistics()

    private var zones: [Zone] = []
    /// Zone origin → index into `zones`.
    private var zoneTable = NameTable()

    // Reused per query so answering allocates as little as possible.
    private var plan = AnswerPlan()
    private var cache = AnswerCache()

    /// A server for `zones` (distinct origins; a later one with an origin
    /// already given replaces the earlier).
    public init(zones: [Zone], configuration: AuthoritativeServerConfiguration = AuthoritativeServerConfiguration()) {
        self.configuration = configuration
        for zone in zones { _ = load(zone) }
    }

    /// The zones served, in the order they were first loaded.
    public var servedZones: [Zone] { zones }

    /// What `load` did.
    public enum LoadResult: Hashable, Sendable {
        /// A zone not served before.
        case added
        /// The zone replaced one with an older serial (given).
        case replaced(previousSerial: UInt32)
        /// The serial was not newer than the one served (given): nothing changed.
        case unchanged(servedSerial: UInt32)
    }

    /// Serves `zone`, replacing the zone with the same origin only when
    /// its SOA serial is newer by RFC 1982 serial arithmetic — the way a
    /// secondary decides (RFC 1034 §4.3.5). Queries in flight are not
    /// affected: the next query sees the new zone, a transfer keeps the
    /// zone it started with.
    @discardableResult
    public func load(_ zone: Zone) -> LoadResult {
        if let index = zoneTable.value(of: zone.origin) {
            let served = zones[index].serial
            guard Self.serial(zone.serial, isNewerThan: served) else { return .unchanged(servedSerial: served) }
            zones[index] = zone
            cache.clear()
            return .replaced(previousSerial: served)
        }
        zones.append(zone)
        zoneTable.insert(zone.origin, value: zones.count - 1)
        cache.clear()
        return .added
    }

    /// RFC 1982 §3.2: `a` is newer than `b` when it is ahead by less than 2^31.
    public static func serial(_ a: UInt32, isNewerThan b: UInt32) -> Bool {
        a != b && (a &- b) < 0x8000_0000
    }

    // MARK: Answering

    /// Answers the query in `query`, writing the reply into `writer` (reset
    /// first; its limit is set from the transport and the query's EDNS).
    ///
    /// Where the RFCs leave a choice, the reply is NSD 4's: FORMERR and
    /// NOTIMP are bare headers, REFUSED echoes the question, an OPT record
    /// answers one in the query (payload size ours, DO echoed).
    public func respond(to query: Span<UInt8>, transport: DNSTransport, into writer: inout MessageWriter) -> ServerAction {
        statistics.queries += 1
        writer.reset()
        writer.limit = Self.maximumMessageSize
        // The common case first: a plain question answered before.
        var cacheKey: (questionEnd: Int, shape: UInt32)?
        if let plain = PlainQuery(query) {
            let limit = transport == .udp
                ? (plain.hasEDNS ? min(max(plain.payloadSize, Self.classicUDPSize), Int(configuration.udpPayloadSize)) : Self.classicUDPSize)
                : Self.maximumMessageSize
            let shape = AnswerCache.shape(edns: plain.hasEDNS, dnssecOK: plain.dnssecOK, limit: limit)
            if let flags = cache.answer(query, questionEnd: plain.questionEnd, shape: shape, into: &writer) {
                statistics.cacheHits += 1
                if flags & 0x000F == ResponseCode.nameError.rawValue { statistics.nameErrors += 1 } else { statistics.answered += 1 }
                if flags & 0x0200 != 0 { statistics.truncated += 1 }
                return .reply
            }
            cacheKey = (plain.questionEnd, shape)
        }
        guard query.count >= Header.size, let header = try? Header(parsing: query) else {
            statistics.dropped += 1
            return .drop
        }
        // Never answer a response (RFC 1035 §4.1.1: QR is 1 in responses), or
        // two servers could bounce errors forever.
        if header.isResponse {
            statistics.dropped += 1
            return .drop
        }
        // A bare header on a stream: NSD resets the connection.
        if transport == .tcp && query.count == Header.size {
            statistics.dropped += 1
            return .reset
        }
        // A query carries no RCODE (RFC 1035 §4.1.1).
        if header.responseCode != 0 {
            return formatError(&writer, header, keepRecursionDesired: true)
        }
        if header.opcode != .query && header.opcode != .notify {
            statistics.notImplemented += 1
            return bareError(&writer, header, rcode: .notImplemented)
        }
        let parsed: ParsedQuery
        do {
            parsed = try ParsedQuery(query, header: header)
        } catch {
            return formatError(&writer, header, keepRecursionDesired: header.questionCount <= 1)
        }
        if parsed.question == nil, let edns = parsed.edns, edns.version != 0 {
            // Without a question there is nothing to say BADVERS about.
            return formatError(&writer, header, keepRecursionDesired: false)
        }
        if let edns = parsed.edns, edns.version != 0 {
            // RFC 6891 §6.1.3: BADVERS, with our version 0.
            statistics.badVersions += 1
            var reply = header
            reply.isResponse = true
            reply.authenticData = false
            return errorReply(&writer, reply, rcode: .badVersion, question: parsed.question, edns: edns, echoDO: false)
        }
        var reply = Header(id: header.id)
        reply.isResponse = true
        reply.opcode = header.opcode
        reply.recursionDesired = header.recursionDesired
        guard let question = parsed.question else {
            // No question: with EDNS this is a (cookie-style) ping answered
            // NOERROR; without, malformed.
            guard let edns = parsed.edns else { return formatError(&writer, header, keepRecursionDesired: true) }
            return errorReply(&writer, reply, rcode: .noError, question: nil, edns: edns)
        }
        if header.opcode == .notify {
            // We are nobody's secondary: NOTIFY (RFC 1996) is refused, or
            // NXDOMAIN for a zone we do not have.
            let served = zoneTable.value(of: question.name) != nil
            if !served { statistics.nameErrors += 1 } else { statistics.refused += 1 }
            return bareError(&writer, header, rcode: served ? .refused : .nameError)
        }
        if question.class != .in && question.class != .any {
            statistics.refused += 1
            // RFC 8914 §5.22: EDE 21, not supported.
            return errorReply(&writer, reply, rcode: .refused, question: question.class == .ch ? question : nil,
                              edns: parsed.edns, extendedError: 21)
        }
        if question.type == .axfr || question.type == .ixfr {
            return transfer(&writer, reply, question: question, edns: parsed.edns, transport: transport)
        }
        guard let zoneIndex = zoneIndex(for: question.name, type: question.type) else {
            statistics.refused += 1
            // EDE 20, not authoritative.
            return errorReply(&writer, reply, rcode: .refused, question: question, edns: parsed.edns, extendedError: 20)
        }
        plan.reset()
        plan.classAny = question.class == .any
        lookup(question.name, type: question.type, in: zoneIndex)
        reply.isAuthoritative = plan.authoritative && !plan.classAny
        reply.responseCode = plan.rcode
        let action = finishAnswer(&writer, reply, question: question, edns: parsed.edns, transport: transport)
        if let cacheKey, case .reply = action {
            cache.store(query, questionEnd: cacheKey.questionEnd, shape: cacheKey.shape, reply: writer)
        }
        return action
    }

    /// AXFR (RFC 5936) and IXFR (answered with the whole zone, RFC 1995 §4):
    /// TCP only, for a zone's apex.
    private func transfer(_ writer: inout MessageWriter, _ reply: Header, question: Question, edns: EDNS?,
                          transport: DNSTransport) -> ServerAction {
        guard transport == .tcp else {
            statistics.notImplemented += 1
            return errorReply(&writer, reply, rcode: .notImplemented, question: question, edns: edns)
        }
        guard let index = zoneTable.value(of: question.name) else {
            statistics.refused += 1
            return errorReply(&writer, reply, rcode: .notAuth, question: question, edns: edns)
        }
        guard configuration.allowTransfers else {
            statistics.refused += 1
            // EDE 18, prohibited.
            return errorReply(&writer, reply, rcode: .refused, question: question, edns: edns, extendedError: 18)
        }
        statistics.transfers += 1
        var header = reply
        header.isAuthoritative = true
        return .transfer(ZoneTransfer(zone: zones[index], header: header, question: question, edns: edns,
                                      payloadSize: configuration.udpPayloadSize))
    }

    /// The zone answering `name`: the served zone with the longest origin
    /// that `name` is in. A DS RRset lives on the parent side of a cut
    /// (RFC 4035 §2.4), so DS at a zone's apex is answered by the parent
    /// zone when that is served too, and by the zone itself otherwise.
    private func zoneIndex(for name: DomainName, type: RecordType) -> Int? {
        let wire = name.wire
        let span = wire.span
        var offset = 0
        var skipApex = type == .ds
        var apex: Int?
        while offset < wire.count {
            if let index = zoneTable.value(span, start: offset, count: wire.count - offset) {
                if skipApex && offset == 0 {
                    skipApex = false
                    apex = index
                } else {
                    return index
                }
            }
            if wire[offset] == 0 { break }
            offset += Int(wire[offset]) + 1
        }
        return apex
    }

    // MARK: Lookup (RFC 1034 §4.3.2 step 3, RFC 4592 §3)

    private func lookup(_ qname: DomainName, type: RecordType, in firstZone: Int) {
        var name = qname
        var zone = zones[firstZone]
        var hops = 0
        while case .follow(let target) = lookupOne(name, type: type, in: zone) {
            // NSD follows a chain into any zone it serves; one leaving them
            // ends the answer with the CNAMEs alone (the resolver goes on).
            hops += 1
            guard hops < Self.maximumCNAMEChain, let next = zoneIndex(for: target, type: type) else { return }
            zone = zones[next]
            name = target
        }
    }

    private enum Step {
        case done
        case follow(DomainName)
    }

    /// Where `name` leads in `zone`: the node itself, the highest zone cut
    /// above it, or the closest encloser (the deepest existing ancestor).
    private enum Position {
        case node(Int)
        case cut(Int)
        case missing(closestEncloser: Int)
    }

    private func position(of name: DomainName, in zone: Zone, type: RecordType) -> Position {
        let wire = name.wire
        let span = wire.span
        // The labels between the apex and the name: the name's first
        // `labels - originLabels` labels, deepest first.
        var starts = InlineArray<128, UInt8>(repeating: 0)
        let labels = name.labelStarts(&starts)
        var encloser = 0  // the apex always exists
        var depth = labels - zone.origin.labelCount - 1
        while depth >= 0 {
            let start = Int(starts[depth])
            guard let index = zone.table.value(span, start: start, count: wire.count - start), !zone.nodes[index].isHidden else {
                return .missing(closestEncloser: encloser)
            }
            // RFC 1034 §4.3.2 3b; DS at the cut itself is the parent's (RFC 4035 §2.4).
            if zone.nodes[index].isDelegation && !(start == 0 && type == .ds) { return .cut(index) }
            encloser = index
            depth -= 1
        }
        return .node(encloser)
    }

    private func lookupOne(_ qname: DomainName, type: RecordType, in zone: Zone) -> Step {
        switch position(of: qname, in: zone, type: type) {
        case .cut(let index):
            referral(zone.nodes[index], zone)
            return .done
        case .node(let index):
            return answer(node: zone.nodes[index], owner: nil, type: type, zone: zone)
        case .missing(let encloser):
            // No such name: a wildcard at the closest encloser (RFC 4592
            // §3.3.1) answers in its place, with qname as the owner.
            if zone.hasWildcards, let source = zone.nodes[encloser].name.wildcard(),
               let index = zone.table.value(of: source) {
                return answer(node: zone.nodes[index], owner: qname, type: type, zone: zone)
            }
            plan.rcode = ResponseCode.nameError.headerBits
            negative(zone)
            return .done
        }
    }

    /// The data at an existing node (or the wildcard standing for qname):
    /// the RRset asked for, else a CNAME to follow, else NODATA — in that
    /// order, so RRSIG and NSEC beside a CNAME are answered themselves.
    private func answer(node: ZoneNode, owner: DomainName?, type: RecordType, zone: Zone) -> Step {
        // NSEC3 records answer no query by type: their owners are hashes
        // (RFC 5155 §7.2.8); NSD says NODATA.
        let chosen: RRSet? = type == .any ? Self.anyChoice(node) : type == .nsec3 ? nil : node.rrset(type)
        if let set = chosen {
            plan.answer.append(PlannedRRSet(set: set, owner: owner, required: true))
            // NSD leaves the NS out beside DS, DNSKEY and ANY answers.
            if type != .ds && type != .dnskey && type != .any { addZoneNS(zone) }
            addAdditional(zone)
            return .done
        }
        if type != .nsec3, type != .any, let cname = node.rrset(.cname) {
            // A loop ends the answer when it comes back to a CNAME already given.
            if plan.answer.contains(where: { $0.set.type == .cname && $0.set.name == cname.name && $0.owner == owner }) {
                return .done
            }
            // Only the first record counts: a CNAME RRset has one (RFC 2181 §10.1).
            var single = cname
            if single.records.count > 1 { single.records = [single.records[0]] }
            plan.answer.append(PlannedRRSet(set: single, owner: owner, required: true))
            if case .cname(let target) = single.records.first?.data { return .follow(target) }
            return .done
        }
        // NODATA (RFC 2308 §2.2), also at the end of a CNAME chain.
        negative(zone)
        return .done
    }

    /// RFC 8482 §4.2: one RRset answers ANY. As NSD: the first address,
    /// SOA, MX or PTR set at the name, else the last of the others, else a
    /// DNSSEC set.
    private static func anyChoice(_ node: ZoneNode) -> RRSet? {
        var other: RRSet?
        var dnssec: RRSet?
        for set in node.rrsets where set.type != .nsec3 {
            switch set.type {
            case .a, .aaaa, .soa, .mx, .ptr: return set
            case .dnskey, .rrsig, .nsec: if dnssec == nil { dnssec = set }
            default: other = set
            }
        }
        return other ?? dnssec
    }

    /// RFC 2308 §3: the SOA in authority, its TTL the lesser of its own and
    /// its MINIMUM field.
    private func negative(_ zone: Zone) {
        guard !plan.classAny else { return }
        var ttl = zone.soa.ttl
        if case .soa(let soa) = zone.soa.data { ttl = min(ttl, soa.minimum) }
        plan.authority.append(PlannedRRSet(set: RRSet(name: zone.origin, type: .soa, records: [zone.soa]), owner: nil,
                                           ttl: ttl, required: true))
    }

    /// The zone's NS RRset in authority, unless the answer already holds it
    /// (an RRset appears once per message). Optional: left out, without TC,
    /// when it does not fit.
    private func addZoneNS(_ zone: Zone) {
        guard !plan.classAny, let ns = zone.nodes[0].rrset(.ns) else { return }
        if plan.answer.contains(where: { $0.set.type == .ns && $0.set.name == zone.origin && $0.owner == nil }) { return }
        plan.authority.append(PlannedRRSet(set: ns, owner: nil))
    }

    /// A delegation (RFC 1034 §4.3.2 3b): not authoritative (unless a CNAME
    /// led here), the cut's NS RRset in authority, and the addresses the
    /// zone has for them (glue).
    private func referral(_ node: ZoneNode, _ zone: Zone) {
        plan.authoritative = !plan.answer.isEmpty
        plan.isReferral = true
        if let ns = node.rrset(.ns) { plan.authority.append(PlannedRRSet(set: ns, owner: nil, required: true)) }
        addAdditional(zone)
    }

    /// Addresses of the NS, MX and SRV targets in the answer and authority
    /// sections, from the answering zone only (glue below cuts included,
    /// wildcards expanded): every A RRset, then every AAAA.
    private func addAdditional(_ zone: Zone) {
        for type in [RecordType.a, RecordType.aaaa] {
            for section in 0..<2 {
                let count = section == 0 ? plan.answer.count : plan.authority.count
                for i in 0..<count {
                    let set = section == 0 ? plan.answer[i].set : plan.authority[i].set
                    guard set.type == .ns || set.type == .mx || set.type == .srv else { continue }
                    for record in set.records {
                        guard let target = record.data.additionalTarget else { continue }
                        addAddresses(of: target, type: type, zone: zone, glue: set.type == .ns)
                    }
                }
            }
        }
    }

    /// Adds `target`'s `type` RRset to additional. Only a name server's
    /// addresses may come from below a zone cut (glue); an RRset already in
    /// the message is not repeated.
    private func addAddresses(of target: DomainName, type: RecordType, zone: Zone, glue: Bool) {
        guard target.isSubdomain(of: zone.origin) else { return }
        var owner: DomainName?
        var found: RRSet?
        switch position(of: target, in: zone, type: type) {
        case .node(let index):
            found = zone.nodes[index].rrset(type)
        case .cut:
            if glue, let index = zone.table.value(of: target) { found = zone.nodes[index].rrset(type) }
        case .missing(let encloser):
            if zone.hasWildcards, let source = zone.nodes[encloser].name.wildcard(), let index = zone.table.value(of: source) {
                found = zone.nodes[index].rrset(type)
                owner = target
            }
        }
        guard let set = found else { return }
        let name = owner ?? set.name
        func holds(_ section: [PlannedRRSet]) -> Bool {
            section.contains { $0.set.type == type && ($0.owner ?? $0.set.name) == name }
        }
        if holds(plan.answer) || holds(plan.authority) || holds(plan.additional) { return }
        plan.additional.append(PlannedRRSet(set: set, owner: owner))
    }

    // MARK: Encoding

    private func finishAnswer(_ writer: inout MessageWriter, _ header: Header, question: Question,
                              edns: EDNS?, transport: DNSTransport) -> ServerAction {
        var header = header
        let limit = replyLimit(transport: transport, edns: edns)
        // Room for the OPT record is kept back from the start (RFC 6891 §7:
        // a truncated reply still carries it).
        writer.limit = limit - (edns == nil ? 0 : Self.optRecordSize)
        do {
            try writer.writeHeaderPlaceholder()
            try writer.write(question)
        } catch {
            return formatError(&writer, header, keepRecursionDesired: true)
        }
        var counts: (answer: UInt16, authority: UInt16, additional: UInt16) = (0, 0, 0)
        var truncated = false
        var glueWritten = false
        // RFC 2181 §9: whole RRsets only. A required RRset (answers, the
        // SOA of a negative answer, a referral's NS) that does not fit sets
        // TC and ends the message; an optional one (the zone's NS beside an
        // answer, additional addresses) is left out without TC, and later
        // sections are skipped — as NSD does.
        var skipRest = false
        sections: for section in 0..<3 where !skipRest {
            let count = section == 0 ? plan.answer.count : section == 1 ? plan.authority.count : plan.additional.count
            for i in 0..<count {
                let planned = section == 0 ? plan.answer[i] : section == 1 ? plan.authority[i] : plan.additional[i]
                let mark = writer.count
                var written: UInt16 = 0
                do {
                    for record in planned.set.records {
                        var record = record
                        if let owner = planned.owner { record.name = owner }
                        if let ttl = planned.ttl { record.ttl = ttl }
                        try writer.write(record)
                        written += 1
                    }
                } catch {
                    writer.truncate(to: mark)
                    if planned.required {
                        truncated = true
                        break sections
                    }
                    skipRest = true
                    continue
                }
                switch section {
                case 0: counts.answer += written
                case 1: counts.authority += written
                default: counts.additional += written
                }
                if section == 2 && planned.set.type == .a { glueWritten = true }
            }
        }
        // A referral whose glue addresses could not go is no use (RFC 9471).
        if plan.isReferral && !truncated && !glueWritten && plan.additional.contains(where: { $0.set.type == .a }) {
            truncated = true
        }
        writer.limit = limit
        var additional = counts.additional
        if let edns {
            writer.writeOPT(payloadSize: configuration.udpPayloadSize, extendedRCode: 0, dnssecOK: edns.dnssecOK)
            additional += 1
        }
        header.questionCount = 1
        header.answerCount = counts.answer
        header.authorityCount = counts.authority
        header.additionalCount = additional
        header.isTruncated = truncated
        if truncated { statistics.truncated += 1 }
        if header.responseCode == ResponseCode.nameError.headerBits {
            statistics.nameErrors += 1
        } else {
            statistics.answered += 1
        }
        writer.patch(header)
        return .reply
    }

    /// An error with the question echoed (if any) and our OPT when the query
    /// had one; `extendedError` adds an RFC 8914 option.
    private func errorReply(_ writer: inout MessageWriter, _ header: Header, rcode: ResponseCode, question: Question?,
                            edns: EDNS?, extendedError: UInt16? = nil, echoDO: Bool = true) -> ServerAction {
        var header = header
        writer.reset()
        writer.limit = Self.maximumMessageSize
        header.responseCode = rcode.headerBits
        header.questionCount = 0
        header.answerCount = 0
        header.authorityCount = 0
        header.additionalCount = 0
        do {
            try writer.writeHeaderPlaceholder()
            if let question {
                try writer.write(question)
                header.questionCount = 1
            }
        } catch {
            return .drop
        }
        if let edns {
            writer.writeOPT(payloadSize: configuration.udpPayloadSize, extendedRCode: rcode.extendedBits,
                            dnssecOK: echoDO && edns.dnssecOK, extendedError: extendedError)
            header.additionalCount = 1
        }
        writer.patch(header)
        return .reply
    }

    /// FORMERR as NSD sends it: a bare header, the opcode and (unless the
    /// question count itself was wrong) RD kept.
    private func formatError(_ writer: inout MessageWriter, _ query: Header, keepRecursionDesired: Bool) -> ServerAction {
        statistics.formatErrors += 1
        var header = Header(id: query.id)
        header.isResponse = true
        header.opcode = query.opcode
        header.recursionDesired = keepRecursionDesired && query.recursionDesired
        return errorReply(&writer, header, rcode: .formatError, question: nil, edns: nil)
    }

    /// NOTIMP (and NOTIFY's answers): the query's header sent back with QR
    /// set, AD cleared and no sections.
    private func bareError(_ writer: inout MessageWriter, _ query: Header, rcode: ResponseCode) -> ServerAction {
        var header = query
        header.isResponse = true
        header.authenticData = false
        return errorReply(&writer, header, rcode: rcode, question: nil, edns: nil)
    }

    /// Root owner (1) + type, class, TTL, RDLENGTH (10), no options.
    static let optRecordSize = 11

    /// RFC 6891 §6.2.5 and RFC 1035 §4.2.1: over UDP the smaller of the
    /// client's payload size (at least 512) and ours; 512 without EDNS.
    private func replyLimit(transport: DNSTransport, edns: EDNS?) -> Int {
        guard transport == .udp else { return Self.maximumMessageSize }
        guard let edns else { return Self.classicUDPSize }
        let theirs = max(Int(edns.payloadSize), Self.classicUDPSize)
        return min(theirs, Int(configuration.udpPayloadSize))
    }
}

/// An RRset chosen for a section, with a synthesized owner (wildcards) or
/// TTL (negative answers' SOA) when they differ from the zone's.
struct PlannedRRSet {
    var set: RRSet
    var owner: DomainName?
    var ttl: UInt32?
    /// TC and the end of the message when it does not fit; otherwise it is left out.
    var required: Bool

    init(set: RRSet, owner: DomainName?, ttl: UInt32? = nil, required: Bool = false) {
        self.set = set
        self.owner = owner
        self.ttl = ttl
        self.required = required
    }
}

/// The sections of one reply, before encoding; reused across queries.
struct AnswerPlan {
    var rcode: UInt8 = 0
    var authoritative = true
    var answer: [PlannedRRSet] = []
    var authority: [PlannedRRSet] = []
    var additional: [PlannedRRSet] = []
    /// The answer is a delegation.
    var isReferral = false
    /// QCLASS ANY: no authority section and no AA, as NSD.
    var classAny = false

    mutating func reset() {
        rcode = 0
        authoritative = true
        isReferral = false
        classAny = false
        answer.removeAll(keepingCapacity: true)
        authority.removeAll(keepingCapacity: true)
        additional.removeAll(keepingCapacity: true)
    }
}

extension ResponseCode {
    /// NOTAUTH (RFC 2136 §2.2): a transfer asked of a server that does not have the zone.
    static let notAuth = ResponseCode(rawValue: 9)

}

extension MessageWriter {
    /// Twelve zero bytes where `Header.emit` writes the header once the counts are known.
    mutating func writeHeaderPlaceholder() throws(DNSError) {
        try write(UInt32(0))
        try write(UInt32(0))
        try write(UInt32(0))
    }

    /// Writes `header` over the first 12 bytes (RFC 1035 §4.1.1 layout).
    mutating func patch(_ header: Header) {
        var flags = UInt16(header.opcode.rawValue & 0xF) << 11 | UInt16(header.responseCode & 0xF)
        if header.isResponse { flags |= 0x8000 }
        if header.isAuthoritative { flags |= 0x0400 }
        if header.isTruncated { flags |= 0x0200 }
        if header.recursionDesired { flags |= 0x0100 }
        if header.recursionAvailable { flags |= 0x0080 }
        if header.authenticData { flags |= 0x0020 }
        if header.checkingDisabled { flags |= 0x0010 }
        patch(header.id, at: 0)
        patch(flags, at: 2)
        patch(header.questionCount, at: 4)
        patch(header.answerCount, at: 6)
        patch(header.authorityCount, at: 8)
        patch(header.additionalCount, at: 10)
    }

    /// Our OPT record (RFC 6891 §6.1.2): root owner, our payload size, the
    /// extended rcode bits, version 0, the DO bit echoed (RFC 3225 §3), no
    /// options. Callers keep `AuthoritativeServer.optRecordSize` bytes of
    /// room for it, so it always fits.
    mutating func writeOPT(payloadSize: UInt16, extendedRCode: UInt8, dnssecOK: Bool, extendedError: UInt16? = nil) {
        let ttl = UInt32(extendedRCode) << 24 | (dnssecOK ? 0x8000 : 0)
        do {
            try write(UInt8(0))
            try write(RecordType.opt.rawValue)
            try write(payloadSize)
            try write(ttl)
            if let extendedError {
                // RFC 8914 §2: option 15, an INFO-CODE and no text.
                try write(UInt16(6))
                try write(UInt16(15))
                try write(UInt16(2))
                try write(extendedError)
            } else {
                try write(UInt16(0))
            }
        } catch {
            // Unreachable: the room was kept back.
        }
    }
}
