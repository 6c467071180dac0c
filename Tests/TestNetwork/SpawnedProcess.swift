import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A long-running background program (a server, a capture, a peer daemon).
///
/// Its standard output and error go to files, so it can never block on a
/// full pipe; read them with `output()`. It runs in its own process group;
/// `terminate()` (also called by the owning `TestNamespace.destroy()` and by
/// `deinit`) sends SIGTERM to the group, waits briefly, then SIGKILL.
public final class SpawnedProcess: Sendable {
    /// The command line, as given.
    public let argv: [String]
    /// The child's process id (also its process group id).
    public let pid: Int32
    private let directory: String
    private let exitStatus = Mutex<Int32?>(nil)

    /// Starts `argv` in the background (not inside any namespace; see
    /// `TestNamespace.spawn` for that).
    public init(_ argv: [String], environment: [String: String] = [:]) throws(TestNetworkError) {
        precondition(!argv.isEmpty, "spawn needs a program")
        if !Self.staleDirectoriesRemoved.exchange(true, ordering: .relaxed) {
            Self.removeStaleOutputDirectories()
        }
        let directory = Self.temporaryDirectory + "/\(TestNames.processTag())-\(TestNames.next())-spawn"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .spawnFailed(argv: argv, errno: EIO)
        }
        let child = try ChildProcess.start(
            argv, stdin: .devNull,
            output: .files(stdout: directory + "/stdout", stderr: directory + "/stderr"),
            environment: environment)
        self.argv = argv
        self.pid = child.pid
        self.directory = directory
    }

    deinit {
        terminate(grace: 0.5)
        try? FileManager.default.removeItem(atPath: directory)
    }

    private static let staleDirectoriesRemoved = Atomic<Bool>(false)

    private static var temporaryDirectory: String {
        var path = NSTemporaryDirectory()
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        return path
    }

    /// Removes the output folders (`mswt-<pid>-<n>-spawn`, and Chromium's
    /// `mswt-<pid>-<n>-chromium`, in the temporary directory) of test
    /// processes that no longer run: a process object that was never
    /// released, or a killed test process, leaves its folder behind. Runs
    /// once per test process by itself, on the first spawn.
    public static func removeStaleOutputDirectories() {
        let base = temporaryDirectory
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: base) else { return }
        for name in names
        where name.hasPrefix(TestNames.namespacePrefix) && (name.hasSuffix("-spawn") || name.hasSuffix("-chromium")) {
            let parts = name.split(separator: "-")
            guard parts.count == 4, let pid = Int32(parts[1]), pid != getpid() else { continue }
            if kill(pid, 0) == 0 || errno == EPERM { continue }
            try? FileManager.default.removeItem(atPath: base + "/" + name)
        }
    }

    /// True until the program has exited.
    public var isRunning: Bool { poll() == nil }

    /// The exit status once the program has exited (128 + N for signal N).
    public var status: Int32? { poll() }

    private func poll() -> Int32? {
        exitStatus.withLock { status in
            if status == nil { status = ChildProcess.reap(pid, block: false) }
            return status
        }
    }

    /// What the program wrote so far to standard output and standard error.
    public func output() -> (stdout: String, stderr: String) {
        let out = (try? String(contentsOfFile: directory + "/stdout", encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: directory + "/stderr", encoding: .utf8)) ?? ""
        return (out, err)
    }

    /// Waits at most `timeout` seconds for the program to exit by itself.
    /// Returns its status, or nil if it is still running.
    @discardableResult
    public func wait(timeout: Double) -> Int32? {
        let clock = ContinuousClock()
        let deadline = clock.now + .milliseconds(Int64(timeout * 1000))
        while true {
            if let status = poll() { return status }
            if clock.now >= deadline { return nil }
            usleep(10_000)
        }
    }

    /// Waits at most `timeout` seconds until standard output or error
    /// contains `text` (e.g. a server's "listening" line).
    public func waitForOutput(containing text: String, timeout: Double) throws(TestNetworkError) {
        let found = TestEnvironment.waitUntil(timeout: timeout) {
            let (out, err) = output()
            return out.contains(text) || err.contains(text)
        }
        if !found {
            let (out, err) = output()
            throw .timedOut("'\(text)' from \(argv.joined(separator: " ")); stdout: \(out) stderr: \(err)")
        }
    }

    /// Stops the program: SIGTERM to its process group, up to `grace`
    /// seconds to exit, then SIGKILL. Idempotent; returns the exit status.
    @discardableResult
    public func terminate(grace: Double = 1) -> Int32 {
        if let status = poll() {
            // Leftover children of an exited program still die with the group.
            ChildProcess.killGroup(pid, leaderReaped: true)
            return status
        }
        ChildProcess.killGroup(pid, signal: SIGTERM)
        if let status = wait(timeout: grace) {
            ChildProcess.killGroup(pid, leaderReaped: true)
            return status
        }
        // Not reaped yet (wait returned nil), so signalling the pid is safe.
        ChildProcess.killGroup(pid)
        return wait(timeout: 5) ?? 137
    }
}
