import MirageDevices
import Testing

/// Sends `count` frames a→b across a memory network, one per millisecond,
/// with `configuration` applied by an injector wrapping b (receive side) or
/// a (transmit side). Returns what b's handler saw and the counters.
func runFaulty(_ configuration: FaultConfiguration, seed: UInt64, count: Int, onTransmit: Bool = false)
    throws -> (handler: RecordingHandler, stats: FaultStatistics)
{
    let clock = ManualClock()
    let timers = ManualTimerScheduler(clock: clock)
    let net = MemoryNetwork()
    let a = net.attach(mac: macA, queueLimit: 4096), b = net.attach(mac: macB, queueLimit: 4096)
    let h = RecordingHandler()
    var config = configuration
    config.directions = onTransmit ? .transmit : .receive
    if onTransmit {
        let f = FaultInjector(a, configuration: config, seed: seed, clock: clock, scheduler: timers)
        b.handler = h
        for i in 0..<count {
            try send(testFrame(to: macB, from: macA, sequence: UInt32(i)), on: f)
            net.deliverPending()
            clock.advance(by: .milliseconds(1))
            timers.runDue()
        }
        timers.run(until: clock.now() + .seconds(1))
        net.deliverPending()
        defer { f.detach() }
        return (h, f.transmitStatistics)
    } else {
        let f = FaultInjector(b, configuration: config, seed: seed, clock: clock, scheduler: timers)
        f.handler = h
        for i in 0..<count {
            try send(testFrame(to: macB, from: macA, sequence: UInt32(i)), on: a)
            net.deliverPending()
            clock.advance(by: .milliseconds(1))
            timers.runDue()
        }
        timers.run(until: clock.now() + .seconds(1))
        #expect(f.heldCount == 0, "every held frame is released in the end")
        defer { f.detach() }
        return (h, f.receiveStatistics)
    }
}

func mixedFaults() -> FaultConfiguration {
    var c = FaultConfiguration()
    c.dropRate = 0.05
    c.corruptRate = 0.05
    c.duplicateRate = 0.05
    c.reorderRate = 0.1
    c.reorderWindow = 3
    return c
}

@Suite struct FaultInjectorTests {
    @Test(arguments: [false, true])
    func theSameSeedReplaysTheSameRun(onTransmit: Bool) throws {
        let first = try runFaulty(mixedFaults(), seed: 42, count: 2000, onTransmit: onTransmit)
        let second = try runFaulty(mixedFaults(), seed: 42, count: 2000, onTransmit: onTransmit)
        let other = try runFaulty(mixedFaults(), seed: 43, count: 2000, onTransmit: onTransmit)
        #expect(first.handler.frames == second.handler.frames)
        #expect(first.stats == second.stats)
        #expect(first.handler.frames != other.handler.frames)
        #expect(first.stats.frames == 2000)
        #expect(first.stats.dropped > 0 && first.stats.corrupted > 0 && first.stats.duplicated > 0 && first.stats.reordered > 0)
    }

    @Test func dropRateIsHonouredAndCounted() throws {
        var c = FaultConfiguration()
        c.dropRate = 0.1
        let run = try runFaulty(c, seed: 7, count: 10_000)
        // Binomial(10000, 0.1): mean 1000, sd 30; ±200 is over six sd.
        #expect(run.stats.dropped > 800 && run.stats.dropped < 1200)
        #expect(UInt64(run.handler.frames.count) == 10_000 - run.stats.dropped)
        let seqs = run.handler.sequences
        #expect(seqs == seqs.sorted(), "dropping alone never reorders")
    }

    @Test func duplicatesAreExtraCopiesOfTheSameFrame() throws {
        var c = FaultConfiguration()
        c.duplicateRate = 0.2
        let run = try runFaulty(c, seed: 9, count: 1000)
        #expect(run.stats.duplicated > 100)
        #expect(UInt64(run.handler.frames.count) == 1000 + run.stats.duplicated)
        #expect(Set(run.handler.sequences) == Set(0..<1000))
    }

    @Test func corruptionChangesExactlyOneByte() throws {
        var c = FaultConfiguration()
        c.corruptRate = 1
        let run = try runFaulty(c, seed: 11, count: 200)
        #expect(run.stats.corrupted == 200)
        for (i, frame) in run.handler.frames.enumerated() {
            let original = testFrame(to: macB, from: macA, sequence: UInt32(i))
            #expect(frame.count == original.count)
            let differing = zip(frame, original).filter { $0 != $1 }.count
            #expect(differing == 1)
        }
    }

    @Test(arguments: [false, true])
    func reorderingLosesNothing(onTransmit: Bool) throws {
        var c = FaultConfiguration()
        c.reorderRate = 0.3
        c.reorderWindow = 5
        let run = try runFaulty(c, seed: 5, count: 3000, onTransmit: onTransmit)
        let seqs = run.handler.sequences
        #expect(seqs.count == 3000)
        #expect(Set(seqs) == Set(0..<3000))
        #expect(seqs != seqs.sorted(), "frames were actually reordered")
        #expect(run.stats.reordered > 500)
    }

    @Test func delayHoldsFramesUntilTheirDeadline() throws {
        let clock = ManualClock()
        let timers = ManualTimerScheduler(clock: clock)
        let net = MemoryNetwork()
        let a = net.attach(mac: macA), b = net.attach(mac: macB)
        var c = FaultConfiguration()
        c.directions = .receive
        c.delay = .milliseconds(50)
        let f = FaultInjector(b, configuration: c, seed: 1, clock: clock, scheduler: timers)
        defer { f.detach() }
        let h = RecordingHandler()
        f.handler = h
        try send(testFrame(to: macB, from: macA, sequence: 1), on: a)
        net.deliverPending()
        #expect(h.frames.isEmpty)
        #expect(timers.nextDeadline() == Instant.zero + .milliseconds(50))
        clock.advance(by: .milliseconds(49))
        timers.runDue()
        #expect(h.frames.isEmpty, "not before the deadline")
        clock.advance(by: .milliseconds(1))
        timers.runDue()
        #expect(h.sequences == [1])
        #expect(f.receiveStatistics.delayed == 1)
    }

    @Test func heldFramesAreBounded() throws {
        let clock = ManualClock()
        let timers = ManualTimerScheduler(clock: clock)
        let net = MemoryNetwork()
        let a = net.attach(mac: macA), b = net.attach(mac: macB)
        var c = FaultConfiguration()
        c.directions = .receive
        c.delay = .seconds(1)
        c.heldLimit = 10
        let f = FaultInjector(b, configuration: c, seed: 1, clock: clock, scheduler: timers)
        defer { f.detach() }
        let h = RecordingHandler()
        f.handler = h
        for i in 0..<25 { try send(testFrame(to: macB, from: macA, sequence: UInt32(i)), on: a) }
        net.deliverPending()
        #expect(f.heldCount == 10)
        #expect(f.receiveStatistics.heldOverflow == 15)
        timers.run(until: clock.now() + .seconds(2))
        #expect(h.sequences == Array(0..<10))
    }
}
