import Glibc
import MirageDevices
import Testing

@testable import MiragePlatform

@Suite("EventLoop descriptors", .serialized)
struct EventLoopDescriptorTests {
    @Test("a pipe's read end reports data, then end of file when the writer closes")
    func pipeReadableThenEndOfFile() throws {
        let loop = try EventLoop()
        let pipe = TestPipe()
        let reader = DescriptorRecorder()
        var received: [UInt8] = []
        var sawEndOfFile = false
        reader.onReadable = { _ in
            guard let bytes = pipe.read() else { return }
            if bytes.isEmpty {
                sawEndOfFile = true
                loop.unregister(pipe.readEnd)
                loop.stop()
            } else {
                received += bytes
            }
        }
        try loop.register(pipe.readEnd, interest: .read, handler: reader)
        #expect(loop.registeredDescriptorCount == 1)
        let start = loop.now()
        _ = loop.schedule(at: start + .milliseconds(10), TimerAction { _, _ in _ = pipe.write([1, 2, 3]) })
        _ = loop.schedule(at: start + .milliseconds(30), TimerAction { _, _ in pipe.closeWrite() })

        try loop.run(until: start + loopTimeLimit)

        #expect(received == [1, 2, 3])
        #expect(sawEndOfFile)
        #expect(loop.registeredDescriptorCount == 0)
        #expect(!reader.events.contains { $0.hasPrefix("error") })
    }

    @Test("write interest reports writable; setInterest turns it off")
    func writeInterest() throws {
        let loop = try EventLoop()
        let pipe = TestPipe()
        let writer = DescriptorRecorder()
        var writableCount = 0
        writer.onWritable = { fd in
            writableCount += 1
            // Level-triggered: it would repeat every iteration; drop it.
            try? loop.setInterest(fd, [])
        }
        try loop.register(pipe.writeEnd, interest: .write, handler: writer)
        _ = loop.schedule(at: loop.now() + .milliseconds(30), TimerAction { _, _ in loop.stop() })

        try loop.run(until: loop.now() + loopTimeLimit)

        #expect(writableCount == 1)
        #expect(writer.events == ["writable"])
        #expect(throws: DeviceError.self) { try loop.setInterest(12345, .read) }
        loop.unregister(pipe.writeEnd)
    }

    @Test("registering twice, or a closed descriptor, throws")
    func registrationErrors() throws {
        let loop = try EventLoop()
        let pipe = TestPipe()
        let handler = DescriptorRecorder()
        try loop.register(pipe.readEnd, interest: .read, handler: handler)
        #expect(throws: DeviceError.self) { try loop.register(pipe.readEnd, interest: .read, handler: handler) }
        #expect(throws: DeviceError.invalidArgument("file descriptor -1 is negative")) {
            try loop.register(-1, interest: .read, handler: handler)
        }
        let closed = pipe.writeEnd
        pipe.closeWrite()
        #expect(throws: DeviceError.system(call: "epoll_ctl", errno: EBADF)) {
            try loop.register(closed, interest: .write, handler: handler)
        }
        loop.unregister(pipe.readEnd)
        loop.unregister(pipe.readEnd)  // twice: a no-op
        #expect(loop.registeredDescriptorCount == 0)
    }

    @Test("a descriptor unregistered during a batch gets no further event of that batch")
    func unregisterDuringBatch() throws {
        let loop = try EventLoop()
        let first = TestEventFD()
        let second = TestEventFD()
        let a = DescriptorRecorder()
        let b = DescriptorRecorder()
        // Whichever epoll reports first unregisters the other, whose event
        // is in the same batch.
        a.onReadable = { _ in
            first.drain()
            loop.unregister(second.fd)
            loop.unregister(first.fd)
        }
        b.onReadable = { _ in
            second.drain()
            loop.unregister(first.fd)
            loop.unregister(second.fd)
        }
        try loop.register(first.fd, interest: .read, handler: a)
        try loop.register(second.fd, interest: .read, handler: b)
        first.signal()
        second.signal()
        _ = loop.schedule(at: loop.now() + .milliseconds(30), TimerAction { _, _ in loop.stop() })

        try loop.run(until: loop.now() + loopTimeLimit)

        #expect(a.events.count + b.events.count == 1, "a: \(a.events), b: \(b.events)")
    }

    @Test("a descriptor number closed and registered again in a batch does not get the old event")
    func reusedDescriptorNumber() throws {
        let loop = try EventLoop()
        let first = TestEventFD()
        let second = TestEventFD()
        let number = second.fd
        let a = DescriptorRecorder()
        let b = DescriptorRecorder()
        let stale = DescriptorRecorder()
        let pipe = TestPipe()
        var reused = false
        a.onReadable = { _ in
            first.drain()
            loop.unregister(first.fd)
            // Replace the other signalled descriptor, whose event is still
            // in this batch, by an empty pipe under the same number.
            guard b.events.isEmpty else { return }
            loop.unregister(number)
            guard dup2(pipe.readEnd, number) == number else { return }
            reused = true
            try? loop.register(number, interest: .read, handler: stale)
        }
        b.onReadable = { _ in second.drain() }
        try loop.register(first.fd, interest: .read, handler: a)
        try loop.register(number, interest: .read, handler: b)
        // epoll lists descriptors in the order they became ready.
        first.signal()
        second.signal()
        _ = loop.schedule(at: loop.now() + .milliseconds(30), TimerAction { _, _ in loop.stop() })

        try loop.run(until: loop.now() + loopTimeLimit)

        // The pipe is empty: any event for it would be the eventfd's.
        #expect(reused, "the scenario did not happen (b first: \(b.events))")
        #expect(stale.events.isEmpty)
        if reused {
            loop.unregister(number)
            _ = second.release()
            Glibc.close(number)
        }
    }

    @Test("EPOLLERR reaches fdError: a pipe's write end after the reader closed")
    func errorEvent() throws {
        let loop = try EventLoop()
        let pipe = TestPipe()
        pipe.closeRead()
        let writer = DescriptorRecorder()
        var errorCode: Int32?
        writer.onError = { fd, code in
            errorCode = code
            loop.unregister(fd)
            loop.stop()
        }
        try loop.register(pipe.writeEnd, interest: .write, handler: writer)

        try loop.run(until: loop.now() + loopTimeLimit)

        #expect(errorCode == EIO)
        #expect(!writer.events.contains("writable"))
    }

    @Test("EPOLLHUP with no read interest reaches fdError(EPIPE)")
    func hangupWithoutReadInterest() throws {
        let loop = try EventLoop()
        let pipe = TestPipe()
        pipe.closeWrite()
        let reader = DescriptorRecorder()
        var errorCode: Int32?
        reader.onError = { fd, code in
            errorCode = code
            loop.unregister(fd)
            loop.stop()
        }
        try loop.register(pipe.readEnd, interest: [], handler: reader)

        try loop.run(until: loop.now() + loopTimeLimit)

        #expect(errorCode == EPIPE)
        #expect(reader.events == ["error(\(EPIPE))"])
    }

    @Test("flush handlers run once per iteration with work, after the events, and can be removed")
    func flushAfterBatch() throws {
        let loop = try EventLoop()
        let fds = (0..<3).map { _ in TestEventFD() }
        var log: [String] = []
        let handlers = fds.map { eventFD in
            let recorder = DescriptorRecorder()
            recorder.onReadable = { _ in
                eventFD.drain()
                log.append("read")
            }
            return recorder
        }
        for (eventFD, handler) in zip(fds, handlers) {
            try loop.register(eventFD.fd, interest: .read, handler: handler)
        }
        let flush = FlushAction { log.append("flush") }
        loop.addFlushHandler(flush)
        loop.addFlushHandler(flush)  // twice: still once per iteration
        for eventFD in fds { eventFD.signal() }
        _ = loop.schedule(at: loop.now() + .milliseconds(30), TimerAction { _, _ in
            loop.removeFlushHandler(flush)
            log.append("timer")
            loop.stop()
        })

        try loop.run(until: loop.now() + loopTimeLimit)

        #expect(log == ["read", "read", "read", "flush", "timer"])
        for eventFD in fds { loop.unregister(eventFD.fd) }
    }
}
