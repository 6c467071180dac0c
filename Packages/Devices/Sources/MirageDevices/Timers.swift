/// Identifies a scheduled timer so it can be cancelled.
public struct TimerID: Hashable, Sendable {
    /// The scheduler's number for the timer; never reused by one scheduler.
    public var rawValue: UInt64
    /// A timer identifier.
    public init(rawValue: UInt64) { self.rawValue = rawValue }
}

/// Receives timer expiries. A handler, not a closure: Embedded Swift has no
/// `weak`, so the scheduler holds the handler and the handler holds only IDs.
public protocol TimerHandler: AnyObject {
    /// The timer `id` reached its deadline; `now` is the scheduler's reading
    /// of the monotonic clock when it fired (at or after the deadline).
    func timerFired(_ id: TimerID, now: Instant)
}

/// Schedules one-shot timers on a monotonic clock.
///
/// Contract for every implementation: a timer fires at most once, never before
/// its deadline; timers with the same deadline fire in the order they were
/// scheduled; a cancelled timer never fires, even when it is cancelled from
/// inside another callback of the same batch; a deadline already past counts as now, so
/// such a timer fires after the timers already due (in the same pass or the
/// next), never re-entrantly inside the call that scheduled it.
public protocol TimerScheduler: AnyObject {
    /// Schedules `handler.timerFired` at `deadline`.
    func schedule(at deadline: Instant, _ handler: any TimerHandler) -> TimerID
    /// Cancels a pending timer. Cancelling a timer that already fired or was
    /// cancelled is a no-op.
    func cancel(_ id: TimerID)
}
