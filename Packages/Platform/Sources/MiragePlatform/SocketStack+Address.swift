import Glibc
import MirageDevices

/// A socket address (`sockaddr_in` or `sockaddr_in6` in a `sockaddr_storage`)
/// converted from and to `Endpoint`. This and `SocketCalls` are the only
/// places where the socket stack casts pointers.
struct SocketAddress {
    var storage = sockaddr_storage()
    var length: socklen_t

    /// Room for any address, for `accept`, `recvmsg`, `getsockname`.
    init() {
        length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    }

    /// `endpoint` as a `sockaddr_in`, or as a `sockaddr_in6` when
    /// `family` is `AF_INET6` (an IPv4 address then becomes `::ffff:a.b.c.d`).
    init(_ endpoint: Endpoint, family: Int32) {
        self.init()
        switch (endpoint.address, family) {
        case (.v4(let v4), AF_INET):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = endpoint.port.bigEndian
            sin.sin_addr.s_addr = v4.rawValue.bigEndian
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            withUnsafeMutableBytes(of: &storage) { raw in raw.storeBytes(of: sin, as: sockaddr_in.self) }
        default:
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = endpoint.port.bigEndian
            let v6: IPv6Address
            switch endpoint.address {
            case .v6(let address): v6 = address
            case .v4(let address): v6 = IPv6Address(high: 0, low: 0x0000_FFFF_0000_0000 | UInt64(address.rawValue))
            }
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { raw in
                raw.storeBytes(of: v6.high.bigEndian, toByteOffset: 0, as: UInt64.self)
                raw.storeBytes(of: v6.low.bigEndian, toByteOffset: 8, as: UInt64.self)
            }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            withUnsafeMutableBytes(of: &storage) { raw in raw.storeBytes(of: sin6, as: sockaddr_in6.self) }
        }
    }

    /// The endpoint this address names; an IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`, from a dual-stack socket) is reported as IPv4.
    var endpoint: Endpoint? {
        withUnsafeBytes(of: storage) { raw -> Endpoint? in
            switch Int32(storage.ss_family) {
            case AF_INET:
                let sin = raw.loadUnaligned(as: sockaddr_in.self)
                return Endpoint(.v4(IPv4Address(rawValue: UInt32(bigEndian: sin.sin_addr.s_addr))), UInt16(bigEndian: sin.sin_port))
            case AF_INET6:
                let sin6 = raw.loadUnaligned(as: sockaddr_in6.self)
                let address = withUnsafeBytes(of: sin6.sin6_addr) { Self.address(fromIPv6Bytes: $0) }
                return Endpoint(address, UInt16(bigEndian: sin6.sin6_port))
            default:
                return nil
            }
        }
    }

    /// The address in 16 network-order bytes, unmapping `::ffff:a.b.c.d`.
    static func address(fromIPv6Bytes raw: UnsafeRawBufferPointer) -> IPAddress {
        let high = UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        let low = UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        if high == 0 && low >> 32 == 0x0000_FFFF {
            return .v4(IPv4Address(rawValue: UInt32(truncatingIfNeeded: low)))
        }
        return .v6(IPv6Address(high: high, low: low))
    }

    /// Calls `body` with the address as a `sockaddr` pointer and its length.
    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var storage = self.storage
        // sockaddr_storage is laid out to be viewed as any sockaddr.
        return withUnsafePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }

    /// Calls `body` with room for an address and its in-out length.
    mutating func withMutableSockaddr<R>(_ body: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> R) -> R {
        length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        var length = self.length
        let result = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, &length) }
        }
        self.length = length
        return result
    }
}

/// The socket calls of the socket stack, with EINTR retried a bounded number
/// of times and failures returned as an errno value.
enum SocketCalls {
    /// `socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)`.
    static func open(family: Int32, type: Int32) throws(DeviceError) -> Int32 {
        let fd = socket(family, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            let code = errno
            if code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM {
                throw .resourceExhausted("sockets (errno \(code))")
            }
            throw .system(call: "socket", errno: code)
        }
        return fd
    }

    /// `setsockopt` of an `Int32` value; the errno on failure.
    @discardableResult
    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) -> Int32 {
        var value = value
        let rc = setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
        return rc == 0 ? 0 : errno
    }

    /// SO_LINGER with a zero timeout, so that `close` sends RST and drops
    /// whatever is queued (RFC 9293 §3.10.7.1 ABORT).
    static func setLingerZero(_ fd: Int32) {
        var option = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
    }

    /// The pending error of a socket (SO_ERROR, cleared by reading it).
    static func pendingError(_ fd: Int32) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) == 0 else { return errno }
        return value
    }

    /// The local address of a socket.
    static func localEndpoint(_ fd: Int32) -> Endpoint? {
        var address = SocketAddress()
        let rc = address.withMutableSockaddr { getsockname(fd, $0, $1) }
        return rc == 0 ? address.endpoint : nil
    }

    /// The remote address of a connected socket; nil while not connected.
    static func remoteEndpoint(_ fd: Int32) -> Endpoint? {
        var address = SocketAddress()
        let rc = address.withMutableSockaddr { getpeername(fd, $0, $1) }
        return rc == 0 ? address.endpoint : nil
    }

    /// `bind`; the errno on failure.
    static func bind(_ fd: Int32, _ address: SocketAddress) -> Int32 {
        let rc = address.withSockaddr { Glibc.bind(fd, $0, $1) }
        return rc == 0 ? 0 : errno
    }

    /// `connect`; 0 or the errno (EINPROGRESS for a pending non-blocking connect).
    static func connect(_ fd: Int32, _ address: SocketAddress) -> Int32 {
        let rc = address.withSockaddr { Glibc.connect(fd, $0, $1) }
        if rc == 0 { return 0 }
        let code = errno
        // An interrupted connect goes on in the background, like EINPROGRESS.
        return code == EINTR ? EINPROGRESS : code
    }

    /// `accept4` with SOCK_NONBLOCK | SOCK_CLOEXEC: the descriptor and the
    /// peer's address, or the errno.
    static func accept(_ fd: Int32) -> (fd: Int32, peer: SocketAddress, errno: Int32) {
        var peer = SocketAddress()
        for _ in 0..<FileDescriptor.maximumInterruptedRetries {
            let client = peer.withMutableSockaddr { address, length -> Int32 in
                if let accept4 = Self.acceptWithFlags {
                    return accept4(fd, address, length, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
                }
                let client = Glibc.accept(fd, address, length)
                if client >= 0 {
                    _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                    _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
                }
                return client
            }
            if client >= 0 { return (client, peer, 0) }
            let code = errno
            if code != EINTR { return (-1, peer, code) }
        }
        return (-1, peer, EINTR)
    }

    private typealias Accept4 = @convention(c) (Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?, Int32) -> Int32

    /// glibc's `accept4`, which Swift does not import (it needs
    /// _GNU_SOURCE): one call that sets SOCK_NONBLOCK and SOCK_CLOEXEC, so a
    /// process spawned by another thread never inherits the descriptor.
    /// Nil only on a C library without it; then `accept` and `fcntl`.
    private static let acceptWithFlags: Accept4? = {
        guard let symbol = dlsym(nil, "accept4") else { return nil }
        return unsafeBitCast(symbol, to: Accept4.self)
    }()

    /// `send(fd, bytes, MSG_NOSIGNAL)`: bytes taken or `-errno`.
    static func send(_ fd: Int32, _ bytes: Span<UInt8>, count: Int) -> Int {
        bytes.withUnsafeBufferPointer { buffer -> Int in
            for _ in 0..<FileDescriptor.maximumInterruptedRetries {
                let n = Glibc.send(fd, buffer.baseAddress, min(count, buffer.count), Int32(MSG_NOSIGNAL))
                if n >= 0 { return n }
                let code = errno
                if code != EINTR { return -Int(code) }
            }
            return -Int(EINTR)
        }
    }

    /// `sendto(fd, bytes, destination)`: bytes sent or `-errno`.
    static func sendTo(_ fd: Int32, _ bytes: Span<UInt8>, _ destination: SocketAddress) -> Int {
        bytes.withUnsafeBufferPointer { buffer -> Int in
            destination.withSockaddr { address, length -> Int in
                for _ in 0..<FileDescriptor.maximumInterruptedRetries {
                    let n = sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL), address, length)
                    if n >= 0 { return n }
                    let code = errno
                    if code != EINTR { return -Int(code) }
                }
                return -Int(EINTR)
            }
        }
    }

    /// `recv(fd, into, count)`: bytes read (0 at end of stream) or `-errno`.
    static func receive(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        for _ in 0..<FileDescriptor.maximumInterruptedRetries {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n >= 0 { return n }
            let code = errno
            if code != EINTR { return -Int(code) }
        }
        return -Int(EINTR)
    }
}
