/// The receive side of a TCP connection's data (RFC 9293 §3.10.7.4,
/// RFC 2018): in-order bytes waiting for the application, and out-of-order
/// segments held within the window until the gap before them fills, with
/// the SACK blocks that describe them. Bounded by `capacity` in all: the
/// window we advertise is what is left, so a peer that respects it can
/// never overflow us, and bytes outside it are trimmed away.
public struct TCPReceiveBuffer {
    /// Unread in-order bytes.
    private var ring: ByteRing
    /// Out-of-order data: disjoint, sorted, non-adjacent runs after `next`.
    private var outOfOrder: [(start: SequenceNumber, bytes: [UInt8])] = []
    /// Starts of runs, most recently changed first, for SACK (RFC 2018 §4).
    private var recent: [SequenceNumber] = []
    /// The next sequence number expected in order (RCV.NXT).
    public private(set) var next: SequenceNumber

    /// Most out-of-order runs held; a segment that would make more is
    /// dropped (the sender retransmits it).
    public static let maximumRuns = 32

    /// A buffer expecting `next` first, holding at most `capacity` bytes.
    public init(next: SequenceNumber, capacity: Int) {
        ring = ByteRing(capacity: capacity)
        self.next = next
    }

    /// The most bytes held.
    public var capacity: Int { ring.capacity }
    /// In-order bytes the application has not read.
    public var readable: Int { ring.count }
    /// Bytes held out of order.
    public var outOfOrderBytes: Int { outOfOrder.reduce(0) { $0 + $1.bytes.count } }
    /// Whether any data is held out of order (SACK blocks to report).
    public var holdsOutOfOrderData: Bool { !outOfOrder.isEmpty }
    /// The receive window: room after the unread bytes (RCV.WND).
    public var window: Int { ring.freeSpace }

    /// Takes a segment's data starting at `sequence`. Bytes before `next`
    /// (duplicates) and past the window are trimmed; returns how many new
    /// bytes became readable in order.
    @discardableResult
    public mutating func insert(_ data: Span<UInt8>, at sequence: SequenceNumber) -> Int {
        var first = sequence
        var lo = 0
        var hi = data.count
        // Trim what was already received in order.
        let behind = next - first
        if behind > 0 {
            guard behind < hi else { return 0 }
            lo += behind
            first = next
        }
        // Trim what lies beyond the window.
        let end = next + window
        let beyond = (first + (hi - lo)) - end
        if beyond > 0 { hi -= beyond }
        guard hi > lo else { return 0 }
        if first == next {
            let before = ring.count
            ring.append(data.extracting(lo..<hi))
            next = next + (hi - lo)
            absorbOutOfOrder()
            return ring.count - before
        }
        storeOutOfOrder(data.extracting(lo..<hi), at: first)
        return 0
    }

    /// Moves out-of-order runs that now continue the in-order data.
    private mutating func absorbOutOfOrder() {
        while let firstRun = outOfOrder.first, !(next < firstRun.start) {
            outOfOrder.removeFirst()
            recent.removeAll { $0 == firstRun.start }
            let skip = next - firstRun.start
            if skip < firstRun.bytes.count {
                let fresh = firstRun.bytes.count - skip
                ring.append(firstRun.bytes.span.extracting(skip..<firstRun.bytes.count))
                next = next + fresh
            }
        }
    }

    /// Merges `data` at `start` into the out-of-order runs. Bytes already
    /// held win over new copies of them (a retransmission carries the same
    /// bytes; a different one is a lie we do not let overwrite data).
    private mutating func storeOutOfOrder(_ data: Span<UInt8>, at start: SequenceNumber) {
        let end = start + data.count
        // The runs the new data overlaps or touches: a contiguous range.
        var first = -1
        var last = -1
        for i in outOfOrder.indices {
            let run = outOfOrder[i]
            if run.start + run.bytes.count < start { continue }
            if end < run.start { break }
            if first < 0 { first = i }
            last = i
        }
        guard first >= 0 else {
            guard outOfOrder.count < Self.maximumRuns else { return }
            var at = outOfOrder.count
            while at > 0 && start < outOfOrder[at - 1].start { at -= 1 }
            outOfOrder.insert((start, Array(copying: data)), at: at)
            noteRecent(start, absorbed: [])
            return
        }
        let firstStart = outOfOrder[first].start
        var absorbed: [SequenceNumber] = []
        if !(start < firstStart) && first == last {
            // The common case: the segment extends one run at its end.
            let runEnd = firstStart + outOfOrder[first].bytes.count
            let fresh = end - runEnd
            if fresh > 0 { outOfOrder[first].bytes.append(span: data.extracting((data.count - fresh)...)) }
            noteRecent(firstStart, absorbed: [])
            return
        }
        // General case: one run from the earliest start to the latest end,
        // new bytes filling only the gaps between the held runs.
        let mergedStart = start < firstStart ? start : firstStart
        var merged: [UInt8] = []
        var cursor = mergedStart
        for i in first...last {
            let run = outOfOrder[i]
            if cursor < run.start { merged.append(span: data.extracting((cursor - start)..<(run.start - start))) }
            merged.append(contentsOf: run.bytes)
            cursor = run.start + run.bytes.count
            absorbed.append(run.start)
        }
        if cursor < end { merged.append(span: data.extracting((cursor - start)...)) }
        outOfOrder.replaceSubrange(first...last, with: [(mergedStart, merged)])
        noteRecent(mergedStart, absorbed: absorbed)
    }

    /// Separate out-of-order runs held (at most `maximumRuns`).
    public var outOfOrderRunCount: Int { outOfOrder.count }

    /// RFC 2018 §4: the block holding the newest segment is reported first.
    private mutating func noteRecent(_ start: SequenceNumber, absorbed: [SequenceNumber]) {
        recent.removeAll { $0 == start || absorbed.contains($0) }
        recent.insert(start, at: 0)
        if recent.count > Self.maximumRuns { recent.removeLast(recent.count - Self.maximumRuns) }
    }

    /// SACK blocks for the next ACK (RFC 2018 §4): the run holding the most
    /// recently received segment first, then the other recent runs, at most
    /// `maximum`.
    public func sackBlocks(maximum: Int) -> SACKBlockList {
        var blocks = SACKBlockList()
        for start in recent where blocks.count < min(maximum, SACKBlockList.capacity) {
            if let run = outOfOrder.first(where: { $0.start == start }) {
                blocks.append(SACKBlock(left: run.start, right: run.start + run.bytes.count))
            }
        }
        return blocks
    }

    /// Moves `next` past sequence space that carries no data (the peer's FIN).
    mutating func advance(by n: Int) {
        next = next + n
    }

    /// Copies up to `maximum` readable bytes (at most what `buffer` holds)
    /// to the start of `buffer` and forgets them; returns how many.
    public mutating func read(maximum: Int, into buffer: inout MutableSpan<UInt8>) -> Int {
        let n = min(maximum, ring.count, buffer.count)
        ring.copy(from: 0, length: n, into: &buffer, at: 0)
        ring.discard(n)
        return n
    }

    /// Calls `body` with up to `maximum` readable bytes (in one or two
    /// spans, in order) and then forgets them: the application has read them
    /// and the window reopens by as much.
    public mutating func read(maximum: Int, _ body: (Span<UInt8>) -> Void) -> Int {
        let n = min(maximum, ring.count)
        ring.withBytes(from: 0, length: n, body)
        ring.discard(n)
        return n
    }
}
