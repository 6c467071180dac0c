import MirageDevices

/// Receives ICMP echo replies for pings the stack sent (`IPStack.ping`).
public protocol EchoReplyHandler: AnyObject {
    /// An echo reply arrived.
    func echoReplyReceived(from source: IPv4Address, identifier: UInt16, sequence: UInt16, payloadLength: Int)
}

/// Ethernet, ARP, IPv4, ICMP, UDP and TCP over one network interface, as
/// one object implementing the `Stack` contract: mirage-tcpip's layers.
///
/// The stack is driven by its interface (received frames), its timer
/// scheduler and application calls; it reads time from `clock` and
/// randomness from `entropy` and touches nothing else. It installs itself
/// as the interface's handler.
public final class IPStack<Interface: NetworkInterface>: Stack, NetworkInterfaceHandler, TimerHandler {
    /// Tunables; every queue and table is bounded by one of these.
    public struct Configuration {
        /// Static IPv4 configuration; nil with `dhcp` set, or before one is known.
        public var ipv4: IPv4Configuration?
        /// Run a DHCP client (RFC 2131) to obtain the configuration.
        public var dhcp: Bool = false
        /// TTL of datagrams we send.
        public var timeToLive: UInt8 = 64
        /// ARP table limits and timings.
        public var arp = ARPCache.Configuration()
        /// Fragment reassembly limits.
        public var reassembly = IPv4Reassembler.Configuration()
        /// ICMP errors per second we generate, and the burst.
        public var icmpErrorRate: Int = 100
        /// ICMP error burst size.
        public var icmpErrorBurst: Int = 50
        /// Most UDP sockets open at once.
        public var maximumUDPSockets: Int = 1024
        /// Most destinations with a learned path MTU.
        public var maximumPathMTUEntries: Int = 256
        /// How long a learned path MTU is kept (RFC 1191 §6.3: about 10 minutes).
        public var pathMTULifetime: Interval = .seconds(600)
        /// Ephemeral ports for UDP sockets bound to port 0 and TCP connects.
        public var ephemeralPorts: EphemeralPortRange = .default
        /// Every TCP connection's buffers, timers and options.
        public var tcp = TCPConnection.Configuration()
        /// Most TCP connections at once, half-open and TIME-WAIT included
        /// (a full table evicts the oldest TIME-WAIT entry first).
        public var maximumTCPConnections: Int = 4096
        /// Most TCP listeners.
        public var maximumTCPListeners: Int = 256
        /// Largest backlog of half-open connections a listener may ask for.
        public var maximumTCPBacklog: Int = 1024
        /// How long `connect` waits for the handshake when the caller gives
        /// no timeout (Linux gives up after about 127 s of SYN retries).
        public var connectTimeout: Interval = .seconds(75)
        /// RSTs per second sent for segments matching no connection, and the burst.
        public var tcpResetRate: Int = 1000
        /// RST burst size.
        public var tcpResetBurst: Int = 200
        /// Hand the device TCP frames of up to 64 KiB to segment when it
        /// announces TSO and checksum offload (`tcpSegmentationIPv4` and
        /// `transmitChecksum`); false sends every segment whole.
        public var tcpSegmentationOffload = true
        /// Let the device complete TCP checksums when it announces
        /// `transmitChecksum`.
        public var transmitChecksumOffload = true

        /// A configuration with a static address, or none.
        public init(ipv4: IPv4Configuration? = nil, dhcp: Bool = false) {
            self.ipv4 = ipv4
            self.dhcp = dhcp
        }
    }

    /// The interface the stack runs on.
    public let interface: Interface
    let clock: any MonotonicClock
    let scheduler: any TimerScheduler
    let entropy: any EntropySource
    /// The configuration given at creation (the IPv4 part may change).
    public private(set) var configuration: Configuration
    /// Counters.
    public internal(set) var statistics = IPStackStatistics()
    /// Where echo replies go.
    public var echoReplyHandler: (any EchoReplyHandler)?
    /// Told when the IPv4 configuration changes (DHCP lease, expiry).
    public var configurationHandler: (any IPConfigurationHandler)?

    var arp: ARPCache
    var reassembler: IPv4Reassembler
    var icmpLimiter: ICMPRateLimiter
    var udpSockets: [UDPSocketID: UDPSocket] = [:]
    var nextSocketID: UInt32 = 1
    var pathMTUs: [IPv4Address: PathMTU] = [:]
    var nextIdentification: UInt16
    var dhcpClient: DHCPClient?
    var timer: TimerID?
    var timerDeadline: Instant?
    var arpActions: [ARPCache.Action] = []
    var multicastGroups: Set<IPv4Address> = []
    var multicastMACs: Set<MACAddress> = []
    /// The interface MTU a DHCP lease gave, if any.
    var leaseMTU: Int?

    // TCP (IPStack+TCP.swift).
    var tcpConnections: [ConnectionID: TCPSocket] = [:]
    var tcpByTuple: [TCPFourTuple: TCPSocket] = [:]
    var tcpListeners: [ListenerID: TCPListenerEntry] = [:]
    var nextConnectionID: UInt32 = 1
    var nextListenerID: UInt32 = 1
    let initialSequenceNumbers: InitialSequenceNumbers
    var tcpResetLimiter: ICMPRateLimiter
    /// Connections with events for the application, in order.
    var tcpReady: [TCPSocket] = []
    /// Set while events are being delivered: calls from handlers queue.
    var deliveringTCPEvents = false
    /// Connections that received segments in the current receive batch:
    /// their output and ACKs wait for `receiveBatchEnded` (one ACK per batch).
    var tcpBatch: [TCPSocket] = []
    /// Spare storage for a connection's events while they are delivered.
    var tcpEventScratch: [TCPConnection.Event] = []
    /// Between the first `frameReceived` of a batch and `receiveBatchEnded`.
    var inReceiveBatch = false
    /// Received bytes are copied here to be lent to the handler, so the
    /// handler may call back into the stack while it holds them.
    var tcpReadScratch: [UInt8] = []

    /// Creates the stack over `interface` and installs it as the
    /// interface's handler. With `configuration.dhcp` the DHCP client
    /// starts at once.
    public init(interface: Interface, configuration: Configuration, clock: any MonotonicClock,
                scheduler: any TimerScheduler, entropy: any EntropySource) {
        self.interface = interface
        self.configuration = configuration
        self.clock = clock
        self.scheduler = scheduler
        self.entropy = entropy
        arp = ARPCache(configuration: configuration.arp)
        reassembler = IPv4Reassembler(configuration: configuration.reassembly)
        icmpLimiter = ICMPRateLimiter(ratePerSecond: configuration.icmpErrorRate, burst: configuration.icmpErrorBurst,
                                      now: clock.now())
        // RFC 6864 §4.1: IDs need only be unique per source, destination and
        // protocol while fragments can be in flight; a counter with a random
        // start is enough and hides nothing a counter per peer would.
        nextIdentification = UInt16(truncatingIfNeeded: entropy.nextUInt64())
        initialSequenceNumbers = InitialSequenceNumbers(entropy: entropy)
        tcpResetLimiter = ICMPRateLimiter(ratePerSecond: configuration.tcpResetRate, burst: configuration.tcpResetBurst,
                                          now: clock.now())
        interface.handler = self
        if configuration.dhcp {
            let client = DHCPClient(hardwareAddress: interface.macAddress, entropy: entropy)
            dhcpClient = client
            dhcpStart()
        } else if configuration.ipv4 != nil {
            sendGratuitousARP()
        }
        rearmTimer()
    }

    /// The current IPv4 configuration, if any.
    public var ipv4: IPv4Configuration? { configuration.ipv4 }

    /// The largest IPv4 packet sent unfragmented on the link: the
    /// interface's MTU, lowered by a DHCP server's interface-MTU option
    /// (RFC 2132 §5.1) when it gives one.
    public var linkMTU: Int { min(interface.mtu, leaseMTU ?? Int.max) }

    /// Accepts frames sent to the multicast group `group` (RFC 1112 §6.4's
    /// MAC mapping) and datagrams addressed to it; at most
    /// `maximumMulticastGroups`. Membership reports (IGMP) are not sent:
    /// this filters what a switch or the peer already delivers.
    public func joinMulticastGroup(_ group: IPv4Address) throws(DeviceError) {
        guard group.isMulticast else { throw .invalidArgument("\(group) is not a multicast address") }
        guard multicastGroups.count < Self.maximumMulticastGroups || multicastGroups.contains(group) else {
            throw .resourceExhausted("multicast groups")
        }
        multicastGroups.insert(group)
        multicastMACs.insert(Self.multicastMAC(group))
    }

    /// Stops accepting `group`.
    public func leaveMulticastGroup(_ group: IPv4Address) {
        multicastGroups.remove(group)
        let mac = Self.multicastMAC(group)
        if !multicastGroups.contains(where: { Self.multicastMAC($0) == mac }) { multicastMACs.remove(mac) }
    }

    /// The most multicast groups joined at once.
    public static var maximumMulticastGroups: Int { 64 }

    /// RFC 1112 §6.4: 01:00:5e plus the low 23 bits of the group.
    static func multicastMAC(_ group: IPv4Address) -> MACAddress {
        let low = group.rawValue & 0x7F_FFFF
        return MACAddress(0x01, 0x00, 0x5E, UInt8(low >> 16), UInt8(truncatingIfNeeded: low >> 8), UInt8(truncatingIfNeeded: low))
    }

    /// Changes the IPv4 configuration (nil removes it) and announces the
    /// new address with a gratuitous ARP (RFC 5227 §3).
    public func setIPv4(_ new: IPv4Configuration?) {
        guard new != configuration.ipv4 else { return }
        configuration.ipv4 = new
        if new != nil { sendGratuitousARP() }
        configurationHandler?.ipv4ConfigurationChanged(new)
    }

    /// Breaks the reference from the interface to the stack and cancels
    /// its timer. The stack does nothing afterwards.
    public func detach() {
        interface.handler = nil
        if let t = timer { scheduler.cancel(t) }
        timer = nil
    }

    // MARK: Receive

    public func frameReceived(_ frame: Span<UInt8>, metadata: ReceiveMetadata) {
        statistics.framesReceived += 1
        let ethernet: EthernetFrame
        do {
            ethernet = try EthernetFrame(checking: frame)
        } catch {
            statistics.droppedMalformedEthernet += 1
            return
        }
        let destination = ethernet.destination
        guard destination == interface.macAddress || destination.isBroadcast || multicastMACs.contains(destination) else {
            statistics.droppedNotOurMAC += 1
            return
        }
        guard ethernet.vlanID == nil else {
            statistics.droppedVLANTagged += 1
            return
        }
        let now = clock.now()
        inReceiveBatch = true
        if metadata.segmentation != nil { statistics.tcpCoalescedFramesReceived += 1 }
        switch ethernet.etherType {
        case EtherType.arp:
            receiveARP(ethernet.payload, now: now)
        case EtherType.ipv4:
            receiveIPv4(ethernet.payload, checksumVerified: metadata.checksumVerified, now: now)
        default:
            statistics.droppedUnknownEtherType += 1
        }
    }

    public func receiveBatchEnded() {
        inReceiveBatch = false
        flushTCPBatch()
        deliverTCPEvents()
        rearmTimer()
    }

    public func transmitReady() {
        // UDP has no writable event, ARP/ICMP output is not retried, and a
        // TCP segment the device refused is recovered by retransmission.
    }

    public func timerFired(_ id: TimerID, now: Instant) {
        guard id == timer else { return }
        timer = nil
        timerDeadline = nil
        arp.timerFired(now: now, actions: &arpActions)
        performARPActions(now: now)
        let expired = reassembler.expire(now: now)
        statistics.droppedFragments += UInt64(expired)
        // Rebuilt only when an entry expired: the timer fires often.
        if pathMTUs.values.contains(where: { !($0.expires > now) }) { pathMTUs = pathMTUs.filter { $0.value.expires > now } }
        dhcpTimer(now: now)
        tcpTimers(now: now)
        deliverTCPEvents()
        rearmTimer()
    }

    func rearmTimer() {
        let next = Instant.earlier(Instant.earlier(arp.nextDeadline(), reassembler.nextDeadline()),
                                   Instant.earlier(dhcpClient?.nextDeadline, tcpNextDeadline()))
        guard let deadline = next else {
            if let t = timer { scheduler.cancel(t) }
            timer = nil
            timerDeadline = nil
            return
        }
        // A timer already due no later is kept: firing early costs one
        // call that finds nothing due and rearms, while moving it on every
        // batch (the retransmission deadline moves with every ACK) costs a
        // cancel and a schedule each time.
        if let current = timerDeadline, !(deadline < current), timer != nil { return }
        if let t = timer { scheduler.cancel(t) }
        timer = scheduler.schedule(at: deadline, self)
        timerDeadline = deadline
    }

    // MARK: ARP

    func receiveARP(_ bytes: Span<UInt8>, now: Instant) {
        let message: ARPMessage
        do {
            let packet = try ARPPacket(checking: bytes)
            guard let m = ARPMessage(packet) else {
                statistics.droppedMalformedARP += 1
                return
            }
            message = m
        } catch {
            statistics.droppedMalformedARP += 1
            return
        }
        let ours = configuration.ipv4?.address
        let forUs = ours != nil && message.targetProtocol == ours
        // RFC 826 merge: update a known sender; add it when the message is for us.
        arp.learn(message.senderProtocol, is: message.senderHardware, create: forUs, now: now, actions: &arpActions)
        if forUs, message.operation == .request, let ours {
            let reply = ARPMessage(operation: .reply, senderHardware: interface.macAddress, senderProtocol: ours,
                                   targetHardware: message.senderHardware, targetProtocol: message.senderProtocol)
            transmitARP(reply, to: message.senderHardware)
        }
        performARPActions(now: now)
    }

    func transmitARP(_ message: ARPMessage, to destination: MACAddress) {
        let source = interface.macAddress
        let length = EthernetHeader.length + ARPMessage.length
        do {
            try interface.transmit(length: length, metadata: .none) { buffer in
                EthernetHeader(destination: destination, source: source, etherType: EtherType.arp).emit(into: &buffer)
                message.emit(into: &buffer, at: EthernetHeader.length)
                return length
            }
            statistics.framesTransmitted += 1
        } catch {
            statistics.transmitDropped += 1
        }
    }

    func sendARPRequest(for target: IPv4Address, to destination: MACAddress = .broadcast) {
        let sender = configuration.ipv4?.address ?? .any
        let request = ARPMessage(operation: .request, senderHardware: interface.macAddress, senderProtocol: sender,
                                 targetHardware: .zero, targetProtocol: target)
        transmitARP(request, to: destination)
    }

    /// RFC 5227 §3 announcement: a request whose sender and target are our address.
    func sendGratuitousARP() {
        guard let ours = configuration.ipv4?.address else { return }
        let announce = ARPMessage(operation: .request, senderHardware: interface.macAddress, senderProtocol: ours,
                                  targetHardware: .zero, targetProtocol: ours)
        transmitARP(announce, to: .broadcast)
    }

    func performARPActions(now: Instant) {
        let hadActions = !arpActions.isEmpty
        defer { if hadActions { rearmTimer() } }
        while !arpActions.isEmpty {
            let actions = arpActions
            arpActions.removeAll()
            for action in actions {
                switch action {
                case .sendRequest(let ip):
                    sendARPRequest(for: ip)
                case .sendRefresh(let ip, let mac):
                    sendARPRequest(for: ip, to: mac)
                case .release(let packets, let mac):
                    for p in packets { transmitIPv4Packet(p, to: mac) }
                case .failed:
                    // Its queue is counted through the table's drop counter below.
                    break
                }
            }
        }
        statistics.droppedARPPending += arp.statistics.droppedPackets - arpDropsCounted
        arpDropsCounted = arp.statistics.droppedPackets
    }
    var arpDropsCounted: UInt64 = 0

    /// The MAC address of `address` if the ARP table knows it.
    public func arpEntry(for address: IPv4Address) -> MACAddress? { arp.peek(address) }

    /// Sends an ARP request for `address` now, whatever the table says.
    public func resolve(_ address: IPv4Address) {
        var actions: [ARPCache.Action] = []
        if arp.lookup(address, now: clock.now(), actions: &actions) == nil {
            sendARPRequest(for: address)
        }
        arpActions += actions
        performARPActions(now: clock.now())
    }

    /// The ARP table's counters.
    public var arpStatistics: ARPCache.Statistics { arp.statistics }
    /// The reassembler's counters.
    public var reassemblyStatistics: IPv4Reassembler.Statistics { reassembler.statistics }
}

// Outside the generic class on purpose: nested in `IPStack<Interface>`
// they would be generic too, and every lookup on the receive path would
// pay for type metadata (Docs/PERFORMANCE.md).
struct UDPSocket {
    var port: UInt16
    var address: IPv4Address?
    var handler: any UDPHandler
}

struct PathMTU {
    var mtu: Int
    var expires: Instant
}

/// Told when an `IPStack`'s IPv4 configuration changes.
public protocol IPConfigurationHandler: AnyObject {
    /// The new configuration, or nil when the address was lost.
    func ipv4ConfigurationChanged(_ configuration: IPv4Configuration?)
    /// The DHCP server extended the lease unchanged. Optional.
    func dhcpLeaseRenewed(_ lease: DHCPLease)
}

extension IPConfigurationHandler {
    public func dhcpLeaseRenewed(_ lease: DHCPLease) {}
}
