import MirageDevices
import Testing

final class TimerLog: TimerHandler {
    var fired: [(TimerID, Instant)] = []
    var onFire: ((TimerID) -> Void)?
    func timerFired(_ id: TimerID, now: Instant) {
        fired.append((id, now))
        onFire?(id)
    }
}

@Suite struct TimerTests {
    @Test func timersFireInDeadlineOrderAndTiesInSchedulingOrder() {
        let clock = ManualClock()
        let s = ManualTimerScheduler(clock: clock)
        let log = TimerLog()
        let t30 = s.schedule(at: .zero + .milliseconds(30), log)
        let t10 = s.schedule(at: .zero + .milliseconds(10), log)
        let t20a = s.schedule(at: .zero + .milliseconds(20), log)
        let t20b = s.schedule(at: .zero + .milliseconds(20), log)
        s.run(until: .zero + .milliseconds(100))
        #expect(log.fired.map(\.0) == [t10, t20a, t20b, t30])
        #expect(log.fired.map(\.1.nanoseconds) == [10_000_000, 20_000_000, 20_000_000, 30_000_000])
    }

    @Test func nothingFiresBeforeItsDeadline() {
        let clock = ManualClock()
        let s = ManualTimerScheduler(clock: clock)
        let log = TimerLog()
        _ = s.schedule(at: .zero + .milliseconds(10), log)
        clock.advance(by: .nanoseconds(9_999_999))
        #expect(s.runDue() == 0)
        clock.advance(by: .nanoseconds(1))
        #expect(s.runDue() == 1)
        #expect(s.runDue() == 0, "a timer fires once")
    }

    @Test func cancelledTimersNeverFireEvenFromInsideACallback() {
        let clock = ManualClock()
        let s = ManualTimerScheduler(clock: clock)
        let log = TimerLog()
        let a = s.schedule(at: .zero + .milliseconds(5), log)
        let b = s.schedule(at: .zero + .milliseconds(5), log)
        let c = s.schedule(at: .zero + .milliseconds(6), log)
        s.cancel(c)
        log.onFire = { id in if id == a { s.cancel(b) } }
        s.run(until: .zero + .seconds(1))
        #expect(log.fired.map(\.0) == [a])
        #expect(s.pendingCount == 0)
    }

    @Test func aPastTimerScheduledFromACallbackFiresAfterTheDueOnes() {
        let clock = ManualClock()
        let s = ManualTimerScheduler(clock: clock)
        let log = TimerLog()
        let a = s.schedule(at: .zero + .milliseconds(5), log)
        let b = s.schedule(at: .zero + .milliseconds(5), log)
        var c: TimerID?
        var depth = 0
        log.onFire = { id in
            depth += 1
            defer { depth -= 1 }
            #expect(depth == 1, "never re-entrant")
            if id == a { c = s.schedule(at: .zero, log) }
        }
        clock.advance(to: .zero + .milliseconds(5))
        #expect(s.runDue() == 3)
        #expect(log.fired.map(\.0) == [a, b, c!])
    }

    @Test func queueCompactsCancelledEntries() {
        var q = TimerQueue()
        let log = TimerLog()
        var ids: [TimerID] = []
        for i in 0..<1000 { ids.append(q.schedule(at: Instant(nanoseconds: UInt64(1000 - i)), log)) }
        for id in ids.dropLast() { q.cancel(id) }
        #expect(q.count == 1)
        #expect(q.nextDeadline() == Instant(nanoseconds: 1))
        #expect(q.popExpired(now: Instant(nanoseconds: 0)) == nil)
        #expect(q.popExpired(now: Instant(nanoseconds: 1))?.id == ids.last)
        #expect(q.nextDeadline() == nil)
    }

    @Test func instantArithmeticSaturates() {
        #expect(Instant(nanoseconds: .max - 1) + .seconds(1) == Instant(nanoseconds: .max))
        #expect(Instant(nanoseconds: 5) + .nanoseconds(-10) == .zero)
        #expect(Instant(nanoseconds: 5) - Instant(nanoseconds: 8) == .nanoseconds(-3))
        #expect(Interval.seconds(.max) == Interval(nanoseconds: .max))
        #expect(Interval.milliseconds(-3).nanoseconds == -3_000_000)
    }

    @Test func manualClockWallTimeFollowsTheMonotonicReading() {
        let clock = ManualClock(wallOrigin: WallTime(seconds: 100, nanoseconds: 900_000_000))
        clock.advance(by: .milliseconds(1_200))
        #expect(clock.wallTime() == WallTime(seconds: 102, nanoseconds: 100_000_000))
    }
}
