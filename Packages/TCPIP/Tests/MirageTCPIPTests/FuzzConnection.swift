// The `tcpip-tcpconn` fuzz target: one `TCPConnection` driven by fuzzer
// input, as a peer and an application would drive it: segments from the
// peer, the clock, timers, and the application's calls. Compiled with
// FuzzDecoders.swift and FuzzStack.swift (same imports: MirageDevices,
// MirageTCPIP and the standard library only).
//
// The input starts with three configuration bytes (`ConnectionFuzzer.run`):
//
//   byte 0  bit 0 passive open (else active); bits 1-2 receive buffer
//           (1024, 8192, 70000, 262144); bits 3-4 send buffer (1024, 8192,
//           65536, 262144); bits 5, 6, 7 offer window scaling, timestamps,
//           SACK
//   byte 1  bit 0 Nagle; bits 1-2 MSS (1460, 536, 100, 8960); bits 3-4 path
//           MTU (1500, 576, 9000, 68); bits 5-7 our ISS (`initialSequences`)
//   byte 2  bits 0-2 the peer's ISS; bit 3 batches: runs of peer segments
//           between `beginBatch` and `flush` (as the stack feeds a receive
//           batch); bit 4 segmentation offload (up to 65,000 bytes per
//           outgoing segment); bit 5 NewReno instead of CUBIC
//
// A passive open takes its SYN from a segment record that follows (flags
// forced to SYN); an active open answers nothing yet. Then records, at most
// `maximumRecords`, each an opcode byte and its arguments:
//
//   0x00-0x7F  a segment from the peer (`peerSegmentBytes`): flags, sequence and
//              acknowledgment offsets, window, options, payload length
//   0x80-0x9F  advance the clock by mantissa << (op & 0x1F) ms (one byte of
//              mantissa, shift at most 20), then run the timers that are due
//   0xA0-0xAF  jump to the next deadline and run the timers
//   0xB0-0xBF  write (arg * 16 + op & 0xF) bytes of the application stream
//   0xC0-0xCF  read at most ((op & 0xF) + 1) * 64 bytes
//   0xD0-0xD7  pause or resume reading everything after each record
//   0xD8-0xDF  didRead
//   0xE0-0xE7  close      0xE8-0xEF  shutdownWrite      0xF0-0xF3  abort
//   0xF4-0xFF  send the peer's last segment again (duplicates, dup ACKs)
//
// Bytes past the end of the input read as zero. Sequence numbers are offsets
// so that most land in or near the window: a segment's from RCV.NXT
// (`receiveBuffer.next`; the peer's ISS before the connection synchronized),
// scaled by a shift the opcode picks; its acknowledgment from the highest
// sequence number the connection sent, SND.UNA, the end of the send buffer
// or our ISS. The peer's byte stream is a fixed function of the stream offset
// (`peerStreamByte`), and every payload carries the stream's bytes for its
// sequence numbers, so a correct connection can only ever deliver a prefix of
// that stream; the application writes its own stream (`applicationStreamByte`).
//
// Checked, by trapping with `fuzzCheck`:
// - bytes the application reads are the peer's stream from offset 0 on,
//   without gaps; after `close`, nothing more is readable;
// - the window the connection offers ends no later than RCV.NXT plus the
//   room in its receive buffer (the edge only moves right as data comes
//   in and is read, so checking after the call is sound);
// - the connection acknowledges no sequence space the peer did not send,
//   and sends no data past the furthest right edge of the window the peer
//   ever offered (but a one-byte zero-window probe at SND.UNA);
//   `.endOfStream` comes where the peer sent a FIN;
// - a FIN from the connection comes after `close` or `shutdownWrite`, right
//   after the last byte written; after those or `.closed`, `write` takes
//   nothing;
// - `.closed(.reset)` and `.closed(.refused)` follow a RST from the peer,
//   `.closed(.aborted)` a call of `abort`, `close` or `shutdownWrite`,
//   `.closed(.normal)` FINs both ways;
// - every outgoing segment's payload is held by the send buffer
//   (`payloadIsHeld`), and its data is the application's stream at its
//   sequence numbers; serialized as the stack would (`TCPHeader.emit`), it
//   parses with its checksum verified and reads back the header's fields;
//   a SYN carries our ISS; MSS, window scale and SACK-permitted ride only on
//   SYNs; timestamps are on every segment but RSTs once both SYNs had them
//   (RFC 7323 §3.2), on none otherwise; SACK blocks only when both SYNs
//   permitted them;
// - events: nothing after `.closed` (and at most one of it), at most one
//   `.established` and `.endOfStream`, `.readable` and `.endOfStream` only
//   after `.established`, no `.readable` after `.endOfStream`; `.closed`
//   was reported exactly when the state is CLOSED or TIME-WAIT;
// - a connection already CLOSED sends nothing and reports nothing;
// - timers make progress: firing what is due a few times leaves nothing due;
// - leaving SYN-SENT, RCV.NXT is the accepted SYN's sequence number + 1.
//
// Corpus: the named seeds come from Scripts/fuzzing/make-seed-corpus.py
// (conn_seeds). libFuzzer's merge keeps ~800 units for this target when it
// counts hit-count features, past the replay test's 200 files; the checked-in
// units were merged on edges alone (`-merge=1 -use_counters=0`, seeds and
// regress-* files given as the first folder), which keeps every edge in ~150.

import MirageDevices
import MirageTCPIP

/// `tcpip-tcpconn`: see the top of this file.
func fuzzConnection(_ bytes: Span<UInt8>) -> FuzzReport {
    var report = FuzzReport()
    var fuzzer = ConnectionFuzzer(input: copyBytes(bytes.extracting(0..<min(bytes.count, ConnectionFuzzer.maximumInput))))
    fuzzer.run(&report)
    report.connection = fuzzer.summary
    return report
}

/// Byte `offset` of the peer's stream (offset 0 is the byte after its SYN).
func peerStreamByte(_ offset: UInt32) -> UInt8 { UInt8((UInt64(offset) &* 131 &+ 7) % 251) }

/// Byte `offset` of the application's stream (what it writes).
func applicationStreamByte(_ offset: Int) -> UInt8 { UInt8(truncatingIfNeeded: (offset &* 151 &+ 3) % 241) }

/// What one `tcpip-tcpconn` run ended with (CorpusReplayTests checks the
/// named seeds against it).
struct ConnectionSummary {
    var state: TCPConnection.State
    /// Every event, in order.
    var events: [TCPConnection.Event]
    /// Bytes of the peer's stream the application read (or dropped by `close`).
    var delivered: Int
    /// Bytes of the application's stream the connection took.
    var written: Int
    /// Of those, bytes the peer acknowledged.
    var acknowledged: Int
    /// Segments the connection sent.
    var segmentsSent: Int
    var statistics: TCPConnection.Statistics
}

/// The reader of the fuzz input and the peer and application around one
/// connection.
struct ConnectionFuzzer {
    /// Records per run; input bytes looked at.
    static let maximumRecords = 300
    static let maximumInput = 64 * 1024
    /// The most payload a segment from the peer carries.
    static let maximumPayload = 2000

    static let initialSequences: [UInt32] = [0, 1, 0x7FFF_FFFF, 0xFFFF_FFFF, 0xFFFF_F000, 12345, 0x8000_0000, 0xFFFF_0000]
    static let receiveBuffers = [1024, 8192, 70000, 262_144]
    static let sendBuffers = [1024, 8192, 65536, 262_144]
    static let segmentSizes = [1460, 536, 100, 8960]
    static let pathMTUs = [1500, 576, 9000, 68]

    static let localAddress = IPv4Address(10, 0, 0, 1)
    static let remoteAddress = IPv4Address(10, 0, 0, 2)
    static let localPort: UInt16 = 80
    static let remotePort: UInt16 = 40000

    let input: [UInt8]
    var position = 0

    var connection: TCPConnection? = nil
    var now = Instant(nanoseconds: 5_000_000_000)
    var configuration = TCPConnection.Configuration()
    var passive = false
    var pathMTU = 1500
    var iss = SequenceNumber(0)
    var peerISS = SequenceNumber(0)
    /// The sequence number of the peer's first data byte, once the
    /// connection accepted its SYN.
    var streamStart: SequenceNumber? = nil

    /// One past the highest sequence number the connection sent.
    var highestSent = SequenceNumber(0)
    /// The TSval of the connection's latest segment with timestamps.
    var lastTimestamp: UInt32 = 0
    /// The peer's last segment, for the replay record.
    var lastPeerSegment: [UInt8] = []

    var delivered = 0
    var written = 0
    var readEverything = true
    var closedForReading = false
    var events: [TCPConnection.Event] = []
    var closedSeen = false
    var establishedSeen = false
    var endOfStreamSeen = false
    var segmentsSent = 0
    /// The furthest sequence space the peer sent (distance from
    /// `streamStart`), and where its FINs were.
    var peerEnd = 0
    var peerFins: Set<Int> = []
    var peerSentReset = false
    /// Whether timestamps and SACK were agreed, once the connection took
    /// the peer's SYN.
    var agreed: (timestamps: Bool, sack: Bool)? = nil
    /// The peer's window scale as the connection must apply it (0 until agreed).
    var peerShift = 0
    /// Our window scale as the connection must apply it (0 until agreed).
    var ourShift = 0
    /// The furthest right edge (ACK + window) the peer offered, as a
    /// distance from our ISS.
    var peerRightEdge = 0
    var aborted = false
    var shutDown = false

    init(input: [UInt8]) { self.input = input }

    var atEnd: Bool { position >= input.count }

    mutating func u8() -> UInt8 {
        guard position < input.count else { return 0 }
        defer { position += 1 }
        return input[position]
    }

    mutating func u16() -> UInt16 { UInt16(u8()) << 8 | UInt16(u8()) }

    var summary: ConnectionSummary? {
        guard let c = connection else { return nil }
        return ConnectionSummary(state: c.state, events: events, delivered: delivered, written: written,
                                 acknowledged: c.sendBuffer.unacknowledged - (iss + 1), segmentsSent: segmentsSent,
                                 statistics: c.statistics)
    }

    // MARK: Run

    mutating func run(_ report: inout FuzzReport) {
        let options = u8(), sizes = u8(), peer = u8()
        passive = options & 1 != 0
        configuration.receiveBufferSize = Self.receiveBuffers[Int(options >> 1) & 3]
        configuration.sendBufferSize = Self.sendBuffers[Int(options >> 3) & 3]
        configuration.windowScaling = options & 0x20 != 0
        configuration.timestamps = options & 0x40 != 0
        configuration.selectiveAcknowledgment = options & 0x80 != 0
        configuration.nagle = sizes & 1 != 0
        configuration.maximumSegmentSize = Self.segmentSizes[Int(sizes >> 1) & 3]
        pathMTU = Self.pathMTUs[Int(sizes >> 3) & 3]
        iss = SequenceNumber(Self.initialSequences[Int(sizes >> 5) & 7])
        peerISS = SequenceNumber(Self.initialSequences[Int(peer) & 7])
        let batches = peer & 0x08 != 0
        if peer & 0x20 != 0 { configuration.congestionControl = .newReno }
        highestSent = iss

        if passive {
            // The SYN a listener accepted: only SYN (ECN bits and PSH/URG may ride along).
            let syn = peerSegmentBytes(op: u8() & 0x7F, forcedFlags: true)
            do throws(TCPIPError) {
                let segment = try TCPSegment(checking: syn.bytes.span, source: Self.remoteAddress,
                                             destination: Self.localAddress)
                connection = TCPConnection(acceptFrom: (Self.localAddress, Self.localPort),
                                           remote: (Self.remoteAddress, Self.remotePort), syn: segment, iss: iss,
                                           pathMTU: pathMTU, configuration: configuration, now: now)
            } catch {
                fuzzFail("tcpconn: the harness's SYN does not parse")
            }
            streamStart = syn.sequence + 1
            lastPeerSegment = syn.bytes
            noteAgreement(syn.bytes)
            notePeerSegment(syn.bytes)
        } else {
            connection = TCPConnection(connectFrom: (Self.localAddress, Self.localPort),
                                       to: (Self.remoteAddress, Self.remotePort), iss: iss, pathMTU: pathMTU,
                                       configuration: configuration, now: now)
        }
        if peer & 0x10 != 0 { connection!.setSegmentationOffload(maximumBytes: 65_000) }
        settle(wasClosed: false, &report)

        var records = 0
        while !atEnd && records < Self.maximumRecords {
            records += 1
            let wasClosed = connection!.state == .closed
            let op = u8()
            if batches {
                // A batch is a run of peer segments; anything else ends it.
                if op <= 0x7F || op >= 0xF4 {
                    if !connection!.batching { connection!.beginBatch() }
                } else if connection!.batching {
                    connection!.flush(now: now)
                    settle(wasClosed: wasClosed, &report)
                }
            }
            switch op {
            case 0x00...0x7F: receivePeerSegment(op: op)
            case 0x80...0x9F:
                let shift = min(Int64(op & 0x1F), 20)
                now = now + .milliseconds(Int64(u8()) << shift)
                runTimers(&report)
            case 0xA0...0xAF:
                if let deadline = connection!.nextDeadline, now < deadline { now = deadline }
                runTimers(&report)
            case 0xB0...0xBF: write(Int(u8()) * 16 + Int(op & 0xF))
            case 0xC0...0xCF: read(maximum: (Int(op & 0xF) + 1) * 64)
            case 0xD0...0xD7: readEverything.toggle()
            case 0xD8...0xDF: connection!.didRead(now: now)
            case 0xE0...0xE7:
                // `close` drops what was not read: count it as consumed.
                delivered += connection!.receiveBuffer.readable
                closedForReading = true
                shutDown = true
                connection!.close(now: now)
            case 0xE8...0xEF:
                shutDown = true
                connection!.shutdownWrite(now: now)
            case 0xF0...0xF3:
                aborted = true
                connection!.abort()
            default: replayPeerSegment()
            }
            settle(wasClosed: wasClosed, &report)
        }
        if connection!.batching {
            let wasClosed = connection!.state == .closed
            connection!.flush(now: now)
            settle(wasClosed: wasClosed, &report)
        }
    }

    /// After every call: what the stack and application would do with the
    /// outbox and events, then the invariants.
    mutating func settle(wasClosed: Bool, _ report: inout FuzzReport) {
        if wasClosed {
            fuzzCheck(connection!.outbox.isEmpty, "tcpconn: a CLOSED connection sent a segment")
            fuzzCheck(connection!.events.isEmpty, "tcpconn: a CLOSED connection reported an event")
        }
        drain(&report)
        if readEverything && connection!.receiveBuffer.readable > 0 {
            read(maximum: Int.max)
            connection!.didRead(now: now)
            if wasClosed { fuzzCheck(connection!.outbox.isEmpty, "tcpconn: a CLOSED connection sent a segment") }
            drain(&report)
        }
        let state = connection!.state
        fuzzCheck(closedSeen == (state == .closed || state == .timeWait),
                  "tcpconn: .closed reported but not CLOSED or TIME-WAIT, or the reverse")
        if closedForReading {
            fuzzCheck(connection!.receiveBuffer.readable == 0, "tcpconn: data readable after close")
        }
    }

    mutating func runTimers(_ report: inout FuzzReport) {
        // As the stack's timer loop would: fire while something is due. Each
        // firing settles at least one deadline, so a few must do.
        var firings = 0
        while let deadline = connection!.nextDeadline, !(now < deadline) {
            fuzzCheck(firings < 8, "tcpconn: a timer stays due after firing")
            firings += 1
            let wasClosed = connection!.state == .closed
            connection!.timerFired(now: now)
            settle(wasClosed: wasClosed, &report)
        }
    }

    // MARK: Application

    mutating func write(_ count: Int) {
        var bytes = [UInt8](repeating: 0, count: count)
        for i in 0..<count { bytes[i] = applicationStreamByte(written + i) }
        let taken = connection!.write(bytes.span, now: now)
        fuzzCheck(taken >= 0 && taken <= count, "tcpconn: write took more than it was given")
        fuzzCheck(taken == 0 || !(shutDown || closedSeen), "tcpconn: write took data after a shutdown or .closed")
        written += taken
    }

    mutating func read(maximum: Int) {
        var offset = delivered
        let n = connection!.read(maximum: maximum) { span in
            for i in span.indices {
                fuzzCheck(span[i] == peerStreamByte(UInt32(truncatingIfNeeded: offset)),
                          "tcpconn: delivered a byte that is not the peer's stream at its offset")
                offset += 1
            }
        }
        fuzzCheck(n >= 0 && n <= maximum && offset - delivered == n, "tcpconn: read count differs from the bytes given")
        fuzzCheck(n == 0 || streamStart != nil, "tcpconn: data delivered before the peer's SYN was accepted")
        delivered = offset
    }

    // MARK: Peer

    /// Builds the bytes of a peer segment from a segment record (the opcode
    /// already read). With `forcedFlags`, the flags are the SYN of a passive
    /// open's listener.
    mutating func peerSegmentBytes(op: UInt8, forcedFlags: Bool) -> (bytes: [UInt8], sequence: SequenceNumber) {
        let c = connection
        var flags = TCPFlags(rawValue: u8())
        if forcedFlags { flags = TCPFlags(rawValue: flags.rawValue & 0xE8).union(.syn) }
        let shift = [0, 4, 8, 16][Int(op >> 2) & 3]
        let sequenceOffset = Int(Int16(bitPattern: u16())) << shift
        let acknowledgmentOffset = Int(Int16(bitPattern: u16()))
        let window = u16()
        let mask = u8()

        let sequenceBase = streamStart == nil ? peerISS : c!.receiveBuffer.next
        let sequence = sequenceBase + sequenceOffset
        let acknowledgmentBase: SequenceNumber =
            switch op & 3 {
            case 0: highestSent
            case 1: c?.sendBuffer.unacknowledged ?? iss
            case 2: c?.sendBuffer.end ?? iss
            default: iss
            }
        var options = TCPOptions()
        if mask & 1 != 0 { options.maximumSegmentSize = u16() }
        if mask & 2 != 0 { options.windowScale = u8() }
        if mask & 4 != 0 { options.sackPermitted = true }
        if mask & 8 != 0 {
            // TSval: the peer's clock (ms) moved by a signed byte; TSecr: the
            // connection's latest TSval less 0-253 ms, any 32 bits (0xFE),
            // or 0 (0xFF).
            let delta = Int32(Int8(bitPattern: u8()))
            let clock = UInt32(truncatingIfNeeded: now.nanoseconds / 1_000_000) &+ 0x4000_0000
            let echo: UInt32 =
                switch u8() {
                case 0xFF: 0
                case 0xFE: UInt32(u16()) << 16 | UInt32(u16())
                case let behind: lastTimestamp &- UInt32(behind)
                }
            options.timestamps = (clock &+ UInt32(bitPattern: delta), echo)
        }
        let blocks = Int(mask >> 4) & 3
        let sackBase = c?.sendBuffer.unacknowledged ?? iss
        for _ in 0..<blocks {
            let left = sackBase + Int(Int16(bitPattern: u16()))
            options.appendSACKBlock(SACKBlock(left: left, right: left + Int(u16())))
        }
        let payloadLength = Int(u16()) % (Self.maximumPayload + 1)

        let header = TCPHeader(sourcePort: Self.remotePort, destinationPort: Self.localPort, sequenceNumber: sequence,
                               acknowledgmentNumber: acknowledgmentBase + acknowledgmentOffset, flags: flags,
                               window: window, options: options)
        // The stream's bytes at the payload's sequence numbers.
        let dataStart = flags.contains(.syn) ? sequence + 1 : sequence
        let origin = streamStart ?? (flags.contains(.syn) ? sequence + 1 : peerISS + 1)
        let first = dataStart.rawValue &- origin.rawValue
        var bytes = [UInt8](repeating: 0, count: header.length + payloadLength)
        for i in 0..<payloadLength {
            bytes[header.length + i] = peerStreamByte(first &+ UInt32(i))
        }
        var span = bytes.mutableSpan
        header.emit(into: &span, at: 0, payloadLength: payloadLength, source: Self.remoteAddress,
                    destination: Self.localAddress)
        _ = consume span
        return (bytes, sequence)
    }

    mutating func receivePeerSegment(op: UInt8) {
        let (bytes, sequence) = peerSegmentBytes(op: op, forcedFlags: false)
        lastPeerSegment = bytes
        deliver(bytes, sequence: sequence)
    }

    mutating func replayPeerSegment() {
        guard !lastPeerSegment.isEmpty else { return }
        deliver(lastPeerSegment, sequence: SequenceNumber(be32(lastPeerSegment.span, 4)))
    }

    mutating func deliver(_ bytes: [UInt8], sequence: SequenceNumber) {
        let wasSynSent = connection!.state == .synSent
        do throws(TCPIPError) {
            let segment = try TCPSegment(checking: bytes.span, source: Self.remoteAddress, destination: Self.localAddress)
            connection!.receive(segment, now: now)
        } catch {
            fuzzFail("tcpconn: the harness's segment does not parse")
        }
        let state = connection!.state
        if wasSynSent && state != .synSent && state != .closed {
            // The connection took this segment's SYN: the stream starts after it.
            fuzzCheck(bytes[13] & TCPFlags.syn.rawValue != 0, "tcpconn: left SYN-SENT without a SYN")
            streamStart = sequence + 1
            fuzzCheck(connection!.receiveBuffer.next == sequence + 1, "tcpconn: RCV.NXT is not the SYN's + 1")
            noteAgreement(bytes)
        }
        notePeerSegment(bytes)
    }

    /// What the handshake agreed, from the peer's SYN the connection took.
    mutating func noteAgreement(_ syn: [UInt8]) {
        do throws(TCPIPError) {
            let segment = try TCPSegment(checking: syn.span, source: Self.remoteAddress, destination: Self.localAddress)
            agreed = (configuration.timestamps && segment.options.timestamps != nil,
                      configuration.selectiveAcknowledgment && segment.options.sackPermitted)
            if configuration.windowScaling, let shift = segment.options.windowScale {
                peerShift = Int(min(shift, 14))
                // RFC 7323 §2.3: the smallest shift that lets the buffer be offered.
                while ourShift < 14 && configuration.receiveBufferSize >> ourShift > 0xFFFF { ourShift += 1 }
            }
        } catch {
            fuzzFail("tcpconn: the harness's SYN does not parse")
        }
    }

    /// Records what a peer segment put on the wire: how far its sequence
    /// space reaches, its FIN, its RST.
    mutating func notePeerSegment(_ bytes: [UInt8]) {
        let flags = TCPFlags(rawValue: bytes[13])
        if flags.contains(.rst) { peerSentReset = true }
        if flags.contains(.ack) {
            // A SYN's window is never scaled (RFC 7323 §2.2).
            let window = Int(be16(bytes.span, 14)) << (flags.contains(.syn) ? 0 : peerShift)
            let edge = (SequenceNumber(be32(bytes.span, 8)) + window) - iss
            if edge > peerRightEdge { peerRightEdge = edge }
        }
        guard let start = streamStart else { return }
        let sequence = SequenceNumber(be32(bytes.span, 4))
        let dataLength = bytes.count - Int(bytes[12] >> 4) * 4
        let dataEnd = (flags.contains(.syn) ? sequence + 1 : sequence) + dataLength
        // Distances past half the sequence space are behind the stream's start.
        let end = dataEnd - start
        guard end >= 0 else { return }
        if flags.contains(.fin) {
            peerFins.insert(end)
            peerEnd = max(peerEnd, end + 1)
        } else {
            peerEnd = max(peerEnd, end)
        }
    }

    // MARK: What the connection leaves

    mutating func drain(_ report: inout FuzzReport) {
        let outbox = connection!.outbox
        connection!.outbox.removeAll()
        for out in outbox { checkOutgoing(out, &report) }
        let new = connection!.events
        connection!.events.removeAll()
        for event in new {
            fuzzCheck(!closedSeen, "tcpconn: an event after .closed")
            switch event {
            case .established:
                fuzzCheck(!establishedSeen, "tcpconn: .established twice")
                establishedSeen = true
            case .readable:
                fuzzCheck(establishedSeen, "tcpconn: .readable before .established")
                fuzzCheck(!endOfStreamSeen, "tcpconn: .readable after .endOfStream")
            case .endOfStream:
                fuzzCheck(establishedSeen, "tcpconn: .endOfStream before .established")
                fuzzCheck(!endOfStreamSeen, "tcpconn: .endOfStream twice")
                fuzzCheck(peerFins.contains(delivered + connection!.receiveBuffer.readable),
                          "tcpconn: .endOfStream where the peer sent no FIN")
                endOfStreamSeen = true
            case .writable:
                break
            case .closed(let reason):
                closedSeen = true
                switch reason {
                case .reset, .refused: fuzzCheck(peerSentReset, "tcpconn: reset or refused without a RST")
                case .aborted: fuzzCheck(aborted || shutDown, "tcpconn: aborted without abort, close or shutdown")
                case .normal: fuzzCheck(shutDown && !peerFins.isEmpty, "tcpconn: closed normally without FINs both ways")
                case .timeout, .unreachable: break
                }
            }
            events.append(event)
            report.mix(UInt64(events.count))
        }
    }

    /// Serializes a queued segment as the stack would and checks it.
    mutating func checkOutgoing(_ out: TCPConnection.Outgoing, _ report: inout FuzzReport) {
        let c = connection!
        segmentsSent += 1
        fuzzCheck(c.payloadIsHeld(out), "tcpconn: a segment's payload is not in the send buffer")
        let h = out.header
        fuzzCheck(out.payloadLength >= 0 && out.payloadLength <= 0xFFFF - 60 - h.length,
                  "tcpconn: payload length out of range")
        var bytes = [UInt8](repeating: 0, count: h.length + out.payloadLength)
        var span = bytes.mutableSpan
        if out.payloadLength > 0 {
            c.sendBuffer.copy(from: out.payloadStart, length: out.payloadLength, into: &span, at: h.length)
        }
        h.emit(into: &span, at: 0, payloadLength: out.payloadLength, source: Self.localAddress,
               destination: Self.remoteAddress)
        _ = consume span
        do throws(TCPIPError) {
            let s = try TCPSegment(checking: bytes.span, source: Self.localAddress, destination: Self.remoteAddress)
            if report.parsed.isEmpty { report.parsed.append(.tcp) }
            fuzzCheck(s.sourcePort == Self.localPort && s.destinationPort == Self.remotePort, "tcpconn: ports")
            fuzzCheck(s.sequenceNumber == h.sequenceNumber && s.acknowledgmentNumber == h.acknowledgmentNumber,
                      "tcpconn: numbers do not read back")
            fuzzCheck(s.flags == h.flags && s.window == h.window, "tcpconn: flags or window do not read back")
            fuzzCheck(s.headerLength == h.length && s.payload.count == out.payloadLength, "tcpconn: lengths")
            let o = s.options, e = h.options
            fuzzCheck(o.maximumSegmentSize == e.maximumSegmentSize && o.windowScale == e.windowScale
                && o.sackPermitted == e.sackPermitted, "tcpconn: options do not read back")
            fuzzCheck(o.timestamps?.value == e.timestamps?.value && o.timestamps?.echoReply == e.timestamps?.echoReply,
                      "tcpconn: timestamps do not read back")
            fuzzCheck(Array(o.sackBlocks) == Array(e.sackBlocks.prefix(e.sackBlocksThatFit)), "tcpconn: SACK blocks")
            if let ts = o.timestamps { lastTimestamp = ts.value }
            let flags = s.flags
            if !flags.contains(.syn) {
                fuzzCheck(o.maximumSegmentSize == nil && o.windowScale == nil && !o.sackPermitted,
                          "tcpconn: SYN-only options on another segment")
            }
            if !flags.contains(.rst) {
                // Before the peer's SYN: only our SYN, with what we offer.
                let timestamps = agreed?.timestamps ?? configuration.timestamps
                fuzzCheck((o.timestamps != nil) == timestamps, "tcpconn: timestamps on a segment differ from what was agreed")
            }
            fuzzCheck(o.sackBlocks.isEmpty || agreed?.sack == true, "tcpconn: SACK blocks without SACK agreed")
            fuzzCheck(!flags.contains(.syn) || s.sequenceNumber == iss, "tcpconn: a SYN without our ISS")
            if flags.contains(.fin) {
                fuzzCheck(shutDown, "tcpconn: a FIN before close or shutdownWrite")
                fuzzCheck(s.sequenceNumber + out.payloadLength == iss + 1 + written,
                          "tcpconn: a FIN not right after the last byte written")
            }
            if let start = streamStart, flags.contains(.ack), !flags.contains(.rst) {
                let acknowledged = s.acknowledgmentNumber - start
                fuzzCheck(acknowledged >= 0 && acknowledged <= peerEnd,
                          "tcpconn: acknowledged sequence space the peer did not send")
                let window = Int(s.window) << (flags.contains(.syn) ? 0 : ourShift)
                let room = c.receiveBuffer.next + c.receiveBuffer.window
                fuzzCheck(!(room < s.acknowledgmentNumber + window), "tcpconn: offered a window past the buffer's room")
            }
            if out.payloadLength > 0 {
                fuzzCheck(!flags.contains(.syn) && s.sequenceNumber == out.payloadStart,
                          "tcpconn: data not at the segment's sequence number")
                let probe = out.payloadLength == 1 && out.payloadStart == c.sendBuffer.unacknowledged
                fuzzCheck(probe || (out.payloadStart + out.payloadLength) - iss <= peerRightEdge,
                          "tcpconn: data sent past the window the peer offered")
                let first = out.payloadStart - (iss + 1)
                let payload = s.payload
                for i in payload.indices {
                    fuzzCheck(payload[i] == applicationStreamByte(first + i),
                              "tcpconn: sent a byte that is not the application's at its offset")
                }
            }
            // A RST may carry the peer's own (unacceptable) acknowledgment number.
            let end = s.sequenceNumber + s.sequenceLength
            if !flags.contains(.rst) && highestSent < end { highestSent = end }
            report.mix(UInt64(s.sequenceNumber.rawValue) << 32 | UInt64(s.acknowledgmentNumber.rawValue))
            report.mix(UInt64(flags.rawValue) << 16 | UInt64(s.window))
        } catch {
            fuzzFail("tcpconn: an outgoing segment does not parse")
        }
    }
}
