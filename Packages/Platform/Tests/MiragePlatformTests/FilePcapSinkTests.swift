import Foundation
import Glibc
import MirageDevices
import Testing

@testable import MiragePlatform

@Suite("FilePcapSink")
struct FilePcapSinkTests {
    private func temporaryPath() -> String {
        NSTemporaryDirectory() + "/mirage-pcap-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).pcap"
    }

    @Test("the file holds exactly what PcapWriter produced")
    func writesCapture() throws {
        let path = temporaryPath()
        defer { unlink(path) }
        let sink = try FilePcapSink(path: path)
        let memory = MemoryPcapSink()
        let toFile = PcapWriter(sink: sink)
        let toMemory = PcapWriter(sink: memory)
        let frames: [[UInt8]] = [Array(0..<60), Array(repeating: 0xAB, count: 1514)]
        for (index, frame) in frames.enumerated() {
            let time = WallTime(seconds: 1_700_000_000 + Int64(index), nanoseconds: 123)
            toFile.record(frame.span, at: time)
            toMemory.record(frame.span, at: time)
        }
        sink.close()
        sink.close()  // idempotent
        let late = frames[0]
        toFile.record(late.span, at: WallTime(seconds: 0, nanoseconds: 0))  // ignored after close

        let contents = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(contents == memory.bytes)
        #expect(contents.count == PcapWriter.fileHeaderLength + 2 * PcapWriter.recordHeaderLength + 60 + 1514)
        #expect(sink.bytesWritten == UInt64(contents.count))
        #expect(sink.failure == nil)
    }

    @Test("a path that cannot be created throws the system error")
    func openFailure() {
        #expect(throws: DeviceError.system(call: "open", errno: ENOENT)) {
            _ = try FilePcapSink(path: "/nonexistent-directory-for-mirage-tests/capture.pcap")
        }
    }

    @Test("a failed write is kept and stops the capture")
    func writeFailure() throws {
        // /dev/full answers every write with ENOSPC.
        guard access("/dev/full", W_OK) == 0 else { return }
        let sink = try FilePcapSink(path: "/dev/full")
        let bytes: [UInt8] = [1, 2, 3]
        sink.write(bytes.span)
        #expect(sink.failure == .system(call: "write", errno: ENOSPC))
        #expect(sink.bytesWritten == 0)
    }
}
