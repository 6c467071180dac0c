import MirageDevices
@testable import MirageTCPIP
import Testing

/// Loss recovery on a connection: RFC 6675 with SACK, NewReno without,
/// under CUBIC and NewReno congestion control.
@Suite struct SACKRecoveryTests {
    /// What the client sent: each data segment's offset, and which were lost.
    final class Log {
        var starts: [Int] = []
        var dropped: Set<Int> = []
    }

    /// 200 KB from client to server with the data segments at `lose`
    /// (indices of full segments) dropped once each, on an explicit clock.
    static func transfer(sack: Bool, algorithm: CongestionControlAlgorithm, lose: Set<Int>) -> (TCPPair, Log, [UInt8]) {
        var configuration = TCPConnection.Configuration()
        configuration.selectiveAcknowledgment = sack
        configuration.congestionControl = algorithm
        var p = TCPPair(configuration: configuration)
        p.run()
        let log = Log()
        p.dropFromClient = { out, c in
            guard out.payloadLength > 0 else { return false }
            let offset = out.payloadStart - (c.iss + 1)
            log.starts.append(offset)
            let index = offset / c.sendMSS
            guard offset % c.sendMSS == 0, lose.contains(index), !log.dropped.contains(offset) else { return false }
            log.dropped.insert(offset)
            return true
        }
        let data = pattern(200_000, seed: 9)
        #expect(p.write(client: data) == data.count)
        p.run()
        return (p, log, data)
    }

    /// Offsets sent more than once.
    static func resent(_ log: Log) -> [Int] {
        var seen: Set<Int> = [], again: [Int] = []
        for s in log.starts { if !seen.insert(s).inserted { again.append(s) } }
        return again
    }

    @Test(arguments: [CongestionControlAlgorithm.cubic, .newReno])
    func sackRecoveryResendsExactlyTheLostSegments(algorithm: CongestionControlAlgorithm) {
        let (p, log, data) = Self.transfer(sack: true, algorithm: algorithm, lose: [20, 24, 28])
        #expect(p.client.sackOn)
        #expect(p.serverReceived == data)
        #expect(log.dropped.count == 3)
        let again = Self.resent(log)
        #expect(again.sorted() == log.dropped.sorted(), "retransmitted \(again), lost \(log.dropped.sorted())")
        #expect(p.client.statistics.retransmissions == 3)
        #expect(p.client.statistics.sackRecoveries == 1 && p.client.statistics.fastRecoveries == 0)
        #expect(p.client.statistics.timeouts == 0, "recovered without a retransmission timeout")
        #expect(p.client.congestionControl == algorithm)
        #expect(p.client.scoreboard.isEmpty, "everything acknowledged cumulatively")
    }

    @Test(arguments: [CongestionControlAlgorithm.cubic, .newReno])
    func withoutSACKNewRenoRecovers(algorithm: CongestionControlAlgorithm) {
        let (p, log, data) = Self.transfer(sack: false, algorithm: algorithm, lose: [20, 24, 28])
        #expect(!p.client.sackOn)
        #expect(p.serverReceived == data)
        #expect(Self.resent(log).sorted() == log.dropped.sorted(), "partial ACKs resend each hole once")
        #expect(p.client.statistics.fastRecoveries == 1 && p.client.statistics.sackRecoveries == 0)
        #expect(p.client.statistics.timeouts == 0)
    }

    /// The window after recovery: CUBIC keeps β = 0.7 of it, Reno half the flight.
    @Test func decreaseDependsOnTheAlgorithm() {
        let (cubic, _, _) = Self.transfer(sack: true, algorithm: .cubic, lose: [30])
        let (reno, _, _) = Self.transfer(sack: true, algorithm: .newReno, lose: [30])
        #expect(cubic.client.congestion.cubic.maximumWindow > 0, "W_max recorded at the loss")
        #expect(cubic.client.congestion.slowStartThreshold
            == max(cubic.client.congestion.cubic.priorWindow * 7 / 10, 2 * cubic.client.sendMSS))
        #expect(reno.client.congestion.slowStartThreshold < cubic.client.congestion.slowStartThreshold)
    }

    /// A timeout with SACKed data outstanding: going back from SND.UNA skips
    /// the SACKed bytes (RFC 6675 §5.1).
    @Test func aTimeoutDoesNotResendSACKedData() {
        var configuration = TCPConnection.Configuration()
        configuration.nagle = false
        var p = TCPPair(configuration: configuration)
        p.run()
        let log = Log()
        let mss = p.client.sendMSS
        // Segments 0 and 2 of a 3-segment flight lost: no DupThresh, no
        // IsLost — only the timer can recover, and segment 1 is SACKed.
        p.dropFromClient = { out, c in
            guard out.payloadLength > 0 else { return false }
            let offset = out.payloadStart - (c.iss + 1)
            log.starts.append(offset)
            guard offset == 0 || offset == 2 * mss, !log.dropped.contains(offset) else { return false }
            log.dropped.insert(offset)
            return true
        }
        let data = pattern(3 * mss, seed: 4)
        _ = p.write(client: data)
        p.run()
        #expect(p.serverReceived == data)
        #expect(p.client.statistics.timeouts >= 1)
        #expect(!Self.resent(log).contains(mss), "the SACKed segment is never sent again")
        #expect(Self.resent(log).sorted() == [0, 2 * mss])
    }
}
