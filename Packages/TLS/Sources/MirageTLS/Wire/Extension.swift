// Extensions (RFC 8446 §4.2): a u16 type and opaque data<0..2^16-1>, in a
// u16-length vector. The typed bodies live in Extension+Bodies files.

/// One extension as it appears on the wire: its type and its undecoded data.
public struct Extension: Hashable, Sendable {
    /// The extension's type.
    public var type: ExtensionType
    /// The extension_data bytes, still encoded.
    public var data: [UInt8]

    /// An extension from its type and encoded data.
    public init(type: ExtensionType, data: [UInt8]) {
        self.type = type
        self.data = data
    }
}

/// Reads an extension list (`Extension extensions<0..2^16-1>`, the 2-byte
/// length included) from `reader`. Each extension's data must fill its
/// length exactly; the list must fill its own. RFC 8446 §4.2: "There MUST NOT
/// be more than one extension of the same type in a given extension block"
/// — a repeat throws `.illegalParameter`.
public func parseExtensions(_ reader: inout ByteReader) throws(TLSError) -> [Extension] {
    var list = ByteReader(try reader.readVector16())
    var extensions: [Extension] = []
    var seen: Set<UInt16> = []
    // Each pass consumes at least 4 bytes, so the loop ends.
    while !list.isAtEnd {
        let type = ExtensionType(rawValue: try list.readUInt16())
        let data = try list.readVector16()
        guard seen.insert(type.rawValue).inserted else {
            throw .illegalParameter("duplicate extension \(type)")
        }
        extensions.append(Extension(type: type, data: data))
    }
    return extensions
}

extension Array where Element == Extension {
    /// The extension of this type, if present (a list holds at most one of each).
    public func first(_ type: ExtensionType) -> Extension? {
        first { $0.type == type }
    }

    /// Appends the whole list, its 2-byte length included, to `out`.
    func encode(into out: inout [UInt8]) {
        out.appendVector16 { out in
            for e in self {
                out.appendUInt16(e.type.rawValue)
                out.appendVector16 { $0.append(contentsOf: e.data) }
            }
        }
    }
}
