import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A network namespace created for one test: a private host with its own
/// interfaces, addresses, routes and sockets.
///
/// Commands run inside it as child processes through `ip netns exec`; the
/// test process itself never calls `setns` (it is multi-threaded, and a
/// thread switched to another namespace would leak into unrelated tests).
///
/// Prefer the scoped functions, which always clean up, also when the body
/// throws:
///
/// ```swift
/// try withNamespaces { a, b in
///     try withVethPair(between: a, and: b,
///                      addressA: "10.199.1.1/24", addressB: "10.199.1.2/24") { veth in
///         let ping = try a.exec(["ping", "-c", "3", "-W", "2", "10.199.1.2"], timeout: 20)
///         #expect(ping.succeeded, "\(ping)")
///     }
/// }
/// ```
///
/// `destroy()` stops the processes it spawned, kills whatever else still
/// runs inside, deletes the links it owns and removes the namespace. It is
/// idempotent and also runs from `deinit` as a safety net.
public final class TestNamespace: Sendable, CustomStringConvertible {
    /// The namespace name (`mswt-<pid>-<n>`), as shown by `ip netns list`.
    public let name: String

    private struct State {
        var destroyed = false
        var ownedLinks: [String] = []
        var processes: [SpawnedProcess] = []
    }
    private let state = Mutex(State())

    /// Creates a new namespace with its loopback interface up.
    /// Throws `.notRoot` when not root, `.toolNotFound("ip")` without iproute2.
    public init() throws(TestNetworkError) {
        guard TestEnvironment.isRoot else { throw .notRoot(operation: "creating a network namespace") }
        let name = TestNames.namespaceName()
        try runCommand(["ip", "netns", "add", name], timeout: 10).check()
        self.name = name
        do {
            try runCommand(["ip", "-n", name, "link", "set", "lo", "up"], timeout: 10).check()
        } catch {
            destroyQuietly()
            throw error
        }
    }

    deinit {
        destroyQuietly()
    }

    public var description: String { name }

    // MARK: Running programs inside

    /// Runs `argv` inside the namespace (`ip netns exec NAME argv…`) as a
    /// child process, bounded by `timeout` seconds.
    public func exec(
        _ argv: [String], timeout: Double = 30, input: [UInt8]? = nil, environment: [String: String] = [:]
    ) throws(TestNetworkError) -> CommandResult {
        precondition(!argv.isEmpty, "exec needs a program")
        var result = try runCommand(
            ["ip", "netns", "exec", name] + argv, timeout: timeout, input: input, environment: environment)
        result.argv = argv
        return result
    }

    /// Starts a long-running program inside the namespace. It is stopped by
    /// `destroy()` (or earlier by `terminate()` on the returned process).
    public func spawn(_ argv: [String], environment: [String: String] = [:]) throws(TestNetworkError)
        -> SpawnedProcess
    {
        precondition(!argv.isEmpty, "spawn needs a program")
        let process = try SpawnedProcess(["ip", "netns", "exec", name] + argv, environment: environment)
        state.withLock { $0.processes.append(process) }
        return process
    }

    /// Runs `ip ARGS` against this namespace (`ip -n NAME ARGS`) and throws
    /// unless it succeeds.
    @discardableResult
    public func ip(_ arguments: [String], timeout: Double = 10) throws(TestNetworkError) -> CommandResult {
        try runCommand(["ip", "-n", name] + arguments, timeout: timeout).check()
    }

    // MARK: Links

    /// Moves an existing link of the root namespace (e.g. a tap device this
    /// process opened through /dev/net/tun; its file descriptor stays
    /// attached) into this namespace, adds `address` (CIDR, e.g.
    /// "10.199.2.1/24") when given, and sets it up. The namespace owns it
    /// from then on: `destroy()` deletes it.
    public func adoptLink(name link: String, address: String? = nil, up: Bool = true) throws(TestNetworkError) {
        try runCommand(["ip", "link", "set", "dev", link, "netns", name], timeout: 10).check()
        own(link)
        if let address { try ip(["address", "add", address, "dev", link]) }
        if up { try ip(["link", "set", "dev", link, "up"]) }
    }

    /// Records that `link` (inside this namespace) is deleted by `destroy()`.
    public func own(_ link: String) {
        state.withLock { $0.ownedLinks.append(link) }
    }

    /// Whether a link of that name exists inside this namespace.
    public func linkExists(_ link: String) -> Bool {
        (try? runCommand(["ip", "-n", name, "link", "show", "dev", link], timeout: 10).succeeded) ?? false
    }

    /// The names of all links inside this namespace (including "lo").
    public func linkNames() throws(TestNetworkError) -> [String] {
        let result = try ip(["-j", "link", "show"])
        guard let array = Self.parseJSONArray(result.stdout) else {
            throw .unexpectedOutput(command: "ip -j link show", output: result.stdout)
        }
        return array.compactMap { $0["ifname"] as? String }
    }

    /// Packet and byte counters of a link inside this namespace
    /// (`ip -s -j link show`).
    public func linkStatistics(_ link: String) throws(TestNetworkError) -> LinkStatistics {
        let result = try ip(["-s", "-j", "link", "show", "dev", link])
        guard let first = Self.parseJSONArray(result.stdout)?.first,
              let statistics = LinkStatistics(ipJSON: first)
        else {
            throw .unexpectedOutput(command: "ip -s -j link show dev \(link)", output: result.stdout)
        }
        return statistics
    }

    // MARK: Cleanup

    /// Stops spawned programs, kills anything else inside, deletes owned
    /// links and removes the namespace; then checks that it is gone.
    /// Idempotent.
    public func destroy() throws(TestNetworkError) {
        let (alreadyDestroyed, links, processes) = state.withLock { state in
            defer {
                state.destroyed = true
                state.processes = []
            }
            return (state.destroyed, state.ownedLinks, state.processes)
        }
        if alreadyDestroyed { return }
        for process in processes { process.terminate(grace: 1) }
        Self.killProcesses(inNamespace: name)
        for link in links {
            _ = try? runCommand(["ip", "-n", name, "link", "del", "dev", link], timeout: 10)
        }
        let deleted = try runCommand(["ip", "netns", "del", name], timeout: 10)
        if Self.namespaceExists(name) {
            throw .cleanupFailed("namespace \(name) still exists: \(deleted)")
        }
    }

    /// `destroy()` for paths that are already failing: errors are dropped
    /// (Scripts/test removes any leftovers before the next run).
    public func destroyQuietly() {
        _ = try? destroy()
    }

    // MARK: Whole-machine queries and cleanup

    /// The namespace names `ip netns list` shows.
    public static func namespaceNames() -> [String] {
        guard let result = try? runCommand(["ip", "netns", "list"], timeout: 10), result.succeeded else { return [] }
        // Lines look like "name" or "name (id: 3)".
        return result.stdout.split(separator: "\n").compactMap { line in
            line.split(separator: " ").first.map(String.init)
        }
    }

    /// Whether `ip netns list` shows a namespace of that name.
    public static func namespaceExists(_ name: String) -> Bool {
        namespaceNames().contains(name)
    }

    /// Whether a link of that name exists in the root namespace.
    public static func rootLinkExists(_ link: String) -> Bool {
        (try? runCommand(["ip", "link", "show", "dev", link], timeout: 10).succeeded) ?? false
    }

    /// Removes harness namespaces (`mswt-*`), root-namespace links
    /// (`mswt*`) and spawn output folders left behind by earlier runs. With `onlyDeadOwners` (the
    /// default) it keeps what a still-running process created, so it is
    /// safe to call while other test processes run. Returns what it removed.
    @discardableResult
    public static func removeLeftovers(onlyDeadOwners: Bool = true) -> [String] {
        guard TestEnvironment.isRoot, TestEnvironment.toolPath("ip") != nil else { return [] }
        func ownerAlive(_ pid: Int32?) -> Bool {
            guard let pid else { return false }
            return kill(pid, 0) == 0 || errno == EPERM
        }
        SpawnedProcess.removeStaleOutputDirectories()
        var removed: [String] = []
        for name in namespaceNames() where name.hasPrefix(TestNames.namespacePrefix) {
            if onlyDeadOwners && ownerAlive(TestNames.ownerPID(ofNamespace: name)) { continue }
            killProcesses(inNamespace: name)
            _ = try? runCommand(["ip", "netns", "del", name], timeout: 10)
            removed.append(name)
        }
        if let result = try? runCommand(["ip", "-j", "link", "show"], timeout: 10),
           let links = parseJSONArray(result.stdout) {
            for case let link? in links.map({ $0["ifname"] as? String })
            where link.hasPrefix(TestNames.linkPrefix) {
                if onlyDeadOwners && ownerAlive(TestNames.ownerPID(ofLink: link)) { continue }
                _ = try? runCommand(["ip", "link", "del", "dev", link], timeout: 10)
                removed.append(link)
            }
        }
        return removed
    }

    /// SIGKILLs every process still inside the namespace (`ip netns pids`).
    static func killProcesses(inNamespace name: String) {
        guard let result = try? runCommand(["ip", "netns", "pids", name], timeout: 10) else { return }
        for line in result.stdout.split(separator: "\n") {
            if let pid = Int32(line.trimmingCharacters(in: .whitespaces)), pid > 1, pid != getpid() {
                _ = kill(pid, SIGKILL)
            }
        }
    }

    static func parseJSONArray(_ text: String) -> [[String: Any]]? {
        guard let data = text.data(using: .utf8),
              let object = try? JSONSerialization.jsonObject(with: data)
        else { return nil }
        return object as? [[String: Any]]
    }
}
