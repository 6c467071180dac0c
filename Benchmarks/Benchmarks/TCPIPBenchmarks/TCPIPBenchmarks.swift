// TCPIP part 1 micro-benchmarks (Docs/PERFORMANCE.md records the figures):
//
// - Parse: one prebuilt Ethernet II + IPv4 + UDP frame through the three
//   checked views, fields read, with and without checksum verification.
// - Receive: the same kind of frame, addressed to an IPStack, fed to
//   `frameReceived` + `receiveBatchEnded` as a device would; the socket's
//   handler only counts. The figure that matters is mallocCountTotal per
//   datagram (the target is zero: nothing beyond the application's own).
// - Echo: as Receive, and the handler sends the payload back through the
//   stack into an interface that drops it.
//
// Each iteration runs `scaledIterations` (1000) operations; the tool
// reports time and allocation counts per operation, rounded to the nearest
// integer. Run with `--scale` to see the raw count per 1000 operations
// (Scripts/bench-tcpip does both), so that an allocation every few
// datagrams cannot hide behind the rounding.
import Benchmark
import MirageDevices
import MirageTCPIP

let payloadSizes = [64, 1472]

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        // .instructions needs perf counters, which this VM does not expose.
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 5,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 1_000
    )

    // MARK: Control

    // Proves the malloc counter works here: exactly one allocation per op.
    // (The interposer counts calls; a benchmark reading 0 means none.)
    Benchmark("Control: one 64-byte heap allocation per op") { benchmark in
        for _ in benchmark.scaledIterations {
            let p = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
            blackHole(p)
            p.deallocate()
        }
    }

    // MARK: Parse through the views

    for size in payloadSizes {
        let frame = makeUDPFrame(payloadLength: size)
        precondition(frame.count == 14 + 20 + 8 + size)
        for verify in [true, false] {
            let expected = parseUDPFrame(frame.span, verifyChecksum: verify)
            let name = "Parse Ethernet+IPv4+UDP, \(size) B payload, " + (verify ? "checksums verified" : "verifyChecksum: false")
            Benchmark(name) { benchmark in
                for _ in benchmark.scaledIterations {
                    let digest = parseUDPFrame(frame.span, verifyChecksum: verify)
                    blackHole(digest)
                }
                precondition(parseUDPFrame(frame.span, verifyChecksum: verify) == expected)
            }
        }
    }

    // MARK: Receive through IPStack

    for size in payloadSizes {
        for verified in [false, true] {
            let frame = makeUDPFrame(payloadLength: size)
            let handler = CountingUDPHandler()
            let (stack, _) = makeStack(handler: handler)
            let metadata = ReceiveMetadata(checksumVerified: verified)
            // Sanity: the frame is delivered, nothing dropped.
            stack.frameReceived(frame.span, metadata: metadata)
            stack.receiveBatchEnded()
            precondition(handler.datagrams == 1 && handler.bytes == size, "frame not delivered")
            precondition(stack.statistics.totalDropped == 0, "frame dropped: \(stack.statistics)")

            let name = "IPStack receive UDP, \(size) B payload, "
                + (verified ? "device verified checksum" : "stack verifies checksums")
            Benchmark(name) { benchmark in
                for _ in benchmark.scaledIterations {
                    stack.frameReceived(frame.span, metadata: metadata)
                    stack.receiveBatchEnded()
                }
                blackHole(handler.datagrams)
                precondition(stack.statistics.totalDropped == 0, "frames dropped: \(stack.statistics)")
            }
        }
    }

    // MARK: Receive and echo through IPStack

    for size in payloadSizes {
        let frame = makeUDPFrame(payloadLength: size)
        let handler = EchoUDPHandler()
        let (stack, interface) = makeStack(handler: handler)
        handler.stack = stack
        // Resolve the peer first: its ARP request teaches the stack its MAC.
        let arp = makeARPRequestFromPeer()
        stack.frameReceived(arp.span, metadata: .none)
        stack.receiveBatchEnded()
        precondition(stack.arpEntry(for: Addresses.peerIP) == Addresses.peerMAC, "ARP not learned")
        // Sanity: the echo goes out as the mirror image of the frame.
        stack.frameReceived(frame.span, metadata: .none)
        stack.receiveBatchEnded()
        precondition(handler.echoed == 1 && handler.failed == 0, "echo failed")
        let reply = interface.lastFrame
        let expectedReply = makeUDPFrame(payloadLength: size, destinationMAC: Addresses.peerMAC,
                                         sourceMAC: Addresses.stackMAC, source: Addresses.stackIP,
                                         destination: Addresses.peerIP, sourcePort: Addresses.stackPort,
                                         destinationPort: Addresses.peerPort)
        precondition(reply.count == expectedReply.count, "echo length \(reply.count)")
        // Same payload and ports (IP identification and checksums differ).
        precondition(reply[34..<38] == expectedReply[34..<38] && reply[42...] == expectedReply[42...],
                     "echo content differs")
        _ = parseUDPFrame(reply.span, verifyChecksum: true)

        Benchmark("IPStack receive + echo UDP, \(size) B payload") { benchmark in
            for _ in benchmark.scaledIterations {
                stack.frameReceived(frame.span, metadata: .none)
                stack.receiveBatchEnded()
            }
            blackHole(interface.statistics.transmittedFrames)
            precondition(handler.failed == 0 && stack.statistics.totalDropped == 0, "echo failed")
        }
    }
}
