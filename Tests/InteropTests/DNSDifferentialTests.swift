import Foundation
import MirageTestNetwork
import Testing

#if canImport(Glibc)
import Glibc
#endif

// mirage-dns against NSD (Debian's), issue #8's "Real peers": both serve the
// zones in DNSZones/differential on 127.0.0.1; Tests/InteropTests/DNS/
// dns_differential.py sends each server the same several hundred queries
// over UDP without EDNS, UDP with EDNS (512, 1232, 4096) and TCP and
// compares rcode, flags and every section; `dig AXFR` from both must yield
// the same records. NSD runs with server-count 1 and its rate limiting off
// (Tests/InteropTests/DNS/nsd_server.py writes its configuration). Nothing
// needs root; every port is a free one on 127.0.0.1, every command has a
// time limit.

/// The Python scripts and zone files of the DNS interop tests.
enum DNSPeerFiles {
    static let scripts = ExampleBinary.packageRoot + "/Tests/InteropTests/DNS"
    static let driver = scripts + "/dns_differential.py"
    static let nsdServer = scripts + "/nsd_server.py"
    static let zoneDirectory = ExampleBinary.packageRoot + "/Tests/InteropTests/DNSZones/differential"

    /// Every zone file of the differential test, sorted.
    static func zoneFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: zoneDirectory)
            .filter { $0.hasSuffix(".zone") }.sorted().map { zoneDirectory + "/" + $0 }
    }

    /// The origin a zone file names in its first `$ORIGIN` line.
    static func origin(ofZoneFile path: String) throws -> String {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ";", maxSplits: 1).first?.split(separator: " ") ?? []
            if fields.count >= 2, fields[0].uppercased() == "$ORIGIN" { return String(fields[1]) }
        }
        throw SocketTestError.timedOut("no $ORIGIN in \(path)")
    }

    /// A python3 that has dnspython: Debian's python3-dnspython installs it
    /// for /usr/bin/python3, which a python3 earlier in PATH may not see.
    static let python: String? = {
        for candidate in ["/usr/bin/python3", "python3"] where TestEnvironment.toolPath(candidate) != nil {
            if let result = try? runCommand([candidate, "-c", "import dns.message, dns.zone"], timeout: 30),
               result.succeeded {
                return candidate
            }
        }
        return nil
    }()
}

@Suite("mirage-dns against NSD: differential queries and AXFR", .serialized,
       .interop(tools: ["nsd", "dig", "python3"], needsRoot: false))
struct DNSDifferentialTests {
    @Test("the differential driver: two NSDs on the same zones agree on every answer; a changed zone is caught")
    func driverSelfTest() throws {
        let python = try #require(DNSPeerFiles.python, "no python3 with dnspython (Debian: python3-dnspython)")
        let run = try runCommand([python, DNSPeerFiles.driver, "--self-test", "--show", "5"], timeout: 600)
        #expect(!run.timedOut && run.status == 0, "\(excerpt(run.stdout))\n\(run.stderr)")
        let summaries = differentialSummaries(run.stdout)
        #expect(summaries.count == 2, "\(excerpt(run.stdout))")
        if summaries.count == 2 {
            #expect(summaries[0].queries >= 300 && summaries[0].transports == 6, "\(summaries[0])")
            #expect(summaries[0].differences == 0, "two NSDs with the same zones differ: \(excerpt(run.stdout))")
            #expect(summaries[1].differences > 0, "an NSD with changed zone data was not told apart")
        }
        #expect(run.stdout.contains("self-test: passed"))
    }

    @Test("mirage-dns answers several hundred queries over UDP, EDNS and TCP exactly as NSD does")
    func mirageDNSMatchesNSD() throws {
        let python = try #require(DNSPeerFiles.python, "no python3 with dnspython (Debian: python3-dnspython)")
        let zones = try DNSPeerFiles.zoneFiles()
        #expect(zones.count >= 2, "\(zones)")
        try withDNSScratch { dir in
            let nsd = try startNSD(directory: dir + "/nsd", zones: zones)
            defer { _ = nsd.process.terminate(grace: 5) }
            let ours = try startMirageDNS(zones: zones)
            defer { _ = ours.process.terminate(grace: 5) }
            let run = try runCommand(
                [python, DNSPeerFiles.driver, "--show", "60",
                 "--server", "nsd=127.0.0.1:\(nsd.port)", "--server", "mirage-dns=127.0.0.1:\(ours.port)"] + zones,
                timeout: 900)
            print(summaryLines(run.stdout))
            let summary = differentialSummaries(run.stdout).first
            #expect(summary != nil, "no summary line: \(excerpt(run.stdout))\n\(run.stderr)")
            if let summary {
                #expect(summary.queries >= 300, "only \(summary.queries) queries")
                #expect(summary.transports == 6, "\(summary)")
            }
            #expect(!run.timedOut && run.status == 0, "mirage-dns differs from NSD:\n\(excerpt(run.stdout))\n\(run.stderr)")
            #expect(ours.process.isRunning, "mirage-dns exited during the run: \(ours.process.output().stderr)")
            // Its own count: every exchange arrived, every answer left.
            let line = waitForStatusLine(ours.process, containing: ["udp-send-failures 0", "rejected 0"], timeout: 20)
            print("mirage-dns \(line)")
            if let exchanges = exchangeCount(run.stdout), let queries = statusCount("queries", in: line) {
                #expect(queries >= exchanges - 10, "mirage-dns counted \(queries) queries; the driver made \(exchanges) exchanges")
            }
            _ = try stopDNS(ours.process)
        }
    }

    @Test("dig AXFR: mirage-dns transfers every zone, the same records as NSD's transfer", arguments: ["example.test.", "MiXeD.test.", "child.example.test."])
    func axfrMatchesNSD(origin: String) throws {
        let zones = try DNSPeerFiles.zoneFiles()
        let file = try #require(try zones.first { try DNSPeerFiles.origin(ofZoneFile: $0) == origin }, "no zone file for \(origin)")
        try withDNSScratch { dir in
            let nsd = try startNSD(directory: dir + "/nsd", zones: [file])
            defer { _ = nsd.process.terminate(grace: 5) }
            let ours = try startMirageDNS(zones: [file])
            defer { _ = ours.process.terminate(grace: 5) }
            let reference = try axfr(origin, port: nsd.port)
            let transferred = try axfr(origin, port: ours.port)
            #expect(reference.records.count >= 3, "NSD's AXFR: \(reference.output)")
            #expect(transferred.soaAtBothEnds, "mirage-dns's AXFR must begin and end with the SOA: \(excerpt(transferred.output))")
            #expect(transferred.records.count == reference.records.count,
                    "mirage-dns sent \(transferred.records.count) records, NSD \(reference.records.count)")
            let ourSet = Dictionary(transferred.records.map { ($0, 1) }, uniquingKeysWith: +)
            let theirSet = Dictionary(reference.records.map { ($0, 1) }, uniquingKeysWith: +)
            let missing = theirSet.filter { ourSet[$0.key] != $0.value }.keys.sorted()
            let extra = ourSet.filter { theirSet[$0.key] != $0.value }.keys.sorted()
            #expect(missing.isEmpty, "in NSD's AXFR, not (as often) in mirage-dns's:\n\(missing.prefix(40).joined(separator: "\n"))")
            #expect(extra.isEmpty, "in mirage-dns's AXFR, not (as often) in NSD's:\n\(extra.prefix(40).joined(separator: "\n"))")
            _ = try stopDNS(ours.process)
        }
    }
}

// MARK: - Servers

/// A DNS server the test started (NSD or mirage-dns) and the port it answers on.
struct RunningDNSServer {
    var process: SpawnedProcess
    var port: UInt16
}

/// NSD in the foreground on 127.0.0.1 and a free port, configured by
/// nsd_server.py in `directory`; returns once it answers an SOA query.
/// In `ns` (a namespace) it answers on `address` and `port` there instead.
func startNSD(directory: String, zones: [String], in ns: TestNamespace? = nil,
              address: String = "127.0.0.1", port fixedPort: UInt16? = nil) throws -> RunningDNSServer {
    let python = try #require(DNSPeerFiles.python, "no python3 with dnspython")
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let port = try fixedPort ?? freeDNSPort()
    let argv = [python, DNSPeerFiles.nsdServer, "--dir", directory, "--port", String(port), "--address", address] + zones
    let process = try ns.map { ns throws -> SpawnedProcess in try ns.spawn(argv) } ?? SpawnedProcess(argv)
    let origin = try DNSPeerFiles.origin(ofZoneFile: zones[0])
    try waitUntilAnswering(origin: origin, address: address, port: port, in: ns, process: process, name: "NSD")
    return RunningDNSServer(process: process, port: port)
}

/// mirage-dns (built beside the tests) on 127.0.0.1 and a free port, after
/// its "serving" line (`startDNS`) and once it answers an SOA query.
func startMirageDNS(zones: [String], extraArguments: [String] = []) throws -> RunningDNSServer {
    var arguments = ["--port", String(try freeDNSPort())]
    for zone in zones { arguments += ["--zone", zone] }
    let dns = try startDNS(arguments + extraArguments)
    try waitUntilAnswering(origin: try DNSPeerFiles.origin(ofZoneFile: zones[0]), port: dns.port, process: dns.process, name: "mirage-dns")
    return dns
}

/// Polls with `dig … ORIGIN SOA` (from `ns` when given) until the server
/// answers with AA (30 s at most).
private func waitUntilAnswering(origin: String, address: String = "127.0.0.1", port: UInt16, in ns: TestNamespace? = nil,
                                process: SpawnedProcess, name: String) throws {
    var last = ""
    let ready = try TestEnvironment.waitUntil(timeout: 30, interval: 0.2) {
        guard process.isRunning else { return true }
        let argv = ["dig", "@\(address)", "-p", String(port), "+norec", "+time=1", "+tries=1",
                    "+noall", "+comments", origin, "SOA"]
        let dig = try ns.map { ns throws -> CommandResult in try ns.exec(argv, timeout: 10) } ?? runCommand(argv, timeout: 10)
        last = dig.stdout
        return dig.stdout.contains("flags: qr aa")
    }
    let output = process.output()
    #expect(process.isRunning, "\(name) exited: \(output.stdout)\(output.stderr)")
    if !ready || !process.isRunning {
        throw SocketTestError.timedOut("\(name) never answered \(origin) SOA on \(address):\(port): \(last) \(output.stderr)")
    }
}

/// A port free on 127.0.0.1 for both UDP and TCP now (below the kernel's ephemeral range).
func freeDNSPort() throws -> UInt16 {
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<100 {
        let port = UInt16.random(in: 20_000...30_000, using: &generator)
        var free = true
        for type in [SOCK_STREAM, SOCK_DGRAM] where free {
            let fd = socket(AF_INET, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { free = false; continue }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if rc != 0 { free = false }
            close(fd)
        }
        if free { return port }
    }
    throw SocketTestError.timedOut("no free port on 127.0.0.1 in 100 tries")
}

// MARK: - AXFR

struct ZoneTransfer {
    /// The transfer's output from dig.
    var output: String
    /// Every record, normalised (see `normaliseRecordLine`), the SOA twice.
    var records: [String]
    /// Whether the first and the last record are the SOA.
    var soaAtBothEnds: Bool
}

/// `dig AXFR` over TCP from 127.0.0.1:`port`.
func axfr(_ origin: String, port: UInt16) throws -> ZoneTransfer {
    let dig = try runCommand(["dig", "@127.0.0.1", "-p", String(port), "+nocmd", "+nocomments", "+nostats",
                              "+time=5", "+tries=1", origin, "AXFR"], timeout: 60)
    #expect(dig.succeeded, "dig AXFR \(origin): \(dig.stdout)\(dig.stderr)")
    #expect(!dig.stdout.contains("Transfer failed") && !dig.stdout.contains("Got bad packet"),
            "dig AXFR \(origin): \(excerpt(dig.stdout))")
    let records = dig.stdout.split(separator: "\n").map(String.init)
        .filter { !$0.isEmpty && !$0.hasPrefix(";") }.map(normaliseRecordLine)
    let isSOA = { (line: String) in line.split(separator: " ").dropFirst(3).first == "soa" }
    let soaAtBothEnds = records.count >= 2 && isSOA(records[0]) && isSOA(records[records.count - 1])
    return ZoneTransfer(output: dig.stdout, records: records, soaAtBothEnds: soaAtBothEnds)
}

/// One record line of dig's output with its fields separated by one space
/// and every letter outside double quotes in lower case: names compare
/// without case (RFC 4343), and a server may write a name in the case of
/// another occurrence of it; quoted text keeps its case.
func normaliseRecordLine(_ line: String) -> String {
    var out = ""
    var quoted = false
    var escaped = false
    var lastWasSpace = false
    for character in line {
        if quoted {
            out.append(character)
            if escaped { escaped = false } else if character == "\\" { escaped = true } else if character == "\"" { quoted = false }
            continue
        }
        if character == " " || character == "\t" {
            if !lastWasSpace && !out.isEmpty { out.append(" ") }
            lastWasSpace = true
            continue
        }
        lastWasSpace = false
        if character == "\"" { quoted = true }
        out.append(contentsOf: character.lowercased())
    }
    return out.hasSuffix(" ") ? String(out.dropLast()) : out
}

// MARK: - Output

struct DifferentialSummary: CustomStringConvertible {
    var queries: Int
    var transports: Int
    var differences: Int
    var description: String { "\(queries) queries × \(transports) transports: \(differences) differences" }
}

/// Every "N queries × M transports: K differences" line, in order.
func differentialSummaries(_ output: String) -> [DifferentialSummary] {
    output.split(separator: "\n").compactMap { line -> DifferentialSummary? in
        let words = line.split(separator: " ")
        guard words.count == 7, words[1] == "queries", words[2] == "×", words[4] == "transports:",
              words[6] == "differences", let queries = Int(words[0]), let transports = Int(words[3]),
              let differences = Int(words[5]) else { return nil }
        return DifferentialSummary(queries: queries, transports: transports, differences: differences)
    }
}

/// The driver's "(E exchanges with each server; …)" figure.
func exchangeCount(_ output: String) -> Int? {
    for line in output.split(separator: "\n") where line.hasPrefix("(") && line.contains(" exchanges with each server") {
        return Int(line.dropFirst().prefix { $0 != " " })
    }
    return nil
}

/// The number after `name` in a status line ("queries 12 answered 12 …").
func statusCount(_ name: String, in line: String) -> Int? {
    let words = line.split(separator: " ")
    guard let index = words.firstIndex(where: { $0 == name }), index + 1 < words.count else { return nil }
    return Int(words[index + 1])
}

/// The driver's closing lines (summary, per-category counts, notes).
private func summaryLines(_ output: String) -> String {
    output.split(separator: "\n").filter {
        $0.contains(" queries × ") || $0.hasPrefix("differences by category") || $0.hasPrefix("note:") || $0.hasPrefix("(")
    }.joined(separator: "\n")
}

/// The first 30000 characters of a long output (an #expect message).
private func excerpt(_ text: String) -> String {
    text.count <= 30_000 ? text : String(text.prefix(30_000)) + "\n… (\(text.count) characters in all)"
}

/// A scratch folder for one test, removed after it.
private func withDNSScratch<R>(_ body: (String) throws -> R) throws -> R {
    let path = NSTemporaryDirectory() + "/\(TestNames.processTag())-\(TestNames.next())-dns"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}
