/// Media types by file extension for the static file handler.
public enum ContentType {
    /// The media type for `key`'s extension, `application/octet-stream`
    /// when unknown.
    public static func forKey(_ key: String) -> String {
        guard let dot = key.utf8.lastIndex(of: ASCII.dot) else { return fallback }
        let ext = key[key.index(after: dot)...]
        switch ext {
        case "html", "htm": return "text/html; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "js", "mjs": return "text/javascript; charset=utf-8"
        case "json": return "application/json"
        case "txt", "md": return "text/plain; charset=utf-8"
        case "xml": return "application/xml"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "webp": return "image/webp"
        case "ico": return "image/vnd.microsoft.icon"
        case "pdf": return "application/pdf"
        case "wasm": return "application/wasm"
        case "woff": return "font/woff"
        case "woff2": return "font/woff2"
        default: return fallback
        }
    }

    /// For unknown extensions (RFC 9110 §8.3: a recipient may then sniff;
    /// we say "bytes").
    public static let fallback = "application/octet-stream"
}
