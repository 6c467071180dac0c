import MirageDevices
@testable import MirageTCPIP
import Testing

/// An application on one stack: records every event, checks that events
/// never arrive re-entrantly, and optionally sends a fixed byte stream
/// (respecting short writes), echoes, and closes at the end of stream.
final class TCPApp: TCPHandler {
    let stack: any Stack
    var accepted: [ConnectionID] = []
    var established: [ConnectionID] = []
    var received: [ConnectionID: [UInt8]] = [:]
    var endOfStream: Set<ConnectionID> = []
    var closed: [ConnectionID: CloseReason] = [:]
    var writableEvents = 0
    var shortWrites = 0
    var reentered = false
    var eventsAfterClose = 0
    private var inside = false

    /// Bytes to send on each connection once it is up, then shut down writing.
    var outgoing: [UInt8] = []
    var sent: [ConnectionID: Int] = [:]
    var shutDown: Set<ConnectionID> = []
    /// Close when the peer finishes.
    var closeAtEndOfStream = true
    /// Echo what arrives.
    var echo = false
    var echoPending: [ConnectionID: [UInt8]] = [:]
    /// Pause reading as soon as data arrives (slow reader).
    var pauseOnData = false

    init(stack: any Stack) { self.stack = stack }

    private func enter(_ connection: ConnectionID) {
        if inside { reentered = true }
        inside = true
        if closed[connection] != nil { eventsAfterClose += 1 }
    }

    func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {
        enter(connection); defer { inside = false }
        accepted.append(connection)
        pump(connection)
    }

    func connectionEstablished(_ connection: ConnectionID) {
        enter(connection); defer { inside = false }
        established.append(connection)
        pump(connection)
    }

    func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {
        enter(connection); defer { inside = false }
        var copy: [UInt8] = []
        copy.reserveCapacity(bytes.count)
        for i in bytes.indices { copy.append(bytes[i]) }
        received[connection, default: []] += copy
        if echo {
            echoPending[connection, default: []] += copy
            flushEcho(connection)
        }
        if pauseOnData { stack.pauseReading(connection) }
    }

    func endOfStream(on connection: ConnectionID) {
        enter(connection); defer { inside = false }
        endOfStream.insert(connection)
        if closeAtEndOfStream && (echoPending[connection]?.isEmpty ?? true) && doneSending(connection) {
            stack.close(connection)
        }
    }

    func writable(_ connection: ConnectionID) {
        enter(connection); defer { inside = false }
        writableEvents += 1
        pump(connection)
        flushEcho(connection)
        if closeAtEndOfStream && endOfStream.contains(connection) && (echoPending[connection]?.isEmpty ?? true)
            && doneSending(connection) {
            stack.close(connection)
        }
    }

    func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {
        enter(connection); defer { inside = false }
        closed[connection] = reason
    }

    func doneSending(_ connection: ConnectionID) -> Bool { (sent[connection] ?? 0) >= outgoing.count }

    func pump(_ connection: ConnectionID) {
        guard !outgoing.isEmpty || !shutDown.contains(connection) else { return }
        var offset = sent[connection] ?? 0
        while offset < outgoing.count {
            let n = (try? stack.write(outgoing.span.extracting(offset...), on: connection)) ?? 0
            if n == 0 {
                shortWrites += 1
                break
            }
            offset += n
        }
        sent[connection] = offset
        if offset >= outgoing.count && !outgoing.isEmpty && !shutDown.contains(connection) {
            shutDown.insert(connection)
            stack.shutdownWrite(connection)
        }
    }

    func flushEcho(_ connection: ConnectionID) {
        guard var pending = echoPending[connection], !pending.isEmpty else { return }
        let n = (try? stack.write(pending.span, on: connection)) ?? 0
        pending.removeFirst(n)
        echoPending[connection] = pending
    }
}

/// A deterministic byte stream: different for each seed and direction.
func streamBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var x = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<count).map { _ in
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        return UInt8(truncatingIfNeeded: x)
    }
}


extension TestNet {
    /// Frames and time until nothing moves or `limit` of simulated time
    /// passes (retransmission backoff can leave gaps of many seconds).
    func run(for limit: Interval = .seconds(600), maxSteps: Int = 2_000_000) {
        let end = clock.now() + limit
        var steps = 0
        while steps < maxSteps {
            steps += 1
            if net.deliverPending() > 0 { continue }
            guard let next = timers.nextDeadline(), next <= end else { return }
            clock.advance(to: max(next, clock.now()))
            timers.runDue()
        }
    }
}

/// Two stacks: `a` (10.0.0.1) optionally behind a fault injector on both
/// directions, `b` (10.0.0.2) plain.
struct TCPTestbed {
    let t = TestNet()
    let a: IPStack<FaultInjector<MemoryInterface>>
    let b: IPStack<MemoryInterface>
    let faults: FaultInjector<MemoryInterface>

    init(faults configuration: FaultConfiguration = FaultConfiguration(), seed: UInt64 = 1,
         tcp: TCPConnection.Configuration = TCPTestbed.tcp) {
        let ia = t.net.attach(mac: MACAddress(2, 0, 0, 0, 0, 1))
        faults = FaultInjector(ia, configuration: configuration, seed: seed, clock: t.clock, scheduler: t.timers)
        var ca = IPStack<FaultInjector<MemoryInterface>>.Configuration(ipv4: IPv4Configuration(address: addressA, prefixLength: 24))
        ca.tcp = tcp
        a = IPStack(interface: faults, configuration: ca, clock: t.clock, scheduler: t.timers,
                    entropy: SeededEntropy(seed: seed &+ 100))
        let ib = t.net.attach(mac: MACAddress(2, 0, 0, 0, 0, 2))
        var cb = IPStack<MemoryInterface>.Configuration(ipv4: IPv4Configuration(address: addressB, prefixLength: 24))
        cb.tcp = tcp
        b = IPStack(interface: ib, configuration: cb, clock: t.clock, scheduler: t.timers,
                    entropy: SeededEntropy(seed: seed &+ 200))
    }

    /// Short TIME-WAIT so runs end quickly.
    static var tcp: TCPConnection.Configuration {
        var c = TCPConnection.Configuration()
        c.maximumSegmentLifetime = .seconds(1)
        return c
    }

    func detach() {
        faults.detach()
        a.detach()
        b.detach()
    }
}

@Suite("TCP through IPStack, two stacks back to back")
struct StackTCPTests {
    /// Byte streams compared without printing megabytes on failure.
    static func expectSame(_ received: [UInt8]?, _ sent: [UInt8], _ what: String,
                           sourceLocation: SourceLocation = #_sourceLocation) {
        let got = received ?? []
        guard got != sent else { return }
        let firstDifference = (0..<min(got.count, sent.count)).first { got[$0] != sent[$0] } ?? min(got.count, sent.count)
        Issue.record("\(what): received \(got.count) of \(sent.count) bytes; first difference at \(firstDifference)",
                     sourceLocation: sourceLocation)
    }

    @Test("a connects to b: 1 MB each way, half-close, both ends closed normally, nothing left after TIME-WAIT")
    func bulkBothWays() throws {
        let bed = TCPTestbed()
        defer { bed.detach() }
        let server = TCPApp(stack: bed.b)
        server.outgoing = streamBytes(1_000_000, seed: 2)
        let listener = try bed.b.listen(port: 80, address: nil, backlog: 16, handler: server)
        #expect(bed.b.localEndpoint(of: listener) == Endpoint(.v4(addressB), 80))
        let client = TCPApp(stack: bed.a)
        client.outgoing = streamBytes(1_000_000, seed: 1)
        let id = try bed.a.connect(to: Endpoint(.v4(addressB), 80), timeout: nil, handler: client)
        bed.t.run()
        #expect(client.established == [id])
        #expect(server.accepted.count == 1)
        let serverSide = try #require(server.accepted.first)
        Self.expectSame(server.received[serverSide], client.outgoing, "server received every byte in order")
        Self.expectSame(client.received[id], server.outgoing, "client received every byte in order")
        #expect(client.closed[id] == .normal)
        #expect(server.closed[serverSide] == .normal)
        #expect(!client.reentered && !server.reentered)
        #expect(client.eventsAfterClose == 0 && server.eventsAfterClose == 0)
        #expect(client.shortWrites > 0, "a 1 MB write does not fit the 256 KB send buffer at once")
        #expect(bed.a.tcpConnectionCount == 0 && bed.b.tcpConnectionCount == 0)
        #expect(bed.a.statistics.totalDropped == 0 && bed.b.statistics.totalDropped == 0)
        #expect(throws: DeviceError.unknownHandle) { _ = try bed.a.write([1].span, on: id) }
    }

    @Test("a closed port answers RST: connect ends refused; a listener's port answers RST to a stray ACK")
    func refusedAndStrayAck() throws {
        let bed = TCPTestbed()
        defer { bed.detach() }
        let client = TCPApp(stack: bed.a)
        let id = try bed.a.connect(to: Endpoint(.v4(addressB), 81), timeout: nil, handler: client)
        bed.t.run(for: .seconds(5))
        #expect(client.closed[id] == .refused)
        #expect(bed.b.statistics.tcpResetsSent == 1)
        #expect(bed.b.statistics.droppedTCPNoConnection == 1)
        #expect(bed.a.tcpConnectionCount == 0)
    }

    @Test("connect to a silent address times out at the connect timeout; an unknown handle is an error")
    func connectTimeout() throws {
        let bed = TCPTestbed()
        defer { bed.detach() }
        let client = TCPApp(stack: bed.a)
        let start = bed.t.clock.now()
        // 10.0.0.9 does not exist: ARP never resolves, the SYN never leaves.
        let id = try bed.a.connect(to: Endpoint(.v4(IPv4Address(10, 0, 0, 9)), 80), timeout: .seconds(3), handler: client)
        bed.t.run(for: .seconds(30))
        #expect(client.closed[id] == .timeout)
        let elapsed = bed.t.clock.now() - start
        #expect(elapsed >= .seconds(3) && elapsed < .seconds(4))
        #expect(throws: DeviceError.unknownHandle) { try bed.a.setKeepAlive(.seconds(1), for: id) }
        #expect(throws: DeviceError.networkUnreachable(.v4(IPv4Address(192, 168, 1, 1)))) {
            _ = try bed.a.connect(to: Endpoint(.v4(IPv4Address(192, 168, 1, 1)), 80), timeout: nil, handler: client)
        }
    }

    @Test("abort sends RST: the peer's application sees reset, ours sees aborted")
    func abortResetsThePeer() throws {
        let bed = TCPTestbed()
        defer { bed.detach() }
        let server = TCPApp(stack: bed.b)
        _ = try bed.b.listen(port: 80, address: nil, backlog: 4, handler: server)
        let client = TCPApp(stack: bed.a)
        let id = try bed.a.connect(to: Endpoint(.v4(addressB), 80), timeout: nil, handler: client)
        bed.t.run(for: .seconds(1))
        #expect(client.established == [id])
        bed.a.abort(id)
        bed.t.run(for: .seconds(1))
        #expect(client.closed[id] == .aborted)
        let serverSide = try #require(server.accepted.first)
        #expect(server.closed[serverSide] == .reset)
        #expect(bed.a.tcpConnectionCount == 0 && bed.b.tcpConnectionCount == 0)
    }

    @Test("a slow reader: pausing closes the window, the writer waits; resuming reopens it and nothing is lost")
    func slowReaderWindowReopens() throws {
        let bed = TCPTestbed()
        defer { bed.detach() }
        let server = TCPApp(stack: bed.b)
        server.pauseOnData = true
        _ = try bed.b.listen(port: 80, address: nil, backlog: 4, handler: server)
        let client = TCPApp(stack: bed.a)
        client.outgoing = streamBytes(2_000_000, seed: 9)
        let id = try bed.a.connect(to: Endpoint(.v4(addressB), 80), timeout: nil, handler: client)
        bed.t.run(for: .seconds(20))
        let serverSide = try #require(server.accepted.first)
        // The reader paused after its first delivery: the window closed and
        // the writer is blocked with the send buffer full.
        let stalled = bed.a.statistics(of: id)
        #expect((server.received[serverSide]?.count ?? 0) < client.outgoing.count)
        #expect((client.sent[id] ?? 0) < client.outgoing.count)
        #expect(stalled?.sendWindow == 0)
        // Read in steps, as a slow application would.
        server.pauseOnData = false
        var rounds = 0
        while server.closed[serverSide] == nil && rounds < 200 {
            bed.b.resumeReading(serverSide)
            server.pauseOnData = rounds % 2 == 0
            bed.t.run(for: .seconds(2))
            rounds += 1
        }
        Self.expectSame(server.received[serverSide], client.outgoing, "server received every byte in order")
        #expect(client.closed[id] == .normal)
        #expect(server.closed[serverSide] == .normal)
    }

    @Test("the backlog bounds half-open connections: a SYN flood is counted and costs no more")
    func synFloodIsBounded() throws {
        let bed = TCPTestbed()
        defer { bed.detach() }
        let server = TCPApp(stack: bed.b)
        _ = try bed.b.listen(port: 80, address: nil, backlog: 8, handler: server)
        // 100 SYNs from ports nobody answers for (a's stack replies RST to
        // b's SYN-ACKs, so drop them on the way back to keep them half-open).
        bed.a.resolve(addressB)
        bed.t.run(for: .seconds(1))
        bed.faults.configuration.directions = .receive
        bed.faults.configuration.dropRate = 1
        for port in 0..<100 {
            let syn = TCPHeader(sourcePort: UInt16(20000 + port), destinationPort: 80, sequenceNumber: SequenceNumber(UInt32(port) * 1000),
                                acknowledgmentNumber: SequenceNumber(0), flags: .syn, window: 65535)
            _ = bed.a.transmitTCP(syn, payloadLength: 0, of: nil, from: addressA, to: addressB)
            _ = bed.t.net.deliverPending()
        }
        #expect(bed.b.tcpConnectionCount == 8)
        #expect(bed.b.statistics.droppedTCPBacklogFull == 92)
        // The half-open ones give up after their SYN-ACK retries; nothing is left.
        bed.t.run(for: .seconds(300))
        #expect(bed.b.tcpConnectionCount == 0)
        #expect(server.accepted.isEmpty)
    }

    @Test("keep-alive: a peer that vanishes is detected after the probes")
    func keepAliveDetectsADeadPeer() throws {
        let bed = TCPTestbed()
        defer { bed.detach() }
        let server = TCPApp(stack: bed.b)
        _ = try bed.b.listen(port: 80, address: nil, backlog: 4, handler: server)
        let client = TCPApp(stack: bed.a)
        let id = try bed.a.connect(to: Endpoint(.v4(addressB), 80), timeout: nil, handler: client)
        bed.t.run(for: .seconds(1))
        try bed.a.setKeepAlive(.seconds(10), for: id)
        // Probes are answered while b is there.
        bed.t.run(for: .seconds(60))
        #expect(client.closed[id] == nil)
        let probesAnswered = try #require(bed.a.statistics(of: id)).segmentsSent
        #expect(probesAnswered >= 5)
        // b disappears: every frame to it is lost from now on.
        bed.faults.configuration.directions = .transmit
        bed.faults.configuration.dropRate = 1
        bed.t.run(for: .seconds(10 + 75 * 10))
        #expect(client.closed[id] == .timeout)
    }

    @Test("bad segments are counted drops: checksum, truncated header, lying data offset, to broadcast")
    func badSegmentsAreDropped() throws {
        let bed = TCPTestbed()
        defer { bed.detach() }
        let server = TCPApp(stack: bed.b)
        _ = try bed.b.listen(port: 80, address: nil, backlog: 4, handler: server)
        func send(_ segment: [UInt8]) {
            let length = segment.count
            try? bed.a.sendIPv4(to: addressB, from: addressA, protocol: IPProtocol.tcp, payloadLength: length) { buffer, offset in
                for i in 0..<length { buffer[offset + i] = segment[i] }
            }
            _ = bed.t.net.deliverPending()
        }
        var good = [UInt8](repeating: 0, count: 20)
        var span = good.mutableSpan
        TCPHeader(sourcePort: 1234, destinationPort: 80, sequenceNumber: SequenceNumber(1), acknowledgmentNumber: SequenceNumber(0),
                  flags: .syn, window: 100).emit(into: &span, at: 0, payloadLength: 0, source: addressA, destination: addressB)
        _ = consume span
        var badSum = good
        badSum[16] ^= 0xFF
        send(badSum)
        send(Array(good[0..<12]))
        var lying = good
        lying[12] = 0xF0  // 60-byte header in a 20-byte segment
        send(lying)
        #expect(bed.b.statistics.droppedBadTCPChecksum == 1)
        #expect(bed.b.statistics.droppedMalformedTCP == 2)
        #expect(bed.b.tcpConnectionCount == 0)
        send(good)
        #expect(bed.b.tcpConnectionCount == 1)
    }

    @Test("handlers may call the stack from inside events: echo, close at end of stream; events stay in order")
    func callsFromInsideHandlers() throws {
        let bed = TCPTestbed()
        defer { bed.detach() }
        let server = TCPApp(stack: bed.b)
        server.echo = true
        _ = try bed.b.listen(port: 7, address: nil, backlog: 64, handler: server)
        let client = TCPApp(stack: bed.a)
        client.outgoing = streamBytes(300_000, seed: 4)
        var ids: [ConnectionID] = []
        for _ in 0..<20 { ids.append(try bed.a.connect(to: Endpoint(.v4(addressB), 7), timeout: nil, handler: client)) }
        bed.t.run()
        for id in ids {
            Self.expectSame(client.received[id], client.outgoing, "the echo is the stream")
            #expect(client.closed[id] == .normal)
        }
        #expect(server.closed.count == 20 && server.closed.values.allSatisfy { $0 == .normal })
        #expect(!server.reentered && !client.reentered)
        #expect(bed.a.tcpConnectionCount == 0 && bed.b.tcpConnectionCount == 0)
    }

    /// One seeded run: random faults on a's link, random options and
    /// buffer sizes, random amounts each way; returns what went wrong.
    static func faultRun(seed: UInt64) -> String? {
        let r = SeededEntropy(seed: seed)
        func pct(_ max: UInt64) -> Double { Double(r.next(below: max + 1)) / 100 }
        var faults = FaultConfiguration()
        faults.dropRate = pct(8)
        faults.duplicateRate = pct(8)
        faults.reorderRate = pct(20)
        faults.corruptRate = pct(4)
        faults.corruptFrom = 34  // the transport's checksum must catch it
        faults.delay = .milliseconds(Int64(r.next(below: 21)))
        faults.jitter = .milliseconds(Int64(r.next(below: 5)))
        var tcp = TCPTestbed.tcp
        tcp.windowScaling = r.next(below: 4) != 0
        tcp.timestamps = r.next(below: 4) != 0
        tcp.selectiveAcknowledgment = r.next(below: 4) != 0
        tcp.nagle = r.next(below: 2) == 0
        if r.next(below: 4) == 0 {
            tcp.sendBufferSize = 2048 + Int(r.next(below: 8192))
            tcp.receiveBufferSize = 2048 + Int(r.next(below: 8192))
        }
        let bed = TCPTestbed(faults: faults, seed: seed, tcp: tcp)
        defer { bed.detach() }
        let server = TCPApp(stack: bed.b)
        server.outgoing = streamBytes(Int(r.next(below: 30_000)), seed: seed &* 2)
        let client = TCPApp(stack: bed.a)
        client.outgoing = streamBytes(Int(r.next(below: 30_000)), seed: seed &* 2 &+ 1)
        // An empty stream still needs its FIN.
        if server.outgoing.isEmpty { server.outgoing = [7] }
        if client.outgoing.isEmpty { client.outgoing = [9] }
        guard (try? bed.b.listen(port: 80, address: nil, backlog: 4, handler: server)) != nil,
              let id = try? bed.a.connect(to: Endpoint(.v4(addressB), 80), timeout: .seconds(120), handler: client)
        else { return "seed \(seed): setup failed" }
        bed.t.run(for: .seconds(900))
        let what = "closed \(String(describing: client.closed[id]))/\(server.closed.values.map { "\($0)" }) seed \(seed) faults \(faults) tcp ws=\(tcp.windowScaling) ts=\(tcp.timestamps) sack=\(tcp.selectiveAcknowledgment) buffers \(tcp.sendBufferSize)/\(tcp.receiveBufferSize)"
        guard let serverSide = server.accepted.first else { return "\(what): never accepted; client closed \(String(describing: client.closed[id]))" }
        if server.received[serverSide] ?? [] != client.outgoing {
            return "\(what): server got \(server.received[serverSide]?.count ?? 0) of \(client.outgoing.count) bytes or wrong bytes"
        }
        if client.received[id] ?? [] != server.outgoing {
            return "\(what): client got \(client.received[id]?.count ?? 0) of \(server.outgoing.count) bytes or wrong bytes"
        }
        if client.closed[id] != .normal || server.closed[serverSide] != .normal {
            return "\(what): closed \(String(describing: client.closed[id])) / \(String(describing: server.closed[serverSide]))"
        }
        if client.reentered || server.reentered || client.eventsAfterClose + server.eventsAfterClose > 0 {
            return "\(what): events re-entered or after close"
        }
        if bed.a.tcpConnectionCount + bed.b.tcpConnectionCount != 0 {
            return "\(what): connections left: \(bed.a.tcpConnectionStates) / \(bed.b.tcpConnectionStates)"
        }
        return nil
    }

    @Test("2,000 seeded runs over loss, duplication, reordering, delay and corruption: every byte once and in order")
    func randomisedFaultRuns() {
        var failures: [String] = []
        for seed in UInt64(1)...2000 {
            if let failure = Self.faultRun(seed: seed) { failures.append(failure) }
        }
        #expect(failures.isEmpty, "\(failures.count) runs failed")
        for f in failures.prefix(5) { Issue.record(Comment(rawValue: f)) }
    }
}
