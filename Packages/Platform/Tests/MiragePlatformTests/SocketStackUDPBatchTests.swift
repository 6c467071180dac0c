import Glibc
import MirageDevices
import Testing

@testable import MiragePlatform

// SocketStack's batched UDP path against the kernel over loopback only: a
// receive batch is one recvmmsg, the sends its handlers make are one
// sendmmsg after it. The loop runs on the test thread; the kernel client's
// datagrams are queued before the loop runs, so the batches are those the
// kernel hands out.

@Suite("SocketStack UDP batches (kernel sockets, loopback)", .serialized)
struct SocketStackUDPBatchTests {
    /// Where the stack binds and which loopback address the client uses.
    struct Binding: Sendable, CustomTestStringConvertible {
        var bind: IPAddress?
        var client: IPAddress
        var testDescription: String { "bind \(bind.map { "\($0)" } ?? "wildcard"), client \(client)" }
    }

    static let bindings: [Binding] = [
        Binding(bind: .v4(.loopback), client: .v4(.loopback)),
        Binding(bind: .v6(.loopback), client: .v6(.loopback)),
        Binding(bind: nil, client: .v4(.loopback)),
        Binding(bind: nil, client: .v6(.loopback)),
    ]

    @Test("a burst of 200 datagrams echoed from inside the receive event comes back in order, byte-exact, in batches",
          arguments: bindings)
    func echoBurst(binding: Binding) throws {
        let count = 200
        let fixture = try UDPFixture(bind: binding.bind, client: binding.client)
        defer { fixture.close() }
        fixture.handler.onDatagram = { (stack, payload, source, socket) throws(DeviceError) in
            try stack.send(payload.span, to: source, from: socket)
        }
        let burst = (0..<count).map { datagramPayload(index: $0, length: 1 + ($0 * 37) % 300) }
        for payload in burst { try fixture.client.send(payload, to: fixture.target) }

        try fixture.run(until: count)

        let handler = fixture.handler
        #expect(handler.payloads == burst)
        #expect(handler.sources.allSatisfy { $0 == fixture.client.local })
        #expect(handler.destinations.allSatisfy { $0 == fixture.target })
        #expect(handler.errors.isEmpty)
        var echoed: [[UInt8]] = []
        for _ in 0..<count {
            guard let reply = try fixture.client.receive() else { break }
            echoed.append(reply)
        }
        #expect(echoed == burst)
        let counters = fixture.stack.counters
        #expect(counters.datagramsReceived == count)
        #expect(counters.datagramReceiveCalls <= count / 8, "\(counters.datagramReceiveCalls) receive calls")
        #expect(counters.datagramSendCalls <= count / 8, "\(counters.datagramSendCalls) send calls")
        #expect(counters.datagramsSentInBatches == count)
        #expect(counters.datagramsSendFailedAfterBatch == 0)
        #expect(counters.datagramsTruncated == 0 && counters.datagramReceiveErrors == 0)
    }

    @Test("a datagram longer than datagramBufferSize is dropped and counted; the rest of its batch arrives in order")
    func truncated() throws {
        var configuration = SocketStack.Configuration()
        configuration.datagramBufferSize = 100
        let fixture = try UDPFixture(bind: .v4(.loopback), client: .v4(.loopback), configuration: configuration)
        defer { fixture.close() }
        let sizes = [50, 150, 100, 101, 10, 65_000, 1]
        let sent = sizes.enumerated().map { datagramPayload(index: $0.offset, length: $0.element) }
        for payload in sent { try fixture.client.send(payload, to: fixture.target) }

        let kept = sent.filter { $0.count <= 100 }
        try fixture.run(until: kept.count)
        // Let the loop look once more: nothing else may come.
        try fixture.stack.loop.run(until: fixture.stack.loop.now() + .milliseconds(20))

        #expect(fixture.handler.payloads == kept)
        #expect(fixture.stack.counters.datagramsTruncated == 3)
        #expect(fixture.stack.counters.datagramsReceived == sizes.count)
        #expect(fixture.stack.counters.datagramReceiveCalls <= 2)
    }

    @Test("a send outside a receive event goes out at once and throws the kernel's refusal")
    func sendOutsideBatchIsImmediate() throws {
        let fixture = try UDPFixture(bind: .v4(.loopback), client: .v4(.loopback))
        defer { fixture.close() }
        let payload = datagramPayload(index: 1, length: 40)
        // Called directly, as a timer or async code would: the loop does not run.
        try fixture.stack.send(payload.span, to: fixture.client.local, from: fixture.socket)
        #expect(fixture.client.receiveNow() == payload)
        #expect(fixture.stack.counters.datagramSendCalls == 0)
        // The limited broadcast without SO_BROADCAST: the kernel refuses
        // (EACCES) before anything leaves the host.
        #expect(throws: DeviceError.system(call: "sendto", errno: EACCES)) {
            try fixture.stack.send(payload.span, to: Endpoint(.v4(IPv4Address(255, 255, 255, 255)), 9), from: fixture.socket)
        }

        // From a timer: at once as well.
        let stack = fixture.stack
        let client = fixture.client.local
        let socket = fixture.socket
        var arrivedInTimer: [UInt8]?
        _ = stack.loop.schedule(at: stack.loop.now(), TimerAction { _, _ in
            try? stack.send(payload.span, to: client, from: socket)
            arrivedInTimer = fixture.client.receiveNow()
            stack.loop.stop()
        })
        try stack.loop.run(until: stack.loop.now() + loopTimeLimit)
        #expect(arrivedInTimer == payload)
        #expect(stack.counters.datagramSendCalls == 0)
    }

    @Test("inside a receive event, send still throws unknown handles, port 0, wrong families and oversize at once")
    func validationInsideBatch() throws {
        let fixture = try UDPFixture(bind: .v4(.loopback), client: .v4(.loopback))
        defer { fixture.close() }
        let v6 = Endpoint(.v6(.loopback), 9)
        let oversize = [UInt8](repeating: 0, count: SocketStack.maximumIPv4DatagramSize + 1)
        var errors: [DeviceError] = []
        fixture.handler.onDatagram = { (stack, payload, source, socket) throws(DeviceError) in
            do throws(DeviceError) {
                try stack.send(payload.span, to: source, from: UDPSocketID(rawValue: 999_999))
            } catch { errors.append(error) }
            do throws(DeviceError) {
                try stack.send(payload.span, to: Endpoint(source.address, 0), from: socket)
            } catch { errors.append(error) }
            do throws(DeviceError) { try stack.send(payload.span, to: v6, from: socket) } catch { errors.append(error) }
            do throws(DeviceError) { try stack.send(oversize.span, to: source, from: socket) } catch { errors.append(error) }
            try stack.send(payload.span, to: source, from: socket)
        }
        let payload = datagramPayload(index: 7, length: 20)
        try fixture.client.send(payload, to: fixture.target)
        try fixture.run(until: 1)

        #expect(fixture.handler.errors.isEmpty)
        #expect(errors.count == 4)
        #expect(errors.first == .unknownHandle)
        if errors.count == 4 {
            #expect({ if case .invalidArgument = errors[1] { true } else { false } }())
            #expect({ if case .invalidArgument = errors[2] { true } else { false } }())
            #expect(errors[3] == .messageTooLarge(size: oversize.count, limit: SocketStack.maximumIPv4DatagramSize))
        }
        #expect(try fixture.client.receive() == payload)
        #expect(fixture.stack.counters.datagramsSentInBatches == 1)
        #expect(fixture.stack.counters.datagramsSendFailedAfterBatch == 0)
    }

    /// Replies one received datagram makes, and the `sendmmsg` calls they take.
    struct FullBatch: Sendable, CustomTestStringConvertible {
        var replies: Int
        var size: Int
        var calls: Int
        var testDescription: String { "\(replies) replies of \(size) bytes: \(calls) sendmmsg" }
    }

    @Test("a full send batch is written early, in order; the rest after the receive batch",
          arguments: [
            // 64 datagrams fill the batch: the 65th writes them first.
            FullBatch(replies: 100, size: 200, calls: 2),
            // 2 × 30,000 bytes leave no room for a third.
            FullBatch(replies: 3, size: 30_000, calls: 2),
            // Exactly 64 × 1 KiB = 64 KiB: fits, one call.
            FullBatch(replies: 64, size: 1024, calls: 1),
            FullBatch(replies: 1, size: SocketStack.maximumIPv4DatagramSize, calls: 1),
          ])
    func fullBatchFlushesEarly(batch: FullBatch) throws {
        let fixture = try UDPFixture(bind: .v4(.loopback), client: .v4(.loopback))
        defer { fixture.close() }
        let replies = (0..<batch.replies).map { datagramPayload(index: $0, length: batch.size) }
        fixture.handler.onDatagram = { (stack, _, source, socket) throws(DeviceError) in
            for reply in replies { try stack.send(reply.span, to: source, from: socket) }
        }
        try fixture.client.send([1], to: fixture.target)
        try fixture.run(until: 1)

        var got: [[UInt8]] = []
        for _ in 0..<batch.replies {
            guard let reply = try fixture.client.receive() else { break }
            got.append(reply)
        }
        #expect(got == replies)
        #expect(fixture.stack.counters.datagramSendCalls == batch.calls)
        #expect(fixture.stack.counters.datagramsSentInBatches == batch.replies)
        #expect(fixture.handler.errors.isEmpty)
    }

    @Test("a datagram the kernel refuses when the batch is written is counted and dropped; the others go out in order")
    func refusedAtFlush() throws {
        let fixture = try UDPFixture(bind: .v4(.loopback), client: .v4(.loopback))
        defer { fixture.close() }
        let first = datagramPayload(index: 1, length: 30)
        let last = datagramPayload(index: 2, length: 30)
        // The limited broadcast without SO_BROADCAST passes the stack's
        // checks, and the kernel refuses it (EACCES) without sending.
        let broadcast = Endpoint(.v4(IPv4Address(255, 255, 255, 255)), 9)
        fixture.handler.onDatagram = { (stack, _, source, socket) throws(DeviceError) in
            try stack.send(first.span, to: source, from: socket)
            try stack.send(first.span, to: broadcast, from: socket)
            try stack.send(last.span, to: source, from: socket)
        }
        try fixture.client.send([0], to: fixture.target)
        try fixture.run(until: 1)

        #expect(fixture.handler.errors.isEmpty)
        #expect(try fixture.client.receive() == first)
        #expect(try fixture.client.receive() == last)
        let counters = fixture.stack.counters
        #expect(counters.datagramsSendFailedAfterBatch == 1)
        #expect(counters.datagramsSentInBatches == 2)
        // One call sends the first and stops at the refused one, which the
        // next call reports; a third sends the last.
        #expect(counters.datagramSendCalls == 3)
    }

    @Test("sends on two sockets from one batch each reach their peer in order; closeUDP inside the event writes first")
    func twoSocketsAndClose() throws {
        let fixture = try UDPFixture(bind: .v4(.loopback), client: .v4(.loopback))
        defer { fixture.close() }
        let other = try fixture.stack.bindUDP(port: 0, address: .v4(.loopback), handler: fixture.handler)
        let otherClient = try LoopbackUDPClient(.v4(.loopback))
        defer { otherClient.close() }
        let count = 10
        let stack = fixture.stack
        fixture.handler.onDatagram = { (stack, payload, source, socket) throws(DeviceError) in
            try stack.send(payload.span, to: source, from: socket)
            try stack.send(payload.span, to: otherClient.local, from: other)
            // After the last: close the socket the burst came in on.
            if payload.first == UInt8(count - 1) { stack.closeUDP(socket) }
        }
        let burst = (0..<count).map { [UInt8($0)] + datagramPayload(index: $0, length: 10) }
        // Two more after the last: never delivered, the socket is closed.
        for payload in burst + [[0xFE], [0xFF]] { try fixture.client.send(payload, to: fixture.target) }
        try fixture.run(until: count)
        try stack.loop.run(until: stack.loop.now() + .milliseconds(20))

        #expect(fixture.handler.payloads == burst)
        var mine: [[UInt8]] = []
        var theirs: [[UInt8]] = []
        for _ in 0..<count {
            if let reply = try fixture.client.receive() { mine.append(reply) }
            if let reply = try otherClient.receive() { theirs.append(reply) }
        }
        #expect(mine == burst)
        #expect(theirs == burst)
        #expect(stack.localEndpoint(of: fixture.socket) == nil)
        #expect(stack.counters.datagramsSentInBatches == 2 * count)
    }
}

// MARK: - Helpers

/// A deterministic payload: the index in two bytes, then a pattern.
func datagramPayload(index: Int, length: Int) -> [UInt8] {
    var state = UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<length).map { offset in
        switch offset {
        case 0: return UInt8(truncatingIfNeeded: index >> 8)
        case 1: return UInt8(truncatingIfNeeded: index)
        default:
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }
}

/// A UDP handler recording what it receives and running `onDatagram`.
final class BatchTestHandler: UDPHandler {
    var payloads: [[UInt8]] = []
    var sources: [Endpoint] = []
    var destinations: [Endpoint] = []
    var errors: [DeviceError] = []
    weak var stack: SocketStack?
    /// Stop the loop once this many datagrams arrived.
    var stopAfter = Int.max
    var onDatagram: (SocketStack, [UInt8], Endpoint, UDPSocketID) throws(DeviceError) -> Void = { _, _, _, _ in }

    func datagramReceived(_ payload: Span<UInt8>, from source: Endpoint, to destination: Endpoint, on socket: UDPSocketID) {
        let bytes = payload.withUnsafeBufferPointer { Array($0) }
        payloads.append(bytes)
        sources.append(source)
        destinations.append(destination)
        guard let stack else { return }
        do throws(DeviceError) { try onDatagram(stack, bytes, source, socket) } catch { errors.append(error) }
        if payloads.count == stopAfter { stack.loop.stop() }
    }
}

/// A loop on the test thread, a stack with one bound UDP socket and a
/// kernel client of the family of `client`.
final class UDPFixture {
    let stack: SocketStack
    let handler = BatchTestHandler()
    let socket: UDPSocketID
    let client: LoopbackUDPClient
    /// Where the client sends.
    let target: Endpoint

    init(bind: IPAddress?, client address: IPAddress, configuration: SocketStack.Configuration = .init()) throws {
        stack = SocketStack(loop: try EventLoop(), configuration: configuration)
        handler.stack = stack
        socket = try stack.bindUDP(port: 0, address: bind, handler: handler)
        guard let port = stack.localEndpoint(of: socket)?.port, let entry = stack.udpSockets[socket.rawValue] else {
            throw DeviceError.unknownHandle
        }
        // Room for a whole burst even where the default buffer is small.
        LoopbackUDPClient.enlargeReceiveBuffer(entry.fd)
        client = try LoopbackUDPClient(address)
        target = Endpoint(address, port)
    }

    /// Runs the loop until `count` datagrams were delivered (or the time limit).
    func run(until count: Int) throws {
        handler.stopAfter = count
        try stack.loop.run(until: stack.loop.now() + loopTimeLimit)
    }

    func close() {
        stack.closeAll()
        client.close()
    }
}

/// A blocking kernel UDP socket bound to a loopback address (receives time
/// out after 5 s).
final class LoopbackUDPClient: @unchecked Sendable {
    let fd: Int32
    let local: Endpoint
    private var closed = false

    init(_ address: IPAddress) throws {
        let family = { if case .v4 = address { AF_INET } else { AF_INET6 } }()
        fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw DeviceError.system(call: "socket", errno: errno) }
        var time = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        Self.enlargeReceiveBuffer(fd)
        let code = SocketCalls.bind(fd, SocketAddress(Endpoint(address, 0), family: family))
        guard code == 0, let local = SocketCalls.localEndpoint(fd) else {
            Glibc.close(fd)
            throw DeviceError.system(call: "bind", errno: code)
        }
        self.local = local
    }

    deinit { close() }

    static func enlargeReceiveBuffer(_ fd: Int32) {
        SocketCalls.setOption(fd, SOL_SOCKET, SO_RCVBUF, 1 << 20)
    }

    func send(_ bytes: [UInt8], to endpoint: Endpoint) throws {
        let family: Int32 = { if case .v4 = local.address { AF_INET } else { AF_INET6 } }()
        let sent = SocketCalls.sendTo(fd, bytes.span, SocketAddress(endpoint, family: family))
        guard sent == bytes.count else { throw DeviceError.system(call: "sendto", errno: Int32(truncatingIfNeeded: -sent)) }
    }

    /// The next datagram, waiting at most 5 s; nil when none came.
    func receive() throws -> [UInt8]? {
        receive(flags: 0)
    }

    /// The next datagram if one is queued now.
    func receiveNow() -> [UInt8]? {
        receive(flags: Int32(MSG_DONTWAIT))
    }

    private func receive(flags: Int32) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, flags) }
        return n >= 0 ? Array(buffer[0..<n]) : nil
    }

    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }
}
