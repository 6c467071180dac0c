import CMiragePlatform
import Glibc
import MirageDevices

/// The socket stack's UDP send batch: datagrams sent from inside a receive
/// batch are copied here and written together with `sendmmsg` (through the
/// C shim) once the batch has been delivered, as NSD does.
///
/// A fixed arena of `SocketStack.sendBatchByteCapacity` payload bytes and
/// `SocketStack.sendBatchDatagramLimit` datagrams, allocated once (at the
/// stack's first `bindUDP`) and freed in `deinit`. Audited: `append` copies
/// a payload only after `fits` said it fits, so every copy stays inside the
/// arena; the kernel reads the datagrams only during `flush`, which leaves
/// the batch empty.
final class DatagramSendBatch {
    /// Payload bytes the arena holds.
    let byteCapacity: Int
    /// Datagrams the batch holds.
    let datagramLimit: Int
    private let payloads: UnsafeMutableRawPointer
    private let names: UnsafeMutablePointer<sockaddr_storage>
    private let entries: UnsafeMutablePointer<mirage_datagram>
    /// The descriptor each queued datagram goes out on.
    private let descriptors: UnsafeMutablePointer<Int32>
    /// One descriptor's datagrams, gathered for one `sendmmsg`.
    private let group: UnsafeMutablePointer<mirage_datagram>
    /// Datagrams queued.
    private(set) var count = 0
    /// Payload bytes queued.
    private(set) var bytesUsed = 0

    /// What one flush did.
    struct Outcome {
        /// `sendmmsg` calls made.
        var calls = 0
        /// Datagrams the kernel took.
        var sent = 0
        /// Datagrams the kernel refused; they are dropped.
        var failed = 0
    }

    /// An empty batch of `datagramLimit` datagrams (1 to the shim's batch
    /// limit) and `byteCapacity` payload bytes (at least one).
    init(datagramLimit: Int, byteCapacity: Int) {
        self.datagramLimit = min(max(datagramLimit, 1), Int(MIRAGE_DATAGRAM_BATCH_MAX))
        self.byteCapacity = max(byteCapacity, 1)
        payloads = .allocate(byteCount: self.byteCapacity, alignment: 16)
        payloads.initializeMemory(as: UInt8.self, repeating: 0, count: self.byteCapacity)
        names = .allocate(capacity: self.datagramLimit)
        names.initialize(repeating: sockaddr_storage(), count: self.datagramLimit)
        entries = .allocate(capacity: self.datagramLimit)
        entries.initialize(repeating: mirage_datagram(), count: self.datagramLimit)
        descriptors = .allocate(capacity: self.datagramLimit)
        descriptors.initialize(repeating: -1, count: self.datagramLimit)
        group = .allocate(capacity: self.datagramLimit)
        group.initialize(repeating: mirage_datagram(), count: self.datagramLimit)
    }

    deinit {
        payloads.deallocate()
        names.deinitialize(count: datagramLimit)
        names.deallocate()
        entries.deinitialize(count: datagramLimit)
        entries.deallocate()
        descriptors.deinitialize(count: datagramLimit)
        descriptors.deallocate()
        group.deinitialize(count: datagramLimit)
        group.deallocate()
    }

    /// Whether a datagram of `length` bytes fits beside those queued.
    func fits(_ length: Int) -> Bool {
        count < datagramLimit && length >= 0 && length <= byteCapacity - bytesUsed
    }

    /// Copies `payload` for `destination` on `fd` into the batch; false
    /// (and nothing queued) when it does not fit.
    func append(_ payload: Span<UInt8>, to destination: SocketAddress, on fd: Int32) -> Bool {
        guard fits(payload.count) else { return false }
        let start = payloads + bytesUsed
        payload.withUnsafeBytes { bytes in
            if let base = bytes.baseAddress { start.copyMemory(from: base, byteCount: bytes.count) }
        }
        names[count] = destination.storage
        entries[count] = mirage_datagram(
            data: start, data_length: payload.count,
            name: UnsafeMutableRawPointer(names + count), name_length: UInt32(destination.length),
            control: nil, control_length: 0, length: 0, flags: 0)
        descriptors[count] = fd
        count += 1
        bytesUsed += payload.count
        return true
    }

    /// Sends everything queued and empties the batch: one descriptor at a
    /// time (in the order each first appears), its datagrams in the order
    /// they were queued, as few `sendmmsg` calls as the kernel allows. A
    /// datagram the kernel refuses is counted and dropped, never retried;
    /// when the socket is full (EAGAIN, ENOBUFS) the rest of that
    /// descriptor's datagrams are dropped with it.
    func flush() -> Outcome {
        var outcome = Outcome()
        // Each pass sends one descriptor's datagrams and marks them done
        // (-1), so there are at most `count` passes.
        for first in 0..<count where descriptors[first] >= 0 {
            let fd = descriptors[first]
            var members = 0
            for index in first..<count where descriptors[index] == fd {
                group[members] = entries[index]
                members += 1
                descriptors[index] = -1
            }
            send(fd, members, &outcome)
        }
        count = 0
        bytesUsed = 0
        return outcome
    }

    /// `sendmmsg` of the first `members` datagrams of `group` on `fd`.
    private func send(_ fd: Int32, _ members: Int, _ outcome: inout Outcome) {
        var offset = 0
        // Each call sends at least one datagram or drops at least one.
        while offset < members {
            let result = Int(mirage_send_datagrams(fd, group + offset, UInt32(members - offset)))
            outcome.calls += 1
            if result > 0 {
                let taken = min(result, members - offset)
                outcome.sent += taken
                offset += taken
                continue
            }
            let code = Int32(truncatingIfNeeded: -result)
            if code == EAGAIN || code == EWOULDBLOCK || code == ENOBUFS {
                outcome.failed += members - offset
                return
            }
            // ECONNREFUSED (an earlier datagram's ICMP error), EMSGSIZE,
            // unreachable networks: this datagram only.
            outcome.failed += 1
            offset += 1
        }
    }
}
