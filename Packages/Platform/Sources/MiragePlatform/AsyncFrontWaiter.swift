import Synchronization

/// One suspended operation of the async front: a continuation resumed
/// exactly once, on the loop thread, plus a cancellation flag any thread
/// may set.
///
/// `@unchecked Sendable`: the continuation is stored before the waiter is
/// handed to the loop (through `EventLoop.execute`, whose queue lock orders
/// the two, or on the loop thread itself) and is then read and cleared on
/// the loop thread only.
final class LoopWaiter<Value: Sendable>: @unchecked Sendable {
    private var continuation: CheckedContinuation<Result<Value, AsyncStackError>, Never>?
    private let cancelled = Atomic<Bool>(false)

    func set(_ continuation: CheckedContinuation<Result<Value, AsyncStackError>, Never>) {
        self.continuation = continuation
    }

    /// Whether the waiting task was cancelled (any thread).
    var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    func markCancelled() { cancelled.store(true, ordering: .releasing) }

    /// Resumes the task; later calls do nothing. Loop thread.
    func resume(_ result: Result<Value, AsyncStackError>) {
        guard let continuation else { return }
        self.continuation = nil
        continuation.resume(returning: result)
    }
}
