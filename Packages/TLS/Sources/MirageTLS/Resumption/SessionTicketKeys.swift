import MirageDevices

/// The keys a server seals its session tickets with (RFC 8446 §4.6.1,
/// RFC 5077 §4), shared by all connections of a server. A ticket is
/// key name(16) || nonce(12) || AES-256-GCM(issue time(8) || state), the key
/// name as additional data: the server keeps no per-session state, and a
/// ticket changed in any bit, sealed under a key it no longer holds, or older
/// than `ticketLifetime` does not open.
///
/// Keys come from the entropy source and rotate every `rotationInterval`;
/// a retired key is kept only as long as tickets it sealed can still be
/// valid (and at most `maximumRetiredKeys` of them).
public final class SessionTicketKeys {
    /// Length of a key's name, which starts each ticket (RFC 5077 §4 uses 16).
    public static let keyNameLength = 16
    /// AES-GCM nonce length (RFC 5116 §5.1).
    public static let nonceLength = 12
    /// AES-256 key length.
    static let keyLength = 32
    /// Length of the sealed issue time (nanoseconds of the driver's clock).
    static let issueTimeLength = 8
    /// GCM tag length.
    static let tagLength = 16
    /// Bytes a ticket adds to the state it seals.
    public static let overhead = keyNameLength + nonceLength + issueTimeLength + tagLength
    /// Retired keys kept at most, whatever the lifetime: bounds memory and
    /// how long a forced `rotate` leaves old tickets usable.
    public static let maximumRetiredKeys = 4
    /// Tickets sealed under one key before it is replaced: random 96-bit GCM
    /// nonces stay safe well below 2^32 messages per key (NIST SP 800-38D §8.3).
    static let maximumSealsPerKey: UInt64 = 1 << 30
    /// Longest ticket lifetime (RFC 8446 §4.6.1: 7 days).
    public static let maximumTicketLifetime: UInt32 = 604_800

    struct Key {
        var name: [UInt8]
        var aead: any AEADKey
        /// When it started sealing.
        var created: Instant
        /// When it stopped sealing (retired keys only).
        var retired: Instant?
        var seals: UInt64 = 0
    }

    /// Seconds a ticket is valid after it was issued (at most 7 days); the
    /// lifetime announced in NewSessionTicket.
    public let ticketLifetime: UInt32
    /// How long one key seals tickets before the next one takes over.
    public let rotationInterval: Interval

    private let crypto: any CryptoProvider
    private let entropy: any EntropySource
    private var current: Key?
    private var retiredKeys: [Key] = []

    /// Ticket keys drawing their key material from `entropy`. The first key
    /// is made on the first `seal` (or `rotate`).
    public init(crypto: any CryptoProvider, entropy: any EntropySource, rotationInterval: Interval = .seconds(3600),
                ticketLifetime: UInt32 = 7200) {
        self.crypto = crypto
        self.entropy = entropy
        self.rotationInterval = rotationInterval
        self.ticketLifetime = min(ticketLifetime, Self.maximumTicketLifetime)
    }

    /// Keys held now, current and retired (tests and monitoring).
    public var keyCount: Int { (current == nil ? 0 : 1) + retiredKeys.count }

    /// Replaces the sealing key with a fresh one from the entropy source now;
    /// the old key still opens its tickets while they live.
    public func rotate(now: Instant) {
        if var old = current {
            old.retired = now
            retiredKeys.insert(old, at: 0)
        }
        current = Key(name: randomBytes(Self.keyNameLength),
                      aead: crypto.makeAEADKey(.aes256GCM, key: randomBytes(Self.keyLength)), created: now)
        dropExpiredKeys(now: now)
    }

    /// Seals `state` into a ticket, rotating first when the current key is
    /// older than `rotationInterval` (or has sealed its share).
    public func seal(_ state: [UInt8], now: Instant) -> [UInt8] {
        var needsKey = true
        if let key = current { needsKey = now - key.created >= rotationInterval || key.seals >= Self.maximumSealsPerKey }
        if needsKey { rotate(now: now) }
        guard var key = current else { return [] }
        key.seals += 1
        current = key
        let nonce = randomBytes(Self.nonceLength)
        var plaintext: [UInt8] = []
        plaintext.reserveCapacity(Self.issueTimeLength + state.count)
        for shift in stride(from: 56, through: 0, by: -8) { plaintext.append(UInt8(truncatingIfNeeded: now.nanoseconds >> UInt64(shift))) }
        plaintext.append(contentsOf: state)
        var ticket = key.name
        ticket.append(contentsOf: nonce)
        ticket.append(contentsOf: key.aead.seal(nonce: nonce, additionalData: key.name, plaintext: plaintext))
        return ticket
    }

    /// The state sealed in `ticket`, or nil when the ticket is forged or
    /// damaged, was sealed under a key no longer held, or is older than
    /// `ticketLifetime` at `now`.
    public func open(_ ticket: [UInt8], now: Instant) -> [UInt8]? {
        openTicket(ticket, now: now)?.state
    }

    /// `open` with the time the ticket was issued (TLS 1.3 checks the
    /// client's view of the ticket's age against it, RFC 8446 §8.3).
    func openTicket(_ ticket: [UInt8], now: Instant) -> (state: [UInt8], issued: Instant)? {
        dropExpiredKeys(now: now)
        let headerLength = Self.keyNameLength + Self.nonceLength
        guard ticket.count >= headerLength + Self.issueTimeLength + Self.tagLength else { return nil }
        let name = Array(ticket[0..<Self.keyNameLength])
        let key: Key
        if let current, current.name == name {
            key = current
        } else if let retired = retiredKeys.first(where: { $0.name == name }) {
            key = retired
        } else {
            return nil
        }
        let nonce = Array(ticket[Self.keyNameLength..<headerLength])
        guard let plaintext = key.aead.open(nonce: nonce, additionalData: name, ciphertextAndTag: Array(ticket[headerLength...])),
              plaintext.count >= Self.issueTimeLength else { return nil }
        var nanoseconds: UInt64 = 0
        for byte in plaintext[0..<Self.issueTimeLength] { nanoseconds = nanoseconds << 8 | UInt64(byte) }
        let issued = Instant(nanoseconds: nanoseconds)
        // A ticket from the future (a clock reset) or past its lifetime is refused.
        guard issued <= now, now - issued <= .seconds(Int64(ticketLifetime)) else { return nil }
        return (Array(plaintext[Self.issueTimeLength...]), issued)
    }

    /// True when `ticket` names the current key (false for a retired or unknown one).
    func isSealedWithCurrentKey(_ ticket: [UInt8]) -> Bool {
        guard let current, ticket.count >= Self.keyNameLength else { return false }
        return Array(ticket[0..<Self.keyNameLength]) == current.name
    }

    /// Forgets retired keys whose tickets have all expired, and the oldest
    /// beyond `maximumRetiredKeys`.
    private func dropExpiredKeys(now: Instant) {
        let lifetime = Interval.seconds(Int64(ticketLifetime))
        retiredKeys.removeAll { key in
            guard let retired = key.retired else { return true }
            return now - retired > lifetime
        }
        if retiredKeys.count > Self.maximumRetiredKeys {
            retiredKeys.removeLast(retiredKeys.count - Self.maximumRetiredKeys)
        }
    }

    /// Fills bytes from the entropy source (through `fill`, as
    /// `TLSConnection.randomBytes` does, for Embedded Swift).
    private func randomBytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var span = out.mutableSpan
        entropy.fill(&span)
        _ = consume span
        return out
    }
}
