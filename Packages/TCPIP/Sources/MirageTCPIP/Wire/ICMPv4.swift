import MirageDevices

/// A checked view of an ICMP message (RFC 792): type, code, checksum, the
/// four bytes of "rest of header", and the data after them.
public struct ICMPv4Message: ~Escapable {
    enum Offset {
        static let type = 0
        static let code = 1
        static let checksum = 2
        static let restOfHeader = 4
        static let identifier = 4
        static let sequence = 6
        static let nextHopMTU = 6
    }

    /// Type, code, checksum and rest of header.
    public static let headerLength = 8

    /// ICMP types this stack handles.
    public enum MessageType {
        /// Echo reply.
        public static let echoReply: UInt8 = 0
        /// Destination unreachable.
        public static let destinationUnreachable: UInt8 = 3
        /// Echo request.
        public static let echoRequest: UInt8 = 8
        /// Time exceeded.
        public static let timeExceeded: UInt8 = 11
        /// Parameter problem.
        public static let parameterProblem: UInt8 = 12
    }

    /// Destination-unreachable codes.
    public enum UnreachableCode {
        /// Net unreachable.
        public static let network: UInt8 = 0
        /// Host unreachable.
        public static let host: UInt8 = 1
        /// Protocol unreachable.
        public static let `protocol`: UInt8 = 2
        /// Port unreachable.
        public static let port: UInt8 = 3
        /// Fragmentation needed and DF set (RFC 1191 puts the next-hop MTU in bytes 6–7).
        public static let fragmentationNeeded: UInt8 = 4
    }

    /// The whole message.
    public let bytes: Span<UInt8>

    /// Checks the length and verifies the checksum over the whole message.
    @_lifetime(copy bytes)
    public init(checking bytes: Span<UInt8>, verifyChecksum: Bool = true) throws(TCPIPError) {
        guard bytes.count >= Self.headerLength else {
            throw .truncated(layer: .icmp, expected: Self.headerLength, got: bytes.count)
        }
        if verifyChecksum {
            guard InternetChecksum.of(bytes) == 0 else { throw .badChecksum(.icmp) }
        }
        self.bytes = bytes
    }

    /// The type.
    public var type: UInt8 { bytes[Offset.type] }
    /// The code.
    public var code: UInt8 { bytes[Offset.code] }
    /// Echo identifier (echo messages).
    public var identifier: UInt16 { bytes.u16(at: Offset.identifier) }
    /// Echo sequence number (echo messages).
    public var sequence: UInt16 { bytes.u16(at: Offset.sequence) }
    /// Next-hop MTU of a fragmentation-needed message (RFC 1191 §4); 0 from
    /// routers that predate it.
    public var nextHopMTU: UInt16 { bytes.u16(at: Offset.nextHopMTU) }
    /// The four bytes after the checksum.
    public var restOfHeader: UInt32 { bytes.u32(at: Offset.restOfHeader) }
    /// The data after the header: echo payload, or the quoted datagram of
    /// an error.
    public var data: Span<UInt8> {
        @_lifetime(copy self) get { bytes.extracting(Self.headerLength...) }
    }
}

/// The header of an ICMP message to write; the data follows it.
public struct ICMPv4Header: Hashable, Sendable {
    /// The type.
    public var type: UInt8
    /// The code.
    public var code: UInt8
    /// The four bytes after the checksum.
    public var restOfHeader: UInt32

    /// A header.
    public init(type: UInt8, code: UInt8, restOfHeader: UInt32) {
        self.type = type
        self.code = code
        self.restOfHeader = restOfHeader
    }

    /// Bytes of header `emit` writes.
    public static let length = ICMPv4Message.headerLength

    /// Writes the header at `offset` and a checksum covering it and the
    /// `dataLength` bytes already placed after it.
    public func emit(into buffer: inout MutableSpan<UInt8>, at offset: Int = 0, dataLength: Int) {
        typealias O = ICMPv4Message.Offset
        buffer[offset + O.type] = type
        buffer[offset + O.code] = code
        buffer.setU16(0, at: offset + O.checksum)
        buffer.setU32(restOfHeader, at: offset + O.restOfHeader)
        let sum = InternetChecksum.of(buffer.span.extracting(offset..<(offset + Self.length + dataLength)))
        buffer.setU16(sum, at: offset + O.checksum)
    }
}
