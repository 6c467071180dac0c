import MirageDevices

/// Reassembles IPv4 fragments (RFC 791 §3.2, RFC 815's hole bookkeeping
/// simplified to a sorted list of received ranges), bounded in memory and
/// time.
///
/// Overlaps (RFC 791 lets a receiver choose; we follow what RFC 5722
/// demands for IPv6 where data differs): a fragment that exactly repeats
/// one already held is dropped alone; a fragment whose bytes overlap held
/// bytes with different content drops the whole datagram; overlapping
/// bytes that agree are accepted.
public struct IPv4Reassembler {
    /// Limits.
    public struct Configuration: Hashable, Sendable {
        /// Bytes held across all datagrams being reassembled (Linux's
        /// ipfrag_high_thresh is 4 MiB).
        public var memoryLimit: Int = 1 << 20
        /// Datagrams being reassembled at once.
        public var maximumDatagrams: Int = 64
        /// How long an incomplete datagram is kept (RFC 1122 §3.3.2
        /// recommends 60–120 s; Linux uses 30 s).
        public var timeout: Interval = .seconds(30)
        /// Disjoint received pieces one datagram may consist of: bounds the
        /// bookkeeping and the per-fragment work (8-byte fragments would
        /// otherwise make 8,192 pieces). Linux keeps 64 fragments per
        /// datagram in its defaults for IPv6 reassembly queues.
        public var maximumPieces: Int = 64

        /// The defaults.
        public init() {}
    }

    /// What a fragment led to.
    public enum Outcome: Equatable {
        /// Stored; the datagram is not complete yet.
        case incomplete
        /// The datagram is complete: its payload, all fragments joined.
        case complete(payload: [UInt8])
        /// The fragment repeated one already held and was dropped alone.
        case duplicate
        /// The datagram was dropped: conflicting overlap, a length past
        /// 65,535, or inconsistent end.
        case datagramDropped
        /// The fragment was dropped: memory or datagram limit reached.
        case overLimit
    }

    /// Counters.
    public struct Statistics: Hashable, Sendable {
        /// Datagrams completed.
        public var reassembled: UInt64 = 0
        /// Exact duplicate fragments dropped.
        public var duplicates: UInt64 = 0
        /// Datagrams dropped for conflicting data or bad lengths.
        public var malformed: UInt64 = 0
        /// Fragments refused for the memory or datagram limit.
        public var overLimit: UInt64 = 0
        /// Datagrams that timed out incomplete.
        public var timedOut: UInt64 = 0
        /// All zero.
        public init() {}
    }

    struct Key: Hashable {
        var source: IPv4Address
        var destination: IPv4Address
        var proto: UInt8
        var identification: UInt16
    }

    struct Datagram {
        var data: [UInt8] = []
        /// Received byte ranges, sorted and disjoint (adjacent ones merged).
        var ranges: [Range<Int>] = []
        /// Payload length, known once the last fragment (MF clear) came.
        var totalLength: Int? = nil
        var deadline: Instant
    }

    /// The configuration in force.
    public let configuration: Configuration
    /// Counters.
    public private(set) var statistics = Statistics()
    private var datagrams: [Key: Datagram] = [:]
    private var heldBytes = 0

    /// An empty reassembler.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Datagrams in progress.
    public var inProgress: Int { datagrams.count }
    /// Bytes held.
    public var memoryInUse: Int { heldBytes }

    /// Adds a fragment: `packet` must be a fragment (`isFragment`).
    public mutating func add(_ packet: borrowing IPv4Packet, now: Instant) -> Outcome {
        let key = Key(source: packet.source, destination: packet.destination, proto: packet.protocol,
                      identification: packet.identification)
        let payload = packet.payload
        let start = packet.fragmentOffset
        let end = start + payload.count
        let last = !packet.moreFragments
        // RFC 791: every fragment but the last carries a multiple of 8 bytes.
        guard end <= IPv4Packet.maximumLength - IPv4Packet.minimumHeaderLength,
              last || payload.count % 8 == 0, payload.count > 0 || last
        else {
            dropDatagram(key)
            statistics.malformed += 1
            return .datagramDropped
        }

        var datagram: Datagram
        if let existing = datagrams.removeValue(forKey: key) {
            datagram = existing
        } else {
            guard datagrams.count < configuration.maximumDatagrams else {
                statistics.overLimit += 1
                return .overLimit
            }
            datagram = Datagram(deadline: now + configuration.timeout)
        }
        let oldCapacity = datagram.data.count

        // The end of the datagram must be consistent.
        if let total = datagram.totalLength {
            if (last && end != total) || end > total {
                heldBytes -= oldCapacity
                statistics.malformed += 1
                return .datagramDropped
            }
        } else if last {
            if let maxEnd = datagram.ranges.last?.upperBound, maxEnd > end {
                heldBytes -= oldCapacity
                statistics.malformed += 1
                return .datagramDropped
            }
            datagram.totalLength = end
        }

        // Compare against bytes already held.
        var covered = 0
        for r in datagram.ranges {
            let lo = max(r.lowerBound, start), hi = min(r.upperBound, end)
            guard lo < hi else { continue }
            for i in lo..<hi where datagram.data[i] != payload[i - start] {
                heldBytes -= oldCapacity
                statistics.malformed += 1
                return .datagramDropped
            }
            covered += hi - lo
        }
        if covered == end - start && end > start {
            // Everything this fragment carries is already here, identically.
            datagrams[key] = datagram
            statistics.duplicates += 1
            return .duplicate
        }

        // Grow the buffer and respect the memory bound.
        if end > datagram.data.count {
            let growth = end - datagram.data.count
            guard heldBytes + growth <= configuration.memoryLimit else {
                datagrams[key] = datagram
                statistics.overLimit += 1
                return .overLimit
            }
            datagram.data.append(contentsOf: repeatElement(0, count: growth))
            heldBytes += growth
        }
        for i in 0..<payload.count { datagram.data[start + i] = payload[i] }
        datagram.ranges = Self.insert(start..<end, into: datagram.ranges)
        guard datagram.ranges.count <= configuration.maximumPieces else {
            heldBytes -= datagram.data.count
            statistics.overLimit += 1
            return .datagramDropped
        }

        if let total = datagram.totalLength, datagram.ranges.count == 1, datagram.ranges[0] == 0..<total {
            heldBytes -= datagram.data.count
            statistics.reassembled += 1
            return .complete(payload: datagram.data)
        }
        datagrams[key] = datagram
        return .incomplete
    }

    /// Drops datagrams whose time ran out; returns how many.
    @discardableResult
    public mutating func expire(now: Instant) -> Int {
        let old = datagrams.filter { $0.value.deadline <= now }
        for (key, _) in old { dropDatagram(key) }
        statistics.timedOut += UInt64(old.count)
        return old.count
    }

    /// The earliest timeout, if anything is held.
    public func nextDeadline() -> Instant? {
        datagrams.values.map { $0.deadline }.min()
    }

    private mutating func dropDatagram(_ key: Key) {
        if let d = datagrams.removeValue(forKey: key) { heldBytes -= d.data.count }
    }

    static func insert(_ new: Range<Int>, into ranges: [Range<Int>]) -> [Range<Int>] {
        guard !new.isEmpty else { return ranges }
        var out: [Range<Int>] = []
        var merged = new
        var placed = false
        for r in ranges {
            if r.upperBound < merged.lowerBound {
                out.append(r)
            } else if merged.upperBound < r.lowerBound {
                if !placed { out.append(merged); placed = true }
                out.append(r)
            } else {
                merged = min(r.lowerBound, merged.lowerBound)..<max(r.upperBound, merged.upperBound)
            }
        }
        if !placed { out.append(merged) }
        return out
    }
}
