import MirageDevices
@testable import MirageTCPIP
import Testing

/// A fragment of a datagram whose payload byte i is `fill(i)`.
func fragment(id: UInt16, offset: Int, length: Int, more: Bool, fill: (Int) -> UInt8 = { UInt8(truncatingIfNeeded: $0) }) -> [UInt8] {
    var p = [UInt8](repeating: 0, count: 20 + length)
    var s = p.mutableSpan
    IPv4Header(source: IPv4Address(10, 0, 0, 1), destination: IPv4Address(10, 0, 0, 2), protocol: IPProtocol.udp,
               payloadLength: length, identification: id, moreFragments: more, fragmentOffset: offset).emit(into: &s)
    for i in 0..<length { s[20 + i] = fill(offset + i) }
    _ = consume s
    return p
}

func add(_ r: inout IPv4Reassembler, _ bytes: [UInt8], at now: Instant = .zero) throws -> IPv4Reassembler.Outcome {
    let packet = try IPv4Packet(checking: bytes.span)
    return r.add(packet, now: now)
}

@Suite struct ReassemblerTests {
    @Test func fragmentsInAnyOrderMakeTheDatagram() throws {
        let orders = [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]]
        for order in orders {
            var r = IPv4Reassembler()
            let frags = [fragment(id: 1, offset: 0, length: 16, more: true),
                         fragment(id: 1, offset: 16, length: 16, more: true),
                         fragment(id: 1, offset: 32, length: 5, more: false)]
            var result: IPv4Reassembler.Outcome = .incomplete
            for (n, i) in order.enumerated() {
                result = try add(&r, frags[i])
                if n < 2 { #expect(result == .incomplete) }
            }
            #expect(result == .complete(payload: (0..<37).map { UInt8($0) }))
            #expect(r.inProgress == 0 && r.memoryInUse == 0)
        }
    }

    @Test func anExactDuplicateIsDroppedAlone() throws {
        var r = IPv4Reassembler()
        let a = fragment(id: 2, offset: 0, length: 8, more: true)
        #expect(try add(&r, a) == .incomplete)
        #expect(try add(&r, a) == .duplicate)
        #expect(try add(&r, fragment(id: 2, offset: 8, length: 3, more: false)) == .complete(payload: (0..<11).map { UInt8($0) }))
        #expect(r.statistics.duplicates == 1)
    }

    @Test func overlapWithDifferentDataDropsTheDatagram() throws {
        var r = IPv4Reassembler()
        #expect(try add(&r, fragment(id: 3, offset: 0, length: 16, more: true)) == .incomplete)
        let conflicting = fragment(id: 3, offset: 8, length: 16, more: true) { _ in 0xEE }
        #expect(try add(&r, conflicting) == .datagramDropped)
        #expect(r.inProgress == 0 && r.memoryInUse == 0)
        // The rest arriving later starts afresh and cannot complete the old data.
        #expect(try add(&r, fragment(id: 3, offset: 16, length: 4, more: false)) == .incomplete)
    }

    @Test func overlapWithEqualDataIsAccepted() throws {
        var r = IPv4Reassembler()
        #expect(try add(&r, fragment(id: 4, offset: 0, length: 16, more: true)) == .incomplete)
        #expect(try add(&r, fragment(id: 4, offset: 8, length: 16, more: true)) == .incomplete)
        #expect(try add(&r, fragment(id: 4, offset: 24, length: 1, more: false)) == .complete(payload: (0..<25).map { UInt8($0) }))
    }

    @Test func inconsistentEndsAndOddSizesAreMalformed() throws {
        var r = IPv4Reassembler()
        #expect(try add(&r, fragment(id: 5, offset: 0, length: 7, more: true)) == .datagramDropped, "non-final fragment not a multiple of 8")
        #expect(try add(&r, fragment(id: 6, offset: 8, length: 8, more: false)) == .incomplete)
        #expect(try add(&r, fragment(id: 6, offset: 16, length: 8, more: true)) == .datagramDropped, "data past the end")
        #expect(r.statistics.malformed == 2)
    }

    @Test func incompleteDatagramsTimeOut() throws {
        var r = IPv4Reassembler()
        #expect(try add(&r, fragment(id: 7, offset: 0, length: 8, more: true), at: .zero) == .incomplete)
        #expect(r.nextDeadline() == .zero + .seconds(30))
        #expect(r.expire(now: .zero + .seconds(29)) == 0)
        #expect(r.expire(now: .zero + .seconds(30)) == 1)
        #expect(r.inProgress == 0 && r.memoryInUse == 0 && r.statistics.timedOut == 1)
    }

    @Test func memoryAndDatagramCountAreBounded() throws {
        var config = IPv4Reassembler.Configuration()
        config.memoryLimit = 4096
        config.maximumDatagrams = 3
        var r = IPv4Reassembler(configuration: config)
        #expect(try add(&r, fragment(id: 10, offset: 0, length: 1024, more: true)) == .incomplete)
        #expect(try add(&r, fragment(id: 11, offset: 0, length: 1024, more: true)) == .incomplete)
        #expect(try add(&r, fragment(id: 12, offset: 0, length: 1024, more: true)) == .incomplete)
        #expect(try add(&r, fragment(id: 13, offset: 0, length: 8, more: true)) == .overLimit, "datagram count")
        #expect(try add(&r, fragment(id: 10, offset: 1024, length: 2048, more: true)) == .overLimit, "memory")
        #expect(r.memoryInUse <= 4096)
    }

    @Test func tooManyPiecesDropTheDatagram() throws {
        var r = IPv4Reassembler()
        // Every other 8-byte piece: 65 disjoint pieces exceed the 64 allowed.
        var outcome: IPv4Reassembler.Outcome = .incomplete
        for k in 0..<65 {
            outcome = try add(&r, fragment(id: 30, offset: 16 * k, length: 8, more: true))
            if k < 64 { #expect(outcome == .incomplete) }
        }
        #expect(outcome == .datagramDropped)
        #expect(r.inProgress == 0 && r.memoryInUse == 0)
    }

    @Test func the65535ByteLimitHolds() throws {
        var r = IPv4Reassembler()
        // Offset 65528 + 16 bytes would end past 65,515 bytes of payload.
        #expect(try add(&r, fragment(id: 20, offset: 65_528, length: 8, more: false)) == .datagramDropped)
    }
}
