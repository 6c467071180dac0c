import MirageDevices

/// The output side that `HTTPServer` and `HTTPClient` drive alike: the
/// bytes a connection state machine has for the stack.
protocol ConnectionOutput {
    var outputCount: Int { get }
    func withOutput<R, E: Error>(_ body: (Span<UInt8>) throws(E) -> R) throws(E) -> R
    mutating func consumeOutput(_ count: Int)
}

extension HTTPServerConnection: ConnectionOutput {}
extension HTTPClientConnection: ConnectionOutput {}

extension ConnectionOutput {
    /// Writes the output to `stack` until all is sent or the stack takes
    /// less than offered (it says `writable` when there is room again).
    mutating func send<S: Stack>(on connection: ConnectionID, through stack: S) throws(DeviceError) {
        while outputCount > 0 {
            let written = try withOutput { (span) throws(DeviceError) -> Int in try stack.write(span, on: connection) }
            consumeOutput(written)
            if written == 0 { return }
        }
    }
}

/// One timer per connection for a driver: moved only when a deadline comes
/// earlier than the one scheduled (a later deadline is met by re-arming
/// when the timer fires), so a busy connection costs no timer churn.
struct ConnectionTimers {
    /// A connection's timer.
    struct Slot {
        var id: TimerID?
        var deadline: Instant?
    }

    private var owners: [TimerID: ConnectionID] = [:]

    /// Makes sure `slot` fires at or before `deadline`.
    mutating func arm(_ slot: inout Slot, at deadline: Instant, for connection: ConnectionID,
                      on scheduler: any TimerScheduler, handler: any TimerHandler) {
        if let scheduled = slot.deadline, scheduled <= deadline { return }
        cancel(&slot, on: scheduler)
        let id = scheduler.schedule(at: deadline, handler)
        slot = Slot(id: id, deadline: deadline)
        owners[id] = connection
    }

    /// Cancels `slot`'s timer, if any.
    mutating func cancel(_ slot: inout Slot, on scheduler: any TimerScheduler) {
        if let id = slot.id {
            scheduler.cancel(id)
            owners[id] = nil
        }
        slot = Slot()
    }

    /// The connection whose timer `id` fired; its slot is then empty
    /// (the caller clears it).
    mutating func fired(_ id: TimerID) -> ConnectionID? {
        owners.removeValue(forKey: id)
    }
}
