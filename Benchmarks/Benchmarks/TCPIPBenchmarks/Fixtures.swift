// Fixtures for the TCP/IP benchmarks: a hand-built Ethernet II + IPv4 + UDP
// frame (checksums computed here, independently of the stack's emitters),
// a network interface that drops what it transmits into one reusable
// buffer, and UDP handlers that count or echo.
import MirageDevices
import MirageTCPIP

/// Addresses used by every fixture: the stack under test is 10.0.0.1 at
/// 02:00:00:00:00:01; the peer that "sends" the frames is 10.0.0.2.
enum Addresses {
    static let stackMAC = MACAddress(0x02, 0, 0, 0, 0, 0x01)
    static let peerMAC = MACAddress(0x02, 0, 0, 0, 0, 0x02)
    static let stackIP = IPv4Address(10, 0, 0, 1)
    static let peerIP = IPv4Address(10, 0, 0, 2)
    static let stackPort: UInt16 = 7
    static let peerPort: UInt16 = 40_000
}

/// Writes frames byte by byte, big-endian.
struct FrameWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { bytes.append(UInt8(v >> 8)); bytes.append(UInt8(truncatingIfNeeded: v)) }
    mutating func u32(_ v: UInt32) { u16(UInt16(v >> 16)); u16(UInt16(truncatingIfNeeded: v)) }
    mutating func mac(_ m: MACAddress) {
        for i in 0..<6 { bytes.append(UInt8(truncatingIfNeeded: m.rawValue >> UInt64(40 - 8 * i))) }
    }
    mutating func setU16(_ v: UInt16, at offset: Int) {
        bytes[offset] = UInt8(v >> 8)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: v)
    }
}

/// RFC 1071 one's-complement sum of `bytes[range]` plus `initial`, folded.
func onesComplementSum(_ bytes: [UInt8], _ range: Range<Int>, initial: UInt32 = 0) -> UInt16 {
    var sum = initial
    var i = range.lowerBound
    while i + 1 < range.upperBound {
        sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
        i += 2
    }
    if i < range.upperBound { sum += UInt32(bytes[i]) << 8 }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    return UInt16(sum)
}

/// Ethernet II (peer → stack) + IPv4 (20-byte header, DF, TTL 64, correct
/// header checksum) + UDP (peer port 40000 → stack port 7, correct checksum)
/// carrying `payloadLength` bytes.
func makeUDPFrame(payloadLength: Int,
                  destinationMAC: MACAddress = Addresses.stackMAC, sourceMAC: MACAddress = Addresses.peerMAC,
                  source: IPv4Address = Addresses.peerIP, destination: IPv4Address = Addresses.stackIP,
                  sourcePort: UInt16 = Addresses.peerPort, destinationPort: UInt16 = Addresses.stackPort) -> [UInt8] {
    var w = FrameWriter()
    // Ethernet II.
    w.mac(destinationMAC)
    w.mac(sourceMAC)
    w.u16(0x0800)
    // IPv4 header.
    let ipStart = w.bytes.count
    let udpLength = 8 + payloadLength
    w.u8(0x45)                    // version 4, IHL 5
    w.u8(0)                       // TOS
    w.u16(UInt16(20 + udpLength)) // total length
    w.u16(0x1234)                 // identification
    w.u16(0x4000)                 // DF, offset 0
    w.u8(64)                      // TTL
    w.u8(17)                      // UDP
    w.u16(0)                      // checksum, below
    w.u32(source.rawValue)
    w.u32(destination.rawValue)
    w.setU16(~onesComplementSum(w.bytes, ipStart..<(ipStart + 20)), at: ipStart + 10)
    // UDP header and payload.
    let udpStart = w.bytes.count
    w.u16(sourcePort)
    w.u16(destinationPort)
    w.u16(UInt16(udpLength))
    w.u16(0)                      // checksum, below
    for i in 0..<payloadLength { w.u8(UInt8(truncatingIfNeeded: i &* 31 &+ 7)) }
    // Pseudo-header: source, destination, zero + protocol, UDP length.
    var pseudo: UInt32 = 0
    pseudo += source.rawValue >> 16 + source.rawValue & 0xFFFF
    pseudo += destination.rawValue >> 16 + destination.rawValue & 0xFFFF
    pseudo += 17 + UInt32(udpLength)
    var checksum = ~onesComplementSum(w.bytes, udpStart..<w.bytes.count, initial: pseudo)
    if checksum == 0 { checksum = 0xFFFF }
    w.setU16(checksum, at: udpStart + 6)
    return w.bytes
}

/// Parses `frame` through the three checked views, reading the fields a
/// receive path reads, and returns a digest of them (so nothing is
/// optimised away). Traps on a malformed frame: fixtures are valid.
@inline(never)
func parseUDPFrame(_ frame: Span<UInt8>, verifyChecksum: Bool) -> Int {
    do {
        let ethernet = try EthernetFrame(checking: frame)
        let destinationMAC = ethernet.destination
        let sourceMAC = ethernet.source
        guard ethernet.etherType == EtherType.ipv4, ethernet.vlanID == nil else { fatalError("not IPv4") }
        let ip = try IPv4Packet(checking: ethernet.payload, verifyChecksum: verifyChecksum)
        guard ip.protocol == IPProtocol.udp, !ip.isFragment else { fatalError("not an unfragmented UDP packet") }
        let source = ip.source, destination = ip.destination
        let udp = try UDPDatagram(checking: ip.payload, source: source, destination: destination,
                                  verifyChecksum: verifyChecksum)
        var digest = Int(udp.sourcePort) &+ Int(udp.destinationPort) &+ udp.payload.count
        digest &+= Int(source.rawValue ^ destination.rawValue) &+ Int(ip.timeToLive)
        digest &+= Int(truncatingIfNeeded: destinationMAC.rawValue ^ sourceMAC.rawValue)
        return digest
    } catch {
        fatalError("fixture frame rejected: \(error)")
    }
}

/// A network interface whose `transmit` fills one preallocated buffer and
/// drops the frame: it isolates the stack's own work (and allocations).
final class SinkInterface: NetworkInterface {
    let macAddress: MACAddress
    let mtu: Int
    let offloads: OffloadCapabilities = []
    private(set) var statistics = InterfaceStatistics()
    var handler: (any NetworkInterfaceHandler)?
    /// The one transmit buffer, as a device's ring slot would be.
    private let buffer: UnsafeMutableBufferPointer<UInt8>
    /// The last frame's length (its bytes are `lastFrame`).
    private(set) var lastLength = 0

    init(macAddress: MACAddress, mtu: Int = 1500) {
        self.macAddress = macAddress
        self.mtu = mtu
        buffer = .allocate(capacity: EthernetFraming.maximumFrameLength(mtu: mtu))
        buffer.initialize(repeating: 0)
    }

    deinit { buffer.deallocate() }

    func transmit(length: Int, metadata: TransmitMetadata, _ fill: (inout MutableSpan<UInt8>) -> Int) throws(DeviceError) {
        let limit = EthernetFraming.maximumFrameLength(mtu: mtu)
        guard length >= 0, length <= limit else { throw .frameTooLarge(requested: length, limit: limit) }
        let slot = UnsafeMutableBufferPointer(rebasing: buffer[0..<length])
        var span = slot.mutableSpan
        let used = fill(&span)
        precondition(used <= length, "fill reported more bytes than the buffer holds")
        lastLength = used
        statistics.transmittedFrames += 1
        statistics.transmittedBytes += UInt64(used)
    }

    /// A copy of the last frame transmitted (for checks outside the measured loop).
    var lastFrame: [UInt8] { Array(buffer[0..<lastLength]) }
}

/// Counts datagrams and payload bytes; allocates nothing.
final class CountingUDPHandler: UDPHandler {
    var datagrams = 0
    var bytes = 0
    func datagramReceived(_ payload: Span<UInt8>, from source: Endpoint, to destination: Endpoint, on socket: UDPSocketID) {
        datagrams &+= 1
        bytes &+= payload.count
    }
}

/// Sends every datagram back to its source through `stack`.
final class EchoUDPHandler: UDPHandler {
    unowned(unsafe) var stack: IPStack<SinkInterface>?
    var echoed = 0
    var failed = 0
    func datagramReceived(_ payload: Span<UInt8>, from source: Endpoint, to destination: Endpoint, on socket: UDPSocketID) {
        do {
            try stack!.send(payload, to: source, from: socket)
            echoed &+= 1
        } catch {
            failed &+= 1
        }
    }
}

/// An `IPStack` at 10.0.0.1/24 over a `SinkInterface`, with a socket on
/// port 7 bound to `handler`.
func makeStack(handler: any UDPHandler) -> (IPStack<SinkInterface>, SinkInterface) {
    let interface = SinkInterface(macAddress: Addresses.stackMAC)
    let clock = ManualClock()
    let stack = IPStack(interface: interface,
                        configuration: .init(ipv4: IPv4Configuration(address: Addresses.stackIP, prefixLength: 24)),
                        clock: clock, scheduler: ManualTimerScheduler(clock: clock), entropy: SeededEntropy(seed: 1))
    do {
        _ = try stack.bindUDP(port: Addresses.stackPort, address: nil, handler: handler)
    } catch {
        fatalError("bind failed: \(error)")
    }
    return (stack, interface)
}

/// An ARP request from the peer for the stack's address: the stack learns
/// the peer's MAC from it (RFC 826 merge), so replies need no resolution.
func makeARPRequestFromPeer() -> [UInt8] {
    var w = FrameWriter()
    w.mac(.broadcast)
    w.mac(Addresses.peerMAC)
    w.u16(0x0806)
    w.u16(1)       // Ethernet
    w.u16(0x0800)  // IPv4
    w.u8(6)
    w.u8(4)
    w.u16(1)       // request
    w.mac(Addresses.peerMAC)
    w.u32(Addresses.peerIP.rawValue)
    w.mac(.zero)
    w.u32(Addresses.stackIP.rawValue)
    return w.bytes
}
