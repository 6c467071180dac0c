/// The sender's record of what the peer has selectively acknowledged
/// (RFC 6675 §3, "scoreboard"), fed by the SACK blocks of incoming ACKs
/// (RFC 2018), with RFC 6675 §4's IsLost(), SetPipe() and NextSeg().
///
/// Ranges are kept sorted, disjoint and above HighACK (SND.UNA), at most
/// `maximumRanges` of them in storage reserved once. Sequence numbers here
/// mark ends exclusively: `highRxt` is the sequence number after the last
/// byte retransmitted (RFC 6675's HighRxt + 1), and HighData is SND.NXT
/// (RFC 6675's HighData + 1).
public struct SACKScoreboard: Sendable {
    /// DupThresh (RFC 6675 §2, RFC 5681 §3.2).
    public static let duplicateThreshold = 3
    /// Ranges remembered at most. Each hole between them is a loss in one
    /// window; past this a block that would need a new range is ignored
    /// (or replaces the highest range), counted in `rangesDropped`. Losing
    /// SACK information is safe: the bytes just count as not SACKed.
    public static let maximumRanges = 32

    /// The SACKed ranges, ascending.
    public private(set) var ranges: [SACKBlock]
    /// RFC 6675's HighRxt (exclusive): retransmissions start at or above it.
    public private(set) var highRxt: SequenceNumber
    /// RFC 6675's RescueRxt (exclusive), nil while undefined.
    public private(set) var rescueRxt: SequenceNumber?
    /// SACK information lost to the `maximumRanges` bound.
    public private(set) var rangesDropped: UInt64 = 0
    /// SACK blocks ignored as invalid (RFC 2018 §4 and RFC 6675 §5: outside
    /// SND.UNA..SND.MAX, empty, or D-SACK blocks below SND.UNA, RFC 2883).
    public private(set) var blocksIgnored: UInt64 = 0

    /// An empty scoreboard for a connection whose data starts at `start`.
    public init(start: SequenceNumber) {
        ranges = []
        ranges.reserveCapacity(Self.maximumRanges)
        highRxt = start
    }

    /// Whether anything is SACKed.
    public var isEmpty: Bool { ranges.isEmpty }

    /// The end of the highest SACKed range (RFC 6675's "highest octet
    /// covered by any received SACK" + 1).
    public var highestSACKed: SequenceNumber? { ranges.last?.right }

    /// Total bytes SACKed.
    public var sackedBytes: Int {
        var n = 0
        for r in ranges { n += r.right - r.left }
        return n
    }

    /// Records one SACK block of an ACK whose cumulative acknowledgment is
    /// `highACK`, with `highData` the highest sequence number sent + 1
    /// (SND.MAX); returns how many bytes it newly SACKed.
    @discardableResult
    public mutating func record(_ block: SACKBlock, highACK: SequenceNumber, highData: SequenceNumber) -> Int {
        var left = block.left
        let right = block.right
        // RFC 2883: a block at or below the cumulative ACK reports a
        // duplicate (D-SACK); RFC 2018/6675: blocks must lie in what was sent.
        guard left < right, highACK < right, !(highData < right), right - left <= Int(Int32.max) else {
            blocksIgnored += 1
            return 0
        }
        if left < highACK { left = highACK }
        // Ranges touching [left, right) merge with it.
        var first = 0
        while first < ranges.count && ranges[first].right < left { first += 1 }
        var last = first
        var covered = 0
        var mergedLeft = left, mergedRight = right
        while last < ranges.count && !(right < ranges[last].left) {
            let r = ranges[last]
            let overlapLeft = r.left < left ? left : r.left
            let overlapRight = right < r.right ? right : r.right
            if overlapLeft < overlapRight { covered += overlapRight - overlapLeft }
            if r.left < mergedLeft { mergedLeft = r.left }
            if mergedRight < r.right { mergedRight = r.right }
            last += 1
        }
        let merged = SACKBlock(left: mergedLeft, right: mergedRight)
        if last > first {
            ranges[first] = merged
            ranges.removeSubrange((first + 1)..<last)
        } else {
            if ranges.count == Self.maximumRanges {
                rangesDropped += 1
                // Keep the ranges nearest SND.UNA: they decide what is lost first.
                guard first < ranges.count else { return 0 }
                ranges.removeLast()
            }
            ranges.insert(merged, at: first)
        }
        return (right - left) - covered
    }

    /// The cumulative acknowledgment reached `highACK`: forget what lies below.
    public mutating func acknowledge(upTo highACK: SequenceNumber) {
        var drop = 0
        while drop < ranges.count && !(highACK < ranges[drop].right) { drop += 1 }
        if drop > 0 { ranges.removeFirst(drop) }
        if let first = ranges.first, first.left < highACK { ranges[0] = SACKBlock(left: highACK, right: first.right) }
        if highRxt < highACK { highRxt = highACK }
    }

    /// Forgets every SACKed range (the peer may have reneged, RFC 2018 §8).
    public mutating func clear() { ranges.removeAll(keepingCapacity: true) }

    /// RFC 6675 §4 IsLost(SeqNum): DupThresh discontiguous SACKed ranges
    /// lie above `sequence`, or more than (DupThresh − 1)·SMSS bytes are
    /// SACKed above it.
    public func isLost(_ sequence: SequenceNumber, smss: Int) -> Bool {
        var count = 0, bytes = 0
        for r in ranges.reversed() {
            guard sequence < r.right else { break }
            let from = sequence < r.left ? r.left : sequence + 1
            bytes += r.right - from
            if sequence < r.left { count += 1 }
            if count >= Self.duplicateThreshold || bytes > (Self.duplicateThreshold - 1) * smss { return true }
        }
        return false
    }

    /// RFC 6675 §4 SetPipe(): bytes between `highACK` and `highData` that are
    /// not SACKed and not lost, plus those retransmitted (below HighRxt).
    /// IsLost() is the same for every byte of a hole (the SACKed bytes above
    /// them are the same), so this walks holes, not bytes.
    public func pipe(highACK: SequenceNumber, highData: SequenceNumber, smss: Int) -> Int {
        var pipe = 0
        var start = highACK
        var index = 0
        while start < highData {
            let end = index < ranges.count && ranges[index].left < highData ? ranges[index].left : highData
            if start < end {
                if !isLost(start, smss: smss) { pipe += end - start }
                // Retransmitted bytes are in the pipe again (§4, SetPipe (b)).
                let rxtEnd = highRxt < end ? highRxt : end
                if start < rxtEnd { pipe += rxtEnd - start }
            }
            guard index < ranges.count else { break }
            start = ranges[index].right
            index += 1
        }
        return pipe
    }

    /// Bytes from `sequence` (not SACKed) to the next SACKed range or `limit`.
    public func unsackedLength(from sequence: SequenceNumber, limit: SequenceNumber) -> Int {
        var end = limit
        for r in ranges where sequence < r.right {
            if r.left < end { end = r.left < sequence ? sequence : r.left }
            break
        }
        return max(0, end - sequence)
    }

    /// The end of the SACKed range holding `sequence`, if one does.
    public func sackedRangeEnd(containing sequence: SequenceNumber) -> SequenceNumber? {
        for r in ranges where !(sequence < r.left) && sequence < r.right { return r.right }
        return nil
    }

    /// What NextSeg() (RFC 6675 §4) says to send.
    public enum NextSegment: Equatable, Sendable {
        /// Retransmit `length` bytes from `start`; `rescue` for rule 4's
        /// rescue retransmission (which does not move HighRxt).
        case retransmit(start: SequenceNumber, length: Int, rescue: Bool)
        /// Rule 2: send new data.
        case newData
        /// Nothing may be sent.
        case nothing
    }

    /// RFC 6675 §4 NextSeg(). `newDataAllowed` says whether unsent data
    /// exists that the receiver's window allows (rule 2).
    public func nextSegment(highACK: SequenceNumber, highData: SequenceNumber, smss: Int,
                            newDataAllowed: Bool) -> NextSegment {
        let floor = highACK < highRxt ? highRxt : highACK
        // Rules 1 and 3 look at holes below the highest SACKed byte (1.b),
        // from HighRxt on (1.a).
        var notLost: (SequenceNumber, Int)?
        var start = highACK
        for r in ranges {
            let holeStart = start < floor ? floor : start
            if holeStart < r.left {
                let length = min(smss, r.left - holeStart)
                if isLost(holeStart, smss: smss) {
                    return .retransmit(start: holeStart, length: length, rescue: false)  // rule 1
                }
                if notLost == nil { notLost = (holeStart, length) }
            }
            start = r.right
        }
        if newDataAllowed { return .newData }  // rule 2
        if let (s3, length) = notLost { return .retransmit(start: s3, length: length, rescue: false) }  // rule 3
        // Rule 4: one rescue retransmission per recovery, of the highest
        // unSACKed data, once HighACK has passed RescueRxt.
        if rescueRxt.map({ !(highACK < $0) }) ?? true {
            var end = highData
            if let top = ranges.last, !(top.right < highData) { end = top.left }
            // The hole under `end` starts after the range below it, if any.
            var holeStart = highACK
            for r in ranges where !(end < r.right) { holeStart = r.right }
            if holeStart < end {
                let from = end - min(smss, end - holeStart)
                return .retransmit(start: from, length: end - from, rescue: true)
            }
        }
        return .nothing
    }

    /// A retransmission of `start..<start+length` was sent. RFC 6675 §5
    /// (C.3): HighRxt moves to its end, except for a rescue (rule 4), which
    /// sets RescueRxt to `recoveryPoint` instead.
    public mutating func retransmitted(start: SequenceNumber, length: Int, rescue: Bool,
                                       recoveryPoint: SequenceNumber) {
        if rescue {
            rescueRxt = recoveryPoint
        } else if highRxt < start + length {
            highRxt = start + length
        }
    }

    /// Loss recovery begins (RFC 6675 §5 step 4.3): HighRxt and RescueRxt
    /// both to the end of the first retransmission, sent by the caller.
    public mutating func beginRecovery(retransmittedUpTo end: SequenceNumber) {
        highRxt = end
        rescueRxt = end
    }

    /// The retransmission timer expired (RFC 6675 §5.1): HighRxt back to
    /// HighACK and RescueRxt undefined; SACKed ranges are kept.
    public mutating func timeout(highACK: SequenceNumber) {
        highRxt = highACK
        rescueRxt = nil
    }
}
