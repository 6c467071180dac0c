// TEMPORARY until t10-resume merges (not to be committed).
struct TLS12Session { var suite: CipherSuite; var masterSecret: [UInt8]; var ticket: [UInt8]; var peerCertificates: [[UInt8]] }
struct SessionState { var suite: CipherSuite; var secret: [UInt8]; var peerCertificates: [[UInt8]] }
final class SessionTicketKeys {}
extension TLSConnection {
    func sessionTicketKeys12(_ configuration: TLSServerConfiguration) -> SessionTicketKeys? { nil }
    func resumableSession12(ticket: [UInt8], hello: ClientHello, offer: ClientOffer, applicationProtocol: String?,
                            configuration: TLSServerConfiguration) -> SessionState? { nil }
    func sendNewSessionTicket12(_ configuration: TLSServerConfiguration) throws(TLSError) {}
    func storeSession12(ticket: NewSessionTicket12, state: TLS12Handshake) {}
}
