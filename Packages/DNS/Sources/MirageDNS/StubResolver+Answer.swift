// What an accepted NOERROR or NXDOMAIN answer says about a question.

extension StubResolver {
    /// The reading of one answer.
    enum Outcome: Equatable {
        /// The lookup's result.
        case result(LookupResult)
        /// The chain is too long or loops.
        case failure(DNSError)
        /// A referral to `zone`: the server does not recurse.
        case referral(zone: DomainName)
        /// The answer ended at a CNAME whose target it does not cover: ask
        /// for the target.
        case restart(DomainName)
    }

    /// Reads `message` as the answer to `question` (RFC 1034 §5.3.3 step 3,
    /// RFC 2308): follows the CNAME chain from the question's name through
    /// the answer section, appending each CNAME to `aliases`, then takes
    /// the RRset at its end, or a negative answer with its SOA.
    ///
    /// Only the records on the chain are used: other records in the answer
    /// (unrelated names, other classes) are ignored, so they can never
    /// reach the cache (RFC 5452 §6's "in-bailiwick" spirit for a stub).
    /// `original` is the lookup's first name, for loop detection across
    /// restarts.
    static func interpret(_ message: Message, question: Question, original: DomainName,
                          aliases: inout [ResourceRecord], configuration: Configuration) -> Outcome {
        var name = question.name
        let cap = configuration.cache
        // Each turn follows one CNAME, bounded by maximumCNAMEChain.
        while true {
            var rrset: [ResourceRecord] = []
            for r in message.answers where r.name == name && r.class == question.class && r.type == question.type {
                rrset.append(r)
            }
            if !rrset.isEmpty {
                var ttl = cap.maximumTTL
                for r in rrset { ttl = min(ttl, r.ttl) }
                for r in aliases { ttl = min(ttl, r.ttl) }
                return .result(.answer(LookupAnswer(name: name, records: rrset, aliases: aliases, ttl: ttl)))
            }
            guard question.type != .cname && question.type != .any,
                  let alias = message.answers.first(where: { $0.name == name && $0.class == question.class && $0.type == .cname }),
                  case .cname(let target) = alias.data
            else { break }
            guard aliases.count < configuration.maximumCNAMEChain else { return .failure(.tooManyCNAMEs) }
            // A target already on the chain is a loop.
            guard target != original, !aliases.contains(where: { $0.name == target }) else { return .failure(.tooManyCNAMEs) }
            aliases.append(alias)
            name = target
        }
        // No records at the end of the chain. RFC 2308 §5: the SOA in the
        // authority section, of a zone holding the name, gives the negative TTL.
        let soa = message.authority.first { r in
            if case .soa = r.data { return r.class == question.class && name.isSubdomain(of: r.name) }
            return false
        }
        var negativeTTL: UInt32 = 0
        if let soa, case .soa(let fields) = soa.data {
            negativeTTL = min(soa.ttl, fields.minimum, cap.maximumNegativeTTL)
            for r in aliases { negativeTTL = min(negativeTTL, r.ttl) }
        }
        let negative = NegativeAnswer(name: name, aliases: aliases, soa: soa, ttl: negativeTTL)
        if message.responseCode == .nameError { return .result(.nameError(negative)) }
        if soa == nil {
            // The chain ended in this answer at a target it says nothing
            // about: an authoritative server stops at its zone's edge.
            if name != question.name { return .restart(name) }
            // No answer, no SOA, name servers in authority, not
            // authoritative: a referral (RFC 1034 §4.3.2 step 3b).
            if !message.header.isAuthoritative,
               let ns = message.authority.first(where: { $0.type == .ns && question.name.isSubdomain(of: $0.name) }) {
                return .referral(zone: ns.name)
            }
        }
        return .result(.noData(negative))
    }
}
