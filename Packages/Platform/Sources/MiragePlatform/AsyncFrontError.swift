import MirageDevices

/// Why an operation of the async front failed.
public enum AsyncStackError: Error, Equatable, Sendable {
    /// The stack refused the call (address in use, unknown handle, …).
    case device(DeviceError)
    /// The connection ended with this reason before the operation could
    /// complete (`normal` for a write after the connection finished).
    case closed(CloseReason)
    /// Another `read` (or `write`, or `accept`) is already waiting on the
    /// same connection (listener, socket): one waiter per direction.
    case busy
    /// The waiting task was cancelled.
    case cancelled
}
