import MirageTLS
import Testing

@Suite("Alerts")
struct AlertTests {
    @Test("an alert is exactly two bytes, level then description")
    func alertBytes() throws {
        let alert = try Alert(parsing: [2, 40])
        #expect(alert.level == .fatal)
        #expect(alert.description == .handshakeFailure)
        #expect(alert.bytes == [2, 40])
        #expect(throws: TLSError.self) { try Alert(parsing: [2]) }
        #expect(throws: TLSError.self) { try Alert(parsing: [2, 40, 0]) }
    }

    @Test("every RFC 8446 alert has its registry name and value")
    func names() {
        #expect(AlertDescription.all.count == 28)
        #expect(Set(AlertDescription.all.map(\.rawValue)).count == 28)
        #expect(AlertDescription.noRenegotiation.rawValue == 100)
        #expect(AlertDescription.noRenegotiation.description == "no_renegotiation")
        #expect(AlertDescription.badRecordMAC.description == "bad_record_mac")
        #expect(AlertDescription.noApplicationProtocol.rawValue == 120)
        #expect(AlertDescription(rawValue: 200).description == "alert(200)")
    }

    @Test("errors map to the alert RFC 8446 §6.2 names for them", arguments: [
        (TLSError.badRecordMAC, AlertDescription.badRecordMAC),
        (.recordOverflow(length: 20000), .recordOverflow),
        (.decodeError("x"), .decodeError),
        (.missingExtension(.keyShare), .missingExtension),
        (.badCertificate(.expired(notAfter: "t")), .certificateExpired),
        (.badCertificate(.untrustedRoot(issuer: "CN=x")), .unknownCA),
        (.badCertificate(.missingExtendedKeyUsage("serverAuth")), .unsupportedCertificate),
        (.badCertificate(.hostnameMismatch(expected: "a.test")), .badCertificate),
        (.noApplicationProtocol, .noApplicationProtocol),
        (.limitExceeded("x"), .internalError),
    ])
    func alertMapping(error: TLSError, alert: AlertDescription) {
        #expect(error.alert == alert)
    }

    @Test("SNI certificate selection: exact names and one-label wildcards")
    func certificateNames() {
        final class NoKey: SigningKey {
            var signatureSchemes: [SignatureScheme] { [] }
            func sign(_ message: [UInt8], scheme: SignatureScheme) throws(TLSError) -> [UInt8] { throw .internalError("unused") }
        }
        let key = CertifiedKey(chain: [], key: NoKey(), serverNames: ["www.example.test", "*.mirage.test"])
        #expect(key.matches(serverName: "WWW.Example.test"))
        #expect(key.matches(serverName: "a.mirage.test"))
        #expect(!key.matches(serverName: "mirage.test"))
        #expect(!key.matches(serverName: "a.b.mirage.test"))
        #expect(!key.matches(serverName: "example.test"))
    }
}
