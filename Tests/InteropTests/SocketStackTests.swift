import Foundation
import MirageDevices
import MiragePlatform
import Testing

#if canImport(Glibc)
import Glibc
#endif

// The socket stack against its real peer, the Linux kernel's TCP and UDP,
// over loopback only. The helpers at the end (a loop on a thread of its own,
// blocking kernel-socket clients) are shared with EchoTests.swift.

@Suite("SocketStack contract (kernel sockets, loopback)", .serialized)
struct SocketStackTests {
    @Test("connect to a closed port ends with refused, never established")
    func connectRefused() throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        let port = try closedLoopbackPort()
        let recorder = try harness.sync { StackEventRecorder() }
        let stack = try harness.makeStack()
        let id = try harness.sync {
            try stack.value.connect(to: Endpoint(.v4(.loopback), port), timeout: .seconds(5), handler: recorder.value)
        }
        #expect(try harness.waitUntil { recorder.value.closeReason(id) != nil })
        let events = try harness.sync { recorder.value.events }
        #expect(events == [.closed(id, .refused)])
        // The handle is gone after its close event.
        let endpoints = try harness.sync { stack.value.endpoints(of: id) != nil }
        #expect(!endpoints)
        let writeError = try harness.sync { () -> DeviceError? in
            do throws(DeviceError) { _ = try stack.value.write([1, 2, 3].span, on: id) } catch { return error }
            return nil
        }
        #expect(writeError == .unknownHandle)
    }

    @Test("listener and connection endpoints, IPv4 and IPv6, kernel-chosen ports")
    func endpoints() throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        let stack = try harness.makeStack()
        let recorder = try harness.sync { StackEventRecorder() }
        for address in [IPAddress.v4(.loopback), .v6(.loopback)] {
            let listener = try harness.sync {
                try stack.value.listen(port: 0, address: address, backlog: 8, handler: recorder.value)
            }
            let bound = try #require(try harness.sync { stack.value.localEndpoint(of: listener) })
            #expect(bound.address == address)
            #expect(bound.port != 0)

            // A kernel client: the accepted connection names both ends as the kernel does.
            let client = try KernelSocket(connectingTo: bound)
            let clientLocal = try #require(client.localEndpoint)
            #expect(try harness.waitUntil { recorder.value.accepted.count == 1 })
            let accepted = try harness.sync { recorder.value.accepted[0] }
            let ends = try #require(try harness.sync { stack.value.endpoints(of: accepted) })
            #expect(ends.local == bound)
            #expect(ends.remote == clientLocal)

            // Our stack as the client: the established connection's ends.
            let outgoing = try harness.sync {
                try stack.value.connect(to: bound, timeout: nil, handler: recorder.value)
            }
            #expect(try harness.waitUntil { recorder.value.established.contains(outgoing) })
            let out = try #require(try harness.sync { stack.value.endpoints(of: outgoing) })
            #expect(out.remote == bound)
            #expect(out.local.address == address)
            #expect(out.local.port != 0)

            try harness.sync {
                stack.value.closeListener(listener)
                stack.value.closeAll()
                recorder.value.reset()
            }
            client.close()
        }
        // Addresses that are not the stack's are refused.
        let refused = try harness.sync { () -> DeviceError? in
            do throws(DeviceError) {
                _ = try stack.value.listen(port: 0, address: .v4(IPv4Address(192, 0, 2, 1)), backlog: 1, handler: recorder.value)
            } catch { return error }
            return nil
        }
        #expect(refused == .addressNotAvailable(.v4(IPv4Address(192, 0, 2, 1))))
    }

    @Test("a port in use is reported as addressInUse")
    func addressInUse() throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        let stack = try harness.makeStack()
        let recorder = try harness.sync { StackEventRecorder() }
        let error = try harness.sync { () -> DeviceError? in
            let first = try stack.value.listen(port: 0, address: .v4(.loopback), backlog: 1, handler: recorder.value)
            guard let port = stack.value.localEndpoint(of: first)?.port else { return nil }
            do throws(DeviceError) {
                _ = try stack.value.listen(port: port, address: .v4(.loopback), backlog: 1, handler: recorder.value)
            } catch { return error }
            return nil
        }
        guard case .addressInUse? = error else {
            Issue.record("expected addressInUse, got \(String(describing: error))")
            return
        }
    }

    @Test("write back-pressure: a peer that does not read makes writes short, then writable follows")
    func writeBackPressure() throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        let server = try KernelListener()
        let recorder = try harness.sync { StackEventRecorder() }
        // No fairness budget here: only the kernel's buffers limit the writes.
        var configuration = SocketStack.Configuration()
        configuration.writeBudget = .max
        let stack = try harness.makeStack(configuration)
        let id = try harness.sync {
            try stack.value.connect(to: server.endpoint, timeout: nil, handler: recorder.value)
        }
        let peer = try server.accept()
        #expect(try harness.waitUntil { recorder.value.established.contains(id) })

        // Offer 1 MiB at a time until the kernel takes less (bounded: the
        // socket buffers hold a few MiB at most).
        let chunk = [UInt8](repeating: 0x5A, count: 1 << 20)
        let (total, short) = try harness.sync { () -> (Int, Bool) in
            var total = 0
            for _ in 0..<256 {
                let taken = try stack.value.write(chunk.span, on: id)
                total += taken
                if taken < chunk.count { return (total, true) }
            }
            return (total, false)
        }
        #expect(short, "a peer that never reads must fill the buffers")
        // Nothing owed yet: the buffers are full.
        usleep(100_000)
        #expect(try harness.sync { recorder.value.writableCount[id, default: 0] } == 0)

        // The peer reads everything that was taken; writable follows, once.
        var drained = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while drained < total {
            let n = try peer.receive(into: &buffer)
            guard n > 0 else { break }
            drained += n
        }
        #expect(drained == total)
        #expect(try harness.waitUntil { recorder.value.writableCount[id, default: 0] == 1 })
        usleep(50_000)
        #expect(try harness.sync { recorder.value.writableCount[id, default: 0] } == 1)
        try harness.sync { stack.value.abort(id) }
        #expect(try harness.waitUntil { recorder.value.closeReason(id) == .aborted })
        // abort sends RST: the kernel peer sees a reset, not end of file.
        #expect(throws: KernelSocketError.self) {
            for _ in 0..<1000 where try peer.receive(into: &buffer) > 0 {}
            _ = try peer.receive(into: &buffer)
        }
    }

    @Test("a connection writes at most writeBudget per readiness event; writable follows at once")
    func writeBudget() throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        let server = try KernelListener()
        let recorder = try harness.sync { StackEventRecorder() }
        var configuration = SocketStack.Configuration()
        configuration.writeBudget = 64 << 10
        let stack = try harness.makeStack(configuration)
        let id = try harness.sync { try stack.value.connect(to: server.endpoint, timeout: nil, handler: recorder.value) }
        let peer = try server.accept()
        defer { peer.close() }
        #expect(try harness.waitUntil { recorder.value.established.contains(id) })
        let chunk = [UInt8](repeating: 1, count: 48 << 10)
        let taken = try harness.sync { () -> [Int] in
            (0..<3).map { _ in (try? stack.value.write(chunk.span, on: id)) ?? -1 }
        }
        // 48 KiB, then the 16 KiB left of the budget, then nothing.
        #expect(taken == [48 << 10, 16 << 10, 0])
        // The kernel has room, so writable comes on the next iteration.
        #expect(try harness.waitUntil { recorder.value.writableCount[id, default: 0] == 1 })
        let next = try harness.sync { try stack.value.write(chunk.span, on: id) }
        #expect(next == chunk.count)
    }

    @Test("pauseReading stops received and closes the window; resumeReading delivers the rest")
    func pauseReading() throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        let recorder = try harness.sync { StackEventRecorder(pauseOnAccept: true) }
        let stack = try harness.makeStack()
        let listener = try harness.sync {
            try stack.value.listen(port: 0, address: .v4(.loopback), backlog: 4, handler: recorder.value)
        }
        try harness.sync { recorder.value.stack = stack.value }
        let endpoint = try #require(try harness.sync { stack.value.localEndpoint(of: listener) })
        let client = try KernelSocket(connectingTo: endpoint)
        #expect(try harness.waitUntil { recorder.value.accepted.count == 1 })
        let id = try harness.sync { recorder.value.accepted[0] }

        // Send without blocking until the kernel refuses: with nobody
        // reading, the receive window closes (bounded at 256 MiB).
        client.setNonBlocking()
        let chunk = [UInt8](repeating: 0xA5, count: 1 << 16)
        var sent = 0
        var refusals = 0
        while sent < 256 << 20 && refusals < 20 {
            let n = client.trySend(chunk)
            if n > 0 {
                sent += n
                refusals = 0
            } else {
                refusals += 1
                usleep(5_000)
            }
        }
        #expect(refusals >= 20, "the window never closed after \(sent) bytes")
        #expect(try harness.sync { recorder.value.received[id, default: []].count } == 0)

        try harness.sync { stack.value.resumeReading(id) }
        #expect(try harness.waitUntil(timeout: 20) { recorder.value.received[id, default: []].count == sent })
        client.close()
        #expect(try harness.waitUntil { recorder.value.endOfStreams.contains(id) })
        try harness.sync { stack.value.close(id) }
        #expect(try harness.waitUntil { recorder.value.closeReason(id) == .normal })
    }

    @Test("a paused connection whose peer hung up keeps its data until resumed")
    func pausedHangUp() throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        let recorder = try harness.sync { StackEventRecorder(pauseOnAccept: true) }
        let stack = try harness.makeStack()
        try harness.sync { recorder.value.stack = stack.value }
        let listener = try harness.sync {
            try stack.value.listen(port: 0, address: .v4(.loopback), backlog: 4, handler: recorder.value)
        }
        let endpoint = try #require(try harness.sync { stack.value.localEndpoint(of: listener) })
        let client = try KernelSocket(connectingTo: endpoint)
        #expect(try harness.waitUntil { recorder.value.accepted.count == 1 })
        let id = try harness.sync { recorder.value.accepted[0] }
        try client.sendAll(Array("kept".utf8))
        client.shutdownWrite()
        // Both directions shut while paused: the kernel reports a hang-up,
        // which must neither spin the loop nor lose the bytes.
        try harness.sync { stack.value.shutdownWrite(id) }
        var buffer = [UInt8](repeating: 0, count: 16)
        #expect(try client.receive(into: &buffer) == 0)
        usleep(100_000)
        #expect(try harness.sync { recorder.value.events } == [.accepted(id)])
        try harness.sync { stack.value.resumeReading(id) }
        #expect(try harness.waitUntil { recorder.value.closeReason(id) != nil })
        #expect(try harness.sync { recorder.value.received[id, default: []] } == Array("kept".utf8))
        #expect(try harness.sync { recorder.value.events.last } == .closed(id, .normal))
        #expect(try harness.sync { recorder.value.endOfStreams.contains(id) })
    }

    @Test("peer FIN is endOfStream; shutdownWrite plus the peer's FIN ends normally")
    func halfCloseThenNormal() throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        let server = try KernelListener()
        let recorder = try harness.sync { StackEventRecorder() }
        let stack = try harness.makeStack()
        let id = try harness.sync { try stack.value.connect(to: server.endpoint, timeout: nil, handler: recorder.value) }
        let peer = try server.accept()
        #expect(try harness.waitUntil { recorder.value.established.contains(id) })
        try peer.sendAll(Array("hello".utf8))
        peer.shutdownWrite()
        #expect(try harness.waitUntil { recorder.value.endOfStreams.contains(id) })
        #expect(try harness.sync { recorder.value.received[id, default: []] } == Array("hello".utf8))
        // Still writable after the peer's FIN.
        let taken = try harness.sync { try stack.value.write(Array("bye".utf8).span, on: id) }
        #expect(taken == 3)
        try harness.sync { stack.value.shutdownWrite(id) }
        #expect(try harness.waitUntil { recorder.value.closeReason(id) == .normal })
        var buffer = [UInt8](repeating: 0, count: 16)
        var got: [UInt8] = []
        for _ in 0..<10 {
            let n = try peer.receive(into: &buffer)
            if n == 0 { break }
            got += buffer[0..<n]
        }
        #expect(got == Array("bye".utf8))
        let events = try harness.sync { recorder.value.events.filter { $0.connection == id } }
        #expect(events.last == .closed(id, .normal))
        #expect(events.filter { if case .closed = $0 { true } else { false } }.count == 1)
    }

    @Test("statistics(of:) reads the kernel's TCP_INFO; setNoDelay and setKeepAlive reach the socket")
    func statisticsAndOptions() throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        let server = try KernelListener()
        let recorder = try harness.sync { StackEventRecorder() }
        let stack = try harness.makeStack()
        let id = try harness.sync { try stack.value.connect(to: server.endpoint, timeout: nil, handler: recorder.value) }
        let peer = try server.accept()
        #expect(try harness.waitUntil { recorder.value.established.contains(id) })
        try harness.sync { try stack.value.setNoDelay(true, for: id) }
        try harness.sync { try stack.value.setKeepAlive(.seconds(30), for: id) }
        let message = [UInt8](repeating: 0x5A, count: 10_000)
        let taken = try harness.sync { try stack.value.write(message.span, on: id) }
        #expect(taken == message.count)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var got = 0
        while got < message.count {
            let n = try peer.receive(into: &buffer)
            if n == 0 { break }
            got += n
        }
        #expect(got == message.count)
        try peer.sendAll(Array("ack".utf8))
        #expect(try harness.waitUntil { recorder.value.received[id, default: []].count == 3 })
        let stats = try #require(try harness.sync { stack.value.statistics(of: id) })
        #expect(stats.bytesAcknowledged == UInt64(message.count))
        #expect(stats.bytesReceived == 3)
        #expect(stats.segmentsSent > 0 && stats.segmentsReceived > 0)
        #expect(stats.maximumSegmentSize > 0 && stats.congestionWindow >= stats.maximumSegmentSize)
        #expect(stats.smoothedRTT != nil && stats.retransmissionTimeout != nil)
        try harness.sync { stack.value.abort(id) }
        #expect(try harness.waitUntil { recorder.value.closeReason(id) == .aborted })
        #expect(try harness.sync { stack.value.statistics(of: id) } == nil)
        #expect(throws: DeviceError.unknownHandle) { try harness.sync { try stack.value.setNoDelay(true, for: id) } }
    }

    @Test("a peer reset is connectionClosed(.reset), not end of stream")
    func peerReset() throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        let server = try KernelListener()
        let recorder = try harness.sync { StackEventRecorder() }
        let stack = try harness.makeStack()
        let id = try harness.sync { try stack.value.connect(to: server.endpoint, timeout: nil, handler: recorder.value) }
        let peer = try server.accept()
        #expect(try harness.waitUntil { recorder.value.established.contains(id) })
        peer.resetClose()
        #expect(try harness.waitUntil { recorder.value.closeReason(id) != nil })
        #expect(try harness.sync { recorder.value.closeReason(id) } == .reset)
        #expect(try harness.sync { recorder.value.endOfStreams.contains(id) } == false)
    }

    @Test("bytes the peer sent just before its reset are delivered, then connectionClosed(.reset)")
    func dataBeforeReset() throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        let server = try KernelListener()
        let recorder = try harness.sync { StackEventRecorder() }
        let stack = try harness.makeStack()
        let id = try harness.sync { try stack.value.connect(to: server.endpoint, timeout: nil, handler: recorder.value) }
        let peer = try server.accept()
        #expect(try harness.waitUntil { recorder.value.established.contains(id) })
        // Keep the loop busy while the bytes and the RST both arrive, so one
        // readiness event carries EPOLLIN and EPOLLERR together.
        let busy = DispatchSemaphore(value: 0)
        harness.loop.execute { busy.wait() }
        try peer.sendAll(Array("last words".utf8))
        peer.resetClose()
        usleep(100_000)
        busy.signal()
        #expect(try harness.waitUntil { recorder.value.closeReason(id) != nil })
        #expect(try harness.sync { recorder.value.received[id, default: []] } == Array("last words".utf8))
        #expect(try harness.sync { recorder.value.closeReason(id) } == .reset)
    }

    @Test("connect times out when the listener's queue is full")
    func connectTimeout() throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        // Linux drops SYNs to a listener whose accept queue is full, so the
        // attempt gets no answer at all; all of it stays on loopback.
        let server = try KernelListener(backlog: 0)
        var fillers: [KernelSocket] = []
        for _ in 0..<4 { fillers.append(try KernelSocket(startingConnectTo: server.endpoint)) }
        usleep(100_000)
        let recorder = try harness.sync { StackEventRecorder() }
        let stack = try harness.makeStack()
        let started = ContinuousClock.now
        let id = try harness.sync {
            try stack.value.connect(to: server.endpoint, timeout: .milliseconds(300), handler: recorder.value)
        }
        #expect(try harness.waitUntil { recorder.value.closeReason(id) != nil })
        let elapsed = ContinuousClock.now - started
        #expect(try harness.sync { recorder.value.events } == [.closed(id, .timeout)])
        #expect(elapsed >= .milliseconds(300))
        for filler in fillers { filler.close() }
    }

    @Test("UDP reports the source and the destination address, IPv4 and IPv6, on a wildcard bind")
    func udpDestination() throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        let recorder = try harness.sync { StackEventRecorder() }
        let stack = try harness.makeStack()
        let socket = try harness.sync { try stack.value.bindUDP(port: 0, address: nil, handler: recorder.value) }
        let port = try #require(try harness.sync { stack.value.localEndpoint(of: socket)?.port })
        #expect(port != 0)
        for address in [IPAddress.v4(.loopback), .v6(.loopback)] {
            let client = try KernelSocket(udpFamilyOf: address)
            try client.sendDatagram(Array("to \(address)".utf8), to: Endpoint(address, port))
            let clientLocal = try #require(client.localEndpoint)
            #expect(try harness.waitUntil { recorder.value.datagrams.contains { $0.payload == Array("to \(address)".utf8) } })
            let datagram = try #require(try harness.sync {
                recorder.value.datagrams.first { $0.payload == Array("to \(address)".utf8) }
            })
            #expect(datagram.destination == Endpoint(address, port))
            #expect(datagram.source.address == address)
            #expect(datagram.source.port == clientLocal.port)

            // And back, from the stack to the kernel client.
            try harness.sync { try stack.value.send(Array("reply".utf8).span, to: datagram.source, from: socket) }
            var buffer = [UInt8](repeating: 0, count: 64)
            let n = try client.receive(into: &buffer)
            #expect(Array(buffer[0..<n]) == Array("reply".utf8))
            client.close()
        }
        // Too large for any IPv4 datagram.
        let big = [UInt8](repeating: 0, count: SocketStack.maximumIPv4DatagramSize + 1)
        let error = try harness.sync { () -> DeviceError? in
            do throws(DeviceError) { try stack.value.send(big.span, to: Endpoint(.v4(.loopback), port), from: socket) } catch { return error }
            return nil
        }
        #expect(error == .messageTooLarge(size: big.count, limit: SocketStack.maximumIPv4DatagramSize))
    }

    @Test("events caused by a call are not delivered inside the call")
    func noReentrantEvents() throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        let server = try KernelListener()
        let recorder = try harness.sync { StackEventRecorder() }
        let stack = try harness.makeStack()
        let id = try harness.sync { try stack.value.connect(to: server.endpoint, timeout: nil, handler: recorder.value) }
        let peer = try server.accept()
        defer { peer.close() }
        #expect(try harness.waitUntil { recorder.value.established.contains(id) })
        let eventsInsideCall = try harness.sync { () -> [StackEventRecorder.Event] in
            stack.value.abort(id)
            return recorder.value.events
        }
        #expect(eventsInsideCall == [.established(id)])
        #expect(try harness.waitUntil { recorder.value.closeReason(id) == .aborted })
    }
}

@Suite("Async front over SocketStack (kernel peers, loopback)", .serialized)
struct AsyncFrontTests {
    @Test("tasks with the loop as executor preference run on the loop thread")
    func executorPreference() async throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        let loop = harness.loop
        let onLoop = await Task(executorPreference: loop) { loop.inLoopThread }.value
        #expect(onLoop)
        let elsewhere = await Task { loop.inLoopThread }.value
        #expect(!elsewhere)
    }

    @Test("connect to a closed port throws closed(.refused)")
    func connectRefused() async throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        let front = AsyncStack(stack: try harness.makeStack().value, loop: harness.loop)
        let port = try closedLoopbackPort()
        await #expect(throws: AsyncStackError.closed(.refused)) {
            _ = try await front.connect(to: Endpoint(.v4(.loopback), port))
        }
    }

    @Test("listener sequence, read until nil, write, on the loop thread; endpoints")
    func acceptReadWrite() async throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        let loop = harness.loop
        let front = AsyncStack(stack: try harness.makeStack().value, loop: loop)
        let listener = try await front.listen(port: 0, address: .v6(.loopback))
        let endpoint = try #require(listener.localEndpoint)
        #expect(endpoint.address == .v6(.loopback) && endpoint.port != 0)
        let client = try KernelSocket(connectingTo: endpoint)
        let clientEnd = client.localEndpoint
        let served = Task(executorPreference: loop) { () async throws -> (Bool, [UInt8], Endpoint?) in
            var onLoop = loop.inLoopThread
            var iterator = listener.makeAsyncIterator()
            guard let connection = try await iterator.next() else { return (false, [], nil) }
            onLoop = onLoop && loop.inLoopThread
            var all: [UInt8] = []
            while let bytes = try await connection.read() {
                all += bytes
                onLoop = onLoop && loop.inLoopThread
            }
            try await connection.write(Array("got \(all.count)".utf8))
            await connection.close()
            let reason = try await connection.waitClosed()
            await listener.close()
            let next = try await listener.accept()
            return (onLoop && loop.inLoopThread && reason == .normal && next == nil, all, connection.remoteEndpoint)
        }
        let message = pseudoRandomBytes(count: 300_000, seed: 5)
        try client.sendAll(message)
        client.shutdownWrite()
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        for _ in 0..<100 {
            let n = try client.receive(into: &buffer)
            if n == 0 { break }
            reply += buffer[0..<n]
        }
        let (ok, all, remote) = try await withDeadline(seconds: 20) { try await served.value }
        #expect(ok)
        #expect(all == message)
        #expect(remote == clientEnd)
        #expect(reply == Array("got 300000".utf8))
    }

    @Test("unread bytes are bounded: reading pauses and the peer's sends stop")
    func boundedReceiveBuffer() async throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        let loop = harness.loop
        let front = AsyncStack(stack: try harness.makeStack().value, loop: loop)
        let listener = try await front.listen(port: 0, address: .v4(.loopback))
        let client = try KernelSocket(connectingTo: try #require(listener.localEndpoint))
        let connection = try #require(try await withDeadline(seconds: 10) { try await listener.accept() })
        // Nobody reads: the sender must be stopped after the front's limit
        // plus the kernel's buffers, far below 256 MiB.
        client.setNonBlocking()
        let chunk = [UInt8](repeating: 7, count: 1 << 16)
        var sent = 0
        var refusals = 0
        while sent < 256 << 20 && refusals < 20 {
            let n = client.trySend(chunk)
            if n > 0 { sent += n; refusals = 0 } else { refusals += 1; usleep(5_000) }
        }
        #expect(refusals >= 20, "never pushed back after \(sent) bytes")
        client.close()
        // Everything sent arrives once read. (The deadline only guards
        // against a hang: under a full CI run, with load tests beside it,
        // the reads took over 20 s once.)
        let total = try await withDeadline(seconds: 90) { () async throws -> Int in
            var total = 0
            while let bytes = try await connection.read() { total += bytes.count }
            return total
        }
        #expect(total == sent)
    }

    @Test("a write larger than the buffers waits for the peer and completes")
    func writeWaitsForPeer() async throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        let loop = harness.loop
        let front = AsyncStack(stack: try harness.makeStack().value, loop: loop)
        let server = try KernelListener()
        let data = pseudoRandomBytes(count: 16 << 20, seed: 11)
        let writer = Task(executorPreference: loop) { () async throws -> CloseReason in
            let connection = try await front.connect(to: server.endpoint)
            try await connection.write(data)
            try await connection.shutdownWrite()
            return try await connection.waitClosed()
        }
        let peer = try server.accept()
        usleep(200_000)  // let the buffers fill while nobody reads
        var received: [UInt8] = []
        received.reserveCapacity(data.count)
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while received.count <= data.count {
            let n = try peer.receive(into: &buffer)
            if n == 0 { break }
            received.append(contentsOf: buffer[0..<n])
        }
        #expect(received == data)
        peer.close()
        let reason = try await withDeadline(seconds: 20) { try await writer.value }
        #expect(reason == .normal)
    }

    @Test("a waiting read ends with cancelled when its task is cancelled")
    func cancelledRead() async throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        let loop = harness.loop
        let front = AsyncStack(stack: try harness.makeStack().value, loop: loop)
        let server = try KernelListener()
        let connection = try await front.connect(to: server.endpoint)
        let peer = try server.accept()
        defer { peer.close() }
        let reader = Task(executorPreference: loop) { () async -> AsyncStackError? in
            do throws(AsyncStackError) {
                _ = try await connection.read()
                return nil
            } catch {
                return error
            }
        }
        usleep(50_000)
        reader.cancel()
        let outcome = try await withDeadline(seconds: 10) { await reader.value }
        #expect(outcome == .cancelled)
        // The connection still works afterwards.
        try peer.sendAll([1, 2, 3])
        let bytes = try await withDeadline(seconds: 10) { try await connection.read() }
        #expect(bytes == [1, 2, 3])
        await connection.abort()
        #expect(try await connection.waitClosed() == .aborted)
    }

    @Test("UDP socket sequence: datagrams with source and destination; send back")
    func udp() async throws {
        let harness = try SocketTestLoop()
        defer { harness.shutdown() }
        let front = AsyncStack(stack: try harness.makeStack().value, loop: harness.loop)
        let socket = try await front.bindUDP(port: 0, address: .v4(.loopback))
        let local = try #require(socket.localEndpoint)
        let client = try KernelSocket(udpFamilyOf: local.address, timeoutSeconds: 2)
        for index in 0..<10 { try client.sendDatagram([UInt8(index)], to: local) }
        let clientPort = try #require(client.localEndpoint?.port)
        var seen: [UInt8] = []
        let count = try await withDeadline(seconds: 10) { () async throws -> Int in
            var count = 0
            for try await datagram in socket {
                #expect(datagram.destination == local)
                #expect(datagram.source == Endpoint(.v4(.loopback), clientPort))
                try await socket.send(datagram.payload, to: datagram.source)
                count += 1
                if count == 10 { break }
            }
            return count
        }
        #expect(count == 10)
        var buffer = [UInt8](repeating: 0, count: 16)
        for _ in 0..<10 {
            let n = try client.receive(into: &buffer)
            seen += buffer[0..<n]
        }
        #expect(seen == Array(0..<10))
        await socket.close()
        #expect(try await socket.receive() == nil)
    }
}

// MARK: - Shared helpers (also used by EchoTests.swift)

/// A value moved between the test thread and the loop thread. The loop's
/// objects are only touched inside `SocketTestLoop.sync`, on the loop thread.
struct LoopBound<Value>: @unchecked Sendable {
    var value: Value
}

/// Failures of the helpers.
enum SocketTestError: Error {
    case timedOut(String)
    case loopFailed(String)
}

/// An `EventLoop` running on a thread of its own for one test.
final class SocketTestLoop: @unchecked Sendable {
    let loop: EventLoop
    private let finished = DispatchSemaphore(value: 0)

    /// Creates the loop on a new thread (which makes it the loop thread)
    /// and runs it there until `shutdown`.
    init() throws {
        let ready = DispatchSemaphore(value: 0)
        let created = LockedValue<Result<EventLoop, DeviceError>?>(nil)
        let finished = self.finished
        let thread = Thread {
            let loop: EventLoop
            do throws(DeviceError) {
                loop = try EventLoop()
            } catch {
                created.set(.failure(error))
                ready.signal()
                finished.signal()
                return
            }
            created.set(.success(loop))
            ready.signal()
            try? loop.run()
            finished.signal()
        }
        thread.start()
        guard ready.wait(timeout: .now() + 10) == .success, let result = created.get() else {
            throw SocketTestError.loopFailed("the loop thread did not start")
        }
        loop = try result.get()
    }

    /// Runs `body` on the loop thread and returns its result (at most 20 s).
    func sync<T>(_ body: @escaping () throws -> T) throws -> LoopBound<T> {
        let work = LoopBound(value: body)
        let result = LockedValue<LoopBound<Result<T, any Error>>?>(nil)
        let done = DispatchSemaphore(value: 0)
        loop.execute {
            result.set(LoopBound(value: Result { try work.value() }))
            done.signal()
        }
        guard done.wait(timeout: .now() + 20) == .success, let outcome = result.get() else {
            throw SocketTestError.timedOut("the loop did not run the body within 20 s")
        }
        return LoopBound(value: try outcome.value.get())
    }

    /// `sync` for Sendable results.
    func sync<T: Sendable>(_ body: @escaping () throws -> T) throws -> T {
        let bound: LoopBound<T> = try sync(body)
        return bound.value
    }

    /// Polls `condition` on the loop thread every 5 ms for at most `timeout` seconds.
    func waitUntil(timeout: Double = 10, _ condition: @escaping () -> Bool) throws -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeout * 1000))
        while true {
            if try sync(condition) { return true }
            if ContinuousClock.now >= deadline { return false }
            usleep(5_000)
        }
    }

    private let stacks = LockedValue<[LoopBound<SocketStack>]>([])

    /// A socket stack on this loop, closed by `shutdown`.
    func makeStack(_ configuration: SocketStack.Configuration = SocketStack.Configuration()) throws -> LoopBound<SocketStack> {
        let loop = self.loop
        let stack: LoopBound<SocketStack> = try sync { SocketStack(loop: loop, configuration: configuration) }
        stacks.update { $0.append(stack) }
        return stack
    }

    /// Closes the stacks' sockets, stops the loop and waits (at most 10 s)
    /// for its thread to finish.
    func shutdown() {
        let stacks = self.stacks.get()
        _ = try? sync { for stack in stacks { stack.value.closeAll() } }
        loop.stop()
        _ = finished.wait(timeout: .now() + 10)
    }
}

/// A value behind a lock, for handing results between threads.
final class LockedValue<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func get() -> Value { lock.withLock { value } }
    func set(_ newValue: Value) { lock.withLock { value = newValue } }
    func update<R>(_ body: (inout Value) -> R) -> R { lock.withLock { body(&value) } }
}

/// Records every event a stack delivers (loop thread only).
final class StackEventRecorder: TCPHandler, UDPHandler {
    enum Event: Equatable, Sendable {
        case accepted(ConnectionID)
        case established(ConnectionID)
        case received(ConnectionID, Int)
        case endOfStream(ConnectionID)
        case writable(ConnectionID)
        case closed(ConnectionID, CloseReason)

        var connection: ConnectionID {
            switch self {
            case .accepted(let id), .established(let id), .received(let id, _), .endOfStream(let id),
                 .writable(let id), .closed(let id, _):
                id
            }
        }
    }

    var events: [Event] = []
    var accepted: [ConnectionID] = []
    var established: Set<ConnectionID> = []
    var received: [ConnectionID: [UInt8]] = [:]
    var endOfStreams: Set<ConnectionID> = []
    var writableCount: [ConnectionID: Int] = [:]
    var closed: [ConnectionID: CloseReason] = [:]
    var datagrams: [AsyncDatagram] = []
    let pauseOnAccept: Bool
    var stack: (any Stack)?

    init(pauseOnAccept: Bool = false) { self.pauseOnAccept = pauseOnAccept }

    func closeReason(_ id: ConnectionID) -> CloseReason? { closed[id] }

    func reset() {
        events = []; accepted = []; established = []; received = [:]; endOfStreams = []
        writableCount = [:]; closed = [:]; datagrams = []
    }

    func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {
        events.append(.accepted(connection))
        accepted.append(connection)
        if pauseOnAccept { stack?.pauseReading(connection) }
    }

    func connectionEstablished(_ connection: ConnectionID) {
        events.append(.established(connection))
        established.insert(connection)
    }

    func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {
        events.append(.received(connection, bytes.count))
        bytes.withUnsafeBufferPointer { received[connection, default: []].append(contentsOf: $0) }
    }

    func endOfStream(on connection: ConnectionID) {
        events.append(.endOfStream(connection))
        endOfStreams.insert(connection)
    }

    func writable(_ connection: ConnectionID) {
        events.append(.writable(connection))
        writableCount[connection, default: 0] += 1
    }

    func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {
        events.append(.closed(connection, reason))
        closed[connection] = reason
    }

    func datagramReceived(_ payload: Span<UInt8>, from source: Endpoint, to destination: Endpoint, on socket: UDPSocketID) {
        let bytes = payload.withUnsafeBufferPointer { Array($0) }
        datagrams.append(AsyncDatagram(payload: bytes, source: source, destination: destination))
    }
}

/// A failed kernel-socket call of a test client.
struct KernelSocketError: Error, CustomStringConvertible {
    var call: String
    var code: Int32
    var description: String { "\(call): \(String(cString: strerror(code)))" }
}

/// A blocking kernel socket used as the real peer (send and receive time
/// out after `timeoutSeconds`, so nothing waits for ever).
final class KernelSocket: @unchecked Sendable {
    let fd: Int32
    private var closed = false

    /// A TCP connection to `endpoint`, connected on return.
    init(connectingTo endpoint: Endpoint, timeoutSeconds: Int = 10) throws {
        fd = try Self.open(endpoint.address, SOCK_STREAM, timeoutSeconds)
        let rc = KernelAddress(endpoint).withSockaddr { Glibc.connect(fd, $0, $1) }
        guard rc == 0 else {
            let code = errno
            Glibc.close(fd)
            throw KernelSocketError(call: "connect", code: code)
        }
    }

    /// A TCP connection to `endpoint` started without waiting for it.
    init(startingConnectTo endpoint: Endpoint) throws {
        fd = try Self.open(endpoint.address, SOCK_STREAM, 5)
        setNonBlocking()
        _ = KernelAddress(endpoint).withSockaddr { Glibc.connect(fd, $0, $1) }
    }

    /// An unbound UDP socket of the family of `address`.
    init(udpFamilyOf address: IPAddress, timeoutSeconds: Int = 10) throws {
        fd = try Self.open(address, SOCK_DGRAM, timeoutSeconds)
    }

    /// An accepted connection.
    init(accepted fd: Int32, timeoutSeconds: Int = 10) {
        self.fd = fd
        Self.setTimeouts(fd, timeoutSeconds)
    }

    deinit { close() }

    private static func open(_ address: IPAddress, _ type: __socket_type, _ timeout: Int) throws -> Int32 {
        let family: Int32
        switch address {
        case .v4: family = AF_INET
        case .v6: family = AF_INET6
        }
        let fd = socket(family, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw KernelSocketError(call: "socket", code: errno) }
        setTimeouts(fd, timeout)
        return fd
    }

    private static func setTimeouts(_ fd: Int32, _ seconds: Int) {
        var time = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
    }

    func setNonBlocking() {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    var localEndpoint: Endpoint? {
        var address = KernelAddress()
        let rc = address.withMutableSockaddr { getsockname(fd, $0, $1) }
        return rc == 0 ? address.endpoint : nil
    }

    /// Sends everything (blocking; bounded by the send timeout per call).
    func sendAll(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { raw in try sendAll(raw) }
    }

    func sendAll(_ raw: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < raw.count {
            let n = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            if n < 0 {
                if errno == EINTR { continue }
                throw KernelSocketError(call: "send", code: errno)
            }
            offset += n
        }
    }

    /// One non-blocking send attempt: bytes taken, or 0 when the kernel refuses.
    func trySend(_ bytes: [UInt8]) -> Int {
        let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        return max(n, 0)
    }

    /// One receive: bytes read (0 at end of stream); throws on reset or timeout.
    func receive(into buffer: inout [UInt8]) throws -> Int {
        try buffer.withUnsafeMutableBytes { raw in try receive(into: raw) }
    }

    func receive(into raw: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = recv(fd, raw.baseAddress, raw.count, 0)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw KernelSocketError(call: "recv", code: errno)
        }
    }

    func sendDatagram(_ bytes: [UInt8], to endpoint: Endpoint) throws {
        let n = bytes.withUnsafeBytes { raw in
            KernelAddress(endpoint).withSockaddr { sendto(fd, raw.baseAddress, raw.count, 0, $0, $1) }
        }
        guard n == bytes.count else { throw KernelSocketError(call: "sendto", code: errno) }
    }

    func shutdownWrite() { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }

    /// Closes with SO_LINGER 0: the kernel sends RST.
    func resetClose() {
        var option = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        close()
    }

    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }
}

/// A blocking kernel listener on 127.0.0.1, port chosen by the kernel.
final class KernelListener: @unchecked Sendable {
    let fd: Int32
    let endpoint: Endpoint

    init(backlog: Int32 = 16) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw KernelSocketError(call: "socket", code: errno) }
        let rc = KernelAddress(Endpoint(.v4(.loopback), 0)).withSockaddr { bind(fd, $0, $1) }
        guard rc == 0, listen(fd, backlog) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw KernelSocketError(call: "bind/listen", code: code)
        }
        var address = KernelAddress()
        _ = address.withMutableSockaddr { getsockname(fd, $0, $1) }
        guard let endpoint = address.endpoint else {
            Glibc.close(fd)
            throw KernelSocketError(call: "getsockname", code: errno)
        }
        var time = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &time, socklen_t(MemoryLayout<timeval>.size))
        self.fd = fd
        self.endpoint = endpoint
    }

    deinit { Glibc.close(fd) }

    /// Accepts one connection (at most 10 s).
    func accept() throws -> KernelSocket {
        let client = Glibc.accept(fd, nil, nil)
        guard client >= 0 else { throw KernelSocketError(call: "accept", code: errno) }
        return KernelSocket(accepted: client)
    }
}

/// A loopback port with nothing listening (bound then closed: the kernel
/// does not hand it out again at once).
func closedLoopbackPort() throws -> UInt16 {
    let listener = try KernelListener()
    return listener.endpoint.port
}

/// Test-side sockaddr conversions (MiragePlatform's are internal).
struct KernelAddress {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)

    init() {}

    init(_ endpoint: Endpoint) {
        switch endpoint.address {
        case .v4(let v4):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = endpoint.port.bigEndian
            sin.sin_addr.s_addr = v4.rawValue.bigEndian
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: sin, as: sockaddr_in.self) }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        case .v6(let v6):
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = endpoint.port.bigEndian
            withUnsafeMutableBytes(of: &sin6.sin6_addr) {
                $0.storeBytes(of: v6.high.bigEndian, toByteOffset: 0, as: UInt64.self)
                $0.storeBytes(of: v6.low.bigEndian, toByteOffset: 8, as: UInt64.self)
            }
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: sin6, as: sockaddr_in6.self) }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
    }

    var endpoint: Endpoint? {
        withUnsafeBytes(of: storage) { raw -> Endpoint? in
            switch Int32(storage.ss_family) {
            case AF_INET:
                let sin = raw.loadUnaligned(as: sockaddr_in.self)
                return Endpoint(.v4(IPv4Address(rawValue: UInt32(bigEndian: sin.sin_addr.s_addr))), UInt16(bigEndian: sin.sin_port))
            case AF_INET6:
                let sin6 = raw.loadUnaligned(as: sockaddr_in6.self)
                let (high, low) = withUnsafeBytes(of: sin6.sin6_addr) {
                    (UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                     UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
                }
                return Endpoint(.v6(IPv6Address(high: high, low: low)), UInt16(bigEndian: sin6.sin6_port))
            default:
                return nil
            }
        }
    }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var storage = self.storage
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }

    mutating func withMutableSockaddr<R>(_ body: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> R) -> R {
        var length = self.length
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, &length) }
        }
        self.length = length
        return result
    }
}
