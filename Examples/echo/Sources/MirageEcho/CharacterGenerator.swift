/// The RFC 864 character generator pattern: lines of 72 printing ASCII
/// characters (0x20 through 0x7E, taken in rotation), each line starting one
/// character later than the one before, ended by CR LF.
///
/// The stream is periodic: after 95 lines (one per starting character) it
/// repeats, so a server keeps one period (plus a write's worth of overlap)
/// and writes slices of it.
public enum CharacterGenerator {
    /// RFC 864: "72 chars per line" is the suggested line length.
    public static let lineLength = 72
    /// The line plus CR LF.
    public static let lineStride = lineLength + 2
    /// The first printing ASCII character (space), RFC 864 "the 95 printing characters".
    public static let firstCharacter: UInt8 = 0x20
    /// How many printing characters rotate (0x20 through 0x7E).
    public static let characterCount = 95
    /// Length of one full period of the stream in bytes (95 lines).
    public static let period = characterCount * lineStride

    /// The byte at `position` (counted from 0) of the stream.
    public static func byte(at position: UInt64) -> UInt8 {
        let line = position / UInt64(lineStride)
        let column = Int(position % UInt64(lineStride))
        if column == lineLength { return 0x0D }
        if column == lineLength + 1 { return 0x0A }
        let index = (line + UInt64(column)) % UInt64(characterCount)
        return firstCharacter + UInt8(index)
    }

    /// The stream from position 0, `count` bytes long.
    public static func bytes(count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(max(count, 0))
        var line = 0
        var column = 0
        for _ in 0..<max(count, 0) {
            if column < lineLength {
                out.append(firstCharacter + UInt8((line + column) % characterCount))
            } else {
                out.append(column == lineLength ? 0x0D : 0x0A)
            }
            column += 1
            if column == lineStride {
                column = 0
                line = line + 1 == characterCount ? 0 : line + 1
            }
        }
        return out
    }
}
