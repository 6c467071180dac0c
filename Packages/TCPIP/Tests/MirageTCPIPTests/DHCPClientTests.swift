import MirageDevices
@testable import MirageTCPIP
import Testing

let clientMAC = MACAddress(0x02, 0, 0, 0, 0, 0x42)
let serverAddress = IPv4Address(10, 1, 0, 1)
let offered = IPv4Address(10, 1, 0, 50)

/// A BOOTREPLY as a server would send it.
func reply(_ type: DHCPMessageType, xid: UInt32, yiaddr: IPv4Address = offered, mac: MACAddress = clientMAC,
           lease: UInt32 = 3600, t1: UInt32? = nil, t2: UInt32? = nil, mask: UInt32 = 0xFFFF_FF00,
           extra: [UInt8] = []) -> [UInt8] {
    var m = [UInt8](repeating: 0, count: 236)
    m[0] = 2; m[1] = 1; m[2] = 6
    m[4...7] = ArraySlice(bigEndian(xid))
    m[16...19] = ArraySlice(bigEndian(yiaddr.rawValue))
    m[28...33] = ArraySlice(mac.octets)
    m += bigEndian(DHCPMessage.magicCookie)
    m += [53, 1, type.rawValue, 54, 4] + bigEndian(serverAddress.rawValue)
    if type != .nak {
        m += [51, 4] + bigEndian(lease) + [1, 4] + bigEndian(mask) + [3, 4] + bigEndian(serverAddress.rawValue)
        m += [6, 8] + bigEndian(IPv4Address(10, 1, 0, 2).rawValue) + bigEndian(IPv4Address(10, 1, 0, 3).rawValue)
        m += [26, 2, 0x05, 0x78]
        if let t1 { m += [58, 4] + bigEndian(t1) }
        if let t2 { m += [59, 4] + bigEndian(t2) }
    }
    return m + extra + [255]
}

/// Reads a request the client sent: its type, xid and options.
struct SentRequest {
    var type: DHCPMessageType?
    var xid: UInt32
    var ciaddr: IPv4Address
    var requested: IPv4Address?
    var server: IPv4Address?

    init(_ bytes: [UInt8]) throws {
        let m = try DHCPMessage(checking: bytes.span)
        xid = m.xid
        ciaddr = m.ciaddr
        #expect(m.op == DHCPMessage.bootRequest)
        #expect(m.clientHardwareAddress == clientMAC)
        var type: DHCPMessageType? = nil, requested: IPv4Address? = nil, server: IPv4Address? = nil
        m.forEachOption { code, v in
            if code == 53 { type = DHCPMessageType(rawValue: v[0]) }
            if code == 50 { requested = IPv4Address(rawValue: v.u32(at: 0)) }
            if code == 54 { server = IPv4Address(rawValue: v.u32(at: 0)) }
        }
        self.type = type
        self.requested = requested
        self.server = server
    }
}

func only(_ actions: [DHCPClient.Action]) throws -> (payload: [UInt8], broadcast: Bool, to: IPv4Address?) {
    let sends = actions.compactMap { a -> ([UInt8], Bool, IPv4Address?)? in
        switch a {
        case .broadcast(let p, _): (p, true, nil)
        case .unicast(let p, let to): (p, false, to)
        default: nil
        }
    }
    try #require(sends.count == 1)
    return sends[0]
}

@Suite struct DHCPClientTests {
    /// DISCOVER → OFFER → REQUEST → ACK, then T1 renewal, T2 rebinding and expiry.
    @Test func theWholeLeaseLifecycle() throws {
        var c = DHCPClient(hardwareAddress: clientMAC, entropy: SeededEntropy(seed: 1))
        var now = Instant.zero
        let discover = try SentRequest(try only(c.start(now: now)).payload)
        #expect(discover.type == .discover)
        #expect(c.stateName == "selecting")

        let req = try only(c.receive(reply(.offer, xid: discover.xid).span, now: now))
        let request = try SentRequest(req.payload)
        #expect(req.broadcast && request.type == .request)
        #expect(request.xid == discover.xid && request.requested == offered && request.server == serverAddress)

        let bound = c.receive(reply(.ack, xid: request.xid, t1: 1800, t2: 3150).span, now: now)
        guard case .bind(let lease)? = bound.first else { Issue.record("no bind: \(bound)"); return }
        #expect(lease.address == offered && lease.prefixLength == 24 && lease.router == serverAddress)
        #expect(lease.dnsServers == [IPv4Address(10, 1, 0, 2), IPv4Address(10, 1, 0, 3)])
        #expect(lease.mtu == 1400 && lease.server == serverAddress)
        #expect(lease.renewalTime == .seconds(1800) && lease.rebindingTime == .seconds(3150) && lease.leaseTime == .seconds(3600))
        #expect(c.nextDeadline == now + .seconds(1800))

        // T1: a unicast REQUEST to the server with ciaddr set.
        now = now + .seconds(1800)
        let renew = try only(c.timerFired(now: now))
        #expect(!renew.broadcast && renew.to == serverAddress)
        let renewRequest = try SentRequest(renew.payload)
        #expect(renewRequest.type == .request && renewRequest.ciaddr == offered && renewRequest.requested == nil)
        #expect(c.stateName == "renewing")
        // An ACK extends the same lease: reported, no reconfiguration.
        #expect(c.receive(reply(.ack, xid: renewRequest.xid, t1: 1800, t2: 3150).span, now: now) == [.renewed(lease)])
        #expect(c.stateName == "bound")

        // No answer this time: retransmit halfway to T2, then rebind at T2.
        let since = now
        now = since + .seconds(1800)
        _ = try only(c.timerFired(now: now))
        let retransmitAt = try #require(c.nextDeadline)
        #expect(retransmitAt == now + .seconds(675), "half of the 1350 s left to T2")
        now = since + .seconds(3150)
        let rebind = try only(c.timerFired(now: now))
        #expect(rebind.broadcast && c.stateName == "rebinding")
        // Expiry: unbind and start over.
        now = since + .seconds(3600)
        var actions: [DHCPClient.Action] = []
        while let d = c.nextDeadline, d <= now { actions += c.timerFired(now: d) }
        #expect(actions.contains(.unbind))
        #expect(c.stateName == "selecting" && c.lease == nil)
    }

    @Test func aNAKStartsOver() throws {
        var c = DHCPClient(hardwareAddress: clientMAC, entropy: SeededEntropy(seed: 2))
        let d = try SentRequest(try only(c.start(now: .zero)).payload)
        let r = try SentRequest(try only(c.receive(reply(.offer, xid: d.xid).span, now: .zero)).payload)
        let again = try SentRequest(try only(c.receive(reply(.nak, xid: r.xid).span, now: .zero)).payload)
        #expect(again.type == .discover && again.xid != d.xid)
    }

    @Test func repliesForOthersOrOtherExchangesAreIgnored() throws {
        var c = DHCPClient(hardwareAddress: clientMAC, entropy: SeededEntropy(seed: 3))
        let d = try SentRequest(try only(c.start(now: .zero)).payload)
        #expect(c.receive(reply(.offer, xid: d.xid &+ 1).span, now: .zero).isEmpty, "wrong xid")
        #expect(c.receive(reply(.offer, xid: d.xid, mac: MACAddress(2, 9, 9, 9, 9, 9)).span, now: .zero).isEmpty, "other client")
        #expect(c.receive(reply(.ack, xid: d.xid).span, now: .zero).isEmpty, "an ACK while selecting")
        #expect(c.receive(reply(.offer, xid: d.xid, mask: 0xFF00_FF00).span, now: .zero).count == 1, "offers are taken as they come")
        #expect(c.ignoredMessages == 3)
    }

    @Test func discoverBacksOffExponentiallyWithJitter() throws {
        var c = DHCPClient(hardwareAddress: clientMAC, entropy: SeededEntropy(seed: 4))
        _ = c.start(now: .zero)
        var previous = Instant.zero
        var gaps: [Int64] = []
        for _ in 0..<6 {
            let next = try #require(c.nextDeadline)
            gaps.append((next - previous).milliseconds)
            previous = next
            #expect(try SentRequest(try only(c.timerFired(now: next)).payload).type == .discover)
        }
        // 4, 8, 16, 32, 64, 64 seconds, each ±1 s (RFC 2131 §4.1).
        for (gap, base) in zip(gaps, [4, 8, 16, 32, 64, 64] as [Int64]) {
            #expect(abs(gap - base * 1000) <= 1000)
        }
    }

    @Test func leasesWithBadMasksOrInconsistentTimesAreHandled() throws {
        var c = DHCPClient(hardwareAddress: clientMAC, entropy: SeededEntropy(seed: 5))
        let d = try SentRequest(try only(c.start(now: .zero)).payload)
        let r = try SentRequest(try only(c.receive(reply(.offer, xid: d.xid).span, now: .zero)).payload)
        #expect(c.receive(reply(.ack, xid: r.xid, mask: 0xFF00_FF00).span, now: .zero).isEmpty, "non-contiguous mask refused")
        let bound = c.receive(reply(.ack, xid: r.xid, lease: 100, t1: 200, t2: 300).span, now: .zero)
        guard case .bind(let lease)? = bound.first else { Issue.record("no bind"); return }
        #expect(lease.renewalTime < lease.rebindingTime && lease.rebindingTime < lease.leaseTime)
    }

    @Test func malformedMessagesAreRefusedByTheView() {
        var r = reply(.offer, xid: 1)
        #expect(throws: TCPIPError.truncated(layer: .dhcp, expected: 240, got: 100)) { _ = try DHCPMessage(checking: Array(r[0..<100]).span) }
        r[236] = 0
        #expect(throws: TCPIPError.badDHCPCookie(0x0082_5363)) { _ = try DHCPMessage(checking: r.span) }
        var long = reply(.offer, xid: 1)
        long.removeLast()
        long += [12, 200, 1, 2]  // hostname claiming 200 bytes
        #expect(throws: TCPIPError.malformedDHCPOption(code: 12)) { _ = try DHCPMessage(checking: long.span) }
    }

    /// The stack runs the client over the wire: a tiny DHCP server on the
    /// other side of a memory network hands out a lease.
    @Test func theStackConfiguresItselfFromALease() throws {
        let t = TestNet()
        let iface = t.net.attach(mac: clientMAC)
        let stack = IPStack(interface: iface, configuration: .init(dhcp: true), clock: t.clock, scheduler: t.timers,
                            entropy: SeededEntropy(seed: 6))
        let server = t.net.attach(mac: MACAddress(2, 0, 0, 0, 0, 1))
        let tiny = TinyDHCPServer(interface: server)
        server.handler = tiny
        t.settle()
        #expect(stack.ipv4 == IPv4Configuration(address: offered, prefixLength: 24, gateway: serverAddress))
        #expect(stack.dhcpState == "bound")
        #expect(stack.linkMTU == 1400, "the lease's interface MTU applies")
        #expect(tiny.seen == [.discover, .request])
    }
}

/// Answers DISCOVER with OFFER and REQUEST with ACK, broadcast at layer 2.
final class TinyDHCPServer: NetworkInterfaceHandler {
    let interface: MemoryInterface
    var seen: [DHCPMessageType] = []
    init(interface: MemoryInterface) { self.interface = interface }

    func frameReceived(_ frame: Span<UInt8>, metadata: ReceiveMetadata) {
        guard let eth = try? EthernetFrame(checking: frame), eth.etherType == EtherType.ipv4,
              let ip = try? IPv4Packet(checking: eth.payload), ip.protocol == IPProtocol.udp,
              let udp = try? UDPDatagram(checking: ip.payload, source: ip.source, destination: ip.destination),
              udp.destinationPort == 67, let m = try? DHCPMessage(checking: udp.payload)
        else { return }
        var type: DHCPMessageType? = nil
        m.forEachOption { code, v in if code == 53 { type = DHCPMessageType(rawValue: v[0]) } }
        guard let type else { return }
        seen.append(type)
        let answer = reply(type == .discover ? .offer : .ack, xid: m.xid)
        let total = 14 + 20 + 8 + answer.count
        try? interface.transmit(length: total, metadata: .none) { b in
            EthernetHeader(destination: .broadcast, source: interface.macAddress, etherType: EtherType.ipv4).emit(into: &b)
            for i in 0..<answer.count { b[42 + i] = answer[i] }
            UDPHeader(sourcePort: 67, destinationPort: 68, payloadLength: answer.count)
                .emit(into: &b, at: 34, source: serverAddress, destination: .broadcast)
            IPv4Header(source: serverAddress, destination: .broadcast, protocol: IPProtocol.udp, payloadLength: 8 + answer.count)
                .emit(into: &b, at: 14)
            return total
        }
    }
    func receiveBatchEnded() {}
    func transmitReady() {}
}
