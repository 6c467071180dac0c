import CMiragePlatform
import Dispatch
import Foundation
import Glibc
import MirageDevices
import Synchronization

@testable import MiragePlatform

/// How late a timer may fire on a loaded two-core machine and still pass.
let latenessTolerance = Interval.milliseconds(100)
/// Longest any single test lets a loop run before giving up.
let loopTimeLimit = Interval.seconds(10)
/// How long the test thread waits for a helper thread to finish.
let joinTimeout: DispatchTimeInterval = .seconds(20)

/// A thread running `body`, joinable with a bound.
final class TestThread: Sendable {
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () -> Void) {
        let done = self.done
        let thread = Thread {
            body()
            done.signal()
        }
        thread.start()
    }

    /// Waits for the body to return; false when `joinTimeout` passed first.
    func join() -> Bool {
        done.wait(timeout: .now() + joinTimeout) == .success
    }
}

/// A value shared between threads.
final class Shared<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    var value: Value { mutex.withLock { $0 } }
    func update(_ body: (inout Value) -> Void) { mutex.withLock { body(&$0) } }
}

/// The calling thread's identity.
func currentThread() -> UInt { pthread_self() }

/// A timer handler that runs a closure.
final class TimerAction: TimerHandler {
    let action: (TimerID, Instant) -> Void
    init(_ action: @escaping (TimerID, Instant) -> Void) { self.action = action }
    func timerFired(_ id: TimerID, now: Instant) { action(id, now) }
}

/// A flush handler that runs a closure.
final class FlushAction: FlushHandler {
    let action: () -> Void
    init(_ action: @escaping () -> Void) { self.action = action }
    func flush() { action() }
}

/// A descriptor handler recording its events and running optional closures.
final class DescriptorRecorder: FDHandler {
    var events: [String] = []
    var onReadable: ((Int32) -> Void)?
    var onWritable: ((Int32) -> Void)?
    var onError: ((Int32, Int32) -> Void)?

    func fdReadable(_ fd: Int32) {
        events.append("readable")
        onReadable?(fd)
    }

    func fdWritable(_ fd: Int32) {
        events.append("writable")
        onWritable?(fd)
    }

    func fdError(_ fd: Int32, errno: Int32) {
        events.append("error(\(errno))")
        onError?(fd, errno)
    }
}

/// A non-blocking pipe; closes what is still open when released.
final class TestPipe {
    var readEnd: Int32
    var writeEnd: Int32

    init() {
        var fds: [Int32] = [-1, -1]
        let status = pipe(&fds)
        precondition(status == 0, "pipe failed: \(errno)")
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        readEnd = fds[0]
        writeEnd = fds[1]
    }

    func write(_ bytes: [UInt8]) -> Int {
        bytes.withUnsafeBytes { Glibc.write(writeEnd, $0.baseAddress, $0.count) }
    }

    /// Reads what is there: the bytes, [] at end of file, nil for EAGAIN.
    func read() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(readEnd, $0.baseAddress, $0.count) }
        guard n >= 0 else { return nil }
        return Array(buffer.prefix(n))
    }

    func closeRead() {
        if readEnd >= 0 { Glibc.close(readEnd) }
        readEnd = -1
    }

    func closeWrite() {
        if writeEnd >= 0 { Glibc.close(writeEnd) }
        writeEnd = -1
    }

    deinit {
        closeRead()
        closeWrite()
    }
}

/// A non-blocking eventfd; closed when released.
final class TestEventFD {
    private(set) var fd: Int32
    init() {
        fd = mirage_eventfd()
        precondition(fd >= 0, "eventfd failed: \(-fd)")
    }
    func signal() {
        var one: UInt64 = 1
        _ = Glibc.write(fd, &one, 8)
    }
    func drain() {
        var value: UInt64 = 0
        _ = Glibc.read(fd, &value, 8)
    }
    /// Gives up the descriptor without closing it.
    func release() -> Int32 {
        defer { fd = -1 }
        return fd
    }
    deinit { if fd >= 0 { Glibc.close(fd) } }
}
