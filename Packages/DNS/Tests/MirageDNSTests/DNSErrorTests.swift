import MirageDNS
import Testing

@Suite struct DNSErrorTests {
    /// Zone errors are read by people fixing a file: file, line and reason, in the compiler's shape.
    @Test func zoneErrorNamesFileAndLine() {
        let error = DNSError.zone(file: "example.com.zone", line: 12, reason: "CNAME and other data at www.example.com.")
        #expect(error.description == "example.com.zone:12: CNAME and other data at www.example.com.")
    }
}
