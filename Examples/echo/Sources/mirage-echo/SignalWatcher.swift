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
final class SignalWatcher {
    private let sources: [any DispatchSourceSignal]
    private let state = State()

    /// What the signal handlers share with the main thread.
    private final class State: Sendable {
        let first = Atomic<Int32>(0)
    }

    /// Watches `signals` for `loop`.
    init(loop: EventLoop, signals: [Int32]) {
        let queue = DispatchQueue(label: "mirage-echo.signals")
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

    /// The first signal received, if any.
    var received: Int32? {
        let value = state.first.load(ordering: .relaxed)
        return value == 0 ? nil : value
    }

    /// Stops watching.
    func close() {
        for source in sources { source.cancel() }
    }
}
