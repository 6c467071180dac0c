import MirageDevices
import MiragePlatform
import MirageTCPIP
import MirageTestNetwork
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Helpers shared by the interop tests that run an example program (mirage-
// echo, mirage-www) against a kernel peer.

/// A namespace holding a tap device whose kernel side is
/// 10.199.<net>.1/24 (IPv6 off, so no router solicitations), up, with its
/// loopback up. The example program is started inside it on the tap.
func withKernelSideTap(net: Int, linkSuffix: String, _ body: (TestNamespace, String) throws -> Void) throws {
    try withNamespace { ns in
        let tap = TestNames.linkBaseName() + linkSuffix
        try ns.ip(["tuntap", "add", "dev", tap, "mode", "tap"])
        ns.own(tap)
        let disable = "f=/proc/sys/net/ipv6/conf/\(tap)/disable_ipv6; [ ! -e $f ] || echo 1 > $f"
        try ns.exec(["sh", "-c", disable], timeout: 10).check()
        try ns.ip(["addr", "add", "10.199.\(net).1/24", "dev", tap])
        try ns.ip(["link", "set", "dev", tap, "up"])
        try ns.ip(["link", "set", "dev", "lo", "up"])
        try body(ns, tap)
    }
}

/// Asks an example program for its status (SIGUSR1, answered with a line
/// `status: …`) until the line contains every one of `wanted`; returns the
/// last line (also when it never did, after recording the failure).
@discardableResult
func waitForStatusLine(_ process: SpawnedProcess, containing wanted: [String], timeout: Double) -> String {
    var last = ""
    let found = TestEnvironment.waitUntil(timeout: timeout, interval: 0.3) {
        let before = statusLines(process).count
        kill(process.pid, SIGUSR1)
        _ = TestEnvironment.waitUntil(timeout: 2) { statusLines(process).count > before }
        last = statusLines(process).last ?? ""
        return wanted.allSatisfy { last.contains($0) }
    }
    #expect(found, "\(process.argv.first ?? "the program")'s status never said \(wanted); last: \(last)")
    return last
}

private func statusLines(_ process: SpawnedProcess) -> [String] {
    process.output().stdout.split(separator: "\n").filter { $0.hasPrefix("status: ") }.map(String.init)
}

/// An `IPStack` in this process at `10.199.<net>.2/24` on a tap device
/// moved into a new namespace, where the kernel has `10.199.<net>.1/24`.
/// The body runs the loop itself. With `virtioNetHeader` the tap carries
/// the virtio-net header and its offloads (checksum, TSO, GRO).
func withStackOnTap(
    net: Int, virtioNetHeader: Bool = false, _ body: (TestNamespace, IPStack<TapInterface>, EventLoop) throws -> Void
) throws {
    let loop = try EventLoop()
    let name = TestNames.linkBaseName() + "s"
    let tap = try TapInterface(name: name, loop: loop, virtioNetHeader: virtioNetHeader)
    defer { tap.close() }
    try withNamespace { ns in
        try ns.adoptLink(name: name, address: "10.199.\(net).1/24", up: true)
        let stack = IPStack(
            interface: tap, configuration: .init(ipv4: IPv4Configuration(cidr: "10.199.\(net).2/24")),
            clock: loop, scheduler: loop, entropy: SystemEntropy())
        defer { stack.detach() }
        try body(ns, stack, loop)
    }
}
