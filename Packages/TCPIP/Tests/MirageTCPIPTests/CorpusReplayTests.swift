import Foundation
import MirageDevices
import MirageTCPIP
import Testing

/// Replays the checked-in fuzz corpus, `Corpus/<target>/`, through the same
/// decode-everything functions the libFuzzer targets run (FuzzDecoders.swift;
/// for `tcpip-stack`, the whole-stack run of FuzzStack.swift; for
/// `tcpip-tcpconn`, the one-connection run of FuzzConnection.swift; for
/// `tcpip-vnet`, the virtio-net header and stack run of FuzzVirtioNet.swift).
/// A broken promise in a view traps and takes the test process down: every
/// file must get through without one. The named seeds, written by
/// Scripts/fuzzing/make-seed-corpus.py, must also decode to what `expected`
/// says. Other files are units `Scripts/fuzz run TARGET SECONDS --grow` kept
/// (SHA-1 names) and past crashes (`regress-*`, each noted in `regressions`).
struct CorpusReplayTests {
    typealias Layer = TCPIPError.Layer

    /// What a seed decodes to as a whole frame.
    struct Expectation {
        /// Layers that parse with checksums verified, outermost first.
        var parsed: [Layer]
        /// Errors the verified parses throw, outermost first.
        var errors: [TCPIPError] = []
    }

    /// Seed name → what the `tcpip-ethernet` target reports for it. The same
    /// name in another target's folder holds the inner layer alone and
    /// expects the part of this that concerns that layer and those inside it.
    static let expected: [String: Expectation] = [
        // Valid frames.
        "arp-request": .init(parsed: [.ethernet, .arp]),
        "arp-reply": .init(parsed: [.ethernet, .arp]),
        "icmp-echo-request": .init(parsed: [.ethernet, .ipv4, .icmp]),
        "icmp-echo-reply": .init(parsed: [.ethernet, .ipv4, .icmp]),
        "icmp-echo-odd-length": .init(parsed: [.ethernet, .ipv4, .icmp]),
        "icmp-port-unreachable": .init(parsed: [.ethernet, .ipv4, .icmp]),
        "icmp-fragmentation-needed": .init(parsed: [.ethernet, .ipv4, .icmp]),
        "icmp-time-exceeded": .init(parsed: [.ethernet, .ipv4, .icmp]),
        "udp-dns-query": .init(parsed: [.ethernet, .ipv4, .udp]),
        "udp-no-checksum": .init(parsed: [.ethernet, .ipv4, .udp]),
        "udp-empty-padded": .init(parsed: [.ethernet, .ipv4, .udp]),
        "udp-dhcp-discover": .init(parsed: [.ethernet, .ipv4, .udp, .dhcp]),
        "dhcp-offer": .init(parsed: [.ethernet, .ipv4, .udp, .dhcp]),
        "dhcp-request-no-end": .init(parsed: [.ethernet, .ipv4, .udp, .dhcp]),
        "dhcp-overload-both": .init(parsed: [.ethernet, .ipv4, .udp, .dhcp]),
        "ipv4-options-udp": .init(parsed: [.ethernet, .ipv4, .udp]),
        // The first fragment's UDP header states the whole datagram's length.
        "ipv4-fragment-first": .init(parsed: [.ethernet, .ipv4],
                                     errors: [.badLength(layer: .udp, stated: 2056, available: 1480)]),
        "ipv4-fragment-last": .init(parsed: [.ethernet, .ipv4]),
        "ipv4-other-protocol": .init(parsed: [.ethernet, .ipv4]),
        "vlan-icmp-echo-request": .init(parsed: [.ethernet, .ipv4, .icmp]),
        "vlan-arp-request": .init(parsed: [.ethernet, .arp]),
        "ipv6-frame": .init(parsed: [.ethernet]),
        "tcp-linux-syn": .init(parsed: [.ethernet, .ipv4, .tcp]),
        "tcp-syn-ack": .init(parsed: [.ethernet, .ipv4, .tcp]),
        "tcp-data-sack": .init(parsed: [.ethernet, .ipv4, .tcp]),
        "tcp-fin": .init(parsed: [.ethernet, .ipv4, .tcp]),
        "tcp-rst": .init(parsed: [.ethernet, .ipv4, .tcp]),
        "tcp-unknown-option-eol": .init(parsed: [.ethernet, .ipv4, .tcp]),
        // Refused or malformed frames.
        "empty": .init(parsed: [], errors: [.truncated(layer: .ethernet, expected: 14, got: 0)]),
        "truncated-ethernet": .init(parsed: [], errors: [.truncated(layer: .ethernet, expected: 14, got: 10)]),
        "truncated-vlan-tag": .init(parsed: [], errors: [.truncated(layer: .ethernet, expected: 18, got: 16)]),
        "qinq-refused": .init(parsed: [], errors: [.unsupportedEtherType(0x88A8)]),
        "vlan-double-tag-refused": .init(parsed: [], errors: [.unsupportedEtherType(0x8100)]),
        "arp-truncated": .init(parsed: [.ethernet], errors: [.truncated(layer: .arp, expected: 28, got: 20)]),
        "arp-not-ethernet": .init(parsed: [.ethernet], errors: [.unsupportedARP(hardwareType: 6, protocolType: 0x0800)]),
        "arp-bad-address-length": .init(parsed: [.ethernet],
                                        errors: [.unsupportedARP(hardwareType: 1, protocolType: 0x0800)]),
        // Parses; ARPMessage refuses operation 3 (RARP).
        "arp-unknown-operation": .init(parsed: [.ethernet, .arp]),
        "ipv4-truncated-header": .init(parsed: [.ethernet], errors: [.truncated(layer: .ipv4, expected: 20, got: 12)]),
        "ipv4-bad-version": .init(parsed: [.ethernet], errors: [.badVersion(6)]),
        "ipv4-ihl-too-small": .init(parsed: [.ethernet], errors: [.badLength(layer: .ipv4, stated: 16, available: 84)]),
        "ipv4-ihl-beyond-packet": .init(parsed: [.ethernet], errors: [.truncated(layer: .ipv4, expected: 60, got: 40)]),
        "ipv4-total-length-lies-long": .init(parsed: [.ethernet],
                                             errors: [.badLength(layer: .ipv4, stated: 1500, available: 84)]),
        "ipv4-total-length-below-header": .init(parsed: [.ethernet],
                                                errors: [.badLength(layer: .ipv4, stated: 10, available: 84)]),
        // The ICMP inside still parses: FuzzDecoders dispatches from the unverified view.
        "ipv4-bad-checksum": .init(parsed: [.ethernet, .icmp], errors: [.badChecksum(.ipv4)]),
        "icmp-bad-checksum": .init(parsed: [.ethernet, .ipv4], errors: [.badChecksum(.icmp)]),
        "icmp-truncated": .init(parsed: [.ethernet, .ipv4], errors: [.truncated(layer: .icmp, expected: 8, got: 4)]),
        "udp-bad-checksum": .init(parsed: [.ethernet, .ipv4], errors: [.badChecksum(.udp)]),
        "udp-length-lies-long": .init(parsed: [.ethernet, .ipv4], errors: [.badLength(layer: .udp, stated: 200, available: 13)]),
        "udp-length-below-header": .init(parsed: [.ethernet, .ipv4],
                                         errors: [.badLength(layer: .udp, stated: 4, available: 12)]),
        "udp-truncated-header": .init(parsed: [.ethernet, .ipv4], errors: [.truncated(layer: .udp, expected: 8, got: 6)]),
        "dhcp-truncated": .init(parsed: [.ethernet, .ipv4, .udp], errors: [.truncated(layer: .dhcp, expected: 240, got: 200)]),
        "dhcp-bad-cookie": .init(parsed: [.ethernet, .ipv4, .udp], errors: [.badDHCPCookie(0x6382_5364)]),
        "dhcp-option-overrun": .init(parsed: [.ethernet, .ipv4, .udp], errors: [.malformedDHCPOption(code: 12)]),
        // Overload 1 puts options in `file`, where option 15 claims 200 bytes.
        "dhcp-overload-file-malformed": .init(parsed: [.ethernet, .ipv4, .udp], errors: [.malformedDHCPOption(code: 15)]),
        "tcp-truncated-header": .init(parsed: [.ethernet, .ipv4], errors: [.truncated(layer: .tcp, expected: 20, got: 12)]),
        "tcp-bad-checksum": .init(parsed: [.ethernet, .ipv4], errors: [.badChecksum(.tcp)]),
        "tcp-data-offset-too-small": .init(parsed: [.ethernet, .ipv4],
                                           errors: [.badLength(layer: .tcp, stated: 16, available: 20)]),
        "tcp-data-offset-beyond-segment": .init(parsed: [.ethernet, .ipv4],
                                                errors: [.badLength(layer: .tcp, stated: 60, available: 24)]),
        "tcp-option-length-0": .init(parsed: [.ethernet, .ipv4], errors: [.malformedTCPOption(kind: 3)]),
        "tcp-option-length-1": .init(parsed: [.ethernet, .ipv4], errors: [.malformedTCPOption(kind: 0xFD)]),
        "tcp-mss-length-2": .init(parsed: [.ethernet, .ipv4], errors: [.malformedTCPOption(kind: 2)]),
        "tcp-sack-bad-length": .init(parsed: [.ethernet, .ipv4], errors: [.malformedTCPOption(kind: 5)]),
        "tcp-timestamps-truncated": .init(parsed: [.ethernet, .ipv4], errors: [.malformedTCPOption(kind: 8)]),
    ]

    /// `tcpip-stack` seed (make-seed-corpus.py's stack_seeds) → facts its run
    /// must end with (`stackFacts`; a counter not listed there is "0").
    static let stackExpected: [String: [String: String]] = [
        // The reply waits for ARP to find the peer.
        "stack-echo-request": ["static.echo-replies-sent": "1", "static.frames-transmitted": "3", "emitted": "2"],
        "stack-arp-request": ["static.frames-transmitted": "2", "emitted": "1", "dhcp.dropped-malformed-arp": "0"],
        "stack-udp-echo": ["static.udp-delivered": "1", "static.udp-sent": "1", "datagrams": "1", "emitted": "2"],
        // 2,000 bytes in two fragments, echoed in two.
        "stack-udp-fragments": ["static.reassembled": "1", "static.udp-delivered": "1", "static.fragments-sent": "2",
                                "reassembly.reassembled": "1", "emitted": "3"],
        "stack-udp-closed-port": ["static.dropped-no-listener": "1", "static.icmp-errors-sent": "1", "emitted": "2"],
        "stack-icmp-port-unreachable": ["static.icmp-errors-received": "1", "reports": "unreachable 3"],
        "stack-icmp-fragmentation-needed": ["static.icmp-errors-received": "1", "reports": "fragmentation-needed 1400",
                                            "static.path-mtu": "1400"],
        "stack-reassembly-timeout": ["reassembly.timed-out": "1", "static.dropped-fragments": "1",
                                     "static.frames-transmitted": "1"],
        // One request and two retries (after the gratuitous ARP), then the
        // queued echo is dropped.
        "stack-arp-timeout": ["static.udp-delivered": "1", "static.dropped-arp-pending": "1",
                              "static.frames-transmitted": "4"],
        "stack-ping-reply": ["echo-replies": "1", "emitted": "2"],
        // REQUEST, then the gratuitous ARP for the leased address.
        "stack-dhcp-offer-ack": ["dhcp.state": "bound", "dhcp.lease": "10.0.0.50/24 via 10.0.0.254 mtu 1400",
                                 "dhcp.address": "10.0.0.50", "emitted": "2"],
        // DISCOVER, REQUEST, gratuitous ARP; at T1 (600 s) the REQUEST waits
        // for ARP to find the server, whose reply comes after the retry at
        // 601 s; its ACK renews.
        "stack-dhcp-renew": ["dhcp.state": "bound", "dhcp.lease": "10.0.0.50/24 via 10.0.0.254 mtu 1400",
                             "dhcp.frames-transmitted": "6"],
        // ARP reply, then the SYN-ACK; the listener's backlog holds one half-open connection.
        "stack-tcp-syn": ["static.tcp-segments-received": "1", "static.tcp-segments-sent": "1", "emitted": "2"],
        "stack-tcp-closed-port": ["static.dropped-tcp-no-connection": "1", "static.tcp-resets-sent": "1",
                                  "emitted": "2"],
    ]

    /// What a `tcpip-stack` run ended with, as strings: every counter of
    /// both stacks (`static.<name>`, `dhcp.<name>`, named as in
    /// `IPStackStatistics.description`), and the facts below.
    static func stackFacts(_ s: StackSummary) -> [String: String] {
        var facts: [String: String] = [:]
        for (prefix, statistics) in [("static", s.staticStatistics), ("dhcp", s.dhcpStatistics)] {
            for line in statistics.description.split(separator: "\n") {
                let pair = line.split(separator: " ")
                facts["\(prefix).\(pair[0])"] = String(pair[1])
            }
        }
        facts["reassembly.reassembled"] = "\(s.reassembly.reassembled)"
        facts["reassembly.timed-out"] = "\(s.reassembly.timedOut)"
        facts["dhcp.state"] = s.dhcpState ?? "none"
        facts["dhcp.lease"] = s.lease.map { "\($0.configuration) mtu \($0.mtu ?? 0)" } ?? "none"
        facts["dhcp.address"] = s.dhcpAddress.map { "\($0)" } ?? "none"
        facts["static.path-mtu"] = "\(s.pathMTU)"
        facts["emitted"] = "\(s.framesEmitted)"
        facts["echo-replies"] = "\(s.echoReplies)"
        facts["datagrams"] = "\(s.datagrams)"
        facts["reports"] = s.reports.map { report in
            switch report {
            case .destinationUnreachable(let code): "unreachable \(code)"
            case .fragmentationNeeded(let mtu): "fragmentation-needed \(mtu)"
            case .timeExceeded(let code): "time-exceeded \(code)"
            case .parameterProblem: "parameter-problem"
            }
        }.joined(separator: ", ")
        return facts
    }

    /// `tcpip-tcpconn` seed (make-seed-corpus.py's conn_seeds) → facts its
    /// run must end with (`connectionFacts`).
    static let connectionExpected: [String: [String: String]] = [
        // Closed after TIME-WAIT, every byte read and acknowledged.
        "conn-active-data-fin": ["state": "closed", "events": "established readable end closed-normal",
                                 "delivered": "1000", "written": "3000", "acknowledged": "3000"],
        "conn-passive-out-of-order": ["state": "closed", "events": "established readable readable end closed-normal",
                                      "delivered": "2000"],
        "conn-rst": ["state": "closed", "events": "established closed-reset", "challenge-acks": "1"],
        // SYN, ACK, 1460 bytes sent three times; after the ACK the other 540.
        "conn-retransmit": ["state": "established", "acknowledged": "1460", "written": "2000", "segments-sent": "6"],
        // SYN, ACK, two one-byte probes, then a segment once the window opens.
        "conn-zero-window": ["state": "established", "written": "1000", "acknowledged": "0", "segments-sent": "5"],
        "conn-duplicate-acks": ["state": "established", "duplicate-acks": "4", "retransmissions": "1"],
        // Our SYN, then a SYN-ACK answering the peer's SYN.
        "conn-simultaneous-open": ["state": "established", "events": "established", "segments-sent": "2"],
        "conn-syn-timeout": ["state": "closed", "events": "closed-timeout", "segments-sent": "7"],
        // `close` drops the 512 unread bytes and hides the peer's FIN.
        "conn-passive-close-first": ["state": "closed", "events": "established readable closed-normal",
                                     "delivered": "1024", "acknowledged": "600"],
    ]

    /// What a `tcpip-tcpconn` run ended with, as strings.
    static func connectionFacts(_ s: ConnectionSummary) -> [String: String] {
        let events = s.events.map { event -> String in
            switch event {
            case .established: "established"
            case .readable: "readable"
            case .endOfStream: "end"
            case .writable: "writable"
            case .closed(let reason): "closed-\(reason)"
            }
        }
        return ["state": "\(s.state)", "events": events.joined(separator: " "), "delivered": "\(s.delivered)",
                "written": "\(s.written)", "acknowledged": "\(s.acknowledged)",
                "segments-sent": "\(s.segmentsSent)", "retransmissions": "\(s.statistics.retransmissions)",
                "challenge-acks": "\(s.statistics.challengeAcknowledgments)",
                "duplicate-acks": "\(s.statistics.duplicateAcknowledgments)",
                "dropped": "\(s.statistics.segmentsDropped)"]
    }

    /// `tcpip-vnet` seed (make-seed-corpus.py's vnet_seeds) → facts its run
    /// must end with (`vnetFacts`; a stack counter not listed is "0" when
    /// the frame reached the stacks).
    static let vnetExpected: [String: [String: String]] = [
        // Two coalesced segments (GRO) with a partial checksum: counted,
        // delivered on the peer's connection (the handshake's two segments
        // and this one), echoed in one frame the device segments.
        "vnet-gso-tcpv4": ["header": "ok", "checksum-verified": "true", "segmentation": "tcpIPv4 1448 54",
                           "transmit": "ok", "static.tcp-coalesced-frames-received": "1",
                           "static.tcp-segments-received": "3", "static.dropped-bad-tcp-checksum": "0",
                           "static.tcp-segmentation-frames-sent": "1", "segmentation-frames": "1"],
        // NEEDS_CSUM alone: the partial checksum is taken as verified.
        "vnet-needs-csum": ["header": "ok", "checksum-verified": "true", "segmentation": "none", "transmit": "ok",
                            "static.tcp-segments-received": "3", "static.dropped-bad-tcp-checksum": "0",
                            "static.tcp-coalesced-frames-received": "0", "segmentation-frames": "0"],
        // DATA_VALID: a wrong UDP checksum goes unchecked; the echo goes back.
        "vnet-data-valid": ["header": "ok", "checksum-verified": "true", "segmentation": "none", "transmit": "ok",
                            "static.udp-delivered": "1", "static.udp-sent": "1", "datagrams": "1",
                            "static.dropped-bad-udp-checksum": "0"],
        "vnet-plain-ping": ["header": "ok", "checksum-verified": "false", "segmentation": "none", "transmit": "ok",
                            "static.echo-replies-sent": "1"],
        "vnet-gso-unknown-type": ["header": "malformed", "transmit": "ok", "stack": "none"],
        // As a transmit request gso_type 3 reads as UDP segmentation (3 % 4), which a driver may ask for.
        "vnet-gso-udp-fragmentation": ["header": "malformed", "transmit": "ok", "stack": "none"],
        "vnet-gso-size-zero": ["header": "malformed", "transmit": "invalid-argument", "stack": "none"],
        "vnet-csum-beyond-frame": ["header": "malformed", "transmit": "invalid-argument", "stack": "none"],
        "vnet-short-header": ["header": "malformed", "transmit": "none", "stack": "none"],
    ]

    /// What a `tcpip-vnet` run ended with, as strings: the header's fate,
    /// and `stackFacts` once the frame reached the stacks.
    static func vnetFacts(_ s: VirtioNetSummary) -> [String: String] {
        func name(_ error: DeviceError?) -> String {
            switch error {
            case nil: "ok"
            case .malformedDeviceHeader: "malformed"
            case .invalidArgument: "invalid-argument"
            default: "other"
            }
        }
        var facts = ["header": name(s.headerError), "stack": s.stack == nil ? "none" : "ran",
                     "segmentation-frames": "\(s.segmentationFrames)"]
        // The transmit request is read only from a whole header.
        facts["transmit"] = s.transmitChecked ? name(s.transmitError) : "none"
        if let m = s.metadata {
            facts["checksum-verified"] = "\(m.checksumVerified)"
            facts["segmentation"] = m.segmentation.map { "\($0.kind) \($0.segmentSize) \($0.headerLength)" } ?? "none"
        }
        if let stack = s.stack { facts.merge(stackFacts(stack)) { a, _ in a } }
        return facts
    }

    /// Past fuzzer crashes kept as corpus files: name → what it found.
    static let regressions: [String: String] = [
        "regress-quote-reassembled-header":
            "tcpip-stack: port unreachable for a datagram reassembled from in-order fragments quoted the last fragment's header (offset 1480)",
        "regress-ping-without-address":
            "tcpip-stack: ping from the DHCP stack before it had an address went out from 0.0.0.0",
        "regress-zero-window-probe-timestamps":
            "tcpip-tcpconn: a zero-window probe went out without the timestamps both SYNs had agreed (RFC 7323 §3.2)",
        "regress-fast-retransmit-past-window":
            "tcpip-tcpconn: a fast retransmit sent a full MSS from SND.UNA, new data past the peer's 255-byte window included",
        "regress-old-ack-window-update":
            "tcpip-tcpconn: an ACK below SND.UNA (but within the RFC 5961 range) updated the send window, so data went past its right edge",
        "regress-window-edge-after-older-ack":
            "tcpip-tcpconn: an ACK with an older SEG.SEQ advanced SND.UNA without updating the window, and the usable window slid past the edge the peer offered",
        "regress-syn-from-multicast-source":
            "tcpip-vnet: a SYN (NEEDS_CSUM, so its checksum unchecked) from 232.0.0.56 to the TCP listener was answered with a SYN-ACK to that multicast address; TCP now drops segments from multicast, broadcast and 0.0.0.0 (RFC 1122 §3.2.1.3)",
    ]

    /// Layers each target's input starts at, and those inside it.
    static let layers: [String: Set<Layer>] = [
        "tcpip-ethernet": [.ethernet, .arp, .ipv4, .icmp, .udp, .dhcp, .tcp],
        "tcpip-arp": [.arp],
        "tcpip-ipv4": [.ipv4, .icmp, .udp, .dhcp, .tcp],
        "tcpip-icmp": [.icmp],
        "tcpip-udp": [.udp, .dhcp],
        "tcpip-dhcp": [.dhcp],
        "tcpip-tcp": [.tcp],
        // Layers of the frames the stacks send in answer.
        "tcpip-stack": [.ethernet, .arp, .ipv4, .icmp, .udp, .dhcp],
        // The segments the connection sends.
        "tcpip-tcpconn": [.tcp],
        // Layers of the frames the stacks send in answer.
        "tcpip-vnet": [.ethernet, .arp, .ipv4, .icmp, .udp, .dhcp, .tcp],
    ]

    static let testFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let corpus = testFolder.appendingPathComponent("Corpus")
    static let targetNames = fuzzTargets.map { $0.name }
    static let stackTarget = "tcpip-stack"
    static let connectionTarget = "tcpip-tcpconn"
    static let vnetTarget = "tcpip-vnet"
    /// The targets whose seeds are `expected`'s frames (all but the stack's,
    /// the connection's and the virtio-net header's).
    static let decoderTargets = targetNames.filter { $0 != stackTarget && $0 != connectionTarget && $0 != vnetTarget }

    static func run(_ target: String) -> (Span<UInt8>) -> FuzzReport {
        fuzzTargets.first { $0.name == target }!.run
    }

    static func files(of target: String) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: corpus.appendingPathComponent(target),
                                                    includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    static func bytes(_ url: URL) throws -> [UInt8] { [UInt8](try Data(contentsOf: url)) }

    static func layer(of error: TCPIPError) -> Layer? {
        switch error {
        case .truncated(let layer, _, _), .badLength(let layer, _, _), .badChecksum(let layer): layer
        case .badVersion: .ipv4
        case .unsupportedARP: .arp
        case .unsupportedEtherType: .ethernet
        case .badDHCPCookie, .malformedDHCPOption: .dhcp
        case .malformedTCPOption: .tcp
        default: nil
        }
    }

    /// The part of a whole-frame expectation a target's input shows.
    static func expectation(_ seed: Expectation, for target: String) -> Expectation {
        let mine = layers[target] ?? []
        return Expectation(parsed: seed.parsed.filter { mine.contains($0) },
                           errors: seed.errors.filter { layer(of: $0).map(mine.contains) ?? false })
    }

    static func isFuzzerUnit(_ name: String) -> Bool {
        name.count == 40 && name.allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }

    @Test("every corpus file decodes without a trap", arguments: targetNames)
    func replay(target: String) throws {
        let files = try Self.files(of: target)
        #expect(!files.isEmpty, "no corpus for \(target)")
        let run = Self.run(target)
        var reached: Set<Layer> = []
        for url in files {
            let bytes = try Self.bytes(url)
            let report = run(bytes.span)
            reached.formUnion(report.parsed)
        }
        // A corpus that never gets a single view built covers nothing.
        #expect(!reached.isDisjoint(with: Self.layers[target] ?? []), "\(target): no file parses")
    }

    @Test("named seeds decode as expected", arguments: decoderTargets)
    func seeds(target: String) throws {
        var checked = 0
        for (name, seed) in Self.expected.sorted(by: { $0.key < $1.key }) {
            let want = Self.expectation(seed, for: target)
            let url = Self.corpus.appendingPathComponent(target).appendingPathComponent(name)
            let present = FileManager.default.fileExists(atPath: url.path)
            // make-seed-corpus.py writes a layer's file exactly when the
            // decoder reaches that layer.
            #expect(present == !(want.parsed.isEmpty && want.errors.isEmpty),
                    "\(target)/\(name): present \(present); run Scripts/fuzzing/make-seed-corpus.py")
            guard present else { continue }
            let bytes = try Self.bytes(url)
            let report = Self.run(target)(bytes.span)
            #expect(report.parsed == want.parsed, "\(target)/\(name): \(report)")
            #expect(report.errors == want.errors, "\(target)/\(name): \(report)")
            checked += 1
        }
        #expect(checked > 0, "\(target): no named seeds")
    }

    @Test("named tcpip-stack seeds end as expected")
    func stackSeeds() throws {
        try Self.checkNamedSeeds(Self.stackTarget, Self.stackExpected, facts: { $0.stack.map(Self.stackFacts) },
                                 absent: { _, _ in "0" })
    }

    @Test("named tcpip-tcpconn seeds end as expected")
    func connectionSeeds() throws {
        try Self.checkNamedSeeds(Self.connectionTarget, Self.connectionExpected,
                                 facts: { $0.connection.map(Self.connectionFacts) }, absent: { _, _ in "missing" })
    }

    @Test("named tcpip-vnet seeds end as expected")
    func vnetSeeds() throws {
        // A stack counter not listed is "0" once the frame reached the stacks.
        try Self.checkNamedSeeds(Self.vnetTarget, Self.vnetExpected, facts: { $0.vnet.map(Self.vnetFacts) },
                                 absent: { key, facts in facts["stack"] == "ran" && key.contains(".") ? "0" : "missing" })
    }

    /// Runs every named seed of `target` (make-seed-corpus.py writes them)
    /// and compares the facts its report gives with `expected`; a fact the
    /// run did not produce reads as `absent(key, facts)`.
    static func checkNamedSeeds(_ target: String, _ expected: [String: [String: String]],
                                facts report: (FuzzReport) -> [String: String]?,
                                absent: (String, [String: String]) -> String) throws {
        let folder = corpus.appendingPathComponent(target)
        #expect(!expected.isEmpty)
        for (name, want) in expected.sorted(by: { $0.key < $1.key }) {
            let url = folder.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else {
                Issue.record("\(target)/\(name) missing; run Scripts/fuzzing/make-seed-corpus.py")
                continue
            }
            let bytes = try Self.bytes(url)
            let facts = try #require(report(run(target)(bytes.span)), "\(target)/\(name): no summary")
            for (key, value) in want.sorted(by: { $0.key < $1.key }) {
                let got = facts[key] ?? absent(key, facts)
                #expect(got == value, "\(name): \(key) is \(got), not \(value); \(facts.sorted { $0.key < $1.key })")
            }
        }
    }

    @Test("corpus folders, fuzz targets and Scripts/fuzzing/targets.txt agree")
    func targetsAgree() throws {
        let folders = try FileManager.default.contentsOfDirectory(atPath: Self.corpus.path)
            .filter { !$0.hasPrefix(".") }
        #expect(Set(folders) == Set(Self.targetNames))
        #expect(Set(Self.layers.keys) == Set(Self.targetNames))
        #expect(Self.targetNames.count == Set(Self.targetNames).count, "duplicate fuzz target names")

        // Packages/TCPIP/Tests/MirageTCPIPTests → the repository root.
        let root = Self.testFolder.deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let table = try String(contentsOf: root.appendingPathComponent("Scripts/fuzzing/targets.txt"), encoding: .utf8)
        let thisFile = "Packages/TCPIP/Tests/MirageTCPIPTests/FuzzDecoders.swift"
        let listed = table.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count == 3, !fields[0].hasPrefix("#"),
                  fields[2].split(separator: ",").first.map(String.init) == thisFile else { return nil }
            return String(fields[0])
        }
        #expect(Set(listed) == Set(Self.targetNames), "targets.txt lines for \(thisFile): \(listed)")
    }

    @Test("every corpus file is a seed, a fuzzer unit or a noted regression", arguments: targetNames)
    func filesAccountedFor(target: String) throws {
        let files = try Self.files(of: target)
        // Keep the checked-in corpus small (`--grow` merges minimise it).
        #expect(files.count <= 200, "\(target): \(files.count) files")
        for url in files {
            let name = url.lastPathComponent
            if name.hasPrefix("regress-") {
                #expect(Self.regressions[name] != nil, "\(target)/\(name): add a note to `regressions`")
            } else {
                let seeds = switch target {
                case Self.stackTarget: Set(Self.stackExpected.keys)
                case Self.connectionTarget: Set(Self.connectionExpected.keys)
                case Self.vnetTarget: Set(Self.vnetExpected.keys)
                default: Set(Self.expected.keys)
                }
                #expect(seeds.contains(name) || Self.isFuzzerUnit(name),
                        "\(target)/\(name): not a seed in `expected`, nor a libFuzzer unit")
            }
        }
    }
}
