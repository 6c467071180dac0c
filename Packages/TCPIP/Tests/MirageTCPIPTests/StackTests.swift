import MirageDevices
@testable import MirageTCPIP
import Testing

/// Two (or more) stacks on an in-memory switch with an explicit clock.
final class TestNet {
    let clock = ManualClock()
    lazy var timers = ManualTimerScheduler(clock: clock)
    let net = MemoryNetwork()

    func stack(_ last: UInt8, mac: UInt8? = nil, wrap: ((MemoryInterface) -> Void)? = nil) -> IPStack<MemoryInterface> {
        let interface = net.attach(mac: MACAddress(0x02, 0, 0, 0, 0, mac ?? last))
        return IPStack(interface: interface,
                       configuration: .init(ipv4: IPv4Configuration(address: IPv4Address(10, 0, 0, last), prefixLength: 24)),
                       clock: clock, scheduler: timers, entropy: SeededEntropy(seed: UInt64(last)))
    }

    /// Moves frames and time until nothing is in flight (bounded).
    func settle(maxSteps: Int = 10_000, step: Interval = .milliseconds(1)) {
        var steps = 0
        while steps < maxSteps {
            let moved = net.deliverPending()
            if moved == 0 {
                guard let next = timers.nextDeadline(), next <= clock.now() + .seconds(5) else { return }
                clock.advance(to: max(next, clock.now()))
                timers.runDue()
            }
            steps += 1
        }
    }
}

final class UDPRecorder: UDPHandler {
    var datagrams: [(payload: [UInt8], from: Endpoint, to: Endpoint)] = []
    var errors: [(ICMPReport, Endpoint)] = []
    /// When set, every datagram is sent back to its source.
    var echoStack: (any Stack)?

    func datagramReceived(_ payload: Span<UInt8>, from source: Endpoint, to destination: Endpoint, on socket: UDPSocketID) {
        datagrams.append((Array(copying: payload), source, destination))
        if let echoStack { try? echoStack.send(payload, to: source, from: socket) }
    }

    func errorReceived(_ report: ICMPReport, about destination: Endpoint, on socket: UDPSocketID) {
        errors.append((report, destination))
    }
}

final class PingRecorder: EchoReplyHandler {
    var replies: [(IPv4Address, UInt16, UInt16, Int)] = []
    func echoReplyReceived(from source: IPv4Address, identifier: UInt16, sequence: UInt16, payloadLength: Int) {
        replies.append((source, identifier, sequence, payloadLength))
    }
}

let addressA = IPv4Address(10, 0, 0, 1)
let addressB = IPv4Address(10, 0, 0, 2)

@Suite struct StackTests {
    @Test func udpEchoAcrossTwoStacksResolvingARPFirst() throws {
        let t = TestNet()
        let a = t.stack(1), b = t.stack(2)
        let server = UDPRecorder()
        server.echoStack = a
        _ = try a.bindUDP(port: 7, address: nil, handler: server)
        let client = UDPRecorder()
        let socket = try b.bindUDP(port: 0, address: nil, handler: client)
        let port = try #require(b.localEndpoint(of: socket)?.port)
        #expect(port >= 49152, "ephemeral range")
        let message: [UInt8] = Array("hello, mirage".utf8)
        try b.send(message.span, to: Endpoint(.v4(addressA), 7), from: socket)
        #expect(b.arpEntry(for: addressA) == nil, "queued while ARP resolves")
        t.settle()
        #expect(server.datagrams.map(\.payload) == [message])
        #expect(server.datagrams.first?.from == Endpoint(.v4(addressB), port))
        #expect(server.datagrams.first?.to == Endpoint(.v4(addressA), 7))
        #expect(client.datagrams.map(\.payload) == [message])
        #expect(b.arpEntry(for: addressA) == MACAddress(2, 0, 0, 0, 0, 1))
        #expect(a.arpEntry(for: addressB) == MACAddress(2, 0, 0, 0, 0, 2), "learned from the request for us")
        #expect(a.statistics.totalDropped == 0 && b.statistics.totalDropped == 0)
    }

    @Test(arguments: [1472, 1473, 8000, 30_000, 65_507])
    func largeDatagramsAreFragmentedAndReassembled(size: Int) throws {
        let t = TestNet()
        let a = t.stack(1), b = t.stack(2)
        let server = UDPRecorder()
        server.echoStack = a
        _ = try a.bindUDP(port: 7, address: nil, handler: server)
        let client = UDPRecorder()
        let socket = try b.bindUDP(port: 0, address: nil, handler: client)
        let message = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try b.send(message.span, to: Endpoint(.v4(addressA), 7), from: socket)
        t.settle()
        #expect(server.datagrams.map(\.payload.count) == [size])
        #expect(client.datagrams.first?.payload == message)
        #expect((b.statistics.fragmentsSent > 0) == (size > 1472))
    }

    @Test func bigPingsAreAnswered() throws {
        let t = TestNet()
        let a = t.stack(1), b = t.stack(2)
        let pings = PingRecorder()
        b.echoReplyHandler = pings
        try b.ping(addressA, identifier: 9, sequence: 1, payloadLength: 56)
        try b.ping(addressA, identifier: 9, sequence: 2, payloadLength: 60_000)
        t.settle()
        #expect(pings.replies.map(\.2) == [1, 2])
        #expect(pings.replies.map(\.3) == [56, 60_000])
        #expect(a.statistics.echoRepliesSent == 2)
    }

    @Test func aClosedPortAnswersPortUnreachable() throws {
        let t = TestNet()
        _ = t.stack(1)
        let b = t.stack(2)
        let client = UDPRecorder()
        let socket = try b.bindUDP(port: 5000, address: nil, handler: client)
        try b.send([1, 2, 3].span, to: Endpoint(.v4(addressA), 9), from: socket)
        t.settle()
        #expect(client.errors.count == 1)
        #expect(client.errors.first?.0 == .destinationUnreachable(code: 3))
        #expect(client.errors.first?.1 == Endpoint(.v4(addressA), 9))
    }

    @Test func icmpErrorsAreRateLimited() throws {
        let t = TestNet()
        let a = t.stack(1), b = t.stack(2)
        let socket = try b.bindUDP(port: 5000, address: nil, handler: UDPRecorder())
        b.resolve(addressA)
        t.settle()
        for _ in 0..<200 { try b.send([1].span, to: Endpoint(.v4(addressA), 9), from: socket) }
        t.net.runUntilIdle()
        #expect(a.statistics.icmpErrorsSent == 50, "the burst")
        #expect(a.statistics.icmpErrorsRateLimited == 150)
        #expect(a.statistics.droppedNoListener == 200)
        // A second later the bucket has refilled for another 100.
        t.clock.advance(by: .seconds(1))
        for _ in 0..<200 { try b.send([1].span, to: Endpoint(.v4(addressA), 9), from: socket) }
        t.net.runUntilIdle()
        #expect(a.statistics.icmpErrorsSent == 100, "refilled up to the burst size")
    }

    @Test func unresolvableAddressesFailAfterRetriesAndQueuesAreBounded() throws {
        let t = TestNet()
        let b = t.stack(2)
        let socket = try b.bindUDP(port: 5000, address: nil, handler: UDPRecorder())
        let nobody = Endpoint(.v4(IPv4Address(10, 0, 0, 99)), 7)
        for _ in 0..<40 { try? b.send([1].span, to: nobody, from: socket) }
        #expect(b.arpStatistics.droppedPackets == 8, "32 queued, 8 refused")
        t.settle()
        #expect(b.arpStatistics.requestsSent == 3)
        #expect(b.arpStatistics.failures == 1)
        #expect(b.statistics.droppedARPPending == 40)
        #expect(throws: DeviceError.networkUnreachable(.v4(IPv4Address(192, 168, 1, 1)))) {
            try b.send([1].span, to: Endpoint(.v4(IPv4Address(192, 168, 1, 1)), 7), from: socket)
        }
    }

    @Test func bindConflictsAndLimits() throws {
        let t = TestNet()
        let a = t.stack(1)
        _ = try a.bindUDP(port: 7, address: nil, handler: UDPRecorder())
        #expect(throws: DeviceError.addressInUse(Endpoint(.v4(addressA), 7))) {
            _ = try a.bindUDP(port: 7, address: .v4(addressA), handler: UDPRecorder())
        }
        #expect(throws: DeviceError.addressNotAvailable(.v4(addressB))) {
            _ = try a.bindUDP(port: 8, address: .v4(addressB), handler: UDPRecorder())
        }
        // TCP and UDP ports are separate; TCP listeners conflict like UDP sockets.
        _ = try a.listen(port: 7, address: .v4(addressA), backlog: 1, handler: NoTCP())
        #expect(throws: DeviceError.addressInUse(Endpoint(.v4(.any), 7))) {
            _ = try a.listen(port: 7, address: nil, backlog: 1, handler: NoTCP())
        }
        #expect(throws: DeviceError.invalidArgument("backlog must be positive")) {
            _ = try a.listen(port: 8, address: nil, backlog: 0, handler: NoTCP())
        }
    }

    @Test func gratuitousARPAnnouncesAnAddressChange() throws {
        let t = TestNet()
        let a = t.stack(1), b = t.stack(2)
        t.settle()
        a.setIPv4(IPv4Configuration(address: IPv4Address(10, 0, 0, 7), prefixLength: 24))
        // b knows nothing of .7 yet: an announcement only updates existing entries.
        t.settle()
        #expect(b.arpEntry(for: IPv4Address(10, 0, 0, 7)) == nil)
        b.resolve(IPv4Address(10, 0, 0, 7))
        t.settle()
        #expect(b.arpEntry(for: IPv4Address(10, 0, 0, 7)) == MACAddress(2, 0, 0, 0, 0, 1))
    }

    /// Sends 500 datagrams b→a over a link with `faults` on a's side and
    /// returns what a's UDP socket received and what was sent.
    func runLossy(_ faults: FaultConfiguration, seed: UInt64, sizes: [Int]) throws
        -> (received: [[UInt8]], sent: [[UInt8]], stack: IPStackStatistics, link: FaultStatistics)
    {
        let t = TestNet()
        let ia = t.net.attach(mac: MACAddress(2, 0, 0, 0, 0, 1))
        let lossy = FaultInjector(ia, configuration: faults, seed: seed, clock: t.clock, scheduler: t.timers)
        defer { lossy.detach() }
        let a = IPStack(interface: lossy, configuration: .init(ipv4: IPv4Configuration(address: addressA, prefixLength: 24)),
                        clock: t.clock, scheduler: t.timers, entropy: SeededEntropy(seed: 11))
        let b = t.stack(2)
        let server = UDPRecorder()
        _ = try a.bindUDP(port: 7, address: nil, handler: server)
        let socket = try b.bindUDP(port: 0, address: nil, handler: UDPRecorder())
        var sent: [[UInt8]] = []
        for i in 0..<500 {
            let size = sizes[i % sizes.count]
            let message = (0..<size).map { UInt8(truncatingIfNeeded: $0 ^ i) } + [UInt8(i & 0xFF), UInt8(i >> 8)]
            sent.append(message)
            try? b.send(message.span, to: Endpoint(.v4(addressA), 7), from: socket)
            t.settle(maxSteps: 50)
        }
        t.settle()
        return (server.datagrams.map(\.payload), sent, a.statistics, lossy.receiveStatistics)
    }

    /// One corrupted byte per frame is always caught by a checksum (IPv4
    /// header, UDP, or the MAC/EtherType no longer matching), so a
    /// single-frame datagram arrives intact or not at all. (Two corrupted
    /// fragments of one datagram can cancel out in the 16-bit Internet
    /// checksum, as in any IP stack; the Ethernet FCS, absent here, is what
    /// stops that on a real link.)
    @Test(arguments: [UInt64(1), 2, 3])
    func corruptedFramesNeverDeliverCorruptData(seed: UInt64) throws {
        var faults = FaultConfiguration()
        faults.directions = .receive
        faults.corruptRate = 0.3
        faults.duplicateRate = 0.05
        let run = try runLossy(faults, seed: seed, sizes: [10, 700, 1400])
        let sent = Set(run.sent)
        #expect(run.received.count > 300)
        for d in run.received { #expect(sent.contains(d), "delivered bytes equal bytes sent") }
        #expect(run.link.corrupted > 100)
        #expect(run.stack.totalDropped >= run.link.corrupted / 2, "corrupt frames are counted drops")
    }

    /// Loss, duplication and reordering of fragments: datagrams arrive whole
    /// and exact, or not at all.
    @Test(arguments: [UInt64(1), 2, 3])
    func fragmentsSurviveLossDuplicationAndReordering(seed: UInt64) throws {
        var faults = FaultConfiguration()
        faults.directions = .receive
        faults.dropRate = 0.03
        faults.duplicateRate = 0.1
        faults.reorderRate = 0.2
        let run = try runLossy(faults, seed: seed, sizes: [10, 3000, 9000])
        let sent = Set(run.sent)
        #expect(run.received.count > 300)
        for d in run.received { #expect(sent.contains(d), "delivered bytes equal bytes sent") }
        #expect(run.link.reordered > 100 && run.link.duplicated > 50)
    }

    @Test func garbageFramesAreCountedDropsNeverTraps() throws {
        let t = TestNet()
        let a = t.stack(1)
        let random = SeededEntropy(seed: 77)
        let ours = MACAddress(2, 0, 0, 0, 0, 1).octets
        for i in 0..<5000 {
            var frame = random.bytes(Int(random.next(below: 120)))
            // Aim most frames at us with a plausible EtherType, and give
            // half the IPv4 ones a valid header (our address, a fitting
            // length, a correct checksum) so that random bytes reach ICMP,
            // UDP, DHCP and the reassembler, not just the IPv4 checks.
            if frame.count >= 14 && i % 4 != 0 {
                for k in 0..<6 { frame[k] = ours[k] }
                frame[12] = 0x08
                frame[13] = i % 3 == 0 ? 0x06 : 0x00
                if frame[13] == 0 && frame.count >= 34 && i % 2 == 0 {
                    frame[14] = 0x45
                    let total = frame.count - 14
                    frame[16] = UInt8(total >> 8); frame[17] = UInt8(total & 0xFF)
                    frame[23] = [IPProtocol.icmp, IPProtocol.udp, 99][i % 3]
                    frame[30] = 10; frame[31] = 0; frame[32] = 0; frame[33] = 1
                    if i % 5 != 0 { frame[20] = 0; frame[21] = 0 }  // most not fragments
                    frame[24] = 0; frame[25] = 0
                    let sum = InternetChecksum.of(Array(frame[14..<34]).span)
                    frame[24] = UInt8(sum >> 8); frame[25] = UInt8(sum & 0xFF)
                }
            }
            a.frameReceived(frame.span, metadata: .none)
        }
        #expect(a.statistics.framesReceived == 5000)
        #expect(a.statistics.totalDropped > 3000)
        // The crafted headers got through to the layers above IPv4.
        let s = a.statistics
        #expect(s.droppedMalformedUDP + s.droppedBadUDPChecksum + s.droppedMalformedICMP + s.droppedBadICMPChecksum > 100)
        #expect(s.droppedFragments + a.reassemblyStatistics.malformed + UInt64(a.reassemblyStatistics.reassembled) > 0
                || s.droppedUnknownProtocol > 0)
    }
}

final class NoTCP: TCPHandler {
    func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {}
    func connectionEstablished(_ connection: ConnectionID) {}
    func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {}
    func endOfStream(on connection: ConnectionID) {}
    func writable(_ connection: ConnectionID) {}
    func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {}
}

@Suite struct PathMTUAndMulticastTests {
    /// An ICMP "fragmentation needed" about a datagram b sent lowers b's
    /// path MTU to that destination and reaches the socket that sent it.
    @Test func fragmentationNeededLowersThePathMTU() throws {
        let t = TestNet()
        let b = t.stack(2)
        let client = UDPRecorder()
        let socket = try b.bindUDP(port: 4000, address: nil, handler: client)
        let far = IPv4Address(10, 0, 0, 77)
        #expect(b.pathMTU(to: far) == 1500)
        // A spoofed error quoting a datagram b never sent changes nothing (RFC 5927).
        b.frameReceived(fragmentationNeeded(quotedSource: IPv4Address(10, 0, 0, 50), far: far, mtu: 68).span, metadata: .none)
        #expect(b.pathMTU(to: far) == 1500)
        #expect(client.errors.isEmpty)
        let frame = fragmentationNeeded(quotedSource: addressB, far: far, mtu: 1280)
        b.frameReceived(frame.span, metadata: .none)
        #expect(b.pathMTU(to: far) == 1280)
        #expect(b.pathMTU(to: addressA) == 1500, "only that destination")
        #expect(client.errors.first?.0 == .fragmentationNeeded(nextHopMTU: 1280))
        #expect(client.errors.first?.1 == Endpoint(.v4(far), 53))
        // A later report cannot raise it; expiry does (RFC 1191 §6.3).
        b.frameReceived(fragmentationNeeded(quotedSource: addressB, far: far, mtu: 1400).span, metadata: .none)
        #expect(b.pathMTU(to: far) == 1280)
        t.clock.advance(by: .seconds(601))
        #expect(b.pathMTU(to: far) == 1500)
        _ = socket
    }

    /// An ICMP "fragmentation needed" from a router at 10.0.0.9 quoting a
    /// UDP datagram from `quotedSource`:4000 to `far`:53.
    func fragmentationNeeded(quotedSource: IPv4Address, far: IPv4Address, mtu: UInt32) -> [UInt8] {
        var quoted = [UInt8](repeating: 0, count: 28)
        var q = quoted.mutableSpan
        IPv4Header(source: quotedSource, destination: far, protocol: IPProtocol.udp, payloadLength: 1480).emit(into: &q)
        q.setU16(4000, at: 20)
        q.setU16(53, at: 22)
        _ = consume q
        let icmpLength = 8 + quoted.count
        let total = 14 + 20 + icmpLength
        var frame = [UInt8](repeating: 0, count: total)
        var f = frame.mutableSpan
        EthernetHeader(destination: MACAddress(2, 0, 0, 0, 0, 2), source: MACAddress(2, 0, 0, 0, 0, 9), etherType: EtherType.ipv4).emit(into: &f)
        IPv4Header(source: IPv4Address(10, 0, 0, 9), destination: addressB, protocol: IPProtocol.icmp, payloadLength: icmpLength).emit(into: &f, at: 14)
        for i in 0..<quoted.count { f[42 + i] = quoted[i] }
        ICMPv4Header(type: 3, code: 4, restOfHeader: mtu).emit(into: &f, at: 34, dataLength: quoted.count)
        _ = consume f
        return frame
    }

    @Test func multicastIsAcceptedOnlyForJoinedGroups() throws {
        let t = TestNet()
        let a = t.stack(1), b = t.stack(2)
        let server = UDPRecorder()
        _ = try a.bindUDP(port: 5353, address: nil, handler: server)
        let socket = try b.bindUDP(port: 0, address: nil, handler: UDPRecorder())
        let group = IPv4Address(224, 0, 0, 251)
        try b.send([1].span, to: Endpoint(.v4(group), 5353), from: socket)
        t.settle()
        #expect(server.datagrams.isEmpty)
        #expect(a.statistics.droppedNotOurMAC == 1)
        try a.joinMulticastGroup(group)
        try b.send([2].span, to: Endpoint(.v4(group), 5353), from: socket)
        t.settle()
        #expect(server.datagrams.map(\.payload) == [[2]])
        #expect(server.datagrams.first?.to == Endpoint(.v4(group), 5353))
        #expect(throws: DeviceError.invalidArgument("10.0.0.1 is not a multicast address")) { try a.joinMulticastGroup(addressA) }
        a.leaveMulticastGroup(group)
        try b.send([3].span, to: Endpoint(.v4(group), 5353), from: socket)
        t.settle()
        #expect(server.datagrams.count == 1)
    }
}
