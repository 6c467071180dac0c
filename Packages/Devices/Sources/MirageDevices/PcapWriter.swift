/// Where pcap bytes go: a file on Linux (`MiragePlatform.FilePcapSink`), a
/// memory buffer in tests, a console or block device on a unikernel.
public protocol PcapSink: AnyObject {
    /// Appends bytes to the capture.
    func write(_ bytes: Span<UInt8>)
}

/// A sink that keeps the capture in memory.
public final class MemoryPcapSink: PcapSink {
    /// The capture so far, starting with the pcap file header.
    public private(set) var bytes: [UInt8] = []
    /// An empty sink.
    public init() {}
    public func write(_ bytes: Span<UInt8>) {
        for i in bytes.indices { self.bytes.append(bytes[i]) }
    }
}

/// Writes frames in the classic pcap format with nanosecond timestamps
/// (magic 0xa1b23c4d, readable by tcpdump and Wireshark), link type
/// Ethernet. All fields little-endian; the magic tells readers so.
public final class PcapWriter {
    /// pcap magic for nanosecond-resolution timestamps.
    public static let nanosecondMagic: UInt32 = 0xA1B2_3C4D
    /// LINKTYPE_ETHERNET.
    public static let linkTypeEthernet: UInt32 = 1
    /// Bytes per record header: seconds, nanoseconds, captured and original length.
    public static let recordHeaderLength = 16
    /// Bytes of the file header.
    public static let fileHeaderLength = 24
    /// Default snapshot length: large enough for a 64 KiB segmentation frame.
    public static let defaultSnapLength = 262_144

    private let sink: any PcapSink
    /// Frames longer than this are truncated in the capture (their original
    /// length is still recorded).
    public let snapLength: Int
    /// Frames written.
    public private(set) var recordCount: UInt64 = 0
    private var scratch: [UInt8] = []

    /// Starts a capture on `sink` by writing the file header.
    public init(sink: any PcapSink, snapLength: Int = PcapWriter.defaultSnapLength) {
        precondition(snapLength > 0 && snapLength <= Int(UInt32.max), "invalid snap length")
        self.sink = sink
        self.snapLength = snapLength
        var header: [UInt8] = []
        header.reserveCapacity(Self.fileHeaderLength)
        appendLE32(&header, Self.nanosecondMagic)
        appendLE16(&header, 2)  // version 2.4
        appendLE16(&header, 4)
        appendLE32(&header, 0)  // thiszone
        appendLE32(&header, 0)  // sigfigs
        appendLE32(&header, UInt32(snapLength))
        appendLE32(&header, Self.linkTypeEthernet)
        sink.write(header.span)
    }

    /// Appends one frame captured at `time`.
    public func record(_ frame: Span<UInt8>, at time: WallTime) {
        let captured = min(frame.count, snapLength)
        scratch.removeAll(keepingCapacity: true)
        appendLE32(&scratch, UInt32(truncatingIfNeeded: time.seconds))
        appendLE32(&scratch, time.nanoseconds)
        appendLE32(&scratch, UInt32(captured))
        appendLE32(&scratch, UInt32(truncatingIfNeeded: frame.count))
        for i in 0..<captured { scratch.append(frame[i]) }
        sink.write(scratch.span)
        recordCount += 1
    }
}

func appendLE16(_ out: inout [UInt8], _ v: UInt16) {
    out.append(UInt8(truncatingIfNeeded: v))
    out.append(UInt8(truncatingIfNeeded: v >> 8))
}

func appendLE32(_ out: inout [UInt8], _ v: UInt32) {
    for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) }
}

/// A network interface wrapper that records every frame received and
/// transmitted through it, then passes it on unchanged.
///
/// The wrapper installs itself as the base interface's handler; the
/// application sets its handler on the wrapper. The two reference each
/// other until `detach()` (Embedded Swift has no `weak`; devices normally
/// live as long as the program).
public final class PcapInterface<Base: NetworkInterface>: NetworkInterface, NetworkInterfaceHandler {
    /// The wrapped interface.
    public let base: Base
    /// The writer frames go to.
    public let writer: PcapWriter
    private let clock: any WallClock
    /// Where events go after recording.
    public var handler: (any NetworkInterfaceHandler)?

    /// Wraps `base`, recording to `writer` with timestamps from `clock`.
    public init(_ base: Base, writer: PcapWriter, clock: any WallClock) {
        self.base = base
        self.writer = writer
        self.clock = clock
        base.handler = self
    }

    /// Breaks the reference from the base interface to this wrapper.
    public func detach() { base.handler = nil }

    public var macAddress: MACAddress { base.macAddress }
    public var mtu: Int { base.mtu }
    public var offloads: OffloadCapabilities { base.offloads }
    public var statistics: InterfaceStatistics { base.statistics }

    public func transmit(length: Int, metadata: TransmitMetadata, _ fill: (inout MutableSpan<UInt8>) -> Int) throws(DeviceError) {
        let writer = self.writer
        let time = clock.wallTime()
        try base.transmit(length: length, metadata: metadata) { buffer in
            let used = fill(&buffer)
            if used > 0 && used <= buffer.count {
                let span = buffer.span
                writer.record(span.extracting(0..<used), at: time)
            }
            return used
        }
    }

    public func frameReceived(_ frame: Span<UInt8>, metadata: ReceiveMetadata) {
        writer.record(frame, at: clock.wallTime())
        handler?.frameReceived(frame, metadata: metadata)
    }

    public func receiveBatchEnded() { handler?.receiveBatchEnded() }
    public func transmitReady() { handler?.transmitReady() }
}
