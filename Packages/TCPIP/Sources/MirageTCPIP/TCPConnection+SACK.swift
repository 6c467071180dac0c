import MirageDevices

/// Sender-side SACK loss recovery (RFC 6675) on a connection whose peer
/// permitted SACK: the scoreboard is fed by every acceptable ACK, recovery
/// starts on DupThresh duplicate ACKs or when IsLost(SND.UNA), and during
/// recovery segments go out while cwnd − pipe ≥ 1 SMSS, chosen by NextSeg().
extension TCPConnection {
    /// The congestion control algorithm in use.
    public var congestionControl: CongestionControlAlgorithm { congestion.algorithm }

    /// Records the SACK blocks of an ACK of `acknowledgment` (at or above
    /// SND.UNA); returns the bytes newly SACKed.
    mutating func recordSACK(_ options: borrowing TCPOptions, acknowledgment: SequenceNumber) -> Int {
        scoreboard.acknowledge(upTo: acknowledgment)
        var newly = 0
        for block in options.sackBlocks {
            // Blocks outside SND.UNA..SND.MAX and D-SACK blocks are ignored
            // inside (RFC 2018 §4, RFC 2883, RFC 6675 §5).
            newly += scoreboard.record(block, highACK: acknowledgment, highData: sndMax)
        }
        return newly
    }

    /// RFC 6675 §5 steps 1–4 and (C) after an ACK at or above SND.UNA:
    /// count a duplicate, enter recovery when due, or send what recovery
    /// allows.
    mutating func sackRecoveryStep(duplicate: Bool, now: Instant) {
        guard isSynchronized, sndNxt - sndUna > 0 || congestion.inRecovery else { return }
        if congestion.sackRecovery {
            sendRecovery(now: now)
            return
        }
        if duplicate { congestion.sackDuplicateAcknowledgment() }
        // Step 2.a: DupThresh duplicates; step 2.b: IsLost(HighACK + 1).
        guard congestion.mayEnterRecovery, sndNxt - sndUna > 0,
              congestion.duplicateAcks >= SACKScoreboard.duplicateThreshold
                || scoreboard.isLost(sndUna, smss: sendMSS) else { return }
        enterSACKRecovery(now: now)
    }

    /// RFC 6675 §5 step 4: RecoveryPoint = HighData, cwnd = ssthresh, the
    /// first segment from HighACK retransmitted, then (C).
    mutating func enterSACKRecovery(now: Instant) {
        statistics.sackRecoveries += 1
        congestion.enterSACKRecovery(flight: sndNxt - sndUna, highestSent: sndNxt)
        // 4.3: the segment at HighACK, never into SACKed bytes.
        let length = min(dataPerSegment, scoreboard.unsackedLength(from: sndUna, limit: sentDataEnd))
        if length > 0 {
            sendRetransmission(from: sndUna, length: length, now: now)
            retransmitDeadline = now + rtt.timeout
        }
        scoreboard.beginRecovery(retransmittedUpTo: sndUna + length)
        sendRecovery(now: now)
    }

    /// The end of the data sent so far (the FIN aside).
    var sentDataEnd: SequenceNumber { sndNxt < sendBuffer.end ? sndNxt : sendBuffer.end }

    /// RFC 6675 §5 (C): while cwnd − pipe ≥ 1 SMSS, send what NextSeg()
    /// returns, moving HighRxt (C.3) and HighData (C.4).
    mutating func sendRecovery(now: Instant) {
        guard let recoveryPoint = congestion.recoveryPoint, congestion.sackRecovery else { return }
        let smss = dataPerSegment
        // Each pass sends a segment, which raises pipe; the bound only
        // guards against a scoreboard that would not.
        for _ in 0..<(congestion.congestionWindow / smss + 2) {
            let pipe = scoreboard.pipe(highACK: sndUna, highData: sndNxt, smss: sendMSS)
            guard congestion.congestionWindow - pipe >= smss else { return }
            // Rule 2's new data: unsent and within the receiver's window.
            let room = offeredWindow - (sndNxt - sndUna)
            let newData = min(sendBuffer.end - sndNxt, smss, room)
            switch scoreboard.nextSegment(highACK: sndUna, highData: sndNxt, smss: smss, newDataAllowed: newData > 0) {
            case let .retransmit(start, length, rescue):
                let safe = min(length, scoreboard.unsackedLength(from: start, limit: sentDataEnd))
                guard safe > 0 else { return }
                sendRetransmission(from: start, length: safe, now: now)
                scoreboard.retransmitted(start: start, length: safe, rescue: rescue, recoveryPoint: recoveryPoint)
                if rescue { return }  // pipe does not count it (HighRxt unchanged): one per ACK
            case .newData:
                sendFromNext(length: newData, segmentSize: smss, now: now)
            case .nothing:
                return
            }
        }
    }

    /// Sends `length` bytes from `start` again.
    mutating func sendRetransmission(from start: SequenceNumber, length: Int, now: Instant) {
        outbox.append(makeSegment(sequence: start, acknowledgment: rcvNxt, flags: .psh, length: length, from: start,
                                  now: now))
        statistics.retransmissions += 1
        timedSegment = nil  // Karn (RFC 6298 §3)
    }

    /// The retransmission timer expired (RFC 6675 §5.1): recovery ends (the
    /// congestion state records RecoveryPoint = HighData), HighRxt goes
    /// back to HighACK, and going back from SND.UNA skips SACKed bytes. The
    /// SACKed ranges are kept after a first timeout; a repeated one clears
    /// them, in case the peer reneged (RFC 2018 §8).
    mutating func sackTimeout() {
        scoreboard.timeout(highACK: sndUna)
        if retransmissions > 1 { scoreboard.clear() }
    }
}
