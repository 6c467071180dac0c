#if canImport(Glibc)
import Glibc
#endif

/// A colour of 8 bits per channel.
public struct RGB: Sendable, Hashable, CustomStringConvertible {
    public var red: UInt8
    public var green: UInt8
    public var blue: UInt8

    public init(_ red: UInt8, _ green: UInt8, _ blue: UInt8) {
        self.red = red
        self.green = green
        self.blue = blue
    }

    /// A CSS-style hex colour, "#2b1055" or "2b1055"; nil for anything else.
    public init?(hex: String) {
        var digits = Substring(hex)
        if digits.hasPrefix("#") { digits = digits.dropFirst() }
        guard digits.count == 6, digits.allSatisfy(\.isHexDigit), let value = UInt32(digits, radix: 16) else {
            return nil
        }
        self.init(UInt8(value >> 16), UInt8((value >> 8) & 0xff), UInt8(value & 0xff))
    }

    /// Whether every channel differs from `other`'s by at most `tolerance`.
    public func isClose(to other: RGB, tolerance: Int) -> Bool {
        abs(Int(red) - Int(other.red)) <= tolerance
            && abs(Int(green) - Int(other.green)) <= tolerance
            && abs(Int(blue) - Int(other.blue)) <= tolerance
    }

    public var description: String {
        let hex = (UInt32(red) << 16) | (UInt32(green) << 8) | UInt32(blue)
        let digits = String(hex, radix: 16)
        return "#" + String(repeating: "0", count: 6 - digits.count) + digits
    }
}

/// How many pixels of an image have (about) a given colour.
public struct ColourCount: Sendable, Equatable, CustomStringConvertible {
    /// Every pixel of the image (width × height).
    public var total: Int
    /// The pixels within the tolerance of the colour.
    public var matching: Int

    public init(total: Int, matching: Int) {
        self.total = total
        self.matching = matching
    }

    /// `matching / total` (0 for an empty image).
    public var fraction: Double { total == 0 ? 0 : Double(matching) / Double(total) }

    public var description: String {
        let percent = (fraction * 1000).rounded() / 10
        return "\(matching) of \(total) pixels (\(percent)%)"
    }
}

/// A decoded PNG image as 8-bit RGBA, for checking what a screenshot shows.
///
/// Reads what screenshots are made of: bit depth 8, colour types 0 (grey),
/// 2 (RGB), 4 (grey + alpha) and 6 (RGBA), no interlacing, every filter
/// type (0–4). Checks chunk CRCs; ignores ancillary chunks (gamma, colour
/// profiles: the pixel values are taken as they are stored). Anything else
/// throws `.badImage`.
///
/// The zlib stream is inflated by the system's zlib (`libz.so.1`, opened at
/// run time: Debian's zlib1g is always installed, and Swift's standard
/// library has no inflate).
///
/// ```swift
/// let shot = try Chromium.screenshot(url: "http://127.0.0.1:\(port)/")
/// let count = try PNGImage(png: shot.png).count(of: RGB(hex: "#2b1055")!, tolerance: 2)
/// #expect(count.fraction > 0.5, "\(count)")
/// ```
public struct PNGImage: Sendable {
    /// Pixels per row.
    public let width: Int
    /// Rows.
    public let height: Int
    /// `width * height * 4` bytes, row by row from the top: red, green,
    /// blue, alpha (255 where the image has no alpha channel).
    public let rgba: [UInt8]

    /// The largest image decoded (pixels); screenshots are far smaller.
    public static let maximumPixels = 1 << 26

    /// Decodes PNG file contents.
    public init(png bytes: [UInt8]) throws(TestNetworkError) {
        let header = try PNGChunks(bytes)
        let raw = try Zlib.uncompress(header.imageData, expectedCount: header.height * (1 + header.rowBytes))
        let pixels = try Self.unfilter(raw, header: header)
        width = header.width
        height = header.height
        rgba = Self.expandToRGBA(pixels, channels: header.channels, pixelCount: header.width * header.height)
    }

    /// Decodes the PNG file at `path`.
    public init(contentsOfFile path: String) throws(TestNetworkError) {
        guard let bytes = readWholeFile(path) else { throw .badImage("cannot read \(path)") }
        try self.init(png: bytes)
    }

    /// The colour of the pixel in column `x`, row `y` (alpha dropped).
    public func pixel(x: Int, y: Int) -> RGB {
        precondition(x >= 0 && x < width && y >= 0 && y < height, "pixel (\(x), \(y)) outside the image")
        let offset = (y * width + x) * 4
        return RGB(rgba[offset], rgba[offset + 1], rgba[offset + 2])
    }

    /// How many pixels are within `tolerance` (per channel) of `colour`.
    /// Alpha is ignored: screenshots are opaque.
    public func count(of colour: RGB, tolerance: Int = 2) -> ColourCount {
        let r = Int(colour.red), g = Int(colour.green), b = Int(colour.blue)
        var matching = 0
        rgba.withUnsafeBufferPointer { p in
            var offset = 0
            while offset < p.count {
                if abs(Int(p[offset]) - r) <= tolerance && abs(Int(p[offset + 1]) - g) <= tolerance
                    && abs(Int(p[offset + 2]) - b) <= tolerance {
                    matching += 1
                }
                offset += 4
            }
        }
        return ColourCount(total: width * height, matching: matching)
    }

    /// The colours that cover the most pixels, most frequent first: what a
    /// failing check actually saw.
    public func dominantColours(_ limit: Int = 3) -> [(colour: RGB, count: Int)] {
        var counts: [UInt32: Int] = [:]
        rgba.withUnsafeBufferPointer { p in
            var offset = 0
            while offset < p.count {
                let key = (UInt32(p[offset]) << 16) | (UInt32(p[offset + 1]) << 8) | UInt32(p[offset + 2])
                counts[key, default: 0] += 1
                offset += 4
            }
        }
        return counts.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }
            .prefix(limit)
            .map { (RGB(UInt8($0.key >> 16), UInt8(($0.key >> 8) & 0xff), UInt8($0.key & 0xff)), $0.value) }
    }

    // MARK: Decoding steps

    /// Reverses the per-row filters (PNG spec §9): each row starts with
    /// its filter type; bytes are predicted from the left (a), above (b)
    /// and upper-left (c) bytes of the same channel.
    private static func unfilter(_ raw: [UInt8], header: PNGChunks) throws(TestNetworkError) -> [UInt8] {
        let stride = header.rowBytes
        let bpp = header.channels
        var out = [UInt8](repeating: 0, count: header.height * stride)
        var badFilter: UInt8?
        raw.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                for y in 0..<header.height {
                    let filter = input[y * (stride + 1)]
                    let source = y * (stride + 1) + 1
                    let row = y * stride
                    let above = row - stride
                    switch filter {
                    case 0:
                        for i in 0..<stride { output[row + i] = input[source + i] }
                    case 1:
                        for i in 0..<stride {
                            let a = i >= bpp ? output[row + i - bpp] : 0
                            output[row + i] = input[source + i] &+ a
                        }
                    case 2:
                        for i in 0..<stride {
                            let b = y > 0 ? output[above + i] : 0
                            output[row + i] = input[source + i] &+ b
                        }
                    case 3:
                        for i in 0..<stride {
                            let a = i >= bpp ? Int(output[row + i - bpp]) : 0
                            let b = y > 0 ? Int(output[above + i]) : 0
                            output[row + i] = input[source + i] &+ UInt8((a + b) / 2)
                        }
                    case 4:
                        for i in 0..<stride {
                            let a = i >= bpp ? output[row + i - bpp] : 0
                            let b = y > 0 ? output[above + i] : 0
                            let c = i >= bpp && y > 0 ? output[above + i - bpp] : 0
                            output[row + i] = input[source + i] &+ paeth(a, b, c)
                        }
                    default:
                        badFilter = filter
                        return
                    }
                }
            }
        }
        if let badFilter { throw .badImage("unknown PNG filter type \(badFilter)") }
        return out
    }

    /// The Paeth predictor: whichever of a, b, c is closest to a + b - c.
    static func paeth(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> UInt8 {
        let p = Int(a) + Int(b) - Int(c)
        let pa = abs(p - Int(a)), pb = abs(p - Int(b)), pc = abs(p - Int(c))
        if pa <= pb && pa <= pc { return a }
        return pb <= pc ? b : c
    }

    private static func expandToRGBA(_ pixels: [UInt8], channels: Int, pixelCount: Int) -> [UInt8] {
        if channels == 4 { return pixels }
        var out = [UInt8](repeating: 255, count: pixelCount * 4)
        pixels.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                for i in 0..<pixelCount {
                    switch channels {
                    case 1:
                        o[i * 4] = p[i]; o[i * 4 + 1] = p[i]; o[i * 4 + 2] = p[i]
                    case 2:
                        o[i * 4] = p[i * 2]; o[i * 4 + 1] = p[i * 2]; o[i * 4 + 2] = p[i * 2]
                        o[i * 4 + 3] = p[i * 2 + 1]
                    default:
                        o[i * 4] = p[i * 3]; o[i * 4 + 1] = p[i * 3 + 1]; o[i * 4 + 2] = p[i * 3 + 2]
                    }
                }
            }
        }
        return out
    }
}

/// The parts of a PNG file the decoder needs: IHDR fields and the
/// concatenated IDAT data.
struct PNGChunks {
    var width = 0
    var height = 0
    /// Bytes per pixel at bit depth 8: 1, 2, 3 or 4.
    var channels = 0
    var imageData: [UInt8] = []

    var rowBytes: Int { width * channels }

    static let signature: [UInt8] = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]

    init(_ bytes: [UInt8]) throws(TestNetworkError) {
        guard bytes.count >= 8, Array(bytes[0..<8]) == Self.signature else {
            throw .badImage("no PNG signature (\(bytes.count) bytes)")
        }
        var offset = 8
        var sawHeader = false
        var sawEnd = false
        while offset + 12 <= bytes.count {
            let length = Int(Self.bigEndian32(bytes, offset))
            let typeBytes = Array(bytes[offset + 4..<offset + 8])
            let type = String(decoding: typeBytes, as: UTF8.self)
            guard length <= bytes.count - offset - 12 else { throw .badImage("chunk \(type) runs past the end") }
            let dataStart = offset + 8
            let stored = Self.bigEndian32(bytes, dataStart + length)
            let computed = CRC32.checksum(bytes[offset + 4..<dataStart + length])
            guard stored == computed else { throw .badImage("chunk \(type): CRC mismatch") }
            let data = bytes[dataStart..<dataStart + length]
            switch type {
            case "IHDR":
                guard !sawHeader, length == 13 else { throw .badImage("bad IHDR") }
                sawHeader = true
                width = Int(Self.bigEndian32(bytes, dataStart))
                height = Int(Self.bigEndian32(bytes, dataStart + 4))
                let depth = bytes[dataStart + 8], colourType = bytes[dataStart + 9]
                let compression = bytes[dataStart + 10], filterMethod = bytes[dataStart + 11]
                let interlace = bytes[dataStart + 12]
                guard depth == 8 else { throw .badImage("bit depth \(depth) (only 8 is read)") }
                switch colourType {
                case 0: channels = 1
                case 2: channels = 3
                case 4: channels = 2
                case 6: channels = 4
                default: throw .badImage("colour type \(colourType) (only 0, 2, 4, 6 are read)")
                }
                guard compression == 0, filterMethod == 0 else { throw .badImage("unknown compression/filter method") }
                guard interlace == 0 else { throw .badImage("interlaced PNG (not read)") }
                guard width > 0, height > 0, width <= PNGImage.maximumPixels / height else {
                    throw .badImage("size \(width)×\(height)")
                }
            case "IDAT":
                guard sawHeader else { throw .badImage("IDAT before IHDR") }
                imageData.append(contentsOf: data)
            case "IEND":
                sawEnd = true
            default:
                // Bit 5 of the first letter clear (upper case): critical.
                guard typeBytes[0] & 0x20 != 0 else { throw .badImage("critical chunk \(type) (not read)") }
            }
            offset = dataStart + length + 4
            if sawEnd { break }
        }
        guard sawHeader, sawEnd, !imageData.isEmpty else { throw .badImage("missing IHDR, IDAT or IEND") }
    }

    static func bigEndian32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        (UInt32(bytes[offset]) << 24) | (UInt32(bytes[offset + 1]) << 16)
            | (UInt32(bytes[offset + 2]) << 8) | UInt32(bytes[offset + 3])
    }
}

/// CRC-32 (ISO 3309, as PNG and zlib's crc32 use it).
public enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xedb8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var c: UInt32 = 0xffff_ffff
        for byte in bytes { c = table[Int((c ^ UInt32(byte)) & 0xff)] ^ (c >> 8) }
        return c ^ 0xffff_ffff
    }
}

/// The system zlib, opened at run time.
enum Zlib {
    private typealias Uncompress = @convention(c) (
        UnsafeMutablePointer<UInt8>, UnsafeMutablePointer<UInt>, UnsafePointer<UInt8>, UInt
    ) -> Int32

    /// `uncompress` from libz.so.1, or nil when the library is missing.
    private static func uncompressFunction() -> Uncompress? {
        // dlopen is reference counted and cheap after the first call.
        guard let handle = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL) ?? dlopen("libz.so", RTLD_NOW | RTLD_LOCAL),
              let symbol = dlsym(handle, "uncompress")
        else { return nil }
        return unsafeBitCast(symbol, to: Uncompress.self)
    }

    /// Inflates a whole zlib stream that must come to exactly `expectedCount` bytes.
    static func uncompress(_ compressed: [UInt8], expectedCount: Int) throws(TestNetworkError) -> [UInt8] {
        guard let function = uncompressFunction() else { throw .badImage("libz.so.1 not found (zlib1g)") }
        // One spare byte: a stream longer than expected fails with Z_BUF_ERROR
        // or shows up as a count mismatch, never as silent truncation.
        var out = [UInt8](repeating: 0, count: expectedCount + 1)
        var outCount = UInt(out.count)
        let rc = out.withUnsafeMutableBufferPointer { o in
            compressed.withUnsafeBufferPointer { i in
                function(o.baseAddress!, &outCount, i.baseAddress!, UInt(i.count))
            }
        }
        guard rc == 0 else { throw .badImage("zlib uncompress failed (\(rc))") }
        guard Int(outCount) == expectedCount else {
            throw .badImage("image data inflates to \(outCount) bytes, expected \(expectedCount)")
        }
        out.removeLast()
        return out
    }
}

/// The whole file at `path`, or nil.
func readWholeFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n >= 0 else { return nil }
        if n == 0 { return bytes }
        bytes.append(contentsOf: buffer[0..<n])
    }
}
