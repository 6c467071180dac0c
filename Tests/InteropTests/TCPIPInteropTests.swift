import Foundation
import MirageDevices
import MiragePlatform
import MirageTCPIP
import MirageTestNetwork
import Testing

#if canImport(Glibc)
import Glibc
#endif

// MirageTCPIP against the Linux kernel. Each test makes a namespace with a
// tap device whose kernel side is the other host, and runs either the real
// `mirage-echo --net tap` inside it or an IPStack in this process on a tap
// moved into it. All addresses (10.199.5x.0/24) exist only inside the
// test's namespace.

/// Lockstep UDP client through socat, run inside the namespace: one socat
/// process, one datagram written to its stdin at a time, the echo read back
/// from its stdout before the next (so read boundaries are datagrams).
private let socatDriver = #"""
import subprocess, sys, os, select
target, count = sys.argv[1], int(sys.argv[2])
p = subprocess.Popen(["socat", "-b", "65536", "-", "UDP4:" + target], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
ok = 0
bad = []
for i in range(count):
    size = 8000 if i % 100 == 99 else 1 + (i * 37) % 1400
    message = bytes((i + k) % 251 for k in range(size))
    os.write(p.stdin.fileno(), message)
    got = b""
    while len(got) < size:
        ready, _, _ = select.select([p.stdout], [], [], 5)
        if not ready:
            break
        chunk = os.read(p.stdout.fileno(), 65536)
        if not chunk:
            break
        got += chunk
    if got == message:
        ok += 1
    elif len(bad) < 5:
        bad.append((i, size, len(got)))
p.stdin.close()
p.terminate()
print("ok %d bad %s" % (ok, bad), flush=True)
"""#

@Suite("MirageTCPIP against the Linux kernel", .serialized,
       .interop(tools: ["ip", "ping", "arping", "socat", "dnsmasq", "python3", "sh"]))
struct TCPIPInteropTests {
    /// Starts `mirage-echo --net tap` on `tap` inside `ns`.
    private func startEcho(_ ns: TestNamespace, tap: String, _ extra: [String]) throws -> SpawnedProcess {
        let binary = try #require(EchoBinary.path, "mirage-echo must be built next to the tests")
        let process = try ns.spawn([binary, "--net", "tap", "--tap", tap] + extra)
        try process.waitForOutput(containing: "echo on", timeout: 20)
        return process
    }

    @Test("the kernel pings the stack: 100 × 56 bytes at 10 ms, 20 × 60,000 bytes, no loss; arping answered")
    func kernelPingsAndArps() throws {
        try withKernelSideTap(net: 50, linkSuffix: "m") { ns, tap in
            let echo = try startEcho(ns, tap: tap, ["--ipv4", "10.199.50.2/24"])
            defer { _ = echo.terminate(grace: 5) }
            let small = try ns.exec(["ping", "-c", "100", "-i", "0.01", "-W", "2", "10.199.50.2"], timeout: 60)
            #expect(small.stdout.contains("100 packets transmitted, 100 received"), "\(small.stdout)")
            let big = try ns.exec(["ping", "-c", "20", "-i", "0.1", "-s", "60000", "-W", "5", "10.199.50.2"], timeout: 90)
            #expect(big.stdout.contains("20 packets transmitted, 20 received"), "\(big.stdout)")
            let arp = try ns.exec(["arping", "-c", "3", "-w", "10", "-I", tap, "10.199.50.2"], timeout: 30)
            #expect(arp.stdout.contains("Received 3 response(s)"), "\(arp.stdout)")
            let status = echo.terminate(grace: 5)
            #expect(status == 0)
            let output = echo.output().stdout
            #expect(output.contains("echo-replies-sent 120"), "\(output)")
            #expect(output.contains("reassembled 20"))
        }
    }

    @Test("1,000 datagrams from socat come back byte for byte (every 100th 8,000 bytes, fragmented)")
    func socatUDPEcho() throws {
        try withKernelSideTap(net: 51, linkSuffix: "m") { ns, tap in
            let echo = try startEcho(ns, tap: tap, ["--ipv4", "10.199.51.2/24"])
            defer { _ = echo.terminate(grace: 5) }
            let result = try ns.exec(["python3", "-c", socatDriver, "10.199.51.2:7", "1000"], timeout: 240)
            #expect(result.stdout.contains("ok 1000 bad []"), "\(result.stdout) \(result.stderr)")
            // A port nobody serves answers port unreachable (socat sees ECONNREFUSED).
            let refused = try ns.exec(["sh", "-c", "printf x | socat -T 2 - UDP4:10.199.51.2:5999; echo status=$?"], timeout: 20)
            #expect(refused.stdout.contains("status=1") || refused.stderr.contains("Connection refused"),
                    "\(refused.stdout) \(refused.stderr)")
        }
    }

    @Test("dnsmasq hands out a lease: the stack configures itself, answers pings there, and renews at T1")
    func dhcpLeaseFromDnsmasq() throws {
        try withKernelSideTap(net: 52, linkSuffix: "m") { ns, tap in
            let leases = FileManager.default.temporaryDirectory.appendingPathComponent("mswt-\(getpid())-\(tap).leases").path
            defer { try? FileManager.default.removeItem(atPath: leases) }
            // dnsmasq's shortest lease is 2 minutes; T1 of 5 s and T2 of 8 s
            // make the client renew within the test.
            let dnsmasq = try ns.spawn([
                "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0", "--interface=\(tap)", "--bind-interfaces",
                "--dhcp-range=10.199.52.50,10.199.52.60,255.255.255.0,120", "--dhcp-option=option:T1,5",
                "--dhcp-option=option:T2,8", "--dhcp-option=option:router,10.199.52.1",
                "--dhcp-leasefile=\(leases)", "--log-dhcp", "--log-facility=-", "--pid-file=",
            ])
            defer { _ = dnsmasq.terminate(grace: 2) }
            try dnsmasq.waitForOutput(containing: "DHCP, IP range", timeout: 10)
            let echo = try startEcho(ns, tap: tap, ["--dhcp"])
            defer { _ = echo.terminate(grace: 5) }
            try echo.waitForOutput(containing: "ipv4 configured: 10.199.52.", timeout: 30)
            let output = echo.output().stdout
            let line = try #require(output.split(separator: "\n").first { $0.contains("ipv4 configured:") })
            let address = String(line.split(separator: " ")[2].split(separator: "/")[0])
            #expect(line.contains("/24 via 10.199.52.1"), "\(line)")
            let ping = try ns.exec(["ping", "-c", "3", "-i", "0.2", "-W", "2", address], timeout: 30)
            #expect(ping.stdout.contains("3 packets transmitted, 3 received"), "\(ping.stdout)")
            try echo.waitForOutput(containing: "dhcp lease renewed: \(address)/24", timeout: 20)
            let log = dnsmasq.output()
            let acks = (log.stdout + log.stderr).components(separatedBy: "DHCPACK(\(tap)) \(address)").count - 1
            #expect(acks >= 2, "the server acknowledged the lease and its renewal: \(log.stderr.suffix(2000))")
        }
    }

    @Test("the stack pings the kernel and resolves its MAC address")
    func stackPingsKernel() throws {
        let loop = try EventLoop()
        let name = TestNames.linkBaseName() + "p"
        let tap = try TapInterface(name: name, loop: loop)
        defer { tap.close() }
        try withNamespace { ns in
            try ns.adoptLink(name: name, address: "10.199.53.1/24", up: true)
            let kernelMAC = try #require(
                MACAddress(try ns.ip(["-br", "link", "show", "dev", name]).stdout.split(separator: " ", omittingEmptySubsequences: true)[2].description))
            let stack = IPStack(interface: tap, configuration: .init(ipv4: IPv4Configuration(cidr: "10.199.53.2/24")),
                                clock: loop, scheduler: loop, entropy: SystemEntropy())
            defer { stack.detach() }
            let replies = ReplyCounter(loop: loop, wanted: 5)
            stack.echoReplyHandler = replies
            for sequence in 1...5 {
                try stack.ping(IPv4Address(10, 199, 53, 1), identifier: 0x4d53, sequence: UInt16(sequence), payloadLength: 56)
            }
            try loop.run(until: loop.now() + .seconds(10))
            #expect(replies.sequences.sorted() == [1, 2, 3, 4, 5])
            #expect(stack.arpEntry(for: IPv4Address(10, 199, 53, 1)) == kernelMAC)
        }
    }
}

private final class ReplyCounter: EchoReplyHandler {
    let loop: EventLoop
    let wanted: Int
    var sequences: [UInt16] = []
    init(loop: EventLoop, wanted: Int) {
        self.loop = loop
        self.wanted = wanted
    }
    func echoReplyReceived(from source: IPv4Address, identifier: UInt16, sequence: UInt16, payloadLength: Int) {
        sequences.append(sequence)
        if sequences.count == wanted { loop.stop() }
    }
}
