import MirageDevices
import Testing

@Suite struct AddressTests {
    @Test(arguments: [
        ("0.0.0.0", UInt32(0)), ("127.0.0.1", 0x7F00_0001), ("255.255.255.255", 0xFFFF_FFFF), ("10.0.2.15", 0x0A00_020F),
    ])
    func ipv4Parses(text: String, value: UInt32) {
        #expect(IPv4Address(text)?.rawValue == value)
        #expect(IPv4Address(rawValue: value).description == text)
    }

    @Test(arguments: ["", "1.2.3", "1.2.3.4.5", "256.0.0.1", "01.2.3.4", "1..2.3", "1.2.3.4 ", "a.b.c.d", "1.2.3.-4", "1234.1.1.1"])
    func ipv4RejectsMalformedText(text: String) {
        #expect(IPv4Address(text) == nil)
    }

    // RFC 5952 §4 canonical forms.
    @Test(arguments: [
        ("2001:db8::1", "2001:db8::1"), ("2001:0db8:0:0:0:0:2:1", "2001:db8::2:1"), ("::", "::"), ("::1", "::1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"), ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"), ("::ffff:192.0.2.1", "::ffff:c000:201"), ("FE80::A", "fe80::a"),
        ("1::", "1::"),
    ])
    func ipv6ParsesToCanonicalText(text: String, canonical: String) {
        #expect(IPv6Address(text)?.description == canonical)
    }

    @Test(arguments: [":", ":::", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "g::", "1:2:3:4:5:6:7", ":1::", "1:"])
    func ipv6RejectsMalformedText(text: String) {
        #expect(IPv6Address(text) == nil)
    }

    @Test func macAddressTextAndBits() {
        let m = MACAddress("02:00:5E:10:00:01")
        #expect(m?.description == "02:00:5e:10:00:01")
        #expect(m?.isLocallyAdministered == true)
        #expect(m?.isMulticast == false)
        #expect(MACAddress.broadcast.isMulticast && MACAddress.broadcast.isBroadcast)
        #expect(MACAddress("01:00:5e:00:00:01")?.isMulticast == true)
        #expect(MACAddress("02:00:5e:10:00") == nil)
        #expect(MACAddress("02:00:5e:10:00:01:02") == nil)
        #expect(MACAddress("02:00:5e:10:00:1g") == nil)
        #expect(MACAddress("002:00:5e:10:00:01") == nil)
        let r = MACAddress.random(using: SeededEntropy(seed: 1))
        #expect(r.isLocallyAdministered && !r.isMulticast)
    }

    @Test func macAddressFromBytesIsBoundsChecked() {
        let bytes: [UInt8] = [1, 2, 3, 4, 5, 6, 7]
        #expect(MACAddress(bytes.span, at: 1) == MACAddress(2, 3, 4, 5, 6, 7))
        #expect(MACAddress(bytes.span, at: 2) == nil)
        #expect(MACAddress(bytes.span, at: -1) == nil)
    }

    @Test func endpointsPrint() {
        #expect(Endpoint(.v4(.loopback), 80).description == "127.0.0.1:80")
        #expect(Endpoint(.v6(.loopback), 443).description == "[::1]:443")
        #expect(IPAddress("::1") == .v6(.loopback))
        #expect(IPAddress("127.0.0.1")?.isLoopback == true)
    }
}

@Suite struct EntropyAndPortTests {
    @Test func seededEntropyIsReproducible() {
        let a = SeededEntropy(seed: 99), b = SeededEntropy(seed: 99), c = SeededEntropy(seed: 100)
        let xs = (0..<8).map { _ in a.next() }
        #expect(xs == (0..<8).map { _ in b.next() })
        #expect(xs != (0..<8).map { _ in c.next() })
        #expect(SeededEntropy(seed: 3).bytes(13) == SeededEntropy(seed: 3).bytes(13))
    }

    @Test func boundedDrawsStayInRangeAndCoverIt() {
        let e = SeededEntropy(seed: 5)
        var seen = Set<UInt64>()
        for _ in 0..<1000 {
            let v = e.next(below: 10)
            #expect(v < 10)
            seen.insert(v)
        }
        #expect(seen.count == 10)
    }

    @Test func ephemeralPortsAreRandomFreeAndInRange() {
        let range = EphemeralPortRange(lowest: 50_000, highest: 50_009)
        let e = SeededEntropy(seed: 8)
        var used = Set<UInt16>()
        var firstPicks = Set<UInt16>()
        for _ in 0..<10 {
            let p = range.choose(using: e) { used.contains($0) }
            #expect(p != nil)
            if let p { #expect(!used.contains(p) && (50_000...50_009).contains(p)); used.insert(p) }
        }
        #expect(range.choose(using: e) { used.contains($0) } == nil, "all taken")
        for _ in 0..<50 { if let p = EphemeralPortRange.default.choose(using: e, isInUse: { _ in false }) { firstPicks.insert(p) } }
        #expect(firstPicks.count > 40, "start points are randomised (RFC 6056)")
    }

    @Test func keyValueStoreReadsRangesAndRefusesOthers() throws {
        let kv = MemoryKeyValueStore(["index.html": Array("hello".utf8), "img/a.png": [1, 2, 3]])
        #expect(kv.keys(withPrefix: "") == ["img/a.png", "index.html"])
        #expect(kv.keys(withPrefix: "img/") == ["img/a.png"])
        #expect(try kv.size(of: "index.html") == 5)
        #expect(try kv.read("index.html", offset: 1, length: 3) { s in s.count } == 3)
        #expect(try kv.value(of: "img/a.png") == [1, 2, 3])
        #expect(throws: DeviceError.keyNotFound("nope")) { try kv.size(of: "nope") }
        #expect(throws: DeviceError.outOfRange(offset: 4, length: 2, size: 5)) { try kv.read("index.html", offset: 4, length: 2) { _ in 0 } }
        #expect(throws: DeviceError.outOfRange(offset: -1, length: 1, size: 5)) { try kv.read("index.html", offset: -1, length: 1) { _ in 0 } }
    }
}
