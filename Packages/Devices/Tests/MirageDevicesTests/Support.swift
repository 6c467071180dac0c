import MirageDevices

/// An Ethernet frame with EtherType 0x88B5 (local experimental) whose
/// payload starts with a 32-bit sequence number.
func testFrame(to dst: MACAddress, from src: MACAddress, sequence: UInt32, payloadLength: Int = 46) -> [UInt8] {
    var f = dst.octets + src.octets + [0x88, 0xB5]
    f += [UInt8(truncatingIfNeeded: sequence >> 24), UInt8(truncatingIfNeeded: sequence >> 16),
          UInt8(truncatingIfNeeded: sequence >> 8), UInt8(truncatingIfNeeded: sequence)]
    for i in 0..<max(0, payloadLength - 4) { f.append(UInt8(truncatingIfNeeded: i &+ Int(sequence))) }
    return f
}

func sequence(of frame: [UInt8]) -> UInt32? {
    guard frame.count >= 18, frame[12] == 0x88, frame[13] == 0xB5 else { return nil }
    return UInt32(frame[14]) << 24 | UInt32(frame[15]) << 16 | UInt32(frame[16]) << 8 | UInt32(frame[17])
}

func send(_ bytes: [UInt8], on interface: some NetworkInterface, metadata: TransmitMetadata = .none) throws(DeviceError) {
    try interface.transmit(length: bytes.count, metadata: metadata) { buffer in
        for i in 0..<bytes.count { buffer[i] = bytes[i] }
        return bytes.count
    }
}

/// Records everything an interface delivers.
final class RecordingHandler: NetworkInterfaceHandler {
    var frames: [[UInt8]] = []
    var metadata: [ReceiveMetadata] = []
    var batches = 0
    var ready = 0

    func frameReceived(_ frame: Span<UInt8>, metadata: ReceiveMetadata) {
        var copy: [UInt8] = []
        for i in frame.indices { copy.append(frame[i]) }
        frames.append(copy)
        self.metadata.append(metadata)
    }
    func receiveBatchEnded() { batches += 1 }
    func transmitReady() { ready += 1 }

    var sequences: [UInt32] { frames.compactMap(sequence(of:)) }
}

let macA = MACAddress(0x02, 0, 0, 0, 0, 0x0a)
let macB = MACAddress(0x02, 0, 0, 0, 0, 0x0b)
let macC = MACAddress(0x02, 0, 0, 0, 0, 0x0c)
