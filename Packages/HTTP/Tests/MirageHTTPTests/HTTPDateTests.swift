import MirageHTTP
import Testing

@Suite("HTTP dates")
struct HTTPDateTests {
    /// IMF-fixdate ↔ seconds since the epoch.
    static let fixdates: [(String, Int64)] = [
        // RFC 9110 §5.6.7's example.
        ("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0),
        ("Wed, 31 Dec 1969 23:59:59 GMT", -1),
        // Leap years: 2000 (divisible by 400), 2024; 1900 and 2100 are not.
        ("Tue, 29 Feb 2000 00:00:00 GMT", 951_782_400),
        ("Thu, 29 Feb 2024 12:00:00 GMT", 1_709_208_000),
        ("Thu, 01 Mar 1900 00:00:00 GMT", -2_203_891_200),
        ("Sun, 28 Feb 2100 23:59:59 GMT", 4_107_542_399),
        ("Mon, 01 Mar 2100 00:00:00 GMT", 4_107_542_400),
        ("Tue, 29 Feb 1600 00:00:00 GMT", -11_670_998_400),
        // 2038: past the 32-bit signed second counter.
        ("Tue, 19 Jan 2038 03:14:07 GMT", 2_147_483_647),
        ("Tue, 19 Jan 2038 03:14:08 GMT", 2_147_483_648),
        ("Tue, 01 Jan 2069 00:00:00 GMT", 3_124_224_000),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 253_402_300_799),
    ]

    @Test("IMF-fixdate formats and parses", arguments: fixdates)
    func fixdate(text: String, seconds: Int64) {
        #expect(HTTPDate.format(seconds) == text)
        #expect(HTTPDate.parse(text) == seconds)
    }

    /// The three forms of RFC 9110 §5.6.7, all for the same instant.
    @Test("the obsolete forms are read too", arguments: [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "Sun Nov 06 08:49:37 1994",
        "sun, 06 nov 1994 08:49:37 GMT",
    ])
    func obsoleteForms(text: String) {
        #expect(HTTPDate.parse(text) == 784_111_777)
    }

    @Test("RFC 850 two-digit years", arguments: [
        ("Thursday, 01-Jan-70 00:00:00 GMT", Int64(0)),
        ("Tuesday, 01-Jan-69 00:00:00 GMT", Int64(3_124_224_000)),
        ("Tuesday, 29-Feb-00 00:00:00 GMT", Int64(951_782_400)),
    ])
    func rfc850Years(text: String, seconds: Int64) {
        #expect(HTTPDate.parse(text) == seconds)
    }

    @Test("not dates", arguments: [
        "", "yesterday", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT ", "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 0000 08:49:37 GMT",
        "Sun, 06 Nov 1994 08-49-37 GMT", "Sunday, 06-Nov-94 08:49:37 PST", "Sun Nov  6 08:49:37 94  ",
        "Sun, +6 Nov 1994 08:49:37 GMT",
    ])
    func invalid(text: String) {
        #expect(HTTPDate.parse(text) == nil)
    }

    @Test("format → parse round trip over four centuries")
    func roundTrip() {
        var seconds: Int64 = -2_208_988_800 // 1900-01-01
        let step: Int64 = 86_400 * 37 + 3_607 // walks through every weekday, month and many times of day
        while seconds < 10_000_000_000 {
            let text = HTTPDate.format(seconds)
            #expect(text.utf8.count == 29)
            #expect(HTTPDate.parse(text) == seconds, "\(text)")
            if HTTPDate.parse(text) != seconds { return }
            seconds += step
        }
    }
}
