import Dispatch
import Glibc
import MiragePlatform
import Synchronization

/// Stops an `EventLoop` when one of the given signals arrives (Ctrl-C,
/// SIGTERM from a supervisor), so the program ends through its normal path.
///
/// The signals' default actions are turned off and Dispatch sources watch
/// them on a queue of their own; the first one remembers the signal and
/// calls `loop.stop()`, which any thread may call.
public final class SignalWatcher {
    private var sources: [any DispatchSourceSignal]
    private let state = State()
    private let queue: DispatchQueue
    private let loop: EventLoop

    /// What the signal handlers share with the main thread.
    private final class State: Sendable {
        let first = Atomic<Int32>(0)
    }

    /// Watches `signals` for `loop`.
    public init(loop: EventLoop, signals: [Int32]) {
        let queue = DispatchQueue(label: "mirage.signals")
        self.queue = queue
        self.loop = loop
        var sources: [any DispatchSourceSignal] = []
        for number in signals {
            // Dispatch sees the signal only when its default action is off.
            Glibc.signal(number, SIG_IGN)
            sources.append(DispatchSource.makeSignalSource(signal: number, queue: queue))
        }
        self.sources = sources
        for (source, number) in zip(sources, signals) {
            source.setEventHandler { [state] in
                _ = state.first.compareExchange(expected: 0, desired: number, ordering: .relaxed)
                loop.stop()
            }
            source.resume()
        }
    }

    /// Runs `report` on the loop's thread each time `number` arrives
    /// (SIGUSR1: print a status line without stopping).
    public func onSignal(_ number: Int32, report: @escaping () -> Void) {
        Glibc.signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
        let work = LoopOnly(report)
        let loop = self.loop
        source.setEventHandler {
            loop.execute { work.body() }
        }
        source.resume()
        sources.append(source)
    }

    /// The first signal received, if any.
    public var received: Int32? {
        let value = state.first.load(ordering: .relaxed)
        return value == 0 ? nil : value
    }

    /// Stops watching.
    public func close() {
        for source in sources { source.cancel() }
    }
}

/// A closure that is only ever called on the loop's thread (through
/// `EventLoop.execute`), so handing it to the signal queue is safe although
/// what it touches is not `Sendable`.
private final class LoopOnly: @unchecked Sendable {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}
