import CMiragePlatform
import Glibc
import MirageDevices

/// The socket stack's one TCP receive buffer, shared by every connection of
/// the stack: each `recv` fills it and the handler gets a borrowed `Span` of
/// the bytes, so receiving allocates nothing.
///
/// The audited raw-pointer code of the socket stack: storage is allocated
/// once and freed in `deinit`; every view is bounded by the count the kernel
/// returned (never above `capacity`) and lives only for the closure it is
/// given to. Events are never delivered re-entrantly, so no second receive
/// can overwrite bytes a handler is still looking at.
final class SocketReceiveBuffer {
    /// Size of the data buffer in bytes.
    let capacity: Int
    private let base: UnsafeMutableRawPointer

    /// A buffer of `capacity` bytes (at least one).
    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        base = .allocate(byteCount: self.capacity, alignment: 16)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: self.capacity)
    }

    deinit {
        base.deallocate()
    }

    /// `recv` into the whole buffer: bytes read (0 at end of stream) or `-errno`.
    func receive(from fd: Int32) -> Int {
        SocketCalls.receive(fd, into: UnsafeMutableRawBufferPointer(start: base, count: capacity))
    }

    /// Calls `body` with a borrowed view of the first `count` bytes.
    func withSpan<R>(count: Int, _ body: (Span<UInt8>) -> R) -> R {
        let bytes = UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self), count: min(max(count, 0), capacity))
        return body(bytes.span)
    }
}

/// The socket stack's UDP receive arena: `slotCount` slots of `slotSize`
/// payload bytes, each with room for a source address and its ancillary
/// data, filled by one `recvmmsg` per batch (through the C shim). Handlers
/// get a borrowed `Span` of one slot, so receiving allocates nothing.
///
/// Audited like `SocketReceiveBuffer`: all storage is allocated once (at
/// the stack's first `bindUDP`) and freed in `deinit`; the payload arena is
/// bound to `UInt8` but not zeroed (a slot's pages are touched only when
/// the kernel writes a datagram there), and only bytes the kernel reported
/// writing are ever viewed: a slot's view is bounded by the length of the
/// last receive (never above `slotSize`), an address by the length the
/// kernel returned (never above `sockaddr_storage`), ancillary data likewise
/// (never above `controlCapacity`). Views live only for the closure they are
/// given to, and the next batch is received only after the handlers of
/// this one have returned.
final class DatagramReceiveBatch {
    /// Datagrams one receive takes at most.
    let slotCount: Int
    /// Payload room per datagram; longer datagrams come back truncated.
    let slotSize: Int
    /// Room for the ancillary data of one datagram: one `in_pktinfo` or
    /// `in6_pktinfo` message with headers, with margin.
    static let controlCapacity = 256
    private let payloads: UnsafeMutableRawPointer
    private let names: UnsafeMutablePointer<sockaddr_storage>
    private let controls: UnsafeMutableRawPointer
    private let entries: UnsafeMutablePointer<mirage_datagram>
    /// Datagrams the last `receive` returned.
    private(set) var count = 0

    /// An arena of `slotCount` slots (1 to the shim's batch limit) of
    /// `slotSize` bytes (at least one).
    init(slotCount: Int, slotSize: Int) {
        self.slotCount = min(max(slotCount, 1), Int(MIRAGE_DATAGRAM_BATCH_MAX))
        self.slotSize = max(slotSize, 1)
        payloads = .allocate(byteCount: self.slotCount * self.slotSize, alignment: 16)
        payloads.bindMemory(to: UInt8.self, capacity: self.slotCount * self.slotSize)
        names = .allocate(capacity: self.slotCount)
        names.initialize(repeating: sockaddr_storage(), count: self.slotCount)
        controls = .allocate(byteCount: self.slotCount * Self.controlCapacity, alignment: 16)
        controls.initializeMemory(as: UInt8.self, repeating: 0, count: self.slotCount * Self.controlCapacity)
        entries = .allocate(capacity: self.slotCount)
        entries.initialize(repeating: mirage_datagram(), count: self.slotCount)
    }

    deinit {
        payloads.deallocate()
        names.deinitialize(count: slotCount)
        names.deallocate()
        controls.deallocate()
        entries.deinitialize(count: slotCount)
        entries.deallocate()
    }

    /// One `recvmmsg` of up to `limit` datagrams (at most `slotCount`):
    /// how many arrived (at least one), or `-errno` (`-EAGAIN`: none).
    func receive(from fd: Int32, limit: Int) -> Int {
        count = 0
        let wanted = min(max(limit, 1), slotCount)
        for index in 0..<wanted {
            // The in-out fields are reset: the last call overwrote them.
            entries[index] = mirage_datagram(
                data: payloads + index * slotSize, data_length: slotSize,
                name: UnsafeMutableRawPointer(names + index),
                name_length: UInt32(MemoryLayout<sockaddr_storage>.size),
                control: controls + index * Self.controlCapacity, control_length: Self.controlCapacity,
                length: 0, flags: 0)
        }
        let received = Int(mirage_receive_datagrams(fd, entries, UInt32(wanted)))
        if received > 0 { count = min(received, wanted) }
        return received
    }

    /// What the kernel reported about one datagram of the last receive.
    struct Datagram {
        /// Payload bytes in the slot.
        var count: Int
        /// The datagram did not fit its slot and was cut (MSG_TRUNC).
        var truncated: Bool
        /// Who sent it.
        var source: SocketAddress
        /// The address it was sent to, from IP_PKTINFO / IPV6_PKTINFO.
        var destination: IPAddress?
    }

    /// Datagram `index` (below `count`) of the last receive.
    func datagram(at index: Int) -> Datagram {
        let entry = entries[index]
        var source = SocketAddress()
        source.storage = names[index]
        source.length = min(entry.name_length, UInt32(MemoryLayout<sockaddr_storage>.size))
        let control = UnsafeRawBufferPointer(
            start: controls + index * Self.controlCapacity, count: min(entry.control_length, Self.controlCapacity))
        return Datagram(
            count: min(entry.length, slotSize),
            truncated: entry.flags & Int32(MSG_TRUNC) != 0,
            source: source,
            destination: Self.destinationAddress(in: control))
    }

    /// Calls `body` with a borrowed view of the first `count` bytes of slot `index`.
    func withSpan<R>(at index: Int, count: Int, _ body: (Span<UInt8>) -> R) -> R {
        let start = (payloads + min(max(index, 0), slotCount - 1) * slotSize).assumingMemoryBound(to: UInt8.self)
        let bytes = UnsafeBufferPointer(start: start, count: min(max(count, 0), slotSize))
        return body(bytes.span)
    }

    /// Walks the control messages (`cmsghdr`s, each padded to the size of
    /// `size_t`, as CMSG_NXTHDR does) for the packet-info message.
    static func destinationAddress(in raw: UnsafeRawBufferPointer) -> IPAddress? {
        let headerSize = MemoryLayout<cmsghdr>.size
        let alignment = MemoryLayout<Int>.size
        var offset = 0
        var found: IPAddress?
        while offset + headerSize <= raw.count {
            let header = raw.loadUnaligned(fromByteOffset: offset, as: cmsghdr.self)
            let length = Int(header.cmsg_len)
            guard length >= headerSize, length <= raw.count - offset else { break }
            let data = UnsafeRawBufferPointer(rebasing: raw[(offset + headerSize)..<(offset + length)])
            if header.cmsg_level == Int32(IPPROTO_IP) && header.cmsg_type == Int32(IP_PKTINFO),
               data.count >= MemoryLayout<in_pktinfo>.size {
                let info = data.loadUnaligned(as: in_pktinfo.self)
                found = .v4(IPv4Address(rawValue: UInt32(bigEndian: info.ipi_addr.s_addr)))
            } else if header.cmsg_level == Int32(IPPROTO_IPV6) && header.cmsg_type == Int32(IPV6_PKTINFO),
                      data.count >= 16 {
                // struct in6_pktinfo { struct in6_addr ipi6_addr; unsigned ipi6_ifindex; }
                found = SocketAddress.address(fromIPv6Bytes: UnsafeRawBufferPointer(rebasing: data[0..<16]))
            }
            let padded = (length + alignment - 1) / alignment * alignment
            offset += padded
        }
        return found
    }
}
