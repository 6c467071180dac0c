import MirageTestNetwork
import Testing

/// `PNGImage` against PNG files built here: uncompressed (stored) deflate
/// blocks, every filter type, the colour types screenshots use. Real,
/// compressed screenshots are decoded by ChromiumTests.
@Suite("PNGImage: decoding and colour counts")
struct PNGImageTests {
    @Test("RGB, every filter type: the pixels come back exactly", arguments: [0, 1, 2, 3, 4, -1])
    func rgbFilters(filter: Int) throws {
        // -1: a different filter on each row (0, 1, 2, 3, 4, 0, …).
        let (width, height) = (7, 6)
        let pixels = TestPNG.noise(count: width * height * 3, seed: UInt32(filter + 10))
        let png = TestPNG.encode(width: width, height: height, colourType: 2, pixels: pixels, filter: filter)
        let image = try PNGImage(png: png)
        #expect(image.width == width && image.height == height)
        #expect(image.rgba == TestPNG.rgba(fromRGB: pixels))
    }

    @Test("RGBA, grey and grey+alpha with the Paeth filter")
    func otherColourTypes() throws {
        let (width, height) = (5, 4)
        let rgba = TestPNG.noise(count: width * height * 4, seed: 3)
        let rgbaImage = try PNGImage(png: TestPNG.encode(width: width, height: height, colourType: 6, pixels: rgba, filter: 4))
        #expect(rgbaImage.rgba == rgba)

        let grey = TestPNG.noise(count: width * height, seed: 4)
        let greyImage = try PNGImage(png: TestPNG.encode(width: width, height: height, colourType: 0, pixels: grey, filter: 4))
        var greyExpected: [UInt8] = []
        for value in grey { greyExpected += [value, value, value, UInt8(255)] }
        #expect(greyImage.rgba == greyExpected)

        let greyAlpha = TestPNG.noise(count: width * height * 2, seed: 5)
        let greyAlphaImage = try PNGImage(
            png: TestPNG.encode(width: width, height: height, colourType: 4, pixels: greyAlpha, filter: 4))
        var expected: [UInt8] = []
        for offset in stride(from: 0, to: greyAlpha.count, by: 2) {
            let value = greyAlpha[offset]
            expected += [value, value, value, greyAlpha[offset + 1]]
        }
        #expect(greyAlphaImage.rgba == expected)
    }

    @Test("Stored deflate blocks longer than 64 KiB (several blocks)")
    func largeImage() throws {
        let (width, height) = (200, 150)
        let pixels = TestPNG.noise(count: width * height * 3, seed: 9)
        let image = try PNGImage(png: TestPNG.encode(width: width, height: height, colourType: 2, pixels: pixels, filter: -1))
        #expect(image.rgba == TestPNG.rgba(fromRGB: pixels))
        #expect(image.pixel(x: 199, y: 149) == RGB(pixels[pixels.count - 3], pixels[pixels.count - 2], pixels[pixels.count - 1]))
    }

    @Test("count(of:tolerance:) takes ±tolerance per channel, no more")
    func colourCount() throws {
        let deck = RGB(hex: "#2b1055")!
        // 8 pixels: exact, +2/-2 on each channel, +3 on red, white, black.
        let pixels: [UInt8] = [
            43, 16, 85, 45, 18, 87, 41, 14, 83, 45, 16, 85,
            43, 14, 87, 46, 16, 85, 255, 255, 255, 0, 0, 0,
        ]
        let image = try PNGImage(png: TestPNG.encode(width: 4, height: 2, colourType: 2, pixels: pixels, filter: 1))
        #expect(image.count(of: deck, tolerance: 2) == ColourCount(total: 8, matching: 5))
        #expect(image.count(of: deck, tolerance: 0) == ColourCount(total: 8, matching: 1))
        #expect(image.count(of: deck, tolerance: 3) == ColourCount(total: 8, matching: 6))
        #expect(image.count(of: RGB(255, 255, 255), tolerance: 2).matching == 1)
        #expect(image.count(of: deck).fraction == 5.0 / 8.0)
        #expect(image.dominantColours(1).first?.count == 1)
    }

    @Test("RGB(hex:) and its description")
    func hexColours() {
        #expect(RGB(hex: "#2b1055") == RGB(43, 16, 85))
        #expect(RGB(hex: "FFFFFF") == RGB(255, 255, 255))
        #expect(RGB(hex: "#2b105") == nil)
        #expect(RGB(hex: "#2b105g") == nil)
        #expect(RGB(hex: "#+b1055") == nil)
        #expect(RGB(43, 16, 85).description == "#2b1055")
        #expect(RGB(0, 0, 1).description == "#000001")
    }

    @Test("Not a PNG, a corrupt chunk, an unread kind: .badImage")
    func rejects() throws {
        let good = TestPNG.encode(width: 2, height: 2, colourType: 2, pixels: [UInt8](repeating: 7, count: 12), filter: 0)
        _ = try PNGImage(png: good)

        #expect(throws: TestNetworkError.self) { try PNGImage(png: Array("<html>404</html>".utf8)) }
        #expect(throws: TestNetworkError.self) { try PNGImage(png: []) }

        var flipped = good
        flipped[flipped.count - 20] ^= 0x01  // inside IDAT: the CRC no longer matches
        #expect(throws: TestNetworkError.self) { try PNGImage(png: flipped) }

        #expect(throws: TestNetworkError.self) { try PNGImage(png: Array(good.prefix(good.count - 12))) }  // no IEND

        var sixteenBit = TestPNG.header(width: 2, height: 2, depth: 16, colourType: 2)
        sixteenBit += TestPNG.chunk("IDAT", TestPNG.zlibStored([UInt8](repeating: 0, count: 2 * 13)))
        sixteenBit += TestPNG.chunk("IEND", [])
        #expect(throws: TestNetworkError.self) { try PNGImage(png: sixteenBit) }

        // A bad filter type byte.
        var badFilter = TestPNG.header(width: 1, height: 1, depth: 8, colourType: 2)
        badFilter += TestPNG.chunk("IDAT", TestPNG.zlibStored([5, 1, 2, 3]))
        badFilter += TestPNG.chunk("IEND", [])
        #expect(throws: TestNetworkError.self) { try PNGImage(png: badFilter) }

        // Too little image data for the size in IHDR.
        var short = TestPNG.header(width: 2, height: 2, depth: 8, colourType: 2)
        short += TestPNG.chunk("IDAT", TestPNG.zlibStored([0, 1, 2, 3]))
        short += TestPNG.chunk("IEND", [])
        #expect(throws: TestNetworkError.self) { try PNGImage(png: short) }
    }
}

/// A minimal PNG writer for the tests: filters as asked, stored deflate.
enum TestPNG {
    static func channels(_ colourType: UInt8) -> Int {
        switch colourType {
        case 0: 1
        case 4: 2
        case 6: 4
        default: 3
        }
    }

    /// A PNG of `pixels` (8 bits per sample). `filter` 0–4 for every row,
    /// or -1 for row y using filter y % 5.
    static func encode(width: Int, height: Int, colourType: UInt8, pixels: [UInt8], filter: Int) -> [UInt8] {
        let bpp = channels(colourType)
        let stride = width * bpp
        precondition(pixels.count == stride * height)
        var raw: [UInt8] = []
        for y in 0..<height {
            let type = filter < 0 ? y % 5 : filter
            raw.append(UInt8(type))
            for i in 0..<stride {
                let x = pixels[y * stride + i]
                let a = i >= bpp ? pixels[y * stride + i - bpp] : 0
                let b = y > 0 ? pixels[(y - 1) * stride + i] : 0
                let c = i >= bpp && y > 0 ? pixels[(y - 1) * stride + i - bpp] : 0
                let prediction: UInt8
                switch type {
                case 1: prediction = a
                case 2: prediction = b
                case 3: prediction = UInt8((Int(a) + Int(b)) / 2)
                case 4: prediction = paeth(a, b, c)
                default: prediction = 0
                }
                raw.append(x &- prediction)
            }
        }
        return header(width: width, height: height, depth: 8, colourType: colourType)
            + chunk("IDAT", zlibStored(raw)) + chunk("IEND", [])
    }

    /// Written out independently of the decoder's.
    static func paeth(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> UInt8 {
        let estimate = Int(a) + Int(b) - Int(c)
        let distances = [abs(estimate - Int(a)), abs(estimate - Int(b)), abs(estimate - Int(c))]
        if distances[0] <= distances[1] && distances[0] <= distances[2] { return a }
        if distances[1] <= distances[2] { return b }
        return c
    }

    static func header(width: Int, height: Int, depth: UInt8, colourType: UInt8) -> [UInt8] {
        [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]
            + chunk("IHDR", be32(UInt32(width)) + be32(UInt32(height)) + [depth, colourType, 0, 0, 0])
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typeAndData = Array(type.utf8) + data
        return be32(UInt32(data.count)) + typeAndData + be32(CRC32.checksum(typeAndData))
    }

    /// A zlib stream of stored (uncompressed) deflate blocks.
    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let count = min(65535, data.count - offset)
            let final: UInt8 = offset + count == data.count ? 1 : 0
            out += [final, UInt8(count & 0xff), UInt8(count >> 8), UInt8(~count & 0xff), UInt8((~count >> 8) & 0xff)]
            out += data[offset..<offset + count]
            offset += count
        } while offset < data.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in data {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        return out + be32((b << 16) | a)
    }

    static func be32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)]
    }

    static func rgba(fromRGB pixels: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        for offset in stride(from: 0, to: pixels.count, by: 3) {
            out += [pixels[offset], pixels[offset + 1], pixels[offset + 2], UInt8(255)]
        }
        return out
    }

    /// Deterministic bytes (xorshift32).
    static func noise(count: Int, seed: UInt32) -> [UInt8] {
        var state = seed | 1
        return (0..<count).map { _ in
            state ^= state << 13
            state ^= state >> 17
            state ^= state << 5
            return UInt8(truncatingIfNeeded: state)
        }
    }
}
