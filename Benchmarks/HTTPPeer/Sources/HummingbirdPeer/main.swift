// hummingbird-peer: Hummingbird 2 serving one file's bytes at `/`, the peer
// that Scripts/bench-http measures mirage-www against.
//
//   hummingbird-peer --file PATH --port P [--threads N] [--executor default|loop]
//
// The file is read once, at start, into one ByteBuffer; every GET / answers
// 200 with it, `Content-Type: text/html; charset=utf-8` and a
// `Content-Length` (HTTP/1.1 keep-alive, Hummingbird's default). Any other
// path is Hummingbird's 404. Listens on 127.0.0.1 only.
//
// Threads:
//   --threads N        event loops in NIO's singleton MultiThreadedEventLoopGroup
//                      (NIOSingletons.groupLoopCountSuggestion; the default is
//                      the core count). Hummingbird takes its group from
//                      `eventLoopGroupProvider`, `.singleton` here.
//   --executor default Swift concurrency's own pool (one thread per core) runs
//                      the request handlers, beside the event loops:
//                      Hummingbird's usual setup.
//   --executor loop    NIO's event loops become Swift concurrency's global
//                      executor
//                      (NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor),
//                      so with --threads 1 every request is handled on one thread.
//
// Prints `hummingbird-peer: listening on http://127.0.0.1:P/ ...` once the
// socket is bound; exits on SIGINT or SIGTERM.

import Dispatch
import Hummingbird
import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

struct Options: Sendable {
    var file = ""
    var port = 8080
    var threads = 0
    var loopExecutor = false
}

/// Writes a line straight to a file descriptor (unbuffered, so the script
/// reading our output sees it at once).
func say(_ line: String, to fd: Int32 = 1) {
    let text = line + "\n"
    _ = text.withCString { write(fd, $0, strlen($0)) }
}

func fail(_ message: String) -> Never {
    say("hummingbird-peer: \(message)", to: 2)
    exit(2)
}

func parseOptions() -> Options {
    var options = Options()
    var arguments = CommandLine.arguments.dropFirst()
    func value(_ name: String) -> String {
        guard let next = arguments.popFirst() else { fail("\(name) needs a value") }
        return next
    }
    while let argument = arguments.popFirst() {
        switch argument {
        case "--file": options.file = value(argument)
        case "--port":
            guard let port = Int(value(argument)), (1...65535).contains(port) else { fail("bad --port") }
            options.port = port
        case "--threads":
            guard let threads = Int(value(argument)), threads >= 0 else { fail("bad --threads") }
            options.threads = threads
        case "--executor":
            switch value(argument) {
            case "default": options.loopExecutor = false
            case "loop": options.loopExecutor = true
            default: fail("--executor takes default or loop")
            }
        case "-h", "--help":
            say("usage: hummingbird-peer --file PATH --port P [--threads N] [--executor default|loop]")
            exit(0)
        default: fail("unknown argument \(argument)")
        }
    }
    if options.file.isEmpty { fail("--file PATH is required") }
    return options
}

/// The whole file, read with POSIX calls (no Foundation needed).
func readFile(_ path: String) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    if fd < 0 { fail("cannot open \(path)") }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 { fail("cannot read \(path)") }
        if count == 0 { break }
        bytes.append(contentsOf: chunk[0..<count])
    }
    return bytes
}

func serve(_ options: Options) async throws {
    let body = ByteBuffer(bytes: readFile(options.file))
    var headers = HTTPFields()
    headers[.contentType] = "text/html; charset=utf-8"
    let fixedHeaders = headers

    let router = Router()
    router.get("/") { _, _ -> Response in
        Response(status: .ok, headers: fixedHeaders, body: ResponseBody(byteBuffer: body))
    }

    var logger = Logger(label: "hummingbird-peer")
    logger.logLevel = .warning
    let loops = NIOSingletons.groupLoopCountSuggestion
    let executor = options.loopExecutor ? "loop" : "default"
    let port = options.port
    let app = Application(
        router: router,
        configuration: .init(address: .hostname("127.0.0.1", port: port)),
        onServerRunning: { _ in
            say("hummingbird-peer: listening on http://127.0.0.1:\(port)/ (event loops \(loops), executor \(executor), \(body.readableBytes) bytes)")
        },
        eventLoopGroupProvider: .singleton,
        logger: logger
    )
    try await app.runService()
}

let options = parseOptions()
if options.threads > 0 {
    // Must happen before anything touches the singleton group.
    NIOSingletons.groupLoopCountSuggestion = options.threads
}
if options.loopExecutor {
    guard NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor() else {
        fail("could not install the event loops as Swift concurrency's global executor")
    }
}

// The top level stays synchronous (so the executor can be installed above,
// before any task runs); the server runs in a detached task.
let finished = DispatchSemaphore(value: 0)
Task.detached {
    do {
        try await serve(options)
    } catch {
        fail("\(error)")
    }
    finished.signal()
}
finished.wait()
