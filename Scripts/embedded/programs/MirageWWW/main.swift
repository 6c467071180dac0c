// Embedded check program for MirageWWW (Scripts/check-embedded): the
// portable part of mirage-www, `WWWServer` over a fake stack with a
// compiled-in store, specialised and run under Embedded Swift — what the
// unikernel will run. Checks the answers' exact status lines, bodies and
// types, and the status line. `mirage_main` returns the failed checks.

import MirageDevices
import MirageHTTP
import MirageWWW

@_cdecl("mirage_main")
public func mirageMain() -> Int32 {
    let report = Report()
    let stack = FakeStack()
    let clock = ManualClock()
    let timers = ManualTimerScheduler(clock: clock)
    // "<p>home</p>" and "body{}", as MirageCrunchPlugin writes them.
    let store = CompiledKeyValueStore([
        CompiledFile("index.html", base64: "PHA+aG9tZTwvcD4=", lastModified: 784_111_777),
        CompiledFile("style.css", base64: "Ym9keXt9", lastModified: 784_111_777),
    ])
    let server = WWWServer(stack: stack, store: store, timers: timers, clock: clock, wallClock: clock,
                           configuration: WWWConfiguration(port: 80, address: nil))
    let endpoint: Endpoint?
    do throws(DeviceError) { endpoint = try server.start() } catch {
        print("FAIL: start")
        return 1
    }
    report.expect(endpoint?.port == 80 && server.endpoint?.port == 80, "listening on 80")

    let connection = ConnectionID(rawValue: 7)
    server.http.connectionAccepted(connection, listener: ListenerID(rawValue: 1))
    server.http.received(bytes("GET / HTTP/1.1\r\nHost: w\r\n\r\nGET /style.css HTTP/1.1\r\nHost: w\r\n\r\n").span, on: connection)
    let out = stack.take(connection)
    report.mix(out)
    report.expect(starts(out, with: "HTTP/1.1 200 OK\r\n"), "index: 200")
    report.expect(contains(out, "Content-Type: text/html; charset=utf-8\r\n") && contains(out, "\r\n\r\n<p>home</p>"), "index: type and body")
    report.expect(contains(out, "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"), "index: Last-Modified from the store")
    report.expect(contains(out, "Content-Type: text/css; charset=utf-8\r\n") && ends(out, with: "\r\n\r\nbody{}"), "style: type and body, second in order")
    server.http.received(bytes("GET /missing HTTP/1.1\r\nHost: w\r\nConnection: close\r\n\r\n").span, on: connection)
    let missing = stack.take(connection)
    report.expect(starts(missing, with: "HTTP/1.1 404 Not Found\r\n") && contains(missing, "Connection: close\r\n"), "missing: 404 and close")
    report.expect(stack.closed == [connection], "closed after Connection: close")
    server.http.connectionClosed(connection, reason: .normal)
    report.expect(contains(bytes(server.status), "0 open, 1 accepted") && contains(bytes(server.status), "3 requests, 3 responses (2xx 2, 3xx 0, 4xx 1"),
                  "status: " + server.status)
    server.stop()
    print("MirageWWW: \(report.checks) checks, \(report.failed) failed, digest \(report.digest)")
    return Int32(report.failed)
}
