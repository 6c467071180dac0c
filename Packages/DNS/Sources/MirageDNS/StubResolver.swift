import MirageDevices

/// A stub resolver (RFC 1034 §5.3.1) as a sans-I/O state machine: it asks
/// the configured recursive servers, checks what comes back, follows CNAME
/// chains and caches results; the caller moves the bytes.
///
/// Inputs are `resolve`, `datagramReceived`, `streamReceived`,
/// `streamClosed`, `queryFailed`, `timerFired` and `cancel`, each with the
/// current time; each returns `Action`s: datagrams to send (each query from
/// a fresh socket, so the stack picks a random source port), TCP exchanges
/// to start, sockets to release, lookups completed. `nextDeadline` says
/// when to call `timerFired`. Transaction IDs come from the `EntropySource`.
///
/// Queries go over UDP with EDNS (payload `EDNS.ourPayloadSize`) and RD
/// set. Each attempt waits `timeout` (doubled each round), going through the
/// servers in order `attempts` times. An answer is accepted only when it
/// comes from the server asked (address and port), carries the query's ID
/// and repeats its question (name case-insensitively, type, class);
/// anything else is counted and dropped (RFC 5452 §9.1). A truncated answer
/// is asked again over TCP (RFC 7766 §5); SERVFAIL, REFUSED and other error
/// codes move on to the next server at once.
public struct StubResolver {
    /// The port name servers listen on (RFC 1035 §4.2).
    public static let defaultPort: UInt16 = 53
    /// The most servers used; more are ignored (a DHCP lease may list many;
    /// glibc uses three).
    public static let maximumServers = 8
    /// The most rounds over the servers a configuration may ask for.
    public static let maximumAttempts = 8
    /// UDP queries of one lookup kept open for late answers; an older one
    /// is released when a new attempt starts beyond this.
    public static let maximumQueriesPerLookup = 4

    /// Settings.
    public struct Configuration: Hashable, Sendable {
        /// How long the first round's attempts wait for an answer; each
        /// later round waits twice as long as the one before.
        public var timeout: Interval = .seconds(2)
        /// Rounds over the server list (1 ... `maximumAttempts`).
        public var attempts: Int = 2
        /// How long a TCP exchange (connect, query, answer) may take.
        public var tcpTimeout: Interval = .seconds(10)
        /// Lookups in progress at once; beyond it `resolve` throws
        /// `tooManyQueries`.
        public var maximumLookups: Int = 64
        /// CNAME records followed for one lookup, answers and restarts
        /// together (a loop ends here too).
        public var maximumCNAMEChain: Int = 8
        /// The UDP payload size offered with EDNS (RFC 6891 §6.2.5); nil
        /// sends plain RFC 1035 queries (answers then fit 512 bytes).
        public var payloadSize: UInt16? = EDNS.ourPayloadSize
        /// The cache's limits.
        public var cache = ResolverCache.Configuration()
        /// The defaults.
        public init() {}
    }

    /// One query on the wire: a UDP socket or a TCP connection of the
    /// caller's, named in actions and inputs.
    public struct QueryID: Hashable, Sendable, CustomStringConvertible {
        /// The resolver's number for the query, never reused.
        public var rawValue: UInt64
        /// A query identifier.
        public init(rawValue: UInt64) { self.rawValue = rawValue }
        public var description: String { "query#\(rawValue)" }
    }

    /// What the caller must do.
    public enum Action: Equatable {
        /// Send `bytes` to `server` from a fresh UDP socket bound to port 0
        /// (the stack picks a random ephemeral port, RFC 6056); datagrams on
        /// it go to `datagramReceived(_:from:query:now:)`.
        case sendUDP([UInt8], to: Endpoint, query: QueryID)
        /// Open a TCP connection to `server` and write `bytes` (already
        /// length-prefixed) once it is up; bytes received go to
        /// `streamReceived`, its end or failure to `streamClosed`.
        case sendTCP([UInt8], to: Endpoint, query: QueryID)
        /// The query's socket or connection is no longer needed: close it.
        case release(QueryID)
        /// The lookup ended; its identifier is spent.
        case complete(LookupID, Result<LookupResult, DNSError>)
    }

    /// Counters.
    public struct Statistics: Hashable, Sendable {
        /// Lookups started (cache hits included).
        public var lookups: UInt64 = 0
        /// Lookups answered from the cache.
        public var cacheHits: UInt64 = 0
        /// Lookups that ended with an answer, NXDOMAIN or NODATA.
        public var answered: UInt64 = 0
        /// Lookups that ended with an error.
        public var failed: UInt64 = 0
        /// Lookups cancelled.
        public var cancelled: UInt64 = 0
        /// UDP queries sent.
        public var udpQueries: UInt64 = 0
        /// TCP queries started.
        public var tcpQueries: UInt64 = 0
        /// Attempts that got no answer in time.
        public var timeouts: UInt64 = 0
        /// Truncated UDP answers (each followed by a TCP query).
        public var truncated: UInt64 = 0
        /// Datagrams from an address or port other than the server asked.
        public var mismatchedSource: UInt64 = 0
        /// Answers whose ID is not the query's.
        public var mismatchedID: UInt64 = 0
        /// Answers whose question is not the query's.
        public var mismatchedQuestion: UInt64 = 0
        /// Answers that did not parse, or were not responses to a QUERY.
        public var malformed: UInt64 = 0
        /// Bytes for a query already finished or released.
        public var unexpected: UInt64 = 0
        /// Answers with an error RCODE (SERVFAIL, REFUSED, …) or a referral.
        public var serverErrors: UInt64 = 0
        /// Queries asked again without EDNS after a FORMERR (RFC 6891 §7).
        public var ednsFallbacks: UInt64 = 0
        /// Queries for a CNAME target the answer did not cover.
        public var restarts: UInt64 = 0
        /// UDP sends, TCP connections or streams that failed under a query.
        public var transportFailures: UInt64 = 0
        /// All zero.
        public init() {}
    }

    enum Transport {
        case udp
        /// Bytes of the length-prefixed answer received so far.
        case tcp(received: [UInt8])
    }

    struct Query {
        var lookup: LookupID
        var server: Endpoint
        var id: UInt16
        var question: Question
        var usedEDNS: Bool
        var transport: Transport
    }

    struct Lookup {
        /// The question asked by the application (the cache key).
        var question: Question
        /// The question being asked now: a CNAME target after a restart.
        var current: Question
        var aliases: [ResourceRecord] = []
        /// Attempts started for `current`.
        var attempt = 0
        var deadline: Instant
        /// Open UDP queries, oldest first; the last is the current attempt.
        var udp: [QueryID] = []
        /// The TCP query, after a truncated answer.
        var tcp: QueryID?
        /// Why the last server that answered did not help, if one did.
        var lastFailure: DNSError?
        /// Servers that answered FORMERR to EDNS (asked without it since).
        var noEDNS: [Endpoint] = []
    }

    /// The settings.
    public let configuration: Configuration
    /// The name servers asked, in order.
    public private(set) var servers: [Endpoint] = []
    /// Counters.
    public private(set) var statistics = Statistics()
    /// The cache.
    public private(set) var cache: ResolverCache
    private let entropy: any EntropySource
    private var lookups: [LookupID: Lookup] = [:]
    private var queries: [QueryID: Query] = [:]
    private var nextLookup: UInt64 = 1
    private var nextQuery: UInt64 = 1

    /// A resolver asking `servers` (the first `maximumServers`), drawing
    /// transaction IDs from `entropy`.
    public init(servers: [Endpoint] = [], entropy: any EntropySource, configuration: Configuration = Configuration()) {
        precondition((1...Self.maximumAttempts).contains(configuration.attempts), "attempts must be in 1...\(Self.maximumAttempts)")
        precondition(configuration.timeout > .zero && configuration.tcpTimeout > .zero, "timeouts must be positive")
        precondition(configuration.maximumLookups > 0 && configuration.maximumCNAMEChain >= 0, "limits must be positive")
        self.configuration = configuration
        self.entropy = entropy
        cache = ResolverCache(configuration: configuration.cache)
        self.servers = Array(servers.prefix(Self.maximumServers))
    }

    /// Lookups in progress.
    public var lookupCount: Int { lookups.count }
    /// Queries open (sockets and connections the caller holds for us).
    public var queryCount: Int { queries.count }

    /// When `timerFired` is due next, if anything waits.
    public var nextDeadline: Instant? {
        var earliest: Instant?
        for lookup in lookups.values { earliest = Instant.earlier(earliest, lookup.deadline) }
        return earliest
    }

    // MARK: Application calls

    /// Replaces the servers (the first `maximumServers`). A different list
    /// empties the cache (other servers may see other data); lookups in
    /// progress use the new list from their next attempt.
    public mutating func setServers(_ new: [Endpoint]) {
        let list = Array(new.prefix(Self.maximumServers))
        guard list != servers else { return }
        servers = list
        cache.removeAll()
    }

    /// Empties the cache.
    public mutating func flushCache() {
        cache.removeAll()
    }

    /// Starts a lookup of `question`. A cached result completes it at once
    /// (a `complete` action among those returned). Throws `noServers`
    /// without servers, `tooManyQueries` at `maximumLookups`.
    public mutating func resolve(_ question: Question, now: Instant) throws(DNSError) -> (id: LookupID, actions: [Action]) {
        let id = LookupID(rawValue: nextLookup)
        if let cached = cache.lookup(question, now: now) {
            nextLookup += 1
            statistics.lookups += 1
            statistics.cacheHits += 1
            statistics.answered += 1
            return (id, [.complete(id, .success(cached))])
        }
        guard !servers.isEmpty else { throw .noServers }
        guard lookups.count < configuration.maximumLookups else { throw .tooManyQueries(limit: configuration.maximumLookups) }
        nextLookup += 1
        statistics.lookups += 1
        lookups[id] = Lookup(question: question, current: question, deadline: now)
        var actions: [Action] = []
        startAttempt(id, now: now, into: &actions)
        return (id, actions)
    }

    /// Abandons a lookup: its queries are released, no `complete` follows.
    public mutating func cancel(_ id: LookupID) -> [Action] {
        guard let lookup = lookups.removeValue(forKey: id) else { return [] }
        statistics.cancelled += 1
        var actions: [Action] = []
        releaseAll(lookup, into: &actions)
        return actions
    }

    // MARK: Network and timer inputs

    /// A datagram arrived on the socket of `query` from `source`.
    public mutating func datagramReceived(_ bytes: Span<UInt8>, from source: Endpoint, query: QueryID, now: Instant) -> [Action] {
        guard let q = queries[query], case .udp = q.transport else {
            statistics.unexpected += 1
            return []
        }
        // RFC 5452 §9.1: accept only from the address and port asked.
        guard source == q.server else {
            statistics.mismatchedSource += 1
            return []
        }
        guard let message = accept(bytes, for: q) else { return [] }
        var actions: [Action] = []
        answered(message, query: query, now: now, into: &actions)
        return actions
    }

    /// Bytes arrived on the TCP connection of `query`.
    public mutating func streamReceived(_ bytes: Span<UInt8>, query: QueryID, now: Instant) -> [Action] {
        guard var q = queries[query], case .tcp(var received) = q.transport else {
            statistics.unexpected += 1
            return []
        }
        var actions: [Action] = []
        // RFC 1035 §4.2.2: a two-byte length, then the message. Only what
        // the prefix announces is kept; anything after it is ignored.
        var i = 0
        while i < bytes.count {
            let wanted = received.count < 2 ? 2 : 2 + Self.announcedLength(received)
            guard received.count < wanted else { break }
            received.append(bytes[i])
            i += 1
            if received.count == 2 && Self.announcedLength(received) < Header.size {
                statistics.malformed += 1
                transportFailed(query, now: now, into: &actions)
                return actions
            }
        }
        guard received.count >= 2, received.count == 2 + Self.announcedLength(received) else {
            q.transport = .tcp(received: received)
            queries[query] = q
            return actions
        }
        guard let message = accept(received.span.extracting(2...), for: q) else {
            // A wrong answer on the server's own connection: it will not
            // get better there.
            transportFailed(query, now: now, into: &actions)
            return actions
        }
        answered(message, query: query, now: now, into: &actions)
        return actions
    }

    /// The length a TCP answer's two-byte prefix announces.
    private static func announcedLength(_ prefix: [UInt8]) -> Int { Int(prefix[0]) << 8 | Int(prefix[1]) }

    /// The TCP connection of `query` ended (closed, reset, refused, timed
    /// out) before a whole answer arrived; ignored once it is released.
    public mutating func streamClosed(query: QueryID, now: Instant) -> [Action] {
        guard queries[query] != nil else { return [] }
        var actions: [Action] = []
        transportFailed(query, now: now, into: &actions)
        return actions
    }

    /// The query could not be sent (no socket, no route, ICMP unreachable
    /// for its datagram): it is released and, if it was the lookup's
    /// current attempt, the next one starts now. `error`, when given, is
    /// what the lookup reports if no later attempt does better.
    public mutating func queryFailed(_ query: QueryID, error: DNSError? = nil, now: Instant) -> [Action] {
        guard let q = queries[query] else { return [] }
        if let error { lookups[q.lookup]?.lastFailure = error }
        var actions: [Action] = []
        transportFailed(query, now: now, into: &actions)
        return actions
    }

    /// Time passed: attempts past their deadline move on to the next
    /// server, or end their lookup with `timedOut`.
    public mutating func timerFired(now: Instant) -> [Action] {
        var due: [LookupID] = []
        for (id, lookup) in lookups where lookup.deadline <= now { due.append(id) }
        // Identifier order keeps runs reproducible (dictionary order is not).
        due.sort { $0.rawValue < $1.rawValue }
        var actions: [Action] = []
        for id in due {
            guard var lookup = lookups[id] else { continue }
            statistics.timeouts += 1
            if let tcp = lookup.tcp {
                lookup.tcp = nil
                lookups[id] = lookup
                release(tcp, into: &actions)
            }
            startAttempt(id, now: now, into: &actions)
        }
        return actions
    }

    // MARK: Queries

    /// Sends the lookup's next attempt, or ends it when none are left.
    private mutating func startAttempt(_ id: LookupID, now: Instant, into actions: inout [Action]) {
        guard var lookup = lookups[id] else { return }
        let total = configuration.attempts * servers.count
        guard lookup.attempt < total else {
            let error = lookup.lastFailure ?? (servers.isEmpty ? .noServers : .timedOut)
            finish(id, .failure(error), now: now, into: &actions)
            return
        }
        let server = servers[lookup.attempt % servers.count]
        let round = lookup.attempt / servers.count
        lookup.attempt += 1
        lookup.deadline = now + configuration.timeout * (Int64(1) << Int64(round))
        lookups[id] = lookup
        sendUDP(id, to: server, now: now, into: &actions)
    }

    /// Sends `lookup`'s current question to `server` in a new UDP query.
    private mutating func sendUDP(_ id: LookupID, to server: Endpoint, now: Instant, into actions: inout [Action]) {
        guard var lookup = lookups[id] else { return }
        let useEDNS = configuration.payloadSize != nil && !lookup.noEDNS.contains(server)
        let q = Query(lookup: id, server: server, id: randomID(), question: lookup.current, usedEDNS: useEDNS, transport: .udp)
        let bytes: [UInt8]
        do { bytes = try encode(q) } catch {
            finish(id, .failure(error), now: now, into: &actions)
            return
        }
        let query = newQueryID()
        queries[query] = q
        lookup.udp.append(query)
        var stale: QueryID?
        if lookup.udp.count > Self.maximumQueriesPerLookup { stale = lookup.udp.removeFirst() }
        lookups[id] = lookup
        if let stale { release(stale, into: &actions) }
        statistics.udpQueries += 1
        actions.append(.sendUDP(bytes, to: server, query: query))
    }

    /// RFC 7766 §5: a truncated answer is asked again over TCP, of the same
    /// server. The lookup's UDP queries are released.
    private mutating func switchToTCP(_ id: LookupID, server: Endpoint, now: Instant, into actions: inout [Action]) {
        guard var lookup = lookups[id] else { return }
        let udp = lookup.udp
        lookup.udp = []
        let q = Query(lookup: id, server: server, id: randomID(), question: lookup.current,
                      usedEDNS: configuration.payloadSize != nil && !lookup.noEDNS.contains(server), transport: .tcp(received: []))
        let message: [UInt8]
        do { message = try encode(q) } catch {
            lookups[id] = lookup
            for u in udp { release(u, into: &actions) }
            finish(id, .failure(error), now: now, into: &actions)
            return
        }
        let query = newQueryID()
        queries[query] = q
        lookup.tcp = query
        lookup.deadline = now + configuration.tcpTimeout
        lookups[id] = lookup
        for u in udp { release(u, into: &actions) }
        var framed: [UInt8] = []
        framed.reserveCapacity(message.count + 2)
        framed.append(UInt8(truncatingIfNeeded: message.count >> 8))
        framed.append(UInt8(truncatingIfNeeded: message.count))
        framed.append(contentsOf: message)
        statistics.tcpQueries += 1
        actions.append(.sendTCP(framed, to: server, query: query))
    }

    /// The query message: RD set (RFC 1034 §5.3.1: a stub relies on a
    /// recursive server), one question, an OPT record unless turned off.
    private func encode(_ q: Query) throws(DNSError) -> [UInt8] {
        var header = Header(id: q.id)
        header.recursionDesired = true
        var message = Message(header: header)
        message.questions = [q.question]
        if q.usedEDNS, let size = configuration.payloadSize { message.edns = EDNS(payloadSize: size) }
        return try message.encode()
    }

    private func randomID() -> UInt16 {
        // RFC 5452 §4.3: unpredictable IDs, from the entropy source.
        UInt16(truncatingIfNeeded: entropy.nextUInt64())
    }

    private mutating func newQueryID() -> QueryID {
        defer { nextQuery += 1 }
        return QueryID(rawValue: nextQuery)
    }

    /// Checks that `bytes` answer `q`: a response to a QUERY with its ID
    /// and question. Counts and returns nil otherwise.
    private mutating func accept(_ bytes: Span<UInt8>, for q: Query) -> Message? {
        let header: Header
        do { header = try Header(parsing: bytes) } catch {
            statistics.malformed += 1
            return nil
        }
        guard header.id == q.id else {
            statistics.mismatchedID += 1
            return nil
        }
        guard header.isResponse, header.opcode == .query else {
            statistics.malformed += 1
            return nil
        }
        let message: Message
        do { message = try Message(parsing: bytes) } catch {
            statistics.malformed += 1
            return nil
        }
        // RFC 5452 §9.1: the question must be the one asked. Some servers
        // leave it out of FORMERR/NOTIMP/REFUSED answers; those can only
        // make us move on, so they are taken without it.
        let code = message.responseCode
        let questionless = message.questions.isEmpty && code != .noError && code != .nameError
        guard questionless || (message.questions.count == 1 && message.questions[0] == q.question) else {
            statistics.mismatchedQuestion += 1
            return nil
        }
        return message
    }

    /// An accepted answer to `query`.
    private mutating func answered(_ message: Message, query: QueryID, now: Instant, into actions: inout [Action]) {
        guard let q = queries[query], let lookup = lookups[q.lookup] else { return }
        let id = q.lookup
        let isCurrent = lookup.tcp == query || lookup.udp.last == query
        let code = message.responseCode
        if message.header.isTruncated, case .udp = q.transport {
            statistics.truncated += 1
            switchToTCP(id, server: q.server, now: now, into: &actions)
            return
        }
        if code == .formatError, q.usedEDNS, message.edns == nil {
            // RFC 6891 §7: a server that does not know EDNS answers FORMERR
            // without an OPT; ask it again without one.
            statistics.ednsFallbacks += 1
            lookups[id]?.noEDNS.append(q.server)
            release(query, into: &actions)
            if case .tcp = q.transport {
                lookups[id]?.tcp = nil
                switchToTCP(id, server: q.server, now: now, into: &actions)
            } else {
                sendUDP(id, to: q.server, now: now, into: &actions)
            }
            return
        }
        guard code == .noError || code == .nameError else {
            serverFailed(id, query: query, isCurrent: isCurrent, error: .serverFailure(rcode: code.rawValue), now: now, into: &actions)
            return
        }
        var aliases = lookup.aliases
        let outcome = Self.interpret(message, question: lookup.current, original: lookup.question.name,
                                     aliases: &aliases, configuration: configuration)
        switch outcome {
        case .result(let result):
            finish(id, .success(result), now: now, into: &actions)
        case .failure(let error):
            finish(id, .failure(error), now: now, into: &actions)
        case .referral(let zone):
            serverFailed(id, query: query, isCurrent: isCurrent, error: .referral(zone: zone), now: now, into: &actions)
        case .restart(let target):
            // The answer stopped at a CNAME whose target it did not cover
            // (an authoritative server for the alias only): ask for the
            // target, from the first server again.
            statistics.restarts += 1
            guard var lookup = lookups.removeValue(forKey: id) else { return }
            releaseAll(lookup, into: &actions)
            lookup.udp = []
            lookup.tcp = nil
            lookup.aliases = aliases
            lookup.current = Question(name: target, type: lookup.question.type, class: lookup.question.class)
            lookup.attempt = 0
            lookup.lastFailure = nil
            lookups[id] = lookup
            startAttempt(id, now: now, into: &actions)
        }
    }

    /// A server answered but could not help: remember why, and move on
    /// now if this was the attempt in progress.
    private mutating func serverFailed(_ id: LookupID, query: QueryID, isCurrent: Bool, error: DNSError,
                                       now: Instant, into actions: inout [Action]) {
        statistics.serverErrors += 1
        lookups[id]?.lastFailure = error
        forget(query, of: id)
        release(query, into: &actions)
        if isCurrent { startAttempt(id, now: now, into: &actions) }
    }

    /// The transport under `query` failed: release it, and move on now if
    /// it was the attempt in progress.
    private mutating func transportFailed(_ query: QueryID, now: Instant, into actions: inout [Action]) {
        guard let q = queries[query] else { return }
        statistics.transportFailures += 1
        let isCurrent = lookups[q.lookup].map { $0.tcp == query || $0.udp.last == query } ?? false
        forget(query, of: q.lookup)
        release(query, into: &actions)
        if isCurrent { startAttempt(q.lookup, now: now, into: &actions) }
    }

    /// Removes `query` from its lookup's lists (not from `queries`).
    private mutating func forget(_ query: QueryID, of id: LookupID) {
        guard var lookup = lookups[id] else { return }
        if lookup.tcp == query { lookup.tcp = nil }
        lookup.udp.removeAll { $0 == query }
        lookups[id] = lookup
    }

    private mutating func release(_ query: QueryID, into actions: inout [Action]) {
        guard queries.removeValue(forKey: query) != nil else { return }
        actions.append(.release(query))
    }

    private mutating func releaseAll(_ lookup: Lookup, into actions: inout [Action]) {
        for u in lookup.udp { release(u, into: &actions) }
        if let t = lookup.tcp { release(t, into: &actions) }
    }

    /// Ends a lookup: releases its queries, caches a result, reports.
    private mutating func finish(_ id: LookupID, _ result: Result<LookupResult, DNSError>, now: Instant,
                                 into actions: inout [Action]) {
        guard let lookup = lookups.removeValue(forKey: id) else { return }
        releaseAll(lookup, into: &actions)
        switch result {
        case .success(let r):
            statistics.answered += 1
            cache.insert(r, for: lookup.question, now: now)
        case .failure:
            statistics.failed += 1
        }
        actions.append(.complete(id, result))
    }
}
