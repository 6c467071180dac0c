import MirageDevices
@testable import MirageTCPIP
import Testing

let clientAddress = IPv4Address(10, 0, 0, 2)
let serverAddress4 = IPv4Address(10, 0, 0, 1)

/// Two connections wired back to back through real segment bytes, with an
/// explicit clock and an optional loss pattern.
struct TCPPair {
    var client: TCPConnection
    var server: TCPConnection?
    var now = Instant(nanoseconds: 1_000_000_000)
    var configuration = TCPConnection.Configuration()
    /// Segments sent so far, both ways (counted to pick losses).
    var sent = 0
    var drop: (Int) -> Bool = { _ in false }
    /// Also drops a client segment when this says so (it sees each one).
    var dropFromClient: (TCPConnection.Outgoing, TCPConnection) -> Bool = { _, _ in false }
    var clientReceived: [UInt8] = []
    var serverReceived: [UInt8] = []
    var clientEvents: [TCPConnection.Event] = []
    var serverEvents: [TCPConnection.Event] = []
    /// Whether the applications read what arrives.
    var clientReads = true
    var serverReads = true

    init(configuration: TCPConnection.Configuration = .init()) {
        self.configuration = configuration
        client = TCPConnection(connectFrom: (clientAddress, 40000), to: (serverAddress4, 7), iss: SequenceNumber(0xFFFF_F000),
                               pathMTU: 1500, configuration: configuration, now: now)
    }

    /// Serializes and parses a segment as the wire would.
    static func wire(_ out: TCPConnection.Outgoing, from c: TCPConnection) -> [UInt8] {
        let h = out.header
        var bytes = [UInt8](repeating: 0, count: h.length + out.payloadLength)
        var span = bytes.mutableSpan
        if out.payloadLength > 0 { c.sendBuffer.copy(from: out.payloadStart, length: out.payloadLength, into: &span, at: h.length) }
        h.emit(into: &span, at: 0, payloadLength: out.payloadLength, source: c.local.address, destination: c.remote.address)
        _ = consume span
        return bytes
    }

    /// Moves segments both ways until nothing is left to send (bounded).
    mutating func run(steps: Int = 10_000, advanceTime: Bool = true) {
        for _ in 0..<steps {
            var moved = false
            let fromClient = client.outbox
            client.outbox.removeAll()
            for out in fromClient {
                moved = true
                sent += 1
                guard client.payloadIsHeld(out) else { continue }
                let bytes = Self.wire(out, from: client)
                if drop(sent) || dropFromClient(out, client) { continue }
                let segment = try! TCPSegment(checking: bytes.span, source: clientAddress, destination: serverAddress4)
                if server == nil {
                    if segment.flags == .syn {
                        server = TCPConnection(acceptFrom: (serverAddress4, 7), remote: (clientAddress, 40000), syn: segment,
                                               iss: SequenceNumber(77), pathMTU: 1500, configuration: configuration, now: now)
                    }
                } else {
                    server!.receive(segment, now: now)
                }
            }
            if var s = server {
                let fromServer = s.outbox
                s.outbox.removeAll()
                for out in fromServer {
                    moved = true
                    sent += 1
                    guard s.payloadIsHeld(out) else { continue }
                    let bytes = Self.wire(out, from: s)
                    if drop(sent) { continue }
                    let segment = try! TCPSegment(checking: bytes.span, source: serverAddress4, destination: clientAddress)
                    client.receive(segment, now: now)
                }
                drain(&s, into: &serverReceived, events: &serverEvents, reads: serverReads)
                server = s
            }
            drain(&client, into: &clientReceived, events: &clientEvents, reads: clientReads)
            if !moved {
                guard advanceTime else { return }
                // Nothing on the wire: let time pass to the next timer.
                let next = [client.nextDeadline, server?.nextDeadline].compactMap { $0 }.min()
                guard let deadline = next, deadline < now + .seconds(600) else { return }
                now = max(now, deadline)
                client.timerFired(now: now)
                server?.timerFired(now: now)
                if client.outbox.isEmpty && (server?.outbox.isEmpty ?? true) && client.nextDeadline == nil
                    && server?.nextDeadline == nil { return }
            }
        }
    }

    func drain(_ c: inout TCPConnection, into received: inout [UInt8], events: inout [TCPConnection.Event], reads: Bool) {
        events += c.events
        c.events.removeAll()
        if reads && c.receiveBuffer.readable > 0 {
            _ = c.receiveBuffer.read(maximum: c.receiveBuffer.readable) { received += Array(copying: $0) }
            c.didRead(now: now)
        }
    }

    mutating func write(client bytes: [UInt8]) -> Int { client.write(bytes.span, now: now) }
    mutating func write(server bytes: [UInt8]) -> Int { server!.write(bytes.span, now: now) }
}

func pattern(_ n: Int, seed: Int = 0) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: ($0 &* 31) ^ seed) } }

@Suite struct TCPConnectionTests {
    @Test func handshakeNegotiatesOptions() {
        var p = TCPPair()
        p.run()
        #expect(p.client.state == .established && p.server?.state == .established)
        #expect(p.clientEvents == [.established] && p.serverEvents == [.established])
        #expect(p.client.timestampsOn && p.client.sackOn && p.server!.timestampsOn && p.server!.sackOn)
        #expect(p.client.sendShift == TCPConnection.shift(for: 256 * 1024) && p.client.sendShift == 3)
        #expect(p.client.sendMSS == 1460 - 12, "MSS less the timestamp option")
    }

    @Test func bulkDataBothWaysArrivesIntact() {
        var p = TCPPair()
        p.run()
        let up = pattern(1_000_000, seed: 1), down = pattern(700_000, seed: 2)
        var upSent = 0, downSent = 0
        for _ in 0..<10_000 where upSent < up.count || downSent < down.count {
            if upSent < up.count { upSent += p.write(client: Array(up[upSent...])) }
            if downSent < down.count { downSent += p.write(server: Array(down[downSent...])) }
            p.run(steps: 50)
        }
        p.run()
        #expect(p.serverReceived == up)
        #expect(p.clientReceived == down)
        #expect(p.client.statistics.retransmissions == 0)
    }

    @Test(arguments: [3, 7, 13])
    func lossIsRepairedByRetransmission(every n: Int) {
        var p = TCPPair()
        p.run()
        p.drop = { $0 % n == 0 }
        let data = pattern(300_000, seed: n)
        var sent = 0
        for _ in 0..<20_000 where sent < data.count {
            sent += p.write(client: Array(data[sent...]))
            p.run(steps: 20)
        }
        p.run()
        #expect(p.serverReceived == data)
        #expect(p.client.statistics.retransmissions > 0)
    }

    @Test func gracefulCloseFromBothSides() {
        var p = TCPPair()
        p.run()
        _ = p.write(client: pattern(5000))
        p.client.close(now: p.now)
        p.run(steps: 100, advanceTime: false)
        #expect(p.serverEvents.contains(.endOfStream))
        #expect(p.serverReceived == pattern(5000))
        #expect(p.server?.state == .closeWait)
        p.server!.close(now: p.now)
        p.run(steps: 100, advanceTime: false)
        #expect(p.serverEvents.last == .closed(.normal))
        #expect(p.clientEvents.last == .closed(.normal))
        #expect(p.client.state == .timeWait, "the active closer waits 2 MSL")
        p.run()
        #expect(p.client.state == .closed)
    }

    @Test func halfCloseKeepsTheOtherDirectionOpen() {
        var p = TCPPair()
        p.run()
        p.client.shutdownWrite(now: p.now)
        p.run(steps: 100)
        #expect(p.serverEvents.contains(.endOfStream) && p.client.state == .finWait2)
        _ = p.write(server: pattern(20_000, seed: 9))
        p.run(steps: 200)
        #expect(p.clientReceived == pattern(20_000, seed: 9), "data still flows to the half-closed side")
        p.server!.close(now: p.now)
        p.run(steps: 100)
        #expect(p.clientEvents.contains(.endOfStream) && p.clientEvents.last == .closed(.normal))
    }

    @Test func abortResetsThePeer() {
        var p = TCPPair()
        p.run()
        p.server!.abort()
        p.run(steps: 10)
        #expect(p.serverEvents.last == .closed(.aborted))
        #expect(p.clientEvents.last == .closed(.reset))
    }

    @Test func aRSTAnsweringTheSYNIsRefusal() {
        var c = TCPConnection(connectFrom: (clientAddress, 40000), to: (serverAddress4, 9), iss: SequenceNumber(500),
                              pathMTU: 1500, configuration: .init(), now: .zero)
        let rst = TCPHeader(sourcePort: 9, destinationPort: 40000, sequenceNumber: SequenceNumber(0),
                            acknowledgmentNumber: SequenceNumber(501), flags: [.rst, .ack], window: 0)
        var bytes = [UInt8](repeating: 0, count: rst.length)
        var span = bytes.mutableSpan
        rst.emit(into: &span, at: 0, payloadLength: 0, source: serverAddress4, destination: clientAddress)
        _ = consume span
        c.receive(try! TCPSegment(checking: bytes.span, source: serverAddress4, destination: clientAddress), now: .zero)
        #expect(c.events == [.closed(.refused)] && c.state == .closed)
    }

    @Test func unansweredSYNsTimeOut() {
        var c = TCPConnection(connectFrom: (clientAddress, 40000), to: (serverAddress4, 9), iss: SequenceNumber(500),
                              pathMTU: 1500, configuration: .init(), now: .zero)
        var now = Instant.zero
        var syns = 0
        for _ in 0..<20 {
            syns += c.outbox.filter { $0.header.flags == .syn }.count
            c.outbox.removeAll()
            guard let next = c.nextDeadline else { break }
            now = next
            c.timerFired(now: now)
        }
        #expect(syns == 7, "the SYN and six retransmissions")
        #expect(c.events == [.closed(.timeout)])
        #expect(now - .zero >= .seconds(60), "with exponential backoff")
    }

    @Test func blindResetsAndSYNsGetChallengeACKs() {
        var p = TCPPair()
        p.run()
        let server = p.server!
        // A RST in the window but not at RCV.NXT (RFC 5961 §3.2).
        let rst = TCPHeader(sourcePort: 7, destinationPort: 40000, sequenceNumber: server.sndNxt + 1000,
                            acknowledgmentNumber: SequenceNumber(0), flags: .rst, window: 0)
        var bytes = [UInt8](repeating: 0, count: rst.length)
        var span = bytes.mutableSpan
        rst.emit(into: &span, at: 0, payloadLength: 0, source: serverAddress4, destination: clientAddress)
        _ = consume span
        p.client.receive(try! TCPSegment(checking: bytes.span, source: serverAddress4, destination: clientAddress), now: p.now)
        #expect(p.client.state == .established)
        #expect(p.client.statistics.challengeAcknowledgments == 1 && p.client.outbox.count == 1)
        p.run()
        #expect(p.client.state == .established && p.server?.state == .established)
    }

    @Test func aSlowReaderClosesTheWindowAndReopensIt() {
        var config = TCPConnection.Configuration()
        config.receiveBufferSize = 64 * 1024
        var p = TCPPair(configuration: config)
        p.run()
        p.serverReads = false
        let data = pattern(600_000, seed: 5)
        var sent = 0
        for _ in 0..<200 where sent < data.count {
            sent += p.write(client: Array(data[sent...]))
            p.run(steps: 20)
        }
        #expect(p.server!.receiveBuffer.window == 0, "the window closed")
        #expect(sent < data.count, "back-pressure reached the writer")
        p.serverReads = true
        for _ in 0..<2_000 where sent < data.count || p.serverReceived.count < data.count {
            if sent < data.count { sent += p.write(client: Array(data[sent...])) }
            p.run(steps: 20)
        }
        p.run()
        #expect(p.serverReceived == data, "the window reopened and everything arrived")
        #expect(p.clientEvents.contains(.writable))
    }

    @Test func aTimeoutCountsOneRetransmissionPerSegmentResent() {
        var p = TCPPair()
        p.run()
        let before = p.sent
        p.drop = { n in n == before + 1 }
        _ = p.write(client: pattern(1000))
        p.run()
        #expect(p.serverReceived == pattern(1000))
        #expect(p.client.statistics.retransmissions == 1)
    }

    @Test func closeAfterAHalfCloseDoesNotWaitForeverInFinWait2() {
        var p = TCPPair()
        p.run()
        p.client.shutdownWrite(now: p.now)
        p.run(advanceTime: false)
        #expect(p.client.state == .finWait2)
        p.client.close(now: p.now)
        p.run()  // the server's application never closes: no FIN comes
        #expect(p.client.state == .closed)
        #expect((p.clientEvents + p.client.events).contains(.closed(.timeout)))
    }
}
