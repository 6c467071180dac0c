/// The pending timers of a scheduler: a binary min-heap ordered by deadline
/// and then by scheduling order, with O(1) cancellation (a cancelled entry
/// stays in the heap and is skipped when it surfaces).
///
/// Shared by every `TimerScheduler` (the Linux run loop, the bare-metal loop,
/// `ManualTimerScheduler`) so they all keep the same ordering contract.
public struct TimerQueue {
    struct Entry {
        var deadline: Instant
        var id: TimerID
        var handler: any TimerHandler
    }

    private var heap: [Entry] = []
    private var live: Set<TimerID> = []
    private var nextID: UInt64 = 1

    /// An empty queue.
    public init() {}

    /// Number of timers scheduled and neither fired nor cancelled.
    public var count: Int { live.count }

    /// Adds a timer and returns its identifier. Identifiers increase, so
    /// equal deadlines fire in scheduling order. A deadline before `now` is
    /// taken as `now`, so a timer scheduled late (from inside a callback,
    /// say) fires after the timers already due rather than ahead of them.
    public mutating func schedule(at deadline: Instant, now: Instant, _ handler: any TimerHandler) -> TimerID {
        schedule(at: max(deadline, now), handler)
    }

    /// Adds a timer at exactly `deadline` and returns its identifier.
    /// Identifiers increase, so equal deadlines fire in scheduling order.
    public mutating func schedule(at deadline: Instant, _ handler: any TimerHandler) -> TimerID {
        let id = TimerID(rawValue: nextID)
        nextID &+= 1
        live.insert(id)
        heap.append(Entry(deadline: deadline, id: id, handler: handler))
        siftUp(heap.count - 1)
        return id
    }

    /// Cancels `id`; returns whether it was pending.
    @discardableResult
    public mutating func cancel(_ id: TimerID) -> Bool {
        live.remove(id) != nil
    }

    /// The earliest pending deadline, if any.
    public mutating func nextDeadline() -> Instant? {
        dropCancelledTop()
        return heap.first?.deadline
    }

    /// Removes and returns the earliest timer whose deadline is at or before
    /// `now`, or nil when none is due. Callers loop until nil; a timer
    /// scheduled meanwhile with `schedule(at:now:_:)` and a past deadline is
    /// returned in the same loop, after those already due.
    public mutating func popExpired(now: Instant) -> (id: TimerID, handler: any TimerHandler)? {
        dropCancelledTop()
        guard let top = heap.first, top.deadline <= now else { return nil }
        removeTop()
        live.remove(top.id)
        return (top.id, top.handler)
    }

    private mutating func dropCancelledTop() {
        while let top = heap.first, !live.contains(top.id) { removeTop() }
        // Cancelled entries deeper in the heap would otherwise pin their
        // handlers; compact when they outnumber live ones.
        if heap.count > 64 && heap.count > 2 * live.count { compact() }
    }

    private mutating func compact() {
        heap.removeAll { !live.contains($0.id) }
        var i = heap.count / 2
        while i > 0 { i -= 1; siftDown(i) }
    }

    private static func before(_ a: Entry, _ b: Entry) -> Bool {
        a.deadline != b.deadline ? a.deadline < b.deadline : a.id.rawValue < b.id.rawValue
    }

    private mutating func removeTop() {
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
    }

    private mutating func siftUp(_ index: Int) {
        var child = index
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.before(heap[child], heap[parent]) else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ index: Int) {
        var parent = index
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            var smallest = left
            if left + 1 < heap.count && Self.before(heap[left + 1], heap[left]) { smallest = left + 1 }
            guard Self.before(heap[smallest], heap[parent]) else { return }
            heap.swapAt(smallest, parent)
            parent = smallest
        }
    }
}

/// A `TimerScheduler` driven by a `ManualClock`: tests advance the clock and
/// call `runDue()`; nothing happens behind their back.
public final class ManualTimerScheduler: TimerScheduler {
    /// The clock whose reading decides what is due.
    public let clock: ManualClock
    private var queue = TimerQueue()

    /// A scheduler reading `clock`.
    public init(clock: ManualClock) { self.clock = clock }

    public func schedule(at deadline: Instant, _ handler: any TimerHandler) -> TimerID {
        queue.schedule(at: deadline, now: clock.now(), handler)
    }

    public func cancel(_ id: TimerID) { queue.cancel(id) }

    /// The earliest pending deadline.
    public func nextDeadline() -> Instant? { queue.nextDeadline() }

    /// Number of pending timers.
    public var pendingCount: Int { queue.count }

    /// Fires every timer due at the clock's current reading, in deadline
    /// order; returns how many fired.
    @discardableResult
    public func runDue() -> Int {
        var fired = 0
        while let (id, handler) = queue.popExpired(now: clock.now()) {
            handler.timerFired(id, now: clock.now())
            fired += 1
        }
        return fired
    }

    /// Advances the clock deadline by deadline up to `limit`, firing timers
    /// as it goes; returns how many fired.
    @discardableResult
    public func run(until limit: Instant) -> Int {
        var fired = 0
        while let next = queue.nextDeadline(), next <= limit {
            if next > clock.now() { clock.advance(to: next) }
            fired += runDue()
        }
        if limit > clock.now() { clock.advance(to: limit) }
        return fired
    }
}
