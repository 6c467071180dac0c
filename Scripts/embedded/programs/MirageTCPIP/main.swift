// Embedded check program for MirageTCPIP (Scripts/check-embedded).
//
// Runs two IPStacks over a MemoryNetwork (one behind a PcapInterface and a
// FaultInjector, so the stack is specialised over wrapped interfaces too):
// ARP resolution, UDP echo, a fragmented 20,000-byte datagram, a
// 60,000-byte ping, port unreachable, a DHCP client exchange, the wire
// views on good and bad bytes, and two TCPConnections back to back through
// serialized segments (handshake, 20,000 bytes one way through a 4,096-byte
// send buffer, FIN both ways, TIME-WAIT). `mirage_main` returns the number
// of failed checks (0 = pass).

import MirageDevices
import MirageTCPIP

final class Report {
    var checks = 0
    var failed = 0
    var digest: UInt64 = 0xcbf2_9ce4_8422_2325

    func expect(_ ok: Bool, _ what: String) {
        checks += 1
        if !ok {
            failed += 1
            print("FAIL: " + what)
        }
    }

    func mix(_ value: UInt64) {
        var v = value
        for _ in 0..<8 {
            digest = (digest ^ (v & 0xff)) &* 0x100_0000_01b3
            v >>= 8
        }
    }
}

func hex(_ v: UInt64) -> String {
    let digits: [UInt8] = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for shift in stride(from: 60, through: 0, by: -4) { out.append(digits[Int((v >> UInt64(shift)) & 0xf)]) }
    return String(decoding: out, as: UTF8.self)
}

final class Echo: UDPHandler {
    let stack: any Stack
    var received: [[UInt8]] = []
    var errors: [ICMPReport] = []
    let echo: Bool
    init(stack: any Stack, echo: Bool) {
        self.stack = stack
        self.echo = echo
    }
    func datagramReceived(_ payload: Span<UInt8>, from source: Endpoint, to destination: Endpoint, on socket: UDPSocketID) {
        var copy: [UInt8] = []
        for i in payload.indices { copy.append(payload[i]) }
        received.append(copy)
        if echo { try? stack.send(payload, to: source, from: socket) }
    }
    func errorReceived(_ report: ICMPReport, about destination: Endpoint, on socket: UDPSocketID) {
        errors.append(report)
    }
}

final class Pings: EchoReplyHandler {
    var lengths: [Int] = []
    func echoReplyReceived(from source: IPv4Address, identifier: UInt16, sequence: UInt16, payloadLength: Int) {
        lengths.append(payloadLength)
    }
}

func settle(_ net: MemoryNetwork, _ clock: ManualClock, _ timers: ManualTimerScheduler) {
    var steps = 0
    while steps < 5000 {
        if net.deliverPending() == 0 {
            guard let next = timers.nextDeadline(), next <= clock.now() + .seconds(5) else { return }
            if next > clock.now() { clock.advance(to: next) }
            timers.runDue()
        }
        steps += 1
    }
}

func checkStacks(_ r: Report) {
    let clock = ManualClock()
    let timers = ManualTimerScheduler(clock: clock)
    let net = MemoryNetwork()
    let sink = MemoryPcapSink()
    let pcap = PcapInterface(net.attach(mac: MACAddress(2, 0, 0, 0, 0, 1)), writer: PcapWriter(sink: sink), clock: clock)
    var faults = FaultConfiguration()
    faults.directions = .receive
    faults.reorderRate = 0.2
    let lossy = FaultInjector(pcap, configuration: faults, seed: 9, clock: clock, scheduler: timers)
    let a = IPStack(interface: lossy, configuration: .init(ipv4: IPv4Configuration(cidr: "10.0.0.1/24")),
                    clock: clock, scheduler: timers, entropy: SeededEntropy(seed: 1))
    let b = IPStack(interface: net.attach(mac: MACAddress(2, 0, 0, 0, 0, 2)),
                    configuration: .init(ipv4: IPv4Configuration(cidr: "10.0.0.2/24")),
                    clock: clock, scheduler: timers, entropy: SeededEntropy(seed: 2))
    let server = Echo(stack: a, echo: true)
    let client = Echo(stack: b, echo: false)
    let pings = Pings()
    b.echoReplyHandler = pings
    do {
        _ = try a.bindUDP(port: 7, address: nil, handler: server)
        let socket = try b.bindUDP(port: 0, address: nil, handler: client)
        let small: [UInt8] = [1, 2, 3, 4, 5]
        var big: [UInt8] = []
        for i in 0..<20_000 { big.append(UInt8(truncatingIfNeeded: i &* 13)) }
        let target = Endpoint(.v4(IPv4Address(10, 0, 0, 1)), 7)
        try b.send(small.span, to: target, from: socket)
        settle(net, clock, timers)
        try b.send(big.span, to: target, from: socket)
        settle(net, clock, timers)
        try b.ping(IPv4Address(10, 0, 0, 1), identifier: 1, sequence: 1, payloadLength: 60_000)
        settle(net, clock, timers)
        try b.send(small.span, to: Endpoint(.v4(IPv4Address(10, 0, 0, 1)), 9), from: socket)
        settle(net, clock, timers)
        r.expect(client.received.count == 2 && client.received[0] == small && client.received[1] == big, "UDP echo, small and fragmented")
        r.expect(pings.lengths == [60_000], "60,000-byte ping answered")
        r.expect(client.errors == [.destinationUnreachable(code: 3)], "port unreachable reported")
        r.expect(b.arpEntry(for: IPv4Address(10, 0, 0, 1)) == MACAddress(2, 0, 0, 0, 0, 1), "ARP resolved")
        r.expect(pcap.writer.recordCount > 40, "frames recorded")
        r.mix(UInt64(a.statistics.framesReceived))
        r.mix(UInt64(b.statistics.fragmentsSent))
    } catch {
        r.expect(false, "stack calls threw")
    }
    checkStackTCP(r, server: a, client: b, net: net, clock: clock, timers: timers)
    lossy.detach()
    pcap.detach()
}

/// TCP through both stacks (a behind the reordering injector): the
/// client writes 30,000 bytes and shuts down; the server echoes and closes
/// at the end of stream; both ends close normally and the echo is exact.
final class TCPEcho: TCPHandler {
    let stack: any Stack
    let echo: Bool
    var received: [UInt8] = []
    var pending: [UInt8] = []
    var outgoing: [UInt8] = []
    var sent = 0
    var closed: [CloseReason] = []
    var peerFinished = false

    init(stack: any Stack, echo: Bool) {
        self.stack = stack
        self.echo = echo
    }

    func pump(_ connection: ConnectionID) {
        while sent < outgoing.count {
            let n = (try? stack.write(outgoing.span.extracting(sent...), on: connection)) ?? 0
            if n == 0 { return }
            sent += n
        }
        if !outgoing.isEmpty { stack.shutdownWrite(connection) }
    }

    func flush(_ connection: ConnectionID) {
        while !pending.isEmpty {
            let n = (try? stack.write(pending.span, on: connection)) ?? 0
            if n == 0 { return }
            pending.removeFirst(n)
        }
        if peerFinished && echo { stack.close(connection) }
    }

    func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {}
    func connectionEstablished(_ connection: ConnectionID) { pump(connection) }
    func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {
        for i in bytes.indices { received.append(bytes[i]) }
        if echo {
            for i in bytes.indices { pending.append(bytes[i]) }
            flush(connection)
        }
    }
    func endOfStream(on connection: ConnectionID) {
        peerFinished = true
        if echo { flush(connection) } else { stack.close(connection) }
    }
    func writable(_ connection: ConnectionID) {
        pump(connection)
        flush(connection)
    }
    func connectionClosed(_ connection: ConnectionID, reason: CloseReason) { closed.append(reason) }
}

func checkStackTCP(_ r: Report, server a: IPStack<FaultInjector<PcapInterface<MemoryInterface>>>,
                   client b: IPStack<MemoryInterface>, net: MemoryNetwork, clock: ManualClock,
                   timers: ManualTimerScheduler) {
    let server = TCPEcho(stack: a, echo: true)
    let client = TCPEcho(stack: b, echo: false)
    for i in 0..<30_000 { client.outgoing.append(UInt8(truncatingIfNeeded: i &* 7 &+ 1)) }
    do {
        _ = try a.listen(port: 7, address: nil, backlog: 4, handler: server)
        _ = try b.connect(to: Endpoint(.v4(IPv4Address(10, 0, 0, 1)), 7), timeout: nil, handler: client)
    } catch {
        r.expect(false, "TCP listen or connect threw")
        return
    }
    for _ in 0..<40 { settle(net, clock, timers) }
    r.expect(server.received == client.outgoing, "TCP: the server got every byte in order")
    r.expect(client.received == client.outgoing, "TCP: the echo came back whole")
    r.expect(server.closed == [.normal] && client.closed == [.normal], "TCP: both ends closed normally")
    r.mix(UInt64(a.statistics.tcpSegmentsReceived))
    r.mix(UInt64(b.statistics.tcpSegmentsSent))
}

/// TCP between two stacks whose interfaces announce checksum and
/// segmentation offload (the memory network passes large frames whole, as
/// virtio does): 300,000 bytes each way in frames larger than the MTU,
/// coalesced on arrival; CUBIC's integer curve runs here too.
func checkOffloadTCP(_ r: Report) {
    let clock = ManualClock()
    let timers = ManualTimerScheduler(clock: clock)
    let net = MemoryNetwork()
    let offloads: OffloadCapabilities = [.receiveChecksum, .transmitChecksum, .tcpSegmentationIPv4, .receiveCoalescing]
    let a = IPStack(interface: net.attach(mac: MACAddress(2, 0, 0, 0, 0, 1), offloads: offloads),
                    configuration: .init(ipv4: IPv4Configuration(cidr: "10.0.1.1/24")),
                    clock: clock, scheduler: timers, entropy: SeededEntropy(seed: 11))
    let b = IPStack(interface: net.attach(mac: MACAddress(2, 0, 0, 0, 0, 2), offloads: offloads),
                    configuration: .init(ipv4: IPv4Configuration(cidr: "10.0.1.2/24")),
                    clock: clock, scheduler: timers, entropy: SeededEntropy(seed: 12))
    let server = TCPEcho(stack: a, echo: true)
    let client = TCPEcho(stack: b, echo: false)
    for i in 0..<300_000 { client.outgoing.append(UInt8(truncatingIfNeeded: i &* 11 &+ 5)) }
    do {
        _ = try a.listen(port: 7, address: nil, backlog: 4, handler: server)
        _ = try b.connect(to: Endpoint(.v4(IPv4Address(10, 0, 1, 1)), 7), timeout: nil, handler: client)
    } catch {
        r.expect(false, "offload TCP: listen or connect threw")
        return
    }
    for _ in 0..<200 { settle(net, clock, timers) }
    r.expect(server.received == client.outgoing && client.received == client.outgoing, "offload TCP: echo exact")
    r.expect(server.closed == [.normal] && client.closed == [.normal], "offload TCP: both ends closed normally")
    r.expect(b.statistics.tcpSegmentationFramesSent > 0 && a.statistics.tcpCoalescedFramesReceived > 0,
             "offload TCP: frames for the device to segment sent and received coalesced")
    r.mix(b.statistics.tcpSegmentationSegmentsSent)
    a.detach()
    b.detach()
}

func checkDHCP(_ r: Report) {
    var client = DHCPClient(hardwareAddress: MACAddress(2, 0, 0, 0, 0, 9), entropy: SeededEntropy(seed: 3))
    let actions = client.start(now: .zero)
    var discovered = false
    for a in actions {
        if case .broadcast(let payload, _) = a {
            if let m = try? DHCPMessage(checking: payload.span) {
                var type: UInt8 = 0
                m.forEachOption { code, v in if code == DHCPOption.messageType && v.count == 1 { type = v[0] } }
                discovered = type == DHCPMessageType.discover.rawValue && m.clientHardwareAddress == MACAddress(2, 0, 0, 0, 0, 9)
            }
        }
    }
    r.expect(discovered, "DHCP DISCOVER built and parsed")
    r.expect(client.stateName == "selecting", "DHCP selecting")
}

func checkViews(_ r: Report) {
    var frame: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06]
    frame += [0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2]
    if let eth = try? EthernetFrame(checking: frame.span), let arp = try? ARPPacket(checking: eth.payload) {
        r.expect(arp.targetProtocol == IPv4Address(10, 0, 0, 2), "ARP view")
    } else {
        r.expect(false, "ARP frame parses")
    }
    var errors = 0
    for n in 0..<frame.count {
        do {
            let eth = try EthernetFrame(checking: frame.span.extracting(0..<n))
            _ = try ARPPacket(checking: eth.payload)
        } catch {
            errors += 1
        }
    }
    r.expect(errors == frame.count, "every truncation refused")
    var reassembler = IPv4Reassembler()
    r.expect(reassembler.expire(now: .zero) == 0, "reassembler")
}

/// Two TCPConnections wired back to back: every segment is written with
/// `TCPHeader.emit` and read back with `TCPSegment(checking:)`.
struct TCPLink {
    static let clientAddress = IPv4Address(10, 0, 0, 2)
    static let serverAddress = IPv4Address(10, 0, 0, 1)
    let configuration: TCPConnection.Configuration
    var client: TCPConnection
    var server: TCPConnection? = nil
    var now = Instant(nanoseconds: 1_000_000_000)
    var clientReceived: [UInt8] = []
    var serverReceived: [UInt8] = []
    var clientEvents: [TCPConnection.Event] = []
    var serverEvents: [TCPConnection.Event] = []
    /// Segments that did not parse, or whose payload left the send buffer.
    var bad = 0
    var segments = 0

    init(configuration: TCPConnection.Configuration) {
        self.configuration = configuration
        client = TCPConnection(connectFrom: (Self.clientAddress, 40000), to: (Self.serverAddress, 80),
                               iss: SequenceNumber(0xFFFF_F000), pathMTU: 1500, configuration: configuration, now: now)
    }

    static func wire(_ out: TCPConnection.Outgoing, from c: TCPConnection) -> [UInt8] {
        let h = out.header
        var bytes = [UInt8](repeating: 0, count: h.length + out.payloadLength)
        var span = bytes.mutableSpan
        if out.payloadLength > 0 {
            c.sendBuffer.copy(from: out.payloadStart, length: out.payloadLength, into: &span, at: h.length)
        }
        h.emit(into: &span, at: 0, payloadLength: out.payloadLength, source: c.local.address, destination: c.remote.address)
        _ = consume span
        return bytes
    }

    static func drain(_ c: inout TCPConnection, into received: inout [UInt8], events: inout [TCPConnection.Event],
                      now: Instant) {
        events.append(contentsOf: c.events)
        c.events.removeAll()
        if c.receiveBuffer.readable > 0 {
            _ = c.read(maximum: c.receiveBuffer.readable) { span in
                for i in span.indices { received.append(span[i]) }
            }
            c.didRead(now: now)
        }
    }

    /// Moves segments both ways until neither side has any; when both are
    /// idle, lets time pass to the next timer (at most `steps` rounds).
    mutating func run(steps: Int = 2000, advanceTime: Bool = false) {
        for _ in 0..<steps {
            var moved = false
            let fromClient = client.outbox
            client.outbox.removeAll()
            for out in fromClient {
                moved = true
                segments += 1
                guard client.payloadIsHeld(out) else { bad += 1; continue }
                let bytes = Self.wire(out, from: client)
                do throws(TCPIPError) {
                    let segment = try TCPSegment(checking: bytes.span, source: Self.clientAddress,
                                                 destination: Self.serverAddress)
                    if server == nil {
                        if segment.flags == .syn {
                            server = TCPConnection(acceptFrom: (Self.serverAddress, 80), remote: (Self.clientAddress, 40000),
                                                   syn: segment, iss: SequenceNumber(77), pathMTU: 1500,
                                                   configuration: configuration, now: now)
                        }
                    } else {
                        server!.receive(segment, now: now)
                    }
                } catch {
                    bad += 1
                }
            }
            if var s = server {
                server = nil
                let fromServer = s.outbox
                s.outbox.removeAll()
                for out in fromServer {
                    moved = true
                    segments += 1
                    guard s.payloadIsHeld(out) else { bad += 1; continue }
                    let bytes = Self.wire(out, from: s)
                    do throws(TCPIPError) {
                        let segment = try TCPSegment(checking: bytes.span, source: Self.serverAddress,
                                                     destination: Self.clientAddress)
                        client.receive(segment, now: now)
                    } catch {
                        bad += 1
                    }
                }
                Self.drain(&s, into: &serverReceived, events: &serverEvents, now: now)
                server = s
            }
            Self.drain(&client, into: &clientReceived, events: &clientEvents, now: now)
            if !moved && client.outbox.isEmpty && (server?.outbox.isEmpty ?? true) {
                guard advanceTime else { return }
                var next = client.nextDeadline
                if let d = server?.nextDeadline, next.map({ d < $0 }) ?? true { next = d }
                guard let deadline = next, deadline < now + .seconds(600) else { return }
                if now < deadline { now = deadline }
                client.timerFired(now: now)
                server?.timerFired(now: now)
            }
        }
    }
}

func checkTCP(_ r: Report) {
    var configuration = TCPConnection.Configuration()
    configuration.sendBufferSize = 4096
    configuration.receiveBufferSize = 16384
    var link = TCPLink(configuration: configuration)
    link.run()
    r.expect(link.client.state == .established && link.server?.state == .established, "TCP handshake")
    r.expect(link.clientEvents == [.established] && link.serverEvents == [.established], "TCP established events")

    // 20,000 bytes through a 4,096-byte send buffer: short writes, then
    // `.writable` as ACKs free room.
    var data: [UInt8] = []
    for i in 0..<20_000 { data.append(UInt8(truncatingIfNeeded: i &* 7 &+ i >> 8)) }
    var written = 0
    var shortWrites = 0
    for _ in 0..<1000 where written < data.count {
        let n = link.client.write(data.span.extracting(written..<data.count), now: link.now)
        if written + n < data.count { shortWrites += 1 }
        written += n
        link.run(advanceTime: true)
    }
    link.run(advanceTime: true)
    r.expect(written == data.count && link.serverReceived == data, "TCP 20,000 bytes arrive intact")
    r.expect(shortWrites > 0 && link.clientEvents.contains(.writable), "TCP send buffer back-pressure")

    // FIN both ways: the client half-closes, the server finishes and closes.
    link.client.shutdownWrite(now: link.now)
    link.run()
    r.expect(link.serverEvents.contains(.endOfStream) && link.server?.state == .closeWait, "TCP FIN reaches the server")
    r.expect(link.client.state == .finWait2, "TCP client in FIN-WAIT-2")
    let reply: [UInt8] = [0x62, 0x79, 0x65]  // "bye"
    _ = link.server!.write(reply.span, now: link.now)
    link.server!.close(now: link.now)
    link.run()
    r.expect(link.clientReceived == reply && link.clientEvents.contains(.endOfStream), "TCP reply and FIN reach the client")
    r.expect(link.serverEvents.last == .closed(.normal) && link.server?.state == .closed, "TCP server closed")
    r.expect(link.clientEvents.last == .closed(.normal) && link.client.state == .timeWait, "TCP client in TIME-WAIT")
    link.run(advanceTime: true)
    r.expect(link.client.state == .closed && link.client.nextDeadline == nil, "TCP TIME-WAIT ends")
    r.expect(link.bad == 0, "TCP segments serialize and parse")
    r.mix(UInt64(link.segments))
    r.mix(link.client.statistics.bytesSent)
    r.mix(link.server!.statistics.bytesReceived)
}

@_cdecl("mirage_main")
public func mirageMain() -> Int32 {
    let r = Report()
    checkStacks(r)
    checkOffloadTCP(r)
    checkDHCP(r)
    checkViews(r)
    checkTCP(r)
    print("MirageTCPIP: \(r.checks) checks, \(r.failed) failed, digest " + hex(r.digest))
    return Int32(truncatingIfNeeded: r.failed)
}
