import Glibc
import MirageDevices
import MiragePlatform
import MirageTCPIP

/// Our side: MirageTCPIP's `IPStack` on a `TapInterface`, driven by one
/// `EventLoop` on the main thread (the only thread the program starts).
/// The tap device and the kernel's address on it belong to the script
/// (Scripts/bench-tcp makes them inside a namespace and runs us there).
final class MirageHost {
    let loop: EventLoop
    let tap: TapInterface
    let stack: IPStack<TapInterface>

    /// Opens the existing tap `name` (with IFF_VNET_HDR when `offload`)
    /// and brings the stack up on it with `cidr` (e.g. 10.199.90.2/24).
    init(tap name: String, cidr: String, mtu: Int, offload: Bool) throws(BenchFailure) {
        guard let ipv4 = IPv4Configuration(cidr: cidr) else { throw BenchFailure("not an IPv4 prefix: \(cidr)") }
        do throws(DeviceError) {
            loop = try EventLoop()
            tap = try TapInterface(name: name, loop: loop, mtu: mtu, virtioNetHeader: offload)
        } catch {
            throw BenchFailure("tap \(name)\(offload ? " with --offload" : ""): \(error)")
        }
        stack = IPStack(interface: tap, configuration: IPStack<TapInterface>.Configuration(ipv4: ipv4),
                        clock: loop, scheduler: loop, entropy: SystemEntropy())
    }

    /// A point of a transfer: the process's clock, CPU and allocation
    /// figures, and the TCP segments the stack has sent and received.
    struct Mark {
        var snapshot: Snapshot
        var segments: UInt64
    }

    /// The figures now.
    func mark() -> Mark {
        Mark(snapshot: .now(), segments: stack.statistics.tcpSegmentsSent + stack.statistics.tcpSegmentsReceived)
    }

    /// Runs the loop until `finished` says so or `timeout` seconds pass.
    func run(timeout seconds: Int, finished: () -> Bool) throws(BenchFailure) {
        let deadline = loop.now() + .seconds(Int64(seconds))
        do throws(DeviceError) {
            while !finished() && loop.now() < deadline { try loop.run(until: deadline) }
        } catch {
            throw BenchFailure("event loop: \(error)")
        }
    }

    /// The stack's counters (to standard error) and the device closed.
    func shutdown() {
        writeError("stack counters: " + stack.statistics.description.split(separator: "\n").joined(separator: ", "))
        let s = tap.statistics
        writeError("tap counters: received \(s.receivedFrames) frames, transmitted \(s.transmittedFrames), "
                   + "receive-dropped \(s.receiveDropped), transmit-dropped \(s.transmitDropped), "
                   + "transmit-would-block \(s.transmitWouldBlock)")
        stack.detach()
        tap.close()
    }
}

/// `mirage-sink`: accepts one connection, discards what arrives until the
/// peer's FIN, closes, and stops once the close completes. Timed from the
/// first byte to the end of stream.
final class DiscardSink: TCPHandler {
    let host: MirageHost
    private(set) var listener: ListenerID?
    private(set) var connection: ConnectionID?
    private(set) var bytes: UInt64 = 0
    private(set) var start: MirageHost.Mark?
    private(set) var end: MirageHost.Mark?
    private(set) var retransmissions: UInt64?
    private(set) var closeReason: CloseReason?
    private(set) var extraConnections = 0

    init(host: MirageHost, port: UInt16) throws(BenchFailure) {
        self.host = host
        do throws(DeviceError) {
            listener = try host.stack.listen(port: port, address: nil, backlog: 4, handler: self)
        } catch {
            throw BenchFailure("listen on port \(port): \(error)")
        }
    }

    var finished: Bool { closeReason != nil }

    func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {
        guard self.connection == nil else {
            extraConnections += 1
            host.stack.abort(connection)
            return
        }
        self.connection = connection
        host.stack.closeListener(listener)
        self.listener = nil
    }

    func connectionEstablished(_ connection: ConnectionID) {}

    func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {
        if start == nil { start = host.mark() }
        self.bytes += UInt64(bytes.count)
    }

    func endOfStream(on connection: ConnectionID) {
        markEnd(connection)
        host.stack.close(connection)
    }

    func writable(_ connection: ConnectionID) {}

    func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {
        guard connection == self.connection else { return }
        markEnd(connection)
        closeReason = reason
        host.loop.stop()
    }

    private func markEnd(_ connection: ConnectionID) {
        guard end == nil else { return }
        end = host.mark()
        retransmissions = host.stack.statistics(of: connection)?.retransmissions
    }
}

/// `mirage-source`: connects, writes `total` bytes as fast as the stack
/// takes them (continuing on `writable`), closes, and stops once the close
/// completes. Timed from the established connection to the close.
final class BulkSource: TCPHandler {
    let host: MirageHost
    /// Bytes offered per `write`.
    static let chunk = 256 * 1024
    private let pattern: [UInt8]
    let total: UInt64
    private(set) var connection: ConnectionID?
    private(set) var sent: UInt64 = 0
    private(set) var start: MirageHost.Mark?
    private(set) var end: MirageHost.Mark?
    private(set) var retransmissions: UInt64?
    private(set) var closeReason: CloseReason?
    private(set) var writeError: DeviceError?
    private var closing = false

    init(host: MirageHost, to remote: Endpoint, bytes: UInt64) throws(BenchFailure) {
        self.host = host
        total = bytes
        pattern = (0..<Self.chunk).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        do throws(DeviceError) {
            connection = try host.stack.connect(to: remote, timeout: .seconds(10), handler: self)
        } catch {
            throw BenchFailure("connect to \(remote): \(error)")
        }
    }

    var finished: Bool { closeReason != nil }

    func connectionAccepted(_ connection: ConnectionID, listener: ListenerID) {}

    func connectionEstablished(_ connection: ConnectionID) {
        start = host.mark()
        pump(connection)
    }

    func received(_ bytes: Span<UInt8>, on connection: ConnectionID) {}

    func endOfStream(on connection: ConnectionID) {
        // The sink closes only after our FIN: close is already under way.
        if !closing { closeNow(connection) }
    }

    func writable(_ connection: ConnectionID) { pump(connection) }

    func connectionClosed(_ connection: ConnectionID, reason: CloseReason) {
        guard connection == self.connection else { return }
        if end == nil { end = host.mark() }
        closeReason = reason
        host.loop.stop()
    }

    private func pump(_ connection: ConnectionID) {
        guard !closing else { return }
        let pattern = self.pattern  // A local, so its span can be lent.
        while sent < total {
            let length = Int(min(UInt64(Self.chunk), total - sent))
            let taken: Int
            do throws(DeviceError) {
                taken = try host.stack.write(pattern.span.extracting(0..<length), on: connection)
            } catch {
                writeError = error
                return  // The close event follows.
            }
            sent += UInt64(max(0, min(taken, length)))
            if taken < length { return }  // `writable` follows.
        }
        closeNow(connection)
    }

    private func closeNow(_ connection: ConnectionID) {
        closing = true
        retransmissions = host.stack.statistics(of: connection)?.retransmissions
        host.stack.close(connection)
    }
}
