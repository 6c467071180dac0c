// Embedded check program for MirageEcho: an EchoServer over a fake stack.
import MirageDevices
import MirageEcho

final class FakeStack: Stack {
    var localAddresses: [IPAddress] { [.v4(.loopback)] }
    var listeners: [ListenerID: UInt16] = [:]
    var sockets: [UDPSocketID: UInt16] = [:]
    var written: [ConnectionID: [UInt8]] = [:]
    var capacity = Int.max
    var paused: Set<ConnectionID> = []
    var closed: [ConnectionID] = []
    var sent: [([UInt8], Endpoint)] = []
    var next: UInt32 = 1

    func listen(port: UInt16, address: IPAddress?, backlog: Int, handler: any TCPHandler) throws(DeviceError) -> ListenerID {
        let id = ListenerID(rawValue: next); next += 1; listeners[id] = port == 0 ? UInt16(1000 + next) : port; return id
    }
    func localEndpoint(of listener: ListenerID) -> Endpoint? { listeners[listener].map { Endpoint(.v4(.loopback), $0) } }
    func closeListener(_ listener: ListenerID) { listeners[listener] = nil }
    func connect(to remote: Endpoint, timeout: Interval?, handler: any TCPHandler) throws(DeviceError) -> ConnectionID { throw .unknownHandle }
    func endpoints(of connection: ConnectionID) -> (local: Endpoint, remote: Endpoint)? { nil }
    func setHandler(_ handler: any TCPHandler, for connection: ConnectionID) throws(DeviceError) {}
    func write(_ bytes: Span<UInt8>, on connection: ConnectionID) throws(DeviceError) -> Int {
        let n = min(bytes.count, capacity)
        capacity -= n
        for i in 0..<n { written[connection, default: []].append(bytes[i]) }
        return n
    }
    func pauseReading(_ connection: ConnectionID) { paused.insert(connection) }
    func resumeReading(_ connection: ConnectionID) { paused.remove(connection) }
    func shutdownWrite(_ connection: ConnectionID) {}
    func close(_ connection: ConnectionID) { closed.append(connection) }
    func abort(_ connection: ConnectionID) { closed.append(connection) }
    func setNoDelay(_ noDelay: Bool, for connection: ConnectionID) throws(DeviceError) {}
    func setKeepAlive(_ idle: Interval?, for connection: ConnectionID) throws(DeviceError) {}
    func statistics(of connection: ConnectionID) -> ConnectionStatistics? { nil }
    func bindUDP(port: UInt16, address: IPAddress?, handler: any UDPHandler) throws(DeviceError) -> UDPSocketID {
        let id = UDPSocketID(rawValue: next); next += 1; sockets[id] = port; return id
    }
    func localEndpoint(of socket: UDPSocketID) -> Endpoint? { sockets[socket].map { Endpoint(.v4(.loopback), $0) } }
    func send(_ payload: Span<UInt8>, to destination: Endpoint, from socket: UDPSocketID) throws(DeviceError) {
        var bytes: [UInt8] = []
        for i in 0..<payload.count { bytes.append(payload[i]) }
        sent.append((bytes, destination))
    }
    func closeUDP(_ socket: UDPSocketID) { sockets[socket] = nil }
}

@_cdecl("mirage_main")
public func mirageMain() -> Int32 {
    var failed: Int32 = 0
    func expect(_ ok: Bool, _ what: String) { if !ok { failed += 1; print("FAIL: " + what) } }
    let stack = FakeStack()
    guard let configuration = EchoConfiguration.offset(by: 7000, address: .v4(.loopback)) else { return 1 }
    let server = EchoServer(stack: stack, configuration: configuration)
    do throws(DeviceError) { try server.start() } catch { return 1 }
    expect(server.tcpEndpoint(.echo)?.port == 7007, "echo port")
    let listener = ListenerID(rawValue: 1)
    let echo = ConnectionID(rawValue: 100)
    server.connectionAccepted(echo, listener: listener)
    stack.capacity = 3
    let hello: [UInt8] = [104, 101, 108, 108, 111]
    server.received(hello.span, on: echo)
    expect(stack.paused.contains(echo), "paused on a short write")
    stack.capacity = .max
    server.writable(echo)
    expect(stack.written[echo] ?? [] == hello, "echoed")
    expect(!stack.paused.contains(echo), "resumed")
    server.endOfStream(on: echo)
    expect(stack.closed == [echo], "closed after FIN")
    server.connectionClosed(echo, reason: .normal)
    // Source: the first line of RFC 864.
    let source = ConnectionID(rawValue: 101)
    stack.capacity = 74
    var sourceListener = ListenerID(rawValue: 0)
    for (id, port) in stack.listeners where port == 7019 { sourceListener = id }
    server.connectionAccepted(source, listener: sourceListener)
    expect(stack.written[source] ?? [] == CharacterGenerator.bytes(count: 74), "first line")
    expect(CharacterGenerator.byte(at: 74) == 0x21, "second line starts one later")
    // UDP echo.
    server.datagramReceived(hello.span, from: Endpoint(.v4(.loopback), 5555), to: Endpoint(.v4(.loopback), 7007), on: UDPSocketID(rawValue: 2))
    expect(stack.sent.count == 1 && stack.sent[0].0 == hello, "datagram echoed")
    server.stop()
    let c = server.counters
    expect(c.connectionsAccepted == 2 && c.closed(.normal) == 1 && c.echoBytesSent == 5, "counters")
    print("MirageEcho: checks done, failed \(failed), source bytes \(c.sourceBytesSent)")
    return failed
}
