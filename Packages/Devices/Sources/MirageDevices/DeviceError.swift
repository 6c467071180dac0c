/// The one error type of `MirageDevices`: failures reported by devices and
/// by stacks implementing the stack contract.
public enum DeviceError: Error, Equatable, Sendable {
    /// The device or socket cannot take more right now; a writable/ready
    /// event follows when it can.
    case wouldBlock
    /// A buffer of `requested` bytes was asked for but the device allows at most `limit`.
    case frameTooLarge(requested: Int, limit: Int)
    /// The device is closed or has failed and will not recover.
    case deviceClosed
    /// The local address and port are already bound.
    case addressInUse(Endpoint)
    /// The local address is not one of this stack's addresses.
    case addressNotAvailable(IPAddress)
    /// No route to the destination.
    case networkUnreachable(IPAddress)
    /// The handle names no open connection, listener or socket of this stack.
    case unknownHandle
    /// The connection can no longer send (shut down for writing, reset or closed).
    case notConnected
    /// A UDP datagram larger than the stack can send.
    case messageTooLarge(size: Int, limit: Int)
    /// A fixed table (connections, listeners, sockets, ephemeral ports) is full.
    case resourceExhausted(String)
    /// An argument outside its allowed range.
    case invalidArgument(String)
    /// A header the device put before a frame (a virtio-net header) is
    /// malformed or asks for something unsupported; the text says what.
    case malformedDeviceHeader(String)
    /// A key-value store has no entry with this key.
    case keyNotFound(String)
    /// A read past the end of a key-value entry.
    case outOfRange(offset: Int, length: Int, size: Int)
    /// Text that is not canonical padded base64 (RFC 4648 §4); `offset` is
    /// that of the first offending character, or the text's length when
    /// the length is not a multiple of 4.
    case invalidBase64(offset: Int)
    /// The stack or device does not implement this operation (yet); the
    /// text says which.
    case unsupported(String)
    /// An operating-system call failed (Linux backends only); `errno` and the call's name.
    case system(call: String, errno: Int32)
}
