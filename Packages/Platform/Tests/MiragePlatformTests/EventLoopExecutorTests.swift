import MirageDevices
import Testing

@testable import MiragePlatform

/// Resumes a continuation when a timer on the loop fires: an event
/// delivered by the loop, as a device's would be.
private final class ResumeOnFire: TimerHandler {
    private var continuation: CheckedContinuation<Instant, Never>?
    init(_ continuation: CheckedContinuation<Instant, Never>) { self.continuation = continuation }
    func timerFired(_ id: TimerID, now: Instant) {
        continuation?.resume(returning: now)
        continuation = nil
    }
}

/// Suspends until a loop timer `delay` from now fires. Must be called on
/// the loop thread (it schedules the timer).
private func loopTimer(_ loop: EventLoop, after delay: Interval) async -> Instant {
    await withCheckedContinuation { continuation in
        _ = loop.schedule(at: loop.now() + delay, ResumeOnFire(continuation))
    }
}

/// A nonisolated async function: runs on the task's preferred executor.
private func onLoopThread(_ loop: EventLoop) async -> Bool {
    loop.inLoopThread
}

/// An actor whose serial executor is the loop.
private actor LoopActor {
    let loop: EventLoop
    var calls = 0
    init(loop: EventLoop) { self.loop = loop }
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }
    func touch() -> Bool {
        calls += 1
        loop.preconditionIsolated()
        return loop.inLoopThread
    }
}

@Suite("EventLoop as an executor", .serialized)
struct EventLoopExecutorTests {
    /// Runs `loop` on a new thread until it stops (bounded), returning the
    /// loop thread's identity once it has finished.
    private func runOnThread(_ loop: EventLoop, _ body: () -> Void) -> UInt? {
        let loopThread = Shared<UInt?>(nil)
        let thread = TestThread {
            loopThread.update { $0 = currentThread() }
            try? loop.run(until: loop.now() + loopTimeLimit)
        }
        body()
        return thread.join() ? loopThread.value : nil
    }

    @Test("a task preferring the loop runs on the loop thread, also after awaiting a loop event")
    func taskExecutorPreference() throws {
        let loop = try EventLoop()
        let observed = Shared<[String: UInt]>([:])
        let flags = Shared<[String: Bool]>([:])
        let loopThread = runOnThread(loop) {
            Task(executorPreference: loop) {
                observed.update { $0["start"] = currentThread() }
                flags.update { $0["start"] = loop.inLoopThread }
                let fired = await loopTimer(loop, after: .milliseconds(10))
                observed.update { $0["resumed"] = currentThread() }
                flags.update { $0["resumed"] = loop.inLoopThread }
                let nested = await onLoopThread(loop)
                flags.update { $0["nested"] = nested }
                flags.update { $0["timer fired"] = fired > .zero }
                loop.stop()
            }
        }
        #expect(loopThread != nil)
        #expect(observed.value["start"] == loopThread)
        #expect(observed.value["resumed"] == loopThread)
        #expect(flags.value == ["start": true, "resumed": true, "nested": true, "timer fired": true])
    }

    @Test("withTaskExecutorPreference moves a task's nonisolated code onto the loop")
    func withPreference() throws {
        let loop = try EventLoop()
        // "Outside" is a second loop on a thread of its own rather than the
        // global pool, whose two threads the tests around this one may all
        // be blocking (a detached task once starved here past the limit).
        let other = try EventLoop()
        let otherThread = TestThread { try? other.run(until: other.now() + loopTimeLimit) }
        let flags = Shared<[String: Bool]>([:])
        let loopThread = runOnThread(loop) {
            Task(executorPreference: other) {
                flags.update { $0["outside"] = loop.inLoopThread }
                flags.update { $0["on the other loop"] = other.inLoopThread }
                let inside = await withTaskExecutorPreference(loop) {
                    await onLoopThread(loop)
                }
                flags.update { $0["inside"] = inside }
                loop.stop()
                other.stop()
            }
        }
        #expect(loopThread != nil)
        #expect(otherThread.join())
        #expect(flags.value == ["outside": false, "on the other loop": true, "inside": true])
    }

    @Test("an actor whose executor is the loop runs on the loop thread")
    func actorOnLoop() throws {
        let loop = try EventLoop()
        let flags = Shared<[Bool]>([])
        let loopThread = runOnThread(loop) {
            // The task prefers the loop too, so no step waits for a thread of
            // the global pool: the tests around it block those threads (two
            // on this machine), which once starved a detached task here for
            // the whole time limit.
            Task(executorPreference: loop) {
                let actor = LoopActor(loop: loop)
                for _ in 0..<3 {
                    let onLoop = await actor.touch()
                    flags.update { $0.append(onLoop) }
                }
                loop.stop()
            }
        }
        #expect(loopThread != nil)
        #expect(flags.value == [true, true, true])
    }
}
