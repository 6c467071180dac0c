import Foundation
import MirageTestNetwork
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The namespace harness itself, against the Linux kernel alone: if these
/// fail, every interop test built on the harness is suspect.
@Suite("Namespace harness", .serialized, .interop(tools: ["ip", "ping"]))
struct NamespaceHarnessTests {
    private struct Deliberate: Error {}

    /// Names a test created, to check afterwards that none is left.
    private final class Created: @unchecked Sendable {
        var namespaces: [String] = []
        var links: [(namespace: String, link: String)] = []
        var rootLinks: [String] = []
    }

    private func expectGone(_ created: Created, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!created.namespaces.isEmpty, "the test recorded no names", sourceLocation: sourceLocation)
        let listed = TestNamespace.namespaceNames()
        for name in created.namespaces {
            #expect(!listed.contains(name), "namespace \(name) left behind", sourceLocation: sourceLocation)
            // `ip netns exec` on a removed namespace must fail too.
            let probe = try? runCommand(["ip", "netns", "exec", name, "true"], timeout: 10)
            #expect(probe?.succeeded != true, "namespace \(name) still usable", sourceLocation: sourceLocation)
        }
        for link in created.rootLinks + created.links.map(\.link) {
            #expect(!TestNamespace.rootLinkExists(link), "link \(link) left in root namespace",
                    sourceLocation: sourceLocation)
        }
    }

    @Test("ping across a veth pair between two namespaces (kernel only)")
    func kernelPingAcrossVeth() throws {
        let created = Created()
        try withNamespaces { a, b in
            created.namespaces = [a.name, b.name]
            #expect(TestNamespace.namespaceExists(a.name))
            #expect(TestNamespace.namespaceExists(b.name))
            try withVethPair(between: a, and: b, addressA: "10.199.1.1/24", addressB: "10.199.1.2/24") { veth in
                created.links = [(a.name, veth.nameA), (b.name, veth.nameB)]
                #expect(a.linkExists(veth.nameA))
                #expect(b.linkExists(veth.nameB))
                // The ends live only inside the namespaces.
                #expect(!TestNamespace.rootLinkExists(veth.nameA))
                #expect(!TestNamespace.rootLinkExists(veth.nameB))

                let before = try a.linkStatistics(veth.nameA)
                let ping = try a.exec(["ping", "-c", "3", "-i", "0.2", "-W", "2", veth.hostB], timeout: 30)
                #expect(ping.status == 0, "\(ping)")
                #expect(ping.stdout.contains("3 received"), "\(ping)")
                #expect(ping.stdout.contains(" 0% packet loss"), "\(ping)")
                let after = try a.linkStatistics(veth.nameA)
                #expect(after.txPackets >= before.txPackets + 3, "\(before) → \(after)")
                #expect(after.rxPackets >= before.rxPackets + 3, "\(before) → \(after)")
            }
            // The scoped veth is gone as soon as its scope ends.
            for (namespace, link) in created.links {
                let owner = namespace == a.name ? a : b
                #expect(!owner.linkExists(link), "veth \(link) survived its scope")
            }
        }
        expectGone(created)
    }

    @Test("a peer that does not exist gets no replies (the ping check can fail)")
    func pingToAbsentHostFails() throws {
        let created = Created()
        try withNamespaces { a, b in
            created.namespaces = [a.name, b.name]
            try withVethPair(between: a, and: b, addressA: "10.199.3.1/24", addressB: "10.199.3.2/24") { veth in
                created.links = [(a.name, veth.nameA), (b.name, veth.nameB)]
                let ping = try a.exec(["ping", "-c", "1", "-W", "1", "10.199.3.9"], timeout: 20)
                #expect(ping.status != 0, "\(ping)")
                #expect(!ping.stdout.contains("1 received"), "\(ping)")
            }
        }
        expectGone(created)
    }

    @Test("namespaces, veth and spawned programs are removed when the body throws")
    func cleanupWhenBodyThrows() throws {
        let created = Created()
        var sleeper: SpawnedProcess?
        #expect(throws: Deliberate.self) {
            try withNamespaces { a, b in
                created.namespaces = [a.name, b.name]
                try withVethPair(between: a, and: b, addressA: "10.199.2.1/24", addressB: "10.199.2.2/24") { veth in
                    created.links = [(a.name, veth.nameA), (b.name, veth.nameB)]
                    sleeper = try b.spawn(["sleep", "60"])
                    // Standing in for a failed #expect deep inside a test:
                    // the body leaves by an error, cleanup must still run.
                    throw Deliberate()
                }
            }
        }
        expectGone(created)
        let process = try #require(sleeper)
        #expect(!process.isRunning, "spawned program survived cleanup")
    }

    @Test("cleanup after a throw from the outer body (no veth scope), three namespaces")
    func cleanupWhenOuterBodyThrows() throws {
        let created = Created()
        #expect(throws: Deliberate.self) {
            try withNamespaces(count: 3) { namespaces in
                created.namespaces = namespaces.map(\.name)
                // Unscoped veth: owned by the namespaces, removed with them.
                let pair = try createVethPair(
                    between: namespaces[0], and: namespaces[2], addressA: "10.199.4.1/24", addressB: "10.199.4.2/24")
                created.links = [(namespaces[0].name, pair.nameA), (namespaces[2].name, pair.nameB)]
                #expect(namespaces[0].linkExists(pair.nameA))
                throw Deliberate()
            }
        }
        expectGone(created)
    }

    @Test("adoptLink moves a root-namespace link in, configures it, and cleanup removes it")
    func adoptLinkFromRootNamespace() throws {
        let created = Created()
        let base = TestNames.linkBaseName()
        let (left, right) = (base + "l", base + "r")
        created.rootLinks = [left, right]
        // A veth pair in the root namespace stands in for a tap device that
        // this process would have created there.
        try runCommand(["ip", "link", "add", left, "type", "veth", "peer", "name", right], timeout: 10).check()
        defer { _ = try? runCommand(["ip", "link", "del", "dev", left], timeout: 10) }
        #expect(TestNamespace.rootLinkExists(left))

        try withNamespaces { a, b in
            created.namespaces = [a.name, b.name]
            try a.adoptLink(name: left, address: "10.199.5.1/24")
            try b.adoptLink(name: right, address: "10.199.5.2/24")
            #expect(!TestNamespace.rootLinkExists(left), "link still in the root namespace")
            #expect(a.linkExists(left))
            #expect(try a.linkNames().contains(left))
            let ping = try b.exec(["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.199.5.1"], timeout: 30)
            #expect(ping.succeeded, "\(ping)")
            let statistics = try a.linkStatistics(left)
            #expect(statistics.rxPackets >= 2, "\(statistics)")
        }
        expectGone(created)
    }

    @Test("the async scoped API cleans up too")
    func asyncScope() async throws {
        let created = Created()
        let result = try await withNamespace { namespace in
            created.namespaces = [namespace.name]
            await Task.yield()
            return try namespace.exec(["ip", "-o", "link", "show", "lo"], timeout: 10)
        }
        #expect(result.succeeded, "\(result)")
        #expect(result.stdout.contains("UP"), "\(result)")
        expectGone(created)
    }

    @Test("removeLeftovers removes a namespace whose owning process is gone")
    func removeLeftoversOfDeadRun() throws {
        // pid 999999999 is above any pid_max, so its owner is never alive.
        let stale = "mswt-999999999-1"
        try runCommand(["ip", "netns", "add", stale], timeout: 10).check()
        defer { _ = try? runCommand(["ip", "netns", "del", stale], timeout: 10) }
        let mine = try TestNamespace()
        defer { mine.destroyQuietly() }

        let removed = TestNamespace.removeLeftovers()
        #expect(removed.contains(stale))
        #expect(!TestNamespace.namespaceExists(stale))
        // Our own (live) namespace is kept.
        #expect(!removed.contains(mine.name))
        #expect(TestNamespace.namespaceExists(mine.name))
        try mine.destroy()
        #expect(!TestNamespace.namespaceExists(mine.name))
    }
}

/// `runCommand` and `SpawnedProcess` need no root: they are checked on any
/// machine that has the coreutils.
@Suite("Command runner", .interop(tools: ["sh", "sleep", "cat"], needsRoot: false))
struct CommandRunnerTests {
    @Test("a command that outlives its timeout is killed, quickly")
    func timeoutKills() throws {
        let clock = ContinuousClock()
        let start = clock.now
        let result = try runCommand(["sleep", "30"], timeout: 0.5)
        let elapsed = clock.now - start
        #expect(result.timedOut)
        #expect(!result.succeeded)
        #expect(elapsed < .seconds(5), "took \(elapsed)")
    }

    @Test("a grandchild holding the output pipe does not hang the runner")
    func backgroundGrandchildIsBounded() throws {
        let clock = ContinuousClock()
        let start = clock.now
        let result = try runCommand(["sh", "-c", "sleep 30 & echo started"], timeout: 20)
        #expect(clock.now - start < .seconds(5))
        #expect(result.stdout == "started\n", "\(result)")
        #expect(result.status == 0)
    }

    @Test("status, stdout, stderr and input are passed through")
    func passesThrough() throws {
        let echo = try runCommand(["sh", "-c", "cat; echo oops >&2; exit 3"], timeout: 10, input: Array("hello".utf8))
        #expect(echo.status == 3)
        #expect(echo.stdout == "hello")
        #expect(echo.stderr == "oops\n")
        #expect(throws: TestNetworkError.self) { try echo.check() }

        let big = try runCommand(["sh", "-c", "head -c 1000000 /dev/zero"], timeout: 10)
        #expect(big.stdoutBytes.count == 1_000_000)

        let env = try runCommand(["sh", "-c", "echo $MSWT_PROBE"], timeout: 10, environment: ["MSWT_PROBE": "x1"])
        #expect(env.stdout == "x1\n")
    }

    @Test("a missing program is an error, not a result")
    func missingProgram() {
        #expect(throws: TestNetworkError.self) {
            _ = try runCommand(["mswt-no-such-program"], timeout: 5)
        }
        #expect(TestEnvironment.missingTools(["sh", "mswt-no-such-program"]) == ["mswt-no-such-program"])
    }

    @Test("a spawned program is stopped by terminate and its output is kept")
    func spawnAndTerminate() throws {
        let process = try SpawnedProcess(["sh", "-c", "echo ready; exec sleep 30"])
        try process.waitForOutput(containing: "ready", timeout: 10)
        #expect(process.isRunning)
        let status = process.terminate(grace: 2)
        #expect(status == 128 + SIGTERM)
        #expect(!process.isRunning)
        #expect(process.output().stdout == "ready\n")
    }
}
