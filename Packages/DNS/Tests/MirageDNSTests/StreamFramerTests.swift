import MirageDNS
import Testing

/// RFC 1035 §4.2.2 / RFC 7766 §8 framing: the same messages whatever the split.
@Suite struct StreamFramerTests {
    /// Three frames: 12, 40 and 300 bytes of payload, each byte its position.
    static func stream() -> (bytes: [UInt8], messages: [[UInt8]]) {
        var bytes: [UInt8] = []
        var messages: [[UInt8]] = []
        for (n, length) in [12, 40, 300].enumerated() {
            let message = (0..<length).map { UInt8(truncatingIfNeeded: $0 &+ n * 7) }
            bytes += [UInt8(length >> 8), UInt8(length & 0xFF)] + message
            messages.append(message)
        }
        return (bytes, messages)
    }

    static func drain(_ framer: inout StreamFramer) throws -> [[UInt8]] {
        var out: [[UInt8]] = []
        while let message = try framer.next({ span in (0..<span.count).map { span[$0] } }) {
            out.append(message)
        }
        return out
    }

    @Test(arguments: [1, 2, 3, 5, 13, 14, 64, 1000])
    func everyChunkingYieldsTheSameMessages(chunk: Int) throws {
        let (bytes, messages) = Self.stream()
        var framer = StreamFramer()
        var seen: [[UInt8]] = []
        var at = 0
        while at < bytes.count {
            let end = min(at + chunk, bytes.count)
            framer.append(Array(bytes[at..<end]).span)
            seen += try Self.drain(&framer)
            at = end
        }
        #expect(seen == messages)
        #expect(framer.bufferedCount == 0 && !framer.hasMessage)
    }

    @Test func everyTwoWaySplit() throws {
        let (bytes, messages) = Self.stream()
        for split in 0...bytes.count {
            var framer = StreamFramer()
            framer.append(Array(bytes[0..<split]).span)
            var seen = try Self.drain(&framer)
            framer.append(Array(bytes[split...]).span)
            seen += try Self.drain(&framer)
            #expect(seen == messages, "split at \(split)")
        }
    }

    @Test func frameShorterThanAHeaderIsAnError() {
        var framer = StreamFramer()
        framer.append([0, 5, 1, 2, 3, 4, 5].span)
        #expect(throws: DNSError.frameTooShort(length: 5)) { _ = try framer.next { _ in 0 } }
    }

    @Test func fullOnceAWholeMaximumFrameWaits() {
        var framer = StreamFramer()
        framer.append([0xFF, 0xFF].span)
        framer.append([UInt8](repeating: 0, count: 65534).span)
        #expect(!framer.isFull && !framer.hasMessage)
        framer.append([0].span)
        #expect(framer.isFull && framer.hasMessage)
    }
}
