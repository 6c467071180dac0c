@testable import MirageTCPIP
import Testing

/// The RFC 6675 scoreboard: merging, bounds, IsLost(), SetPipe(), NextSeg().
@Suite struct SACKScoreboardTests {
    func s(_ n: Int) -> SequenceNumber { SequenceNumber(1000) + n }
    func block(_ l: Int, _ r: Int) -> SACKBlock { SACKBlock(left: s(l), right: s(r)) }

    @Test func blocksMergeAndCountNewBytes() {
        var b = SACKScoreboard(start: s(0))
        #expect(b.record(block(100, 200), highACK: s(0), highData: s(1000)) == 100)
        #expect(b.record(block(300, 400), highACK: s(0), highData: s(1000)) == 100)
        #expect(b.record(block(150, 250), highACK: s(0), highData: s(1000)) == 50, "only the new part")
        #expect(b.record(block(250, 300), highACK: s(0), highData: s(1000)) == 50, "fills the gap")
        #expect(b.ranges == [block(100, 400)])
        #expect(b.record(block(100, 400), highACK: s(0), highData: s(1000)) == 0, "nothing new")
        b.acknowledge(upTo: s(250))
        #expect(b.ranges == [block(250, 400)])
        b.acknowledge(upTo: s(400))
        #expect(b.isEmpty)
    }

    @Test func invalidBlocksAreIgnored() {
        var b = SACKScoreboard(start: s(0))
        #expect(b.record(block(900, 1100), highACK: s(0), highData: s(1000)) == 0, "beyond SND.MAX")
        #expect(b.record(block(0, 100), highACK: s(200), highData: s(1000)) == 0, "D-SACK below SND.UNA")
        #expect(b.record(block(300, 300), highACK: s(0), highData: s(1000)) == 0, "empty")
        #expect(b.blocksIgnored == 3 && b.isEmpty)
        #expect(b.record(block(100, 300), highACK: s(200), highData: s(1000)) == 100, "clipped at SND.UNA")
        #expect(b.ranges == [block(200, 300)])
    }

    @Test func rangesAreBounded() {
        var b = SACKScoreboard(start: s(0))
        let n = SACKScoreboard.maximumRanges + 8
        for i in 0..<n { b.record(block(100 * i + 50, 100 * i + 100), highACK: s(0), highData: s(100 * n)) }
        #expect(b.ranges.count == SACKScoreboard.maximumRanges && b.rangesDropped == 8)
        #expect(b.ranges.last == block(100 * (SACKScoreboard.maximumRanges - 1) + 50, 100 * SACKScoreboard.maximumRanges))
        // A lower block still fits by dropping the highest range.
        b.record(block(10, 20), highACK: s(0), highData: s(100 * n))
        #expect(b.ranges.first == block(10, 20) && b.ranges.count == SACKScoreboard.maximumRanges)
        #expect(b.ranges.capacity == SACKScoreboard.maximumRanges || b.ranges.capacity >= SACKScoreboard.maximumRanges)
    }

    @Test func isLostNeedsThreeRangesOrMoreThanTwoSegmentsAbove() {
        var b = SACKScoreboard(start: s(0))
        b.record(block(100, 200), highACK: s(0), highData: s(1000))
        b.record(block(300, 400), highACK: s(0), highData: s(1000))
        #expect(!b.isLost(s(0), smss: 100), "two ranges, 2·SMSS bytes: not yet")
        b.record(block(500, 600), highACK: s(0), highData: s(1000))
        #expect(b.isLost(s(0), smss: 100) && !b.isLost(s(200), smss: 100))
        var c = SACKScoreboard(start: s(0))
        c.record(block(100, 301), highACK: s(0), highData: s(1000))
        #expect(c.isLost(s(0), smss: 100), "more than (DupThresh−1)·SMSS bytes above")
    }

    /// Segments of 100 bytes 0…9 sent; 1, 3 and 5 SACKed.
    func rfcScenario() -> SACKScoreboard {
        var b = SACKScoreboard(start: s(0))
        for l in [100, 300, 500] { b.record(block(l, l + 100), highACK: s(0), highData: s(1000)) }
        return b
    }

    @Test func pipeCountsHolesNotLostPlusRetransmissions() {
        var b = rfcScenario()
        // Hole 0 is lost (three ranges above); holes 2, 4 and 6…9 are in flight.
        #expect(b.pipe(highACK: s(0), highData: s(1000), smss: 100) == 600)
        b.beginRecovery(retransmittedUpTo: s(100))
        #expect(b.pipe(highACK: s(0), highData: s(1000), smss: 100) == 700, "the retransmission of hole 0")
    }

    @Test func nextSegRules() {
        var b = rfcScenario()
        // Rule 1: the lost hole at HighACK.
        #expect(b.nextSegment(highACK: s(0), highData: s(1000), smss: 100, newDataAllowed: true)
            == .retransmit(start: s(0), length: 100, rescue: false))
        b.beginRecovery(retransmittedUpTo: s(100))
        // Hole 2 is not lost: rule 2 sends new data when there is some…
        #expect(b.nextSegment(highACK: s(0), highData: s(1000), smss: 100, newDataAllowed: true) == .newData)
        // …else rule 3 retransmits it.
        #expect(b.nextSegment(highACK: s(0), highData: s(1000), smss: 100, newDataAllowed: false)
            == .retransmit(start: s(200), length: 100, rescue: false))
        b.retransmitted(start: s(200), length: 100, rescue: false, recoveryPoint: s(1000))
        b.retransmitted(start: s(400), length: 100, rescue: false, recoveryPoint: s(1000))
        // Nothing below the highest SACK is left; rule 4 waits for HighACK > RescueRxt.
        #expect(b.nextSegment(highACK: s(0), highData: s(1000), smss: 100, newDataAllowed: false) == .nothing)
        b.acknowledge(upTo: s(200))
        // Rule 4: one rescue retransmission of the highest unSACKed data.
        #expect(b.nextSegment(highACK: s(200), highData: s(1000), smss: 100, newDataAllowed: false)
            == .retransmit(start: s(900), length: 100, rescue: true))
        b.retransmitted(start: s(900), length: 100, rescue: true, recoveryPoint: s(1000))
        #expect(b.highRxt == s(500), "a rescue does not move HighRxt")
        #expect(b.nextSegment(highACK: s(200), highData: s(1000), smss: 100, newDataAllowed: false) == .nothing)
    }

    @Test func neverRetransmitsIntoSACKedBytes() {
        var b = SACKScoreboard(start: s(0))
        for l in [150, 300, 500] { b.record(block(l, l + 100), highACK: s(0), highData: s(1000)) }
        #expect(b.nextSegment(highACK: s(0), highData: s(1000), smss: 100, newDataAllowed: false)
            == .retransmit(start: s(0), length: 100, rescue: false))
        b.retransmitted(start: s(0), length: 100, rescue: false, recoveryPoint: s(1000))
        #expect(b.nextSegment(highACK: s(0), highData: s(1000), smss: 100, newDataAllowed: false)
            == .retransmit(start: s(100), length: 50, rescue: false), "stops at the SACKed range")
        #expect(b.unsackedLength(from: s(120), limit: s(1000)) == 30)
        #expect(b.sackedRangeEnd(containing: s(160)) == s(250))
        b.timeout(highACK: s(0))
        #expect(b.highRxt == s(0) && b.rescueRxt == nil && b.ranges.count == 3, "§5.1: SACKed ranges kept")
    }
}
