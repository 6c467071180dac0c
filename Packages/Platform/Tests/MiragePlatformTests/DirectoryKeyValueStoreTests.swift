import Foundation
import Glibc
import MirageDevices
import Testing

@testable import MiragePlatform

@Suite("DirectoryKeyValueStore")
struct DirectoryKeyValueStoreTests {
    /// A temporary tree: a site folder `site` and, beside it, a file and a
    /// folder outside it that links try to reach.
    final class Tree {
        let base: URL
        var site: URL { base.appendingPathComponent("site") }

        init() throws {
            base = FileManager.default.temporaryDirectory
                .appendingPathComponent("mirage-dirkv-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
            try write("site/index.html", "<h1>hi</h1>")
            try write("site/slides/1.html", "one")
            try write("site/.git/config", "secret")
            try write("site/.env", "secret")
            try write("outside.txt", "outside")
            try write("outside/x.html", "outside")
            try link("site/link.html", to: "index.html")              // inside: followed
            try link("site/escape.txt", to: "../outside.txt")         // outside: refused
            try link("site/absolute.txt", to: base.appendingPathComponent("outside.txt").path)
            try link("site/escape", to: "../outside")                 // a folder outside
            try link("site/dangling.html", to: "nowhere.html")
            guard mkfifo(site.appendingPathComponent("fifo").path, 0o600) == 0 else { throw POSIXError(.EIO) }
        }

        func write(_ path: String, _ text: String) throws {
            let url = base.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }

        func link(_ path: String, to destination: String) throws {
            try FileManager.default.createSymbolicLink(atPath: base.appendingPathComponent(path).path,
                                                       withDestinationPath: destination)
        }

        deinit { try? FileManager.default.removeItem(at: base) }
    }

    @Test("lists the regular files, skipping dot names and links that lead out")
    func listsKeys() throws {
        let tree = try Tree()
        let store = try DirectoryKeyValueStore(root: tree.site.path)
        #expect(store.keys(withPrefix: "") == ["index.html", "link.html", "slides/1.html"])
        #expect(store.keys(withPrefix: "slides/") == ["slides/1.html"])
    }

    @Test("reads values and ranges, with the same errors as the other stores")
    func readsValues() throws {
        let tree = try Tree()
        let store = try DirectoryKeyValueStore(root: tree.site.path)
        #expect(try store.size(of: "index.html") == 11)
        #expect(try store.value(of: "slides/1.html") == Array("one".utf8))
        #expect(try store.value(of: "link.html") == Array("<h1>hi</h1>".utf8))
        #expect(try store.read("index.html", offset: 4, length: 2) { span in [span[0], span[1]] } == Array("hi".utf8))
        #expect(throws: DeviceError.outOfRange(offset: 10, length: 2, size: 11)) {
            try store.read("index.html", offset: 10, length: 2) { $0.count }
        }
        #expect(throws: DeviceError.keyNotFound("missing.html")) { try store.size(of: "missing.html") }
        // Edits show at the next read.
        try tree.write("site/index.html", "changed")
        #expect(try store.value(of: "index.html") == Array("changed".utf8))
    }

    @Test("refuses keys that are not clean relative paths, dot files, links out, and non-files",
          arguments: ["../outside.txt", "/etc/passwd", "slides/../index.html", "./index.html", "", "slides//1.html",
                      "slides/", ".git/config", ".env", "escape.txt", "absolute.txt", "escape/x.html",
                      "dangling.html", "fifo", "slides", "index.html\u{0}"])
    func refusesKeys(key: String) throws {
        let tree = try Tree()
        let store = try DirectoryKeyValueStore(root: tree.site.path)
        #expect(throws: DeviceError.keyNotFound(key)) { try store.size(of: key) }
        #expect(throws: DeviceError.keyNotFound(key)) { try store.read(key, offset: 0, length: 0) { $0.count } }
        #expect(store.lastModified(of: key) == nil)
        #expect(store.digest(of: key) == nil)
    }

    @Test("gives the file's mtime and a content digest")
    func metadata() throws {
        let tree = try Tree()
        let store = try DirectoryKeyValueStore(root: tree.site.path)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1_700_000_000.25)],
                                              ofItemAtPath: tree.site.appendingPathComponent("index.html").path)
        let time = try #require(store.lastModified(of: "index.html"))
        #expect(time.seconds == 1_700_000_000)
        #expect((240_000_000...260_000_000).contains(time.nanoseconds))
        #expect(store.digest(of: "index.html") == ContentDigest.of(Array("<h1>hi</h1>".utf8)))
    }

    @Test("a root that is missing or not a directory is an error")
    func badRoots() throws {
        let tree = try Tree()
        #expect(throws: DeviceError.system(call: "realpath", errno: ENOENT)) {
            try DirectoryKeyValueStore(root: tree.base.appendingPathComponent("nope").path)
        }
        #expect(throws: DeviceError.self) { try DirectoryKeyValueStore(root: tree.base.appendingPathComponent("outside.txt").path) }
        // The store keeps the resolved path.
        let store = try DirectoryKeyValueStore(root: tree.site.path + "/slides/..")
        #expect(store.root == tree.site.resolvingSymlinksInPath().path)
    }
}
