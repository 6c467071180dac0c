import MirageDNS
import MirageDevices
import Testing

/// Builds zones from records and asks the server questions, checking the
/// sections record by record (RFC 1034 §4.3.2, RFC 4592, RFC 2308).
@Suite struct AuthoritativeServerTests {
    static func name(_ text: String) -> DomainName { try! DomainName(text) }

    static func record(_ owner: String, _ ttl: UInt32 = 3600, _ data: RData) -> ResourceRecord {
        ResourceRecord(name: name(owner), ttl: ttl, data: data)
    }

    static let soa = SOA(mname: name("ns1.example.test."), rname: name("admin.example.test."),
                         serial: 2024010101, refresh: 7200, retry: 3600, expire: 1209600, minimum: 300)

    /// example.test.: the shapes a server must tell apart.
    static func exampleRecords(serial: UInt32 = 2024010101) -> [ResourceRecord] {
        var soa = Self.soa
        soa.serial = serial
        return [
            record("example.test.", 3600, .soa(soa)),
            record("example.test.", 3600, .ns(name("ns1.example.test."))),
            record("example.test.", 3600, .ns(name("ns2.elsewhere.test."))),
            record("example.test.", 3600, .mx(preference: 10, exchange: name("mail.example.test."))),
            record("ns1.example.test.", 3600, .a(IPv4Address(192, 0, 2, 1))),
            record("mail.example.test.", 3600, .a(IPv4Address(192, 0, 2, 25))),
            record("mail.example.test.", 3600, .aaaa(IPv6Address("2001:db8::25")!)),
            record("www.example.test.", 300, .a(IPv4Address(192, 0, 2, 80))),
            record("www.example.test.", 300, .a(IPv4Address(192, 0, 2, 81))),
            record("alias.example.test.", 300, .cname(name("www.example.test."))),
            record("chain.example.test.", 300, .cname(name("alias.example.test."))),
            record("out.example.test.", 300, .cname(name("www.elsewhere.test."))),
            record("dangling.example.test.", 300, .cname(name("missing.example.test."))),
            record("a.b.c.example.test.", 300, .txt([Array("deep".utf8)])),
            record("*.wild.example.test.", 300, .a(IPv4Address(192, 0, 2, 99))),
            record("*.wild.example.test.", 300, .txt([Array("wildcard".utf8)])),
            record("exists.wild.example.test.", 300, .a(IPv4Address(192, 0, 2, 98))),
            record("sub.example.test.", 3600, .ns(name("ns.sub.example.test."))),
            record("sub.example.test.", 3600, .ns(name("ns.elsewhere.test."))),
            record("ns.sub.example.test.", 3600, .a(IPv4Address(192, 0, 2, 53))),
            record("srv._tcp.example.test.", 300, .srv(SRV(priority: 1, weight: 5, port: 443, target: name("www.example.test.")))),
        ]
    }

    static func zone(_ records: [ResourceRecord], origin: String = "example.test.") throws -> Zone {
        try Zone(origin: name(origin), entries: records.enumerated().map {
            ZoneFileEntry(record: $0.element, file: "test.zone", line: $0.offset + 1)
        })
    }

    static func server() throws -> AuthoritativeServer {
        AuthoritativeServer(zones: [try zone(exampleRecords())])
    }

    /// A query's bytes.
    static func query(_ qname: String, _ type: RecordType, id: UInt16 = 0x1234, edns: EDNS? = nil,
                      recordClass: RecordClass = .in) throws -> [UInt8] {
        var header = Header(id: id)
        header.recursionDesired = true
        var message = Message(header: header)
        message.questions = [Question(name: name(qname), type: type, class: recordClass)]
        message.edns = edns
        return try message.encode()
    }

    /// The action's name and the bytes written.
    static func respond(_ server: AuthoritativeServer, _ bytes: [UInt8], transport: DNSTransport = .udp) -> (String, [UInt8]) {
        var writer = MessageWriter()
        let action = server.respond(to: bytes.span, transport: transport, into: &writer)
        let written = Array(writer.bytes[0..<writer.count])
        switch action {
        case .reply: return ("reply", written)
        case .drop: return ("drop", written)
        case .reset: return ("reset", written)
        case .transfer: return ("transfer", written)
        }
    }

    /// The transfer a query starts, if it does.
    static func transfer(_ server: AuthoritativeServer, _ bytes: [UInt8]) -> ZoneTransfer? {
        var writer = MessageWriter()
        if case .transfer(let transfer) = server.respond(to: bytes.span, transport: .tcp, into: &writer) { return transfer }
        return nil
    }

    static func ask(_ server: AuthoritativeServer, _ bytes: [UInt8], transport: DNSTransport = .udp) throws -> Message? {
        let (action, reply) = respond(server, bytes, transport: transport)
        guard action == "reply" else { return nil }
        return try Message(parsing: reply.span)
    }

    static func ask(_ server: AuthoritativeServer, _ qname: String, _ type: RecordType, edns: EDNS? = nil) throws -> Message {
        try #require(try ask(server, try query(qname, type, edns: edns)))
    }

    static func names(_ records: [ResourceRecord]) -> [String] {
        records.map { "\($0.name) \($0.type)" }.sorted()
    }

    @Test func positiveAnswerCarriesZoneNSAndTargetAddresses() throws {
        let reply = try Self.ask(try Self.server(), "example.test.", .mx)
        #expect(reply.header.id == 0x1234)
        #expect(reply.header.isResponse && reply.header.isAuthoritative && reply.header.recursionDesired)
        #expect(!reply.header.recursionAvailable && !reply.header.isTruncated)
        #expect(reply.responseCode == .noError)
        #expect(Self.names(reply.answers) == ["example.test. MX"])
        #expect(Self.names(reply.authority) == ["example.test. NS", "example.test. NS"])
        // MX target's A and AAAA, and the in-zone name server's A; not the out-of-zone one.
        #expect(Self.names(reply.additional) == ["mail.example.test. A", "mail.example.test. AAAA", "ns1.example.test. A"])
    }

    @Test func apexNSIsNotRepeatedInAuthority() throws {
        let reply = try Self.ask(try Self.server(), "example.test.", .ns)
        #expect(Self.names(reply.answers) == ["example.test. NS", "example.test. NS"])
        #expect(reply.authority.isEmpty)
        #expect(Self.names(reply.additional) == ["ns1.example.test. A"])
    }

    @Test func nameErrorHasSOAWithNegativeTTL() throws {
        let reply = try Self.ask(try Self.server(), "nope.example.test.", .a)
        #expect(reply.responseCode == .nameError)
        #expect(reply.header.isAuthoritative)
        #expect(reply.answers.isEmpty)
        #expect(Self.names(reply.authority) == ["example.test. SOA"])
        // RFC 2308 §3: min(SOA TTL 3600, MINIMUM 300).
        #expect(reply.authority.first?.ttl == 300)
        #expect(reply.additional.isEmpty)
    }

    @Test func noDataAndEmptyNonTerminal() throws {
        let server = try Self.server()
        for qname in ["www.example.test.", "b.c.example.test.", "c.example.test."] {
            let reply = try Self.ask(server, qname, .mx)
            #expect(reply.responseCode == .noError, "\(qname)")
            #expect(reply.answers.isEmpty, "\(qname)")
            #expect(Self.names(reply.authority) == ["example.test. SOA"], "\(qname)")
        }
    }

    @Test func caseOfTheQueryDoesNotMatter() throws {
        let reply = try Self.ask(try Self.server(), "WwW.ExAmPlE.TeSt.", .a)
        #expect(reply.answers.count == 2)
        #expect(reply.questions.first?.name.description == "WwW.ExAmPlE.TeSt.")
    }

    @Test func cnameChainInsideTheZoneIsFollowed() throws {
        let reply = try Self.ask(try Self.server(), "chain.example.test.", .a)
        #expect(reply.responseCode == .noError)
        #expect(Self.names(reply.answers) == ["alias.example.test. CNAME", "chain.example.test. CNAME", "www.example.test. A", "www.example.test. A"])
        #expect(Self.names(reply.authority) == ["example.test. NS", "example.test. NS"])
    }

    @Test func cnameLeavingTheZoneStops() throws {
        let reply = try Self.ask(try Self.server(), "out.example.test.", .a)
        #expect(reply.responseCode == .noError)
        #expect(Self.names(reply.answers) == ["out.example.test. CNAME"])
    }

    @Test func cnameToMissingNameIsNameError() throws {
        let reply = try Self.ask(try Self.server(), "dangling.example.test.", .a)
        #expect(reply.responseCode == .nameError)
        #expect(Self.names(reply.answers) == ["dangling.example.test. CNAME"])
        #expect(Self.names(reply.authority) == ["example.test. SOA"])
    }

    @Test func cnameQueriedDirectly() throws {
        let reply = try Self.ask(try Self.server(), "alias.example.test.", .cname)
        #expect(Self.names(reply.answers) == ["alias.example.test. CNAME"])
    }

    @Test func wildcardSynthesizesTheQueryName() throws {
        let server = try Self.server()
        let reply = try Self.ask(server, "anything.wild.example.test.", .a)
        #expect(reply.responseCode == .noError && reply.header.isAuthoritative)
        #expect(Self.names(reply.answers) == ["anything.wild.example.test. A"])
        // RFC 4592 §3.3.1: only at the closest encloser — not below an existing name.
        let below = try Self.ask(server, "x.exists.wild.example.test.", .a)
        #expect(below.responseCode == .nameError)
        let exact = try Self.ask(server, "exists.wild.example.test.", .txt)
        #expect(exact.answers.isEmpty && exact.responseCode == .noError)
        let noData = try Self.ask(server, "other.wild.example.test.", .mx)
        #expect(noData.responseCode == .noError && noData.answers.isEmpty)
        #expect(Self.names(noData.authority) == ["example.test. SOA"])
        // Two labels below the wildcard's parent: the closest encloser is still wild.example.test.
        let deep = try Self.ask(server, "a.b.wild.example.test.", .a)
        #expect(Self.names(deep.answers) == ["a.b.wild.example.test. A"])
    }

    @Test func referralWithGlue() throws {
        let server = try Self.server()
        for qname in ["sub.example.test.", "host.sub.example.test.", "ns.sub.example.test."] {
            let reply = try Self.ask(server, qname, .a)
            #expect(reply.responseCode == .noError, "\(qname)")
            #expect(!reply.header.isAuthoritative, "\(qname)")
            #expect(reply.answers.isEmpty, "\(qname)")
            #expect(Self.names(reply.authority) == ["sub.example.test. NS", "sub.example.test. NS"], "\(qname)")
            #expect(Self.names(reply.additional) == ["ns.sub.example.test. A"], "\(qname)")
        }
        // DS lives on the parent side of the cut (RFC 4035 §2.4): NODATA from the parent.
        let ds = try Self.ask(server, "sub.example.test.", .ds)
        #expect(ds.header.isAuthoritative)
        #expect(Self.names(ds.authority) == ["example.test. SOA"])
    }

    @Test func srvTargetAddresses() throws {
        let reply = try Self.ask(try Self.server(), "srv._tcp.example.test.", .srv)
        #expect(Self.names(reply.answers) == ["srv._tcp.example.test. SRV"])
        #expect(Self.names(reply.additional).contains("www.example.test. A"))
    }

    @Test func refusedOutsideServedZonesAndOtherClasses() throws {
        let server = try Self.server()
        let other = try Self.ask(server, "example.org.", .a)
        #expect(other.responseCode == .refused)
        #expect(!other.header.isAuthoritative)
        #expect(other.questions.count == 1)
        let chaos = try #require(try Self.ask(server, try Self.query("version.bind.", .txt, recordClass: .ch)))
        #expect(chaos.responseCode == .refused)
    }

    @Test func ednsIsAnsweredWithOurSizeAndDOEchoed() throws {
        let server = try Self.server()
        let reply = try Self.ask(server, "www.example.test.", .a, edns: EDNS(payloadSize: 4096, dnssecOK: true))
        let edns = try #require(reply.edns)
        #expect(edns.payloadSize == 1232)
        #expect(edns.dnssecOK)
        #expect(edns.version == 0)
        let plain = try Self.ask(server, "www.example.test.", .a, edns: EDNS(payloadSize: 1232, dnssecOK: false))
        #expect(plain.edns?.dnssecOK == false)
        #expect(try Self.ask(server, "www.example.test.", .a).edns == nil)
    }

    @Test func unknownEDNSVersionIsBadVers() throws {
        var edns = EDNS(payloadSize: 1232)
        edns.version = 1
        let reply = try Self.ask(try Self.server(), "www.example.test.", .a, edns: edns)
        #expect(reply.responseCode == .badVersion)
        #expect(reply.answers.isEmpty)
        #expect(reply.edns?.version == 0)
    }

    @Test func secondOPTIsFormatError() throws {
        var bytes = try Self.query("www.example.test.", .a, edns: EDNS(payloadSize: 1232))
        let opt: [UInt8] = [0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]
        bytes.append(contentsOf: opt)
        bytes[11] = 2  // ARCOUNT
        let reply = try #require(try Self.ask(try Self.server(), bytes))
        #expect(reply.responseCode == .formatError)
        #expect(reply.header.id == 0x1234)
    }

    @Test func malformedQueriesGetFormatErrorOrNothing() throws {
        let server = try Self.server()
        let good = try Self.query("www.example.test.", .a)
        // Fewer bytes than a header: nothing to answer with.
        #expect(try Self.ask(server, Array(good[0..<11])) == nil)
        // A response is never answered.
        var response = good
        response[2] |= 0x80
        #expect(try Self.ask(server, response) == nil)
        // Cut inside the question, trailing garbage, two questions, a forward pointer.
        var twoQuestions = good
        twoQuestions[5] = 2
        var pointer = Array(good[0..<12])
        pointer.append(contentsOf: [0xC0, 0x20, 0, 1, 0, 1])
        for bad in [Array(good[0..<(good.count - 2)]), good + [0], twoQuestions, pointer] {
            let reply = try #require(try Self.ask(server, bad))
            #expect(reply.responseCode == .formatError)
            #expect(reply.header.id == 0x1234)
        }
    }

    @Test func otherOpcodesAreNotImplemented() throws {
        var bytes = try Self.query("example.test.", .soa)
        bytes[2] = (bytes[2] & 0x87) | (5 << 3)  // UPDATE
        let reply = try #require(try Self.ask(try Self.server(), bytes))
        #expect(reply.responseCode == .notImplemented)
    }

    /// A large RRset over UDP: 512 bytes without EDNS, the client's size up
    /// to 1232 with it, all over TCP; TC when the answer does not fit.
    @Test func truncationFollowsTheTransportLimit() throws {
        var records = Self.exampleRecords()
        for i in 0..<60 {
            records.append(Self.record("big.example.test.", 60, .aaaa(IPv6Address(high: 0x2001_0db8_0000_0000, low: UInt64(i)))))
        }
        let server = AuthoritativeServer(zones: [try Self.zone(records)])
        func reply(_ edns: EDNS?, _ transport: DNSTransport) throws -> (Message, Int) {
            let bytes = try Self.query("big.example.test.", .aaaa, edns: edns)
            let (action, reply) = Self.respond(server, bytes, transport: transport)
            #expect(action == "reply")
            return (try Message(parsing: reply.span), reply.count)
        }
        let (classic, classicSize) = try reply(nil, .udp)
        #expect(classic.header.isTruncated && classic.answers.isEmpty && classicSize <= 512)
        let (small, _) = try reply(EDNS(payloadSize: 256), .udp)  // below 512 counts as 512
        #expect(small.header.isTruncated && small.edns != nil)
        let (edns, ednsSize) = try reply(EDNS(payloadSize: 4096), .udp)
        // 60 AAAA records need ~1.7 KB: still too large for 1232.
        #expect(edns.header.isTruncated && ednsSize <= 1232 && edns.edns != nil)
        let (tcp, tcpSize) = try reply(nil, .tcp)
        #expect(!tcp.header.isTruncated && tcp.answers.count == 60 && tcpSize > 1232)
    }

    @Test func zoneTransferSendsSOAFirstAndLast() throws {
        let server = try Self.server()
        let bytes = try Self.query("example.test.", .axfr)
        var transfer = try #require(Self.transfer(server, bytes))
        var writer = MessageWriter()
        var records: [ResourceRecord] = []
        var messages = 0
        while transfer.next(into: &writer) {
            let message = try Message(parsing: Array(writer.bytes[0..<writer.count]).span)
            #expect(message.header.isAuthoritative && message.responseCode == .noError)
            #expect(message.questions.count == (messages == 0 ? 1 : 0))
            records += message.answers
            messages += 1
        }
        #expect(records.first?.type == .soa && records.last?.type == .soa)
        #expect(records.count == Self.exampleRecords().count + 1)
        #expect(Set(records.dropLast().map { "\($0.name) \($0.data)" }) == Set(Self.exampleRecords().map { "\($0.name) \($0.data)" }))
        // Never over UDP (RFC 5936 §4.2): NOTIMP, as NSD.
        #expect(try Self.ask(server, bytes, transport: .udp)?.responseCode == .notImplemented)
    }

    @Test func zoneTransferOfALargeZoneSpansMessages() throws {
        var records = Self.exampleRecords()
        for i in 0..<2000 {
            records.append(Self.record("host\(i).example.test.", 60, .a(IPv4Address(rawValue: 0x0A00_0000 + UInt32(i)))))
        }
        let server = AuthoritativeServer(zones: [try Self.zone(records)])
        var transfer = try #require(Self.transfer(server, try Self.query("example.test.", .axfr)))
        var writer = MessageWriter()
        var count = 0
        var messages = 0
        while transfer.next(into: &writer) {
            #expect(writer.count <= ZoneTransfer.messageSizeLimit)
            count += try Message(parsing: Array(writer.bytes[0..<writer.count]).span).answers.count
            messages += 1
        }
        #expect(count == records.count + 1)
        #expect(messages > 1)
    }

    @Test func reloadReplacesOnlyANewerSerial() throws {
        let server = try Self.server()
        var records = Self.exampleRecords(serial: 2024010102)
        records.append(Self.record("new.example.test.", 300, .a(IPv4Address(192, 0, 2, 7))))
        #expect(server.load(try Self.zone(records)) == .replaced(previousSerial: 2024010101))
        #expect(try Self.ask(server, "new.example.test.", .a).answers.count == 1)
        // An older serial (and the same one) leaves the zone alone.
        #expect(server.load(try Self.zone(Self.exampleRecords(serial: 2024010100))) == .unchanged(servedSerial: 2024010102))
        #expect(try Self.ask(server, "new.example.test.", .a).answers.count == 1)
        // RFC 1982: 1 is newer than 4294967295.
        #expect(AuthoritativeServer.serial(1, isNewerThan: 0xFFFF_FFFF))
        #expect(!AuthoritativeServer.serial(0xFFFF_FFFF, isNewerThan: 1))
        #expect(!AuthoritativeServer.serial(5, isNewerThan: 5))
    }

    /// A reply from the answer cache is byte for byte the reply a fresh
    /// server builds: the query's ID, RD bit and spelling of the name.
    @Test(arguments: ["www.example.test.", "WWW.Example.TEST.", "nope.example.test.", "NoPe.ExAmPlE.tEsT.", "x.WILD.example.test.",
                      "chain.example.test.", "big.example.test."])
    func cachedRepliesEqualFreshOnes(name: String) throws {
        var records = Self.exampleRecords()
        for i in 0..<60 {
            records.append(Self.record("big.example.test.", 60, .aaaa(IPv6Address(high: 0x2001_0db8_0000_0000, low: UInt64(i)))))
        }
        let warm = AuthoritativeServer(zones: [try Self.zone(records)])
        let type: RecordType = name.lowercased().hasPrefix("big") ? .aaaa : .a
        for edns in [nil, EDNS(payloadSize: 1232, dnssecOK: true), EDNS(payloadSize: 4096)] {
            // Warm with another spelling, ID and RD.
            var first = try Self.query(name.lowercased(), type, id: 1, edns: edns)
            first[2] &= 0xFE
            _ = Self.respond(warm, first)
            for id in [UInt16(2), 0xBEEF] {
                let query = try Self.query(name, type, id: id, edns: edns)
                let cold = AuthoritativeServer(zones: [try Self.zone(records)])
                let fresh = Self.respond(cold, query)
                let cached = Self.respond(warm, query)
                #expect(cached.0 == "reply" && cached.1 == fresh.1, "\(name) edns \(String(describing: edns))")
            }
        }
        #expect(warm.statistics.cacheHits == 6)
        // UDP and TCP limits are kept apart.
        let overTCP = Self.respond(warm, try Self.query(name, type, id: 3), transport: .tcp)
        let coldTCP = Self.respond(AuthoritativeServer(zones: [try Self.zone(records)]), try Self.query(name, type, id: 3), transport: .tcp)
        #expect(overTCP.1 == coldTCP.1)
    }

    @Test func reloadClearsTheAnswerCache() throws {
        let server = try Self.server()
        #expect(try Self.ask(server, "www.example.test.", .a).answers.count == 2)
        var records = Self.exampleRecords(serial: 2024010102).filter { !($0.name == Self.name("www.example.test.") && $0.type == .a) }
        records.append(Self.record("www.example.test.", 300, .a(IPv4Address(192, 0, 2, 7))))
        server.load(try Self.zone(records))
        let reply = try Self.ask(server, "www.example.test.", .a)
        #expect(reply.answers.map(\.data) == [.a(IPv4Address(192, 0, 2, 7))])
    }

    @Test func severalZonesMostSpecificWins() throws {
        let child = [
            Self.record("sub.example.test.", 3600, .soa(SOA(mname: Self.name("ns.sub.example.test."), rname: Self.name("admin.sub.example.test."),
                                                            serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 60))),
            Self.record("sub.example.test.", 3600, .ns(Self.name("ns.sub.example.test."))),
            Self.record("ns.sub.example.test.", 3600, .a(IPv4Address(192, 0, 2, 53))),
            Self.record("host.sub.example.test.", 3600, .a(IPv4Address(192, 0, 2, 54))),
        ]
        let server = AuthoritativeServer(zones: [try Self.zone(Self.exampleRecords()), try Self.zone(child, origin: "sub.example.test.")])
        let reply = try Self.ask(server, "host.sub.example.test.", .a)
        #expect(reply.header.isAuthoritative && reply.answers.count == 1)
        // DS for the child's apex comes from the parent zone.
        let ds = try Self.ask(server, "sub.example.test.", .ds)
        #expect(Self.names(ds.authority) == ["example.test. SOA"])
    }
}

/// Load-time checks (RFC 1034 §3.6.2, RFC 1035 §5.2) name the file and line.
@Suite struct ZoneCheckTests {
    typealias T = AuthoritativeServerTests

    static func load(_ records: [ResourceRecord]) -> DNSError? {
        do {
            _ = try T.zone(records)
            return nil
        } catch let error as DNSError {
            return error
        } catch {
            return .syntax(reason: "\(error)")
        }
    }

    @Test func cnameAndOtherDataRefused() {
        var records = T.exampleRecords()
        records.append(T.record("alias.example.test.", 300, .a(IPv4Address(192, 0, 2, 1))))
        #expect(Self.load(records) == .zone(file: "test.zone", line: records.count, reason: "CNAME and other data at alias.example.test."))
    }

    @Test func outOfZoneRefused() {
        var records = T.exampleRecords()
        records.append(T.record("www.example.org.", 300, .a(IPv4Address(192, 0, 2, 1))))
        #expect(Self.load(records) == .zone(file: "test.zone", line: records.count, reason: "www.example.org. is outside the zone example.test."))
    }

    @Test func soaRules() {
        let withoutSOA = Array(T.exampleRecords().dropFirst())
        #expect(Self.load(withoutSOA) == .zone(file: "test.zone", line: 0, reason: "no SOA record at the apex example.test."))
        var twoSOA = T.exampleRecords()
        var other = T.soa
        other.serial = 7
        twoSOA.append(T.record("example.test.", 3600, .soa(other)))
        #expect(Self.load(twoSOA) == .zone(file: "test.zone", line: twoSOA.count, reason: "a second SOA record at the apex example.test."))
        var misplaced = T.exampleRecords()
        misplaced.append(T.record("www.example.test.", 3600, .soa(T.soa)))
        #expect(Self.load(misplaced) == .zone(file: "test.zone", line: misplaced.count, reason: "SOA record at www.example.test., not at the apex example.test."))
    }

    @Test func nameServersNeedAddresses() {
        let noNS = T.exampleRecords().filter { !($0.type == .ns && $0.name == T.name("example.test.")) }
        #expect(Self.load(noNS) == .zone(file: "test.zone", line: 1, reason: "no NS records at the apex example.test."))
        var orphan = T.exampleRecords()
        orphan.append(T.record("example.test.", 3600, .ns(T.name("ns9.example.test."))))
        #expect(Self.load(orphan) == .zone(file: "test.zone", line: orphan.count,
                                           reason: "NS ns9.example.test. of example.test. is in the zone but has no address record"))
    }

    @Test func duplicatesKeptOnce() throws {
        var records = T.exampleRecords()
        records.append(T.record("www.example.test.", 300, .a(IPv4Address(192, 0, 2, 80))))
        let zone = try T.zone(records)
        #expect(zone.records.count == T.exampleRecords().count)
    }
}
