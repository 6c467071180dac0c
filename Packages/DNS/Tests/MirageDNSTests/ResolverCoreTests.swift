import MirageDNS
import MirageDevices
import Testing

// The sans-I/O stub resolver core, byte for byte, at explicit times.

private let www = Question(name: dn("www.example.com."), type: .a)
private let wwwAddress = IPv4Address(192, 0, 2, 80)

private func core(_ servers: [Endpoint] = [server1, server2], seed: UInt64 = 1,
                  _ configure: (inout StubResolver.Configuration) -> Void = { _ in }) -> StubResolver {
    var configuration = StubResolver.Configuration()
    configure(&configuration)
    return StubResolver(servers: servers, entropy: SeededEntropy(seed: seed), configuration: configuration)
}

/// Starts a lookup and returns it with its one UDP query.
private func start(_ r: inout StubResolver, _ question: Question = www, now: Instant = .zero,
                   sourceLocation: SourceLocation = #_sourceLocation) throws -> (LookupID, SentQuery) {
    let (id, actions) = try r.resolve(question, now: now)
    let sent = udpSends(actions)
    try #require(sent.count == 1, "one UDP query", sourceLocation: sourceLocation)
    return (id, sent[0])
}

@Suite struct ResolverQueryTests {
    @Test("the query is RD=1, one question, an OPT offering 1232 bytes, byte for byte; the ID is the entropy's")
    func queryBytes() throws {
        var r = core()
        let (_, sent) = try start(&r)
        let id = sent.bytes[0...1]
        let expected: [UInt8] = [
            0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,        // RD; QD=1, AN=0, NS=0, AR=1
            3, 0x77, 0x77, 0x77, 7, 0x65, 0x78, 0x61, 0x6D, 0x70, 0x6C, 0x65, 3, 0x63, 0x6F, 0x6D, 0,
            0x00, 0x01, 0x00, 0x01,                                            // A IN
            0x00, 0x00, 0x29, 0x04, 0xD0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // OPT, 1232, TTL 0, RDLEN 0
        ]
        #expect(Array(sent.bytes[2...]) == expected)
        #expect(sent.server == server1)
        // The same seed draws the same ID; another seed another.
        var again = core(seed: 1)
        #expect(try start(&again).1.bytes[0...1] == id)
        var other = core(seed: 2)
        #expect(try start(&other).1.bytes[0...1] != id)
    }

    @Test("without EDNS the query is plain RFC 1035 (no additional record)")
    func queryWithoutEDNS() throws {
        var r = core { $0.payloadSize = nil }
        let (_, sent) = try start(&r)
        #expect(sent.message.edns == nil)
        #expect(sent.bytes.count == 12 + 17 + 4)
    }

    @Test("an answer completes the lookup with the RRset and its TTL; the socket is released")
    func answerAccepted() throws {
        var r = core()
        let (id, sent) = try start(&r)
        let answer = try reply(to: sent.bytes, answers: [aRecord("www.example.com.", 300, wwwAddress),
                                                         aRecord("www.example.com.", 200, IPv4Address(192, 0, 2, 81))])
        let actions = r.datagramReceived(answer.span, from: server1, query: sent.query, now: .milliseconds(30))
        #expect(releases(actions) == [sent.query])
        #expect(completions(actions).first?.0 == id)
        guard case .success(let result) = onlyCompletion(actions) else { Issue.record("no answer"); return }
        #expect(result.ipv4Addresses == [wwwAddress, IPv4Address(192, 0, 2, 81)])
        #expect(result.ttl == 200)
        #expect(r.lookupCount == 0 && r.queryCount == 0)
        #expect(r.nextDeadline == nil)
    }

    @Test("the name is matched case-insensitively (RFC 4343): an answer echoing WWW.Example.COM is taken")
    func questionCaseInsensitive() throws {
        var r = core()
        let (_, sent) = try start(&r)
        let echoed = Question(name: dn("WWW.Example.COM."), type: .a)
        let answer = try reply(to: sent.bytes, answers: [aRecord("WWW.EXAMPLE.com.", 60, wwwAddress)], question: echoed)
        let actions = r.datagramReceived(answer.span, from: server1, query: sent.query, now: .zero)
        #expect(addresses(actions) == [wwwAddress])
    }
}

@Suite struct ResolverRetryTests {
    @Test("no answer: server 1 at 0 s, server 2 at 2 s, then each again with the timeout doubled, timedOut at 12 s")
    func retriesThenTimesOut() throws {
        var r = core()
        let (id, first) = try start(&r)
        #expect(first.server == server1)
        #expect(r.nextDeadline == .seconds(2))
        #expect(r.timerFired(now: .milliseconds(1999)).isEmpty, "nothing before the deadline")
        var seen = [first]
        for (at, server, next) in [(Int64(2), server2, Int64(4)), (4, server1, 8), (8, server2, 12)] {
            let actions = r.timerFired(now: .seconds(at))
            let sent = udpSends(actions)
            try #require(sent.count == 1)
            #expect(sent[0].server == server)
            #expect(r.nextDeadline == .seconds(next))
            seen.append(sent[0])
        }
        // Every attempt has its own query (socket) and its own random ID.
        #expect(Set(seen.map(\.query)).count == 4)
        #expect(Set(seen.map(\.message.header.id)).count == 4)
        let last = r.timerFired(now: .seconds(12))
        #expect(completions(last).first?.0 == id)
        #expect(failure(last) == .timedOut)
        // The queries still open are all released at the end.
        #expect(r.queryCount == 0)
        #expect(r.statistics.timeouts == 4)
        #expect(r.statistics.udpQueries == 4)
    }

    @Test("one attempt and one server: timedOut after the timeout", arguments: [Int64(1), 3])
    func singleAttempt(seconds: Int64) throws {
        var r = core([server1]) {
            $0.attempts = 1
            $0.timeout = .seconds(seconds)
        }
        _ = try start(&r)
        let actions = r.timerFired(now: .seconds(seconds))
        #expect(udpSends(actions).isEmpty)
        #expect(failure(actions) == .timedOut)
    }

    @Test("a late answer to the first attempt, after the retry went out, is still taken")
    func lateAnswerAccepted() throws {
        var r = core()
        let (_, first) = try start(&r)
        let retry = udpSends(r.timerFired(now: .seconds(2)))
        try #require(retry.count == 1)
        let late = try reply(to: first.bytes, answers: [aRecord("www.example.com.", 60, wwwAddress)])
        let actions = r.datagramReceived(late.span, from: server1, query: first.query, now: .milliseconds(2100))
        #expect(Set(releases(actions)) == [first.query, retry[0].query])
        #expect(addresses(actions) == [wwwAddress])
    }

    @Test("SERVFAIL moves on to the next server at once; all failing ends with serverFailure(2)")
    func serverFailureMovesOn() throws {
        var r = core()
        var (_, sent) = try start(&r)
        for expected in [server2, server1, server2] {
            let fail = try reply(to: sent.bytes, rcode: .serverFailure)
            let actions = r.datagramReceived(fail.span, from: sent.server, query: sent.query, now: .milliseconds(10))
            let next = udpSends(actions)
            try #require(next.count == 1)
            #expect(next[0].server == expected)
            #expect(releases(actions) == [sent.query])
            sent = next[0]
        }
        let fail = try reply(to: sent.bytes, rcode: .refused)
        let actions = r.datagramReceived(fail.span, from: sent.server, query: sent.query, now: .milliseconds(20))
        #expect(failure(actions) == .serverFailure(rcode: 5))
        #expect(r.statistics.serverErrors == 4)
    }

    @Test("a server that fails and one that times out: the failure is what is reported")
    func failureBeatsTimeout() throws {
        var r = core { $0.attempts = 1 }
        let (_, sent) = try start(&r)
        let fail = try reply(to: sent.bytes, rcode: .serverFailure)
        let moved = udpSends(r.datagramReceived(fail.span, from: server1, query: sent.query, now: .zero))
        #expect(moved.map(\.server) == [server2])
        let actions = r.timerFired(now: .seconds(2))
        #expect(failure(actions) == .serverFailure(rcode: 2))
    }

    @Test("port unreachable (queryFailed) skips to the next server without waiting")
    func queryFailedMovesOn() throws {
        var r = core()
        let (_, sent) = try start(&r)
        let actions = r.queryFailed(sent.query, now: .milliseconds(5))
        #expect(udpSends(actions).map(\.server) == [server2])
        #expect(releases(actions) == [sent.query])
        #expect(r.nextDeadline == .milliseconds(2005))
    }

    @Test("FORMERR without an OPT to an EDNS query: asked again without EDNS, same server (RFC 6891 §7)")
    func formErrFallsBackToPlainDNS() throws {
        var r = core()
        let (_, sent) = try start(&r)
        let formerr = try reply(to: sent.bytes, rcode: .formatError, withEDNS: false)
        let again = udpSends(r.datagramReceived(formerr.span, from: server1, query: sent.query, now: .zero))
        try #require(again.count == 1)
        #expect(again[0].server == server1)
        #expect(again[0].message.edns == nil)
        #expect(r.statistics.ednsFallbacks == 1)
        let answer = try reply(to: again[0].bytes, answers: [aRecord("www.example.com.", 60, wwwAddress)])
        let done = r.datagramReceived(answer.span, from: server1, query: again[0].query, now: .zero)
        #expect(addresses(done) == [wwwAddress])
    }

    @Test("a referral (no recursion) moves on; only referrals: DNSError.referral")
    func referral() throws {
        var r = core([server1]) { $0.attempts = 1 }
        let (_, sent) = try start(&r)
        let referral = try reply(to: sent.bytes, authority: [nsRecord("example.com.", 3600, "ns1.example.com.")])
        let actions = r.datagramReceived(referral.span, from: server1, query: sent.query, now: .zero)
        #expect(failure(actions) == .referral(zone: dn("example.com.")))
    }

    @Test("cancel releases the lookup's queries and completes nothing; later bytes are counted as unexpected")
    func cancel() throws {
        var r = core()
        let (id, sent) = try start(&r)
        let actions = r.cancel(id)
        #expect(actions == [.release(sent.query)])
        #expect(r.nextDeadline == nil)
        let answer = try reply(to: sent.bytes, answers: [aRecord("www.example.com.", 60, wwwAddress)])
        #expect(r.datagramReceived(answer.span, from: server1, query: sent.query, now: .zero).isEmpty)
        #expect(r.statistics.unexpected == 1)
        #expect(r.statistics.cancelled == 1)
    }
}

@Suite struct ResolverAcceptanceTests {
    @Test("answers from the wrong address or port, with the wrong ID, or for another question are dropped and counted")
    func mismatchesDropped() throws {
        var r = core()
        let (_, sent) = try start(&r)
        let good = [aRecord("www.example.com.", 60, wwwAddress)]
        let spoofed = [aRecord("www.example.com.", 60, IPv4Address(203, 0, 113, 66))]
        let id = sent.message.header.id
        let wrongSource = try reply(to: sent.bytes, answers: spoofed)
        #expect(r.datagramReceived(wrongSource.span, from: Endpoint(.v4(IPv4Address(203, 0, 113, 1)), 53), query: sent.query, now: .zero).isEmpty)
        #expect(r.datagramReceived(wrongSource.span, from: Endpoint(server1.address, 5353), query: sent.query, now: .zero).isEmpty)
        let wrongID = try reply(to: sent.bytes, answers: spoofed, id: id &+ 1)
        #expect(r.datagramReceived(wrongID.span, from: server1, query: sent.query, now: .zero).isEmpty)
        for other in [Question(name: dn("www.example.net."), type: .a), Question(name: dn("www.example.com."), type: .aaaa),
                      Question(name: dn("www.example.com."), type: .a, class: .ch)] {
            let wrongQuestion = try reply(to: sent.bytes, answers: spoofed, question: other)
            #expect(r.datagramReceived(wrongQuestion.span, from: server1, query: sent.query, now: .zero).isEmpty)
        }
        var notResponse = try reply(to: sent.bytes, answers: spoofed)
        notResponse[2] &= 0x7F
        #expect(r.datagramReceived(notResponse.span, from: server1, query: sent.query, now: .zero).isEmpty)
        let garbage = Array(try reply(to: sent.bytes, answers: spoofed).dropLast(3))
        #expect(r.datagramReceived(garbage.span, from: server1, query: sent.query, now: .zero).isEmpty)
        #expect(r.datagramReceived([UInt8](repeating: 0, count: 5).span, from: server1, query: sent.query, now: .zero).isEmpty)
        #expect(r.statistics.mismatchedSource == 2)
        #expect(r.statistics.mismatchedID == 1)
        #expect(r.statistics.mismatchedQuestion == 3)
        #expect(r.statistics.malformed == 3)
        // The lookup is still waiting, and takes the real answer.
        let real = try reply(to: sent.bytes, answers: good)
        let actions = r.datagramReceived(real.span, from: server1, query: sent.query, now: .zero)
        #expect(addresses(actions) == [wwwAddress])
    }

    @Test("records off the chain in the answer are ignored and never cached")
    func offChainRecordsIgnored() throws {
        var r = core()
        let (_, sent) = try start(&r)
        let answer = try reply(to: sent.bytes, answers: [aRecord("www.example.com.", 60, wwwAddress),
                                                         aRecord("victim.example.org.", 60, IPv4Address(203, 0, 113, 66))])
        _ = r.datagramReceived(answer.span, from: server1, query: sent.query, now: .zero)
        let (_, probe) = try r.resolve(Question(name: dn("victim.example.org."), type: .a), now: .seconds(1))
        #expect(udpSends(probe).count == 1, "not answered from the cache")
    }
}

@Suite struct ResolverTCPTests {
    @Test("TC=1 over UDP: the same server is asked over TCP (framed), and the TCP answer in every two-way split completes it")
    func truncatedFallsBackToTCP() throws {
        let records = (1...40).map { aRecord("www.example.com.", 120, IPv4Address(10, 0, 0, UInt8($0))) }
        var splits = 0
        var sizes: Set<Int> = []
        for split in 0...80 {
            var r = core()
            let (_, sent) = try start(&r)
            let truncated = try reply(to: sent.bytes, truncated: true)
            let actions = r.datagramReceived(truncated.span, from: server1, query: sent.query, now: .milliseconds(40))
            let tcp = tcpSends(actions)
            try #require(tcp.count == 1)
            #expect(tcp[0].server == server1)
            #expect(releases(actions) == [sent.query])
            #expect(r.nextDeadline == .milliseconds(40) + .seconds(10))
            let answer = framed(try reply(to: tcp[0].bytes, answers: records))
            sizes.insert(answer.count)
            let cut = min(split, answer.count)
            let first = r.streamReceived(Array(answer[..<cut]).span, query: tcp[0].query, now: .milliseconds(50))
            #expect(completions(first).isEmpty || cut == answer.count)
            var done = first
            if cut < answer.count {
                done = r.streamReceived(Array(answer[cut...]).span, query: tcp[0].query, now: .milliseconds(51))
            }
            #expect(onlyCompletion(done).map { (try? $0.get())?.ipv4Addresses.count } == 40)
            #expect(r.statistics.truncated == 1 && r.statistics.tcpQueries == 1)
            splits += 1
        }
        #expect(splits == 81)
    }

    @Test("a TCP answer fed one byte at a time, with bytes after it ignored")
    func tcpByteByByte() throws {
        var r = core()
        let (_, sent) = try start(&r)
        let tcp = tcpSends(r.receive(try reply(to: sent.bytes, truncated: true), from: server1, query: sent.query, now: .zero))
        try #require(tcp.count == 1)
        let answer = framed(try reply(to: tcp[0].bytes, answers: [aRecord("www.example.com.", 60, wwwAddress)])) + [0xde, 0xad]
        var results: [Result<LookupResult, DNSError>] = []
        for byte in answer {
            results += completions(r.streamReceived([byte].span, query: tcp[0].query, now: .zero)).map(\.1)
        }
        #expect(results.count == 1)
        #expect(results.first.map { (try? $0.get())?.ipv4Addresses } == [wwwAddress])
        #expect(r.statistics.unexpected == 2, "the two bytes after the answer arrive for a released query")
    }

    @Test("the TCP connection closing before the answer moves on to the next server over UDP")
    func tcpClosedMovesOn() throws {
        var r = core()
        let (_, sent) = try start(&r)
        let tcp = tcpSends(r.receive(try reply(to: sent.bytes, truncated: true), from: server1, query: sent.query, now: .zero))
        try #require(tcp.count == 1)
        _ = r.streamReceived([0x00].span, query: tcp[0].query, now: .zero)
        let actions = r.streamClosed(query: tcp[0].query, now: .milliseconds(5))
        #expect(udpSends(actions).map(\.server) == [server2])
        #expect(releases(actions) == [tcp[0].query])
    }

    @Test("a TCP exchange that takes longer than tcpTimeout is abandoned for the next server")
    func tcpTimeout() throws {
        var r = core { $0.tcpTimeout = .seconds(3) }
        let (_, sent) = try start(&r)
        let tcp = tcpSends(r.receive(try reply(to: sent.bytes, truncated: true), from: server1, query: sent.query, now: .zero))
        try #require(tcp.count == 1)
        #expect(r.timerFired(now: .milliseconds(2999)).isEmpty)
        let actions = r.timerFired(now: .seconds(3))
        #expect(releases(actions) == [tcp[0].query])
        #expect(udpSends(actions).map(\.server) == [server2])
    }

    @Test("a length prefix shorter than a header fails the TCP query")
    func tcpFrameTooShort() throws {
        var r = core()
        let (_, sent) = try start(&r)
        let tcp = tcpSends(r.receive(try reply(to: sent.bytes, truncated: true), from: server1, query: sent.query, now: .zero))
        try #require(tcp.count == 1)
        let actions = r.streamReceived([0x00, 0x05, 1, 2, 3, 4, 5].span, query: tcp[0].query, now: .zero)
        #expect(releases(actions) == [tcp[0].query])
        #expect(udpSends(actions).map(\.server) == [server2])
        #expect(r.statistics.malformed == 1)
    }
}

@Suite struct ResolverCNAMETests {
    @Test("a CNAME chain in the answer is followed; aliases in order; the TTL is the chain's smallest")
    func chainFollowed() throws {
        var r = core()
        let (_, sent) = try start(&r)
        let answer = try reply(to: sent.bytes, answers: [
            cnameRecord("www.example.com.", 900, "web.example.net."),
            cnameRecord("web.example.net.", 40, "edge.cdn.example."),
            aRecord("edge.cdn.example.", 300, wwwAddress),
        ])
        let actions = r.datagramReceived(answer.span, from: server1, query: sent.query, now: .zero)
        guard case .success(.answer(let a)) = onlyCompletion(actions) else { Issue.record("no answer"); return }
        #expect(a.name == dn("edge.cdn.example."))
        #expect(a.aliases.map(\.name) == [dn("www.example.com."), dn("web.example.net.")])
        #expect(a.records.count == 1)
        #expect(a.ttl == 40)
    }

    @Test("a chain ending at a target the answer does not cover (no SOA) is restarted for the target")
    func restartAtTarget() throws {
        var r = core()
        let (id, sent) = try start(&r)
        let partial = try reply(to: sent.bytes, answers: [cnameRecord("www.example.com.", 600, "www.example.net.")], authoritative: true)
        let actions = r.datagramReceived(partial.span, from: server1, query: sent.query, now: .zero)
        let next = udpSends(actions)
        try #require(next.count == 1)
        #expect(next[0].message.questions == [Question(name: dn("www.example.net."), type: .a)])
        #expect(next[0].server == server1)
        #expect(r.statistics.restarts == 1)
        let answer = try reply(to: next[0].bytes, answers: [aRecord("www.example.net.", 120, wwwAddress)])
        let done = r.datagramReceived(answer.span, from: server1, query: next[0].query, now: .zero)
        #expect(completions(done).first?.0 == id)
        guard case .success(.answer(let a)) = onlyCompletion(done) else { Issue.record("no answer"); return }
        #expect(a.aliases == [cnameRecord("www.example.com.", 600, "www.example.net.")])
        #expect(a.ttl == 120)
        // Cached under the question asked.
        let (_, hit) = try r.resolve(www, now: .seconds(1))
        #expect(udpSends(hit).isEmpty && completions(hit).count == 1)
    }

    @Test("a CNAME loop, or a chain longer than maximumCNAMEChain, ends with tooManyCNAMEs")
    func loopsAndLongChains() throws {
        var r = core()
        let (_, sent) = try start(&r)
        let loop = try reply(to: sent.bytes, answers: [cnameRecord("www.example.com.", 60, "a.example.com."),
                                                       cnameRecord("a.example.com.", 60, "www.example.com.")])
        let actions = r.datagramReceived(loop.span, from: server1, query: sent.query, now: .zero)
        #expect(failure(actions) == .tooManyCNAMEs)

        var short = core { $0.maximumCNAMEChain = 2 }
        let (_, q) = try start(&short)
        let long = try reply(to: q.bytes, answers: [cnameRecord("www.example.com.", 60, "a.example.com."),
                                                    cnameRecord("a.example.com.", 60, "b.example.com."),
                                                    cnameRecord("b.example.com.", 60, "c.example.com."),
                                                    aRecord("c.example.com.", 60, wwwAddress)])
        let result = short.datagramReceived(long.span, from: server1, query: q.query, now: .zero)
        #expect(failure(result) == .tooManyCNAMEs)
    }

    @Test("asking for the CNAME itself returns it without following")
    func askingForCNAME() throws {
        var r = core()
        let question = Question(name: dn("www.example.com."), type: .cname)
        let (_, sent) = try start(&r, question)
        let answer = try reply(to: sent.bytes, answers: [cnameRecord("www.example.com.", 60, "web.example.net.")])
        let actions = r.datagramReceived(answer.span, from: server1, query: sent.query, now: .zero)
        guard case .success(.answer(let a)) = onlyCompletion(actions) else { Issue.record("no answer"); return }
        #expect(a.records == [cnameRecord("www.example.com.", 60, "web.example.net.")])
        #expect(a.aliases.isEmpty)
    }
}

@Suite struct ResolverCacheTests {
    @Test("a cached answer is served without traffic, TTLs lowered by the time held, until it expires")
    func positiveCaching() throws {
        var r = core()
        let (_, sent) = try start(&r)
        let answer = try reply(to: sent.bytes, answers: [aRecord("www.example.com.", 300, wwwAddress)])
        _ = r.datagramReceived(answer.span, from: server1, query: sent.query, now: .seconds(1))
        let (hitID, hit) = try r.resolve(Question(name: dn("WWW.EXAMPLE.COM."), type: .a), now: .seconds(101))
        #expect(udpSends(hit).isEmpty)
        #expect(completions(hit).first?.0 == hitID)
        guard case .success(.answer(let a)) = onlyCompletion(hit) else { Issue.record("no cached answer"); return }
        #expect(a.records.first?.ttl == 200)
        #expect(a.ttl == 200)
        #expect(r.statistics.cacheHits == 1)
        // Still there 1 ns before the end, gone at 301 s.
        let (_, last) = try r.resolve(www, now: .seconds(301) + .nanoseconds(-1))
        #expect(udpSends(last).isEmpty)
        let (_, expired) = try r.resolve(www, now: .seconds(301))
        #expect(udpSends(expired).count == 1)
        #expect(r.cache.statistics.expirations == 1)
    }

    @Test("another type or class is another entry")
    func keyIncludesTypeAndClass() throws {
        var r = core()
        let (_, sent) = try start(&r)
        _ = r.receive(try reply(to: sent.bytes, answers: [aRecord("www.example.com.", 300, wwwAddress)]),
                               from: server1, query: sent.query, now: .zero)
        #expect(udpSends(try r.resolve(Question(name: www.name, type: .aaaa), now: .zero).actions).count == 1)
        #expect(udpSends(try r.resolve(Question(name: www.name, type: .a, class: .ch), now: .zero).actions).count == 1)
    }

    @Test("TTL 0 is used once and not cached")
    func zeroTTLNotCached() throws {
        var r = core()
        let (_, sent) = try start(&r)
        let actions = r.receive(try reply(to: sent.bytes, answers: [aRecord("www.example.com.", 0, wwwAddress)]),
                                         from: server1, query: sent.query, now: .zero)
        #expect(addresses(actions) == [wwwAddress])
        #expect(udpSends(try r.resolve(www, now: .zero).actions).count == 1)
    }

    @Test("negative answers are cached for min(SOA TTL, SOA MINIMUM) (RFC 2308 §5)",
          arguments: [(ResponseCode.nameError, UInt32(3600), UInt32(60), UInt32(60)),
                      (.nameError, 30, 600, 30),
                      (.noError, 3600, 120, 120),
                      (.noError, 45, 900, 45)])
    func negativeCaching(rcode: ResponseCode, soaTTL: UInt32, minimum: UInt32, expected: UInt32) throws {
        var r = core()
        let (_, sent) = try start(&r)
        let negative = try reply(to: sent.bytes, rcode: rcode, authority: [soaRecord("example.com.", ttl: soaTTL, minimum: minimum)])
        let actions = r.datagramReceived(negative.span, from: server1, query: sent.query, now: .zero)
        let result = try #require(try onlyCompletion(actions)?.get())
        switch (rcode, result) {
        case (.nameError, .nameError(let n)), (.noError, .noData(let n)):
            #expect(n.ttl == expected)
            #expect(n.name == www.name)
            #expect(n.soa?.name == dn("example.com."))
        default:
            Issue.record("\(rcode) read as \(result)")
        }
        let (_, hit) = try r.resolve(www, now: .seconds(Int64(expected) - 1))
        #expect(udpSends(hit).isEmpty)
        #expect(onlyCompletion(hit).map { (try? $0.get())?.ttl } == 1)
        let (_, miss) = try r.resolve(www, now: .seconds(Int64(expected)))
        #expect(udpSends(miss).count == 1)
    }

    @Test("a negative answer without an SOA is reported but not cached")
    func negativeWithoutSOANotCached() throws {
        var r = core()
        let (_, sent) = try start(&r)
        let actions = r.receive(try reply(to: sent.bytes, rcode: .nameError), from: server1, query: sent.query, now: .zero)
        guard case .success(.nameError(let n)) = onlyCompletion(actions) else { Issue.record("not NXDOMAIN"); return }
        #expect(n.ttl == 0 && n.soa == nil)
        #expect(udpSends(try r.resolve(www, now: .seconds(1)).actions).count == 1)
    }

    @Test("an SOA of an unrelated zone does not make a negative answer cacheable")
    func unrelatedSOAIgnored() throws {
        var r = core()
        let (_, sent) = try start(&r)
        let negative = try reply(to: sent.bytes, rcode: .nameError, authority: [soaRecord("example.org.", ttl: 600, minimum: 600)])
        let actions = r.datagramReceived(negative.span, from: server1, query: sent.query, now: .zero)
        guard case .success(.nameError(let n)) = onlyCompletion(actions) else { Issue.record("not NXDOMAIN"); return }
        #expect(n.soa == nil && n.ttl == 0)
    }

    @Test("NXDOMAIN at the end of a CNAME chain names the target; its TTL is bounded by the chain")
    func negativeAfterChain() throws {
        var r = core()
        let (_, sent) = try start(&r)
        let negative = try reply(to: sent.bytes, rcode: .nameError, answers: [cnameRecord("www.example.com.", 20, "gone.example.net.")],
                                 authority: [soaRecord("example.net.", ttl: 600, minimum: 300)])
        let actions = r.datagramReceived(negative.span, from: server1, query: sent.query, now: .zero)
        guard case .success(.nameError(let n)) = onlyCompletion(actions) else { Issue.record("not NXDOMAIN"); return }
        #expect(n.name == dn("gone.example.net."))
        #expect(n.aliases.count == 1)
        #expect(n.ttl == 20)
    }

    @Test("TTLs are capped: positive at maximumTTL, negative at maximumNegativeTTL")
    func capped() throws {
        var r = core {
            $0.cache.maximumTTL = 100
            $0.cache.maximumNegativeTTL = 50
        }
        let (_, sent) = try start(&r)
        let actions = r.receive(try reply(to: sent.bytes, answers: [aRecord("www.example.com.", 999_999, wwwAddress)]),
                                         from: server1, query: sent.query, now: .zero)
        #expect(onlyCompletion(actions).map { (try? $0.get())?.ttl } == 100)
        #expect(udpSends(try r.resolve(www, now: .seconds(100)).actions).count == 1)
        let other = Question(name: dn("nx.example.com."), type: .a)
        let (_, q) = try start(&r, other, now: .seconds(200))
        let nx = r.receive(try reply(to: q.bytes, rcode: .nameError, authority: [soaRecord("example.com.", ttl: 9999, minimum: 9999)]),
                                    from: server1, query: q.query, now: .seconds(200))
        #expect(onlyCompletion(nx).map { (try? $0.get())?.ttl } == 50)
    }

    @Test("the cache holds at most maximumEntries: the least recently used goes, counted")
    func cacheBounded() throws {
        var r = core { $0.cache.maximumEntries = 3 }
        var t: Int64 = 0
        func fill(_ label: String) throws {
            let (_, q) = try start(&r, Question(name: dn("\(label).example.com."), type: .a), now: .seconds(t))
            _ = r.receive(try reply(to: q.bytes, answers: [aRecord("\(label).example.com.", 3600, wwwAddress)]),
                                   from: server1, query: q.query, now: .seconds(t))
            t += 1
        }
        try fill("a")
        try fill("b")
        try fill("c")
        // Touch a, so b is the least recently used.
        #expect(udpSends(try r.resolve(Question(name: dn("a.example.com."), type: .a), now: .seconds(t)).actions).isEmpty)
        try fill("d")
        #expect(r.cache.count == 3)
        #expect(r.cache.statistics.evictions == 1)
        #expect(udpSends(try r.resolve(Question(name: dn("a.example.com."), type: .a), now: .seconds(t)).actions).isEmpty)
        #expect(udpSends(try r.resolve(Question(name: dn("b.example.com."), type: .a), now: .seconds(t)).actions).count == 1)
    }

    @Test("a different server list empties the cache; the same list does not")
    func serversChangeFlushes() throws {
        var r = core()
        let (_, sent) = try start(&r)
        _ = r.receive(try reply(to: sent.bytes, answers: [aRecord("www.example.com.", 300, wwwAddress)]),
                               from: server1, query: sent.query, now: .zero)
        r.setServers([server1, server2])
        #expect(r.cache.count == 1)
        r.setServers([server2])
        #expect(r.cache.count == 0)
        #expect(udpSends(try r.resolve(www, now: .zero).actions).map(\.server) == [server2])
    }
}

@Suite struct ResolverLimitTests {
    @Test("more than maximumLookups at once throws tooManyQueries; a finished one frees its place")
    func tooManyLookups() throws {
        var r = core { $0.maximumLookups = 3 }
        var first: SentQuery?
        for i in 0..<3 {
            let (_, q) = try start(&r, Question(name: dn("h\(i).example.com."), type: .a))
            if first == nil { first = q }
        }
        #expect(throws: DNSError.tooManyQueries(limit: 3)) { try r.resolve(www, now: .zero) }
        let q = try #require(first)
        _ = r.receive(try reply(to: q.bytes, answers: [aRecord("h0.example.com.", 60, wwwAddress)]),
                               from: server1, query: q.query, now: .zero)
        _ = try start(&r)
    }

    @Test("no servers: resolve throws noServers (a cached answer is still served)")
    func noServers() throws {
        var r = core()
        let (_, sent) = try start(&r)
        _ = r.receive(try reply(to: sent.bytes, answers: [aRecord("www.example.com.", 300, wwwAddress)]),
                               from: server1, query: sent.query, now: .zero)
        var empty = core([])
        #expect(throws: DNSError.noServers) { try empty.resolve(www, now: .zero) }
        // Emptying the list also flushes, so nothing is served after it.
        r.setServers([])
        #expect(throws: DNSError.noServers) { try r.resolve(www, now: .zero) }
    }

    @Test("at most maximumServers of a long list are used")
    func serverListCapped() {
        let many = (1...20).map { Endpoint(.v4(IPv4Address(10, 0, 0, UInt8($0))), 53) }
        let r = core(many)
        #expect(r.servers.count == StubResolver.maximumServers)
        #expect(r.servers == Array(many.prefix(StubResolver.maximumServers)))
    }

    @Test("a lookup keeps at most maximumQueriesPerLookup sockets open; older ones are released")
    func queriesPerLookupBounded() throws {
        var r = core([server1]) { $0.attempts = 8 }
        _ = try start(&r)
        var t: Int64 = 0
        var released = 0
        for _ in 0..<6 {
            t += 1000
            let actions = r.timerFired(now: .seconds(t))
            released += releases(actions).count
            #expect(r.queryCount <= StubResolver.maximumQueriesPerLookup)
        }
        #expect(r.queryCount == StubResolver.maximumQueriesPerLookup)
        #expect(released == 7 - StubResolver.maximumQueriesPerLookup)
    }
}
