/// A read-only key-value store: the files a unikernel serves (compiled into
/// the image, read from a block device, or from a directory on Linux).
///
/// Keys are relative paths with `/` separators (`index.html`,
/// `slides/2.html`). Besides the bytes, a store may know two facts about a
/// value that an HTTP server turns into `Last-Modified` and `ETag`:
/// `lastModified(of:)` and `digest(of:)`. Both are requirements with a
/// default implementation returning nil, so a store that does not know
/// need not say anything, and a server generic over `some KeyValueStore`
/// still reaches the store's own implementation (no dynamic cast, which
/// Embedded Swift lacks for protocols).
public protocol KeyValueStore: AnyObject {
    /// The keys, sorted, that start with `prefix`.
    func keys(withPrefix prefix: String) -> [String]
    /// The size in bytes of the value of `key`.
    func size(of key: String) throws(DeviceError) -> Int
    /// Reads `length` bytes at `offset` of the value of `key` and passes
    /// them, borrowed, to `body`. Throws `keyNotFound` or `outOfRange`.
    func read<R>(_ key: String, offset: Int, length: Int, _ body: (Span<UInt8>) -> R) throws(DeviceError) -> R
    /// When the value of `key` last changed; nil when the store does not
    /// know, or has no such key. Default: nil.
    func lastModified(of key: String) -> WallTime?
    /// A string that changes whenever the value of `key` changes, such as
    /// `ContentDigest` of its bytes (usable as a strong HTTP entity tag);
    /// nil when the store does not know, or has no such key. Default: nil.
    func digest(of key: String) -> String?
}

extension KeyValueStore {
    /// Nil: this store keeps no modification times.
    public func lastModified(of key: String) -> WallTime? { nil }
    /// Nil: this store keeps no digests.
    public func digest(of key: String) -> String? { nil }

    /// The whole value of `key`, copied.
    public func value(of key: String) throws(DeviceError) -> [UInt8] {
        let n = try size(of: key)
        return try read(key, offset: 0, length: n) { span in
            var out = [UInt8]()
            out.reserveCapacity(span.count)
            for i in span.indices { out.append(span[i]) }
            return out
        }
    }
}

/// A `KeyValueStore` held in memory: for tests, and for files compiled into
/// a program.
public final class MemoryKeyValueStore: KeyValueStore {
    private var entries: [String: [UInt8]]

    /// A store with these entries.
    public init(_ entries: [String: [UInt8]] = [:]) { self.entries = entries }

    /// Adds or replaces an entry.
    public func set(_ key: String, _ value: [UInt8]) { entries[key] = value }

    public func keys(withPrefix prefix: String) -> [String] {
        entries.keys.filter { $0.hasPrefix(prefix) }.sorted()
    }

    public func size(of key: String) throws(DeviceError) -> Int {
        guard let v = entries[key] else { throw .keyNotFound(key) }
        return v.count
    }

    public func read<R>(_ key: String, offset: Int, length: Int, _ body: (Span<UInt8>) -> R) throws(DeviceError) -> R {
        guard let v = entries[key] else { throw .keyNotFound(key) }
        guard offset >= 0, length >= 0, offset <= v.count, length <= v.count - offset else {
            throw .outOfRange(offset: offset, length: length, size: v.count)
        }
        return body(v.span.extracting(offset..<(offset + length)))
    }

    /// `ContentDigest` of the value, computed on each call.
    public func digest(of key: String) -> String? {
        entries[key].map { ContentDigest.of($0) }
    }
}

/// A console: where a program's log lines go (stderr on Linux, the serial
/// port or Xen console on a unikernel).
public protocol Console: AnyObject {
    /// Writes `line` followed by a newline.
    func log(_ line: String)
}

/// A console that keeps its lines, for tests.
public final class MemoryConsole: Console {
    /// Lines written so far.
    public private(set) var lines: [String] = []
    /// A console with no lines.
    public init() {}
    public func log(_ line: String) { lines.append(line) }
}
