import CAllocationCounter
import Glibc

/// The process's resource use at one moment: the monotonic clock, CPU time
/// (getrusage, every thread of the process) and the allocation counter.
struct Snapshot {
    /// CLOCK_MONOTONIC, nanoseconds.
    var nanoseconds: UInt64
    /// User CPU time, microseconds.
    var userMicroseconds: Int64
    /// System CPU time, microseconds.
    var systemMicroseconds: Int64
    /// Allocation calls so far (CAllocationCounter).
    var allocations: UInt64

    static func now() -> Snapshot {
        var usage = rusage()
        _ = getrusage(RUSAGE_SELF.rawValue, &usage)
        return Snapshot(
            nanoseconds: monotonicNanoseconds(),
            userMicroseconds: Int64(usage.ru_utime.tv_sec) * 1_000_000 + Int64(usage.ru_utime.tv_usec),
            systemMicroseconds: Int64(usage.ru_stime.tv_sec) * 1_000_000 + Int64(usage.ru_stime.tv_usec),
            allocations: mirage_bench_allocation_count())
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    _ = clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// Threads of this process now (`Threads:` in /proc/self/status), or -1.
func threadCount() -> Int {
    let fd = open("/proc/self/status", O_RDONLY)
    guard fd >= 0 else { return -1 }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 8192)
    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard n > 0 else { return -1 }
    let text = String(decoding: buffer[0..<n], as: UTF8.self)
    for line in text.split(separator: "\n") where line.hasPrefix("Threads:") {
        return Int(line.dropFirst("Threads:".count).trimmingWhitespace()) ?? -1
    }
    return -1
}

extension Substring {
    func trimmingWhitespace() -> Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return s
    }
}

/// Kept alive forever so the probe below really reaches the heap.
nonisolated(unsafe) var allocationProbeSink: AnyObject?

private final class AllocationProbe {
    var value = 0
}

/// Whether the interposed allocator sees the Swift runtime's allocations
/// (libswiftCore calling malloc): allocates one escaping object and checks
/// that the counter moved. When it does not, the figure is reported as -1,
/// never as a misleading 0.
@inline(never)
func allocationCounterWorks() -> Bool {
    let before = mirage_bench_allocation_count()
    allocationProbeSink = AllocationProbe()
    return mirage_bench_allocation_count() != before
}

/// The machine-readable line each mode prints at the end, parsed by
/// Scripts/bench-tcp: `result role=R bytes=N seconds=S ...` (key=value,
/// space separated; -1 for a figure that does not apply).
struct ResultLine {
    var role: String
    var bytes: UInt64
    var start: Snapshot
    var end: Snapshot
    var threads: Int
    /// TCP segments sent + received by our stack during the transfer.
    var segments: UInt64?
    var retransmissions: UInt64?
    var countsAllocations: Bool

    var seconds: Double { Double(end.nanoseconds &- start.nanoseconds) / 1e9 }

    var text: String {
        let user = Double(end.userMicroseconds - start.userMicroseconds) / 1e6
        let system = Double(end.systemMicroseconds - start.systemMicroseconds) / 1e6
        let mbps = seconds > 0 ? Double(bytes) * 8 / seconds / 1e6 : 0
        let allocations = countsAllocations ? String(end.allocations &- start.allocations) : "-1"
        return "result role=\(role) bytes=\(bytes) seconds=\(format(seconds, 6)) mbps=\(format(mbps, 1))"
            + " user=\(format(user, 3)) sys=\(format(system, 3)) threads=\(threads)"
            + " allocations=\(allocations) segments=\(segments.map(String.init) ?? "-1")"
            + " retransmissions=\(retransmissions.map(String.init) ?? "-1")"
    }

    func print() { writeOut(text) }
}

/// `value` with `digits` decimals (no Foundation here).
func format(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return "nan" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    guard scaled < 9.0e18 else { return String(value) }
    let whole = UInt64(scaled)
    let integer = whole / UInt64(scale)
    let fraction = whole % UInt64(scale)
    var text = (value < 0 && whole != 0 ? "-" : "") + String(integer)
    if digits > 0 {
        let digitsText = String(fraction)
        text += "." + String(repeating: "0", count: digits - digitsText.count) + digitsText
    }
    return text
}

/// Writes a line to standard output at once (the script waits for lines).
func writeOut(_ line: String) { writeAll(line + "\n", to: STDOUT_FILENO) }

/// Writes a line to standard error.
func writeError(_ line: String) { writeAll(line + "\n", to: STDERR_FILENO) }

private func writeAll(_ text: String, to fd: Int32) {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return }
        offset += n
    }
}

/// A failure the tool reports and exits with (status 1).
struct BenchFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
