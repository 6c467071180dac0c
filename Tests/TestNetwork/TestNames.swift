import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Unique names for namespaces and links.
///
/// Namespaces: `mswt-<pid>-<n>`. Links: `mswt` + the pid in 5 base-36
/// digits + n in base 36 + a one-letter role, at most 15 characters
/// (IFNAMSIZ). `n` is a per-process counter, so names never collide between
/// parallel tests of one process nor between test processes; the pid in the
/// name lets `removeLeftovers` tell a dead run's leftovers from a live one's.
public enum TestNames {
    /// Prefix of every namespace the harness creates.
    public static let namespacePrefix = "mswt-"
    /// Prefix of every link (veth end, tap) the harness names.
    public static let linkPrefix = "mswt"

    private static let counter = Atomic<Int>(0)

    /// The next value of the per-process counter (starts at 1).
    public static func next() -> Int {
        counter.add(1, ordering: .relaxed).newValue
    }

    /// `mswt-<pid>`: the start of every name this process hands out.
    public static func processTag() -> String { "mswt-\(getpid())" }

    /// A new namespace name, `mswt-<pid>-<n>`.
    public static func namespaceName() -> String { "\(processTag())-\(next())" }

    /// A new link base name (14 characters at most); append one character
    /// for the role, e.g. "a"/"b" for the two ends of a veth pair, "t" for
    /// a tap. Use this for tap devices too, so that cleanup finds them.
    public static func linkBaseName() -> String {
        linkPrefix + base36(Int(getpid()), width: 5) + base36(next() % 60_466_176, width: 1)
    }

    /// The pid encoded in a harness name, when the name has one.
    public static func ownerPID(ofNamespace name: String) -> Int32? {
        guard name.hasPrefix(namespacePrefix) else { return nil }
        let parts = name.dropFirst(namespacePrefix.count).split(separator: "-")
        guard parts.count == 2, let pid = Int32(parts[0]) else { return nil }
        return pid
    }

    /// The pid encoded in a harness link name, when the name has one.
    public static func ownerPID(ofLink name: String) -> Int32? {
        guard name.hasPrefix(linkPrefix), name.count >= linkPrefix.count + 5 else { return nil }
        let digits = name.dropFirst(linkPrefix.count).prefix(5)
        guard let pid = Int32(digits, radix: 36) else { return nil }
        return pid
    }

    static func base36(_ value: Int, width: Int) -> String {
        let digits = String(value, radix: 36)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
