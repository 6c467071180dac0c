/// A bounded queue of items handed from the loop's event callbacks to one
/// async taker at a time: what a listener (accepted connections) and a UDP
/// socket (datagrams) of the async front both need. Loop-confined: every
/// method but `take` runs on the loop thread; `take` hops there itself.
final class LoopQueue<Element: Sendable>: @unchecked Sendable {
    /// Items held for `take` at most.
    let limit: Int
    private var pending: [Element] = []
    private var head = 0
    private var waiter: LoopWaiter<Element?>?
    /// Set by `close`: `take` returns nil once the queue is drained.
    private(set) var isClosed = false

    init(limit: Int) {
        precondition(limit > 0, "a queue needs room for one item")
        self.limit = limit
    }

    /// Items waiting.
    var count: Int { pending.count - head }

    /// Whether `offer` would take an item now (a taker waits, or there is room).
    var hasRoom: Bool { !isClosed && (waiter != nil || count < limit) }

    /// The next item, waiting for one; nil once closed and drained. A second
    /// concurrent taker gets `busy`; cancelling the task gets `cancelled`.
    func take(on front: AsyncStack) async throws(AsyncStackError) -> Element? {
        try await front.suspend { [self] waiter in
            guard self.waiter == nil else {
                waiter.resume(.failure(.busy))
                return
            }
            if head < pending.count {
                let item = pending[head]
                head += 1
                if head == pending.count {
                    pending.removeAll(keepingCapacity: true)
                    head = 0
                }
                waiter.resume(.success(item))
            } else if isClosed {
                waiter.resume(.success(nil))
            } else {
                self.waiter = waiter
            }
        } onCancel: { [self] waiter in
            guard self.waiter === waiter else { return }
            self.waiter = nil
            waiter.resume(.failure(.cancelled))
        }
    }

    /// Hands `item` to the waiting taker or holds it; false (item not taken)
    /// when closed or full.
    func offer(_ item: Element) -> Bool {
        guard !isClosed else { return false }
        if let waiter {
            self.waiter = nil
            waiter.resume(.success(item))
            return true
        }
        guard count < limit else { return false }
        pending.append(item)
        return true
    }

    /// Closes the queue: a waiting taker gets nil; returns the items that
    /// were never taken.
    func close() -> [Element] {
        guard !isClosed else { return [] }
        isClosed = true
        let left = Array(pending[head...])
        pending.removeAll()
        head = 0
        if let waiter {
            self.waiter = nil
            waiter.resume(.success(nil))
        }
        return left
    }
}
