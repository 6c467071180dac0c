import Foundation
import MirageDevices
import Testing

@Suite struct PcapWriterTests {
    @Test func fileHeaderIsNanosecondEthernetPcap() {
        let sink = MemoryPcapSink()
        _ = PcapWriter(sink: sink, snapLength: 65535)
        #expect(sink.bytes == [0x4d, 0x3c, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                               0xff, 0xff, 0, 0, 1, 0, 0, 0])
    }

    @Test func recordCarriesTimestampAndLengths() {
        let sink = MemoryPcapSink()
        let w = PcapWriter(sink: sink, snapLength: 8)
        let frame: [UInt8] = Array(0..<20)
        w.record(frame.span, at: WallTime(seconds: 0x0102_0304, nanoseconds: 5))
        let rec = Array(sink.bytes[24...])
        #expect(Array(rec[0..<4]) == [4, 3, 2, 1])
        #expect(Array(rec[4..<8]) == [5, 0, 0, 0])
        #expect(Array(rec[8..<12]) == [8, 0, 0, 0], "captured length is the snap length")
        #expect(Array(rec[12..<16]) == [20, 0, 0, 0], "original length is kept")
        #expect(Array(rec[16...]) == Array(0..<8))
    }

    @Test func wrapperRecordsBothDirectionsAndPassesFramesOn() throws {
        let clock = ManualClock()
        let net = MemoryNetwork()
        let a = net.attach(mac: macA), b = net.attach(mac: macB)
        let sink = MemoryPcapSink()
        let pa = PcapInterface(a, writer: PcapWriter(sink: sink), clock: clock)
        defer { pa.detach() }
        let ha = RecordingHandler(), hb = RecordingHandler()
        pa.handler = ha
        b.handler = hb
        try send(testFrame(to: macB, from: macA, sequence: 1), on: pa)
        try send(testFrame(to: macA, from: macB, sequence: 2), on: b)
        net.deliverPending()
        #expect(hb.sequences == [1])
        #expect(ha.sequences == [2])
        #expect(pa.writer.recordCount == 2)
    }

    /// The capture opens in tcpdump, the real reader: every frame, in
    /// order, with our EtherType.
    @Test(.enabled(if: tcpdumpPath() != nil || ProcessInfo.processInfo.environment["CI"] == "true",
                   "tcpdump is not installed (Scripts/install-test-deps installs it)"))
    func captureOpensWithTcpdump() throws {
        let tcpdump = try #require(tcpdumpPath(), "tcpdump must be installed in CI")
        let clock = ManualClock()
        let net = MemoryNetwork()
        let a = net.attach(mac: macA), b = net.attach(mac: macB)
        let sink = MemoryPcapSink()
        let pa = PcapInterface(a, writer: PcapWriter(sink: sink), clock: clock)
        defer { pa.detach() }
        b.handler = RecordingHandler()
        for i in 0..<5 {
            try send(testFrame(to: macB, from: macA, sequence: UInt32(i), payloadLength: 100 + i), on: pa)
            clock.advance(by: .milliseconds(3))
        }
        net.deliverPending()
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("mirage-pcap-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).pcap")
        try Data(sink.bytes).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tcpdump)
        p.arguments = ["-r", url.path, "-nn", "-e", "--time-stamp-precision=nano"]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        _ = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let lines = text.split(separator: "\n").filter { !$0.hasPrefix("\t") && !$0.hasPrefix(" ") }
        #expect(lines.count == 5)
        #expect(lines.allSatisfy { $0.contains("02:00:00:00:00:0a > 02:00:00:00:00:0b") && $0.contains("0x88b5") })
        // 3 ms apart, at nanosecond precision.
        #expect(lines.count == 5 && lines[0].contains(":20.000000000") && lines[1].contains(":20.003000000"))
        for (i, line) in lines.enumerated() { #expect(line.contains("length \(100 + i + 14)")) }
    }
}

func tcpdumpPath() -> String? {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] {
        let path = dir + "/tcpdump"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}
