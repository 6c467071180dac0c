import MirageDevices
@testable import MirageTCPIP
import Testing

@Suite struct RTTEstimatorTests {
    @Test func firstSampleAndSmoothingFollowRFC6298() {
        var e = RTTEstimator()
        #expect(e.timeout == .seconds(1), "before any sample")
        e.sample(.milliseconds(100))
        // SRTT = R, RTTVAR = R/2, RTO = SRTT + 4·RTTVAR = 300 ms.
        #expect(e.smoothed == .milliseconds(100) && e.variation == .milliseconds(50))
        #expect(e.timeout == .milliseconds(300))
        e.sample(.milliseconds(200))
        // RTTVAR = 3/4·50 + 1/4·100 = 62.5 ms; SRTT = 7/8·100 + 1/8·200 = 112.5 ms.
        #expect(e.variation == .microseconds(62_500) && e.smoothed == .microseconds(112_500))
        #expect(e.timeout == .microseconds(112_500 + 250_000))
    }

    @Test func timeoutIsBoundedAndBacksOff() {
        var e = RTTEstimator()
        e.sample(.microseconds(10))
        #expect(e.timeout == RTTEstimator.defaultMinimum, "never below the minimum")
        e.backOff()
        e.backOff()
        #expect(e.timeout == RTTEstimator.defaultMinimum * 4)
        for _ in 0..<40 { e.backOff() }
        #expect(e.timeout == .seconds(60), "never above the maximum")
        e.sample(.milliseconds(50))
        #expect(e.backoffs == 0 && e.timeout < .seconds(1), "a new sample ends the backoff")
    }
}

/// NewReno: Reno growth (RFC 5681) and fast recovery (RFC 6582).
@Suite struct NewRenoTests {
    let mss = 1000

    @Test func slowStartThenCongestionAvoidance() {
        var cc = CongestionControl(mss: mss, algorithm: .newReno, initialSlowStartThreshold: 8000)
        #expect(cc.congestionWindow == 4000, "RFC 5681 §3.1 for an MSS of 1000")
        var una = SequenceNumber(0)
        for _ in 0..<4 {
            una = una + mss
            #expect(cc.newAcknowledgment(mss, acknowledgment: una, flightBefore: 4000, now: .zero, rtt: .zero) == .none)
        }
        #expect(cc.congestionWindow == 8000, "one MSS per ACK in slow start")
        // Avoidance: 8 ACKs of one MSS (a window's worth) grow it by one MSS.
        for _ in 0..<8 {
            una = una + mss
            _ = cc.newAcknowledgment(mss, acknowledgment: una, flightBefore: 8000, now: .zero, rtt: .zero)
        }
        #expect(cc.congestionWindow == 9000)
    }

    @Test func threeDuplicatesTriggerFastRetransmitAndRecovery() {
        var cc = CongestionControl(mss: mss, algorithm: .newReno)
        for _ in 0..<16 { _ = cc.newAcknowledgment(mss, acknowledgment: SequenceNumber(0), flightBefore: 0, now: .zero, rtt: .zero) }
        let flight = 10_000
        let highest = SequenceNumber(20_000)
        #expect(cc.duplicateAcknowledgment(flight: flight, highestSent: highest) == .none)
        #expect(cc.duplicateAcknowledgment(flight: flight, highestSent: highest) == .none)
        #expect(cc.duplicateAcknowledgment(flight: flight, highestSent: highest) == .retransmit)
        #expect(cc.inRecovery && cc.slowStartThreshold == 5000 && cc.congestionWindow == 8000)
        #expect(cc.duplicateAcknowledgment(flight: flight, highestSent: highest) == .none)
        #expect(cc.congestionWindow == 9000, "inflated by each further duplicate")
        // A partial ACK retransmits the next hole and stays in recovery.
        #expect(cc.newAcknowledgment(2000, acknowledgment: SequenceNumber(12_000), flightBefore: flight, now: .zero, rtt: .zero) == .retransmit)
        #expect(cc.inRecovery)
        // The full ACK ends recovery with the window deflated to ssthresh at most.
        #expect(cc.newAcknowledgment(8000, acknowledgment: highest, flightBefore: 8000, now: .zero, rtt: .zero) == .none)
        #expect(!cc.inRecovery && cc.congestionWindow <= 5000)
    }

    @Test func timeoutCollapsesTheWindow() {
        var cc = CongestionControl(mss: mss, algorithm: .newReno)
        _ = cc.duplicateAcknowledgment(flight: 6000, highestSent: SequenceNumber(9000))
        cc.timeout(flight: 6000, highestSent: SequenceNumber(9000))
        #expect(cc.congestionWindow == mss && cc.slowStartThreshold == 3000 && !cc.inRecovery && cc.duplicateAcks == 0)
        cc.timeout(flight: 1000, highestSent: SequenceNumber(9000))
        #expect(cc.slowStartThreshold == 2 * mss, "never below two segments")
    }
}
