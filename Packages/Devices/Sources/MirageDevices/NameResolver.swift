/// One host-name lookup made through a `NameResolver`. Valid from
/// `resolveHost` until the handler hears about it or `cancel`.
public struct NameLookupID: Hashable, Sendable, CustomStringConvertible {
    /// The resolver's number for the lookup, never reused by one resolver.
    public var rawValue: UInt64
    /// A lookup identifier.
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public var description: String { "lookup#\(rawValue)" }
}

/// Why a host name could not be turned into addresses. Protocol clients
/// (HTTP) report these without knowing how names are resolved (DNS, a
/// hosts table, a test's fake).
public enum NameResolutionError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The text is not a host name (empty, too long, a bad character).
    case invalidName
    /// The name does not exist (DNS: NXDOMAIN).
    case nameNotFound
    /// The name exists but has no addresses (DNS: NODATA).
    case noAddresses
    /// No server answered in time.
    case timedOut
    /// The servers answered with an error, or nothing could be asked
    /// (no server configured); the text says which.
    case serverFailure(String)
    /// The resolver has too many lookups in progress.
    case tooManyLookups

    public var description: String {
        switch self {
        case .invalidName: "not a valid host name"
        case .nameNotFound: "no such name"
        case .noAddresses: "the name has no addresses"
        case .timedOut: "no answer from the name servers"
        case .serverFailure(let reason): "name servers failed: \(reason)"
        case .tooManyLookups: "too many lookups in progress"
        }
    }
}

/// Receives the outcome of `NameResolver` lookups. Delivered from the run
/// loop (a timer or a stack event), never from inside `resolveHost` or
/// `cancel`: a call made from inside these events takes effect at once.
public protocol NameResolutionHandler: AnyObject {
    /// The lookup found addresses (at least one), in the order to try them.
    func nameResolved(_ lookup: NameLookupID, addresses: [IPAddress])
    /// The lookup failed; the identifier is spent.
    func nameResolutionFailed(_ lookup: NameLookupID, error: NameResolutionError)
}

/// Turns host names into addresses: implemented by MirageDNS's resolver,
/// used by clients (HTTP) that must not depend on DNS. A handler, not a
/// closure, receives the result (Embedded Swift has no `weak`).
public protocol NameResolver: AnyObject {
    /// Starts looking up the addresses of `host` (a host name such as
    /// `www.example.com`, taken as absolute); exactly one event for the
    /// returned lookup follows on `handler`, unless it is cancelled.
    /// Throws when the lookup cannot start (a malformed name, too many
    /// lookups).
    func resolveHost(_ host: String, handler: any NameResolutionHandler) throws(NameResolutionError) -> NameLookupID
    /// Abandons a lookup: its handler hears nothing more about it.
    func cancel(_ lookup: NameLookupID)
}
