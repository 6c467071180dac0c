import Foundation
import MirageDevices
import MirageTestNetwork
import Testing

#if canImport(Glibc)
import Glibc
#endif

// mirage-dns against Debian's DNS clients: kdig over TCP (several queries
// on one connection, RFC 7766), dig over both stacks, the idle timeout
// seen from a kernel socket, and a SIGHUP reload by SOA serial while a
// client keeps querying. The NSD differential and AXFR comparison live in
// DNSDifferentialTests. Traffic goes to 127.0.0.1 or into a namespace the
// test makes (10.199.77.0/24 exists only there).

@Suite("mirage-dns against kdig and dig", .serialized,
       .interop(tools: ["ip", "dig", "kdig", "python3"]))
struct DNSServerInteropTests {
    static let zone = """
        $ORIGIN example.test.
        $TTL 3600
        @       IN SOA ns1 admin ( SERIAL 7200 3600 1209600 300 )
                IN NS  ns1
        ns1     IN A   192.0.2.1
        www     IN A   192.0.2.80
        www     IN AAAA 2001:db8::80
        alias   IN CNAME www

        """

    static func zoneText(serial: Int, extra: String = "") -> String {
        zone.replacingOccurrences(of: "SERIAL", with: "\(serial)") + extra
    }

    @Test("kdig sends five queries on one TCP connection; each is answered, in order")
    func severalQueriesPerTCPConnection() throws {
        try withZoneDirectory(Self.zoneText(serial: 1)) { dir in
            let dns = try startDNS(["--zone", dir + "/example.test.zone", "--port", "0"])
            defer { _ = dns.process.terminate(grace: 5) }
            let names = ["www", "alias", "ns1", "nope", "www"]
            var argv = ["kdig", "@127.0.0.1", "-p", "\(dns.port)", "+tcp", "+keepopen", "+noall", "+answer", "+header", "+timeout=5"]
            for name in names { argv += ["\(name).example.test.", "A"] }
            let out = try runCommand(argv, timeout: 30).check()
            #expect(out.stdout.components(separatedBy: "status: NOERROR").count - 1 == 4, "\(out.stdout)")
            #expect(out.stdout.contains("status: NXDOMAIN"), "\(out.stdout)")
            #expect(out.stdout.contains("192.0.2.80"), "\(out.stdout)")
            let status = waitForStatusLine(dns.process, containing: ["tcp 5"], timeout: 10)
            #expect(status.contains("connections 0/1") || status.contains("/1 "), "one connection: \(status)")
            _ = try stopDNS(dns.process)
        }
    }

    @Test("an idle TCP connection is closed after --tcp-idle-timeout")
    func idleTimeout() throws {
        try withZoneDirectory(Self.zoneText(serial: 1)) { dir in
            let dns = try startDNS(["--zone", dir + "/example.test.zone", "--port", "0", "--tcp-idle-timeout", "1"])
            defer { _ = dns.process.terminate(grace: 5) }
            // A kernel socket connects and sends nothing; the server must
            // close (recv returns b"" within a few seconds, not time out).
            let script = """
                import socket, sys, time
                s = socket.create_connection(("127.0.0.1", \(dns.port)), timeout=10)
                start = time.monotonic()
                data = s.recv(10)
                print("closed" if data == b"" else "data", round(time.monotonic() - start, 1))
                """
            let out = try runCommand(["python3", "-c", script], timeout: 30).check()
            #expect(out.stdout.hasPrefix("closed"), "\(out.stdout) \(out.stderr)")
            let seconds = Double(out.stdout.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 99
            #expect(seconds >= 0.8 && seconds < 5, "closed after \(seconds) s")
            waitForStatusLine(dns.process, containing: ["idle-closed 1"], timeout: 10)
            _ = try stopDNS(dns.process)
        }
    }

    @Test("SIGHUP reloads a zone whose serial went up while a client keeps querying; no query is lost; an older serial is ignored")
    func reloadBySerialWithoutDroppingQueries() throws {
        try withZoneDirectory(Self.zoneText(serial: 10)) { dir in
            let file = dir + "/example.test.zone"
            let dns = try startDNS(["--zone", file, "--port", "0"])
            defer { _ = dns.process.terminate(grace: 5) }
            // The client asks for new.example.test. one query after the
            // other (each must be answered within 2 s): NXDOMAIN until the
            // reload, NOERROR after; it goes on for 500 queries past the
            // first NOERROR, at most 60 s, and prints its counts.
            let client = """
                import socket, struct, sys, time
                q = struct.pack(">HHHHHH", 0, 0x0100, 1, 0, 0, 0)
                for label in ("new", "example", "test"): q += bytes([len(label)]) + label.encode()
                q += b"\\0" + struct.pack(">HH", 1, 1)
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.settimeout(2)
                sent = answered = before = after = 0
                deadline = time.monotonic() + 60
                while after < 500 and time.monotonic() < deadline:
                    i = sent & 0xffff
                    s.sendto(struct.pack(">H", i) + q[2:], ("127.0.0.1", \(dns.port)))
                    sent += 1
                    try:
                        data, _ = s.recvfrom(2048)
                    except socket.timeout:
                        continue
                    if struct.unpack(">H", data[:2])[0] != i: continue
                    answered += 1
                    rcode = data[3] & 0x0f
                    if rcode == 3: before += 1
                    elif rcode == 0: after += 1
                    if sent == 300: open(sys.argv[1], "w").write("go")
                print("sent", sent, "answered", answered, "nxdomain", before, "noerror", after)
                """
            let signal = dir + "/go"
            let running = try SpawnedProcess(["python3", "-c", client, signal])
            defer { _ = running.terminate(grace: 1) }
            // Once the client is under way, change the file and signal.
            let started = TestEnvironment.waitUntil(timeout: 30) { FileManager.default.fileExists(atPath: signal) }
            #expect(started, "the client never got going")
            try Self.zoneText(serial: 11, extra: "new IN A 192.0.2.11\n").write(toFile: file, atomically: true, encoding: .utf8)
            kill(dns.process.pid, SIGHUP)
            #expect(running.wait(timeout: 90) == 0, "\(running.output())")
            let counts = running.output().stdout.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
            #expect(counts.count == 4, "\(running.output())")
            if counts.count == 4 {
                #expect(counts[0] == counts[1], "every query answered: \(running.output().stdout)")
                #expect(counts[2] >= 300 && counts[3] == 500, "before and after the reload: \(running.output().stdout)")
            }
            let reloaded = TestEnvironment.waitUntil(timeout: 10) { dns.process.output().stdout.contains("serial 10 -> 11") }
            #expect(reloaded, "\(dns.process.output().stdout)")
            // An older serial is not served.
            try Self.zoneText(serial: 9).write(toFile: file, atomically: true, encoding: .utf8)
            kill(dns.process.pid, SIGHUP)
            let refused = TestEnvironment.waitUntil(timeout: 10) { dns.process.output().stdout.contains("serial 9 not newer than 11") }
            #expect(refused, "\(dns.process.output().stdout)")
            let new = try runCommand(["dig", "@127.0.0.1", "-p", "\(dns.port)", "+short", "+time=3", "new.example.test.", "A"], timeout: 20).check()
            #expect(new.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "192.0.2.11")
            _ = try stopDNS(dns.process)
        }
    }

    @Test("dig in a namespace asks mirage-dns over MirageTCPIP on a tap device, over UDP and TCP")
    func overTap() throws {
        try withZoneDirectory(Self.zoneText(serial: 1)) { dir in
            try withKernelSideTap(net: 77, linkSuffix: "d") { ns, tap in
                let dns = try startDNS(["--zone", dir + "/example.test.zone", "--net", "tap", "--tap", tap, "--ipv4", "10.199.77.2/24"], in: ns)
                defer { _ = dns.process.terminate(grace: 5) }
                for transport in ["+notcp", "+tcp"] {
                    let out = try ns.exec(["dig", "@10.199.77.2", transport, "+time=3", "+tries=2", "www.example.test.", "AAAA"], timeout: 30).check()
                    #expect(out.stdout.contains("status: NOERROR"), "\(transport): \(out.stdout)")
                    #expect(out.stdout.contains("flags: qr aa rd;"), "\(transport): \(out.stdout)")
                    #expect(out.stdout.contains("2001:db8::80"), "\(transport): \(out.stdout)")
                }
                let axfr = try ns.exec(["dig", "@10.199.77.2", "+time=3", "example.test.", "AXFR"], timeout: 30).check()
                #expect(axfr.stdout.contains("XFR size: 7 records"), "\(axfr.stdout)")
                waitForStatusLine(dns.process, containing: ["udp 1", "tcp 2"], timeout: 10)
                let summary = try stopDNS(dns.process)
                #expect(summary.contains("stack counters"), "\(summary)")
            }
        }
    }

    @Test("mirage-dns refuses a broken zone file, naming the file and line")
    func brokenZoneIsReported() throws {
        try withZoneDirectory(Self.zoneText(serial: 1, extra: "www IN CNAME elsewhere.test.\n")) { dir in
            let binary = try #require(ExampleBinary.path("mirage-dns"), "mirage-dns must be built next to the tests")
            let out = try runCommand([binary, "--zone", dir + "/example.test.zone", "--port", "0"], timeout: 30)
            #expect(out.status == 2, "\(out)")
            #expect(out.stderr.contains("example.test.zone:9: CNAME and other data at www.example.test."), "\(out.stderr)")
        }
    }
}

/// Starts mirage-dns (in `ns` when given) and waits for its "serving dns on" line.
func startDNS(_ arguments: [String], in ns: TestNamespace? = nil) throws -> RunningDNSServer {
    let binary = try #require(ExampleBinary.path("mirage-dns"), "mirage-dns must be built next to the tests")
    let argv = [binary] + arguments
    let process = try ns.map { ns throws -> SpawnedProcess in try ns.spawn(argv) } ?? SpawnedProcess(argv)
    try process.waitForOutput(containing: "serving dns on ", timeout: 30)
    let line = try #require(process.output().stdout.split(separator: "\n").first { $0.hasPrefix("serving dns on ") })
    let endpoint = line.dropFirst("serving dns on ".count).prefix { $0 != " " }
    let port = try #require(endpoint.split(separator: ":").last.flatMap { UInt16($0) }, "no port in \(line)")
    return RunningDNSServer(process: process, port: port)
}

/// Stops mirage-dns with SIGTERM; it must exit 0. Returns its output.
func stopDNS(_ process: SpawnedProcess) throws -> String {
    let status = process.terminate(grace: 10)
    let output = process.output()
    #expect(status == 0, "mirage-dns exited \(status): \(output.stderr)")
    return output.stdout
}

/// A scratch directory holding `example.test.zone` with `text`, removed afterwards.
func withZoneDirectory<R>(_ text: String, _ body: (String) throws -> R) throws -> R {
    let path = NSTemporaryDirectory() + "/\(TestNames.processTag())-\(TestNames.next())-dns"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    try text.write(toFile: path + "/example.test.zone", atomically: true, encoding: .utf8)
    return try body(path)
}
