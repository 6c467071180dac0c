import Foundation
import MirageDevices
import MiragePlatform
import MirageTestNetwork
import Testing

#if canImport(Glibc)
import Glibc
#endif

// TapInterface against the Linux kernel: the test process opens the tap in
// the root namespace, moves the kernel's side into a fresh namespace (the
// descriptor stays attached), and talks to the kernel there. All traffic
// stays on that link; the 10.199.40.0/24 addresses exist only inside the
// test's namespace.

/// Local experimental EtherType (IEEE 802 "Local Experimental Ethertype 1"):
/// no kernel protocol handles it, so it tells our frames from any noise.
private let experimentalEtherType: UInt16 = 0x88B5
private let arpEtherType: UInt16 = 0x0806
private let kernelAddress = "10.199.40.1"
private let absentAddress = "10.199.40.2"
/// Frames per direction in the bulk tests.
private let bulkFrameCount = 10_000
/// The longest a loop runs in one test.
private let loopLimit = Interval.seconds(30)

/// Collects received frames whose EtherType is wanted (copies: the frame is
/// borrowed) and counts batches.
private final class FrameCollector: NetworkInterfaceHandler {
    var wanted: Set<UInt16>
    var frames: [[UInt8]] = []
    /// The metadata of each frame in `frames`.
    var metadata: [ReceiveMetadata] = []
    var onFrame: (([UInt8]) -> Void)?
    var onTransmitReady: (() -> Void)?
    var batchSizes: [Int] = []
    private var currentBatch = 0

    init(wanted: Set<UInt16>) { self.wanted = wanted }

    func frameReceived(_ frame: Span<UInt8>, metadata: ReceiveMetadata) {
        currentBatch += 1
        guard frame.count >= 14 else { return }
        let etherType = UInt16(frame[12]) << 8 | UInt16(frame[13])
        guard wanted.contains(etherType) else { return }
        var copy = [UInt8]()
        copy.reserveCapacity(frame.count)
        for index in 0..<frame.count { copy.append(frame[index]) }
        frames.append(copy)
        self.metadata.append(metadata)
        onFrame?(copy)
    }

    func receiveBatchEnded() {
        batchSizes.append(currentBatch)
        currentBatch = 0
    }

    func transmitReady() { onTransmitReady?() }
}

/// Writes an Ethernet header and `payload` into `span`; returns the length.
private func writeFrame(
    into span: inout MutableSpan<UInt8>, destination: MACAddress, source: MACAddress, etherType: UInt16,
    payload: [UInt8]
) -> Int {
    destination.write(to: &span, at: 0)
    source.write(to: &span, at: 6)
    span[12] = UInt8(etherType >> 8)
    span[13] = UInt8(etherType & 0xff)
    for (index, byte) in payload.enumerated() { span[14 + index] = byte }
    return 14 + payload.count
}

/// Writes one 60-byte frame of the experimental EtherType to the kernel's
/// side and waits until the kernel counts it; returns the kernel side's
/// counters before and after.
private func transmitCountedFrame(
    _ tap: TapInterface, _ namespace: TestNamespace
) throws -> (before: LinkStatistics, after: LinkStatistics) {
    let kernel = try kernelLink(namespace, tap.name)
    let before = try namespace.linkStatistics(tap.name)
    let payload = bigEndian32(0xC0FFEE) + [UInt8](repeating: 0, count: 42)
    try tap.transmit(length: 60, metadata: .none) { span in
        writeFrame(into: &span, destination: kernel.mac, source: tap.macAddress,
                   etherType: experimentalEtherType, payload: payload)
    }
    var after = before
    let counted = TestEnvironment.waitUntil(timeout: 5) {
        after = (try? namespace.linkStatistics(tap.name)) ?? before
        return after.rxPackets > before.rxPackets
    }
    #expect(counted, "\(before) → \(after)")
    return (before, after)
}

private func bigEndian32(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)]
}

private func readBigEndian32(_ bytes: [UInt8], at offset: Int) -> UInt32? {
    guard bytes.count >= offset + 4 else { return nil }
    return UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
        | UInt32(bytes[offset + 3])
}

private func ipv4Bytes(_ text: String) -> [UInt8] {
    guard let address = IPv4Address(text) else { return [] }
    let octets = address.octets
    return [octets.0, octets.1, octets.2, octets.3]
}

/// The folded 16-bit one's complement sum of `bytes` (RFC 1071), plus `initial`.
private func onesComplementSum(_ bytes: [UInt8], initial: UInt32 = 0) -> UInt16 {
    var sum = initial
    var index = 0
    while index + 1 < bytes.count {
        sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
        index += 2
    }
    if index < bytes.count { sum += UInt32(bytes[index]) << 8 }
    while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
    return UInt16(sum)
}

/// An Ethernet/IPv4/UDP frame whose UDP checksum field holds
/// `checksumField(pseudoHeaderSum, fullChecksum)`. The pseudo-header sum is
/// folded and not complemented, as a device completing the checksum wants it.
private func udpFrame(
    destination: MACAddress, source: MACAddress, from sourceAddress: String, to destinationAddress: String,
    sourcePort: UInt16, destinationPort: UInt16, payload: [UInt8],
    checksumField: (_ pseudoHeaderSum: UInt16, _ fullChecksum: UInt16) -> UInt16
) -> [UInt8] {
    let udpLength = 8 + payload.count
    let sourceIP = ipv4Bytes(sourceAddress)
    let destinationIP = ipv4Bytes(destinationAddress)
    func be16(_ value: Int) -> [UInt8] { [UInt8((value >> 8) & 0xff), UInt8(value & 0xff)] }
    var ip: [UInt8] = [0x45, 0] + be16(20 + udpLength) + [0, 0, 0x40, 0, 64, 17, 0, 0] + sourceIP + destinationIP
    let ipChecksum = ~onesComplementSum(ip)
    ip[10] = UInt8(ipChecksum >> 8)
    ip[11] = UInt8(ipChecksum & 0xff)
    let pseudoHeaderSum = onesComplementSum(sourceIP + destinationIP + [0, 17] + be16(udpLength))
    var udp = be16(Int(sourcePort)) + be16(Int(destinationPort)) + be16(udpLength) + [0, 0] + payload
    var full = ~onesComplementSum(udp, initial: UInt32(pseudoHeaderSum))
    if full == 0 { full = 0xffff }  // RFC 768: a computed 0 is sent as all ones
    let field = checksumField(pseudoHeaderSum, full)
    udp[6] = UInt8(field >> 8)
    udp[7] = UInt8(field & 0xff)
    return destination.octets + source.octets + [0x08, 0x00] + ip + udp
}

/// `Udp: … InCsumErrors` from the namespace's /proc/net/snmp.
private func udpChecksumErrors(_ namespace: TestNamespace) throws -> Int {
    let lines = try namespace.exec(["cat", "/proc/net/snmp"], timeout: 10).check().stdout
        .split(separator: "\n").filter { $0.hasPrefix("Udp: ") }.map { $0.split(separator: " ") }
    guard lines.count == 2, let column = lines[0].firstIndex(of: "InCsumErrors"), column < lines[1].count,
          let value = Int(lines[1][column])
    else { throw TestNetworkError.unexpectedOutput(command: "cat /proc/net/snmp", output: "\(lines)") }
    return value
}

/// Python run inside the namespace: prints the first UDP datagram that
/// reaches `address`:`port` (hex) and its source, or "timeout".
private let udpReceiverScript = #"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(float(sys.argv[3]))
print("ready", flush=True)
try:
    data, source = s.recvfrom(65536)
    print("got %s from %s:%d" % (data.hex(), source[0], source[1]), flush=True)
except socket.timeout:
    print("timeout", flush=True)
"""#

/// The kernel side's MAC address and MTU, from `ip -j link show`.
private func kernelLink(_ namespace: TestNamespace, _ link: String) throws -> (mac: MACAddress, mtu: Int) {
    let result = try namespace.ip(["-j", "link", "show", "dev", link])
    let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
    guard let first = (object as? [[String: Any]])?.first,
          let text = first["address"] as? String, let mac = MACAddress(text),
          let mtu = first["mtu"] as? Int
    else { throw TestNetworkError.unexpectedOutput(command: "ip -j link show dev \(link)", output: result.stdout) }
    return (mac, mtu)
}

/// Sends `count` sequence-numbered frames, waiting for `transmitReady`
/// whenever the device says `wouldBlock`.
private final class BulkSender {
    let tap: TapInterface
    let destination: MACAddress
    let count: Int
    var next = 0
    var wouldBlocks = 0
    var failure: DeviceError?
    var onDone: (() -> Void)?

    init(tap: TapInterface, destination: MACAddress, count: Int) {
        self.tap = tap
        self.destination = destination
        self.count = count
    }

    func pump() {
        while next < count {
            var payload = bigEndian32(UInt32(next))
            payload += [UInt8](repeating: 0xA5, count: 42)  // pad to the 60-byte minimum
            do {
                try tap.transmit(length: 14 + payload.count, metadata: .none) { span in
                    writeFrame(into: &span, destination: destination, source: tap.macAddress,
                               etherType: experimentalEtherType, payload: payload)
                }
                next += 1
            } catch .wouldBlock {
                wouldBlocks += 1
                return  // transmitReady calls pump again
            } catch {
                failure = error
                onDone?()
                return
            }
        }
        onDone?()
    }
}

/// Stops the loop once `finished()` holds and no frame arrived for one
/// period: a run that lost frames ends soon after the peer is done instead
/// of at the loop's time limit.
private final class IdleStopper: TimerHandler {
    let loop: EventLoop
    let period = Interval.milliseconds(250)
    let received: () -> Int
    let finished: () -> Bool
    private var lastCount = -1
    private var timer: TimerID?

    init(loop: EventLoop, received: @escaping () -> Int, finished: @escaping () -> Bool) {
        self.loop = loop
        self.received = received
        self.finished = finished
    }

    func start() { timer = loop.schedule(at: loop.now() + period, self) }

    /// Cancels the pending check (the loop holds this object until then).
    func cancel() {
        if let timer { loop.cancel(timer) }
        timer = nil
    }

    func timerFired(_ id: TimerID, now: Instant) {
        let count = received()
        if finished() && count == lastCount {
            timer = nil
            loop.stop()
            return
        }
        lastCount = count
        timer = loop.schedule(at: now + period, self)
    }
}

/// Python run inside the namespace: receives frames of our EtherType on
/// the link and reports how many arrived and whether in order.
private let receiverScript = #"""
import socket, struct, sys, time
ifname, ethertype, count, limit = sys.argv[1], int(sys.argv[2], 0), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype))
s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE: a slow reader must not drop
s.bind((ifname, ethertype))
s.settimeout(0.5)
print("ready", flush=True)
deadline = time.monotonic() + limit
received = 0
expected = 0
disorder = []
while received < count and time.monotonic() < deadline:
    try:
        frame, address = s.recvfrom(4096)
    except socket.timeout:
        continue
    if address[2] == socket.PACKET_OUTGOING:
        continue
    seq = struct.unpack_from("!I", frame, 14)[0]
    if seq != expected and len(disorder) < 10:
        disorder.append((expected, seq))
    expected = seq + 1
    received += 1
print("received %d disorder %r" % (received, disorder), flush=True)
"""#

/// Python run inside the namespace: sends `count` frames of our EtherType
/// with sequence numbers to `destination`.
private let senderScript = #"""
import socket, struct, sys
ifname, ethertype, count, destination = sys.argv[1], int(sys.argv[2], 0), int(sys.argv[3]), bytes.fromhex(sys.argv[4])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
source = s.getsockname()[4][:6]
header = destination + source + struct.pack("!H", ethertype)
padding = b"\x5a" * 42
for seq in range(count):
    s.send(header + struct.pack("!I", seq) + padding)
print("sent %d" % count, flush=True)
"""#

@Suite("TapInterface against the Linux kernel", .serialized, .interop(tools: ["ip", "ping", "python3", "sh"]))
struct TapInterfaceTests {
    /// Opens a tap in the root namespace, moves its kernel side into a new
    /// namespace with `kernelAddress`/24, IPv6 off (no router solicitations
    /// or MLD noise) and the link up; runs `body`; closes and cleans up.
    private func withTap(
        txQueueLength: Int? = nil,
        virtioNetHeader: Bool = false,
        _ body: (EventLoop, TapInterface, TestNamespace) throws -> Void
    ) throws {
        let loop = try EventLoop()
        let name = TestNames.linkBaseName() + "t"
        let tap = try TapInterface(name: name, loop: loop, virtioNetHeader: virtioNetHeader)
        defer { tap.close() }
        #expect(tap.name == name)
        #expect(tap.createdDevice)
        try withNamespace { namespace in
            defer { tap.close() }
            try namespace.adoptLink(name: name, address: "\(kernelAddress)/24", up: false)
            let disable = "f=/proc/sys/net/ipv6/conf/\(name)/disable_ipv6; [ ! -e $f ] || echo 1 > $f"
            try namespace.exec(["sh", "-c", disable], timeout: 10).check()
            if let txQueueLength {
                try namespace.ip(["link", "set", "dev", name, "txqueuelen", String(txQueueLength)])
            }
            try namespace.ip(["link", "set", "dev", name, "up"])
            try body(loop, tap, namespace)
        }
    }

    @Test("the kernel's ARP request is read from the tap, and our reply fills its neighbour table")
    func kernelArpRequest() throws {
        try withTap { loop, tap, namespace in
            let kernel = try kernelLink(namespace, tap.name)
            let collector = FrameCollector(wanted: [arpEtherType])
            tap.handler = collector
            var request: [UInt8]?
            collector.onFrame = { frame in
                // ARP (RFC 826) for IPv4 over Ethernet: htype 1, ptype
                // 0x0800, hlen 6, plen 4, op 1 (request), target .2.
                guard frame.count >= 42, request == nil,
                      Array(frame[14..<22]) == [0, 1, 8, 0, 6, 4, 0, 1],
                      Array(frame[38..<42]) == ipv4Bytes(absentAddress)
                else { return }
                request = frame
                // Answer it: we are .2.
                do {
                    var reply: [UInt8] = [0, 1, 8, 0, 6, 4, 0, 2]
                    reply += tap.macAddress.octets + ipv4Bytes(absentAddress)
                    reply += Array(frame[22..<28]) + Array(frame[28..<32])
                    reply += [UInt8](repeating: 0, count: 18)
                    try tap.transmit(length: 14 + reply.count, metadata: .none) { span in
                        writeFrame(into: &span, destination: kernel.mac, source: tap.macAddress,
                                   etherType: arpEtherType, payload: reply)
                    }
                } catch {
                    Issue.record("ARP reply not sent: \(error)")
                }
                loop.stop()
            }
            let ping = try namespace.spawn(["ping", "-c", "1", "-W", "1", absentAddress])
            try loop.run(until: loop.now() + .seconds(10))
            ping.terminate()

            let frame = try #require(request, "no ARP request for \(absentAddress) read from the tap")
            #expect(Array(frame[0..<6]) == MACAddress.broadcast.octets)
            #expect(Array(frame[6..<12]) == kernel.mac.octets)
            #expect(Array(frame[22..<28]) == kernel.mac.octets, "sender hardware address")
            #expect(Array(frame[28..<32]) == ipv4Bytes(kernelAddress), "sender protocol address")
            #expect(tap.statistics.receivedFrames >= 1)
            #expect(tap.statistics.transmittedFrames == 1)

            // The kernel accepted our reply: .2 resolves to our MAC.
            var neighbour = ""
            let learned = TestEnvironment.waitUntil(timeout: 5) {
                neighbour = (try? namespace.ip(["neigh", "show", absentAddress, "dev", tap.name]).stdout) ?? ""
                return neighbour.contains(tap.macAddress.description)
            }
            #expect(learned, "neighbour entry: \(neighbour)")
        }
    }

    @Test("a frame written to the tap is counted in the kernel's receive statistics")
    func writtenFrameCounted() throws {
        try withTap { loop, tap, namespace in
            let (before, after) = try transmitCountedFrame(tap, namespace)
            #expect(after.rxPackets == before.rxPackets + 1)
            #expect(after.rxBytes == before.rxBytes + 60)
            #expect(tap.statistics.transmittedFrames == 1)
            #expect(tap.statistics.transmittedBytes == 60)

            // Lengths: above mtu + 18 is refused, nothing written; a fill
            // that returns 0 cancels the frame.
            #expect(throws: DeviceError.frameTooLarge(requested: 1519, limit: 1518)) {
                try tap.transmit(length: 1519, metadata: .none) { _ in 1519 }
            }
            try tap.transmit(length: 1518, metadata: .none) { _ in 0 }
            #expect(tap.statistics.transmittedFrames == 1)
            #expect(try namespace.linkStatistics(tap.name).rxPackets == after.rxPackets)
            _ = loop
        }
    }

    @Test("10,000 frames from us to the kernel: none lost, none reordered")
    func bulkToKernel() throws {
        try withTap { loop, tap, namespace in
            let kernel = try kernelLink(namespace, tap.name)
            let collector = FrameCollector(wanted: [])
            tap.handler = collector
            let receiver = try namespace.spawn([
                "python3", "-c", receiverScript, tap.name, "0x88B5", String(bulkFrameCount), "20",
            ])
            try receiver.waitForOutput(containing: "ready", timeout: 10)
            let before = try namespace.linkStatistics(tap.name)

            let sender = BulkSender(tap: tap, destination: kernel.mac, count: bulkFrameCount)
            var done = false
            sender.onDone = {
                done = true
                loop.stop()
            }
            collector.onTransmitReady = { sender.pump() }
            loop.enqueue { sender.pump() }
            try loop.run(until: loop.now() + loopLimit)

            #expect(done)
            #expect(sender.failure == nil, "transmit failed: \(String(describing: sender.failure))")
            #expect(sender.next == bulkFrameCount)
            #expect(tap.statistics.transmittedFrames == UInt64(bulkFrameCount))
            #expect(tap.statistics.transmitDropped == 0)

            let status = receiver.wait(timeout: 30)
            let output = receiver.output()
            #expect(status == 0, "receiver: \(output)")
            #expect(output.stdout.contains("received \(bulkFrameCount) disorder []"), "receiver: \(output)")
            let after = try namespace.linkStatistics(tap.name)
            #expect(after.rxPackets - before.rxPackets == UInt64(bulkFrameCount), "\(before) → \(after)")
            #expect(after.rxDropped == before.rxDropped, "\(before) → \(after)")
        }
    }

    @Test("10,000 frames from the kernel to us: none lost, none reordered, read in bounded batches")
    func bulkFromKernel() throws {
        // The tap's transmit ring holds txqueuelen frames; the kernel drops
        // (does not queue) beyond it, so make room for the whole burst.
        try withTap(txQueueLength: 16_384) { loop, tap, namespace in
            let collector = FrameCollector(wanted: [experimentalEtherType])
            tap.handler = collector
            var disorder: [(expected: UInt32, got: UInt32)] = []
            var expected: UInt32 = 0
            collector.onFrame = { frame in
                guard let sequence = readBigEndian32(frame, at: 14) else { return }
                if sequence != expected && disorder.count < 10 { disorder.append((expected, sequence)) }
                expected = sequence &+ 1
                if collector.frames.count == bulkFrameCount { loop.stop() }
            }
            let before = try namespace.linkStatistics(tap.name)
            let destination = tap.macAddress.octets.map { String(format: "%02x", $0) }.joined()
            let sender = try namespace.spawn([
                "python3", "-c", senderScript, tap.name, "0x88B5", String(bulkFrameCount), destination,
            ])
            let idle = IdleStopper(loop: loop, received: { collector.frames.count }, finished: { !sender.isRunning })
            idle.start()
            try loop.run(until: loop.now() + loopLimit)
            idle.cancel()

            let status = sender.wait(timeout: 30)
            let output = sender.output()
            #expect(status == 0, "sender: \(output)")
            #expect(output.stdout.contains("sent \(bulkFrameCount)"), "sender: \(output)")
            #expect(collector.frames.count == bulkFrameCount)
            #expect(disorder.isEmpty, "out of order (expected, got): \(disorder)")
            #expect(expected == UInt32(bulkFrameCount))
            let after = try namespace.linkStatistics(tap.name)
            #expect(after.txDropped == before.txDropped, "\(before) → \(after)")
            // Batches: never more than the per-wakeup limit, and a batch
            // end after every batch.
            #expect(collector.batchSizes.allSatisfy { $0 >= 1 && $0 <= TapInterface.maximumFramesPerWakeup })
            #expect(collector.batchSizes.reduce(0, +) == Int(tap.statistics.receivedFrames))
            #expect(tap.statistics.receivedFrames >= UInt64(bulkFrameCount))
        }
    }

    @Test("creating sets the kernel MTU and close removes the device; attaching to `ip tuntap add` leaves it")
    func createAndAttach() throws {
        let loop = try EventLoop()
        let created = TestNames.linkBaseName() + "t"
        let tap = try TapInterface(name: created, loop: loop, mtu: 1400)
        #expect(tap.createdDevice)
        #expect(tap.mtu == 1400)
        #expect(tap.macAddress.isLocallyAdministered && !tap.macAddress.isMulticast)
        let shown = try runCommand(["ip", "-j", "link", "show", "dev", created], timeout: 10).check()
        #expect(shown.stdout.contains("\"mtu\":1400"), "\(shown)")
        tap.close()
        tap.close()  // idempotent
        #expect(throws: DeviceError.deviceClosed) { try tap.transmit(length: 60, metadata: .none) { _ in 60 } }
        #expect(!TestNamespace.rootLinkExists(created))

        let persistent = TestNames.linkBaseName() + "t"
        try runCommand(["ip", "tuntap", "add", persistent, "mode", "tap"], timeout: 10).check()
        defer { _ = try? runCommand(["ip", "link", "del", "dev", persistent], timeout: 10) }
        let mac = MACAddress(0x02, 0, 0, 0, 0, 0x42)
        let attached = try TapInterface(name: persistent, loop: loop, macAddress: mac)
        #expect(!attached.createdDevice)
        #expect(attached.macAddress == mac)
        attached.close()
        #expect(TestNamespace.rootLinkExists(persistent))
        try runCommand(["ip", "link", "del", "dev", persistent], timeout: 10).check()
        #expect(!TestNamespace.rootLinkExists(persistent))
    }

    // MARK: IFF_VNET_HDR

    @Test("with the virtio-net header: offloads announced, and ethtool shows them on the kernel side",
          .interop(tools: ["ethtool"]))
    func vnetHeaderOffloads() throws {
        try withTap(virtioNetHeader: true) { loop, tap, namespace in
            #expect(tap.offloads == [.receiveChecksum, .transmitChecksum, .tcpSegmentationIPv4, .receiveCoalescing])
            let features = try namespace.exec(["ethtool", "-k", tap.name], timeout: 10).check().stdout
            for line in ["tx-checksumming: on", "tcp-segmentation-offload: on", "tx-tcp-segmentation: on",
                         "tx-tcp6-segmentation: on"] {
                #expect(features.contains(line), "ethtool -k \(tap.name): no \"\(line)\" in\n\(features)")
            }
            // The contrast: a tap without the header offloads nothing.
            let plainName = TestNames.linkBaseName() + "p"
            let plain = try TapInterface(name: plainName, loop: loop)
            defer { plain.close() }
            #expect(plain.offloads == [])
            let plainFeatures = try runCommand(["ethtool", "-k", plainName], timeout: 10).check().stdout
            #expect(plainFeatures.contains("tx-checksumming: off"), "ethtool -k \(plainName):\n\(plainFeatures)")
            #expect(plainFeatures.contains("tcp-segmentation-offload: off"), "ethtool -k \(plainName):\n\(plainFeatures)")
        }
    }

    @Test("with the virtio-net header: a UDP datagram from the kernel arrives with its checksum marked verified")
    func vnetHeaderReceive() throws {
        try withTap(virtioNetHeader: true) { loop, tap, namespace in
            // No ARP: the kernel is told our address.
            try namespace.ip(["neigh", "replace", absentAddress, "lladdr", tap.macAddress.description,
                              "dev", tap.name, "nud", "permanent"])
            let collector = FrameCollector(wanted: [0x0800])
            tap.handler = collector
            let payload = Array("offloaded hello".utf8)
            var datagram: (frame: [UInt8], metadata: ReceiveMetadata)?
            collector.onFrame = { frame in
                // IPv4 (no options), UDP, destination port 9999.
                guard datagram == nil, frame.count >= 42, frame[14] == 0x45, frame[23] == 17,
                      frame[36] == 0x27, frame[37] == 0x0F
                else { return }
                datagram = (frame, collector.metadata[collector.metadata.count - 1])
                loop.stop()
            }
            let send = "import socket,sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(sys.argv[1].encode(), (sys.argv[2], 9999))"
            let sender = try namespace.spawn(["python3", "-c", send, String(decoding: payload, as: UTF8.self), absentAddress])
            try loop.run(until: loop.now() + .seconds(10))
            _ = sender.wait(timeout: 10)

            let received = try #require(datagram, "no UDP datagram read from the tap")
            #expect(Array(received.frame[42...]) == payload)
            #expect(Array(received.frame[26..<30]) == ipv4Bytes(kernelAddress))
            // The kernel hands its own datagram over with NEEDS_CSUM (TUN_F_CSUM):
            // nothing to verify, no segmentation.
            #expect(received.metadata == ReceiveMetadata(checksumVerified: true))
            #expect(tap.statistics.receiveDropped == 0)
        }
    }

    @Test("with the virtio-net header: a checksum request is honoured; the same frame without it is dropped by the kernel")
    func vnetHeaderTransmitChecksum() throws {
        try withTap(virtioNetHeader: true) { loop, tap, namespace in
            let kernel = try kernelLink(namespace, tap.name)
            let receiver = try namespace.spawn(["python3", "-c", udpReceiverScript, kernelAddress, "7777", "5"])
            try receiver.waitForOutput(containing: "ready", timeout: 10)
            let errorsBefore = try udpChecksumErrors(namespace)

            func frame(_ text: String) -> (frame: [UInt8], pseudo: UInt16, full: UInt16) {
                var pseudo: UInt16 = 0
                var full: UInt16 = 0
                let bytes = udpFrame(destination: kernel.mac, source: tap.macAddress, from: absentAddress,
                                     to: kernelAddress, sourcePort: 4321, destinationPort: 7777,
                                     payload: Array(text.utf8)) { p, f in
                    pseudo = p
                    full = f
                    return p  // only the pseudo-header sum: the device completes it
                }
                return (bytes, pseudo, full)
            }
            func send(_ bytes: [UInt8], _ metadata: TransmitMetadata) throws {
                try tap.transmit(length: bytes.count, metadata: metadata) { span in
                    for (index, byte) in bytes.enumerated() { span[index] = byte }
                    return bytes.count
                }
            }
            // First without the request: the field is not a valid checksum
            // (checked here), so the kernel must drop it.
            let unrequested = frame("not completed")
            #expect(unrequested.pseudo != unrequested.full)
            try send(unrequested.frame, .none)
            let requested = frame("completed by the kernel")
            try send(requested.frame, TransmitMetadata(checksum: ChecksumRequest(start: 34, offset: 6)))
            #expect(tap.statistics.transmittedFrames == 2)

            let status = receiver.wait(timeout: 10)
            let output = receiver.output()
            #expect(status == 0, "receiver: \(output)")
            let hex = Array("completed by the kernel".utf8).map { String(format: "%02x", $0) }.joined()
            #expect(output.stdout.contains("got \(hex) from \(absentAddress):4321"), "receiver: \(output)")
            #expect(try udpChecksumErrors(namespace) == errorsBefore + 1, "the unrequested frame's bad checksum")
            _ = loop
        }
    }

    @Test("with the virtio-net header: lengths over the limit and offloads not announced are refused")
    func vnetHeaderTransmitRefusals() throws {
        try withTap(virtioNetHeader: true) { loop, tap, namespace in
            // A plain frame still goes out whole (the zeroed header is not counted).
            let (before, after) = try transmitCountedFrame(tap, namespace)
            #expect(after.rxBytes == before.rxBytes + 60)

            let tso = TransmitMetadata(checksum: ChecksumRequest(start: 34, offset: 16),
                                       segmentation: Segmentation(kind: .tcpIPv4, segmentSize: 1448, headerLength: 54))
            let limit = EthernetFraming.maximumSegmentationFrameLength
            // Over mtu + 18 only with segmentation, and never over the GSO limit.
            #expect(throws: DeviceError.frameTooLarge(requested: 1519, limit: 1518)) {
                try tap.transmit(length: 1519, metadata: TransmitMetadata(checksum: ChecksumRequest(start: 34, offset: 6))) { _ in 1519 }
            }
            #expect(throws: DeviceError.frameTooLarge(requested: limit + 1, limit: limit)) {
                try tap.transmit(length: limit + 1, metadata: tso) { _ in limit + 1 }
            }
            var offered = 0
            try tap.transmit(length: limit, metadata: tso) { span in
                offered = span.count
                return 0  // cancelled
            }
            #expect(offered == limit)

            func isInvalidArgument(_ error: any Error) -> Bool {
                if case .invalidArgument = error as? DeviceError { return true }
                return false
            }
            // Not announced: IPv6 and UDP segmentation.
            for kind in [SegmentationKind.tcpIPv6, .udp] {
                var metadata = tso
                metadata.segmentation?.kind = kind
                #expect(performing: { try tap.transmit(length: 3000, metadata: metadata) { _ in 3000 } },
                        throws: isInvalidArgument)
            }
            // Inconsistent: segmentation without a checksum request, a
            // checksum field beyond the frame.
            #expect(performing: {
                try tap.transmit(length: 3000, metadata: TransmitMetadata(segmentation: tso.segmentation)) { _ in 3000 }
            }, throws: isInvalidArgument)
            #expect(performing: {
                try tap.transmit(length: 60, metadata: TransmitMetadata(checksum: ChecksumRequest(start: 34, offset: 30))) { _ in 60 }
            }, throws: isInvalidArgument)
            #expect(tap.statistics.transmittedFrames == 1)
            #expect(try namespace.linkStatistics(tap.name).rxPackets == after.rxPackets)
            _ = loop
        }
    }

    @Test("without the virtio-net header any offload request is refused")
    func plainTapRefusesOffloads() throws {
        try withTap { loop, tap, namespace in
            #expect(tap.offloads == [])
            func isInvalidArgument(_ error: any Error) -> Bool {
                if case .invalidArgument = error as? DeviceError { return true }
                return false
            }
            #expect(performing: {
                try tap.transmit(length: 60, metadata: TransmitMetadata(checksum: ChecksumRequest(start: 34, offset: 6))) { _ in 60 }
            }, throws: isInvalidArgument)
            #expect(performing: {
                try tap.transmit(length: 3000, metadata: TransmitMetadata(
                    checksum: ChecksumRequest(start: 34, offset: 16),
                    segmentation: Segmentation(kind: .tcpIPv4, segmentSize: 1448, headerLength: 54))) { _ in 3000 }
            }, throws: isInvalidArgument)
            #expect(tap.statistics.transmittedFrames == 0)
            _ = (loop, namespace)
        }
    }
}
