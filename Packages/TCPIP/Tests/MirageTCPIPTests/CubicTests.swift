import Foundation
import MirageDevices
@testable import MirageTCPIP
import Testing

/// CUBIC (RFC 9438) in fixed point, checked against the RFC's formulas in
/// floating point.
@Suite struct CubicTests {
    let mss = 1448

    @Test func integerCubeRootIsExact() {
        for n in UInt64(0)..<50_000 {
            let r = Cubic.cubeRoot(n)
            #expect(r * r * r <= n && (r + 1) * (r + 1) * (r + 1) > n, "∛\(n)")
        }
        for k in stride(from: UInt64(2), through: 2_642_245, by: 9_973) {
            #expect(Cubic.cubeRoot(k * k * k) == k)
            #expect(Cubic.cubeRoot(k * k * k - 1) == k - 1)
        }
        #expect(Cubic.cubeRoot(UInt64.max) == 2_642_245, "⌊∛(2⁶⁴−1)⌋")
    }

    /// K (Figure 2) and W_cubic(t) (Figure 1) for a range of W_max and t.
    @Test(arguments: [10, 64, 333, 1_000, 20_000])
    func curveFollowsTheRFCFormula(maximumSegments: Int) {
        var cubic = Cubic()
        let wMax = maximumSegments * mss
        var cwnd = cubic.reduce(congestionWindow: wMax, mss: mss)
        #expect(cwnd == max(wMax * 7 / 10, 2 * mss), "β_cubic = 0.7")
        let start = Instant(nanoseconds: 5_000_000_000)
        cubic.congestionAvoidance(&cwnd, acknowledged: mss, mss: mss, now: start, rtt: .milliseconds(10))
        #expect(cubic.epochStart == start && cubic.maximumWindow == wMax)
        // K = ∛(W_max·(1−β)/C) seconds, with cwnd_epoch = β·W_max.
        let deficit = Double(wMax - max(wMax * 7 / 10, 2 * mss)) / Double(mss)
        let kExpected = cbrt(deficit / 0.4) * 1000
        #expect(abs(Double(cubic.k) - kExpected) <= 1.0, "K \(cubic.k) ms vs \(kExpected)")
        let end: UInt64 = 4 * cubic.k + 3000
        let step: UInt64 = max(1, end / 97)
        let m = Double(mss)
        for t in stride(from: UInt64(0), through: end, by: Int(step)) {
            let seconds: Double = (Double(t) - Double(cubic.k)) / 1000
            let cube: Double = 0.4 * seconds * seconds * seconds
            let expected: Double = max(0, (cube + Double(wMax) / m) * m)
            let got = Double(cubic.window(at: t, mss: mss))
            let tolerance: Double = m / 100 + 2 + expected * 1e-6  // 1/1024 segment; C·10⁻⁹ rounded
            #expect(abs(got - expected) <= tolerance, "W_cubic(\(t) ms) = \(got), RFC \(expected)")
        }
    }

    @Test func fastConvergenceLowersWMax() {
        var cubic = Cubic()
        _ = cubic.reduce(congestionWindow: 100 * mss, mss: mss)
        #expect(cubic.maximumWindow == 100 * mss)
        // A loss below the previous W_max: W_max = cwnd·(1+β)/2 (§4.7).
        let ssthresh = cubic.reduce(congestionWindow: 80 * mss, mss: mss)
        #expect(cubic.maximumWindow == 80 * mss * 17 / 20)
        #expect(ssthresh == 56 * mss)
        #expect(cubic.reduce(congestionWindow: mss, mss: mss) == 2 * mss, "never below two segments")
    }

    /// §4.3: when W_cubic(t) is below W_est, cwnd follows W_est, which grows
    /// by α_cubic = 3(1−β)/(1+β) segments per window acknowledged.
    @Test func renoFriendlyRegion() {
        var cubic = Cubic()
        var cwnd = cubic.reduce(congestionWindow: 20 * mss, mss: mss)
        #expect(cwnd == 14 * mss && cubic.priorWindow == 20 * mss)
        let now = Instant(nanoseconds: 1_000_000_000)
        cubic.congestionAvoidance(&cwnd, acknowledged: mss, mss: mss, now: now, rtt: .milliseconds(100))
        #expect(cubic.estimatedWindow == 14 * mss, "W_est starts at cwnd_epoch")
        // A whole window acknowledged at t = 0: W_cubic(0) = cwnd_epoch stays,
        // W_est grows by α_cubic·(14 segments)/cwnd ≈ α_cubic segments.
        for _ in 0..<14 {
            cubic.congestionAvoidance(&cwnd, acknowledged: mss, mss: mss, now: now, rtt: .milliseconds(100))
        }
        let alpha = 3 * (1 - 0.7) / (1 + 0.7)
        #expect(abs(Double(cubic.estimatedWindow - 14 * mss) - alpha * Double(mss)) < Double(mss) / 20)
        #expect(cwnd == cubic.estimatedWindow, "cwnd = W_est in the Reno-friendly region")
        // Once W_est reaches cwnd_prior, α_cubic = 1: one segment per window.
        var fresh = Cubic()
        var w = 20 * mss
        fresh.congestionAvoidance(&w, acknowledged: mss, mss: mss, now: now, rtt: .zero)
        for _ in 0..<20 { fresh.congestionAvoidance(&w, acknowledged: mss, mss: mss, now: now, rtt: .zero) }
        #expect(abs(fresh.estimatedWindow - 21 * mss) < mss / 20, "no reduction yet: Reno's one segment per window")
    }

    /// Concave then convex (§4.4, §4.5): growth per ACK never beyond the
    /// target clamped to 1.5·cwnd, the plateau near W_max at t = K.
    @Test func concaveAndConvexGrowth() {
        var cubic = Cubic()
        var cwnd = cubic.reduce(congestionWindow: 200 * mss, mss: mss)
        let start = Instant(nanoseconds: 1_000_000_000)
        let rtt = Interval.milliseconds(50)
        cubic.congestionAvoidance(&cwnd, acknowledged: mss, mss: mss, now: start, rtt: rtt)
        var t = start
        var atK = 0
        for _ in 0..<200 {  // ACK a window per RTT for 10 s
            t = t + rtt
            let before = cwnd
            for _ in 0..<(cwnd / mss) {
                cubic.congestionAvoidance(&cwnd, acknowledged: mss, mss: mss, now: t, rtt: rtt)
            }
            #expect(cwnd <= before + before / 2 + mss, "at most 1.5·cwnd per RTT")
            if (t - start).milliseconds <= Int64(cubic.k) { atK = cwnd }
        }
        #expect(abs(atK - 200 * mss) < 10 * mss, "close to W_max at t = K (\(atK / mss) segments)")
        #expect(cwnd > 200 * mss, "convex beyond W_max")
    }

    @Test func timeoutResetsTheEpoch() {
        var cc = CongestionControl(mss: mss, algorithm: .cubic, initialSlowStartThreshold: 10 * mss)
        var una = SequenceNumber(0)
        var now = Instant(nanoseconds: 1_000_000_000)
        for _ in 0..<40 {
            una = una + mss
            now = now + .milliseconds(5)
            _ = cc.newAcknowledgment(mss, acknowledgment: una, flightBefore: 10 * mss, now: now, rtt: .milliseconds(20))
        }
        #expect(cc.cubic.epochStart != nil)
        let cwnd = cc.congestionWindow
        cc.timeout(flight: cwnd, highestSent: una + cwnd)
        #expect(cc.congestionWindow == mss && cc.slowStartThreshold == max(cwnd * 7 / 10, 2 * mss))
        #expect(cc.cubic.epochStart == nil && cc.cubic.maximumWindow == 0, "§4.8: next epoch has K = 0")
        #expect(!cc.mayEnterRecovery, "no recovery before the data outstanding at the timeout is acknowledged")
    }

    @Test func lossDetectionDecreasesByBeta() {
        var cc = CongestionControl(mss: mss, algorithm: .cubic)
        for i in 1...20 {
            _ = cc.newAcknowledgment(mss, acknowledgment: SequenceNumber(UInt32(i * mss)), flightBefore: 0, now: .zero, rtt: .zero)
        }
        let cwnd = cc.congestionWindow
        cc.enterSACKRecovery(flight: cwnd, highestSent: SequenceNumber(1_000_000))
        #expect(cc.slowStartThreshold == cwnd * 7 / 10 && cc.congestionWindow == cc.slowStartThreshold)
        #expect(cc.inRecovery && cc.sackRecovery)
        _ = cc.newAcknowledgment(mss, acknowledgment: SequenceNumber(1_000_000), flightBefore: cwnd, now: .zero, rtt: .zero)
        #expect(!cc.inRecovery && cc.congestionWindow == cwnd * 7 / 10, "RFC 6675: cwnd stays at ssthresh")
    }
}
