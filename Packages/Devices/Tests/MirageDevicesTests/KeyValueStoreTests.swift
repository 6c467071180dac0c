import MirageDevices
import Testing

@Suite struct Base64Tests {
    /// RFC 4648 §10 test vectors.
    static let vectors: [(plain: String, encoded: String)] = [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
    ]

    @Test(arguments: vectors)
    func decodesRFC4648Vectors(_ vector: (plain: String, encoded: String)) throws {
        #expect(try Base64.decode(vector.encoded) == Array(vector.plain.utf8))
    }

    @Test func decodesStaticStrings() throws {
        #expect(try Base64.decode("Zm9vYmE=" as StaticString) == Array("fooba".utf8))
        #expect(try Base64.decode("" as StaticString) == [])
    }

    @Test func decodesEveryByteValue() throws {
        // All 256 byte values, then each length 0...5 of a tail, against a
        // reference encoder written here the obvious way.
        let all = (0...255).map { UInt8($0) }
        for tail in 0...5 {
            let bytes = all + all.prefix(tail)
            #expect(try Base64.decode(referenceEncode(bytes)) == bytes)
        }
    }

    /// Non-canonical or non-base64 text, with the offset the error must name.
    static let invalid: [(text: String, offset: Int)] = [
        ("Zg=", 3),        // length not a multiple of 4: reported at the end
        ("Zm9v\n", 5),     // a trailing newline makes the length wrong
        ("Zm 9", 2),       // whitespace is outside the alphabet (§3.3)
        ("Zh==", 1),       // non-zero bits after the last byte (§3.5)
        ("Zm9=", 2),       // ditto, one padding character
        ("=Zm9", 0),       // padding first
        ("Zg==Zg==", 2),   // padding before the last quantum
        ("====", 0),
        ("A===", 1),       // three padding characters
        ("Zm9v-_==", 4),   // the URL-safe alphabet (§5) is not this one
        ("Zm9vYm\u{e9}", 6),    // a two-byte UTF-8 character
    ]

    @Test(arguments: invalid)
    func rejectsInvalidText(_ bad: (text: String, offset: Int)) {
        #expect(throws: DeviceError.invalidBase64(offset: bad.offset)) { try Base64.decode(bad.text) }
    }

    func referenceEncode(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        var out = ""
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            var group = 0
            for k in 0..<3 { group = group << 8 | (k < n ? Int(bytes[i + k]) : 0) }
            for k in 0..<4 { out.append(k <= n ? alphabet[(group >> (18 - 6 * k)) & 63] : "=") }
            i += 3
        }
        return out
    }
}

@Suite struct ContentDigestTests {
    /// FNV-1a 64 reference values (draft-eastlake-fnv test vectors).
    @Test func matchesFNV1a64Vectors() {
        #expect(ContentDigest.of([UInt8]()) == "cbf29ce484222325")
        #expect(ContentDigest.of(Array("a".utf8)) == "af63dc4c8601ec8c")
        #expect(ContentDigest.of(Array("foobar".utf8)) == "85944171f73967e8")
    }
}

@Suite struct CompiledKeyValueStoreTests {
    static let files = [
        CompiledFile("style.css", base64: "Ym9keXt9", lastModified: 1_700_000_000),        // body{}
        CompiledFile("index.html", base64: "PGgxPmhpPC9oMT4=", lastModified: 1_700_000_100), // <h1>hi</h1>
        CompiledFile("slides/2.html", base64: "Mg=="),
        CompiledFile("slides/1.html", base64: "MQ=="),
        CompiledFile("empty", base64: ""),
    ]

    @Test func listsKeysSortedByPrefix() {
        let store = CompiledKeyValueStore(Self.files)
        #expect(store.count == 5)
        #expect(store.keys(withPrefix: "") == ["empty", "index.html", "slides/1.html", "slides/2.html", "style.css"])
        #expect(store.keys(withPrefix: "slides/") == ["slides/1.html", "slides/2.html"])
        #expect(store.keys(withPrefix: "s") == ["slides/1.html", "slides/2.html", "style.css"])
        #expect(store.keys(withPrefix: "nothing") == [])
    }

    @Test func readsSizesValuesAndRanges() throws {
        let store = CompiledKeyValueStore(Self.files)
        #expect(try store.size(of: "index.html") == 11)
        #expect(try store.size(of: "empty") == 0)
        #expect(try store.value(of: "style.css") == Array("body{}".utf8))
        #expect(try store.value(of: "slides/2.html") == Array("2".utf8))
        let middle = try store.read("index.html", offset: 4, length: 2) { span in [span[0], span[1]] }
        #expect(middle == Array("hi".utf8))
        #expect(try store.read("index.html", offset: 11, length: 0) { $0.count } == 0)
        #expect(try store.read("empty", offset: 0, length: 0) { $0.count } == 0)
    }

    @Test func refusesReadsOutsideAValue() {
        let store = CompiledKeyValueStore(Self.files)
        #expect(throws: DeviceError.outOfRange(offset: 10, length: 2, size: 11)) {
            try store.read("index.html", offset: 10, length: 2) { $0.count }
        }
        #expect(throws: DeviceError.outOfRange(offset: -1, length: 1, size: 11)) {
            try store.read("index.html", offset: -1, length: 1) { $0.count }
        }
        #expect(throws: DeviceError.outOfRange(offset: 0, length: -1, size: 11)) {
            try store.read("index.html", offset: 0, length: -1) { $0.count }
        }
        #expect(throws: DeviceError.outOfRange(offset: 1, length: Int.max, size: 11)) {
            try store.read("index.html", offset: 1, length: Int.max) { $0.count }
        }
    }

    @Test func reportsMissingKeys() {
        let store = CompiledKeyValueStore(Self.files)
        #expect(throws: DeviceError.keyNotFound("slides")) { try store.size(of: "slides") }
        #expect(throws: DeviceError.keyNotFound("/index.html")) { try store.read("/index.html", offset: 0, length: 0) { _ in 0 } }
        #expect(store.lastModified(of: "missing") == nil)
        #expect(store.digest(of: "missing") == nil)
    }

    @Test func keepsModificationTimesAndDigests() {
        let store = CompiledKeyValueStore(Self.files)
        #expect(store.lastModified(of: "index.html") == WallTime(seconds: 1_700_000_100, nanoseconds: 0))
        #expect(store.lastModified(of: "slides/1.html") == nil)
        #expect(store.digest(of: "style.css") == ContentDigest.of(Array("body{}".utf8)))
        #expect(store.digest(of: "empty") == "cbf29ce484222325")
        // Reached through the protocol too, not only on the concrete type.
        func viaProtocol(_ kv: some KeyValueStore) -> (WallTime?, String?) {
            (kv.lastModified(of: "index.html"), kv.digest(of: "index.html"))
        }
        let (time, digest) = viaProtocol(store)
        #expect(time?.seconds == 1_700_000_100)
        #expect(digest == ContentDigest.of(Array("<h1>hi</h1>".utf8)))
    }

    @Test func checkingInitRejectsMalformedTables() {
        #expect(throws: DeviceError.invalidBase64(offset: 2)) {
            try CompiledKeyValueStore(checking: [CompiledFile("a", base64: "MQ=="), CompiledFile("b", base64: "Zm 9")])
        }
        #expect(throws: DeviceError.invalidArgument("compiled key-value store: key a given twice")) {
            try CompiledKeyValueStore(checking: [CompiledFile("a", base64: "MQ=="), CompiledFile("a", base64: "Mg==")])
        }
    }

    @Test func uncheckedInitStopsOnMalformedTables() async {
        await #expect(processExitsWith: .failure) {
            _ = CompiledKeyValueStore([CompiledFile("bad", base64: "not base64")])
        }
    }

    @Test func memoryStoreDigestsItsValues() {
        let kv = MemoryKeyValueStore(["a": Array("a".utf8)])
        #expect(kv.digest(of: "a") == "af63dc4c8601ec8c")
        #expect(kv.digest(of: "b") == nil)
        #expect(kv.lastModified(of: "a") == nil)
    }
}
