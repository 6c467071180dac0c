import Foundation
import MirageDevices
import MirageEcho
import MiragePlatform
import MirageTCPIP
import MirageTestNetwork
import Testing

#if canImport(Glibc)
import Glibc
#endif

// MirageTCPIP's TCP against the Linux kernel's. Each test makes a namespace
// with a tap device whose kernel side is the other host, and runs either
// the real `mirage-echo --net tap` inside it (the kernel's socat, nc, curl
// and python3 are the clients) or an IPStack in this process on a tap moved
// into it (the kernel's socat and python3 are the servers). Addresses
// 10.199.6x.0/24 exist only inside the test's namespace. Every transfer is
// deterministic data compared exactly (SHA-256 through sha256sum, or byte
// for byte), every command and loop has a time limit.

/// 100 MB, the size of the large transfers.
private let hundredMegabytes = 100_000_000

@Suite("MirageTCPIP's TCP against the Linux kernel", .serialized,
       .interop(tools: ["ip", "socat", "curl", "nc", "nft", "python3", "sh", "sha256sum", "ss", "head"]))
struct TCPInteropTests {
    // MARK: a. The kernel connects to mirage-echo

    @Test("socat sends 100 MB to echo (7) and reads back the same 100 MB (SHA-256)")
    func socatEcho100MB() throws {
        let summary = try socatEcho(net: 60, count: hundredMegabytes)
        #expect(summary.contains("1 closed (1 normal"), "\(summary)")
    }

    @Test("mirage-echo --offload: socat's 20 MB echoed intact; the stack's counters show frames the kernel segmented and coalesced")
    func socatEchoWithOffload() throws {
        let summary = try socatEcho(net: 75, count: 20_000_000, timeout: 300, extra: ["--offload"]) { startup in
            #expect(startup.contains("offloads on (virtio-net header)"), "\(startup)")
        }
        let segmented = counterValue(summary, "tcp-segmentation-frames-sent") ?? 0
        let coalesced = counterValue(summary, "tcp-coalesced-frames-received") ?? 0
        #expect(segmented > 50 && coalesced > 50, "\(summary)")
    }

    /// Starts `mirage-echo --net tap` (with `extra` options) on a tap in a
    /// new namespace at 10.199.<net>.2, has socat there send `count`
    /// deterministic bytes to echo (7) and read them back (within `timeout` s), checks both
    /// ways by SHA-256, waits until the connection is gone and returns the
    /// program's exit output. `started` sees its start-up output.
    private func socatEcho(net: Int, count: Int, timeout: Double = 900, extra: [String] = [],
                           started: (String) -> Void = { _ in }) throws -> String {
        var summary = ""
        try withKernelSideTap(net: net, linkSuffix: "t") { ns, tap in
            let echo = try startEcho(ns, tap: tap, address: "10.199.\(net).2/24", extra: extra)
            defer { _ = echo.terminate(grace: 5) }
            started(echo.output().stdout)
            try withScratchDirectory { dir in
                let sent = dir + "/sent.bin", received = dir + "/received.bin"
                try writeDeterministicFile(sent, count: count, seed: net)
                let clock = ContinuousClock.now
                // socat shuts its write side down at the end of the file (-t:
                // then waits up to 120 s for the echo to end).
                let socat = try ns.exec(
                    ["sh", "-c", "socat -b 65536 -t 120 -T 120 - TCP4:10.199.\(net).2:7 < \(sent) > \(received)"],
                    timeout: timeout)
                let elapsed = ContinuousClock.now - clock
                #expect(socat.succeeded, "\(socat)")
                #expect(fileSize(received) == count)
                #expect(try sha256(received) == sha256(sent))
                print("socat echo\(extra.isEmpty ? "" : " " + extra.joined(separator: " ")): \(count) bytes each way in \(elapsed)")
            }
            try waitForStatus(echo, containing: "0 open, 1 accepted", timeout: 30)
            summary = try stopEcho(echo)
            #expect(summary.contains("\(count) bytes echoed"), "\(summary)")
        }
        return summary
    }

    @Test("nc sends 100 MB to discard (9): all accepted, the connection closes cleanly")
    func ncDiscard100MB() throws {
        try withKernelSideTap(net: 61, linkSuffix: "t") { ns, tap in
            let echo = try startEcho(ns, tap: tap, address: "10.199.61.2/24")
            defer { _ = echo.terminate(grace: 5) }
            try withScratchDirectory { dir in
                let sent = dir + "/sent.bin"
                try writeDeterministicFile(sent, count: hundredMegabytes, seed: 61)
                let started = ContinuousClock.now
                // -N: shut the write side down at the end of the file, then
                // read until the server closes (discard closes on our FIN).
                let nc = try ns.exec(["sh", "-c", "nc -N -w 120 10.199.61.2 9 < \(sent)"], timeout: 900)
                let elapsed = ContinuousClock.now - started
                #expect(nc.succeeded, "\(nc)")
                print("nc discard: 100 MB in \(elapsed)")
            }
            let status = try waitForStatus(echo, containing: "0 open, 1 accepted", timeout: 30)
            #expect(status.contains("1 closed (1 normal"), "\(status)")
            let summary = try stopEcho(echo)
            #expect(summary.contains(" \(hundredMegabytes) discarded"), "\(summary)")
        }
    }

    @Test("curl reads 10 MB from source (19): exactly the RFC 864 pattern")
    func curlReadsSource() throws {
        try withKernelSideTap(net: 62, linkSuffix: "t") { ns, tap in
            let echo = try startEcho(ns, tap: tap, address: "10.199.62.2/24")
            defer { _ = echo.terminate(grace: 5) }
            let count = 10_000_000
            try withScratchDirectory { dir in
                let received = dir + "/received.bin"
                // head stops after `count` bytes; curl then fails to write
                // (status 23) and closes the connection.
                let curl = try ns.exec(
                    ["sh", "-c", "curl -s --max-time 120 telnet://10.199.62.2:19 < /dev/null | head -c \(count) > \(received)"],
                    timeout: 180)
                #expect(curl.succeeded, "\(curl)")
                let bytes = [UInt8](try #require(FileManager.default.contents(atPath: received)))
                #expect(bytes.count == count)
                let expected = CharacterGenerator.bytes(count: count)
                if bytes != expected {
                    let first = bytes.indices.first { $0 >= expected.count || bytes[$0] != expected[$0] }
                    Issue.record("not the RFC 864 pattern: first difference at byte \(first ?? min(bytes.count, expected.count))")
                }
            }
            // curl left with data unread: the kernel resets; either way the
            // connection must be gone from the server.
            let status = try waitForStatus(echo, containing: "0 open, 1 accepted", timeout: 30)
            #expect(status.contains("1 closed"), "\(status)")
            let summary = try stopEcho(echo)
            let generated = numberBefore(summary, "generated") ?? 0
            #expect(generated >= count, "the server generated \(generated) bytes: \(summary)")
        }
    }

    // MARK: b. Our stack connects to the kernel

    @Test("the stack sends 100 MB to a kernel socat and receives 100 MB from another, at once (SHA-256)")
    func stackTransfers100MBEachWay() throws {
        try transfer100MBEachWay(net: 63, virtioNetHeader: false) { ns, stack, kernelSide in
            // The plain path: every frame at most the MTU, both ways.
            #expect(stack.interface.offloads.isEmpty)
            #expect(stack.statistics.tcpSegmentationFramesSent == 0 && stack.statistics.tcpCoalescedFramesReceived == 0)
            #expect(kernelSide.rxBytes <= kernelSide.rxPackets * 1514, "\(kernelSide)")
        }
    }

    @Test("with tap offloads (IFF_VNET_HDR, TUNSETOFFLOAD): 100 MB each way intact, sent in frames the kernel segments (TSO), received in frames it coalesced (GRO)")
    func stackTransfersWithOffloads() throws {
        try transfer100MBEachWay(net: 74, virtioNetHeader: true) { ns, stack, kernelSide in
            let statistics = stack.statistics
            print("offloads: \(statistics.tcpSegmentationFramesSent) frames sent for the kernel to segment "
                  + "(\(statistics.tcpSegmentationSegmentsSent) segments), \(statistics.tcpCoalescedFramesReceived) "
                  + "coalesced frames received; kernel side: \(kernelSide)")
            #expect(stack.interface.offloads.isSuperset(of: [.tcpSegmentationIPv4, .transmitChecksum, .receiveCoalescing]))
            // 100 MB in segments of at most 1448 bytes is about 69,000
            // segments: most of them must have left in large frames.
            #expect(statistics.tcpSegmentationFramesSent > 500, "\(statistics)")
            #expect(statistics.tcpSegmentationSegmentsSent > 35_000, "\(statistics)")
            #expect(statistics.tcpCoalescedFramesReceived > 500, "\(statistics)")
            // The kernel's own counters agree: what it read from the tap
            // (rx) and wrote to it (tx) came in frames far above 1514 bytes
            // on average.
            #expect(kernelSide.rxBytes > kernelSide.rxPackets * 3000, "\(kernelSide)")
            #expect(kernelSide.txBytes > kernelSide.txPackets * 3000, "\(kernelSide)")
        }
    }

    /// 100 MB from the stack to a kernel socat and 100 MB from another to
    /// the stack, at once, over a tap with or without the virtio-net header;
    /// `check` then looks at the stack and the kernel side's link counters.
    private func transfer100MBEachWay(
        net: Int, virtioNetHeader: Bool,
        check: (TestNamespace, IPStack<TapInterface>, LinkStatistics) throws -> Void
    ) throws {
        try withStackOnTap(net: net, virtioNetHeader: virtioNetHeader) { ns, stack, loop in
            let tapName = stack.interface.name
            try withScratchDirectory { dir in
                let upload = dir + "/upload-sent.bin", uploaded = dir + "/upload-received.bin"
                let download = dir + "/download-sent.bin", downloaded = dir + "/download-received.bin"
                try writeDeterministicFile(upload, count: hundredMegabytes, seed: 631)
                try writeDeterministicFile(download, count: hundredMegabytes, seed: 632)
                let receiver = try ns.spawn(
                    ["socat", "-u", "-b", "65536", "TCP4-LISTEN:5001,bind=10.199.\(net).1,reuseaddr", "CREATE:\(uploaded)"])
                let sender = try ns.spawn(
                    ["socat", "-u", "-b", "65536", "OPEN:\(download)", "TCP4-LISTEN:5002,bind=10.199.\(net).1,reuseaddr"])
                try waitForListeners(ns, ports: [5001, 5002])

                let done = Completion(loop: loop, count: 2)
                let outgoing = [UInt8](try Data(contentsOf: URL(fileURLWithPath: upload)))
                let up = StreamPeer(stack: stack, loop: loop, done: done, sending: outgoing, then: .close)
                let down = StreamPeer(stack: stack, loop: loop, done: done, sending: [], then: .nothing)
                down.closeOnEndOfStream = true
                let kernel = IPv4Address(10, 199, UInt8(net), 1)
                let started = ContinuousClock.now
                up.connection = try stack.connect(to: Endpoint(.v4(kernel), 5001), timeout: nil, handler: up)
                down.connection = try stack.connect(to: Endpoint(.v4(kernel), 5002), timeout: nil, handler: down)
                try loop.run(until: loop.now() + .seconds(600))
                let elapsed = ContinuousClock.now - started
                print("stack ⇄ kernel: 100 MB each way in \(elapsed); up \(up), down \(down)")

                #expect(done.finished, "not done after 600 s: up \(up); down \(down); \(stack.statistics)")
                #expect(up.closeReason == .normal, "up \(up)")
                #expect(down.closeReason == .normal, "down \(down)")
                #expect(up.sentOffset == hundredMegabytes)
                #expect(receiver.wait(timeout: 60) == 0, "\(receiver.output())")
                #expect(sender.wait(timeout: 60) == 0, "\(sender.output())")
                #expect(fileSize(uploaded) == hundredMegabytes)
                #expect(try sha256(uploaded) == sha256(upload), "what the kernel received from the stack")
                // We closed the upload first (TIME-WAIT), the kernel the download.
                #expect(stack.tcpConnectionStates.allSatisfy { $0 == .timeWait }, "\(stack.tcpConnectionStates)")
                #expect(down.received.count == hundredMegabytes)
                #expect(FileManager.default.createFile(atPath: downloaded, contents: Data(down.received)))
                #expect(try sha256(downloaded) == sha256(download), "what the stack received from the kernel")
                try check(ns, stack, try ns.linkStatistics(tapName))
            }
        }
    }

    // MARK: c. A bad link

    @Test("lossy link (nft drop and dup on the tap, our injector duplicating, reordering, delaying): 10 MB echo intact, plain and with tap offloads",
          arguments: [false, true])
    func echoOverLossyLink(offload: Bool) throws {
        let net = offload ? 76 : 64
        try withKernelSideTap(net: net, linkSuffix: "t") { ns, tap in
            // The kernel's side of the tap: 1 % of frames from the stack
            // dropped on ingress; 1 % of frames to the stack dropped and 1 %
            // sent twice on egress (netdev egress needs Linux 5.16).
            let rules = """
                table netdev lossy {
                    chain from_stack {
                        type filter hook ingress device "\(tap)" priority 0; policy accept;
                        numgen random mod 100 < 1 counter drop comment "ingress-drop"
                    }
                    chain to_stack {
                        type filter hook egress device "\(tap)" priority 0; policy accept;
                        numgen random mod 100 < 1 counter drop comment "egress-drop"
                        numgen random mod 100 < 1 counter dup to "\(tap)" comment "egress-dup"
                    }
                }
                """
            let nft = try ns.exec(["nft", "-f", "-"], timeout: 20, input: Array(rules.utf8))
            try #require(nft.succeeded, "nft (kernel \(kernelRelease())): \(nft)")
            // With offloads a dropped frame can be a 64 KiB run of segments.
            let echo = try startEcho(ns, tap: tap, address: "10.199.\(net).2/24", extra: [
                "--fault-seed", "64", "--fault-duplicate", "2", "--fault-reorder", "5", "--fault-delay", "20",
            ] + (offload ? ["--offload"] : []))
            defer { _ = echo.terminate(grace: 5) }
            let count = 10_000_000
            try withScratchDirectory { dir in
                let sent = dir + "/sent.bin", received = dir + "/received.bin"
                try writeDeterministicFile(sent, count: count, seed: 64)
                let started = ContinuousClock.now
                let socat = try ns.exec(
                    ["sh", "-c", "socat -b 65536 -t 300 -T 300 - TCP4:10.199.\(net).2:7 < \(sent) > \(received)"],
                    timeout: 900)
                let elapsed = ContinuousClock.now - started
                #expect(socat.succeeded, "socat must exit 0 (clean close): \(socat)")
                #expect(fileSize(received) == count)
                #expect(try sha256(received) == sha256(sent))
                print("lossy echo\(offload ? " with offloads" : ""): 10 MB each way in \(elapsed)")
            }
            let ruleset = try ns.exec(["nft", "list", "ruleset"], timeout: 20).check().stdout
            print("nft counters:\n\(ruleset)")
            for rule in ["ingress-drop", "egress-drop", "egress-dup"] {
                let packets = nftPackets(ruleset, comment: rule)
                #expect((packets ?? 0) > 0, "the rule \(rule) never matched: the link was not lossy\n\(ruleset)")
            }
            try waitForStatus(echo, containing: "0 open, 1 accepted", timeout: 60)
            let output = try stopEcho(echo)
            let faults = output.split(separator: "\n").first { $0.hasPrefix("fault transmit:") }.map(String.init) ?? ""
            print(faults)
            for counter in ["duplicated", "reordered", "delayed"] {
                #expect((counterValue(faults, counter) ?? 0) > 0, "the injector never \(counter): \(faults)")
            }
            #expect(output.contains("\(count) bytes echoed"), "\(output)")
            #expect(output.contains("1 closed (1 normal"), "\(output)")
        }
    }

    // MARK: d. Many connections

    @Test("200 connections open at once, each echoes a message, all close; nothing is left behind")
    func twoHundredConnections() throws {
        try withKernelSideTap(net: 65, linkSuffix: "t") { ns, tap in
            let echo = try startEcho(ns, tap: tap, address: "10.199.65.2/24")
            defer { _ = echo.terminate(grace: 5) }
            let result = try ns.exec(["python3", "-c", manyConnectionsClient, "10.199.65.2", "7", "200"], timeout: 300)
            #expect(result.stdout.contains("open 200\nok 200 eof 200"), "\(result)")
            // The kernel closed first, so its sockets may linger in
            // TIME-WAIT; nothing else may remain.
            var states: [String] = []
            let settled = TestEnvironment.waitUntil(timeout: 30, interval: 0.5) {
                let ss = (try? ns.exec(["ss", "-Htan", "dst", "10.199.65.2"], timeout: 10).stdout) ?? "?"
                states = ss.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
                return states.allSatisfy { $0 == "TIME-WAIT" }
            }
            #expect(settled, "kernel sockets not in TIME-WAIT: \(Dictionary(grouping: states, by: { $0 }).mapValues(\.count))")
            // The stack closed second (LAST-ACK), so it keeps no TIME-WAIT:
            // it must hold nothing at all.
            let status = try waitForStatus(echo, containing: "0 open, 200 accepted", timeout: 30)
            #expect(status.hasPrefix("status: 0 open, 200 accepted, 0 rejected, 200 closed (200 normal"), "\(status)")
            let summary = try stopEcho(echo)
            #expect(summary.contains("200 connections"), "\(summary)")
        }
    }

    // MARK: e. Half-close, reset, back-pressure

    @Test("a kernel client shuts down its write side and still reads the whole echo")
    func halfCloseStillEchoes() throws {
        try withKernelSideTap(net: 66, linkSuffix: "t") { ns, tap in
            let echo = try startEcho(ns, tap: tap, address: "10.199.66.2/24")
            defer { _ = echo.terminate(grace: 5) }
            let result = try ns.exec(["python3", "-c", halfCloseClient, "10.199.66.2", "7", "4000000"], timeout: 300)
            #expect(result.stdout.contains("echoed 4000000 equal True eof True"), "\(result)")
            let status = try waitForStatus(echo, containing: "0 open, 1 accepted", timeout: 30)
            #expect(status.contains("1 closed (1 normal"), "\(status)")
        }
    }

    @Test("a kernel RST (SO_LINGER 0, close) reaches the application as reset")
    func kernelResetReachesApplication() throws {
        try withStackOnTap(net: 67) { ns, stack, loop in
            let server = try ns.spawn(["python3", "-c", resettingServer, "10.199.67.1", "5003"])
            try server.waitForOutput(containing: "listening", timeout: 20)
            let done = Completion(loop: loop, count: 1)
            let peer = StreamPeer(stack: stack, loop: loop, done: done, sending: Array("hello".utf8), then: .nothing)
            peer.connection = try stack.connect(to: Endpoint(.v4(IPv4Address(10, 199, 67, 1)), 5003), timeout: nil, handler: peer)
            try loop.run(until: loop.now() + .seconds(30))
            #expect(done.finished, "no close event in 30 s: \(peer)")
            #expect(server.wait(timeout: 10) == 0, "\(server.output())")
            #expect(server.output().stdout.contains("reset after b'hello'"), "\(server.output())")
            #expect(peer.established)
            #expect(peer.received == Array("ready".utf8))
            #expect(peer.closeReason == .reset, "\(peer)")
            #expect(!peer.sawEndOfStream, "a reset is not an end of stream")
            #expect(stack.tcpConnectionCount == 0, "\(stack.tcpConnectionStates)")
        }
    }

    @Test("a kernel server that stops reading makes the stack's writer wait; it resumes and nothing is lost")
    func writerWaitsForSlowReader() throws {
        try withStackOnTap(net: 68) { ns, stack, loop in
            try withScratchDirectory { dir in
                let received = dir + "/received.bin"
                let pause = 4
                let server = try ns.spawn(
                    ["python3", "-c", slowReaderServer, "10.199.68.1", "5004", "\(pause)", received])
                try server.waitForOutput(containing: "listening", timeout: 20)
                let count = 16 << 20
                let data = pseudoRandomBytes(count: count, seed: 68)
                let done = Completion(loop: loop, count: 1)
                let peer = StreamPeer(stack: stack, loop: loop, done: done, sending: data, then: .close)
                peer.connection = try stack.connect(
                    to: Endpoint(.v4(IPv4Address(10, 199, 68, 1)), 5004), timeout: nil, handler: peer)
                try loop.run(until: loop.now() + .seconds(300))
                print("slow reader: \(peer)")
                #expect(done.finished, "not done after 300 s: \(peer); \(server.output())")
                #expect(peer.closeReason == .normal, "\(peer)")
                #expect(peer.shortWrites > 0, "the stack took all \(count) bytes at once: no back-pressure")
                // The reader paused `pause` seconds: the writer must have been
                // held back for most of that, and then resumed by `writable`.
                #expect(peer.longestStall >= .seconds(Int64(pause - 1)), "longest wait for writable: \(peer.longestStall)")
                #expect(server.wait(timeout: 30) == 0, "\(server.output())")
                #expect(server.output().stdout.contains("received \(count)"), "\(server.output())")
                let got = FileManager.default.contents(atPath: received).map { [UInt8]($0) } ?? []
                #expect(got.count == count)
                let intact = got == data
                #expect(intact, "the kernel received exactly the bytes the stack wrote")
            }
        }
    }
}

// MARK: - Kernel-side helpers (python3)

/// Opens N connections one after the other and keeps them all open, then
/// sends a message on each, reads each echo back, shuts each down and
/// waits for the server's FIN. Prints `open N` then `ok N eof N`.
private let manyConnectionsClient = #"""
import socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks = []
for i in range(n):
    s = socket.create_connection((host, port), timeout=20)
    socks.append(s)
print("open %d" % len(socks), flush=True)
def message(i):
    return (b"connection %d of %d " % (i, n)) * (1 + i % 9)
for i, s in enumerate(socks):
    s.sendall(message(i))
ok = 0
for i, s in enumerate(socks):
    want = message(i)
    got = b""
    while len(got) < len(want):
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    ok += got == want
for s in socks:
    s.shutdown(socket.SHUT_WR)
eof = 0
for s in socks:
    eof += s.recv(1) == b""
    s.close()
print("ok %d eof %d" % (ok, eof), flush=True)
"""#

/// Sends N deterministic bytes from a thread, then shutdown(SHUT_WR),
/// while the main thread reads the echo until end of file.
private let halfCloseClient = #"""
import socket, sys, threading, random
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = random.Random(66).randbytes(n)
s = socket.create_connection((host, port), timeout=60)
read_at_shutdown = []
got = bytearray()
def send():
    s.sendall(data)
    read_at_shutdown.append(len(got))
    s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send)
t.start()
eof = False
while True:
    chunk = s.recv(1 << 16)
    if not chunk:
        eof = True
        break
    got += chunk
t.join()
s.close()
print("read %d before shutdown" % read_at_shutdown[0], flush=True)
print("echoed %d equal %s eof %s" % (len(got), bytes(got) == data, eof), flush=True)
"""#

/// Accepts one connection, reads 5 bytes, answers "ready", then closes with
/// SO_LINGER 0: the kernel sends RST instead of FIN.
private let resettingServer = #"""
import socket, struct, sys, time
host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
s.listen(1)
s.settimeout(30)
print("listening", flush=True)
c, _ = s.accept()
c.settimeout(30)
got = b""
while len(got) < 5:
    chunk = c.recv(5 - len(got))
    if not chunk:
        break
    got += chunk
c.sendall(b"ready")
time.sleep(0.5)
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
c.close()
print("reset after %r" % got, flush=True)
"""#

/// Accepts one connection with a small receive buffer, does not read for
/// PAUSE seconds, then reads everything into FILE until end of stream.
private let slowReaderServer = #"""
import socket, sys, time
host, port, pause, path = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.bind((host, port))
s.listen(1)
s.settimeout(30)
print("listening", flush=True)
c, _ = s.accept()
c.settimeout(120)
print("accepted; not reading for %s s" % pause, flush=True)
time.sleep(pause)
print("reading", flush=True)
n = 0
with open(path, "wb") as f:
    while True:
        chunk = c.recv(1 << 20)
        if not chunk:
            break
        f.write(chunk)
        n += len(chunk)
c.close()
print("received %d" % n, flush=True)
"""#

// MARK: - Namespaces, mirage-echo, files

/// Starts `mirage-echo --net tap` on `tap` and waits until all three TCP
/// services listen.
private func startEcho(_ ns: TestNamespace, tap: String, address: String, extra: [String] = []) throws -> SpawnedProcess {
    let binary = try #require(EchoBinary.path, "mirage-echo must be built next to the tests")
    let process = try ns.spawn([binary, "--net", "tap", "--tap", tap, "--ipv4", address] + extra)
    try process.waitForOutput(containing: "source on", timeout: 20)
    let listening = process.output().stdout
    let ip = address.split(separator: "/")[0]
    #expect(listening.contains("echo on \(ip):7 (tcp, udp)"), "\(listening)")
    #expect(listening.contains("discard on \(ip):9 (tcp, udp)"), "\(listening)")
    #expect(listening.contains("source on \(ip):19 (tcp)"), "\(listening)")
    return process
}

/// Stops mirage-echo with SIGTERM; it must exit 0. Returns its output.
private func stopEcho(_ echo: SpawnedProcess) throws -> String {
    let status = echo.terminate(grace: 10)
    let output = echo.output()
    #expect(status == 0, "mirage-echo exited \(status): \(output.stderr)")
    return output.stdout
}

/// Asks mirage-echo for its status until the line contains `text` and,
/// unless `stackHoldsNothing` is false, says that the stack holds no TCP
/// connection any more (no TIME-WAIT either).
@discardableResult
private func waitForStatus(
    _ echo: SpawnedProcess, containing text: String, stackHoldsNothing: Bool = true, timeout: Double
) throws -> String {
    waitForStatusLine(echo, containing: [text] + (stackHoldsNothing ? ["stack holds 0 tcp connections"] : []), timeout: timeout)
}

/// Waits until the kernel listens on every one of `ports` in `ns`.
private func waitForListeners(_ ns: TestNamespace, ports: [Int]) throws {
    let ready = TestEnvironment.waitUntil(timeout: 20, interval: 0.1) {
        let ss = (try? ns.exec(["ss", "-Hltn"], timeout: 10).stdout) ?? ""
        return ports.allSatisfy { ss.contains(":\($0) ") }
    }
    try #require(ready, "the kernel's servers did not listen on \(ports)")
}

/// A fresh directory for the test's files, removed afterwards (and those
/// of earlier test processes that died before removing theirs).
private func withScratchDirectory<R>(_ body: (String) throws -> R) throws -> R {
    var base = NSTemporaryDirectory()
    while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
    if let names = try? FileManager.default.contentsOfDirectory(atPath: base) {
        for name in names where name.hasPrefix(TestNames.namespacePrefix) && name.hasSuffix("-tcp") {
            guard let pid = TestNames.ownerPID(ofNamespace: String(name.dropLast(4))), pid != getpid(),
                  kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(atPath: base + "/" + name)
        }
    }
    let path = base + "/\(TestNames.processTag())-\(TestNames.next())-tcp"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

/// Writes `count` bytes of Python's seeded generator to `path` (fast, and
/// the same bytes every run).
private func writeDeterministicFile(_ path: String, count: Int, seed: Int) throws {
    let program = "import random, sys; open(sys.argv[1], 'wb').write(random.Random(int(sys.argv[3])).randbytes(int(sys.argv[2])))"
    try runCommand(["python3", "-c", program, path, "\(count)", "\(seed)"], timeout: 60).check()
}

/// The SHA-256 of a file as sha256sum prints it (64 hex digits).
private func sha256(_ path: String) throws -> String {
    let result = try runCommand(["sha256sum", "-b", path], timeout: 120).check()
    return String(result.stdout.prefix(64))
}

/// The size of a file, or -1 when it does not exist.
private func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? -1
}

/// `uname -r`, for messages.
private func kernelRelease() -> String {
    (try? runCommand(["uname", "-r"], timeout: 5).stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? "?"
}

/// The packet counter of the nft rule with `comment "NAME"`.
private func nftPackets(_ ruleset: String, comment: String) -> Int? {
    guard let line = ruleset.split(separator: "\n").first(where: { $0.contains("comment \"\(comment)\"") }) else { return nil }
    return counterValue(String(line), "packets")
}

/// The number after `name ` in a line of `name value` pairs.
private func counterValue(_ line: String, _ name: String) -> Int? {
    let words = plainWords(line)
    guard let index = words.firstIndex(of: name), index + 1 < words.count else { return nil }
    return Int(words[index + 1])
}

/// The number before the first ` word` in `text` ("100 discarded").
private func numberBefore(_ text: String, _ word: String) -> Int? {
    let words = plainWords(text)
    guard let index = words.firstIndex(of: word), index > 0 else { return nil }
    return Int(words[index - 1])
}

/// `text` split at spaces and newlines, without surrounding punctuation.
private func plainWords(_ text: String) -> [String] {
    text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map { $0.trimmingCharacters(in: CharacterSet(charactersIn: ",;:()")) }
}

// MARK: - Stack-side peer

/// Stops the loop once `count` connections have closed.
private final class Completion {
    let loop: EventLoop
    var remaining: Int
    init(loop: EventLoop, count: Int) {
        self.loop = loop
        self.remaining = count
    }
    var finished: Bool { remaining == 0 }
    func oneClosed() {
        remaining -= 1
        if remaining == 0 { loop.stop() }
    }
}

/// One connection of the in-process stack: sends `outgoing` with
/// back-pressure (what `write` does not take is offered again on
/// `writable`), then closes or not; records what arrives and how it ended.
private final class StreamPeer: TCPHandler, CustomStringConvertible {
    enum AfterSending { case close, shutdownWrite, nothing }

    /// The most offered to one `write`.
    static let writeChunk = 1 << 20

    let stack: IPStack<TapInterface>
    let loop: EventLoop
    let done: Completion
    let outgoing: [UInt8]
    let afterSending: AfterSending
    var connection: ConnectionID?
    /// Close once the peer's FIN arrived and everything was sent.
    var closeOnEndOfStream = false

    private(set) var sentOffset = 0
    private(set) var received: [UInt8] = []
    private(set) var established = false
    private(set) var sawEndOfStream = false
    private(set) var closeReason: CloseReason?
    private(set) var writeError: DeviceError?
    private(set) var shortWrites = 0
    private(set) var writableEvents = 0
    private(set) var longestStall: Interval = .zero
    private var shortWriteAt: Instant?
    private var finishedSending = false
    private var closed = false

    init(stack: IPStack<TapInterface>, loop: EventLoop, done: Completion, sending: [UInt8], then: AfterSending) {
        self.stack = stack
        self.loop = loop
        self.done = done
        self.outgoing = sending
        self.afterSending = then
    }

    var description: String {
        "sent \(sentOffset)/\(outgoing.count), received \(received.count), established \(established), "
            + "eos \(sawEndOfStream), closed \(closeReason.map { "\($0)" } ?? "no"), short writes \(shortWrites), "
            + "writable \(writableEvents), longest stall \(longestStall.milliseconds) ms"
            + (writeError.map { ", write error \($0)" } ?? "")
    }

    func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {}

    func connectionEstablished(_ connection: ConnectionID) {
        established = true
        pump(connection)
    }

    func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {
        bytes.withUnsafeBufferPointer { received.append(contentsOf: $0) }
    }

    func endOfStream(on connection: ConnectionID) {
        sawEndOfStream = true
        if closeOnEndOfStream && finishedSending && !closed {
            closed = true
            stack.close(connection)
        }
    }

    func writable(_ connection: ConnectionID) {
        writableEvents += 1
        if let at = shortWriteAt {
            let waited = loop.now() - at
            if waited > longestStall { longestStall = waited }
            shortWriteAt = nil
        }
        pump(connection)
    }

    func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {
        closeReason = reason
        done.oneClosed()
    }

    private func pump(_ connection: ConnectionID) {
        let bytes = outgoing
        while sentOffset < bytes.count {
            let end = min(bytes.count, sentOffset + Self.writeChunk)
            let taken: Int
            do throws(DeviceError) {
                taken = try stack.write(bytes.span.extracting(sentOffset..<end), on: connection)
            } catch {
                writeError = error
                return
            }
            sentOffset += max(0, min(taken, end - sentOffset))
            if sentOffset < end {
                shortWrites += 1
                shortWriteAt = loop.now()
                return  // `writable` follows.
            }
        }
        guard !finishedSending else { return }
        finishedSending = true
        switch afterSending {
        case .close:
            closed = true
            stack.close(connection)
        case .shutdownWrite:
            stack.shutdownWrite(connection)
        case .nothing:
            if closeOnEndOfStream && sawEndOfStream && !closed {
                closed = true
                stack.close(connection)
            }
        }
    }
}
