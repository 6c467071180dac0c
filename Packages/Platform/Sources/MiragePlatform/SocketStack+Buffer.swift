import Glibc
import MirageDevices

/// The socket stack's one receive buffer, shared by every connection and UDP
/// socket of the stack: each `recv`/`recvmsg` fills it and the handler gets a
/// borrowed `Span` of the bytes, so receiving allocates nothing.
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
    /// Room for the ancillary data of one datagram: one `in_pktinfo` or
    /// `in6_pktinfo` message with headers, with margin.
    static let controlCapacity = 256
    private let control: UnsafeMutableRawPointer

    /// A buffer of `capacity` bytes (at least one).
    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        base = .allocate(byteCount: self.capacity, alignment: 16)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: self.capacity)
        control = .allocate(byteCount: Self.controlCapacity, alignment: 16)
        control.initializeMemory(as: UInt8.self, repeating: 0, count: Self.controlCapacity)
    }

    deinit {
        base.deallocate()
        control.deallocate()
    }

    /// `recv` into the whole buffer: bytes read (0 at end of stream) or `-errno`.
    func receive(from fd: Int32) -> Int {
        SocketCalls.receive(fd, into: UnsafeMutableRawBufferPointer(start: base, count: capacity))
    }

    /// The outcome of one `recvmsg`.
    struct Datagram {
        /// Payload bytes now in the buffer.
        var count: Int
        /// The datagram did not fit and was cut (MSG_TRUNC).
        var truncated: Bool
        /// Who sent it.
        var source: SocketAddress
        /// The address it was sent to, from IP_PKTINFO / IPV6_PKTINFO.
        var destination: IPAddress?
    }

    /// `recvmsg` of one datagram with its source and destination address:
    /// the datagram, or the errno.
    func receiveDatagram(from fd: Int32) -> Result<Datagram, SocketErrno> {
        var source = SocketAddress()
        var vector = iovec(iov_base: base, iov_len: capacity)
        var flags: Int32 = 0
        var controlLength = 0
        var received = -Int(EINTR)
        withUnsafeMutablePointer(to: &vector) { vectorPointer in
            source.withMutableSockaddr { name, nameLength in
                for _ in 0..<FileDescriptor.maximumInterruptedRetries {
                    var message = msghdr()
                    message.msg_name = UnsafeMutableRawPointer(name)
                    message.msg_namelen = nameLength.pointee
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    message.msg_control = control
                    message.msg_controllen = Self.controlCapacity
                    let n = recvmsg(fd, &message, 0)
                    if n >= 0 {
                        nameLength.pointee = message.msg_namelen
                        flags = message.msg_flags
                        controlLength = min(message.msg_controllen, Self.controlCapacity)
                        received = n
                        return
                    }
                    let code = errno
                    received = -Int(code)
                    if code != EINTR { return }
                }
            }
        }
        guard received >= 0 else { return .failure(SocketErrno(code: Int32(truncatingIfNeeded: -received))) }
        return .success(Datagram(
            count: min(received, capacity),
            truncated: flags & Int32(MSG_TRUNC) != 0,
            source: source,
            destination: destinationAddress(controlLength: controlLength)))
    }

    /// Walks the control messages (`cmsghdr`s, each padded to the size of
    /// `size_t`, as CMSG_NXTHDR does) for the packet-info message.
    private func destinationAddress(controlLength: Int) -> IPAddress? {
        let raw = UnsafeRawBufferPointer(start: control, count: controlLength)
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

    /// Calls `body` with a borrowed view of the first `count` bytes.
    func withSpan<R>(count: Int, _ body: (Span<UInt8>) -> R) -> R {
        let bytes = UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self), count: min(max(count, 0), capacity))
        return body(bytes.span)
    }
}

/// An errno value, as the error of a `Result`.
struct SocketErrno: Error {
    /// The errno.
    var code: Int32
}
