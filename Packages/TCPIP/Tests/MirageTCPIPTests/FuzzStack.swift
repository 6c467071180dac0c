// The `tcpip-stack` fuzz target: whole `IPStack`s driven by fuzzer input,
// for the code that interprets network bytes beyond the wire views (ICMP
// errors and their quoted datagrams, echo, DHCP replies and leases, fragment
// reassembly, ARP, UDP delivery, path MTU learning) and for everything the
// stacks send in answer. Compiled with FuzzDecoders.swift (same imports:
// MirageDevices, MirageTCPIP and the standard library only).
//
// Two stacks share one clock and timer scheduler and see every input frame:
//
//   static  MAC 02:00:00:00:00:01, 10.0.0.1/24 via 10.0.0.254; UDP port 7
//           echoes, ports 67 and 68 (bound to 10.0.0.1) only record. Small
//           ARP, reassembly and path MTU limits, so the fuzzer reaches them.
//   dhcp    MAC 02:00:00:00:00:03, `dhcp: true`, entropy seeded with 3; UDP
//           port 7 echoes once it has an address.
//
// The input is a sequence of records, each starting with a big-endian
// 16-bit word w:
//
//   0x0000-0x3FFF  a frame of w bytes (cut to what is left), delivered to
//                  both stacks with `ReceiveMetadata.none`
//   0x4000-0x7FFF  the same with `checksumVerified` set (length w & 0x3FFF)
//   0x8000-0xBFFF  advance the clock by (v & 0x3FF) << (v >> 10) ms, v = w &
//                  0x3FFF, through `ManualTimerScheduler.run(until:)`; at
//                  most `maximumAdvance` in all per input
//   0xC000-0xFFFF  an application call: op = (w >> 10) & 0xF, arg = w & 0x3FF
//                  (see `applicationCall`)
//
// A DHCP reply (IPv4 without options, UDP 67 → 68) whose xid is 0 gets the
// xid of the DHCP stack's latest request patched in (UDP checksum fixed
// when it was right), so seeds and mutations reach the lease code whatever
// the xid is. Consecutive frames form one receive batch; `receiveBatchEnded`
// follows each batch.
//
// Checked, by trapping with `fuzzCheck`:
// - every frame a stack transmits parses with checksums verified: Ethernet
//   from its own MAC, then ARP (request or reply from its own addresses), or
//   IPv4 (option-less, TTL 64, within the link MTU, fragments in order and
//   of 8-byte multiples) carrying ICMP (echo reply or request, destination
//   unreachable) or UDP (checksum present; DHCP requests from its MAC), a
//   fragmented datagram's transport checksum verified once all fragments are
//   out; no frame past the MTU asked of the interface;
// - after every record: no statistics counter (stack, ARP, reassembly)
//   decreases; the reassembler's counters are those of a reference
//   reassembler fed the same fragments, whose memory and datagrams stay
//   within the configured bounds; path MTUs lie within 68...link MTU; the
//   DHCP stack's address is its lease's.

import MirageDevices
import MirageTCPIP

// MARK: - Target

/// What one run of `tcpip-stack` ended with (CorpusReplayTests compares it
/// with what the named seeds must do).
struct StackSummary {
    /// Counters of the static stack and of the DHCP stack.
    var staticStatistics = IPStackStatistics()
    var dhcpStatistics = IPStackStatistics()
    var reassembly = IPv4Reassembler.Statistics()
    var dhcpState: String? = nil
    var lease: DHCPLease? = nil
    var dhcpAddress: IPv4Address? = nil
    /// The static stack's path MTU to 10.0.0.2.
    var pathMTU = 0
    /// Frames both stacks transmitted after starting up.
    var framesEmitted = 0
    /// Echo replies received for our pings, datagrams delivered to the
    /// sockets, ICMP errors reported to them.
    var echoReplies = 0
    var datagrams = 0
    var reports: [ICMPReport] = []
}

/// `tcpip-stack`: see the top of this file.
func fuzzStack(_ bytes: Span<UInt8>) -> FuzzReport {
    let world = FuzzWorld()
    defer { world.tearDown() }
    world.run(bytes)
    var report = FuzzReport()
    report.parsed = world.emittedLayers
    report.mix(UInt64(world.emittedLayers.count))
    report.stack = world.summary()
    return report
}

enum FuzzStackConstants {
    static let staticMAC = MACAddress(0x02, 0, 0, 0, 0, 0x01)
    static let dhcpMAC = MACAddress(0x02, 0, 0, 0, 0, 0x03)
    static let staticAddress = IPv4Address(10, 0, 0, 1)
    static let peer = IPv4Address(10, 0, 0, 2)
    static let gateway = IPv4Address(10, 0, 0, 254)
    static let group = IPv4Address(224, 0, 0, 251)
    /// Destinations of application calls.
    static let destinations = [peer, IPv4Address(10, 0, 0, 255), IPv4Address(192, 0, 2, 1), group]
    static let mtu = 1500
    static let maximumFrames = 64
    static let maximumOtherRecords = 64
    /// Simulated time one input may cover: DHCP lease renewal and expiry,
    /// ARP and reassembly timeouts, path MTU expiry.
    static let maximumAdvance: Interval = .seconds(3600)
    static let ttl: UInt8 = 64
    /// The static stack's TCP connection table (listener on port 7, echo).
    static let maximumTCPConnections = 8
    /// Quotes of reassembled datagrams must carry offset 0 (the bug this
    /// target found; fixed, so the check is on).
    static let strictQuotes = true
}

// MARK: - The world

final class FuzzWorld {
    typealias C = FuzzStackConstants
    let clock = ManualClock()
    let timers: ManualTimerScheduler
    let staticNIC: FuzzInterface
    let dhcpNIC: FuzzInterface
    let staticStack: IPStack<FuzzInterface>
    let dhcpStack: IPStack<FuzzInterface>
    let staticEcho = FuzzUDPEcho()
    let dhcpEcho = FuzzUDPEcho()
    let recorder = FuzzRecorder()
    let tcpEcho = FuzzTCPEcho()
    var staticSocket: UDPSocketID? = nil
    var dhcpSocket: UDPSocketID? = nil
    var emittedLayers: [TCPIPError.Layer] = []
    var startupDone = false
    /// Reference reassembler: fed the fragments the static stack accepts.
    var shadow: IPv4Reassembler
    var joined = false
    var advanced: Interval = .zero
    var frame: [UInt8] = []

    static let reassembly: IPv4Reassembler.Configuration = {
        var r = IPv4Reassembler.Configuration()
        r.memoryLimit = 8192
        r.maximumDatagrams = 4
        r.maximumPieces = 8
        return r
    }()

    /// `offloads`: what both interfaces announce (`tcpip-vnet` gives them
    /// a tap's; `tcpip-stack` none).
    init(offloads: OffloadCapabilities = []) {
        let timers = ManualTimerScheduler(clock: clock)
        self.timers = timers
        var staticConfig = IPStack<FuzzInterface>.Configuration(
            ipv4: IPv4Configuration(address: C.staticAddress, prefixLength: 24, gateway: C.gateway))
        staticConfig.reassembly = Self.reassembly
        staticConfig.arp.maximumEntries = 8
        staticConfig.arp.pendingPacketsPerAddress = 4
        staticConfig.arp.pendingBytesLimit = 16384
        staticConfig.maximumPathMTUEntries = 4
        staticConfig.icmpErrorBurst = 8
        staticConfig.maximumTCPConnections = C.maximumTCPConnections
        staticConfig.tcpResetBurst = 8
        staticConfig.tcp.sendBufferSize = 8192
        staticConfig.tcp.receiveBufferSize = 8192
        staticConfig.tcp.maximumSegmentLifetime = .seconds(5)
        shadow = IPv4Reassembler(configuration: Self.reassembly)
        let staticNIC = FuzzInterface(mac: C.staticMAC, offloads: offloads)
        let dhcpNIC = FuzzInterface(mac: C.dhcpMAC, offloads: offloads)
        staticNIC.checker.stackAddresses = [C.staticAddress]
        self.staticNIC = staticNIC
        self.dhcpNIC = dhcpNIC
        let staticStack = IPStack(interface: staticNIC, configuration: staticConfig, clock: clock, scheduler: timers,
                                  entropy: SeededEntropy(seed: 1))
        let dhcpStack = IPStack(interface: dhcpNIC, configuration: .init(dhcp: true), clock: clock, scheduler: timers,
                                entropy: SeededEntropy(seed: 3))
        self.staticStack = staticStack
        self.dhcpStack = dhcpStack
        staticNIC.checker.linkMTU = { [unowned staticStack] in staticStack.linkMTU }
        dhcpNIC.checker.linkMTU = { [unowned dhcpStack] in dhcpStack.linkMTU }
        dhcpNIC.checker.currentAddress = { [unowned dhcpStack] in dhcpStack.ipv4?.address }
        staticEcho.stack = staticStack
        dhcpEcho.stack = dhcpStack
        staticEcho.recorder = recorder
        dhcpEcho.recorder = recorder
        staticStack.echoReplyHandler = recorder
        dhcpStack.echoReplyHandler = recorder
        dhcpStack.configurationHandler = dhcpNIC.checker
        do {
            staticSocket = try staticStack.bindUDP(port: 7, address: nil, handler: staticEcho)
            let plain = FuzzUDPEcho()
            plain.recorder = recorder
            _ = try staticStack.bindUDP(port: 67, address: .v4(C.staticAddress), handler: plain)
            _ = try staticStack.bindUDP(port: 68, address: nil, handler: plain)
            dhcpSocket = try dhcpStack.bindUDP(port: 7, address: nil, handler: dhcpEcho)
            tcpEcho.stack = staticStack
            _ = try staticStack.listen(port: 7, address: nil, backlog: 4, handler: tcpEcho)
        } catch {
            fuzzFail("stack: binding the harness's sockets failed")
        }
        for nic in [staticNIC, dhcpNIC] { nic.onEmit = { [unowned self] layers in self.emitted(layers) } }
        startupDone = true
    }

    func emitted(_ layers: [TCPIPError.Layer]) {
        guard startupDone, emittedLayers.count < 256 else { return }
        emittedLayers += layers
    }

    func tearDown() {
        staticStack.detach()
        dhcpStack.detach()
        // Cancelled timers hold their handlers until dropped from the queue.
        _ = timers.nextDeadline()
        staticEcho.stack = nil
        dhcpEcho.stack = nil
        staticNIC.onEmit = nil
        dhcpNIC.onEmit = nil
        staticNIC.checker.linkMTU = { C.mtu }
        dhcpNIC.checker.linkMTU = { C.mtu }
        dhcpNIC.checker.currentAddress = { nil }
        dhcpStack.configurationHandler = nil
    }

    func summary() -> StackSummary {
        var s = StackSummary()
        s.staticStatistics = staticStack.statistics
        s.dhcpStatistics = dhcpStack.statistics
        s.reassembly = staticStack.reassemblyStatistics
        s.dhcpState = dhcpStack.dhcpState
        s.lease = dhcpStack.dhcpLease
        s.dhcpAddress = dhcpStack.ipv4?.address
        s.pathMTU = staticStack.pathMTU(to: C.peer)
        s.framesEmitted = staticNIC.emitted + dhcpNIC.emitted - 2  // less the gratuitous ARP and DISCOVER
        s.echoReplies = recorder.echoReplies
        s.datagrams = recorder.datagrams
        s.reports = recorder.reports
        return s
    }

    // MARK: Running an input

    func run(_ bytes: Span<UInt8>) {
        var at = 0, frames = 0, others = 0
        var batchOpen = false
        var before = counters()
        while at + 2 <= bytes.count {
            let word = Int(bytes[at]) << 8 | Int(bytes[at + 1])
            at += 2
            if word < 0x8000 {
                let length = min(word & 0x3FFF, bytes.count - at)
                let range = at..<(at + length)
                at += length
                guard frames < C.maximumFrames else { continue }
                frames += 1
                deliver(bytes.extracting(range), verified: word & 0x4000 != 0)
                batchOpen = true
            } else {
                guard others < C.maximumOtherRecords else { continue }
                others += 1
                if batchOpen { endBatch(); batchOpen = false }
                if word < 0xC000 {
                    advance(word & 0x3FFF)
                } else {
                    applicationCall(op: (word >> 10) & 0xF, arg: word & 0x3FF)
                }
            }
            before = checkInvariants(since: before)
        }
        if batchOpen { endBatch() }
        _ = checkInvariants(since: before)
        // The reference reassembler's accounting drains to nothing.
        shadow.expire(now: clock.now() + Self.reassembly.timeout)
        fuzzCheck(shadow.memoryInUse == 0 && shadow.inProgress == 0, "stack: reassembler memory not given back")
    }

    func endBatch() {
        staticStack.receiveBatchEnded()
        dhcpStack.receiveBatchEnded()
    }

    func deliver(_ input: Span<UInt8>, verified: Bool) {
        deliver(input, metadata: ReceiveMetadata(checksumVerified: verified))
    }

    /// Delivers `input` (copied, the DHCP xid patched; with `patch`, any
    /// other change to the copy) to both stacks with `metadata`.
    func deliver(_ input: Span<UInt8>, metadata: ReceiveMetadata, patch: ((inout [UInt8]) -> Void)? = nil) {
        let verified = metadata.checksumVerified
        var frame: [UInt8] = []
        swap(&frame, &self.frame)  // reuse the buffer's capacity
        defer { swap(&frame, &self.frame) }
        frame.removeAll(keepingCapacity: true)
        for i in input.indices { frame.append(input[i]) }
        if let xid = dhcpNIC.checker.lastXid { patchDHCPTransactionID(&frame, xid) }
        patch?(&frame)
        let span = frame.span
        shadowAdd(span, verified: verified)
        staticStack.frameReceived(span, metadata: metadata)
        dhcpStack.frameReceived(span, metadata: metadata)
    }

    /// Feeds the reference reassembler what the static stack's reassembler
    /// gets: IPv4 fragments in untagged frames for its MAC (or broadcast,
    /// or the joined group's), addressed to it.
    func shadowAdd(_ span: Span<UInt8>, verified: Bool) {
        do throws(TCPIPError) {
            let ethernet = try EthernetFrame(checking: span)
            guard ethernet.vlanID == nil, ethernet.etherType == EtherType.ipv4 else { return }
            let mac = ethernet.destination
            guard mac == C.staticMAC || mac.isBroadcast || (joined && mac == MACAddress(0x01, 0x00, 0x5E, 0, 0, 251))
            else { return }
            let packet = try IPv4Packet(checking: ethernet.payload, verifyChecksum: !verified)
            guard packet.isFragment else { return }
            let d = packet.destination
            guard d == .broadcast || d == C.staticAddress || d == IPv4Address(10, 0, 0, 255) || (joined && d == C.group)
            else { return }
            _ = shadow.add(packet, now: clock.now())
        } catch {
            return
        }
    }

    func advance(_ v: Int) {
        let ms = Int64(v & 0x3FF) << Int64(v >> 10)
        let step = Interval(nanoseconds: min(Interval.milliseconds(ms).nanoseconds,
                                             C.maximumAdvance.nanoseconds - advanced.nanoseconds))
        advanced = advanced + step
        let limit = clock.now() + step
        // The reference reassembler times out at the deadlines the stack's
        // timer fires at.
        while let deadline = shadow.nextDeadline(), deadline <= limit { shadow.expire(now: deadline) }
        timers.run(until: limit)
    }

    /// Application calls: 0 ping, 1 UDP send (static stack), 2 UDP send
    /// (DHCP stack), 3 resolve, 4 join or leave 224.0.0.251, 5 fill or drain
    /// the transmit rings, 6 end a receive batch, 7 ping from the DHCP stack,
    /// 8 TCP connect (port 80 + `arg >> 8`, timeout 1–32 s), 9 TCP write
    /// (`size` × 8 bytes) on the newest connection, 10 close, abort,
    /// shut down or pause/resume the oldest.
    /// `arg & 3` picks a destination (10.0.0.2, 10.0.0.255, 192.0.2.1 off
    /// link, the group), `arg >> 2` a size in 24-byte units.
    func applicationCall(op: Int, arg: Int) {
        let destination = C.destinations[arg & 3]
        let size = (arg >> 2) * 24
        switch op {
        case 0: try? staticStack.ping(destination, identifier: 0x4d2, sequence: UInt16(arg), payloadLength: size)
        case 1, 2:
            let (stack, socket) = op == 1 ? (staticStack, staticSocket) : (dhcpStack, dhcpSocket)
            guard let socket else { return }
            let payload = [UInt8](repeating: UInt8(truncatingIfNeeded: arg), count: size)
            try? stack.send(payload.span, to: Endpoint(.v4(destination), 9), from: socket)
        case 3: staticStack.resolve(destination)
        case 4:
            if joined { staticStack.leaveMulticastGroup(C.group) } else { try? staticStack.joinMulticastGroup(C.group) }
            joined.toggle()
        case 5:
            for nic in [staticNIC, dhcpNIC] {
                nic.full.toggle()
                if !nic.full { nic.handler?.transmitReady() }
            }
        case 6: endBatch()
        case 7: try? dhcpStack.ping(destination, identifier: 0x4d3, sequence: UInt16(arg), payloadLength: size)
        case 8:
            if let id = try? staticStack.connect(to: Endpoint(.v4(destination), UInt16(80 + (arg >> 8))),
                                                 timeout: .seconds(Int64(1 + arg & 31)), handler: tcpEcho) {
                tcpEcho.open.append(id)
            }
        case 9:
            guard let id = tcpEcho.open.last else { return }
            let payload = [UInt8](repeating: UInt8(truncatingIfNeeded: arg), count: size * 8)
            _ = try? staticStack.write(payload.span, on: id)
        case 10:
            guard let id = tcpEcho.open.first else { return }
            switch arg & 3 {
            case 0: staticStack.close(id)
            case 1: staticStack.abort(id)
            case 2: staticStack.shutdownWrite(id)
            default: if arg & 4 == 0 { staticStack.pauseReading(id) } else { staticStack.resumeReading(id) }
            }
        default: break
        }
    }

    // MARK: Invariants

    func counters() -> [UInt64] {
        var all = statisticsFields(staticStack.statistics) + statisticsFields(dhcpStack.statistics)
        for a in [staticStack.arpStatistics, dhcpStack.arpStatistics] {
            all += [a.requestsSent, a.failures, a.droppedPackets, a.evictions]
        }
        for r in [staticStack.reassemblyStatistics, dhcpStack.reassemblyStatistics] {
            all += [r.reassembled, r.duplicates, r.malformed, r.overLimit, r.timedOut]
        }
        return all
    }

    func checkInvariants(since before: [UInt64]) -> [UInt64] {
        let now = counters()
        for (old, new) in zip(before, now) { fuzzCheck(new >= old, "stack: a counter went down") }
        fuzzCheck(staticStack.reassemblyStatistics == shadow.statistics,
                  "stack: reassembler counters differ from the reference's")
        fuzzCheck(shadow.memoryInUse >= 0 && shadow.memoryInUse <= Self.reassembly.memoryLimit
            && shadow.inProgress <= Self.reassembly.maximumDatagrams, "stack: reassembler past its bounds")
        fuzzCheck(staticStack.statistics.reassembled == staticStack.reassemblyStatistics.reassembled,
                  "stack: reassembled counted twice or not at all")
        for stack in [staticStack, dhcpStack] {
            let link = stack.linkMTU
            fuzzCheck(link >= 68 && link <= C.mtu, "stack: link MTU")
            for d in [C.peer, C.gateway, IPv4Address(192, 0, 2, 1)] {
                let mtu = stack.pathMTU(to: d)
                fuzzCheck(mtu >= 68 && mtu <= link, "stack: path MTU outside 68...link MTU")
            }
        }
        fuzzCheck(staticStack.ipv4?.address == C.staticAddress, "stack: the static address changed")
        fuzzCheck(staticStack.tcpConnectionCount <= C.maximumTCPConnections, "stack: TCP table past its bound")
        fuzzCheck(!tcpEcho.reentered, "stack: a TCP event delivered inside another")
        fuzzCheck(tcpEcho.eventsAfterClose == 0, "stack: a TCP event after connectionClosed")
        fuzzCheck(dhcpStack.ipv4 == dhcpStack.dhcpLease?.configuration, "stack: DHCP address is not the lease's")
        return now
    }
}

/// Ethernet (untagged), IPv4 without options, UDP 67 → 68, xid 0: `current`
/// goes in, and the UDP checksum is redone when it was right.
func patchDHCPTransactionID(_ frame: inout [UInt8], _ current: UInt32) {
    let udp = 14 + 20, xid = udp + 8 + 4
    guard frame.count >= xid + 4,
          frame[12] == 0x08, frame[13] == 0x00, frame[14] == 0x45, frame[14 + 9] == IPProtocol.udp,
          frame[udp] == 0, frame[udp + 1] == 67, frame[udp + 2] == 0, frame[udp + 3] == 68,
          frame[xid] | frame[xid + 1] | frame[xid + 2] | frame[xid + 3] == 0 else { return }
    let stated = Int(frame[udp + 4]) << 8 | Int(frame[udp + 5])
    let source = IPv4Address(rawValue: be32(frame.span, 14 + 12))
    let destination = IPv4Address(rawValue: be32(frame.span, 14 + 16))
    let hasChecksum = frame[udp + 6] | frame[udp + 7] != 0
    let datagramFits = stated >= 8 && udp + stated <= frame.count
    let wasRight = hasChecksum && datagramFits
        && udpReferenceSum(frame.span.extracting(udp..<(udp + stated)), source, destination) == 0xFFFF
    frame[xid] = UInt8(truncatingIfNeeded: current >> 24)
    frame[xid + 1] = UInt8(truncatingIfNeeded: current >> 16)
    frame[xid + 2] = UInt8(truncatingIfNeeded: current >> 8)
    frame[xid + 3] = UInt8(truncatingIfNeeded: current)
    if wasRight {
        frame[udp + 6] = 0
        frame[udp + 7] = 0
        var sum = ~udpReferenceSum(frame.span.extracting(udp..<(udp + stated)), source, destination)
        if sum == 0 { sum = 0xFFFF }
        frame[udp + 6] = UInt8(sum >> 8)
        frame[udp + 7] = UInt8(truncatingIfNeeded: sum)
    }
}

func statisticsFields(_ s: IPStackStatistics) -> [UInt64] {
    [s.framesReceived, s.framesTransmitted, s.transmitDropped, s.droppedMalformedEthernet, s.droppedNotOurMAC,
     s.droppedVLANTagged, s.droppedUnknownEtherType, s.droppedMalformedARP, s.droppedMalformedIPv4,
     s.droppedBadIPv4Checksum, s.droppedNotOurAddress, s.droppedFragments, s.droppedMalformedICMP,
     s.droppedBadICMPChecksum, s.droppedMalformedUDP, s.droppedBadUDPChecksum, s.droppedNoListener,
     s.droppedUnknownProtocol, s.droppedARPPending, s.echoRepliesSent, s.icmpErrorsSent, s.icmpErrorsRateLimited,
     s.icmpErrorsReceived, s.udpDelivered, s.udpSent, s.reassembled, s.fragmentsSent,
     s.droppedMalformedTCP, s.droppedBadTCPChecksum, s.droppedTCPNotUnicast, s.droppedTCPNoConnection,
     s.droppedTCPBacklogFull, s.droppedTCPListenUnexpected, s.tcpTransmitDropped, s.tcpSegmentsReceived,
     s.tcpSegmentsSent, s.tcpResetsSent, s.tcpResetsRateLimited, s.tcpConnectionsAccepted, s.tcpConnectionsOpened,
     s.tcpTimeWaitEvicted]
}

// MARK: - Handlers

final class FuzzRecorder: EchoReplyHandler {
    var echoReplies = 0
    var datagrams = 0
    var reports: [ICMPReport] = []
    func echoReplyReceived(from source: IPv4Address, identifier: UInt16, sequence: UInt16, payloadLength: Int) {
        echoReplies += 1
    }
}

/// Counts datagrams and ICMP reports; echoes datagrams when it has a stack.
final class FuzzUDPEcho: UDPHandler {
    weak var stack: IPStack<FuzzInterface>?
    var recorder: FuzzRecorder?

    func datagramReceived(_ payload: Span<UInt8>, from source: Endpoint, to destination: Endpoint, on socket: UDPSocketID) {
        recorder?.datagrams += 1
        try? stack?.send(payload, to: source, from: socket)
    }

    func errorReceived(_ report: ICMPReport, about destination: Endpoint, on socket: UDPSocketID) {
        if let recorder, recorder.reports.count < 64 { recorder.reports.append(report) }
    }
}

/// Echoes TCP data on accepted connections (and on connections it opened),
/// and checks the event contract: never re-entered, nothing after close.
final class FuzzTCPEcho: TCPHandler {
    weak var stack: IPStack<FuzzInterface>?
    var open: [ConnectionID] = []
    var closed: Set<ConnectionID> = []
    var reentered = false
    var eventsAfterClose = 0
    private var inside = false

    private func enter(_ id: ConnectionID) {
        if inside { reentered = true }
        inside = true
        if closed.contains(id) { eventsAfterClose += 1 }
    }

    func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {
        enter(connection); defer { inside = false }
        if open.count < 16 { open.append(connection) }
    }
    func connectionEstablished(_ connection: ConnectionID) { enter(connection); inside = false }
    func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {
        enter(connection); defer { inside = false }
        _ = try? stack?.write(bytes, on: connection)
    }
    func endOfStream(on connection: ConnectionID) {
        enter(connection); defer { inside = false }
        stack?.close(connection)
    }
    func writable(_ connection: ConnectionID) { enter(connection); inside = false }
    func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {
        enter(connection); defer { inside = false }
        open.removeAll { $0 == connection }
        if closed.count < 256 { closed.insert(connection) }
    }
}

// MARK: - The interface and its frame checker

/// A network interface whose transmit writes into one reusable buffer and
/// checks the frame. With `offloads` it acts as the device would: it checks
/// the request against what it announced and against the virtio-net header
/// a tap would write for it, then completes the requested checksum before
/// the frame is checked.
final class FuzzInterface: NetworkInterface {
    let macAddress: MACAddress
    let mtu = FuzzStackConstants.mtu
    let offloads: OffloadCapabilities
    /// Frames sent with segmentation offload (checked as one large frame).
    var segmentationFrames = 0
    var statistics = InterfaceStatistics()
    weak var handler: (any NetworkInterfaceHandler)?
    /// Transmit refuses with `wouldBlock` while set.
    var full = false
    var emitted = 0
    var buffer: [UInt8] = []
    var checker: FuzzFrameChecker
    var onEmit: (([TCPIPError.Layer]) -> Void)?

    init(mac: MACAddress, offloads: OffloadCapabilities = []) {
        macAddress = mac
        self.offloads = offloads
        checker = FuzzFrameChecker(mac: mac)
        buffer.reserveCapacity(mtu + 18)
    }

    func transmit(length: Int, metadata: TransmitMetadata, _ fill: (inout MutableSpan<UInt8>) -> Int) throws(DeviceError) {
        if offloads.isEmpty {
            fuzzCheck(length >= 0 && length <= EthernetFraming.maximumFrameLength(mtu: mtu),
                      "stack: asked to transmit a frame past the MTU")
            fuzzCheck(metadata == .none, "stack: offload requested from a device without offloads")
        } else {
            checkOffloadRequest(length: length, metadata)
        }
        if full {
            statistics.transmitWouldBlock += 1
            checker.interrupted()
            throw .wouldBlock
        }
        var buffer: [UInt8] = []
        swap(&buffer, &self.buffer)  // reuse the buffer's capacity
        defer { swap(&buffer, &self.buffer) }
        buffer.removeAll(keepingCapacity: true)
        buffer.append(contentsOf: repeatElement(0xA5, count: length))
        var span = buffer.mutableSpan
        let used = fill(&span)
        _ = consume span
        fuzzCheck(used >= 0 && used <= length, "stack: fill used more than the buffer")
        guard used > 0 else { return }
        statistics.transmittedFrames += 1
        statistics.transmittedBytes += UInt64(used)
        emitted += 1
        if metadata != .none {
            fuzzCheck(used == length, "stack: an offloaded frame shorter than the length it asked for")
            completeOffloads(&buffer, used: used, metadata)
        }
        checker.segmented = metadata.segmentation != nil
        defer { checker.segmented = false }
        let layers = checker.check(buffer.span.extracting(0..<used))
        onEmit?(layers)
    }

    /// What the stack asks of an offloading device: only announced
    /// offloads, within the size limits, and a request the tap's
    /// virtio-net header can carry (which parses back to the same).
    func checkOffloadRequest(length: Int, _ metadata: TransmitMetadata) {
        let limit = metadata.segmentation == nil
            ? EthernetFraming.maximumFrameLength(mtu: mtu) : EthernetFraming.maximumSegmentationFrameLength
        fuzzCheck(length >= 0 && length <= limit, "stack: asked to transmit a frame past the MTU or the GSO limit")
        if let checksum = metadata.checksum {
            fuzzCheck(offloads.contains(.transmitChecksum), "stack: checksum offload the device did not announce")
            fuzzCheck(Int(checksum.start) + Int(checksum.offset) + 2 <= length, "stack: checksum request past the frame")
        }
        if let segmentation = metadata.segmentation {
            fuzzCheck(offloads.contains(segmentation.kind.capability), "stack: segmentation the device did not announce")
            fuzzCheck(segmentation.segmentSize > 0 && Int(segmentation.headerLength) <= length,
                      "stack: segmentation with size 0 or headers past the frame")
            fuzzCheck(metadata.checksum != nil, "stack: segmentation without a checksum request")
        }
        do throws(DeviceError) {
            let header = try VirtioNetHeader(transmit: metadata, frameLength: length)
            let back = try header.receiveMetadata(frameLength: length)
            fuzzCheck(back.segmentation == metadata.segmentation && back.checksumVerified == (metadata.checksum != nil),
                      "stack: the tap's header for the request parses back differently")
        } catch {
            fuzzFail("stack: a request the tap's virtio-net header refuses")
        }
    }

    /// Does what the device does before the frame goes out (here: before
    /// it is checked): sums from `start` to the end into the field at
    /// `start + offset`, which holds the pseudo-header sum. A segmentation
    /// request must describe the frame: TCP over option-less IPv4, headers
    /// up to the TCP payload, more payload than one segment.
    func completeOffloads(_ buffer: inout [UInt8], used: Int, _ metadata: TransmitMetadata) {
        if let segmentation = metadata.segmentation {
            let ip = EthernetFraming.headerLength
            fuzzCheck(segmentation.kind == .tcpIPv4 && used >= ip + 40 && buffer[12] == 0x08 && buffer[13] == 0x00
                && buffer[ip] == 0x45 && buffer[ip + 9] == IPProtocol.tcp, "stack: segmentation of a frame not TCP/IPv4")
            let tcpHeader = Int(buffer[ip + 20 + 12] >> 4) * 4
            fuzzCheck(Int(segmentation.headerLength) == ip + 20 + tcpHeader, "stack: segmentation header length")
            fuzzCheck(used - Int(segmentation.headerLength) > Int(segmentation.segmentSize),
                      "stack: segmentation of a frame that fits one segment")
            fuzzCheck(Int(segmentation.segmentSize) + 40 <= mtu, "stack: segments past the MTU")
            segmentationFrames += 1
        }
        guard let checksum = metadata.checksum else { return }
        let start = Int(checksum.start), field = start + Int(checksum.offset)
        let sum = referenceSum(buffer.span.extracting(start..<used))
        let value = ~sum
        buffer[field] = UInt8(value >> 8)
        buffer[field + 1] = UInt8(truncatingIfNeeded: value)
    }
}

/// Checks frames a stack transmits. Also its configuration handler, to
/// know every address the stack was given.
final class FuzzFrameChecker: IPConfigurationHandler {
    let mac: MACAddress
    /// Every address the stack held: packets queued for ARP under an older
    /// lease may leave later with it.
    var stackAddresses: Set<IPv4Address> = []
    var linkMTU: () -> Int = { FuzzStackConstants.mtu }
    /// The stack's address now (set before its configuration handler hears).
    var currentAddress: () -> IPv4Address? = { nil }
    /// The xid of the latest DHCP request sent.
    var lastXid: UInt32? = nil
    /// The fragmented datagram being sent: its header fields and payload so far.
    var fragments: (source: IPv4Address, destination: IPv4Address, proto: UInt8, id: UInt16, data: [UInt8])? = nil
    /// The frame being checked went out with segmentation offload: its IPv4
    /// packet may exceed the link MTU.
    var segmented = false
    /// SEG.SEQ + SEG.LEN of the latest TCP segment sent (`tcpip-vnet`
    /// acknowledges it).
    var tcpSequenceEnd: UInt32? = nil

    init(mac: MACAddress) { self.mac = mac }

    func ipv4ConfigurationChanged(_ configuration: IPv4Configuration?) {
        if let configuration { stackAddresses.insert(configuration.address) }
    }

    func isOurs(_ address: IPv4Address) -> Bool {
        if stackAddresses.contains(address) { return true }
        guard address == currentAddress() else { return false }
        stackAddresses.insert(address)
        return true
    }

    /// A transmit failed: the rest of a fragmented datagram is dropped.
    func interrupted() { fragments = nil }

    func check(_ frame: Span<UInt8>) -> [TCPIPError.Layer] {
        let ethernet: EthernetFrame
        do throws(TCPIPError) {
            ethernet = try EthernetFrame(checking: frame)
        } catch {
            fuzzFail("stack emitted: Ethernet header does not parse")
        }
        fuzzCheck(ethernet.source == mac, "stack emitted: Ethernet source is not our MAC")
        fuzzCheck(ethernet.vlanID == nil, "stack emitted: a VLAN tag")
        switch ethernet.etherType {
        case EtherType.arp:
            checkARP(ethernet.payload, destination: ethernet.destination)
            return [.ethernet, .arp]
        case EtherType.ipv4:
            return [.ethernet] + checkIPv4(ethernet.payload, destination: ethernet.destination)
        default:
            fuzzFail("stack emitted: an EtherType other than ARP and IPv4")
        }
    }

    func checkARP(_ bytes: Span<UInt8>, destination: MACAddress) {
        fuzzCheck(bytes.count == ARPPacket.length, "stack emitted: ARP with trailing bytes")
        let message: ARPMessage
        do throws(TCPIPError) {
            let packet = try ARPPacket(checking: bytes)
            guard let m = ARPMessage(packet) else { fuzzFail("stack emitted: ARP operation") }
            message = m
        } catch {
            fuzzFail("stack emitted: ARP does not parse")
        }
        fuzzCheck(message.senderHardware == mac, "stack emitted: ARP sender MAC is not ours")
        fuzzCheck(message.senderProtocol == .any || isOurs(message.senderProtocol),
                  "stack emitted: ARP sender IP is not ours")
        switch message.operation {
        case .request:
            fuzzCheck(message.targetHardware == .zero, "stack emitted: ARP request with a target MAC")
        case .reply:
            fuzzCheck(destination == message.targetHardware, "stack emitted: ARP reply to another MAC than its target")
        }
    }

    func checkIPv4(_ bytes: Span<UInt8>, destination mac: MACAddress) -> [TCPIPError.Layer] {
        let packet: IPv4Packet
        do throws(TCPIPError) {
            packet = try IPv4Packet(checking: bytes, verifyChecksum: true)
        } catch {
            fuzzFail("stack emitted: IPv4 does not parse with its checksum verified")
        }
        fuzzCheck(packet.totalLength == bytes.count, "stack emitted: bytes past the IPv4 total length")
        fuzzCheck(packet.headerLength == IPv4Header.length, "stack emitted: IPv4 options")
        fuzzCheck(packet.totalLength <= linkMTU() || segmented, "stack emitted: IPv4 packet past the link MTU")
        fuzzCheck(!segmented || (packet.protocol == IPProtocol.tcp && packet.dontFragment),
                  "stack emitted: a segmentation frame not TCP with DF")
        fuzzCheck(packet.timeToLive == FuzzStackConstants.ttl, "stack emitted: TTL")
        // TCP sizes its segments to the path MTU and sets DF (RFC 1191).
        fuzzCheck(!packet.dontFragment || packet.protocol == IPProtocol.tcp, "stack emitted: DF set outside TCP")
        fuzzCheck(bytes[6] & 0x80 == 0, "stack emitted: the reserved flag")
        let source = packet.source, destination = packet.destination, proto = packet.protocol
        let dhcpRequest = proto == IPProtocol.udp && packet.payload.count >= 4 && be16(packet.payload, 0) == 68
            && be16(packet.payload, 2) == 67
        // Only DHCP may send from 0.0.0.0 (RFC 1122 §3.2.1.3); `ping` without
        // an address used to (found by this target) and now refuses.
        if !(isOurs(source) || (source == .any && dhcpRequest)) {
            fatalError("fuzz check failed: stack emitted: IPv4 source \(source) is not ours (\(stackAddresses), now "
                + "\(currentAddress().map { "\($0)" } ?? "none")); to \(destination), protocol \(proto)")
        }
        if destination == .broadcast { fuzzCheck(mac.isBroadcast, "stack emitted: broadcast not to the broadcast MAC") }
        if destination.isMulticast {
            let low = destination.rawValue & 0x7F_FFFF
            fuzzCheck(mac == MACAddress(0x01, 0x00, 0x5E, UInt8(low >> 16), UInt8(truncatingIfNeeded: low >> 8),
                                        UInt8(truncatingIfNeeded: low)), "stack emitted: multicast to the wrong MAC")
        }
        fuzzCheck(proto == IPProtocol.icmp || proto == IPProtocol.udp || proto == IPProtocol.tcp,
                  "stack emitted: a protocol other than ICMP, UDP and TCP")
        fuzzCheck(proto != IPProtocol.tcp || (!packet.isFragment && !destination.isMulticast && destination != .broadcast),
                  "stack emitted: TCP fragmented or not unicast")
        guard packet.isFragment else {
            fragments = nil
            return [.ipv4] + checkTransport(packet.payload, source: source, destination: destination, proto: proto)
        }
        // Fragments leave in order, all but the last a multiple of 8 bytes.
        let payload = packet.payload
        fuzzCheck(packet.moreFragments == false || payload.count % 8 == 0, "stack emitted: fragment not a multiple of 8")
        fuzzCheck(payload.count > 0, "stack emitted: an empty fragment")
        if packet.fragmentOffset == 0 {
            fragments = (source, destination, proto, packet.identification, [])
        }
        guard var f = fragments else {
            fuzzFail("stack emitted: a later fragment without the first")
        }
        fuzzCheck(f.source == source && f.destination == destination && f.proto == proto && f.id == packet.identification,
                  "stack emitted: a fragment of another datagram in the middle of one")
        fuzzCheck(packet.fragmentOffset == f.data.count, "stack emitted: fragments out of order")
        fragments = nil
        for i in payload.indices { f.data.append(payload[i]) }
        fuzzCheck(f.data.count + IPv4Header.length <= 65_535, "stack emitted: fragments past 65,535 bytes")
        guard !packet.moreFragments else {
            fragments = f
            return [.ipv4]
        }
        return [.ipv4] + checkTransport(f.data.span, source: source, destination: destination, proto: proto)
    }

    func checkTransport(_ bytes: Span<UInt8>, source: IPv4Address, destination: IPv4Address,
                        proto: UInt8) -> [TCPIPError.Layer] {
        if proto == IPProtocol.icmp {
            let message: ICMPv4Message
            do throws(TCPIPError) {
                message = try ICMPv4Message(checking: bytes, verifyChecksum: true)
            } catch {
                fuzzFail("stack emitted: ICMP does not verify")
            }
            typealias T = ICMPv4Message.MessageType
            switch message.type {
            case T.echoReply, T.echoRequest:
                fuzzCheck(message.code == 0, "stack emitted: echo code")
            case T.destinationUnreachable:
                fuzzCheck(message.code == ICMPv4Message.UnreachableCode.port
                    || message.code == ICMPv4Message.UnreachableCode.protocol, "stack emitted: unreachable code")
                fuzzCheck(message.restOfHeader == 0, "stack emitted: unreachable rest of header")
                // RFC 792: the offending header and at least 8 bytes of its
                // payload (when it had them); RFC 1812: 576 bytes at most.
                let quoted = message.data
                fuzzCheck(IPv4Header.length + bytes.count <= 576, "stack emitted: ICMP error past 576 bytes")
                fuzzCheck(quoted.count >= IPv4Packet.minimumHeaderLength && quoted[0] >> 4 == 4,
                          "stack emitted: ICMP error quotes no IPv4 header")
                let ihl = Int(quoted[0] & 0x0F) * 4
                fuzzCheck(ihl >= 20 && quoted.count >= ihl, "stack emitted: ICMP error quotes a cut header")
                // A reassembled datagram's quote must describe the whole
                // datagram from offset 0 (found by this target, fixed).
                fuzzCheck(!FuzzStackConstants.strictQuotes || be16(quoted, 6) & 0x1FFF == 0,
                          "stack emitted: ICMP error quoting a later fragment's header over the datagram's start")
                fuzzCheck(be32(quoted, 16) == source.rawValue, "stack emitted: ICMP error about a datagram not to us")
                fuzzCheck(be32(quoted, 12) == destination.rawValue,
                          "stack emitted: ICMP error not to the quoted datagram's source")
            default:
                fuzzFail("stack emitted: an ICMP type it has no reason to send")
            }
            return [.icmp]
        }
        if proto == IPProtocol.tcp {
            do throws(TCPIPError) {
                let segment = try TCPSegment(checking: bytes, source: source, destination: destination, verifyChecksum: true)
                fuzzCheck(segment.sourcePort != 0 && segment.destinationPort != 0, "stack emitted: TCP port 0")
                let flags = segment.flags
                fuzzCheck(!(flags.contains(.syn) && flags.contains(.fin)) && !(flags.contains(.syn) && flags.contains(.rst)),
                          "stack emitted: impossible TCP flags")
                fuzzCheck(flags.contains(.rst) || flags.contains(.ack) || flags == .syn,
                          "stack emitted: a TCP segment without ACK that is not a SYN or RST")
                tcpSequenceEnd = segment.sequenceNumber.rawValue &+ UInt32(segment.sequenceLength)
            } catch {
                fuzzFail("stack emitted: TCP does not verify")
            }
            return [.tcp]
        }
        let datagram: UDPDatagram
        do throws(TCPIPError) {
            datagram = try UDPDatagram(checking: bytes, source: source, destination: destination, verifyChecksum: true)
        } catch {
            fuzzFail("stack emitted: UDP does not verify")
        }
        fuzzCheck(datagram.bytes.count == bytes.count, "stack emitted: bytes past the UDP length")
        fuzzCheck(datagram.checksum != 0, "stack emitted: UDP without a checksum")
        guard datagram.sourcePort == 68 && datagram.destinationPort == 67 else { return [.udp] }
        do throws(TCPIPError) {
            let message = try DHCPMessage(checking: datagram.payload)
            fuzzCheck(message.op == DHCPMessage.bootRequest, "stack emitted: DHCP op")
            fuzzCheck(message.clientHardwareAddress == mac, "stack emitted: DHCP chaddr is not our MAC")
            lastXid = message.xid
        } catch {
            fuzzFail("stack emitted: DHCP does not parse")
        }
        return [.udp, .dhcp]
    }
}
