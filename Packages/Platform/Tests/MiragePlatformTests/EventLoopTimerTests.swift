import MirageDevices
import Testing

@testable import MiragePlatform

@Suite("EventLoop timers", .serialized)
struct EventLoopTimerTests {
    @Test("timers fire in deadline order, never early and at most the tolerance late")
    func timersFireInOrderAndOnTime() throws {
        let loop = try EventLoop()
        let start = loop.now()
        // Out of order on purpose, with two equal deadlines (30 ms) that
        // must fire in scheduling order.
        let offsets: [Int64] = [40, 10, 30, 20, 30, 50]
        var fired: [(index: Int, deadline: Instant, reported: Instant, observed: Instant)] = []
        var ids: [TimerID] = []
        for (index, offset) in offsets.enumerated() {
            let deadline = start + .milliseconds(offset)
            ids.append(loop.schedule(at: deadline, TimerAction { _, now in
                fired.append((index, deadline, now, loop.now()))
                if fired.count == offsets.count { loop.stop() }
            }))
        }
        #expect(Set(ids).count == offsets.count)
        #expect(loop.pendingTimerCount == offsets.count)

        try loop.run(until: start + loopTimeLimit)

        #expect(fired.map(\.index) == [1, 3, 2, 4, 0, 5])
        for event in fired {
            #expect(event.reported >= event.deadline, "timer \(event.index) reported firing before its deadline")
            #expect(event.observed >= event.deadline, "timer \(event.index) fired before its deadline")
            #expect(event.observed - event.deadline <= latenessTolerance, "timer \(event.index) fired \(event.observed - event.deadline) late")
        }
        #expect(loop.pendingTimerCount == 0)
        #expect(loop.now() - start < .seconds(2))
    }

    @Test("a cancelled timer never fires")
    func cancelledTimerNeverFires() throws {
        let loop = try EventLoop()
        let start = loop.now()
        var fired: [String] = []
        _ = loop.schedule(at: start + .milliseconds(5), TimerAction { _, _ in fired.append("a") })
        let b = loop.schedule(at: start + .milliseconds(10), TimerAction { _, _ in fired.append("b") })
        let c = loop.schedule(at: start + .milliseconds(15), TimerAction { _, _ in fired.append("c") })
        _ = loop.schedule(at: start + .milliseconds(40), TimerAction { _, _ in
            fired.append("end")
            loop.stop()
        })
        loop.cancel(b)
        loop.cancel(b)  // twice: a no-op
        // Cancelled from inside an earlier timer's callback.
        _ = loop.schedule(at: start + .milliseconds(8), TimerAction { _, _ in loop.cancel(c) })

        try loop.run(until: start + loopTimeLimit)

        #expect(fired == ["a", "end"])
        #expect(loop.pendingTimerCount == 0)
    }

    @Test("calls from inside a timer callback: cancel, schedule in the past, enqueue")
    func callbackSchedulesAndCancels() throws {
        let loop = try EventLoop()
        let deadline = loop.now() + .milliseconds(20)
        var order: [String] = []
        var insideA = false
        var b = TimerID(rawValue: 0)
        let a = TimerAction { _, now in
            insideA = true
            defer { insideA = false }
            order.append("A")
            // B is due at the same instant and comes later in this round.
            loop.cancel(b)
            // C is in the past: it fires in this iteration, after the round
            // that is due (D), and never inside A.
            _ = loop.schedule(at: .zero, TimerAction { _, _ in
                order.append(insideA ? "C inside A" : "C")
            })
            loop.enqueue { order.append("X") }
            #expect(now >= deadline)
        }
        _ = loop.schedule(at: deadline, a)
        b = loop.schedule(at: deadline, TimerAction { _, _ in order.append("B") })
        _ = loop.schedule(at: deadline, TimerAction { _, _ in order.append("D") })
        // The flush handler marks the end of an iteration that did work.
        let flush = FlushAction {
            order.append("flush")
            if order.contains("X") { loop.stop() }
        }
        loop.addFlushHandler(flush)

        try loop.run(until: loop.now() + loopTimeLimit)
        loop.removeFlushHandler(flush)  // it holds the loop

        #expect(order == ["A", "D", "C", "X", "flush"])
    }

    @Test("a timer that keeps rescheduling itself in the past does not starve the loop")
    func pastReschedulingIsBounded() throws {
        let loop = try EventLoop()
        var fires = 0
        var flushes = 0
        final class Again: TimerHandler {
            let body: () -> Void
            init(_ body: @escaping () -> Void) { self.body = body }
            func timerFired(_ id: TimerID, now: Instant) { body() }
        }
        var again: Again?
        again = Again {
            fires += 1
            if fires < 100, let again { _ = loop.schedule(at: .zero, again) } else { loop.stop() }
        }
        _ = loop.schedule(at: .zero, again!)
        loop.addFlushHandler(FlushAction { flushes += 1 })

        try loop.run(until: loop.now() + loopTimeLimit)
        again = nil

        #expect(fires == 100)
        // At most `maximumTimerRoundsPerIteration` rounds per iteration, so
        // the 100 firings took several iterations.
        #expect(flushes >= 100 / EventLoop.maximumTimerRoundsPerIteration)
    }
}
