import MirageDevices

/// The ARP table of one interface (RFC 826), as a sans-I/O state machine:
/// it is told of lookups, received ARP messages and the time, and answers
/// with what to send. It keeps, per address being resolved, a bounded queue
/// of IPv4 packets waiting for the answer (copied: the originals are
/// borrowed), retries the request, and gives up after the last retry.
public struct ARPCache {
    /// Limits and timings.
    public struct Configuration: Hashable, Sendable {
        /// How long a resolved entry is trusted (Linux's default reachable
        /// time is 30 s, randomised; we refresh before expiry).
        public var entryLifetime: Interval = .seconds(60)
        /// Before expiry, a used entry is refreshed by a unicast request
        /// this long in advance.
        public var refreshBefore: Interval = .seconds(5)
        /// Requests sent for an address before giving up (RFC 1122
        /// §2.3.2.1 asks for a limit; Linux's mcast_solicit is 3).
        public var requestAttempts: Int = 3
        /// Time between requests.
        public var retryInterval: Interval = .seconds(1)
        /// Packets queued per unresolved address; more are dropped and
        /// counted (RFC 1122 §2.3.2.2 recommends queueing at least one).
        public var pendingPacketsPerAddress: Int = 32
        /// Bytes queued across all unresolved addresses.
        public var pendingBytesLimit: Int = 1 << 20
        /// Entries of any kind; the oldest resolved entry makes room.
        public var maximumEntries: Int = 1024

        /// The defaults.
        public init() {}
    }

    /// What the stack must do after a call.
    public enum Action: Equatable {
        /// Broadcast a request for this address.
        case sendRequest(IPv4Address)
        /// Unicast a request to refresh an entry still believed valid.
        case sendRefresh(IPv4Address, MACAddress)
        /// Send these queued IPv4 packets to the now-resolved address.
        case release([[UInt8]], to: MACAddress)
        /// Resolution failed; these many queued packets were dropped
        /// (ICMP host unreachable is the stack's to send).
        case failed(IPv4Address, droppedPackets: Int)
    }

    /// Counters.
    public struct Statistics: Hashable, Sendable {
        /// Requests sent (first and retries).
        public var requestsSent: UInt64 = 0
        /// Resolutions that ran out of attempts.
        public var failures: UInt64 = 0
        /// Packets dropped: queue full, byte limit, or resolution failed.
        public var droppedPackets: UInt64 = 0
        /// Entries evicted to make room.
        public var evictions: UInt64 = 0
        /// All zero.
        public init() {}
    }

    enum Entry {
        /// Known address, trusted until `expires`; `refreshSent` once a
        /// refresh request went out.
        case resolved(MACAddress, expires: Instant, refreshSent: Bool)
        /// Being resolved: `attemptsLeft` more requests after the one in
        /// flight, the next at `nextAttempt`; `queue` waits for the answer.
        case resolving(attemptsLeft: Int, nextAttempt: Instant, queue: [[UInt8]])
    }

    /// The configuration in force.
    public let configuration: Configuration
    /// Counters.
    public private(set) var statistics = Statistics()
    private var entries: [IPv4Address: Entry] = [:]
    private var pendingBytes = 0

    /// An empty table.
    public init(configuration: Configuration = Configuration()) {
        precondition(configuration.requestAttempts >= 1 && configuration.pendingPacketsPerAddress >= 1
                     && configuration.maximumEntries >= 1, "invalid ARP configuration")
        self.configuration = configuration
    }

    /// Number of entries, resolved or not.
    public var count: Int { entries.count }

    /// The MAC address for `address` if resolved and not expired. A lookup
    /// close to expiry asks for a refresh in `actions`.
    public mutating func lookup(_ address: IPv4Address, now: Instant, actions: inout [Action]) -> MACAddress? {
        guard case .resolved(let mac, let expires, let refreshSent)? = entries[address] else { return nil }
        if expires <= now {
            entries[address] = nil
            return nil
        }
        if !refreshSent && expires - now <= configuration.refreshBefore {
            entries[address] = .resolved(mac, expires: expires, refreshSent: true)
            statistics.requestsSent += 1
            actions.append(.sendRefresh(address, mac))
        }
        return mac
    }

    /// The resolved MAC address without side effects (for tests and tools).
    public func peek(_ address: IPv4Address) -> MACAddress? {
        if case .resolved(let mac, _, _)? = entries[address] { return mac }
        return nil
    }

    /// Queues `packet` (a whole IPv4 packet) until `address` resolves,
    /// starting resolution if needed. Returns false when the packet was
    /// dropped for a full queue.
    @discardableResult
    public mutating func enqueue(_ packet: [UInt8], for address: IPv4Address, now: Instant, actions: inout [Action]) -> Bool {
        switch entries[address] {
        case .resolving(let left, let next, var queue)?:
            guard queue.count < configuration.pendingPacketsPerAddress,
                  pendingBytes + packet.count <= configuration.pendingBytesLimit else {
                statistics.droppedPackets += 1
                return false
            }
            entries[address] = nil  // keep the array uniquely referenced while appending
            queue.append(packet)
            pendingBytes += packet.count
            entries[address] = .resolving(attemptsLeft: left, nextAttempt: next, queue: queue)
            return true
        case .resolved?, nil:
            guard pendingBytes + packet.count <= configuration.pendingBytesLimit else {
                statistics.droppedPackets += 1
                return false
            }
            makeRoom(now: now)
            entries[address] = .resolving(attemptsLeft: configuration.requestAttempts - 1,
                                          nextAttempt: now + configuration.retryInterval, queue: [packet])
            pendingBytes += packet.count
            statistics.requestsSent += 1
            actions.append(.sendRequest(address))
            return true
        }
    }

    /// Learns from a received ARP message that `sender` is at `mac`
    /// (RFC 826's merge rule: update an existing entry always; create one
    /// only when the message is for us — `create`).
    public mutating func learn(_ sender: IPv4Address, is mac: MACAddress, create: Bool, now: Instant, actions: inout [Action]) {
        guard sender != .any, !mac.isMulticast else { return }
        let expires = now + configuration.entryLifetime
        switch entries[sender] {
        case .resolving(_, _, let queue)?:
            for p in queue { pendingBytes -= p.count }
            entries[sender] = .resolved(mac, expires: expires, refreshSent: false)
            if !queue.isEmpty { actions.append(.release(queue, to: mac)) }
        case .resolved?:
            entries[sender] = .resolved(mac, expires: expires, refreshSent: false)
        case nil:
            guard create else { return }
            makeRoom(now: now)
            entries[sender] = .resolved(mac, expires: expires, refreshSent: false)
        }
    }

    /// Forgets an entry (an address change, say), dropping its queue.
    public mutating func remove(_ address: IPv4Address) {
        if case .resolving(_, _, let queue)? = entries[address] {
            for p in queue { pendingBytes -= p.count }
            statistics.droppedPackets += UInt64(queue.count)
        }
        entries[address] = nil
    }

    /// Retries due requests, fails exhausted ones and drops expired
    /// entries.
    public mutating func timerFired(now: Instant, actions: inout [Action]) {
        var failedAddresses: [(IPv4Address, Int)] = []
        var expired: [IPv4Address] = []
        for (address, entry) in entries {
            switch entry {
            case .resolved(_, let expires, _):
                if expires <= now { expired.append(address) }
            case .resolving(let left, let next, let queue):
                guard next <= now else { continue }
                if left > 0 {
                    entries[address] = .resolving(attemptsLeft: left - 1, nextAttempt: now + configuration.retryInterval, queue: queue)
                    statistics.requestsSent += 1
                    actions.append(.sendRequest(address))
                } else {
                    failedAddresses.append((address, queue.count))
                }
            }
        }
        for a in expired { entries[a] = nil }
        for (address, dropped) in failedAddresses.sorted(by: { $0.0 < $1.0 }) {
            remove(address)
            statistics.failures += 1
            actions.append(.failed(address, droppedPackets: dropped))
        }
    }

    /// When `timerFired` next has work: the earliest retry or expiry.
    public func nextDeadline() -> Instant? {
        var earliest: Instant? = nil
        for entry in entries.values {
            let t: Instant
            switch entry {
            case .resolved(_, let expires, _): t = expires
            case .resolving(_, let next, _): t = next
            }
            if let e = earliest, e <= t { continue }
            earliest = t
        }
        return earliest
    }

    private mutating func makeRoom(now: Instant) {
        guard entries.count >= configuration.maximumEntries else { return }
        // Evict the resolved entry closest to expiry; never a pending one
        // while a resolved one exists.
        var victim: IPv4Address? = nil
        var victimExpiry = Instant(nanoseconds: .max)
        for (address, entry) in entries {
            if case .resolved(_, let expires, _) = entry, expires < victimExpiry {
                victim = address
                victimExpiry = expires
            }
        }
        if victim == nil { victim = entries.keys.min() }
        if let v = victim {
            remove(v)
            statistics.evictions += 1
        }
    }
}
