import MirageDevices

/// What a DHCP server granted (RFC 2131 §3.1, options of RFC 2132).
public struct DHCPLease: Hashable, Sendable {
    /// The address assigned.
    public var address: IPv4Address
    /// Prefix length from the subnet mask (a non-contiguous mask is refused).
    public var prefixLength: Int
    /// The first router offered.
    public var router: IPv4Address?
    /// DNS servers, in the server's order.
    public var dnsServers: [IPv4Address]
    /// Interface MTU, if the server set one (RFC 2132 §5.1: at least 68).
    public var mtu: Int?
    /// The server that granted the lease.
    public var server: IPv4Address
    /// Lease length.
    public var leaseTime: Interval
    /// When to start renewing (T1), from the start of the lease.
    public var renewalTime: Interval
    /// When to start rebinding (T2).
    public var rebindingTime: Interval

    /// The interface configuration the lease implies.
    public var configuration: IPv4Configuration {
        IPv4Configuration(address: address, prefixLength: prefixLength, gateway: router)
    }
}

/// A DHCP client (RFC 2131 §4.4) as a sans-I/O state machine: it is given
/// the time, received DHCP payloads and timer expiries, and answers with
/// messages to send and configuration changes. UDP and IP framing are the
/// stack's.
public struct DHCPClient {
    /// The client's UDP port.
    public static let clientPort: UInt16 = 68
    /// The server's UDP port.
    public static let serverPort: UInt16 = 67

    /// Timings.
    public struct Configuration: Hashable, Sendable {
        /// First retransmission delay in SELECTING and REQUESTING; doubles up
        /// to `maximumRetransmit` (RFC 2131 §4.1: 4 s, then 8, … 64).
        public var initialRetransmit: Interval = .seconds(4)
        /// The retransmission delay stops doubling here.
        public var maximumRetransmit: Interval = .seconds(64)
        /// REQUEST attempts before starting over with DISCOVER.
        public var requestAttempts: Int = 4
        /// Shortest wait between retransmissions while RENEWING or
        /// REBINDING (RFC 2131 §4.4.5: 60 s).
        public var minimumRenewRetransmit: Interval = .seconds(60)
        /// A lease shorter than this is treated as this long.
        public var minimumLease: Interval = .seconds(10)

        /// The defaults.
        public init() {}
    }

    /// What the stack must do.
    public enum Action: Equatable {
        /// Send this DHCP payload from port 68 to 255.255.255.255:67,
        /// with `source` as the IP source (0.0.0.0 before a lease).
        case broadcast([UInt8], source: IPv4Address)
        /// Send this payload from our address to the server, port 67.
        case unicast([UInt8], to: IPv4Address)
        /// Configure the interface with the lease.
        case bind(DHCPLease)
        /// The lease ended: remove the address.
        case unbind
        /// The server extended the lease unchanged (RENEWING or REBINDING
        /// answered); nothing to reconfigure.
        case renewed(DHCPLease)
    }

    /// RFC 2131 Figure 5's states, each with the data of that phase.
    enum State: Equatable {
        /// Not started.
        case idle
        /// DISCOVER sent; waiting for an OFFER.
        case selecting(xid: UInt32, started: Instant, retransmit: Interval, next: Instant)
        /// REQUEST sent for an offer; waiting for ACK or NAK.
        case requesting(xid: UInt32, started: Instant, offer: IPv4Address, server: IPv4Address,
                        attemptsLeft: Int, retransmit: Interval, next: Instant)
        /// Lease held until T1.
        case bound(DHCPLease, since: Instant)
        /// REQUEST unicast to the server between T1 and T2.
        case renewing(DHCPLease, since: Instant, xid: UInt32, next: Instant)
        /// REQUEST broadcast between T2 and expiry.
        case rebinding(DHCPLease, since: Instant, xid: UInt32, next: Instant)
    }

    let hardwareAddress: MACAddress
    let entropy: any EntropySource
    /// The timings in force.
    public let configuration: Configuration
    var state: State = .idle
    /// Messages that failed to parse, or did not fit the exchange.
    public private(set) var ignoredMessages: UInt64 = 0

    /// A client for the interface with `hardwareAddress`.
    public init(hardwareAddress: MACAddress, entropy: any EntropySource, configuration: Configuration = Configuration()) {
        self.hardwareAddress = hardwareAddress
        self.entropy = entropy
        self.configuration = configuration
    }

    /// The lease held, if any.
    public var lease: DHCPLease? {
        switch state {
        case .bound(let l, _), .renewing(let l, _, _, _), .rebinding(let l, _, _, _): l
        default: nil
        }
    }

    /// A name for the current state, for logs and tests.
    public var stateName: String {
        switch state {
        case .idle: "idle"
        case .selecting: "selecting"
        case .requesting: "requesting"
        case .bound: "bound"
        case .renewing: "renewing"
        case .rebinding: "rebinding"
        }
    }

    /// When `timerFired` next has work.
    public var nextDeadline: Instant? {
        switch state {
        case .idle: nil
        case .selecting(_, _, _, let next), .requesting(_, _, _, _, _, _, let next): next
        case .bound(let lease, let since): since + lease.renewalTime
        case .renewing(_, _, _, let next), .rebinding(_, _, _, let next): next
        }
    }

    /// Starts (or restarts) with a DISCOVER.
    public mutating func start(now: Instant) -> [Action] {
        var actions: [Action] = []
        if lease != nil { actions.append(.unbind) }
        let xid = UInt32(truncatingIfNeeded: entropy.nextUInt64())
        let retransmit = configuration.initialRetransmit
        state = .selecting(xid: xid, started: now, retransmit: retransmit, next: now + jittered(retransmit))
        actions.append(.broadcast(message(.discover, xid: xid, elapsed: .zero), source: .any))
        return actions
    }

    /// RFC 2131 §4.1: retransmission delays are randomised by ±1 s.
    func jittered(_ delay: Interval) -> Interval {
        let jitter = Int64(entropy.next(below: 2_000_000_001)) - 1_000_000_000
        return Interval(nanoseconds: max(500_000_000, delay.nanoseconds + jitter))
    }

    /// Handles a timer expiry.
    public mutating func timerFired(now: Instant) -> [Action] {
        switch state {
        case .idle:
            return []
        case .selecting(let xid, let started, let retransmit, let next):
            guard next <= now else { return [] }
            let doubled = min(retransmit * 2, configuration.maximumRetransmit)
            state = .selecting(xid: xid, started: started, retransmit: doubled, next: now + jittered(doubled))
            return [.broadcast(message(.discover, xid: xid, elapsed: now - started), source: .any)]
        case .requesting(let xid, let started, let offer, let server, let left, let retransmit, let next):
            guard next <= now else { return [] }
            guard left > 0 else { return start(now: now) }
            let doubled = min(retransmit * 2, configuration.maximumRetransmit)
            state = .requesting(xid: xid, started: started, offer: offer, server: server, attemptsLeft: left - 1,
                                retransmit: doubled, next: now + jittered(doubled))
            return [.broadcast(message(.request, xid: xid, elapsed: now - started, requested: offer, server: server), source: .any)]
        case .bound(let lease, let since):
            guard since + lease.renewalTime <= now else { return [] }
            return renew(lease, since: since, xid: UInt32(truncatingIfNeeded: entropy.nextUInt64()), now: now)
        case .renewing(let lease, let since, let xid, let next):
            guard next <= now else { return [] }
            if since + lease.rebindingTime <= now { return rebind(lease, since: since, xid: xid, now: now) }
            return renew(lease, since: since, xid: xid, now: now)
        case .rebinding(let lease, let since, let xid, let next):
            guard next <= now else { return [] }
            if since + lease.leaseTime <= now {
                // §4.4.5: the lease expired; start over without the address.
                var actions = start(now: now)
                if !actions.contains(.unbind) { actions.insert(.unbind, at: 0) }
                return actions
            }
            return rebind(lease, since: since, xid: xid, now: now)
        }
    }

    /// Retransmits in RENEWING and REBINDING wait half the time left to the
    /// next phase, but at least the configured minimum (§4.4.5).
    func halfway(to end: Instant, now: Instant) -> Instant {
        let half = Interval(nanoseconds: max(0, (end - now).nanoseconds / 2))
        return now + max(half, min(configuration.minimumRenewRetransmit, end - now))
    }

    mutating func renew(_ lease: DHCPLease, since: Instant, xid: UInt32, now: Instant) -> [Action] {
        let t2 = since + lease.rebindingTime
        state = .renewing(lease, since: since, xid: xid, next: halfway(to: t2, now: now))
        return [.unicast(message(.request, xid: xid, elapsed: .zero, client: lease.address), to: lease.server)]
    }

    mutating func rebind(_ lease: DHCPLease, since: Instant, xid: UInt32, now: Instant) -> [Action] {
        let expiry = since + lease.leaseTime
        state = .rebinding(lease, since: since, xid: xid, next: halfway(to: expiry, now: now))
        return [.broadcast(message(.request, xid: xid, elapsed: .zero, client: lease.address), source: lease.address)]
    }

    /// Handles a DHCP payload received on port 68.
    public mutating func receive(_ payload: Span<UInt8>, now: Instant) -> [Action] {
        guard let reply = try? DHCPMessage(checking: payload), reply.op == DHCPMessage.bootReply,
              reply.clientHardwareAddress == hardwareAddress
        else {
            ignoredMessages += 1
            return []
        }
        var type: DHCPMessageType? = nil
        var server: IPv4Address? = nil
        reply.forEachOption { code, value in
            if code == DHCPOption.messageType, value.count == 1 { type = DHCPMessageType(rawValue: value[0]) }
            if code == DHCPOption.serverIdentifier, value.count == 4 { server = IPv4Address(rawValue: value.u32(at: 0)) }
        }
        guard let type else {
            ignoredMessages += 1
            return []
        }
        switch (state, type) {
        case (.selecting(let xid, let started, _, _), .offer) where reply.xid == xid:
            // Take the first offer (§4.4.1 allows any choice).
            guard let server, reply.yiaddr != .any else { break }
            let retransmit = configuration.initialRetransmit
            state = .requesting(xid: xid, started: started, offer: reply.yiaddr, server: server,
                                attemptsLeft: configuration.requestAttempts - 1, retransmit: retransmit,
                                next: now + jittered(retransmit))
            return [.broadcast(message(.request, xid: xid, elapsed: now - started, requested: reply.yiaddr, server: server),
                               source: .any)]
        case (.requesting(let xid, _, _, _, _, _, _), .ack) where reply.xid == xid,
             (.renewing(_, _, let xid, _), .ack) where reply.xid == xid,
             (.rebinding(_, _, let xid, _), .ack) where reply.xid == xid:
            guard let lease = Self.lease(from: reply, server: server, configuration: configuration) else { break }
            let previous = self.lease
            state = .bound(lease, since: now)
            return previous == lease ? [.renewed(lease)] : [.bind(lease)]
        case (.requesting(let xid, _, _, _, _, _, _), .nak) where reply.xid == xid,
             (.renewing(_, _, let xid, _), .nak) where reply.xid == xid,
             (.rebinding(_, _, let xid, _), .nak) where reply.xid == xid:
            // §4.4.4 / §4.4.5: a NAK means start over.
            return start(now: now)
        default:
            break
        }
        ignoredMessages += 1
        return []
    }

    static func lease(from reply: borrowing DHCPMessage, server: IPv4Address?, configuration: Configuration) -> DHCPLease? {
        var mask: UInt32? = nil
        var router: IPv4Address? = nil
        var dns: [IPv4Address] = []
        var mtu: Int? = nil
        var leaseSeconds: UInt32? = nil
        var t1: UInt32? = nil
        var t2: UInt32? = nil
        reply.forEachOption { code, v in
            switch code {
            case DHCPOption.subnetMask where v.count == 4: mask = v.u32(at: 0)
            case DHCPOption.router where v.count >= 4 && v.count % 4 == 0: router = IPv4Address(rawValue: v.u32(at: 0))
            case DHCPOption.domainNameServer where v.count >= 4 && v.count % 4 == 0:
                dns = stride(from: 0, to: v.count, by: 4).map { IPv4Address(rawValue: v.u32(at: $0)) }
            case DHCPOption.interfaceMTU where v.count == 2:
                let m = Int(v.u16(at: 0))
                if m >= 68 { mtu = m }
            case DHCPOption.leaseTime where v.count == 4: leaseSeconds = v.u32(at: 0)
            case DHCPOption.renewalTime where v.count == 4: t1 = v.u32(at: 0)
            case DHCPOption.rebindingTime where v.count == 4: t2 = v.u32(at: 0)
            default: break
            }
        }
        guard let server, reply.yiaddr != .any, let leaseSeconds else { return nil }
        // A contiguous mask only; without one, the class default is long
        // gone: assume /24 as most clients do.
        var prefix = 24
        if let m = mask {
            let ones = m.leadingZeroBitCount == 0 ? (~m).leadingZeroBitCount : 0
            guard m == (ones == 0 ? 0 : UInt32.max << UInt32(32 - ones)) else { return nil }
            prefix = ones
        }
        // 0xFFFFFFFF means infinity (RFC 2131 §3.3); cap at a year.
        let leaseTime = max(configuration.minimumLease, .seconds(Int64(min(leaseSeconds, 31_536_000))))
        var renewal = t1.map { Interval.seconds(Int64($0)) } ?? Interval(nanoseconds: leaseTime.nanoseconds / 2)
        var rebinding = t2.map { Interval.seconds(Int64($0)) } ?? Interval(nanoseconds: leaseTime.nanoseconds / 8 * 7)
        // §4.4.5 defaults when the server's times are inconsistent.
        if !(rebinding < leaseTime) { rebinding = Interval(nanoseconds: leaseTime.nanoseconds / 8 * 7) }
        if !(renewal < rebinding) { renewal = Interval(nanoseconds: min(leaseTime.nanoseconds / 2, rebinding.nanoseconds / 2)) }
        return DHCPLease(address: reply.yiaddr, prefixLength: prefix, router: router, dnsServers: dns, mtu: mtu,
                         server: server, leaseTime: leaseTime, renewalTime: renewal, rebindingTime: rebinding)
    }

    /// Builds a BOOTREQUEST of `type`.
    func message(_ type: DHCPMessageType, xid: UInt32, elapsed: Interval, requested: IPv4Address? = nil,
                 server: IPv4Address? = nil, client: IPv4Address? = nil) -> [UInt8] {
        var m = [UInt8](repeating: 0, count: DHCPMessage.minimumLength)
        var s = m.mutableSpan
        typealias O = DHCPMessage.Offset
        s[O.op] = DHCPMessage.bootRequest
        s[O.htype] = 1
        s[O.hlen] = 6
        s.setU32(xid, at: O.xid)
        s.setU16(UInt16(clamping: max(0, elapsed.nanoseconds / 1_000_000_000)), at: O.secs)
        if let client { s.setU32(client.rawValue, at: O.ciaddr) }
        hardwareAddress.write(to: &s, at: O.chaddr)
        s.setU32(DHCPMessage.magicCookie, at: O.cookie)
        _ = consume s
        m += [DHCPOption.messageType, 1, type.rawValue]
        m += [DHCPOption.clientIdentifier, 7, 1] + hardwareAddress.octets
        if let requested { m += [DHCPOption.requestedAddress, 4] + bigEndian(requested.rawValue) }
        if let server { m += [DHCPOption.serverIdentifier, 4] + bigEndian(server.rawValue) }
        m += [DHCPOption.maximumMessageSize, 2, 0x05, 0xDC]
        m += [DHCPOption.parameterRequestList, 6, DHCPOption.subnetMask, DHCPOption.router, DHCPOption.domainNameServer,
              DHCPOption.interfaceMTU, DHCPOption.renewalTime, DHCPOption.rebindingTime]
        m.append(DHCPOption.end)
        // Pad to BOOTP's 300-byte minimum (RFC 1542 §3.1.1): some relays drop less.
        if m.count < 300 { m += [UInt8](repeating: 0, count: 300 - m.count) }
        return m
    }
}

func bigEndian(_ v: UInt32) -> [UInt8] {
    [UInt8(truncatingIfNeeded: v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
}
