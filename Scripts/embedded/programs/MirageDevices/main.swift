// Embedded check program for MirageDevices (Scripts/check-embedded).
//
// Instantiates the core's types (addresses, time, timers, entropy, key-value
// store, compiled key-value store, VirtioNetHeader, MemoryNetwork, PcapInterface, FaultInjector) over fake devices and a
// fake stack, so that the generic code is specialised under Embedded Swift,
// and checks the results: `mirage_main` returns the number of failed checks (0 = pass) and
// prints a digest of the values it saw, so nothing is optimised away.

import MirageDevices

// MARK: - Harness

/// Counts checks and folds observed values into an FNV-1a digest.
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

    func mix(_ text: String) {
        for u in text.utf8 { mix(UInt64(u)) }
    }
}

func hex(_ v: UInt64) -> String {
    let digits: [UInt8] = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for shift in stride(from: 60, through: 0, by: -4) {
        out.append(digits[Int((v >> UInt64(shift)) & 0xf)])
    }
    return String(decoding: out, as: UTF8.self)
}

// MARK: - Fake devices

/// A network interface with a bounded transmit ring whose frames are handed,
/// borrowed, to the peer's handler when the link is pumped.
final class FakeInterface: NetworkInterface {
    let macAddress: MACAddress
    let mtu: Int
    let offloads: OffloadCapabilities = [.receiveChecksum]
    var statistics = InterfaceStatistics()
    var handler: (any NetworkInterfaceHandler)?
    var peer: FakeInterface?
    let ringCapacity: Int
    var ring: [[UInt8]] = []
    var blocked = false

    init(mac: MACAddress, mtu: Int = 1500, ringCapacity: Int = 4) {
        macAddress = mac
        self.mtu = mtu
        self.ringCapacity = ringCapacity
    }

    func transmit(length: Int, metadata: TransmitMetadata, _ fill: (inout MutableSpan<UInt8>) -> Int) throws(DeviceError) {
        let limit = EthernetFraming.maximumFrameLength(mtu: mtu)
        guard length <= limit else { throw .frameTooLarge(requested: length, limit: limit) }
        guard ring.count < ringCapacity else {
            statistics.transmitWouldBlock += 1
            blocked = true
            throw .wouldBlock
        }
        var buffer = [UInt8](repeating: 0, count: length)
        var span = buffer.mutableSpan
        let used = fill(&span)
        _ = consume span
        guard used > 0 else { return }
        ring.append(Array(buffer[0..<min(used, length)]))
        statistics.transmittedFrames += 1
        statistics.transmittedBytes += UInt64(used)
    }

    /// Delivers every queued frame to the peer in one batch.
    func pump() {
        guard let peer, let h = peer.handler else { return }
        let frames = ring
        ring.removeAll()
        for f in frames {
            peer.statistics.receivedFrames += 1
            peer.statistics.receivedBytes += UInt64(f.count)
            h.frameReceived(f.span, metadata: .none)
        }
        h.receiveBatchEnded()
        if blocked {
            blocked = false
            handler?.transmitReady()
        }
    }
}

/// Records what arrives on an interface.
final class FrameCounter: NetworkInterfaceHandler {
    var frames = 0
    var batches = 0
    var ready = 0
    var lastEtherType: UInt16 = 0
    var lastSource = MACAddress.zero
    var payloadSum: UInt64 = 0

    func frameReceived(_ frame: Span<UInt8>, metadata: ReceiveMetadata) {
        frames += 1
        guard frame.count >= EthernetFraming.headerLength else { return }
        lastSource = MACAddress(frame, at: 6) ?? .zero
        lastEtherType = UInt16(frame[12]) << 8 | UInt16(frame[13])
        for i in EthernetFraming.headerLength..<frame.count { payloadSum &+= UInt64(frame[i]) }
    }

    func receiveBatchEnded() { batches += 1 }
    func transmitReady() { ready += 1 }
}

/// Sends one Ethernet frame through any interface, filling the device's
/// buffer in place (generic: specialised for `FakeInterface` below).
func sendFrame(
    over interface: some NetworkInterface, to destination: MACAddress, etherType: UInt16, payload: [UInt8]
) throws(DeviceError) {
    let length = EthernetFraming.headerLength + payload.count
    let source = interface.macAddress
    try interface.transmit(length: length, metadata: .none) { buffer in
        destination.write(to: &buffer, at: 0)
        source.write(to: &buffer, at: 6)
        buffer[12] = UInt8(truncatingIfNeeded: etherType >> 8)
        buffer[13] = UInt8(truncatingIfNeeded: etherType)
        for (i, b) in payload.enumerated() { buffer[EthernetFraming.headerLength + i] = b }
        return length
    }
}

/// A stack that only does UDP, looping datagrams back to its own sockets.
final class LoopbackStack: Stack {
    let localAddresses: [IPAddress]
    let entropy: SeededEntropy
    let ports = EphemeralPortRange(lowest: 50000, highest: 50003)
    var sockets: [UInt32: (endpoint: Endpoint, handler: any UDPHandler)] = [:]
    var nextID: UInt32 = 1
    static let maximumDatagram = 1472

    init(address: IPAddress, entropy: SeededEntropy) {
        localAddresses = [address]
        self.entropy = entropy
    }

    func listen(port: UInt16, address: IPAddress?, backlog: Int, handler: any TCPHandler) throws(DeviceError) -> ListenerID {
        throw .invalidArgument("no TCP")
    }
    func localEndpoint(of listener: ListenerID) -> Endpoint? { nil }
    func closeListener(_ listener: ListenerID) {}
    func connect(to remote: Endpoint, timeout: Interval?, handler: any TCPHandler) throws(DeviceError) -> ConnectionID {
        throw .networkUnreachable(remote.address)
    }
    func endpoints(of connection: ConnectionID) -> (local: Endpoint, remote: Endpoint)? { nil }
    func setHandler(_ handler: any TCPHandler, for connection: ConnectionID) throws(DeviceError) { throw .unknownHandle }
    func write(_ bytes: Span<UInt8>, on connection: ConnectionID) throws(DeviceError) -> Int { throw .unknownHandle }
    func pauseReading(_ connection: ConnectionID) {}
    func resumeReading(_ connection: ConnectionID) {}
    func shutdownWrite(_ connection: ConnectionID) {}
    func close(_ connection: ConnectionID) {}
    func abort(_ connection: ConnectionID) {}
    func setNoDelay(_ noDelay: Bool, for connection: ConnectionID) throws(DeviceError) {}
    func setKeepAlive(_ idle: Interval?, for connection: ConnectionID) throws(DeviceError) {}
    func statistics(of connection: ConnectionID) -> ConnectionStatistics? { nil }

    func bindUDP(port: UInt16, address: IPAddress?, handler: any UDPHandler) throws(DeviceError) -> UDPSocketID {
        let local = address ?? localAddresses[0]
        guard localAddresses.contains(local) else { throw .addressNotAvailable(local) }
        var chosen = port
        if chosen == 0 {
            let taken = Set(sockets.values.map { $0.endpoint.port })
            guard let p = ports.choose(using: entropy, isInUse: { taken.contains($0) }) else {
                throw .resourceExhausted("ephemeral ports")
            }
            chosen = p
        } else if sockets.values.contains(where: { $0.endpoint.port == chosen }) {
            throw .addressInUse(Endpoint(local, chosen))
        }
        let id = nextID
        nextID += 1
        sockets[id] = (Endpoint(local, chosen), handler)
        return UDPSocketID(rawValue: id)
    }

    func localEndpoint(of socket: UDPSocketID) -> Endpoint? { sockets[socket.rawValue]?.endpoint }

    func send(_ payload: Span<UInt8>, to destination: Endpoint, from socket: UDPSocketID) throws(DeviceError) {
        guard let source = sockets[socket.rawValue] else { throw .unknownHandle }
        guard payload.count <= Self.maximumDatagram else {
            throw .messageTooLarge(size: payload.count, limit: Self.maximumDatagram)
        }
        guard let target = sockets.first(where: { $0.value.endpoint == destination }) else {
            throw .networkUnreachable(destination.address)
        }
        target.value.handler.datagramReceived(payload, from: source.endpoint, to: destination, on: UDPSocketID(rawValue: target.key))
    }

    func closeUDP(_ socket: UDPSocketID) { sockets[socket.rawValue] = nil }
}

/// Echoes every datagram back to its sender once.
final class Echo: UDPHandler {
    let stack: LoopbackStack
    var received: [[UInt8]] = []
    var echo = true
    init(stack: LoopbackStack) { self.stack = stack }

    func datagramReceived(_ payload: Span<UInt8>, from source: Endpoint, to destination: Endpoint, on socket: UDPSocketID) {
        var copy: [UInt8] = []
        for i in payload.indices { copy.append(payload[i]) }
        received.append(copy)
        if echo {
            echo = false
            try? stack.send(payload, to: source, from: socket)
        }
    }
}

/// A UDP round trip written against the stack contract only (generic:
/// specialised for `LoopbackStack`).
func udpRoundTrip(on stack: some Stack, client: any UDPHandler, server: any UDPHandler, message: [UInt8]) throws(DeviceError) -> (Endpoint?, Endpoint?) {
    let s = try stack.bindUDP(port: 7, address: nil, handler: server)
    let c = try stack.bindUDP(port: 0, address: nil, handler: client)
    guard let serverEnd = stack.localEndpoint(of: s) else { throw .unknownHandle }
    try stack.send(message.span, to: serverEnd, from: c)
    return (stack.localEndpoint(of: s), stack.localEndpoint(of: c))
}

/// Records timer expiries in order.
final class TimerLog: TimerHandler {
    var fired: [(TimerID, Instant)] = []
    func timerFired(_ id: TimerID, now: Instant) { fired.append((id, now)) }
}

/// Schedules through any scheduler (generic over the scheduler type).
func scheduleThree(on scheduler: some TimerScheduler, handler: any TimerHandler, base: Instant) -> [TimerID] {
    [
        scheduler.schedule(at: base + .milliseconds(30), handler),
        scheduler.schedule(at: base + .milliseconds(10), handler),
        scheduler.schedule(at: base + .milliseconds(10), handler),
    ]
}

// MARK: - Checks

func checkAddresses(_ r: Report) {
    let mac = MACAddress("02:00:5e:10:00:01")
    r.expect(mac?.rawValue == 0x0200_5e10_0001, "MACAddress parse")
    r.expect(mac?.description == "02:00:5e:10:00:01", "MACAddress description")
    r.expect(MACAddress("02:00:5e:10:00") == nil, "MACAddress rejects five octets")
    r.expect(MACAddress.broadcast.isMulticast && MACAddress.broadcast.isBroadcast, "broadcast is multicast")
    r.mix(mac?.rawValue ?? 0)

    let v4 = IPv4Address("10.0.0.1")
    r.expect(v4?.rawValue == 0x0A00_0001, "IPv4 parse")
    r.expect(IPv4Address("01.2.3.4") == nil && IPv4Address("1.2.3") == nil && IPv4Address("256.0.0.1") == nil, "IPv4 rejects")
    r.expect(IPv4Address(192, 168, 1, 254).description == "192.168.1.254", "IPv4 description")
    r.mix(UInt64(v4?.rawValue ?? 0))

    let v6 = IPv6Address("2001:db8::1")
    r.expect(v6?.high == 0x2001_0db8_0000_0000 && v6?.low == 1, "IPv6 parse")
    r.expect(v6?.description == "2001:db8::1", "IPv6 description")
    let tail = IPv6Address("::192.0.2.1")
    r.expect(tail?.high == 0 && tail?.low == 0xc000_0201, "IPv6 with IPv4 tail")
    let mapped = IPv6Address("::ffff:192.0.2.1")
    r.expect(mapped?.high == 0 && mapped?.low == 0x0000_ffff_c000_0201, "IPv4-mapped IPv6")
    r.expect(IPv6Address("1::2::3") == nil && IPv6Address(":1") == nil, "IPv6 rejects")
    r.mix(v6?.high ?? 0)

    let any = IPAddress("::1")
    r.expect(any?.isLoopback == true, "IPAddress ::1 is loopback")
    let ep = Endpoint(.v6(.loopback), 53)
    r.expect(ep.description == "[::1]:53", "Endpoint description")
    r.mix(ep.description)
    var seen: Set<IPAddress> = [.v4(.loopback), .v6(.loopback)]
    seen.insert(.v4(.loopback))
    r.expect(seen.count == 2, "IPAddress hashing")
}

func checkTime(_ r: Report) {
    let t = Instant(nanoseconds: 5) + .seconds(2)
    r.expect(t.nanoseconds == 2_000_000_005, "Instant + Interval")
    r.expect((Instant.zero + .nanoseconds(-3)) == .zero, "Instant saturates at zero")
    r.expect((Instant(nanoseconds: .max) + .seconds(1)).nanoseconds == .max, "Instant saturates at max")
    r.expect((Instant.zero - t).nanoseconds == -2_000_000_005, "Instant difference")
    r.expect((Interval.milliseconds(3) * 4).milliseconds == 12, "Interval product")

    let clock = ManualClock(start: Instant(nanoseconds: 1_500_000_000))
    let wall = clock.wallTime()
    r.expect(wall.seconds == 1_700_000_001 && wall.nanoseconds == 500_000_000, "ManualClock wall time")
    clock.advance(by: .milliseconds(250))
    r.expect(clock.now().nanoseconds == 1_750_000_000, "ManualClock advance")
    r.mix(clock.now().nanoseconds)
}

func checkTimers(_ r: Report) {
    let clock = ManualClock()
    let scheduler = ManualTimerScheduler(clock: clock)
    let log = TimerLog()
    let ids = scheduleThree(on: scheduler, handler: log, base: clock.now())
    let extra = scheduler.schedule(at: .zero + .milliseconds(20), log)
    scheduler.cancel(extra)
    r.expect(scheduler.pendingCount == 3, "timers pending")
    r.expect(scheduler.nextDeadline() == Instant.zero + .milliseconds(10), "next deadline")
    r.expect(scheduler.runDue() == 0, "nothing due at zero")
    let fired = scheduler.run(until: .zero + .milliseconds(100))
    r.expect(fired == 3, "three timers fired")
    r.expect(log.fired.map { $0.0 } == [ids[1], ids[2], ids[0]], "deadline then scheduling order")
    r.expect(log.fired.first?.1 == Instant.zero + .milliseconds(10), "fired at deadline")
    r.expect(clock.now() == .zero + .milliseconds(100), "clock advanced to limit")

    var queue = TimerQueue()
    var many: [TimerID] = []
    for i in 0..<200 { many.append(queue.schedule(at: Instant(nanoseconds: UInt64(200 - i)), log)) }
    for id in many.dropFirst(10) { queue.cancel(id) }
    var order: [UInt64] = []
    while let (id, _) = queue.popExpired(now: Instant(nanoseconds: 1_000)) { order.append(id.rawValue) }
    r.expect(order == many.prefix(10).reversed().map { $0.rawValue }, "TimerQueue compaction keeps order")
    for v in order { r.mix(v) }
}

func checkEntropy(_ r: Report) {
    let e = SeededEntropy(seed: 0)
    let first = e.next()
    r.expect(first == 0xe220_a839_7b1d_cdaf, "SplitMix64 reference output")
    let bytes = e.bytes(5)
    r.expect(bytes.count == 5, "entropy bytes")
    var below: UInt64 = 0
    for _ in 0..<100 { below = max(below, e.next(below: 7)) }
    r.expect(below < 7, "next(below:) bound")
    let mac = MACAddress.random(using: e)
    r.expect(mac.isLocallyAdministered && !mac.isMulticast, "random MAC is local unicast")
    r.mix(first)
    r.mix(mac.rawValue)
    for b in bytes { r.mix(UInt64(b)) }
}

func checkKeyValue(_ r: Report) {
    let store = MemoryKeyValueStore(["index.html": Array("<h1>hi</h1>".utf8)])
    store.set("css/site.css", Array("body{}".utf8))
    r.expect(store.keys(withPrefix: "") == ["css/site.css", "index.html"], "KV keys sorted")
    do throws(DeviceError) {
        let v = try store.value(of: "index.html")
        r.expect(v.count == 11 && v[1] == UInt8(ascii: "h"), "KV value")
        let middle = try store.read("index.html", offset: 4, length: 2) { span in Int(span[0]) + Int(span[1]) }
        r.expect(middle == Int(UInt8(ascii: "h")) + Int(UInt8(ascii: "i")), "KV read slice")
        r.mix(UInt64(middle))
    } catch {
        r.expect(false, "KV read threw")
    }
    do throws(DeviceError) {
        _ = try store.read("index.html", offset: 10, length: 5) { $0.count }
        r.expect(false, "KV out of range must throw")
    } catch {
        r.expect(error == .outOfRange(offset: 10, length: 5, size: 11), "KV outOfRange")
    }
    do throws(DeviceError) {
        _ = try store.size(of: "missing")
        r.expect(false, "KV missing key must throw")
    } catch {
        r.expect(error == .keyNotFound("missing"), "KV keyNotFound")
    }
    let console = MemoryConsole()
    console.log("kv ok")
    r.expect(console.lines == ["kv ok"], "MemoryConsole")
}

/// `CrunchedFixture` is real `mirage-crunch` output (CrunchedFixture.swift,
/// kept equal to the generator's by MirageCrunchTests), so this checks that
/// what the tool writes compiles and runs as Embedded Swift.
func checkCompiledKeyValue(_ r: Report) {
    let store = CrunchedFixture.makeStore()
    r.expect(store.keys(withPrefix: "") == ["img/dot.bin", "index.html", "slides/1.html", "style.css"], "compiled KV keys")
    r.expect(store.keys(withPrefix: "s") == ["slides/1.html", "style.css"], "compiled KV keys by prefix")
    do throws(DeviceError) {
        let v = try store.value(of: "index.html")
        r.expect(v == Array("<h1>hi</h1>".utf8), "compiled KV value")
        let n = try store.read("style.css", offset: 4, length: 2) { span in Int(span[0]) + Int(span[1]) }
        r.expect(n == Int(UInt8(ascii: "{")) + Int(UInt8(ascii: "}")), "compiled KV read slice")
        r.mix(UInt64(n))
        r.expect(try store.value(of: "img/dot.bin") == [0x00, 0xff, 0x80], "compiled KV binary value")
    } catch {
        r.expect(false, "compiled KV read threw")
    }
    do throws(DeviceError) {
        _ = try store.read("slides/1.html", offset: 1, length: 1) { $0.count }
        r.expect(false, "compiled KV out of range must throw")
    } catch {
        r.expect(error == .outOfRange(offset: 1, length: 1, size: 1), "compiled KV outOfRange")
    }
    // Metadata through the protocol, as a generic HTTP handler sees it.
    func metadata(_ kv: some KeyValueStore, _ key: String) -> (Int64, String) {
        (kv.lastModified(of: key)?.seconds ?? -1, kv.digest(of: key) ?? "")
    }
    let (seconds, digest) = metadata(store, "index.html")
    r.expect(seconds == 1_700_000_000, "compiled KV lastModified")
    r.expect(digest == ContentDigest.of(Array("<h1>hi</h1>".utf8)) && digest.utf8.count == 16, "compiled KV digest")
    r.expect(metadata(store, "missing") == (-1, ""), "compiled KV no metadata for a missing key")
    r.expect(metadata(MemoryKeyValueStore(), "x") == (-1, ""), "memory KV no metadata")
    r.mix(digest)
    do throws(DeviceError) {
        _ = try Base64.decode("Zm9=" as StaticString)
        r.expect(false, "non-canonical base64 must throw")
    } catch {
        r.expect(error == .invalidBase64(offset: 2), "base64 error offset")
    }
}

func checkNetworkInterface(_ r: Report) {
    let a = FakeInterface(mac: MACAddress(0x02, 0, 0, 0, 0, 0x0a), ringCapacity: 2)
    let b = FakeInterface(mac: MACAddress(0x02, 0, 0, 0, 0, 0x0b))
    a.peer = b
    b.peer = a
    let atA = FrameCounter()
    let atB = FrameCounter()
    a.handler = atA
    b.handler = atB

    var sent = 0
    var blocked = 0
    for i in 0..<3 {
        do throws(DeviceError) {
            try sendFrame(over: a, to: b.macAddress, etherType: 0x88b5, payload: [UInt8(i), 1, 2, 3])
            sent += 1
        } catch {
            if error == .wouldBlock { blocked += 1 }
        }
    }
    r.expect(sent == 2 && blocked == 1, "ring full gives wouldBlock")
    a.pump()
    r.expect(atB.frames == 2 && atB.batches == 1, "one batch of two frames")
    r.expect(atB.lastEtherType == 0x88b5 && atB.lastSource == a.macAddress, "frame header")
    r.expect(atB.payloadSum == 13, "frame payload")
    r.expect(atA.ready == 1, "transmitReady after wouldBlock")
    do throws(DeviceError) {
        try sendFrame(over: a, to: .broadcast, etherType: 0x0800, payload: [UInt8](repeating: 0, count: 1600))
        r.expect(false, "oversized frame must throw")
    } catch {
        r.expect(error == .frameTooLarge(requested: 1614, limit: 1518), "frameTooLarge")
    }
    r.expect(a.statistics.transmittedFrames == 2 && a.statistics.transmitWouldBlock == 1, "statistics")
    r.mix(a.statistics.transmittedBytes)
    r.mix(atB.payloadSum)
}

func checkVirtioNetHeader(_ r: Report) {
    // A TCP/IPv4 GSO header as a tap hands it over (little-endian fields).
    let bytes: [UInt8] = [0x01, 0x01, 0x42, 0x00, 0xA8, 0x05, 0x22, 0x00, 0x10, 0x00, 0x00, 0x00]
    do throws(DeviceError) {
        let header = try VirtioNetHeader(parsing: bytes.span)
        let metadata = try header.receiveMetadata(frameLength: 3000)
        r.expect(metadata.checksumVerified, "virtio-net NEEDS_CSUM counts as verified")
        r.expect(metadata.segmentation == Segmentation(kind: .tcpIPv4, segmentSize: 1448, headerLength: 66),
                 "virtio-net GSO metadata")
        let back = try VirtioNetHeader(transmit: TransmitMetadata(checksum: ChecksumRequest(start: 34, offset: 16),
                                                                  segmentation: metadata.segmentation),
                                       frameLength: 3000)
        var out = [UInt8](repeating: 0xEE, count: VirtioNetHeader.length)
        var span = out.mutableSpan
        back.write(to: &span, at: 0)
        r.expect(out == bytes, "virtio-net header round trip")
        for byte in out { r.mix(UInt64(byte)) }
    } catch {
        r.expect(false, "virtio-net header rejected")
    }
    do throws(DeviceError) {
        let unknown: [UInt8] = [0x00, 0x02, 0, 0, 0xA8, 0x05, 0, 0, 0, 0, 0, 0]
        _ = try VirtioNetHeader(parsing: unknown.span).receiveMetadata(frameLength: 3000)
        r.expect(false, "unknown gso_type must throw")
    } catch {
        if case .malformedDeviceHeader = error { r.expect(true, "unknown gso_type") } else {
            r.expect(false, "unknown gso_type: wrong error")
        }
    }
}

func checkStack(_ r: Report) {
    let stack = LoopbackStack(address: .v4(IPv4Address(10, 0, 0, 2)), entropy: SeededEntropy(seed: 42))
    let server = Echo(stack: stack)
    let client = Echo(stack: stack)
    client.echo = false
    do throws(DeviceError) {
        let (s, c) = try udpRoundTrip(on: stack, client: client, server: server, message: Array("ping".utf8))
        r.expect(s?.port == 7, "UDP server port")
        r.expect((c?.port ?? 0) >= 50000 && (c?.port ?? 0) <= 50003, "ephemeral port in range")
        r.expect(server.received == [Array("ping".utf8)] && client.received == [Array("ping".utf8)], "UDP echo")
        r.mix(UInt64(c?.port ?? 0))
    } catch {
        r.expect(false, "UDP round trip threw")
    }
    do throws(DeviceError) {
        _ = try stack.bindUDP(port: 7, address: nil, handler: server)
        r.expect(false, "second bind must throw")
    } catch {
        r.expect(error == .addressInUse(Endpoint(.v4(IPv4Address(10, 0, 0, 2)), 7)), "addressInUse")
    }
    do throws(DeviceError) {
        _ = try stack.connect(to: Endpoint(.v4(.loopback), 80), timeout: nil, handler: NoTCP())
        r.expect(false, "connect must throw")
    } catch {
        r.expect(error == .networkUnreachable(.v4(.loopback)), "connect unreachable")
    }
    // Exhaust the four ephemeral ports (two taken already: 7 and the client's).
    var bound = 0
    var exhausted = false
    for _ in 0..<5 {
        do throws(DeviceError) {
            _ = try stack.bindUDP(port: 0, address: nil, handler: client)
            bound += 1
        } catch {
            if case .resourceExhausted = error { exhausted = true }
        }
    }
    r.expect(bound == 3 && exhausted, "ephemeral ports exhausted")
}

func le32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
    UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
}

/// Sends `count` frames numbered 0..<count, returning how many `transmit`
/// accepted (generic: specialised for each wrapper stack below).
func sendNumbered(_ count: Int, over interface: some NetworkInterface, to destination: MACAddress) -> Int {
    var accepted = 0
    for i in 0..<count {
        do throws(DeviceError) {
            try sendFrame(over: interface, to: destination, etherType: 0x88b5, payload: [UInt8(truncatingIfNeeded: i), 0xaa])
            accepted += 1
        } catch {}
    }
    return accepted
}

func checkMemoryNetwork(_ r: Report) {
    let net = MemoryNetwork()
    let a = net.attach(mac: MACAddress(0x02, 0, 0, 0, 1, 0x0a), queueLimit: 2)
    let b = net.attach(mac: MACAddress(0x02, 0, 0, 0, 1, 0x0b))
    let c = net.attach(mac: MACAddress(0x02, 0, 0, 0, 1, 0x0c))
    let atA = FrameCounter(), atB = FrameCounter(), atC = FrameCounter()
    a.handler = atA
    b.handler = atB
    c.handler = atC

    r.expect(sendNumbered(3, over: a, to: b.macAddress) == 2, "MemoryInterface wouldBlock past queue limit")
    r.expect(net.pendingFrames == 2 && a.statistics.transmitWouldBlock == 1, "MemoryNetwork pending")
    r.expect(net.deliverPending() == 2, "MemoryNetwork delivers unicast")
    r.expect(atB.frames == 2 && atB.batches == 1 && atC.frames == 0, "unicast reaches only its port")
    r.expect(atA.ready == 1, "MemoryInterface transmitReady")
    r.expect(atB.lastSource == a.macAddress, "unicast source")

    r.expect(sendNumbered(1, over: c, to: .broadcast) == 1, "broadcast sent")
    let flooded = net.runUntilIdle()
    r.expect(flooded == 2 && atA.frames == 1 && atB.frames == 3, "broadcast floods the other ports")
    r.expect(net.deliveredFrames == 4 && net.droppedFrames == 0, "MemoryNetwork counters")
    net.detach(c)
    r.expect(sendNumbered(1, over: c, to: .broadcast) == 0, "detached interface is closed")
    r.mix(b.statistics.receivedBytes)
    r.mix(atB.payloadSum)
}

func checkPcap(_ r: Report) {
    let net = MemoryNetwork()
    let a = net.attach(mac: MACAddress(0x02, 0, 0, 0, 2, 0x0a))
    let b = net.attach(mac: MACAddress(0x02, 0, 0, 0, 2, 0x0b))
    let sink = MemoryPcapSink()
    let clock = ManualClock(start: Instant(nanoseconds: 2_000_000_123))
    let captured = PcapInterface(a, writer: PcapWriter(sink: sink, snapLength: 15), clock: clock)
    let atA = FrameCounter(), atB = FrameCounter()
    captured.handler = atA
    b.handler = atB

    r.expect(sendNumbered(1, over: captured, to: b.macAddress) == 1, "pcap transmit")
    net.deliverPending()
    r.expect(sendNumbered(1, over: b, to: a.macAddress) == 1, "pcap peer transmit")
    net.deliverPending()
    r.expect(atA.frames == 1 && atB.frames == 1, "pcap passes frames both ways")
    r.expect(captured.writer.recordCount == 2, "pcap records both directions")

    let bytes = sink.bytes
    // File header, then two records of 16 + 15 bytes (snap length 15, frames 16).
    r.expect(bytes.count == PcapWriter.fileHeaderLength + 2 * (PcapWriter.recordHeaderLength + 15), "pcap length")
    if bytes.count >= 24 + 16 {
        r.expect(le32(bytes, 0) == PcapWriter.nanosecondMagic && le32(bytes, 20) == PcapWriter.linkTypeEthernet, "pcap header")
        r.expect(le32(bytes, 16) == 15, "pcap snap length")
        r.expect(le32(bytes, 24) == 1_700_000_002 && le32(bytes, 28) == 123, "pcap timestamp")
        r.expect(le32(bytes, 32) == 15 && le32(bytes, 36) == 16, "pcap captured and original length")
    }
    for byte in bytes { r.mix(UInt64(byte)) }
    captured.detach()
}

func checkFaultInjector(_ r: Report) {
    let net = MemoryNetwork()
    let a = net.attach(mac: MACAddress(0x02, 0, 0, 0, 3, 0x0a))
    let b = net.attach(mac: MACAddress(0x02, 0, 0, 0, 3, 0x0b))
    let clock = ManualClock()
    let scheduler = ManualTimerScheduler(clock: clock)
    let atB = FrameCounter()
    b.handler = atB

    // Drops on transmit, through a pcap wrapper (nested generic wrappers).
    var lossy = FaultConfiguration()
    lossy.directions = .transmit
    lossy.dropRate = 0.5
    let sink = MemoryPcapSink()
    let pcap = PcapInterface(a, writer: PcapWriter(sink: sink), clock: clock)
    let faulty = FaultInjector(pcap, configuration: lossy, seed: 7, clock: clock, scheduler: scheduler)
    faulty.handler = FrameCounter()
    r.expect(sendNumbered(100, over: faulty, to: b.macAddress) == 100, "dropped frames look sent")
    let delivered = net.runUntilIdle()
    let stats = faulty.transmitStatistics
    r.expect(stats.frames == 100 && stats.dropped + UInt64(delivered) == 100, "drops plus deliveries")
    r.expect(stats.dropped > 20 && stats.dropped < 80, "drop rate near one half")
    r.expect(pcap.writer.recordCount == UInt64(delivered), "pcap below the injector sees survivors only")
    r.mix(stats.dropped)

    // Delay: frames are held and released by the timer.
    var slow = FaultConfiguration()
    slow.directions = .transmit
    slow.delay = .milliseconds(5)
    faulty.configuration = slow
    let before = atB.frames
    r.expect(sendNumbered(3, over: faulty, to: b.macAddress) == 3, "delayed frames accepted")
    r.expect(faulty.heldCount == 3 && net.pendingFrames == 0, "frames held")
    scheduler.run(until: clock.now() + .milliseconds(10))
    r.expect(faulty.heldCount == 0 && net.deliverPending() == 3, "timer releases held frames")
    r.expect(atB.frames == before + 3, "held frames arrive")
    faulty.detach()

    // Corruption on receive, wrapping the receiving side.
    var noisy = FaultConfiguration()
    noisy.directions = .receive
    noisy.corruptRate = 1
    let corrupted = FaultInjector(b, configuration: noisy, seed: 99, clock: clock, scheduler: scheduler)
    let atNoisy = FrameCounter()
    corrupted.handler = atNoisy
    r.expect(sendNumbered(10, over: a, to: b.macAddress) == 10, "frames to the noisy side")
    net.deliverPending()
    r.expect(atNoisy.frames == 10 && corrupted.receiveStatistics.corrupted == 10, "every frame corrupted once")
    r.mix(atNoisy.payloadSum)
    corrupted.detach()
}

final class NoTCP: TCPHandler {
    func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {}
    func connectionEstablished(_ connection: ConnectionID) {}
    func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {}
    func endOfStream(on connection: ConnectionID) {}
    func writable(_ connection: ConnectionID) {}
    func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {}
}

// MARK: - Entry

@_cdecl("mirage_main")
public func mirageMain() -> Int32 {
    let r = Report()
    checkAddresses(r)
    checkTime(r)
    checkTimers(r)
    checkEntropy(r)
    checkKeyValue(r)
    checkCompiledKeyValue(r)
    checkNetworkInterface(r)
    checkVirtioNetHeader(r)
    checkStack(r)
    checkMemoryNetwork(r)
    checkPcap(r)
    checkFaultInjector(r)
    print("MirageDevices: \(r.checks) checks, \(r.failed) failed, digest " + hex(r.digest))
    return Int32(truncatingIfNeeded: r.failed)
}
