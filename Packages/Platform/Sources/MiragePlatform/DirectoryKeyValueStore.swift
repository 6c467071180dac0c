import Glibc
import MirageDevices

/// A `KeyValueStore` reading the files under a directory, for development:
/// edit a file and the next read sees it, where a `CompiledKeyValueStore`
/// needs a rebuild. Keys are paths relative to the root, `/`-separated.
///
/// Keys that could reach outside the root name no entry (`keyNotFound`):
/// - a key must be a clean relative path: not empty, not starting with
///   `/`, no empty, `.` or `..` component, no NUL;
/// - no component may start with `.`, so `.git` and other dot files are not
///   served (the same rule as `mirage-crunch`);
/// - the path is resolved with `realpath(3)`, and must still lie inside the
///   root's own resolved path: a symbolic link to a file inside the root is
///   followed, one leading outside is refused; the resolved path is then
///   opened with `O_NOFOLLOW`;
/// - only regular files are values (no directories, FIFOs or devices).
/// Resolving and opening are two steps, so someone who can rename things
/// inside the root while the server runs could race them; this store is for
/// serving your own working copy, not a directory others write to.
///
/// `lastModified(of:)` is the file's mtime; `digest(of:)` is
/// `ContentDigest` of its bytes, read anew on each call (the same value a
/// `CompiledKeyValueStore` of the same file gives).
public final class DirectoryKeyValueStore: KeyValueStore {
    /// The root directory, resolved (absolute, no symbolic links).
    public let root: String

    /// A store over the files under `root`. Throws `system(call: "realpath"…)`
    /// when it cannot be resolved, and `invalidArgument` when it is not a directory.
    public init(root: String) throws(DeviceError) {
        guard let resolved = Self.resolve(root) else { throw .system(call: "realpath", errno: errno) }
        var info = stat()
        guard stat(resolved, &info) == 0 else { throw .system(call: "stat", errno: errno) }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw .invalidArgument("\(root) is not a directory") }
        self.root = resolved
    }

    public func keys(withPrefix prefix: String) -> [String] {
        var out: [String] = []
        collect(directory: root, keyPrefix: "", depth: 0, into: &out)
        return out.filter { $0.hasPrefix(prefix) }.sorted()
    }

    public func size(of key: String) throws(DeviceError) -> Int {
        let file = try open(key)
        defer { FileDescriptor.close(file.fd) }
        return file.size
    }

    public func read<R>(_ key: String, offset: Int, length: Int, _ body: (Span<UInt8>) -> R) throws(DeviceError) -> R {
        let file = try open(key)
        defer { FileDescriptor.close(file.fd) }
        guard offset >= 0, length >= 0, offset <= file.size, length <= file.size - offset else {
            throw .outOfRange(offset: offset, length: length, size: file.size)
        }
        var buffer = [UInt8](repeating: 0, count: length)
        let got = try Self.readFully(file.fd, into: &buffer, at: offset)
        // The file shrank since fstat: report the range as it is now.
        guard got == length else { throw .outOfRange(offset: offset, length: length, size: offset + got) }
        return body(buffer.span)
    }

    /// The file's modification time; nil for a key with no file.
    public func lastModified(of key: String) -> WallTime? {
        do throws(DeviceError) {
            let file = try open(key)
            FileDescriptor.close(file.fd)
            return file.modified
        } catch {
            return nil
        }
    }

    /// `ContentDigest` of the file's bytes, read now; nil for a key with no file.
    public func digest(of key: String) -> String? {
        do throws(DeviceError) {
            let bytes = try value(of: key)
            return ContentDigest.of(bytes)
        } catch {
            return nil
        }
    }

    // MARK: - Keys and paths

    /// Whether `key` is a clean relative path with no dot components.
    static func isAcceptable(_ key: String) -> Bool {
        guard !key.isEmpty, !key.utf8.contains(0) else { return false }
        for component in key.split(separator: "/", omittingEmptySubsequences: false) {
            // Empty (a leading or doubled `/`), `.`, `..` and dot files.
            guard let first = component.utf8.first, first != UInt8(ascii: ".") else { return false }
        }
        return true
    }

    private struct OpenFile {
        var fd: Int32
        var size: Int
        var modified: WallTime
    }

    /// Opens the regular file `key` names inside the root.
    private func open(_ key: String) throws(DeviceError) -> OpenFile {
        guard Self.isAcceptable(key) else { throw .keyNotFound(key) }
        guard let resolved = Self.resolve(root + "/" + key) else {
            switch errno {
            case ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG: throw .keyNotFound(key)
            case let code: throw .system(call: "realpath", errno: code)
            }
        }
        // A symbolic link leading out of the root.
        guard resolved.hasPrefix(root == "/" ? "/" : root + "/") else { throw .keyNotFound(key) }
        // O_NONBLOCK: opening a FIFO must not wait for a writer.
        let fd = Glibc.open(resolved, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else {
            switch errno {
            case ENOENT, ELOOP: throw .keyNotFound(key)
            case let code: throw .system(call: "open", errno: code)
            }
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            FileDescriptor.close(fd)
            throw .system(call: "fstat", errno: code)
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            FileDescriptor.close(fd)
            throw .keyNotFound(key)
        }
        let modified = WallTime(seconds: Int64(info.st_mtim.tv_sec),
                                nanoseconds: UInt32(clamping: min(max(info.st_mtim.tv_nsec, 0), 999_999_999)))
        return OpenFile(fd: fd, size: Int(info.st_size), modified: modified)
    }

    /// `realpath(3)` of `path`, or nil with `errno` set.
    private static func resolve(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Reads into `buffer` from `offset` until it is full or the file ends;
    /// returns the bytes read.
    private static func readFully(_ fd: Int32, into buffer: inout [UInt8], at offset: Int) throws(DeviceError) -> Int {
        let count = buffer.count
        var done = 0
        var interrupted = 0
        while done < count {
            let n = buffer.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return pread(fd, base + done, count - done, off_t(offset + done))
            }
            if n > 0 {
                done += n
            } else if n == 0 {
                break
            } else if errno == EINTR, interrupted < FileDescriptor.maximumInterruptedRetries {
                interrupted += 1
            } else {
                throw .system(call: "pread", errno: errno)
            }
        }
        return done
    }

    /// Directory levels `keys(withPrefix:)` descends at most.
    static let maximumDepth = 32

    /// Adds the keys of the regular files under `directory` to `out`,
    /// skipping dot names and not descending into symbolic links.
    private func collect(directory: String, keyPrefix: String, depth: Int, into out: inout [String]) {
        guard depth < Self.maximumDepth, let dir = opendir(directory) else { return }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let first = name.utf8.first, first != UInt8(ascii: ".") else { continue }
            let key = keyPrefix + name
            var info = stat()
            guard lstat(directory + "/" + name, &info) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                collect(directory: directory + "/" + name, keyPrefix: key + "/", depth: depth + 1, into: &out)
            case S_IFREG:
                out.append(key)
            case S_IFLNK:
                // Listed only if reading it would work: inside the root, a file.
                if let file = try? open(key) {
                    FileDescriptor.close(file.fd)
                    out.append(key)
                }
            default:
                continue
            }
        }
    }
}
