import MirageDevices

/// The header (or trailer) fields of a message, in order, duplicates kept
/// (RFC 9110 §5). Names compare ignoring ASCII case.
///
/// Stored as one byte buffer plus offsets, so a parsed head costs two
/// allocations however many fields it has; names and values become
/// `String`s only when asked for.
public struct HTTPFields: Sendable, Sequence {
    struct Entry: Sendable {
        var nameStart: Int
        var nameEnd: Int
        /// The value runs from `nameEnd` to here.
        var valueEnd: Int
    }

    var storage: [UInt8] = []
    var entries: [Entry] = []

    /// No fields.
    public init() {}

    /// Fields from (name, value) pairs; see `append`.
    public init(_ pairs: [(String, String)]) {
        for (name, value) in pairs { append(name: name, value: value) }
    }

    /// The number of field lines.
    public var count: Int { entries.count }
    /// Whether there are none.
    public var isEmpty: Bool { entries.isEmpty }

    /// The name of field `index`, as received.
    public func name(at index: Int) -> String {
        let e = entries[index]
        return Bytes.string(storage.span, e.nameStart..<e.nameEnd)
    }

    /// The value of field `index`, without surrounding whitespace.
    public func value(at index: Int) -> String {
        let e = entries[index]
        return Bytes.string(storage.span, e.nameEnd..<e.valueEnd)
    }

    /// The first value of the field `name`, or nil.
    public subscript(name: String) -> String? {
        guard let i = firstIndex(of: name) else { return nil }
        return value(at: i)
    }

    /// Every value of the field `name`, in order.
    public func values(of name: String) -> [String] {
        var out: [String] = []
        for i in entries.indices where nameEquals(i, name) { out.append(value(at: i)) }
        return out
    }

    /// Whether a field `name` is present.
    public func contains(_ name: String) -> Bool { firstIndex(of: name) != nil }

    /// The index of the first field `name`.
    public func firstIndex(of name: String) -> Int? {
        for i in entries.indices where nameEquals(i, name) { return i }
        return nil
    }

    /// Whether a field `name` holds `token` in its comma-separated list
    /// (e.g. `Connection: keep-alive, Upgrade`), ignoring ASCII case.
    public func containsToken(_ token: String, in name: String) -> Bool {
        let span = storage.span
        for i in entries.indices where nameEquals(i, name) {
            var found = false
            ASCII.forEachListElement(span, valueRange(i)) { element in
                if ASCII.equalsIgnoringCase(span, element, token) { found = true; return false }
                return true
            }
            if found { return true }
        }
        return false
    }

    /// Adds a field line. `name` must be a token and `value` field
    /// characters without CR, LF or NUL (check untrusted text with
    /// `isValidValue` first); surrounding whitespace is dropped.
    public mutating func append(name: String, value: String) {
        precondition(Self.isValidName(name), "invalid HTTP field name")
        precondition(Self.isValidValue(value), "invalid HTTP field value (control character)")
        let nameStart = storage.count
        storage.append(contentsOf: name.utf8)
        let nameEnd = storage.count
        storage.append(contentsOf: value.utf8)
        // Surrounding whitespace is not part of a value (RFC 9110 §5.5).
        while storage.count > nameEnd, ASCII.isWhitespace(storage[storage.count - 1]) { storage.removeLast() }
        var first = nameEnd
        while first < storage.count, ASCII.isWhitespace(storage[first]) { first += 1 }
        if first > nameEnd { storage.removeSubrange(nameEnd..<first) }
        entries.append(Entry(nameStart: nameStart, nameEnd: nameEnd, valueEnd: storage.count))
    }

    /// Replaces every field `name` by one with `value`.
    public mutating func set(name: String, value: String) {
        remove(name)
        append(name: name, value: value)
    }

    /// Removes every field `name`. (Their bytes stay in the buffer until
    /// the fields are dropped: removal is rare and fields are short-lived.)
    public mutating func remove(_ name: String) {
        let bytes = storage
        entries.removeAll { e in ASCII.equalsIgnoringCase(bytes.span, e.nameStart..<e.nameEnd, name) }
    }

    /// Whether `name` is a valid field name (a token, RFC 9110 §5.1).
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && ASCII.allBytes(of: name, ASCII.isTokenCharacter)
    }

    /// Whether `value` may be sent as a field value (RFC 9110 §5.5: no CR,
    /// LF, NUL or other controls but HTAB).
    public static func isValidValue(_ value: String) -> Bool {
        ASCII.allBytes(of: value, ASCII.isFieldValueCharacter)
    }

    public func makeIterator() -> Iterator { Iterator(fields: self) }

    /// Iterates over (name, value) pairs.
    public struct Iterator: IteratorProtocol {
        let fields: HTTPFields
        var index = 0
        public mutating func next() -> (name: String, value: String)? {
            guard index < fields.count else { return nil }
            defer { index += 1 }
            return (fields.name(at: index), fields.value(at: index))
        }
    }

    // MARK: For the parser and serializer

    func nameEquals(_ index: Int, _ name: String) -> Bool {
        let e = entries[index]
        return ASCII.equalsIgnoringCase(storage.span, e.nameStart..<e.nameEnd, name)
    }

    func nameEquals(_ index: Int, _ lowercase: StaticString) -> Bool {
        let e = entries[index]
        return ASCII.equalsIgnoringCase(storage.span, e.nameStart..<e.nameEnd, lowercase)
    }

    func valueRange(_ index: Int) -> Range<Int> { entries[index].nameEnd..<entries[index].valueEnd }

    /// Adds a field whose bytes the parser already checked.
    mutating func appendChecked(name: Span<UInt8>, value: Span<UInt8>) {
        let nameStart = storage.count
        storage.append(span: name)
        let nameEnd = storage.count
        storage.append(span: value)
        entries.append(Entry(nameStart: nameStart, nameEnd: nameEnd, valueEnd: storage.count))
    }

    /// Writes `name: value\r\n` for every field.
    func write(to out: inout [UInt8]) {
        for e in entries {
            out.append(contentsOf: storage[e.nameStart..<e.nameEnd])
            out.append(ASCII.colon)
            out.append(ASCII.space)
            out.append(contentsOf: storage[e.nameEnd..<e.valueEnd])
            out.append(ASCII.cr)
            out.append(ASCII.lf)
        }
    }
}
