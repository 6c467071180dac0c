/// One file of a `CompiledKeyValueStore`, as `mirage-crunch` writes it into
/// generated Swift: the bytes are base64 in a `StaticString`, because the
/// compiler takes a long string literal in its stride where a long
/// `[UInt8]` literal costs it minutes.
public struct CompiledFile: Sendable {
    /// The key, a relative path such as `slides/2.html`.
    public var key: StaticString
    /// The value, canonical padded base64 (RFC 4648 §4).
    public var base64: StaticString
    /// When the file last changed, in whole seconds since the Unix epoch;
    /// nil when the generator was told not to record it.
    public var lastModified: Int64?

    /// A file entry.
    public init(_ key: StaticString, base64: StaticString, lastModified: Int64? = nil) {
        self.key = key
        self.base64 = base64
        self.lastModified = lastModified
    }
}

/// A read-only `KeyValueStore` whose files are compiled into the program:
/// a unikernel has no file system. `mirage-crunch` (and its SwiftPM build
/// plugin) turns a folder into a table of `CompiledFile`s.
///
/// Every value is decoded from base64 once, when the store is made, and
/// `ContentDigest` of it is computed then too, so reads never decode and
/// `digest(of:)` is free. Make the store once at start-up and keep it.
public final class CompiledKeyValueStore: KeyValueStore {
    private struct Entry {
        var bytes: [UInt8]
        var lastModified: WallTime?
        var digest: String
    }

    /// The keys, sorted.
    private let sortedKeys: [String]
    private let entries: [String: Entry]

    /// Decodes `files`. A malformed table is a bug in the program (the
    /// generator writes valid base64 and distinct keys), so it stops the
    /// program with a message naming the key; use `init(checking:)` to get
    /// an error instead.
    public convenience init(_ files: [CompiledFile]) {
        switch Self.decode(files) {
        case .decoded(let entries):
            self.init(entries: entries)
        case .failed(let key, .invalidBase64(let offset)):
            preconditionFailure("compiled key-value store: the value of \(key) is not base64 (at offset \(offset))")
        case .failed(let key, _):
            preconditionFailure("compiled key-value store: key \(key) given twice")
        }
    }

    /// Decodes `files`; throws `invalidBase64(offset:)` for a malformed
    /// value and `invalidArgument` (naming the key) for a key given twice.
    public convenience init(checking files: [CompiledFile]) throws(DeviceError) {
        switch Self.decode(files) {
        case .decoded(let entries): self.init(entries: entries)
        case .failed(_, let error): throw error
        }
    }

    private init(entries: [String: Entry]) {
        self.entries = entries
        self.sortedKeys = entries.keys.sorted()
    }

    /// The number of files.
    public var count: Int { sortedKeys.count }

    public func keys(withPrefix prefix: String) -> [String] {
        prefix.isEmpty ? sortedKeys : sortedKeys.filter { $0.hasPrefix(prefix) }
    }

    public func size(of key: String) throws(DeviceError) -> Int {
        guard let entry = entries[key] else { throw .keyNotFound(key) }
        return entry.bytes.count
    }

    public func read<R>(_ key: String, offset: Int, length: Int, _ body: (Span<UInt8>) -> R) throws(DeviceError) -> R {
        guard let entry = entries[key] else { throw .keyNotFound(key) }
        let size = entry.bytes.count
        guard offset >= 0, length >= 0, offset <= size, length <= size - offset else {
            throw .outOfRange(offset: offset, length: length, size: size)
        }
        return body(entry.bytes.span.extracting(offset..<(offset + length)))
    }

    /// The time the generator recorded for `key`, if any.
    public func lastModified(of key: String) -> WallTime? { entries[key]?.lastModified }

    /// `ContentDigest` of the value of `key`, computed when the store was made.
    public func digest(of key: String) -> String? { entries[key]?.digest }

    // MARK: - Decoding

    private enum Decoded {
        case decoded([String: Entry])
        case failed(key: String, DeviceError)
    }

    private static func decode(_ files: [CompiledFile]) -> Decoded {
        var entries = [String: Entry](minimumCapacity: files.count)
        for file in files {
            let key = file.key.withUTF8Buffer { String(decoding: $0, as: UTF8.self) }
            let bytes: [UInt8]
            do throws(DeviceError) {
                bytes = try Base64.decode(file.base64)
            } catch {
                return .failed(key: key, error)
            }
            let time = file.lastModified.map { WallTime(seconds: $0, nanoseconds: 0) }
            let entry = Entry(bytes: bytes, lastModified: time, digest: ContentDigest.of(bytes))
            guard entries.updateValue(entry, forKey: key) == nil else {
                return .failed(key: key, .invalidArgument("compiled key-value store: key \(key) given twice"))
            }
        }
        return .decoded(entries)
    }
}
