/// Counters of an `IPStack`: traffic, and every drop by its reason.
public struct IPStackStatistics: Hashable, Sendable, CustomStringConvertible {
    /// Frames received from the interface.
    public var framesReceived: UInt64 = 0
    /// Frames handed to the interface.
    public var framesTransmitted: UInt64 = 0
    /// Frames or packets the interface refused (`wouldBlock`) for traffic
    /// the stack generates itself (ARP and ICMP replies, queued packets).
    public var transmitDropped: UInt64 = 0

    /// Frames shorter than an Ethernet header or with stacked VLAN tags.
    public var droppedMalformedEthernet: UInt64 = 0
    /// Frames for another MAC address.
    public var droppedNotOurMAC: UInt64 = 0
    /// 802.1Q-tagged frames (no VLAN is configured).
    public var droppedVLANTagged: UInt64 = 0
    /// EtherTypes we do not handle (IPv6 until it lands, LLDP, …).
    public var droppedUnknownEtherType: UInt64 = 0
    /// Truncated or non-Ethernet/IPv4 ARP packets, or unknown operations.
    public var droppedMalformedARP: UInt64 = 0
    /// Truncated IPv4 packets, bad versions or lengths.
    public var droppedMalformedIPv4: UInt64 = 0
    /// IPv4 header checksum failures.
    public var droppedBadIPv4Checksum: UInt64 = 0
    /// IPv4 packets addressed elsewhere (we do not forward).
    public var droppedNotOurAddress: UInt64 = 0
    /// Fragments refused by the reassembler (limits, conflicts, duplicates).
    public var droppedFragments: UInt64 = 0
    /// Truncated ICMP messages.
    public var droppedMalformedICMP: UInt64 = 0
    /// ICMP checksum failures.
    public var droppedBadICMPChecksum: UInt64 = 0
    /// Truncated UDP datagrams or lying lengths.
    public var droppedMalformedUDP: UInt64 = 0
    /// UDP checksum failures.
    public var droppedBadUDPChecksum: UInt64 = 0
    /// UDP datagrams for a port nobody listens on.
    public var droppedNoListener: UInt64 = 0
    /// IPv4 payloads of protocols without a handler.
    public var droppedUnknownProtocol: UInt64 = 0
    /// Truncated TCP segments, bad data offsets or malformed options.
    public var droppedMalformedTCP: UInt64 = 0
    /// TCP checksum failures.
    public var droppedBadTCPChecksum: UInt64 = 0
    /// TCP segments to a broadcast or multicast address (RFC 1122 §4.2.3.10),
    /// or from one (or from 0.0.0.0; RFC 1122 §3.2.1.3).
    public var droppedTCPNotUnicast: UInt64 = 0
    /// TCP segments for no connection and no listener (answered with RST
    /// unless they were RSTs themselves or the RST rate limit said no).
    public var droppedTCPNoConnection: UInt64 = 0
    /// SYNs refused because the listener's backlog of half-open
    /// connections, or the connection table, was full.
    public var droppedTCPBacklogFull: UInt64 = 0
    /// Segments to a listener that were neither SYN nor RST (answered with
    /// RST when they carry an ACK), and SYNs with FIN.
    public var droppedTCPListenUnexpected: UInt64 = 0
    /// TCP segments the device refused or that exceeded the path MTU.
    public var tcpTransmitDropped: UInt64 = 0
    /// Packets dropped waiting for ARP (queue full or resolution failed).
    public var droppedARPPending: UInt64 = 0

    /// ICMP echo replies sent.
    public var echoRepliesSent: UInt64 = 0
    /// ICMP errors sent.
    public var icmpErrorsSent: UInt64 = 0
    /// ICMP errors suppressed by the rate limit.
    public var icmpErrorsRateLimited: UInt64 = 0
    /// ICMP errors received and passed to a socket.
    public var icmpErrorsReceived: UInt64 = 0
    /// UDP datagrams delivered.
    public var udpDelivered: UInt64 = 0
    /// UDP datagrams sent.
    public var udpSent: UInt64 = 0
    /// Datagrams reassembled from fragments.
    public var reassembled: UInt64 = 0
    /// Fragments sent.
    public var fragmentsSent: UInt64 = 0
    /// TCP segments received and checked.
    public var tcpSegmentsReceived: UInt64 = 0
    /// TCP segments sent (a frame the device segments counts once).
    public var tcpSegmentsSent: UInt64 = 0
    /// TCP frames larger than one segment handed to the device to cut up
    /// (TSO/GSO, `OffloadCapabilities.tcpSegmentationIPv4`).
    public var tcpSegmentationFramesSent: UInt64 = 0
    /// Wire segments those frames became (data bytes ÷ segment size).
    public var tcpSegmentationSegmentsSent: UInt64 = 0
    /// TCP frames received that the device had coalesced from several
    /// segments (GRO/LRO: `ReceiveMetadata.segmentation`).
    public var tcpCoalescedFramesReceived: UInt64 = 0
    /// RSTs sent for segments that matched no connection.
    public var tcpResetsSent: UInt64 = 0
    /// RSTs not sent because of the rate limit.
    public var tcpResetsRateLimited: UInt64 = 0
    /// Connections accepted by listeners.
    public var tcpConnectionsAccepted: UInt64 = 0
    /// Connections opened with `connect`.
    public var tcpConnectionsOpened: UInt64 = 0
    /// Connections in TIME-WAIT dropped early to make room.
    public var tcpTimeWaitEvicted: UInt64 = 0

    /// All zero.
    public init() {}

    /// The sum of every drop counter.
    public var totalDropped: UInt64 {
        droppedMalformedEthernet + droppedNotOurMAC + droppedVLANTagged + droppedUnknownEtherType
            + droppedMalformedARP + droppedMalformedIPv4 + droppedBadIPv4Checksum + droppedNotOurAddress
            + droppedFragments + droppedMalformedICMP + droppedBadICMPChecksum + droppedMalformedUDP
            + droppedBadUDPChecksum + droppedNoListener + droppedUnknownProtocol + droppedARPPending
            + droppedMalformedTCP + droppedBadTCPChecksum + droppedTCPNotUnicast + droppedTCPNoConnection
            + droppedTCPBacklogFull + droppedTCPListenUnexpected
    }

    /// One `name value` pair per line, non-zero counters only.
    public var description: String {
        let pairs: [(String, UInt64)] = [
            ("frames-received", framesReceived), ("frames-transmitted", framesTransmitted),
            ("transmit-dropped", transmitDropped),
            ("dropped-malformed-ethernet", droppedMalformedEthernet), ("dropped-not-our-mac", droppedNotOurMAC),
            ("dropped-vlan-tagged", droppedVLANTagged), ("dropped-unknown-ethertype", droppedUnknownEtherType),
            ("dropped-malformed-arp", droppedMalformedARP), ("dropped-malformed-ipv4", droppedMalformedIPv4),
            ("dropped-bad-ipv4-checksum", droppedBadIPv4Checksum), ("dropped-not-our-address", droppedNotOurAddress),
            ("dropped-fragments", droppedFragments), ("dropped-malformed-icmp", droppedMalformedICMP),
            ("dropped-bad-icmp-checksum", droppedBadICMPChecksum), ("dropped-malformed-udp", droppedMalformedUDP),
            ("dropped-bad-udp-checksum", droppedBadUDPChecksum), ("dropped-no-listener", droppedNoListener),
            ("dropped-unknown-protocol", droppedUnknownProtocol), ("dropped-arp-pending", droppedARPPending),
            ("echo-replies-sent", echoRepliesSent), ("icmp-errors-sent", icmpErrorsSent),
            ("icmp-errors-rate-limited", icmpErrorsRateLimited), ("icmp-errors-received", icmpErrorsReceived),
            ("udp-delivered", udpDelivered), ("udp-sent", udpSent), ("reassembled", reassembled),
            ("fragments-sent", fragmentsSent),
            ("dropped-malformed-tcp", droppedMalformedTCP), ("dropped-bad-tcp-checksum", droppedBadTCPChecksum),
            ("dropped-tcp-not-unicast", droppedTCPNotUnicast), ("dropped-tcp-no-connection", droppedTCPNoConnection),
            ("dropped-tcp-backlog-full", droppedTCPBacklogFull),
            ("dropped-tcp-listen-unexpected", droppedTCPListenUnexpected),
            ("tcp-transmit-dropped", tcpTransmitDropped), ("tcp-segments-received", tcpSegmentsReceived),
            ("tcp-segments-sent", tcpSegmentsSent), ("tcp-segmentation-frames-sent", tcpSegmentationFramesSent),
            ("tcp-segmentation-segments-sent", tcpSegmentationSegmentsSent),
            ("tcp-coalesced-frames-received", tcpCoalescedFramesReceived), ("tcp-resets-sent", tcpResetsSent),
            ("tcp-resets-rate-limited", tcpResetsRateLimited), ("tcp-connections-accepted", tcpConnectionsAccepted),
            ("tcp-connections-opened", tcpConnectionsOpened), ("tcp-time-wait-evicted", tcpTimeWaitEvicted),
        ]
        var out = ""
        for (name, value) in pairs where value != 0 {
            if !out.isEmpty { out += "\n" }
            out += "\(name) \(value)"
        }
        return out
    }
}
