// The check harness and fake stack of the MirageHTTP Embedded program, also
// used by the MirageWWW and MirageDNS programs (their Harness.swift is a
// link to this file).

import MirageDevices

// MARK: - Harness

/// Counts checks and folds observed values into an FNV-1a digest.
final class Report {
    var checks = 0
    var failed = 0
    var digest: UInt64 = 0xcbf2_9ce4_8422_2325

    func expect(_ ok: Bool, _ what: String) {
        checks += 1
        if !ok {
            failed += 1
            print("FAIL: " + what)
        }
    }

    func mix(_ bytes: [UInt8]) {
        for b in bytes { digest = (digest ^ UInt64(b)) &* 0x100_0000_01b3 }
    }
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

func starts(_ a: [UInt8], with prefix: String) -> Bool {
    let p = bytes(prefix)
    return a.count >= p.count && Array(a[0..<p.count]) == p
}

func ends(_ a: [UInt8], with suffix: String) -> Bool {
    let s = bytes(suffix)
    return a.count >= s.count && Array(a[(a.count - s.count)...]) == s
}

func contains(_ a: [UInt8], _ needle: String) -> Bool {
    let n = bytes(needle)
    guard a.count >= n.count else { return false }
    for i in 0...(a.count - n.count) where Array(a[i..<(i + n.count)]) == n { return true }
    return false
}

/// The value of field `name` in a response head's bytes (first match).
func field(_ response: [UInt8], _ name: String) -> String? {
    let marker = bytes("\r\n" + name + ": ")
    guard response.count > marker.count else { return nil }
    for i in 0...(response.count - marker.count) where Array(response[i..<(i + marker.count)]) == marker {
        var end = i + marker.count
        while end < response.count && response[end] != 0x0D { end += 1 }
        return String(decoding: response[(i + marker.count)..<end], as: UTF8.self)
    }
    return nil
}

// MARK: - Fake stack

/// A stack whose connections are written to arrays; tests feed `received`
/// to the server by hand.
final class FakeStack: Stack {
    var localAddresses: [IPAddress] { [.v4(.loopback)] }
    var listeners: [ListenerID: UInt16] = [:]
    var written: [ConnectionID: [UInt8]] = [:]
    var closed: [ConnectionID] = []
    var aborted: [ConnectionID] = []
    var paused: Set<ConnectionID> = []
    var sockets: [UDPSocketID: UInt16] = [:]
    /// The socket bound last.
    var lastSocket: UDPSocketID?
    /// Datagrams sent, with their destinations.
    var sent: [([UInt8], Endpoint)] = []
    var next: UInt32 = 1

    func listen(port: UInt16, address: IPAddress?, backlog: Int, handler: any TCPHandler) throws(DeviceError) -> ListenerID {
        let id = ListenerID(rawValue: next)
        next += 1
        listeners[id] = port
        return id
    }
    func localEndpoint(of listener: ListenerID) -> Endpoint? { listeners[listener].map { Endpoint(.v4(.loopback), $0) } }
    func closeListener(_ listener: ListenerID) { listeners[listener] = nil }
    func connect(to remote: Endpoint, timeout: Interval?, handler: any TCPHandler) throws(DeviceError) -> ConnectionID { throw .unknownHandle }
    func endpoints(of connection: ConnectionID) -> (local: Endpoint, remote: Endpoint)? { nil }
    func setHandler(_ handler: any TCPHandler, for connection: ConnectionID) throws(DeviceError) {}
    func write(_ bytes: Span<UInt8>, on connection: ConnectionID) throws(DeviceError) -> Int {
        var out = written[connection] ?? []
        out.append(span: bytes)
        written[connection] = out
        return bytes.count
    }
    func pauseReading(_ connection: ConnectionID) { paused.insert(connection) }
    func resumeReading(_ connection: ConnectionID) { paused.remove(connection) }
    func shutdownWrite(_ connection: ConnectionID) {}
    func close(_ connection: ConnectionID) { closed.append(connection) }
    func abort(_ connection: ConnectionID) { aborted.append(connection) }
    func setNoDelay(_ noDelay: Bool, for connection: ConnectionID) throws(DeviceError) {}
    func setKeepAlive(_ idle: Interval?, for connection: ConnectionID) throws(DeviceError) {}
    func statistics(of connection: ConnectionID) -> ConnectionStatistics? { nil }
    func bindUDP(port: UInt16, address: IPAddress?, handler: any UDPHandler) throws(DeviceError) -> UDPSocketID {
        let id = UDPSocketID(rawValue: next)
        next += 1
        sockets[id] = port == 0 ? UInt16(truncatingIfNeeded: 40000 + next) : port
        lastSocket = id
        return id
    }
    func localEndpoint(of socket: UDPSocketID) -> Endpoint? { sockets[socket].map { Endpoint(.v4(.loopback), $0) } }
    func send(_ payload: Span<UInt8>, to destination: Endpoint, from socket: UDPSocketID) throws(DeviceError) {
        var bytes: [UInt8] = []
        bytes.append(span: payload)
        sent.append((bytes, destination))
    }
    func closeUDP(_ socket: UDPSocketID) { sockets[socket] = nil }

    /// Takes what was written on `connection`.
    func take(_ connection: ConnectionID) -> [UInt8] {
        let out = written[connection] ?? []
        written[connection] = nil
        return out
    }
}
