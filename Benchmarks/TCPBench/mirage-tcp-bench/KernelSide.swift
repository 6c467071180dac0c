import Glibc

/// The kernel's side of every measurement: plain blocking sockets, one
/// connection, 256 KiB per read or write (as iperf does), so the program
/// on the kernel side is the same whatever is on the other end.
enum KernelSide {
    /// Bytes per read(2) and write(2).
    static let chunk = 256 * 1024

    /// Listens on `address:port`, prints `listening …`, accepts one
    /// connection and reads until end of stream; timed from the first byte
    /// to the end of stream. Closes after end of stream, so the sender sees
    /// its close complete.
    static func sink(address: String, port: UInt16) throws(BenchFailure) -> ResultLine {
        let listener = try socketOrFail()
        defer { close(listener) }
        var yes: Int32 = 1
        _ = setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var local = try socketAddress(address, port)
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw failure("bind \(address):\(port)") }
        guard listen(listener, 1) == 0 else { throw failure("listen") }
        writeOut("listening \(address):\(port)")

        var connection: Int32
        repeat { connection = accept(listener, nil, nil) } while connection < 0 && errno == EINTR
        guard connection >= 0 else { throw failure("accept") }
        defer { close(connection) }

        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buffer.deallocate() }
        var total: UInt64 = 0
        var start: Snapshot?
        while true {
            let n = read(connection, buffer, chunk)
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("read after \(total) bytes")
            }
            if n == 0 { break }
            if start == nil { start = .now() }
            total += UInt64(n)
        }
        let end = Snapshot.now()
        return ResultLine(role: "kernel-sink", bytes: total, start: start ?? end, end: end,
                          threads: threadCount(), segments: nil, retransmissions: nil,
                          countsAllocations: allocationCounterWorks())
    }

    /// Connects to `address:port`, writes `bytes` bytes, half-closes and
    /// waits for the peer's close (so everything was read); timed from the
    /// completed connect to the peer's close.
    static func source(address: String, port: UInt16, bytes: UInt64) throws(BenchFailure) -> ResultLine {
        let fd = try socketOrFail()
        defer { close(fd) }
        var remote = try socketAddress(address, port)
        let connected = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw failure("connect \(address):\(port)") }
        let start = Snapshot.now()

        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buffer.deallocate() }
        // A pattern rather than zeros, in case a layer ever special-cases zeros.
        for i in 0..<chunk { buffer.storeBytes(of: UInt8(truncatingIfNeeded: i &* 31 &+ 7), toByteOffset: i, as: UInt8.self) }
        var remaining = bytes
        while remaining > 0 {
            let n = write(fd, buffer, Int(min(UInt64(chunk), remaining)))
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("write after \(bytes - remaining) bytes")
            }
            remaining -= UInt64(n)
        }
        guard shutdown(fd, Int32(SHUT_WR)) == 0 else { throw failure("shutdown") }
        // The sink sends nothing: read returns 0 once it has closed.
        while true {
            let n = read(fd, buffer, chunk)
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("waiting for the peer's close")
            }
            if n == 0 { break }
        }
        let end = Snapshot.now()
        return ResultLine(role: "kernel-source", bytes: bytes, start: start, end: end,
                          threads: threadCount(), segments: nil, retransmissions: nil,
                          countsAllocations: allocationCounterWorks())
    }

    private static func socketOrFail() throws(BenchFailure) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw failure("socket") }
        return fd
    }

    private static func socketAddress(_ address: String, _ port: UInt16) throws(BenchFailure) -> sockaddr_in {
        var result = sockaddr_in()
        result.sin_family = sa_family_t(AF_INET)
        result.sin_port = port.bigEndian
        guard inet_pton(AF_INET, address, &result.sin_addr) == 1 else {
            throw BenchFailure("not an IPv4 address: \(address)")
        }
        return result
    }

    private static func failure(_ what: String) -> BenchFailure {
        BenchFailure("\(what): \(String(cString: strerror(errno)))")
    }
}
