import Glibc
import MirageDevices
import Testing

@testable import MiragePlatform

@Suite("System clock, entropy and console")
struct SystemDeviceTests {
    @Test("SystemEntropy returns bytes that differ between calls and cover the byte range")
    func entropyIsNotConstant() {
        let entropy = SystemEntropy()
        let a = entropy.bytes(64)
        let b = entropy.bytes(64)
        #expect(a != b)
        #expect(a != [UInt8](repeating: 0, count: 64))
        #expect(Set(a).count > 16)
        // Above 256 bytes getrandom may return short; the fill loops.
        let large = entropy.bytes(1 << 20)
        var histogram = [Int](repeating: 0, count: 256)
        for byte in large { histogram[Int(byte)] += 1 }
        // Each value expects 4096 hits; a working generator stays far
        // inside this band.
        #expect(histogram.allSatisfy { (3_000...5_200).contains($0) })
        var empty = [UInt8]()
        var span = empty.mutableSpan
        entropy.fill(&span)  // nothing to fill: returns
    }

    @Test("SystemClock is monotonic and measures sleeps")
    func clockIsMonotonic() {
        let clock = SystemClock()
        var previous = clock.now()
        for _ in 0..<10_000 {
            let next = clock.now()
            #expect(next >= previous)
            previous = next
        }
        let before = clock.now()
        usleep(20_000)
        let slept = clock.now() - before
        #expect(slept >= .milliseconds(20))
        #expect(slept < .seconds(2))
        // Wall time: after 2024-01-01, and agreeing with time(2).
        let wall = clock.wallTime()
        #expect(wall.seconds > 1_704_067_200)
        #expect(abs(wall.seconds - Int64(time(nil))) <= 2)
    }

    @Test("StandardConsole writes each line with a newline")
    func consoleWritesLines() {
        let pipe = TestPipe()
        let console = StandardConsole(fileDescriptor: pipe.writeEnd)
        console.log("hello")
        console.log("")
        console.log("zwölf")
        #expect(pipe.read() == Array("hello\n\nzwölf\n".utf8))
    }
}

@Suite("TapInterface argument checks (no device opened)")
struct TapInterfaceArgumentTests {
    @Test("bad names and MTUs are rejected before opening anything, with or without the vnet header")
    func rejectsBadArguments() throws {
        let loop = try EventLoop()
        #expect(throws: DeviceError.self) { _ = try TapInterface(name: "a-name-that-is-too-long", loop: loop) }
        #expect(throws: DeviceError.self) { _ = try TapInterface(name: "bad/name", loop: loop) }
        #expect(throws: DeviceError.self) { _ = try TapInterface(name: "mtap0", loop: loop, mtu: 67) }
        #expect(throws: DeviceError.self) { _ = try TapInterface(name: "mtap0", loop: loop, mtu: 65_536) }
        #expect(throws: DeviceError.self) { _ = try TapInterface(name: "bad/name", loop: loop, virtioNetHeader: true) }
        #expect(throws: DeviceError.self) { _ = try TapInterface(name: "mtap0", loop: loop, mtu: 67, virtioNetHeader: true) }
        #expect(loop.registeredDescriptorCount == 0)
    }
}
