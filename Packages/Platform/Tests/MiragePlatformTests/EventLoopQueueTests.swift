import Glibc
import MirageDevices
import Testing

@testable import MiragePlatform

@Suite("EventLoop queues and threads", .serialized)
struct EventLoopQueueTests {
    @Test("enqueued bodies run after the callback returns, first in first out, before the next wait")
    func enqueueOrdering() throws {
        let loop = try EventLoop()
        var order: [String] = []
        // Enqueued before run (the creating thread owns the loop).
        loop.enqueue { order.append("before run") }
        // Far enough ahead that the first iteration (which runs the body
        // enqueued before `run`) is over before the timers are due.
        let due = loop.now() + .milliseconds(50)
        _ = loop.schedule(at: due, TimerAction { _, _ in
            loop.enqueue {
                order.append("1")
                loop.enqueue { order.append("3") }
            }
            loop.enqueue { order.append("2") }
            order.append("timer returns")
        })
        _ = loop.schedule(at: due, TimerAction { _, _ in
            order.append("second timer")
        })
        let flush = FlushAction {
            order.append("flush")
            if order.contains("3") { loop.stop() }
        }
        loop.addFlushHandler(flush)

        try loop.run(until: loop.now() + loopTimeLimit)
        loop.removeFlushHandler(flush)  // it holds the loop

        #expect(order == ["before run", "flush", "timer returns", "second timer", "1", "2", "3", "flush"])
    }

    @Test("execute from another thread wakes a waiting loop and runs on the loop thread")
    func executeWakesLoop() throws {
        let loop = try EventLoop()
        let start = loop.now()
        let loopThread = currentThread()
        let ranOn = Shared<UInt?>(nil)
        let sender = TestThread {
            usleep(50_000)
            loop.execute {
                ranOn.update { $0 = currentThread() }
                loop.stop()
            }
        }
        // No timers and no descriptors: only the eventfd can wake the loop
        // before the limit.
        try loop.run(until: start + loopTimeLimit)
        let elapsed = loop.now() - start

        #expect(sender.join())
        #expect(ranOn.value == loopThread)
        #expect(elapsed >= .milliseconds(50))
        #expect(elapsed < .seconds(2), "the loop slept through execute: \(elapsed)")
    }

    @Test("execute bodies from many threads all run, each thread's in order")
    func executeFromManyThreads() throws {
        let loop = try EventLoop()
        let perThread = 500
        let seen = Shared<[Int: [Int]]>([:])
        let finished = Shared(0)
        let threads = (0..<4).map { t in
            TestThread {
                for i in 0..<perThread {
                    loop.execute {
                        seen.update { $0[t, default: []].append(i) }
                    }
                }
                loop.execute {
                    finished.update { $0 += 1 }
                    if finished.value == 4 { loop.stop() }
                }
            }
        }
        try loop.run(until: loop.now() + loopTimeLimit)
        for thread in threads { #expect(thread.join()) }

        #expect(finished.value == 4)
        for t in 0..<4 { #expect(seen.value[t] == Array(0..<perThread)) }
    }

    @Test("run(until:) returns at its deadline, and at once for a past one")
    func runUntilReturns() throws {
        let loop = try EventLoop()
        let start = loop.now()
        let deadline = start + .milliseconds(50)
        try loop.run(until: deadline)
        let returned = loop.now()
        #expect(returned >= deadline)
        #expect(returned - deadline <= latenessTolerance)

        let before = loop.now()
        try loop.run(until: start)
        #expect(loop.now() - before < .milliseconds(20))
    }

    @Test("stop before run makes the next run return at once; stop inside a callback ends the iteration")
    func stopSemantics() throws {
        let loop = try EventLoop()
        loop.stop()
        let start = loop.now()
        try loop.run(until: start + loopTimeLimit)
        #expect(loop.now() - start < .seconds(1))

        var after: [String] = []
        _ = loop.schedule(at: loop.now(), TimerAction { _, _ in
            loop.stop()
            loop.enqueue { after.append("enqueued after stop") }
        })
        let second = loop.now()
        try loop.run(until: second + loopTimeLimit)
        #expect(after == ["enqueued after stop"])
        #expect(loop.now() - second < .seconds(1))
    }

    @Test("two loops run at once on two threads without sharing anything")
    func twoLoopsConcurrently() throws {
        let results = Shared<[Int: (fired: [Int], threads: Set<UInt>, runThread: UInt, executed: Bool)]>([:])
        let threads = (0..<2).map { n in
            TestThread {
                guard let loop = try? EventLoop() else { return }
                let me = currentThread()
                var fired: [Int] = []
                var threadsSeen = Set<UInt>()
                let executed = Shared(false)
                let start = loop.now()
                for i in 0..<20 {
                    _ = loop.schedule(at: start + .milliseconds(Int64(2 * i + n)), TimerAction { _, _ in
                        fired.append(i)
                        threadsSeen.insert(currentThread())
                        if fired.count == 20 {
                            loop.execute { loop.stop() }
                        }
                    })
                }
                loop.execute { executed.update { $0 = true } }
                try? loop.run(until: start + loopTimeLimit)
                let snapshot = (fired, threadsSeen, me, executed.value)
                results.update { $0[n] = snapshot }
            }
        }
        for thread in threads { #expect(thread.join()) }
        let value = results.value
        #expect(value.count == 2)
        for n in 0..<2 {
            guard let result = value[n] else { continue }
            #expect(result.fired == Array(0..<20))
            #expect(result.threads == [result.runThread])
            #expect(result.executed)
        }
        if let a = value[0], let b = value[1] { #expect(a.runThread != b.runThread) }
    }

    @Test("the loop thread moves to the thread that calls run")
    func ownershipMovesToRunThread() throws {
        let loop = try EventLoop()
        #expect(loop.inLoopThread)
        let observed = Shared<(before: Bool, during: Bool)?>(nil)
        let runner = TestThread {
            let before = loop.inLoopThread
            loop.execute {
                observed.update { $0 = (before, loop.inLoopThread) }
                loop.stop()
            }
            try? loop.run(until: loop.now() + loopTimeLimit)
        }
        #expect(runner.join())
        #expect(observed.value?.before == false)
        #expect(observed.value?.during == true)
        #expect(!loop.inLoopThread)
    }
}
