import MirageDevices

/// A checked view of a UDP datagram (RFC 768).
public struct UDPDatagram: ~Escapable {
    enum Offset {
        static let sourcePort = 0
        static let destinationPort = 2
        static let length = 4
        static let checksum = 6
    }

    /// Source port, destination port, length, checksum.
    public static let headerLength = 8

    /// The datagram, cut to its stated length.
    public let bytes: Span<UInt8>

    /// Checks the stated length against the bytes present and, when the
    /// datagram carries a checksum (non-zero) and `verifyChecksum` is set,
    /// verifies it with the IPv4 pseudo-header.
    @_lifetime(copy bytes)
    public init(checking bytes: Span<UInt8>, source: IPv4Address, destination: IPv4Address,
                verifyChecksum: Bool = true) throws(TCPIPError) {
        guard bytes.count >= Self.headerLength else {
            throw .truncated(layer: .udp, expected: Self.headerLength, got: bytes.count)
        }
        let stated = Int(bytes.u16(at: Offset.length))
        guard stated >= Self.headerLength, stated <= bytes.count else {
            throw .badLength(layer: .udp, stated: stated, available: bytes.count)
        }
        let datagram = bytes.extracting(0..<stated)
        if verifyChecksum && datagram.u16(at: Offset.checksum) != 0 {
            var sum = IPv4Header.pseudoHeaderSum(source: source, destination: destination, protocol: IPProtocol.udp, length: stated)
            sum.add(datagram)
            guard sum.checksum == 0 else { throw .badChecksum(.udp) }
        }
        self.bytes = datagram
    }

    /// Source port.
    public var sourcePort: UInt16 { bytes.u16(at: Offset.sourcePort) }
    /// Destination port.
    public var destinationPort: UInt16 { bytes.u16(at: Offset.destinationPort) }
    /// The checksum field (0: none sent).
    public var checksum: UInt16 { bytes.u16(at: Offset.checksum) }
    /// The payload.
    public var payload: Span<UInt8> {
        @_lifetime(copy self) get { bytes.extracting(Self.headerLength...) }
    }
}

/// A UDP header to write.
public struct UDPHeader: Hashable, Sendable {
    /// Source port.
    public var sourcePort: UInt16
    /// Destination port.
    public var destinationPort: UInt16
    /// Payload bytes after the header.
    public var payloadLength: Int

    /// A header.
    public init(sourcePort: UInt16, destinationPort: UInt16, payloadLength: Int) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.payloadLength = payloadLength
    }

    /// Bytes of header `emit` writes.
    public static let length = UDPDatagram.headerLength
    /// The largest payload: the 16-bit length covers the header too.
    public static let maximumPayloadLength = 65_535 - length

    /// Writes the header at `offset` with the checksum over the payload
    /// already placed after it (RFC 768: a computed 0 is sent as 0xFFFF).
    public func emit(into buffer: inout MutableSpan<UInt8>, at offset: Int = 0,
                     source: IPv4Address, destination: IPv4Address) {
        precondition(payloadLength >= 0 && payloadLength <= Self.maximumPayloadLength, "UDP payload too large")
        typealias O = UDPDatagram.Offset
        let total = Self.length + payloadLength
        buffer.setU16(sourcePort, at: offset + O.sourcePort)
        buffer.setU16(destinationPort, at: offset + O.destinationPort)
        buffer.setU16(UInt16(total), at: offset + O.length)
        buffer.setU16(0, at: offset + O.checksum)
        var sum = IPv4Header.pseudoHeaderSum(source: source, destination: destination, protocol: IPProtocol.udp, length: total)
        sum.add(buffer.span.extracting(offset..<(offset + total)))
        let c = sum.checksum
        buffer.setU16(c == 0 ? 0xFFFF : c, at: offset + O.checksum)
    }
}
