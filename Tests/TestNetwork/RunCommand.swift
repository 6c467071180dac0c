import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs `argv` as a child process and returns its status and output.
///
/// Bounded: when `timeout` seconds pass, the child's whole process group is
/// sent SIGKILL and the result has `timedOut == true`. Output is read while
/// the child runs (no pipe can fill up). A grandchild that keeps the output
/// pipes open after the child exited is given one more second, then killed.
///
/// `argv[0]` without a slash is looked up in PATH, /usr/sbin and /sbin.
/// The child gets its own process group, stdin from `input` (or /dev/null),
/// and this process's environment plus `environment`.
///
/// Throws only when the program cannot be started; a non-zero exit is a
/// result (use `.check()` to turn it into an error).
public func runCommand(
    _ argv: [String],
    timeout: Double = 30,
    input: [UInt8]? = nil,
    environment: [String: String] = [:]
) throws(TestNetworkError) -> CommandResult {
    precondition(!argv.isEmpty, "runCommand needs a program")
    precondition(timeout > 0, "runCommand needs a positive timeout")
    let child = try ChildProcess.start(
        argv, stdin: input == nil ? .devNull : .pipe, output: .pipes, environment: environment)
    return child.collect(timeout: timeout, input: input ?? [])
}

/// A started child process and the parent ends of its pipes.
struct ChildProcess {
    enum Stdin { case devNull, pipe }
    enum Output { case pipes, files(stdout: String, stderr: String) }

    var argv: [String]
    var pid: pid_t
    var stdinFD: Int32 = -1
    var stdoutFD: Int32 = -1
    var stderrFD: Int32 = -1

    static func start(
        _ argv: [String], stdin: Stdin, output: Output, environment: [String: String]
    ) throws(TestNetworkError) -> ChildProcess {
        guard let path = TestEnvironment.toolPath(argv[0]) else { throw .toolNotFound(argv[0]) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }

        // Pipes are O_CLOEXEC so that children started concurrently by other
        // tests never inherit them (which would delay our EOF). dup2 in the
        // child clears the flag on the target descriptor only.
        var parentEnds: [Int32] = []
        var childEnds: [Int32] = []
        func makePipe() throws(TestNetworkError) -> (read: Int32, write: Int32) {
            var fds: [Int32] = [-1, -1]
            guard GNU.pipeCloseOnExec(&fds) == 0 else {
                let code = errno
                for fd in parentEnds + childEnds { close(fd) }
                throw .spawnFailed(argv: argv, errno: code)
            }
            return (fds[0], fds[1])
        }

        var child = ChildProcess(argv: argv, pid: 0)
        switch stdin {
        case .devNull:
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        case .pipe:
            let p = try makePipe()
            child.stdinFD = p.write
            parentEnds.append(p.write)
            childEnds.append(p.read)
            posix_spawn_file_actions_adddup2(&actions, p.read, 0)
        }
        switch output {
        case .pipes:
            let out = try makePipe()
            child.stdoutFD = out.read
            parentEnds.append(out.read)
            childEnds.append(out.write)
            posix_spawn_file_actions_adddup2(&actions, out.write, 1)
            let err = try makePipe()
            child.stderrFD = err.read
            parentEnds.append(err.read)
            childEnds.append(err.write)
            posix_spawn_file_actions_adddup2(&actions, err.write, 2)
        case .files(let stdoutPath, let stderrPath):
            posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        }

        // After the dup2s: the child closes every descriptor above 2, also
        // any that a concurrent non-CLOEXEC open in another thread leaked.
        GNU.addCloseFrom(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Own process group, so a timeout can kill the child and everything
        // it started; default signal handling (the test runner ignores SIGPIPE).
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        let envStrings = env.map { "\($0.key)=\($0.value)" }

        let cArgv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let cEnv: [UnsafeMutablePointer<CChar>?] = envStrings.map { strdup($0) } + [nil]
        defer {
            for pointer in cArgv { free(pointer) }
            for pointer in cEnv { free(pointer) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attributes, cArgv, cEnv)
        for fd in childEnds { close(fd) }
        guard rc == 0 else {
            for fd in parentEnds { close(fd) }
            throw .spawnFailed(argv: argv, errno: rc)
        }
        child.pid = pid
        return child
    }

    /// Reads output and feeds input until the child exits and its pipes
    /// close, or `timeout` seconds pass (then the process group is killed).
    func collect(timeout: Double, input: [UInt8]) -> CommandResult {
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start + .milliseconds(Int64(timeout * 1000))
        var out: [UInt8] = []
        var err: [UInt8] = []
        var stdinFD = self.stdinFD
        var stdoutFD = self.stdoutFD
        var stderrFD = self.stderrFD
        var inputOffset = 0
        var exitStatus: Int32?
        var exitedAt: ContinuousClock.Instant?
        var timedOut = false
        var killedAt: ContinuousClock.Instant?

        if stdinFD >= 0 {
            _ = fcntl(stdinFD, F_SETFL, fcntl(stdinFD, F_GETFL) | O_NONBLOCK)
            if input.isEmpty { close(stdinFD); stdinFD = -1 }
        }
        var buffer = [UInt8](repeating: 0, count: 65536)

        while true {
            if exitStatus == nil, let status = Self.reap(pid, block: false) {
                exitStatus = status
                exitedAt = clock.now
            }
            if exitStatus != nil && stdoutFD < 0 && stderrFD < 0 { break }
            let now = clock.now
            if exitStatus == nil && now >= deadline && killedAt == nil {
                timedOut = true
                Self.killGroup(pid)
                killedAt = now
            }
            if let killedAt, exitStatus == nil, now - killedAt > .seconds(5) {
                // SIGKILL did not take (uninterruptible sleep): stop waiting.
                exitStatus = 137
                break
            }
            if let exitedAt, now - exitedAt > .seconds(1) {
                // The child is gone but something it started still holds the
                // pipes open: kill the rest of its process group and stop.
                Self.killGroup(pid, leaderReaped: true)
                break
            }

            var pollSet: [pollfd] = []
            if stdoutFD >= 0 { pollSet.append(pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)) }
            if stderrFD >= 0 { pollSet.append(pollfd(fd: stderrFD, events: Int16(POLLIN), revents: 0)) }
            if stdinFD >= 0 { pollSet.append(pollfd(fd: stdinFD, events: Int16(POLLOUT), revents: 0)) }
            // Short slices: child exit is noticed by waitpid, not by poll.
            _ = poll(&pollSet, nfds_t(pollSet.count), 20)

            for entry in pollSet where entry.revents != 0 {
                if entry.fd == stdinFD {
                    let written = input.withUnsafeBytes { raw in
                        write(stdinFD, raw.baseAddress! + inputOffset, input.count - inputOffset)
                    }
                    if written > 0 { inputOffset += written }
                    if (written < 0 && errno != EAGAIN && errno != EINTR) || inputOffset >= input.count {
                        close(stdinFD)
                        stdinFD = -1
                    }
                    continue
                }
                let count = buffer.withUnsafeMutableBytes { raw in read(entry.fd, raw.baseAddress!, raw.count) }
                if count > 0 {
                    if entry.fd == stdoutFD {
                        out.append(contentsOf: buffer[0..<count])
                    } else {
                        err.append(contentsOf: buffer[0..<count])
                    }
                } else if count == 0 || (errno != EAGAIN && errno != EINTR) {
                    close(entry.fd)
                    if entry.fd == stdoutFD { stdoutFD = -1 } else { stderrFD = -1 }
                }
            }
        }
        for fd in [stdinFD, stdoutFD, stderrFD] where fd >= 0 { close(fd) }
        if exitStatus == nil { exitStatus = Self.reap(pid, block: true) ?? 137 }
        return CommandResult(
            argv: argv, status: exitStatus ?? 137, stdoutBytes: out, stderrBytes: err, timedOut: timedOut)
    }

    /// Sends `signal` to the process group led by `pid`, and to `pid` itself
    /// (in case it moved to another group) while it is not yet reaped: a
    /// reaped pid may already belong to an unrelated process.
    static func killGroup(_ pid: pid_t, signal: Int32 = SIGKILL, leaderReaped: Bool = false) {
        guard pid > 0 else { return }
        _ = kill(-pid, signal)
        if !leaderReaped { _ = kill(pid, signal) }
    }

    /// `waitpid` for one child; returns its status (128 + N when killed by
    /// signal N, -1 when unknown), or nil when it has not exited yet.
    static func reap(_ pid: pid_t, block: Bool) -> Int32? {
        var raw: Int32 = 0
        while true {
            let rc = waitpid(pid, &raw, block ? 0 : WNOHANG)
            if rc == pid { break }
            if rc < 0 && errno == EINTR { continue }
            // ECHILD: reaped elsewhere; it has exited, status unknown.
            if rc < 0 && errno == ECHILD { return -1 }
            return nil
        }
        let signal = raw & 0x7f
        if signal == 0 { return (raw >> 8) & 0xff }
        return 128 + signal
    }
}

/// glibc functions that Swift's Glibc module hides behind _GNU_SOURCE,
/// looked up at run time.
enum GNU {
    private typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    /// `pipe2(fds, O_CLOEXEC)`, or `pipe` + `FD_CLOEXEC` where pipe2 is absent.
    static func pipeCloseOnExec(_ fds: UnsafeMutablePointer<Int32>) -> Int32 {
        if let symbol = dlsym(nil, "pipe2") {
            return unsafeBitCast(symbol, to: Pipe2.self)(fds, O_CLOEXEC)
        }
        guard pipe(fds) == 0 else { return -1 }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        return 0
    }

    /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34+), when present.
    static func addCloseFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ from: Int32) {
        if let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: CloseFrom.self)(actions, from)
        }
    }
}
