import MirageDevices
@testable import MirageTCPIP
import Testing

/// Two stacks over a lossy link, for each congestion control and with and
/// without SACK: every byte arrives once and in order, both ends close.
@Suite("TCP through IPStack under loss, per congestion control")
struct StackTCPLossTests {
    @Test(arguments: [CongestionControlAlgorithm.cubic, .newReno], [true, false])
    func bulkTransferUnderLoss(algorithm: CongestionControlAlgorithm, sack: Bool) throws {
        var faults = FaultConfiguration()
        faults.dropRate = 0.02
        faults.reorderRate = 0.02
        faults.delay = .milliseconds(5)
        var tcp = TCPTestbed.tcp
        tcp.congestionControl = algorithm
        tcp.selectiveAcknowledgment = sack
        let bed = TCPTestbed(faults: faults, seed: 42, tcp: tcp)
        defer { bed.detach() }
        let server = TCPApp(stack: bed.b)
        server.outgoing = streamBytes(400_000, seed: 5)
        _ = try bed.b.listen(port: 80, address: nil, backlog: 4, handler: server)
        let client = TCPApp(stack: bed.a)
        client.outgoing = streamBytes(400_000, seed: 6)
        let id = try bed.a.connect(to: Endpoint(.v4(addressB), 80), timeout: .seconds(60), handler: client)
        bed.t.run(for: .seconds(900))
        let serverSide = try #require(server.accepted.first)
        StackTCPTests.expectSame(server.received[serverSide], client.outgoing, "server received every byte in order")
        StackTCPTests.expectSame(client.received[id], server.outgoing, "client received every byte in order")
        #expect(client.closed[id] == .normal && server.closed[serverSide] == .normal)
        #expect(bed.faults.transmitStatistics.dropped + bed.faults.receiveStatistics.dropped > 0, "the link did lose frames")
    }
}
