import MirageDNS
import MirageDevices
import Testing

/// Whole zones: RFC 1035 §5.3's example and a realistic zone.
struct ZoneFileExampleTests {
    /// RFC 1035 §5.3, the master file for ISI.EDU, as printed.
    static let rfc1035Example = """
        @   IN  SOA     VENERA      Action\\.domains (
                                         20     ; SERIAL
                                         7200   ; REFRESH
                                         600    ; RETRY
                                         3600000; EXPIRE
                                         60)    ; MINIMUM

                NS      A.ISI.EDU.
                NS      VENERA
                NS      VAXA
                MX      10      VENERA
                MX      20      VAXA

        A       A       26.3.0.103

        VENERA  A       10.1.0.52
                A       128.9.0.32

        VAXA    A       10.2.0.27
                A       128.9.0.33


        $INCLUDE <SUBSYS>ISI-MAILBOXES.TXT

        """

    /// RFC 1035 §5.3, the included file (the RFC indents it for display only).
    static let rfc1035Mailboxes = """
        MOE     MB      A.ISI.EDU.
        LARRY   MB      A.ISI.EDU.
        CURLEY  MB      A.ISI.EDU.
        STOOGES MG      MOE
                MG      LARRY
                MG      CURLEY

        """

    @Test("RFC 1035 §5.3's master file: no TTL anywhere, so the SOA's MINIMUM (60) applies to all")
    func rfc1035MasterFile() throws {
        let e = try parseZone(Self.rfc1035Example, file: "ISI.EDU", origin: "ISI.EDU.",
                              includes: ["<SUBSYS>ISI-MAILBOXES.TXT": ""])
        #expect(dump(e) == [
            "ISI.EDU. 60 SOA VENERA.ISI.EDU. Action\\.domains.ISI.EDU. 20 7200 600 3600000 60",
            "ISI.EDU. 60 NS A.ISI.EDU.",
            "ISI.EDU. 60 NS VENERA.ISI.EDU.",
            "ISI.EDU. 60 NS VAXA.ISI.EDU.",
            "ISI.EDU. 60 MX 10 VENERA.ISI.EDU.",
            "ISI.EDU. 60 MX 20 VAXA.ISI.EDU.",
            "A.ISI.EDU. 60 A 26.3.0.103",
            "VENERA.ISI.EDU. 60 A 10.1.0.52",
            "VENERA.ISI.EDU. 60 A 128.9.0.32",
            "VAXA.ISI.EDU. 60 A 10.2.0.27",
            "VAXA.ISI.EDU. 60 A 128.9.0.33",
        ])
        #expect(origins(e) == ["ISI.EDU:1", "ISI.EDU:8", "ISI.EDU:9", "ISI.EDU:10", "ISI.EDU:11", "ISI.EDU:12",
                               "ISI.EDU:14", "ISI.EDU:16", "ISI.EDU:17", "ISI.EDU:19", "ISI.EDU:20"])
        guard case .soa(let soa)? = e.first?.record.data else { Issue.record("no SOA first"); return }
        #expect(soa.rname.labels.first == Array("Action.domains".utf8))
    }

    @Test("RFC 1035 §5.3's included mailbox file (MB and MG records, RDATA one domain name)")
    func rfc1035Mailboxes() throws {
        // RData(type:presentation:origin:) takes MB and MG only in the \# form so far.
        withKnownIssue("RData has no presentation parser for MB/MG (RFC 1035 §3.3.3, §3.3.6): reported to the lead") {
            let e = try parseZone(Self.rfc1035Example, file: "ISI.EDU", origin: "ISI.EDU.",
                                  includes: ["<SUBSYS>ISI-MAILBOXES.TXT": Self.rfc1035Mailboxes])
            let isi = name("A.ISI.EDU.").wire
            #expect(e.dropFirst(11).map(\.record.name) == ["MOE", "LARRY", "CURLEY", "STOOGES", "STOOGES", "STOOGES"]
                .map { name($0 + ".ISI.EDU.") })
            #expect(e.dropFirst(11).map(\.record.data) == [
                .unknown(type: RecordType(rawValue: 7), data: isi),
                .unknown(type: RecordType(rawValue: 7), data: isi),
                .unknown(type: RecordType(rawValue: 7), data: isi),
                .unknown(type: RecordType(rawValue: 8), data: name("MOE.ISI.EDU.").wire),
                .unknown(type: RecordType(rawValue: 8), data: name("LARRY.ISI.EDU.").wire),
                .unknown(type: RecordType(rawValue: 8), data: name("CURLEY.ISI.EDU.").wire),
            ])
            #expect(origins(Array(e.dropFirst(11))).allSatisfy { $0.hasPrefix("<SUBSYS>ISI-MAILBOXES.TXT:") })
        }
    }

    /// A zone as an operator would write it: most record types, multi-line
    /// SOA and DKIM, a delegation with glue, a wildcard, an include.
    static let realistic = """
        ; example.com — primary zone
        $ORIGIN example.com.
        $TTL 1h

        @       IN  SOA ns1.example.com. hostmaster.example.com. (
                        2024061501 ; serial
                        2h         ; refresh
                        15m        ; retry
                        2w         ; expire
                        5m )       ; negative caching TTL (RFC 2308)
                IN  NS  ns1
                IN  NS  ns2.example.net.
                IN  MX  10 mail
                IN  MX  20 mail.backup.example.org.
                IN  A   192.0.2.10
                IN  AAAA 2001:db8::10
                IN  TXT "v=spf1 mx -all"
                IN  CAA 0 issue "letsencrypt.org"
                IN  CAA 128 iodef "mailto:security@example.com"

        ns1     IN  A     192.0.2.53
                IN  AAAA  2001:db8::53
        mail 300 IN A     192.0.2.25
        www     IN  CNAME @
        ftp         CNAME www
        *.dev   IN  A     192.0.2.80
        _sip._tcp  SRV 10 60 5060 sip
        sip     IN  A     192.0.2.60
        _dmarc  IN  TXT   "v=DMARC1; p=reject; rua=mailto:dmarc@example.com"
        sel._domainkey IN TXT ( "v=DKIM1; k=rsa; "
                "p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC"
                "3ZsyhW0rN8Ko1ZhoKwCvp2ol" )
        _25._tcp.mail IN TLSA 3 1 1 (
                0C72AC70B745AC19998811B131D662C9
                AC69DBDBE7CB23E5B514B56664C5D3D6 )
        mail    IN  SSHFP 4 2 123456789ABCDEF67890123456789ABCDEF67890123456789ABCDEF123456789
        ; delegation with glue and a DS
        sub     IN  NS    ns.sub
                IN  DS    12345 13 2 ( 3490A6806D47F17A34C29E2CE80E8A99
                                       9FFB4BE4EA08BE4F7A6F1A0A1C4E7E4A )
        ns.sub  IN  A     192.0.2.99
        $INCLUDE hosts.example.com
        last    IN  A     192.0.2.254
        """

    static let hosts = """
        $ORIGIN hosts.example.com.
        h1  A 192.0.2.101
        h2  A 192.0.2.102
            TXT "second host"
        """

    @Test("a realistic zone loads record for record")
    func realisticZone() throws {
        let e = try parseZone(Self.realistic, file: "example.com.zone", includes: ["hosts.example.com": Self.hosts])
        #expect(dump(e) == [
            "example.com. 3600 SOA ns1.example.com. hostmaster.example.com. 2024061501 7200 900 1209600 300",
            "example.com. 3600 NS ns1.example.com.",
            "example.com. 3600 NS ns2.example.net.",
            "example.com. 3600 MX 10 mail.example.com.",
            "example.com. 3600 MX 20 mail.backup.example.org.",
            "example.com. 3600 A 192.0.2.10",
            "example.com. 3600 AAAA 2001:db8::10",
            "example.com. 3600 TXT \"v=spf1 mx -all\"",
            "example.com. 3600 CAA 0 issue \"letsencrypt.org\"",
            "example.com. 3600 CAA 128 iodef \"mailto:security@example.com\"",
            "ns1.example.com. 3600 A 192.0.2.53",
            "ns1.example.com. 3600 AAAA 2001:db8::53",
            "mail.example.com. 300 A 192.0.2.25",
            "www.example.com. 3600 CNAME example.com.",
            "ftp.example.com. 3600 CNAME www.example.com.",
            "*.dev.example.com. 3600 A 192.0.2.80",
            "_sip._tcp.example.com. 3600 SRV 10 60 5060 sip.example.com.",
            "sip.example.com. 3600 A 192.0.2.60",
            "_dmarc.example.com. 3600 TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@example.com\"",
            "sel._domainkey.example.com. 3600 TXT \"v=DKIM1; k=rsa; \" \"p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC\" \"3ZsyhW0rN8Ko1ZhoKwCvp2ol\"",
            "_25._tcp.mail.example.com. 3600 TLSA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6",
            "mail.example.com. 3600 SSHFP 4 2 123456789ABCDEF67890123456789ABCDEF67890123456789ABCDEF123456789",
            "sub.example.com. 3600 NS ns.sub.example.com.",
            "sub.example.com. 3600 DS 12345 13 2 3490A6806D47F17A34C29E2CE80E8A999FFB4BE4EA08BE4F7A6F1A0A1C4E7E4A",
            "ns.sub.example.com. 3600 A 192.0.2.99",
            "h1.hosts.example.com. 3600 A 192.0.2.101",
            "h2.hosts.example.com. 3600 A 192.0.2.102",
            "h2.hosts.example.com. 3600 TXT \"second host\"",
            "last.example.com. 3600 A 192.0.2.254",
        ])
        #expect(origins(e).suffix(4) == ["hosts.example.com:2", "hosts.example.com:3", "hosts.example.com:4", "example.com.zone:43"])
        #expect(e[0].line == 5 && e[1].line == 11)
    }

    @Test("every record of the realistic zone reads back from its presentation text")
    func realisticRoundTrip() throws {
        let e = try parseZone(Self.realistic, includes: ["hosts.example.com": Self.hosts])
        for entry in e {
            let data = entry.record.data
            let again = try RData(type: data.type, presentation: ZoneLexer.tokens(of: data.presentation), origin: .root)
            #expect(again == data, "\(entry.record.name) \(data.type)")
        }
    }
}
