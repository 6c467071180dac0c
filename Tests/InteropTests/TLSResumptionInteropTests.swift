import Foundation
import MirageDevices
import MiragePlatform
import MirageTLSCrypto
import MirageTestNetwork
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Session resumption as the peer sees it. Our server with session tickets
// on and off against `openssl s_client -sess_out`/`-sess_in` (s_client
// prints "Reused, TLSv1.x" or "New, TLSv1.x" and, with -msg, whether the
// server sent a Certificate); our client with a session cache connecting
// twice to `openssl s_server` (-trace shows the pre_shared_key or the
// session ticket offered, and the handshake without Certificate); a forged
// ticket and, in TLS 1.2, an expired one, each of which must cost a full
// handshake and nothing worse.

/// The versions resumption is tested in.
let resumptionVersions: [ProtocolVersion] = [.tls13, .tls12]

@Suite("MirageTLS session resumption against openssl and curl", .serialized, .interop(tools: ["openssl", "curl", "sh", "ss"], needsRoot: false))
struct TLSResumptionInteropTests {
    /// A server configuration with the ECDSA leaf; tickets on or off.
    static func serverSettings(_ pki: TLSTestPKI, tickets: Bool, ticketLifetime: UInt32 = 7200) throws -> TLSServerConfiguration {
        var settings = TLSServerConfiguration(certificates: [try pki.certifiedKey("ecdsa")])
        settings.sessionTickets = tickets
            ? SessionTicketKeys(crypto: SwiftCryptoProvider(), entropy: SystemEntropy(), ticketLifetime: ticketLifetime) : nil
        return settings
    }

    /// A fresh path for an s_client session file.
    static func sessionFile(_ pki: TLSTestPKI) -> String { pki.directory + "/session-\(TestNames.next()).pem" }

    @Test("s_client against our server with tickets on resumes (Reused, no Certificate); with tickets off it gets none and a full handshake",
          arguments: resumptionVersions, [true, false])
    func serverResumption(_ version: ProtocolVersion, tickets: Bool) throws {
        let pki = try testPKI()
        let loop = try EventLoop()
        let stack = try makeTLSStack(loop: loop, server: Self.serverSettings(pki, tickets: tickets))
        let probe = TLSEchoServerProbe(stack: stack, loop: loop)
        let port = try probe.listen()
        let session = Self.sessionFile(pki)
        let first = try runOpenSSLClient(
            serverLoop: loop, port: port, caFile: pki.certificate("ca"), input: "first\n", extra: ["-sess_out", session, "-msg"],
            versionFlags: [version.opensslFlag])
        let out1 = first.output().stdout
        #expect(first.status == 0, "\(first.output())")
        #expect(out1.contains("New, \(version.opensslName), Cipher is"), "\(out1)")
        #expect(out1.contains("echo: first"), "\(out1)")
        let tickets1 = opensslMessageCount(out1, direction: "<<<", message: "NewSessionTicket")
        #expect(opensslMessageCount(out1, direction: "<<<", message: "Certificate") == 1, "\(out1)")

        if tickets {
            #expect(tickets1 >= 1, "no NewSessionTicket: \(out1)")
            try #require(FileManager.default.fileExists(atPath: session), "s_client wrote no session")
            let second = try runOpenSSLClient(
                serverLoop: loop, port: port, caFile: pki.certificate("ca"), input: "second\n", extra: ["-sess_in", session, "-msg"],
                versionFlags: [version.opensslFlag])
            let out2 = second.output().stdout
            #expect(second.status == 0, "\(second.output())")
            #expect(out2.contains("Reused, \(version.opensslName), Cipher is"), "\(out2)")
            #expect(opensslMessageCount(out2, direction: "<<<", message: "Certificate") == 0, "a resumed handshake has no Certificate: \(out2)")
            #expect(out2.contains("echo: second"), "\(out2)")
            #expect(probe.negotiatedHistory.map { $0?.resumed } == [false, true])
            #expect(probe.negotiatedHistory.map { $0?.version } == [version, version])
        } else {
            #expect(tickets1 == 0, "a server without ticket keys sent a ticket: \(out1)")
            // A ticket from another server of ours (its own keys) is not taken either.
            let otherLoop = try EventLoop()
            let other = try makeTLSStack(loop: otherLoop, server: Self.serverSettings(pki, tickets: true))
            let otherPort = try TLSEchoServerProbe(stack: other, loop: otherLoop).listen()
            let foreign = Self.sessionFile(pki)
            let issuing = try runOpenSSLClient(
                serverLoop: otherLoop, port: otherPort, caFile: pki.certificate("ca"), input: "elsewhere\n",
                extra: ["-sess_out", foreign], versionFlags: [version.opensslFlag])
            #expect(issuing.status == 0, "\(issuing.output())")
            try #require(FileManager.default.fileExists(atPath: foreign), "s_client wrote no session")
            // The session of the first connection too, if s_client kept one (a TLS 1.2 session ID).
            let offered = [foreign] + (FileManager.default.fileExists(atPath: session) ? [session] : [])
            for file in offered {
                let again = try runOpenSSLClient(
                    serverLoop: loop, port: port, caFile: pki.certificate("ca"), input: "again\n", extra: ["-sess_in", file, "-msg"],
                    versionFlags: [version.opensslFlag])
                let out = again.output().stdout
                #expect(again.status == 0, "\(again.output())")
                #expect(out.contains("New, \(version.opensslName), Cipher is"), "\(out)")
                #expect(opensslMessageCount(out, direction: "<<<", message: "Certificate") == 1, "\(out)")
                #expect(out.contains("echo: again"), "\(out)")
            }
            #expect(probe.negotiatedHistory.count == 1 + offered.count)
            #expect(probe.negotiatedHistory.allSatisfy { $0?.resumed == false })
            #expect(stack.statistics.handshakesFailed == 0, "\(stack.statistics)")
        }
    }

    @Test("our client with a session cache connects twice to openssl s_server: the second handshake is resumed",
          arguments: resumptionVersions)
    func clientResumption(_ version: ProtocolVersion) throws {
        let pki = try testPKI()
        let (server, port) = try startOpenSSLServer(
            certificate: pki.certificate("ecdsa"), key: pki.key("ecdsa"), extra: ["-rev", "-trace"],
            versionFlags: [version.opensslFlag], connections: 2)
        defer { _ = server.terminate(grace: 2) }
        let loop = try EventLoop()
        var client = TLSClientConfiguration(serverName: "localhost")
        client.sessionCache = TLSClientSessionCache()
        let stack = try makeTLSStack(loop: loop, client: client, caPEM: pki.caPEM)
        let first = try TLSClientProbe(stack: stack, loop: loop, message: "one\n", closeAfter: 4).run(port: port, serverName: "localhost")
        let second = try TLSClientProbe(stack: stack, loop: loop, message: "two\n", closeAfter: 4).run(port: port, serverName: "localhost")
        #expect(first.failure == nil && second.failure == nil,
                "\(String(describing: first.failure)) \(String(describing: second.failure)); \(server.output().stderr)")
        #expect(first.text == "eno\n" && second.text == "owt\n", "\(first.text.debugDescription) \(second.text.debugDescription)")
        #expect(first.negotiated?.version == version && second.negotiated?.version == version)
        #expect(first.negotiated?.resumed == false)
        #expect(second.negotiated?.resumed == true)
        #expect(stack.statistics.handshakesCompleted == 2, "\(stack.statistics)")
        #expect(server.wait(timeout: 10) != nil, "s_server did not end after two connections")
        let out = server.output().stdout
        let clientHellos = opensslTraceMessages(out, named: "ClientHello")
        let serverHellos = opensslTraceMessages(out, named: "ServerHello")
        try #require(clientHellos.count == 2 && serverHellos.count == 2, "\(out)")
        // s_server sent its certificate once: the second handshake was abbreviated.
        #expect(opensslTraceMessages(out, named: "Certificate").count == 1, "\(out)")
        if version == .tls13 {
            // RFC 8446 §4.2.11: our second ClientHello offers the ticket, s_server's ServerHello accepts it.
            #expect(!clientHellos[0].contains("psk(41)") && clientHellos[1].contains("psk(41)"), "\(clientHellos[1])")
            #expect(serverHellos[1].contains("psk(41)"), "\(serverHellos[1])")
            #expect(clientHellos[1].contains("psk_key_exchange_modes(45)"), "\(clientHellos[1])")
        } else {
            // RFC 5077 §3.1: the first ClientHello asks for a ticket (empty extension), the second carries it.
            #expect(clientHellos[0].contains("session_ticket(35), length=0"), "\(clientHellos[0])")
            #expect(clientHellos[1].contains("session_ticket(35)") && !clientHellos[1].contains("session_ticket(35), length=0"),
                    "\(clientHellos[1])")
            #expect(opensslTraceMessages(out, named: "NewSessionTicket").count >= 1, "\(out)")
        }
    }

    @Test("the harness: openssl's own s_server resumes the session s_client saved, and not the copy with the forged ticket",
          arguments: resumptionVersions)
    func forgedSessionFileAgainstOpenSSL(_ version: ProtocolVersion) throws {
        let pki = try testPKI()
        let (server, port) = try startOpenSSLServer(
            certificate: pki.certificate("ecdsa"), key: pki.key("ecdsa"), extra: ["-rev"], versionFlags: [version.opensslFlag],
            connections: 3)
        defer { _ = server.terminate(grace: 2) }
        let session = Self.sessionFile(pki)
        // s_server -rev never closes first: each s_client ends at its input's end (no -ign_eof).
        func connect(_ extra: [String]) throws -> String {
            let argv = ["openssl", "s_client", "-connect", "127.0.0.1:\(port)", version.opensslFlag, "-CAfile", pki.certificate("ca"),
                        "-servername", "localhost"] + extra
            let out = try runCommand(["sh", "-c", "(printf 'x\\n'; sleep 1) | " + argv.map { "'" + $0 + "'" }.joined(separator: " ")],
                                     timeout: 20)
            #expect(out.succeeded, "\(out)")
            return out.stdout
        }
        _ = try connect(["-sess_out", session])
        let forged = try writeSessionWithCorruptedTicket(session)
        #expect(try connect(["-sess_in", forged]).contains("New, \(version.opensslName)"))
        #expect(try connect(["-sess_in", session]).contains("Reused, \(version.opensslName)"))
    }

    @Test("a forged ticket (one byte flipped in s_client's session) costs a full handshake, not a failure; the genuine one resumes",
          arguments: resumptionVersions)
    func forgedTicket(_ version: ProtocolVersion) throws {
        let pki = try testPKI()
        let loop = try EventLoop()
        let stack = try makeTLSStack(loop: loop, server: Self.serverSettings(pki, tickets: true))
        let probe = TLSEchoServerProbe(stack: stack, loop: loop)
        let port = try probe.listen()
        let session = Self.sessionFile(pki)
        let first = try runOpenSSLClient(
            serverLoop: loop, port: port, caFile: pki.certificate("ca"), input: "first\n", extra: ["-sess_out", session],
            versionFlags: [version.opensslFlag])
        #expect(first.status == 0, "\(first.output())")
        try #require(FileManager.default.fileExists(atPath: session), "s_client wrote no session")
        let forged = try writeSessionWithCorruptedTicket(session)

        let withForged = try runOpenSSLClient(
            serverLoop: loop, port: port, caFile: pki.certificate("ca"), input: "forged\n", extra: ["-sess_in", forged, "-msg"],
            versionFlags: [version.opensslFlag])
        let out = withForged.output().stdout
        #expect(withForged.status == 0, "\(withForged.output())")
        #expect(out.contains("New, \(version.opensslName), Cipher is"), "\(out)")
        #expect(opensslMessageCount(out, direction: "<<<", message: "Certificate") == 1, "\(out)")
        #expect(out.contains("echo: forged"), "\(out)")

        // The genuine session still resumes: the forgery, not the server, made the difference.
        let genuine = try runOpenSSLClient(
            serverLoop: loop, port: port, caFile: pki.certificate("ca"), input: "genuine\n", extra: ["-sess_in", session],
            versionFlags: [version.opensslFlag])
        #expect(genuine.output().stdout.contains("Reused, \(version.opensslName), Cipher is"), "\(genuine.output())")
        #expect(probe.negotiatedHistory.map { $0?.resumed } == [false, false, true])
        #expect(stack.statistics.handshakesCompleted == 3 && stack.statistics.handshakesFailed == 0, "\(stack.statistics)")
    }

    @Test("TLS 1.2: a ticket older than the server's ticket lifetime costs a full handshake (s_client still offers it)")
    func expiredTicketTLS12() throws {
        let pki = try testPKI()
        let loop = try EventLoop()
        let stack = try makeTLSStack(loop: loop, server: Self.serverSettings(pki, tickets: true, ticketLifetime: 1))
        let probe = TLSEchoServerProbe(stack: stack, loop: loop)
        let port = try probe.listen()
        let session = Self.sessionFile(pki)
        let first = try runOpenSSLClient(
            serverLoop: loop, port: port, caFile: pki.certificate("ca"), input: "first\n", extra: ["-sess_out", session],
            versionFlags: ["-tls1_2"])
        #expect(first.status == 0, "\(first.output())")
        try #require(FileManager.default.fileExists(atPath: session), "s_client wrote no session")
        try runLoop(loop, seconds: 3) { false }  // the ticket's one second runs out
        let late = try runOpenSSLClient(
            serverLoop: loop, port: port, caFile: pki.certificate("ca"), input: "late\n", extra: ["-sess_in", session, "-trace"],
            versionFlags: ["-tls1_2"])
        let out = late.output().stdout
        #expect(late.status == 0, "\(late.output())")
        // s_client offered the old ticket (a non-empty session_ticket extension)…
        let hello = opensslTraceMessages(out, named: "ClientHello").first ?? ""
        #expect(hello.contains("session_ticket(35)") && !hello.contains("session_ticket(35), length=0"), "\(hello)")
        // …and got a full handshake.
        #expect(out.contains("New, TLSv1.2, Cipher is"), "\(out)")
        #expect(opensslTraceMessages(out, named: "Certificate").count == 1, "\(out)")
        #expect(probe.negotiatedHistory.map { $0?.resumed } == [false, false])
        #expect(stack.statistics.handshakesFailed == 0, "\(stack.statistics)")
    }

    @Test("openssl s_time -reuse -tls1_2 against our server: one TLS 1.2 session resumes connection after connection for a second")
    func sTimeReuseTLS12() throws {
        // TLS 1.2 only: s_time closes right after its handshake and never reads
        // the TLS 1.3 tickets that arrive after it (against s_server too).
        let pki = try testPKI()
        let loop = try EventLoop()
        let stack = try makeTLSStack(loop: loop, server: Self.serverSettings(pki, tickets: true))
        let probe = TLSEchoServerProbe(stack: stack, loop: loop)
        let port = try probe.listen()
        let timer = try SpawnedProcess(["openssl", "s_time", "-connect", "127.0.0.1:\(port)", "-reuse", "-time", "1", "-tls1_2",
                                        "-CAfile", pki.certificate("ca")])
        defer { _ = timer.terminate(grace: 2) }
        try runLoop(loop, seconds: 30) { !timer.isRunning }
        #expect(timer.status == 0, "\(timer.output())")
        // One character per connection: 'r' resumed, '*' full.
        let marks = timer.output().stdout.split(separator: "\n").filter { !$0.isEmpty && $0.allSatisfy { "r*".contains($0) } }.joined()
        let resumed = marks.filter { $0 == "r" }.count
        #expect(marks.count >= 10, "\(timer.output())")
        // Every connection after the first resumes: a ticket is not renewed
        // on each resumption (OpenSSL would then drop the session every other time).
        #expect(resumed >= marks.count - 1, "\(resumed) of \(marks.count) resumed: \(timer.output().stdout.suffix(300))")
        #expect(stack.statistics.handshakesResumed >= 1, "\(stack.statistics)")
    }

    @Test("mirage-www --tls resumes for curl (TLS 1.3) and s_client -tls1_2 (RFC 5077), and not with --no-tickets",
          arguments: [true, false])
    func mirageWWWResumption(_ tickets: Bool) throws {
        let pki = try testPKI()
        let www = try startTLSWWW(["--tls", "--cert", pki.certificate("ecdsa"), "--key", pki.key("ecdsa"), "--port", "0"]
            + (tickets ? [] : ["--no-tickets"]))
        defer { _ = www.process.terminate(grace: 5) }
        let port = try #require(www.url.split(separator: ":").last.flatMap { UInt16($0.prefix { $0 != "/" }) }, "\(www.url)")
        // One curl, two URLs, each on its own connection (Connection: close):
        // the second offers the ticket the first received.
        let curl = try runCommand(
            ["curl", "-sS", "-v", "--fail", "--tlsv1.3", "--cacert", pki.certificate("ca"), "-H", "Connection: close",
             "-o", "/dev/null", "-o", "/dev/null",
             "https://localhost:\(port)/slides/1.html", "https://localhost:\(port)/slides/2.html"], timeout: 30)
        #expect(curl.succeeded, "\(curl)")
        #expect(curl.stderr.contains("SSL re-using session ID") == tickets, "\(curl.stderr)")
        // s_client in TLS 1.2, its session saved and offered again.
        let session = Self.sessionFile(pki)
        let request = "GET /slides/1.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        var outputs: [String] = []
        for extra in [["-sess_out", session], ["-sess_in", session]] {
            if extra[0] == "-sess_in" && !tickets {
                // No ticket, no session file to offer (our server keeps no session IDs).
                #expect(!FileManager.default.fileExists(atPath: session))
                break
            }
            let client = try startOpenSSLClient(port: port, caFile: pki.certificate("ca"), input: request, extra: extra,
                                                versionFlags: ["-tls1_2"])
            defer { _ = client.terminate(grace: 2) }
            #expect(client.wait(timeout: 20) == 0, "\(client.output())")
            outputs.append(client.output().stdout)
        }
        #expect(outputs.first?.contains("New, TLSv1.2, Cipher is") == true, "\(outputs)")
        #expect(outputs.allSatisfy { $0.contains("HTTP/1.1 200") }, "\(outputs)")
        if tickets {
            #expect(outputs.last?.contains("Reused, TLSv1.2, Cipher is") == true, "\(outputs)")
        }
        let handshakes = tickets ? "tls 4 handshakes (2 resumed), 0 failed" : "tls 3 handshakes (0 resumed), 0 failed"
        waitForStatusLine(www.process, containing: [handshakes], timeout: 10)
    }
}
