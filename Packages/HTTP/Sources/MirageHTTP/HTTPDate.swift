import MirageDevices

/// HTTP dates (RFC 9110 §5.6.7): written as IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`); read in that form and the two
/// obsolete ones (RFC 850 and asctime), as recipients must.
public enum HTTPDate {
    private static let days: [StaticString] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
    private static let months: [StaticString] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// IMF-fixdate for `seconds` since 1970-01-01T00:00:00Z.
    public static func format(_ seconds: Int64) -> String {
        var out = [UInt8]()
        out.reserveCapacity(29)
        append(seconds, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the IMF-fixdate for `seconds`.
    static func append(_ seconds: Int64, to out: inout [UInt8]) {
        let dayNumber = Int64(CivilDate.floorDivide(Int(seconds), 86_400))
        let secondOfDay = Int(seconds - dayNumber * 86_400)
        let (year, month, day) = CivilDate.date(days: Int(dayNumber))
        let weekday = Int(((dayNumber % 7) + 7) % 7)
        ASCII.append(days[weekday], to: &out)
        ASCII.append(", ", to: &out)
        two(day, &out)
        out.append(ASCII.space)
        ASCII.append(months[month - 1], to: &out)
        out.append(ASCII.space)
        let y = max(0, min(9999, year))
        two(y / 100, &out)
        two(y % 100, &out)
        out.append(ASCII.space)
        two(secondOfDay / 3600, &out)
        out.append(ASCII.colon)
        two(secondOfDay / 60 % 60, &out)
        out.append(ASCII.colon)
        two(secondOfDay % 60, &out)
        ASCII.append(" GMT", to: &out)
    }

    private static func two(_ v: Int, _ out: inout [UInt8]) {
        out.append(UInt8(v / 10 % 10) + 0x30)
        out.append(UInt8(v % 10) + 0x30)
    }

    /// Seconds since the epoch for an HTTP-date in any of the three forms,
    /// or nil when `text` is not one (such a field is then ignored, as
    /// RFC 9110 §13.1.3 says for If-Modified-Since).
    public static func parse(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        let span = bytes.span
        // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
        if bytes.count == 29, bytes[3] == ASCII.comma, bytes[4] == ASCII.space {
            return build(span, day: 5, month: 8, year: 12, yearDigits: 4, time: 17, gmt: 26)
        }
        // asctime: "Sun Nov  6 08:49:37 1994"
        if bytes.count == 24, bytes[3] == ASCII.space {
            let dayRange = bytes[8] == ASCII.space ? 9..<10 : 8..<10
            guard let day = ASCII.decimal(span, dayRange), let month = monthNumber(span, 4),
                  let year = ASCII.decimal(span, 20..<24), let time = clock(span, 11) else { return nil }
            return epochSeconds(year: year, month: month, day: day, time: time)
        }
        // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
        if let comma = bytes.firstIndex(of: ASCII.comma), bytes.count == comma + 24,
           bytes[comma + 4] == 0x2D, bytes[comma + 8] == 0x2D {
            let base = comma + 2
            guard let day = ASCII.decimal(span, base..<(base + 2)), let month = monthNumber(span, base + 3),
                  let yy = ASCII.decimal(span, (base + 7)..<(base + 9)), let time = clock(span, base + 10),
                  bytes[base + 18] == ASCII.space, ASCII.equalsIgnoringCase(span, (base + 19)..<(base + 22), "gmt")
            else { return nil }
            // Two-digit years more than 50 years ahead are in the past (RFC 9110 §5.6.7).
            let year = yy < 70 ? 2000 + yy : 1900 + yy
            return epochSeconds(year: year, month: month, day: day, time: time)
        }
        return nil
    }

    private static func build(_ span: borrowing Span<UInt8>, day: Int, month: Int, year: Int, yearDigits: Int, time: Int, gmt: Int) -> Int64? {
        guard let d = ASCII.decimal(span, day..<(day + 2)), span[day + 2] == ASCII.space,
              let m = monthNumber(span, month), span[month + 3] == ASCII.space,
              let y = ASCII.decimal(span, year..<(year + yearDigits)), span[year + yearDigits] == ASCII.space,
              let t = clock(span, time), span[gmt - 1] == ASCII.space,
              span[gmt] == 0x47, span[gmt + 1] == 0x4D, span[gmt + 2] == 0x54
        else { return nil }
        return epochSeconds(year: y, month: m, day: d, time: t)
    }

    private static func monthNumber(_ span: borrowing Span<UInt8>, _ at: Int) -> Int? {
        for (i, name) in months.enumerated() where ASCII.equalsIgnoringCase(span, at..<(at + 3), lowercased(name)) {
            return i + 1
        }
        return nil
    }

    private static func lowercased(_ s: StaticString) -> String {
        String(decoding: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount).map(ASCII.lower), as: UTF8.self)
    }

    /// "hh:mm:ss" at `at` as seconds of the day.
    private static func clock(_ span: borrowing Span<UInt8>, _ at: Int) -> Int? {
        guard span[at + 2] == ASCII.colon, span[at + 5] == ASCII.colon,
              let h = ASCII.decimal(span, at..<(at + 2)), let m = ASCII.decimal(span, (at + 3)..<(at + 5)),
              let s = ASCII.decimal(span, (at + 6)..<(at + 8)), h < 24, m < 60, s < 61
        else { return nil }
        return h * 3600 + m * 60 + s
    }

    private static func epochSeconds(year: Int, month: Int, day: Int, time: Int) -> Int64? {
        guard (1...12).contains(month), (1...31).contains(day), (1...9999).contains(year) else { return nil }
        return Int64(CivilDate.days(year: year, month: month, day: day)) * 86_400 + Int64(time)
    }
}
