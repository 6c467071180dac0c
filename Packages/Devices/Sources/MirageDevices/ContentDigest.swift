/// A short fingerprint of a value's bytes: what `KeyValueStore.digest(of:)`
/// returns for stores that hash their contents, and what an HTTP server
/// can quote as a strong entity tag.
///
/// It is 64-bit FNV-1a, printed as 16 lowercase hex digits. It detects
/// change, nothing more: it is not a cryptographic hash, and someone who
/// controls the content can make two values collide. The stores' contents
/// come from the program's own author, so that is acceptable here.
public enum ContentDigest {
    /// The digest of `bytes`.
    public static func of(_ bytes: Span<UInt8>) -> String {
        var hash: UInt64 = offsetBasis
        for i in bytes.indices {
            hash = (hash ^ UInt64(bytes[i])) &* prime
        }
        return hex(hash)
    }

    /// The digest of `bytes`.
    public static func of(_ bytes: [UInt8]) -> String { of(bytes.span) }

    // FNV-1a parameters for 64 bits (draft-eastlake-fnv, §2.1 and §6.1).
    private static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    private static let prime: UInt64 = 0x100_0000_01b3

    private static func hex(_ value: UInt64) -> String {
        let digits: StaticString = "0123456789abcdef"
        var out = [UInt8]()
        out.reserveCapacity(16)
        var shift: UInt64 = 60
        while true {
            let nibble = Int((value >> shift) & 0xf)
            out.append(digits.utf8Start[nibble])
            if shift == 0 { break }
            shift -= 4
        }
        return String(decoding: out, as: UTF8.self)
    }
}
