import Foundation
import MirageDevices
import MirageWWWSite
import Testing

/// The deck compiled in by MirageCrunchPlugin matches the Site folder.
@Suite struct WWWSiteTests {
    /// Examples/www/Sources/MirageWWWSite/Site, found from this file.
    static let site = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/MirageWWWSite/Site")

    /// Every file under `site` (names starting with "." skipped, like the
    /// tool), by key.
    static func filesOnDisk() throws -> [String: Data] {
        var out: [String: Data] = [:]
        let base = site.standardizedFileURL.path + "/"
        let walker = FileManager.default.enumerator(at: site, includingPropertiesForKeys: [.isRegularFileKey],
                                                    options: [.skipsHiddenFiles])
        while let url = walker?.nextObject() as? URL {
            guard try url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile == true else { continue }
            let path = url.standardizedFileURL.path
            #expect(path.hasPrefix(base))
            out[String(path.dropFirst(base.count))] = try Data(contentsOf: url)
        }
        return out
    }

    @Test func storeHoldsEveryFileByteForByte() throws {
        let disk = try Self.filesOnDisk()
        let store = WWWSite.store()
        #expect(disk.count >= 8, "the deck: index, style, favicon and slides")
        #expect(store.keys(withPrefix: "") == disk.keys.sorted())
        for (key, data) in disk {
            #expect(try store.value(of: key) == [UInt8](data), "\(key)")
            #expect(store.digest(of: key) == ContentDigest.of([UInt8](data)), "\(key)")
            let seconds = try #require(store.lastModified(of: key)?.seconds, "\(key) has a modification time")
            // The plugin records each file's mtime (SOURCE_DATE_EPOCH unset
            // in tests); it may only be older if the environment clamps it.
            let mtime = try FileManager.default.attributesOfItem(atPath: Self.site.appendingPathComponent(key).path)[.modificationDate] as? Date
            if ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"] == nil, let mtime {
                #expect(seconds == Int64(mtime.timeIntervalSince1970.rounded(.down)), "\(key)")
            }
        }
    }

    @Test func deckHasItsSlidesAndStylesheet() throws {
        let store = WWWSite.store()
        #expect(store.keys(withPrefix: "slides/").count >= 5)
        let css = String(decoding: try store.value(of: "style.css"), as: UTF8.self)
        #expect(css.contains("#2b1055"))
        for key in store.keys(withPrefix: "") where key.hasSuffix(".html") {
            let html = String(decoding: try store.value(of: key), as: UTF8.self)
            #expect(html.contains("href=\"/style.css\""), "\(key) links the stylesheet by absolute path")
            #expect(!html.contains("http://") && !html.contains("https://"), "\(key) uses no external assets")
        }
    }

    /// Every link between slides names a file in the store.
    @Test func linksResolve() throws {
        let store = WWWSite.store()
        let keys = Set(store.keys(withPrefix: ""))
        for key in keys where key.hasSuffix(".html") {
            let html = String(decoding: try store.value(of: key), as: UTF8.self)
            for part in html.components(separatedBy: "href=\"/").dropFirst() {
                let target = String(part.prefix { $0 != "\"" })
                #expect(keys.contains(target), "\(key) links /\(target)")
            }
        }
    }
}
