import MirageDevices

/// The stub resolver's cache: whole lookup results keyed by the question
/// asked (name compared case-insensitively, type, class), positive ones
/// for their TTL, negative ones for their RFC 2308 §5 TTL.
///
/// Bounded: at most `maximumEntries`; a full cache drops an expired entry
/// if there is one, else the least recently used (counted in `evictions`).
/// Time is the `now` passed in; nothing here reads a clock.
public struct ResolverCache {
    /// Limits.
    public struct Configuration: Hashable, Sendable {
        /// The most results kept.
        public var maximumEntries: Int = 1024
        /// The longest a positive result is kept, whatever its TTL says
        /// (RFC 8767 §4 suggests capping at 7 days; a stub has less
        /// reason to keep answers long).
        public var maximumTTL: UInt32 = 86_400
        /// The longest a negative result is kept (RFC 2308 §5: "values of
        /// one to three hours have been found to work well").
        public var maximumNegativeTTL: UInt32 = 10_800
        /// The defaults.
        public init() {}
    }

    /// Counters.
    public struct Statistics: Hashable, Sendable {
        /// Lookups answered from the cache.
        public var hits: UInt64 = 0
        /// Lookups the cache could not answer (absent or expired).
        public var misses: UInt64 = 0
        /// Results stored.
        public var insertions: UInt64 = 0
        /// Entries dropped to make room (expired or least recently used).
        public var evictions: UInt64 = 0
        /// Entries found expired when looked up.
        public var expirations: UInt64 = 0
        /// All zero.
        public init() {}
    }

    struct Entry {
        var result: LookupResult
        var stored: Instant
        var expires: Instant
        var lastUse: UInt64
    }

    /// The limits.
    public let configuration: Configuration
    /// Counters.
    public private(set) var statistics = Statistics()
    private var entries: [Question: Entry] = [:]
    /// Increases on every use: the recency order for eviction.
    private var useCounter: UInt64 = 0

    /// An empty cache.
    public init(configuration: Configuration = Configuration()) {
        precondition(configuration.maximumEntries >= 0, "maximumEntries must not be negative")
        self.configuration = configuration
    }

    /// Entries held (some may have expired but not been looked at yet).
    public var count: Int { entries.count }

    /// The result cached for `question` at `now`, with TTLs reduced by the
    /// time it has been held; nil when absent or expired (an expired entry
    /// is dropped).
    public mutating func lookup(_ question: Question, now: Instant) -> LookupResult? {
        guard var entry = entries[question] else {
            statistics.misses += 1
            return nil
        }
        guard now < entry.expires else {
            entries[question] = nil
            statistics.expirations += 1
            statistics.misses += 1
            return nil
        }
        useCounter += 1
        entry.lastUse = useCounter
        entries[question] = entry
        statistics.hits += 1
        return Self.aged(entry.result, held: Self.seconds(now - entry.stored), left: Self.seconds(entry.expires - now))
    }

    /// Stores `result` for `question` for its TTL (capped: `maximumTTL`,
    /// `maximumNegativeTTL`); a TTL of 0 is not stored (RFC 1035 §3.2.1:
    /// zero means use only for the transaction in progress).
    public mutating func insert(_ result: LookupResult, for question: Question, now: Instant) {
        let cap: UInt32
        switch result {
        case .answer: cap = configuration.maximumTTL
        case .nameError, .noData: cap = configuration.maximumNegativeTTL
        }
        let ttl = min(result.ttl, cap)
        guard ttl > 0, configuration.maximumEntries > 0 else { return }
        if entries[question] == nil && entries.count >= configuration.maximumEntries { evictOne(now: now) }
        useCounter += 1
        entries[question] = Entry(result: result, stored: now, expires: now + .seconds(Int64(ttl)), lastUse: useCounter)
        statistics.insertions += 1
    }

    /// Forgets everything (the servers changed: their answers may differ).
    public mutating func removeAll() {
        entries.removeAll()
    }

    /// Drops one entry: an expired one if any, else the least recently
    /// used. Linear in the entries, only when the cache is full.
    private mutating func evictOne(now: Instant) {
        var victim: Question?
        var oldest = UInt64.max
        for (question, entry) in entries {
            if entry.expires <= now {
                victim = question
                break
            }
            if entry.lastUse < oldest {
                oldest = entry.lastUse
                victim = question
            }
        }
        if let victim {
            entries[victim] = nil
            statistics.evictions += 1
        }
    }

    /// Whole seconds in `interval` (rounded down; 0 when negative).
    private static func seconds(_ interval: Interval) -> UInt32 {
        let s = interval.nanoseconds / 1_000_000_000
        return s <= 0 ? 0 : UInt32(clamping: s)
    }

    /// `result` with every TTL lowered by `held` seconds and the overall
    /// TTL set to the `left` seconds of the entry.
    private static func aged(_ result: LookupResult, held: UInt32, left: UInt32) -> LookupResult {
        func age(_ records: [ResourceRecord]) -> [ResourceRecord] {
            var out = records
            for i in out.indices { out[i].ttl = out[i].ttl > held ? out[i].ttl - held : 0 }
            return out
        }
        switch result {
        case .answer(var a):
            a.records = age(a.records)
            a.aliases = age(a.aliases)
            a.ttl = left
            return .answer(a)
        case .nameError(var n):
            n.aliases = age(n.aliases)
            if let soa = n.soa { n.soa = age([soa]).first }
            n.ttl = left
            return .nameError(n)
        case .noData(var n):
            n.aliases = age(n.aliases)
            if let soa = n.soa { n.soa = age([soa]).first }
            n.ttl = left
            return .noData(n)
        }
    }
}
