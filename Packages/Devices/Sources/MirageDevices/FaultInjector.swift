/// Which way faults are applied.
public struct FaultDirections: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Frames arriving from the base interface.
    public static let receive = FaultDirections(rawValue: 1)
    /// Frames the stack transmits.
    public static let transmit = FaultDirections(rawValue: 2)
    /// Both ways.
    public static let both: FaultDirections = [.receive, .transmit]
}

/// What a `FaultInjector` does to frames. Rates are probabilities per frame
/// in 0...1, drawn independently in the order drop, corrupt, duplicate,
/// reorder.
public struct FaultConfiguration: Hashable, Sendable {
    /// Directions the faults apply to.
    public var directions: FaultDirections = .both
    /// Probability that a frame is lost.
    public var dropRate: Double = 0
    /// Probability that one byte of a frame is changed (XOR with a non-zero
    /// value at a random offset).
    public var corruptRate: Double = 0
    /// Corruption hits bytes from this offset on. 0 lets it hit any byte;
    /// 34 spares the Ethernet and IPv4 headers and ARP's sender fields,
    /// which stand in for the Ethernet FCS that a real link has and
    /// `MemoryNetwork` lacks: without it a corrupted ARP message (ARP has
    /// no checksum) poisons a cache, which no real link lets happen.
    public var corruptFrom: Int = 0
    /// Probability that a frame is delivered twice.
    public var duplicateRate: Double = 0
    /// Probability that a frame is held back and released after up to
    /// `reorderWindow` later frames (or `reorderTimeout`, whichever first).
    public var reorderRate: Double = 0
    /// The most later frames a held frame lets pass.
    public var reorderWindow: Int = 4
    /// The longest a reordered frame is held when no further frames come.
    public var reorderTimeout: Interval = .milliseconds(10)
    /// Added to every frame's delivery; zero delivers at once.
    public var delay: Interval = .zero
    /// Up to this much more delay, drawn uniformly per frame (which also
    /// reorders frames).
    public var jitter: Interval = .zero
    /// The most frames held at once (delayed or reordered) per direction;
    /// frames beyond it are dropped and counted in `heldOverflow`.
    public var heldLimit: Int = 1024

    /// No faults.
    public init() {}
}

/// Counters of what a `FaultInjector` did.
public struct FaultStatistics: Hashable, Sendable {
    /// Frames seen.
    public var frames: UInt64 = 0
    /// Frames dropped by `dropRate`.
    public var dropped: UInt64 = 0
    /// Frames with a byte changed.
    public var corrupted: UInt64 = 0
    /// Extra copies delivered.
    public var duplicated: UInt64 = 0
    /// Frames held back for reordering.
    public var reordered: UInt64 = 0
    /// Frames held back for delay or jitter.
    public var delayed: UInt64 = 0
    /// Frames dropped because `heldLimit` was reached.
    public var heldOverflow: UInt64 = 0
    /// Held frames lost on release because the base interface was full.
    public var releaseFailed: UInt64 = 0
    /// All zero.
    public init() {}
}

/// A network interface wrapper that drops, corrupts, duplicates, reorders
/// and delays frames, seeded so that a failing run can be replayed exactly.
///
/// Held frames are copied (the originals are borrowed) and released by a
/// timer on `scheduler`, or when enough later frames have passed. Like
/// `PcapInterface`, the wrapper is the base's handler until `detach()`.
public final class FaultInjector<Base: NetworkInterface>: NetworkInterface, NetworkInterfaceHandler, TimerHandler {
    /// The wrapped interface.
    public let base: Base
    /// The faults applied; may be changed at any time.
    public var configuration: FaultConfiguration
    /// Counters for received frames.
    public private(set) var receiveStatistics = FaultStatistics()
    /// Counters for transmitted frames.
    public private(set) var transmitStatistics = FaultStatistics()
    /// Where events go.
    public var handler: (any NetworkInterfaceHandler)?

    private let random: SeededEntropy
    private let clock: any MonotonicClock
    private let scheduler: any TimerScheduler
    private var timer: TimerID?
    private var timerDeadline: Instant?

    struct Held {
        var bytes: [UInt8]
        var receiveMetadata: ReceiveMetadata
        var transmitMetadata: TransmitMetadata
        /// Released when this reaches zero (frames still allowed to pass) …
        var framesLeft: Int
        /// … or at this instant.
        var deadline: Instant
    }
    private var heldReceive: [Held] = []
    private var heldTransmit: [Held] = []

    /// Wraps `base`; `seed` fixes every random choice.
    public init(_ base: Base, configuration: FaultConfiguration, seed: UInt64,
                clock: any MonotonicClock, scheduler: any TimerScheduler) {
        self.base = base
        self.configuration = configuration
        self.random = SeededEntropy(seed: seed)
        self.clock = clock
        self.scheduler = scheduler
        base.handler = self
    }

    /// Breaks the reference from the base interface to this wrapper and
    /// cancels the release timer; held frames are discarded.
    public func detach() {
        base.handler = nil
        if let t = timer { scheduler.cancel(t) }
        timer = nil
        heldReceive.removeAll()
        heldTransmit.removeAll()
    }

    public var macAddress: MACAddress { base.macAddress }
    public var mtu: Int { base.mtu }
    public var offloads: OffloadCapabilities { base.offloads }
    public var statistics: InterfaceStatistics { base.statistics }
    /// Frames currently held back, both directions.
    public var heldCount: Int { heldReceive.count + heldTransmit.count }

    enum Fate {
        case drop
        case deliver(corrupt: Bool, duplicate: Bool)
        case hold(corrupt: Bool, duplicate: Bool, framesLeft: Int, deadline: Instant, reordered: Bool)
    }

    private func chance(_ p: Double) -> Bool { p > 0 && random.nextUnitDouble() < p }

    private func decide(_ stats: inout FaultStatistics) -> Fate {
        let c = configuration
        stats.frames += 1
        if chance(c.dropRate) {
            stats.dropped += 1
            return .drop
        }
        let corrupt = chance(c.corruptRate)
        let duplicate = chance(c.duplicateRate)
        if chance(c.reorderRate) && c.reorderWindow > 0 {
            let framesLeft = 1 + Int(random.next(below: UInt64(c.reorderWindow)))
            return .hold(corrupt: corrupt, duplicate: duplicate, framesLeft: framesLeft,
                         deadline: clock.now() + c.reorderTimeout, reordered: true)
        }
        var wait = c.delay
        if c.jitter.nanoseconds > 0 {
            wait = wait + Interval(nanoseconds: Int64(random.next(below: UInt64(c.jitter.nanoseconds) + 1)))
        }
        if wait.nanoseconds > 0 {
            return .hold(corrupt: corrupt, duplicate: duplicate, framesLeft: Int.max,
                         deadline: clock.now() + wait, reordered: false)
        }
        return .deliver(corrupt: corrupt, duplicate: duplicate)
    }

    /// A random offset in `corruptFrom..<count` (or the whole frame when
    /// it is shorter), and a non-zero value to XOR there.
    private func corruption(count: Int) -> (at: Int, flip: UInt8) {
        let from = configuration.corruptFrom < count ? max(0, configuration.corruptFrom) : 0
        let at = from + Int(random.next(below: UInt64(count - from)))
        return (at, UInt8(1 + random.next(below: 255)))
    }

    private func corruptByte(_ bytes: inout [UInt8]) {
        guard !bytes.isEmpty else { return }
        let (at, flip) = corruption(count: bytes.count)
        bytes[at] ^= flip
    }

    private func corruptByte(_ bytes: inout MutableSpan<UInt8>, count: Int) {
        guard count > 0 else { return }
        let (at, flip) = corruption(count: count)
        bytes[at] ^= flip
    }

    // MARK: Receive

    public func frameReceived(_ frame: Span<UInt8>, metadata: ReceiveMetadata) {
        guard configuration.directions.contains(.receive) else {
            handler?.frameReceived(frame, metadata: metadata)
            return
        }
        let fate = decide(&receiveStatistics)
        switch fate {
        case .drop:
            break
        case .deliver(let corrupt, let duplicate):
            if corrupt {
                var copy = Self.copy(frame)
                corruptByte(&copy)
                receiveStatistics.corrupted += 1
                handler?.frameReceived(copy.span, metadata: metadata)
                if duplicate { deliverDuplicate(copy.span, metadata) }
            } else {
                handler?.frameReceived(frame, metadata: metadata)
                if duplicate { deliverDuplicate(frame, metadata) }
            }
        case .hold(let corrupt, let duplicate, let framesLeft, let deadline, let reordered):
            guard heldReceive.count < configuration.heldLimit else {
                receiveStatistics.heldOverflow += 1
                break
            }
            var copy = Self.copy(frame)
            if corrupt {
                corruptByte(&copy)
                receiveStatistics.corrupted += 1
            }
            if reordered { receiveStatistics.reordered += 1 } else { receiveStatistics.delayed += 1 }
            let held = Held(bytes: copy, receiveMetadata: metadata, transmitMetadata: .none, framesLeft: framesLeft, deadline: deadline)
            heldReceive.append(held)
            if duplicate {
                receiveStatistics.duplicated += 1
                if heldReceive.count < configuration.heldLimit { heldReceive.append(held) }
            }
            armTimer()
            return
        }
        // A frame passed: count it against held reordered frames.
        releaseReceive(passedFrame: true)
    }

    private func deliverDuplicate(_ frame: Span<UInt8>, _ metadata: ReceiveMetadata) {
        receiveStatistics.duplicated += 1
        handler?.frameReceived(frame, metadata: metadata)
    }

    private func releaseReceive(passedFrame: Bool) {
        guard !heldReceive.isEmpty else { return }
        let now = clock.now()
        var i = 0
        while i < heldReceive.count {
            if passedFrame && heldReceive[i].framesLeft != Int.max { heldReceive[i].framesLeft -= 1 }
            if heldReceive[i].framesLeft <= 0 || heldReceive[i].deadline <= now {
                let held = heldReceive.remove(at: i)
                handler?.frameReceived(held.bytes.span, metadata: held.receiveMetadata)
            } else {
                i += 1
            }
        }
    }

    public func receiveBatchEnded() { handler?.receiveBatchEnded() }
    public func transmitReady() { handler?.transmitReady() }

    // MARK: Transmit

    public func transmit(length: Int, metadata: TransmitMetadata, _ fill: (inout MutableSpan<UInt8>) -> Int) throws(DeviceError) {
        guard configuration.directions.contains(.transmit) else {
            try base.transmit(length: length, metadata: metadata, fill)
            return
        }
        let fate = decide(&transmitStatistics)
        switch fate {
        case .drop:
            // The stack believes the frame left; it is lost on the wire.
            var scratch = [UInt8](repeating: 0, count: max(0, length))
            var span = scratch.mutableSpan
            _ = fill(&span)
        case .deliver(let corrupt, let duplicate):
            var sent: [UInt8] = []
            try base.transmit(length: length, metadata: metadata) { buffer in
                let used = fill(&buffer)
                guard used > 0 && used <= buffer.count else { return used }
                if corrupt {
                    self.corruptByte(&buffer, count: used)
                    self.transmitStatistics.corrupted += 1
                }
                if duplicate {
                    sent.reserveCapacity(used)
                    for k in 0..<used { sent.append(buffer[k]) }
                }
                return used
            }
            if duplicate && !sent.isEmpty {
                transmitStatistics.duplicated += 1
                sendCopy(sent, metadata)
            }
            releaseTransmit(passedFrame: true)
        case .hold(let corrupt, let duplicate, let framesLeft, let deadline, let reordered):
            let capacity = max(0, length)
            var copy = [UInt8](repeating: 0, count: capacity)
            var span = copy.mutableSpan
            let used = fill(&span)
            _ = consume span
            guard used > 0 && used <= capacity else { return }
            copy.removeLast(capacity - used)
            if corrupt {
                corruptByte(&copy)
                transmitStatistics.corrupted += 1
            }
            guard heldTransmit.count < configuration.heldLimit else {
                transmitStatistics.heldOverflow += 1
                return
            }
            if reordered { transmitStatistics.reordered += 1 } else { transmitStatistics.delayed += 1 }
            let held = Held(bytes: copy, receiveMetadata: .none, transmitMetadata: metadata, framesLeft: framesLeft, deadline: deadline)
            heldTransmit.append(held)
            if duplicate {
                transmitStatistics.duplicated += 1
                if heldTransmit.count < configuration.heldLimit { heldTransmit.append(held) }
            }
            armTimer()
        }
    }

    private func sendCopy(_ bytes: [UInt8], _ metadata: TransmitMetadata) {
        do {
            try base.transmit(length: bytes.count, metadata: metadata) { buffer in
                for k in 0..<bytes.count { buffer[k] = bytes[k] }
                return bytes.count
            }
        } catch {
            transmitStatistics.releaseFailed += 1
        }
    }

    private func releaseTransmit(passedFrame: Bool) {
        guard !heldTransmit.isEmpty else { return }
        let now = clock.now()
        var i = 0
        while i < heldTransmit.count {
            if passedFrame && heldTransmit[i].framesLeft != Int.max { heldTransmit[i].framesLeft -= 1 }
            if heldTransmit[i].framesLeft <= 0 || heldTransmit[i].deadline <= now {
                let held = heldTransmit.remove(at: i)
                sendCopy(held.bytes, held.transmitMetadata)
            } else {
                i += 1
            }
        }
    }

    // MARK: Timer

    private func armTimer() {
        var earliest = Instant(nanoseconds: .max)
        for h in heldReceive where h.deadline < earliest { earliest = h.deadline }
        for h in heldTransmit where h.deadline < earliest { earliest = h.deadline }
        guard heldCount > 0 else { return }
        let deadline = earliest
        if let current = timerDeadline, current <= deadline, timer != nil { return }
        if let t = timer { scheduler.cancel(t) }
        timer = scheduler.schedule(at: deadline, self)
        timerDeadline = deadline
    }

    public func timerFired(_ id: TimerID, now: Instant) {
        guard id == timer else { return }
        timer = nil
        timerDeadline = nil
        let hadReceive = !heldReceive.isEmpty
        releaseReceive(passedFrame: false)
        if hadReceive { handler?.receiveBatchEnded() }
        releaseTransmit(passedFrame: false)
        armTimer()
    }

    static func copy(_ frame: Span<UInt8>) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(frame.count)
        for i in frame.indices { out.append(frame[i]) }
        return out
    }
}
