import Foundation
import MirageDevices
import MirageEcho
import MiragePlatform
import MirageTestNetwork
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `MirageEcho` over `SocketStack` on a loop thread, against real kernel
/// sockets (the kernel's TCP is the peer), and the `mirage-echo` binary.
/// Everything stays on loopback; servers use kernel-chosen ports.
@Suite("mirage-echo over SocketStack (kernel clients, loopback)", .serialized)
struct EchoTests {
    typealias Server = LoopBound<EchoServer<SocketStack>>

    /// An echo server with every service on an ephemeral port of 127.0.0.1.
    private func startServer(backlog: Int = EchoConfiguration.defaultBacklog) throws -> (SocketTestLoop, Server) {
        let harness = try SocketTestLoop()
        let stack = try harness.makeStack()
        var configuration = EchoConfiguration.ephemeral(address: .v4(.loopback))
        configuration.backlog = backlog
        let server: Server = try harness.sync {
            let server = EchoServer(stack: stack.value, configuration: configuration)
            try server.start()
            return server
        }
        return (harness, server)
    }

    private func counters(_ harness: SocketTestLoop, _ server: Server) throws -> EchoCounters {
        try harness.sync { server.value.counters }
    }

    @Test("TCP echo of 10 MiB: every byte comes back, in order")
    func tcpEcho10MiB() throws {
        let (harness, server) = try startServer()
        defer { harness.shutdown() }
        let endpoint = try #require(try harness.sync { server.value.tcpEndpoint(.echo) })
        let data = pseudoRandomBytes(count: 10 << 20, seed: 0x1234)
        let client = try KernelSocket(connectingTo: endpoint)
        let writer = BackgroundWork {
            try client.sendAll(data)
            client.shutdownWrite()
        }
        var received: [UInt8] = []
        received.reserveCapacity(data.count)
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while received.count <= data.count {
            let n = try client.receive(into: &buffer)
            if n == 0 { break }
            received.append(contentsOf: buffer[0..<n])
        }
        try writer.join()
        #expect(received.count == data.count)
        #expect(received == data)
        client.close()
        #expect(try harness.waitUntil { server.value.counters.connectionsClosed == 1 })
        let counters = try counters(harness, server)
        #expect(counters.echoBytesReceived == UInt64(data.count))
        #expect(counters.echoBytesSent == UInt64(data.count))
        #expect(counters.closedNormal == 1)
    }

    @Test("TCP discard of 100 MiB: the server counts every byte")
    func tcpDiscard100MiB() throws {
        let (harness, server) = try startServer()
        defer { harness.shutdown() }
        let endpoint = try #require(try harness.sync { server.value.tcpEndpoint(.discard) })
        let chunk = pseudoRandomBytes(count: 1 << 20, seed: 7)
        let client = try KernelSocket(connectingTo: endpoint)
        for _ in 0..<100 { try client.sendAll(chunk) }
        client.shutdownWrite()
        // The server closes after our FIN: end of file, nothing sent back.
        var buffer = [UInt8](repeating: 0, count: 4096)
        #expect(try client.receive(into: &buffer) == 0)
        #expect(try harness.waitUntil { server.value.counters.connectionsClosed == 1 })
        let counters = try counters(harness, server)
        #expect(counters.discardBytes == 100 << 20)
        #expect(counters.closedNormal == 1)
        #expect(counters.endOfStreams == 1)
    }

    @Test("source: 10 MiB of the RFC 864 pattern, then the client closes")
    func source10MiB() throws {
        let (harness, server) = try startServer()
        defer { harness.shutdown() }
        let endpoint = try #require(try harness.sync { server.value.tcpEndpoint(.source) })
        let period = CharacterGenerator.period
        let readSize = 1 << 16
        let expected = CharacterGenerator.bytes(count: period + readSize)
        let client = try KernelSocket(connectingTo: endpoint)
        var buffer = [UInt8](repeating: 0, count: readSize)
        var position = 0
        var mismatches = 0
        let total = 10 << 20
        while position < total {
            let n = try client.receive(into: &buffer)
            guard n > 0 else { break }
            let offset = position % period
            let equal = buffer.withUnsafeBytes { got in
                expected.withUnsafeBytes { want in memcmp(got.baseAddress!, want.baseAddress! + offset, n) == 0 }
            }
            if !equal { mismatches += 1 }
            position += n
        }
        #expect(position >= total)
        #expect(mismatches == 0)
        // The first line as RFC 864 shows it.
        #expect(Array(expected[0..<74]) == Array((32...103).map { UInt8($0) }) + [13, 10])
        client.close()
        // The generator stops when the client goes (reset: it left unread data).
        #expect(try harness.waitUntil { server.value.counters.connectionsClosed == 1 })
        let counters = try counters(harness, server)
        #expect(counters.sourceBytesSent >= UInt64(total))
        #expect(counters.writeBoundHits == 0)
        #expect(try harness.sync { server.value.openConnections } == 0)
    }

    @Test("UDP echo of 1,000 datagrams: all come back, unchanged, from the echo port")
    func udpEcho1000() throws {
        let (harness, server) = try startServer()
        defer { harness.shutdown() }
        let endpoint = try #require(try harness.sync { server.value.udpEndpoint(.echo) })
        let client = try KernelSocket(udpFamilyOf: endpoint.address, timeoutSeconds: 1)
        var buffer = [UInt8](repeating: 0, count: 2048)
        var echoed = 0
        var retransmissions = 0
        for index in 0..<1000 {
            let payload = withUnsafeBytes(of: UInt32(index).bigEndian) { Array($0) }
                + pseudoRandomBytes(count: index % 1200, seed: UInt64(index))
            // Loopback should not drop; a lost datagram is sent again, at most 3 times.
            attempts: for attempt in 0..<3 {
                if attempt > 0 { retransmissions += 1 }
                try client.sendDatagram(payload, to: endpoint)
                while true {
                    let n: Int
                    do { n = try client.receive(into: &buffer) } catch { continue attempts }
                    guard n >= 4 else { continue }
                    let got = Array(buffer[0..<n])
                    if got == payload { echoed += 1; break attempts }
                    // A late duplicate of an earlier datagram: skip it.
                }
            }
        }
        #expect(echoed == 1000)
        #expect(retransmissions == 0)
        let counters = try counters(harness, server)
        #expect(counters.datagramsEchoed == 1000 + retransmissions)
    }

    @Test("200 concurrent TCP clients (async front on a second loop) each echo 8+ KiB")
    func concurrentClients() async throws {
        let (harness, server) = try startServer(backlog: 512)
        defer { harness.shutdown() }
        let endpoint = try #require(try harness.sync { server.value.tcpEndpoint(.echo) })
        let clients = try SocketTestLoop()
        defer { clients.shutdown() }
        let front = AsyncStack(stack: try clients.makeStack().value, loop: clients.loop)
        let loop = clients.loop
        let succeeded = try await withDeadline(seconds: 60) {
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<200 {
                    group.addTask(executorPreference: loop) {
                        var onLoop = loop.inLoopThread
                        let connection = try await front.connect(to: endpoint)
                        onLoop = onLoop && loop.inLoopThread
                        let payload = pseudoRandomBytes(count: 8192 + 37 * index, seed: UInt64(index))
                        try await connection.write(payload)
                        try await connection.shutdownWrite()
                        var echoed: [UInt8] = []
                        while let bytes = try await connection.read() {
                            echoed += bytes
                            onLoop = onLoop && loop.inLoopThread
                        }
                        let reason = try await connection.waitClosed()
                        return onLoop && loop.inLoopThread && echoed == payload && reason == .normal
                    }
                }
                var succeeded = 0
                for try await ok in group where ok { succeeded += 1 }
                return succeeded
            }
        }
        #expect(succeeded == 200)
        #expect(try harness.waitUntil { server.value.counters.connectionsClosed == 200 })
        let counters = try counters(harness, server)
        #expect(counters.connectionsAccepted == 200)
        #expect(counters.closedNormal == 200)
    }

    @Test("a client that resets mid-stream is seen as reset, not end of stream")
    func resetMidStream() throws {
        let (harness, server) = try startServer()
        defer { harness.shutdown() }
        let endpoint = try #require(try harness.sync { server.value.tcpEndpoint(.discard) })
        let client = try KernelSocket(connectingTo: endpoint)
        try client.sendAll(pseudoRandomBytes(count: 64 << 10, seed: 3))
        #expect(try harness.waitUntil { server.value.counters.discardBytes == 64 << 10 })
        client.resetClose()
        #expect(try harness.waitUntil { server.value.counters.connectionsClosed == 1 })
        let counters = try counters(harness, server)
        #expect(counters.closedReset == 1)
        #expect(counters.endOfStreams == 0)
    }

    @Test("echo back-pressure: a client that stops reading pauses the server, then all arrives")
    func echoBackPressure() throws {
        let (harness, server) = try startServer()
        defer { harness.shutdown() }
        let endpoint = try #require(try harness.sync { server.value.tcpEndpoint(.echo) })
        let client = try KernelSocket(connectingTo: endpoint)
        client.setNonBlocking()
        // Write without reading until the kernel refuses: the server must
        // have paused (its replies fill our receive buffer), so this ends.
        let chunk = pseudoRandomBytes(count: 1 << 16, seed: 9)
        var sent = 0
        var refusals = 0
        while sent < 512 << 20 && refusals < 20 {
            let n = client.trySend(chunk)
            if n > 0 {
                sent += n
                refusals = 0
            } else {
                refusals += 1
                usleep(5_000)
            }
        }
        #expect(refusals >= 20, "the server never pushed back after \(sent) bytes")
        let held = try counters(harness, server)
        #expect(held.echoBytesReceived < UInt64(sent))
        // Now read everything back.
        client.shutdownWrite()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var received = 0
        var failures = 0
        while failures < 2000 {
            let n = recv(client.fd, &buffer, buffer.count, 0)
            if n > 0 { received += n; failures = 0; continue }
            if n == 0 { break }
            failures += 1
            usleep(1_000)
        }
        #expect(received == sent)
    }

    @Test("the mirage-echo binary serves on --port-base and stops cleanly on SIGTERM",
          .enabled(if: EchoBinary.path != nil || TestEnvironment.isCI, "mirage-echo is not built next to the tests"))
    func binary() throws {
        guard let path = EchoBinary.path else {
            Issue.record("CI=true but mirage-echo was not found next to the test bundle")
            return
        }
        let base = try freePortBase()
        let process = try SpawnedProcess([path, "--port-base", "\(base)"])
        defer { process.terminate() }
        try process.waitForOutput(containing: "source on 127.0.0.1:\(base + 19) (tcp)", timeout: 20)
        let output = process.output().stdout
        #expect(output.contains("echo on 127.0.0.1:\(base + 7) (tcp, udp)"))
        #expect(output.contains("discard on 127.0.0.1:\(base + 9) (tcp, udp)"))

        let echo = Endpoint(.v4(.loopback), base + 7)
        let message = Array("hello, mirage".utf8)
        let client = try KernelSocket(connectingTo: echo)
        try client.sendAll(message)
        client.shutdownWrite()
        var buffer = [UInt8](repeating: 0, count: 256)
        var got: [UInt8] = []
        for _ in 0..<100 {
            let n = try client.receive(into: &buffer)
            if n == 0 { break }
            got += buffer[0..<n]
        }
        #expect(got == message)
        client.close()

        let udp = try KernelSocket(udpFamilyOf: echo.address, timeoutSeconds: 2)
        try udp.sendDatagram(message, to: echo)
        let n = try udp.receive(into: &buffer)
        #expect(Array(buffer[0..<n]) == message)

        let status = process.terminate(grace: 5)
        #expect(status == 0)
        #expect(process.output().stdout.contains("stopped by signal 15"))
    }

    @Test("mirage-echo rejects bad options with a precise message and a non-zero status",
          .enabled(if: EchoBinary.path != nil || TestEnvironment.isCI, "mirage-echo is not built next to the tests"),
          arguments: [
              (["--net", "tap", "--tap", "bad/name"], "interface name"),
              (["--ipv4", "10.0.0.2"], "needs a prefix length"),
              (["--ipv4", "10.0.0.256/24"], "is not an IPv4 address"),
              (["--ipv4", "10.0.0.2/33"], "is not a prefix length"),
              (["--ipv4", "10.0.0.2/24", "--ipv4-gateway", "10.0.1.1"], "is not on the network"),
              (["--ipv4-gateway", "10.0.0.1"], "--ipv4-gateway needs --ipv4"),
              (["--dhcp", "--ipv4", "10.0.0.2/24"], "cannot be used together"),
              (["--tap", "tap0"], "--tap needs --net tap"),
              (["--port-base", "65520"], "past 65535"),
              (["--net", "wifi"], "wifi"),
              (["--fault-drop", "5"], "--fault-drop needs --net tap"),
              (["--net", "tap", "--fault-duplicate", "101"], "'101' is not a percentage"),
              (["--net", "tap", "--fault-reorder", "x"], "'x' is not a percentage"),
              (["--net", "tap", "--fault-delay", "20000"], "'20000' is not a time in milliseconds"),
              (["--net", "tap", "--fault-seed", "3"], "--fault-seed needs a fault to inject"),
              (["--net", "tap", "--fault-direction", "receive"], "--fault-direction needs a fault to inject"),
          ])
    func binaryRejectsBadOptions(arguments: [String], message: String) throws {
        guard let path = EchoBinary.path else {
            Issue.record("CI=true but mirage-echo was not found next to the test bundle")
            return
        }
        let result = try runCommand([path] + arguments, timeout: 20)
        #expect(result.status != 0)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }
}

// MARK: - Helpers

/// Where `mirage-echo` was built: beside the test bundle (works with any
/// `--scratch-path`), else in the package's default `.build` folders.
enum EchoBinary {
    static let path: String? = ExampleBinary.path("mirage-echo")
}

/// The example programs, found next to the test binary or in the
/// package's build folders.
enum ExampleBinary {
    static func path(_ name: String) -> String? {
        var directories: [String] = []
        if let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            directories.append((executable as NSString).deletingLastPathComponent)
        }
        if let first = CommandLine.arguments.first {
            directories.append((first as NSString).deletingLastPathComponent)
        }
        directories.append(packageRoot + "/.build/debug")
        directories.append(packageRoot + "/.build/release")
        for directory in directories {
            let candidate = directory + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Tests/InteropTests/EchoTests.swift → the package root.
    static let packageRoot: String = {
        let tests = ((#filePath as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
        return (tests as NSString).deletingLastPathComponent
    }()
}

/// A base for `--port-base` whose echo, discard and source ports are free
/// on 127.0.0.1 for TCP and UDP now (below the kernel's ephemeral range).
func freePortBase() throws -> UInt16 {
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<50 {
        let base = UInt16.random(in: 20_000...30_000, using: &generator)
        var free = true
        for offset: UInt16 in [7, 9, 19] {
            for type in [SOCK_STREAM, SOCK_DGRAM] where free {
                let fd = socket(AF_INET, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                guard fd >= 0 else { continue }
                var one: Int32 = 1
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
                let rc = KernelAddress(Endpoint(.v4(.loopback), base + offset)).withSockaddr { bind(fd, $0, $1) }
                if rc != 0 { free = false }
                Glibc.close(fd)
            }
        }
        if free { return base }
    }
    throw SocketTestError.timedOut("no free port base found in 50 tries")
}

/// Deterministic bytes (xorshift64*), generated a word at a time.
func pseudoRandomBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    var bytes = [UInt8](repeating: 0, count: count)
    bytes.withUnsafeMutableBytes { raw in
        var offset = 0
        while offset < raw.count {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            let word = (state &* 0x2545_F491_4F6C_DD1D).littleEndian
            withUnsafeBytes(of: word) { wordBytes in
                let n = min(8, raw.count - offset)
                for i in 0..<n { raw[offset + i] = wordBytes[i] }
            }
            offset += 8
        }
    }
    return bytes
}

/// Work on a thread of its own; `join` waits for it (bounded) and rethrows.
final class BackgroundWork: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let failure = LockedValue<(any Error)?>(nil)

    init(_ body: @escaping @Sendable () throws -> Void) {
        let done = self.done
        let failure = self.failure
        Thread {
            do { try body() } catch { failure.set(error) }
            done.signal()
        }.start()
    }

    func join(timeout: Double = 60) throws {
        guard done.wait(timeout: .now() + timeout) == .success else {
            throw SocketTestError.timedOut("background work still running after \(timeout) s")
        }
        if let error = failure.get() { throw error }
    }
}

/// Runs `body`, cancelling it after `seconds` (the async front's waits are
/// cancellable, so it then ends with `cancelled`).
func withDeadline<T: Sendable>(seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw SocketTestError.timedOut("not done after \(seconds) s")
        }
        return value
    }
}
