// Embedded check program for MirageTCPIP (Scripts/check-embedded).
//
// Runs two IPStacks over a MemoryNetwork (one behind a PcapInterface and a
// FaultInjector, so the stack is specialised over wrapped interfaces too):
// ARP resolution, UDP echo, a fragmented 20,000-byte datagram, a
// 60,000-byte ping, port unreachable, a DHCP client exchange, and the wire
// views on good and bad bytes. `mirage_main` returns the number of failed
// checks (0 = pass).

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
    r.expect(tcpRefused(a), "TCP refused until part 2")
    lossy.detach()
    pcap.detach()
}

func tcpRefused(_ s: IPStack<FaultInjector<PcapInterface<MemoryInterface>>>) -> Bool {
    final class NoTCP: TCPHandler {
        func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {}
        func connectionEstablished(_ connection: ConnectionID) {}
        func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {}
        func endOfStream(on connection: ConnectionID) {}
        func writable(_ connection: ConnectionID) {}
        func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {}
    }
    do {
        _ = try s.listen(port: 80, address: nil, backlog: 1, handler: NoTCP())
        return false
    } catch {
        if case .unsupported = error { return true }
        return false
    }
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

@_cdecl("mirage_main")
public func mirageMain() -> Int32 {
    let r = Report()
    checkStacks(r)
    checkDHCP(r)
    checkViews(r)
    print("MirageTCPIP: \(r.checks) checks, \(r.failed) failed, digest " + hex(r.digest))
    return Int32(truncatingIfNeeded: r.failed)
}
