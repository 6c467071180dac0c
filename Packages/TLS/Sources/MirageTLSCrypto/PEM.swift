import Foundation

/// PEM (RFC 7468) text ↔ DER bytes: certificate chains, trust bundles and
/// private keys arrive as PEM files; the engine works on DER.
///
/// Parsing is lenient where RFC 7468 §2 allows (explanatory text between
/// blocks, CRLF or LF, any line width) and strict where a mistake would
/// otherwise go unnoticed (a BEGIN without its END, mismatched labels, bad
/// base64, RFC 1421 headers of encrypted keys).
public enum PEM {
    /// One `-----BEGIN label-----` … `-----END label-----` block.
    public struct Block: Hashable, Sendable {
        /// The label, e.g. `CERTIFICATE`, `PRIVATE KEY`, `EC PRIVATE KEY`.
        public var label: String
        /// The decoded bytes.
        public var der: [UInt8]
        /// A block.
        public init(label: String, der: [UInt8]) {
            self.label = label
            self.der = der
        }
    }

    /// The label of X.509 certificates (RFC 7468 §5).
    public static let certificateLabel = "CERTIFICATE"

    /// Every block of `text`, in order; text outside blocks is ignored.
    /// Throws `.configuration` on an unterminated block, an END whose label
    /// differs from its BEGIN, header lines (encrypted keys are not
    /// supported) or invalid base64.
    public static func blocks(_ text: String) throws(TLSError) -> [Block] {
        var result: [Block] = []
        var open: (label: String, base64: String)?
        // Splitting on newlines bounds the loop by the input's line count.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if let current = open {
                if let label = boundaryLabel(line, kind: "END") {
                    guard label == current.label else {
                        throw .configuration("PEM block BEGIN \(current.label) ends with END \(label)")
                    }
                    guard let data = Data(base64Encoded: current.base64), !data.isEmpty else {
                        throw .configuration("PEM block \(current.label) holds invalid base64")
                    }
                    result.append(Block(label: label, der: Array(data)))
                    open = nil
                } else if boundaryLabel(line, kind: "BEGIN") != nil {
                    throw .configuration("PEM block \(current.label) has no END line")
                } else if line.contains(":") {
                    // RFC 1421 headers (Proc-Type, DEK-Info) mark legacy encrypted keys.
                    throw .configuration("PEM block \(current.label) has headers (encrypted keys are not supported)")
                } else {
                    open = (current.label, current.base64 + line)
                }
            } else if let label = boundaryLabel(line, kind: "BEGIN") {
                open = (label, "")
            }
        }
        if let current = open { throw .configuration("PEM block \(current.label) has no END line") }
        return result
    }

    /// The DER certificates of `text` (`CERTIFICATE` blocks, in order; other
    /// blocks are skipped). Throws `.configuration` when there is none.
    public static func certificates(_ text: String) throws(TLSError) -> [[UInt8]] {
        let found = try blocks(text).filter { $0.label == certificateLabel }.map { $0.der }
        guard !found.isEmpty else { throw .configuration("no CERTIFICATE block in PEM text") }
        return found
    }

    /// The first private-key block of `text` (`PRIVATE KEY` (PKCS#8),
    /// `EC PRIVATE KEY` (SEC1) or `RSA PRIVATE KEY` (PKCS#1)).
    public static func privateKey(_ text: String) throws(TLSError) -> Block {
        let labels: Set<String> = ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"]
        guard let block = try blocks(text).first(where: { labels.contains($0.label) }) else {
            if text.contains("ENCRYPTED PRIVATE KEY") {
                throw .configuration("encrypted private keys are not supported")
            }
            throw .configuration("no PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY block in PEM text")
        }
        return block
    }

    /// `der` as one PEM block with 64-character lines (RFC 7468 §2), ending in a newline.
    public static func encode(_ der: [UInt8], label: String) -> String {
        let base64 = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return "-----BEGIN \(label)-----\n\(base64)\n-----END \(label)-----\n"
    }

    /// The label of a `-----BEGIN label-----` (or END) line, nil for other lines.
    private static func boundaryLabel(_ line: String, kind: String) -> String? {
        let prefix = "-----\(kind) "
        let suffix = "-----"
        guard line.hasPrefix(prefix), line.hasSuffix(suffix), line.count >= prefix.count + suffix.count else { return nil }
        return String(line.dropFirst(prefix.count).dropLast(suffix.count))
    }
}
