import ArgumentParser
import Dispatch
import Glibc
import MirageDevices
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

/// Runs `loop` until a signal `signals` watches stops it, then ends an
/// example program in the order each needs: the watcher closed, `status()`
/// read while the server still holds what was open at the signal,
/// `stop()`, the network shut down. Returns the signal's number (0 when
/// the loop stopped otherwise) and that status. A failing loop is reported
/// as `PROGRAM: error: …` on standard error and ends the program with exit
/// status 1.
public func runUntilSignal(
    _ loop: EventLoop, signals: SignalWatcher, setup: NetworkSetup, program: String,
    status: () -> String, stop: () -> Void
) throws -> (signal: Int32, atStop: String) {
    do throws(DeviceError) {
        try loop.run()
    } catch {
        writeLine("\(program): error: the event loop failed: \(error)", to: STDERR_FILENO)
        throw ExitCode(1)
    }
    let signal = signals.received ?? 0
    signals.close()
    let atStop = status()
    stop()
    setup.shutdown()
    return (signal, atStop)
}

/// A closure that is only ever called on the loop's thread (through
/// `EventLoop.execute`), so handing it to the signal queue is safe although
/// what it touches is not `Sendable`.
private final class LoopOnly: @unchecked Sendable {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}
