import CMiragePlatform
import Glibc
import MirageDevices
import Synchronization

/// The Linux run loop: one thread, epoll for descriptor readiness, a
/// `TimerQueue` for timers, an eventfd to be woken from other threads. It is
/// the model of the bare-metal loop (poll virtio queues, timers, `hlt`), and
/// it is also a Swift `TaskExecutor` and `SerialExecutor`, so async code
/// (`Task(executorPreference: loop)`, `withTaskExecutorPreference(loop)`,
/// an actor whose `unownedExecutor` is the loop's) runs on the loop's thread
/// and never hops threads between a device event and the code it resumes.
///
/// ## Threads
/// The *loop thread* is the thread that created the loop until `run` is
/// called, then the thread that called `run` (it stays so after `run`
/// returns, until another `run`). `schedule`, `cancel`, `enqueue`,
/// `register`, `setInterest`, `unregister` and the flush-handler calls are
/// for the loop thread only (a precondition checks it). `execute`, `stop`,
/// `inLoopThread`, `now` and `wallTime` may be called from any thread.
/// Several loops may run at once, one per thread: a loop keeps no global
/// state (the only process-wide datum is the C shim's cached "this kernel
/// has epoll_pwait2" flag).
///
/// ## One iteration
/// `run` repeats: check `stop()` and the `run(until:)` deadline (return if
/// either says so) → wait in `epoll_wait` for up to
/// `maximumEventsPerWait` events, no longer than the next timer deadline (or
/// not at all when work is already queued) → then, in this order:
/// 1. **Timers**: every timer due at the clock reading is taken from the
///    queue and fired in deadline order (equal deadlines in scheduling
///    order). Timers that these callbacks schedule at or before the current
///    time fire next, in a further round of the same step, after all of the
///    round that was already due (at most `maximumTimerRoundsPerIteration`
///    rounds; the rest fire in the next iteration without waiting).
/// 2. **Descriptor events** of the batch, in the order epoll returned them.
/// 3. **Enqueued bodies** (`enqueue`), first in first out, including those
///    enqueued while this step runs (at most
///    `maximumEnqueuedBodiesPerDrain` per step; the rest run in the next
///    iteration without waiting).
/// 4. **Cross-thread work**: `execute` bodies and executor jobs queued so
///    far, in arrival order; bodies `enqueue`d by each of them run right
///    after it (as in step 3). Work submitted while this step runs waits for
///    the next iteration, which then does not block.
/// 5. **Flush**: if any of steps 1–4 ran anything, every flush handler is
///    called once, in registration order, as the last thing before the loop
///    waits again: output produced anywhere in the iteration (received
///    frames, timers, async code resumed by them) is written together.
///    Cross-thread work deliberately runs before the flush: a task resumed
///    by this iteration's events writes in step 4, and its output must go
///    out before the loop sleeps, not after the next wakeup.
///
/// ## Calls made from inside a callback
/// Every callback (timer, descriptor, enqueued body, executed body, job,
/// flush) runs on the loop thread and may call any loop method; nothing is
/// ever called re-entrantly:
/// - `schedule` adds the timer to the queue; one already due fires in the
///   timers step of this iteration (a later round) if that step is still
///   running, otherwise in the next iteration.
/// - `cancel` takes effect at once: a cancelled timer never fires, even one
///   due in the round being fired.
/// - `enqueue` runs the body after the current callback returns, in step 3
///   of this iteration (or right after the current body in steps 3–4; from
///   a flush handler, in the next iteration, without waiting).
/// - `register` takes effect for the next wait; `unregister` at once: the
///   descriptor gets no further event of the current batch, even when epoll
///   reported one (a descriptor number closed and registered again during
///   the batch is told apart by a generation count, so the new handler never
///   receives the old descriptor's event). `setInterest` also applies to the
///   rest of the batch: an event for an interest just removed is not delivered.
/// - `stop` makes `run` return after the current iteration completes.
/// - `run` from inside a callback is a precondition failure.
///
/// ## Readiness mapping (level-triggered epoll)
/// EPOLLERR → `fdError` (SO_ERROR for sockets, EIO otherwise) and nothing
/// else for that event — except with EPOLLIN and read interest, when
/// `fdReadable` comes first (data before a reset is delivered) and
/// `fdError` only if the error is still pending after it; EPOLLIN, or EPOLLHUP/EPOLLRDHUP with read interest
/// → `fdReadable` (the reader drains the rest and sees end of file);
/// EPOLLOUT with write interest → `fdWritable`; EPOLLHUP without read
/// interest → `fdError(EPIPE)`. Readiness repeats every iteration while it
/// holds, so a handler clears it (reads, drops the interest, unregisters).
///
/// ## Timer precision
/// The wait uses `epoll_pwait2` with a nanosecond timeout, falling back to
/// `epoll_wait` with the timeout rounded *up* to whole milliseconds on
/// kernels without it. A timer never fires before its deadline; it fires as
/// soon after it as the scheduler lets the thread run.
///
/// ## Ownership
/// The loop holds registered descriptor handlers, timer handlers and flush
/// handlers strongly until they are unregistered, fire or are cancelled, or
/// removed. Work still queued when the loop is released is dropped (a task
/// waiting on this loop as its executor is then never resumed).
public final class EventLoop: TimerScheduler, MonotonicClock, WallClock, @unchecked Sendable {
    /// Events taken from epoll per wait.
    public static let maximumEventsPerWait = 64
    /// Enqueued bodies run by one drain (step 3) before the loop moves on,
    /// so a body that keeps enqueuing cannot starve descriptors and timers.
    public static let maximumEnqueuedBodiesPerDrain = 65_536
    /// Rounds of the timers step per iteration (see the type's doc).
    public static let maximumTimerRoundsPerIteration = 16

    // Shared with other threads: written once, atomics, or under the lock.
    private let epollFD: Int32
    private let wakeFD: Int32
    private let ownerThread: Atomic<UInt>
    private let running = Atomic<Bool>(false)
    private let stopRequested = Atomic<Bool>(false)
    private let inbox = Mutex(Inbox())
    private let events: UnsafeMutablePointer<mirage_epoll_event>

    // Loop-thread state.
    private var timers = TimerQueue()
    private var firingTimers: Set<TimerID> = []
    private var spareTimerBatch: [(id: TimerID, handler: any TimerHandler)] = []
    private var registrations: [Int32: Registration] = [:]
    private var nextGeneration: UInt32 = 1
    private var pendingBodies: [() -> Void] = []
    private var pendingHead = 0
    private var spareInboxWork: [RemoteWork] = []
    private var flushHandlers: [any FlushHandler] = []

    private struct Registration {
        var handler: any FDHandler
        var interest: FDInterest
        /// Never 0 (0 marks the loop's own eventfd in epoll tokens).
        var generation: UInt32
    }

    private enum RemoteWork: Sendable {
        case body(@Sendable () -> Void)
        case job(UnownedJob)
    }

    private struct Inbox {
        var work: [RemoteWork] = []
        /// An eventfd wakeup was sent and the loop has not yet taken `work`.
        var wakeupPending = false
    }

    /// A loop with no descriptors and no timers, owned by the calling
    /// thread until `run`. Fails when the epoll instance or the eventfd
    /// cannot be created (descriptor limits).
    public init() throws(DeviceError) {
        let epoll = mirage_epoll_create()
        guard epoll >= 0 else { throw FileDescriptor.error("epoll_create1", epoll) }
        let wake = mirage_eventfd()
        guard wake >= 0 else {
            FileDescriptor.close(epoll)
            throw FileDescriptor.error("eventfd", wake)
        }
        let status = mirage_epoll_add(epoll, wake, mirage_epollin, Self.token(fd: wake, generation: 0))
        guard status == 0 else {
            FileDescriptor.close(wake)
            FileDescriptor.close(epoll)
            throw FileDescriptor.error("epoll_ctl", status)
        }
        epollFD = epoll
        wakeFD = wake
        ownerThread = Atomic(pthread_self())
        events = .allocate(capacity: Self.maximumEventsPerWait)
        events.initialize(repeating: mirage_epoll_event(), count: Self.maximumEventsPerWait)
    }

    deinit {
        FileDescriptor.close(wakeFD)
        FileDescriptor.close(epollFD)
        events.deallocate()
    }

    // MARK: Threads

    /// Whether the caller is the loop thread (see the type's doc).
    public var inLoopThread: Bool {
        ownerThread.load(ordering: .acquiring) == pthread_self()
    }

    private func assertLoopThread(_ function: StaticString = #function) {
        precondition(inLoopThread, "EventLoop.\(function) must be called on the loop's thread")
    }

    // MARK: Clocks

    /// `CLOCK_MONOTONIC`.
    public func now() -> Instant { SystemClock.monotonicNow() }

    /// `CLOCK_REALTIME`.
    public func wallTime() -> WallTime { SystemClock.realtimeNow() }

    // MARK: Timers

    /// Schedules `handler.timerFired` at `deadline` (loop thread only).
    public func schedule(at deadline: Instant, _ handler: any TimerHandler) -> TimerID {
        assertLoopThread()
        return timers.schedule(at: deadline, handler)
    }

    /// Cancels a timer (loop thread only); it never fires, even when it is
    /// due in the round being fired. A no-op for a timer that already fired.
    public func cancel(_ id: TimerID) {
        assertLoopThread()
        if !timers.cancel(id) { firingTimers.remove(id) }
    }

    /// Number of timers pending.
    public var pendingTimerCount: Int {
        assertLoopThread()
        return timers.count
    }

    // MARK: Queued work

    /// Runs `body` on the loop thread after the current callback returns,
    /// first in first out, before the loop waits again (loop thread only).
    public func enqueue(_ body: @escaping () -> Void) {
        assertLoopThread()
        pendingBodies.append(body)
    }

    /// Runs `body` on the loop thread in the cross-thread step of the next
    /// iteration, waking the loop if it is waiting. Any thread.
    public func execute(_ body: @escaping @Sendable () -> Void) {
        submit(.body(body))
    }

    private func submit(_ work: RemoteWork) {
        // The loop thread itself is not waiting: it looks at the queue
        // before its next wait (`waitTimeout`), so only other threads
        // signal. The owner is read under the lock because `run` changes it
        // under the lock: either this append comes first and the new owner's
        // first look sees it, or it comes later and sees the new owner.
        let me = pthread_self()
        let signal = inbox.withLock { state -> Bool in
            state.work.append(work)
            let onLoopThread = ownerThread.load(ordering: .relaxed) == me
            guard !onLoopThread, !state.wakeupPending else { return false }
            state.wakeupPending = true
            return true
        }
        if signal { wake() }
    }

    private func wake() {
        // Cannot fail for a valid eventfd except by saturating the counter,
        // which means a wakeup is pending anyway.
        _ = mirage_eventfd_signal(wakeFD)
    }

    // MARK: Running

    /// Runs the loop on the calling thread, which becomes the loop thread,
    /// until `stop()`. Throws when `epoll_wait` fails (not for EINTR).
    public func run() throws(DeviceError) {
        try runLoop(limit: nil)
    }

    /// Runs the loop until `deadline` or `stop()`, whichever comes first.
    /// Returns at once when `deadline` has passed.
    public func run(until deadline: Instant) throws(DeviceError) {
        try runLoop(limit: deadline)
    }

    /// Makes the running `run` return after its current iteration, or the
    /// next `run` return at once when none is running. Any thread.
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        if !inLoopThread { wake() }
    }

    private func runLoop(limit: Instant?) throws(DeviceError) {
        let (started, _) = running.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing)
        precondition(started, "EventLoop.run called while the loop is already running")
        let me = pthread_self()
        inbox.withLock { _ in ownerThread.store(me, ordering: .releasing) }
        defer { running.store(false, ordering: .releasing) }
        while true {
            if stopRequested.exchange(false, ordering: .acquiringAndReleasing) { return }
            let start = now()
            if let limit, start >= limit { return }
            let count = mirage_epoll_wait(epollFD, events, Int32(Self.maximumEventsPerWait), waitTimeout(now: start, limit: limit))
            if count < 0 {
                if -count == EINTR { continue }
                throw FileDescriptor.error("epoll_wait", count)
            }
            runIteration(eventCount: Int(count))
        }
    }

    /// Nanoseconds to wait: 0 when work is queued, -1 for no limit.
    private func waitTimeout(now: Instant, limit: Instant?) -> Int64 {
        if pendingHead < pendingBodies.count { return 0 }
        if inbox.withLock({ !$0.work.isEmpty }) { return 0 }
        var wakeAt = timers.nextDeadline()
        if let limit { wakeAt = min(wakeAt ?? limit, limit) }
        guard let wakeAt else { return -1 }
        guard wakeAt > now else { return 0 }
        return (wakeAt - now).nanoseconds
    }

    private func runIteration(eventCount: Int) {
        var didWork = fireDueTimers()
        if dispatchEvents(count: eventCount) { didWork = true }
        if runPendingBodies() { didWork = true }
        if runInbox() { didWork = true }
        if didWork { runFlushHandlers() }
    }

    private func fireDueTimers() -> Bool {
        var fired = false
        for _ in 0..<Self.maximumTimerRoundsPerIteration {
            let now = self.now()
            var batch = spareTimerBatch
            spareTimerBatch = []
            while let due = timers.popExpired(now: now) {
                batch.append(due)
                firingTimers.insert(due.id)
            }
            let empty = batch.isEmpty
            for due in batch where firingTimers.remove(due.id) != nil {
                fired = true
                due.handler.timerFired(due.id, now: now)
            }
            batch.removeAll(keepingCapacity: true)
            spareTimerBatch = batch
            if empty { break }
        }
        return fired
    }

    private func dispatchEvents(count: Int) -> Bool {
        var dispatched = false
        for index in 0..<count {
            let event = events[index]
            let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: event.data))
            let generation = UInt32(truncatingIfNeeded: event.data >> 32)
            if generation == 0 {
                // The wakeup eventfd: reset it; the inbox is read in step 4.
                _ = mirage_eventfd_drain(wakeFD)
                continue
            }
            guard let registration = current(fd, generation) else { continue }
            dispatched = true
            deliver(event.events, fd: fd, generation: generation, registration)
        }
        return dispatched
    }

    /// The registration of `fd` if it is still the one of `generation`.
    private func current(_ fd: Int32, _ generation: UInt32) -> Registration? {
        guard let registration = registrations[fd], registration.generation == generation else { return nil }
        return registration
    }

    private func deliver(_ bits: UInt32, fd: Int32, generation: UInt32, _ registration: Registration) {
        if bits & mirage_epollerr != 0 {
            // Bytes that arrived before a reset are still there to read
            // (Linux returns them before ECONNRESET): a reader takes them
            // first and meets the error itself; only if it is still
            // registered and the error still pending is fdError reported.
            if bits & mirage_epollin != 0, registration.interest.contains(.read) {
                registration.handler.fdReadable(fd)
                guard let now = current(fd, generation) else { return }
                let code = mirage_socket_error(fd)
                if code > 0 { now.handler.fdError(fd, errno: code) }
                return
            }
            let code = mirage_socket_error(fd)
            registration.handler.fdError(fd, errno: code > 0 ? code : EIO)
            return
        }
        let hangup = bits & (mirage_epollhup | mirage_epollrdhup) != 0
        if bits & mirage_epollin != 0 || hangup, registration.interest.contains(.read) {
            registration.handler.fdReadable(fd)
        }
        if bits & mirage_epollout != 0, let now = current(fd, generation), now.interest.contains(.write) {
            now.handler.fdWritable(fd)
        }
        if bits & mirage_epollhup != 0, let now = current(fd, generation), !now.interest.contains(.read) {
            now.handler.fdError(fd, errno: EPIPE)
        }
    }

    private func runPendingBodies() -> Bool {
        guard pendingHead < pendingBodies.count else { return false }
        var ran = 0
        while pendingHead < pendingBodies.count, ran < Self.maximumEnqueuedBodiesPerDrain {
            let body = pendingBodies[pendingHead]
            pendingHead += 1
            ran += 1
            body()
        }
        if pendingHead == pendingBodies.count {
            pendingBodies.removeAll(keepingCapacity: true)
            pendingHead = 0
        } else {
            pendingBodies.removeFirst(pendingHead)
            pendingHead = 0
        }
        return true
    }

    private func runInbox() -> Bool {
        var batch = spareInboxWork
        spareInboxWork = []
        inbox.withLock { state in
            swap(&state.work, &batch)
            state.wakeupPending = false
        }
        let ran = !batch.isEmpty
        for work in batch {
            switch work {
            case .body(let body):
                body()
            case .job(let job):
                job.runSynchronously(isolatedTo: asUnownedSerialExecutor(), taskExecutor: asUnownedTaskExecutor())
            }
            _ = runPendingBodies()
        }
        batch.removeAll(keepingCapacity: true)
        spareInboxWork = batch
        return ran
    }

    // MARK: Descriptors (module-internal: devices and stacks in Platform)

    private static func token(fd: Int32, generation: UInt32) -> UInt64 {
        UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd))
    }

    private static func epollBits(_ interest: FDInterest) -> UInt32 {
        var bits: UInt32 = 0
        if interest.contains(.read) { bits |= mirage_epollin | mirage_epollrdhup }
        if interest.contains(.write) { bits |= mirage_epollout }
        return bits
    }

    /// Watches `fd` for `interest`, sending its events to `handler` from the
    /// next wait on. The caller keeps owning `fd` and must `unregister`
    /// before closing it. Loop thread only.
    func register(_ fd: Int32, interest: FDInterest, handler: any FDHandler) throws(DeviceError) {
        assertLoopThread()
        guard fd >= 0 else { throw .invalidArgument("file descriptor \(fd) is negative") }
        guard registrations[fd] == nil else { throw .invalidArgument("file descriptor \(fd) is already registered") }
        let generation = nextGeneration
        nextGeneration = nextGeneration == .max ? 1 : nextGeneration + 1
        let status = mirage_epoll_add(epollFD, fd, Self.epollBits(interest), Self.token(fd: fd, generation: generation))
        guard status == 0 else { throw FileDescriptor.error("epoll_ctl", status) }
        registrations[fd] = Registration(handler: handler, interest: interest, generation: generation)
    }

    /// Changes what `fd` waits for; applies to the rest of the current batch
    /// too. Loop thread only.
    func setInterest(_ fd: Int32, _ interest: FDInterest) throws(DeviceError) {
        assertLoopThread()
        guard var registration = registrations[fd] else { throw .invalidArgument("file descriptor \(fd) is not registered") }
        guard registration.interest != interest else { return }
        let status = mirage_epoll_modify(epollFD, fd, Self.epollBits(interest), Self.token(fd: fd, generation: registration.generation))
        guard status == 0 else { throw FileDescriptor.error("epoll_ctl", status) }
        registration.interest = interest
        registrations[fd] = registration
    }

    /// Stops watching `fd` at once (no further event of the current batch)
    /// and releases its handler. A no-op for a descriptor not registered.
    /// Loop thread only.
    func unregister(_ fd: Int32) {
        assertLoopThread()
        guard registrations.removeValue(forKey: fd) != nil else { return }
        // Fails only when `fd` was already closed, which removed it from
        // the epoll set anyway.
        _ = mirage_epoll_remove(epollFD, fd)
    }

    /// Number of registered descriptors (diagnostics and tests).
    var registeredDescriptorCount: Int {
        assertLoopThread()
        return registrations.count
    }

    // MARK: Flush handlers

    /// Adds a handler called at the end of every iteration that did work.
    /// Adding one already present does nothing. Loop thread only.
    func addFlushHandler(_ handler: any FlushHandler) {
        assertLoopThread()
        guard !flushHandlers.contains(where: { $0 === handler }) else { return }
        flushHandlers.append(handler)
    }

    /// Removes a flush handler; when called during a flush, a handler not
    /// yet called in it is not called. Loop thread only.
    func removeFlushHandler(_ handler: any FlushHandler) {
        assertLoopThread()
        flushHandlers.removeAll { $0 === handler }
    }

    private func runFlushHandlers() {
        guard !flushHandlers.isEmpty else { return }
        let snapshot = flushHandlers
        for handler in snapshot where flushHandlers.contains(where: { $0 === handler }) {
            handler.flush()
        }
    }
}

// MARK: - Swift concurrency

extension EventLoop: TaskExecutor, SerialExecutor {
    /// Runs `job` on the loop thread, in the cross-thread step (see the type's
    /// doc). Any thread.
    public func enqueue(_ job: consuming ExecutorJob) {
        submit(.job(UnownedJob(job)))
    }

    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Traps unless called on the loop thread.
    public func checkIsolated() {
        precondition(inLoopThread, "not on the EventLoop's thread")
    }

    public func isIsolatingCurrentContext() -> Bool? {
        inLoopThread
    }
}
