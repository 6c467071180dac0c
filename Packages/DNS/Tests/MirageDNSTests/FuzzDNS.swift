// The DNS fuzz targets, shared by libFuzzer (`Scripts/fuzz`, which compiles
// this file with a generated LLVMFuzzerTestOneInput against MirageDevices
// and MirageDNS: see Scripts/fuzzing/targets.txt) and by CorpusReplayTests,
// which runs every file of Corpus/<target>/ through the same function. So
// this file imports only those two modules and the standard library, and
// uses only MirageDNS's public API.
//
// A broken promise traps with `fuzzCheck` (a `fatalError`, whose message
// survives -O); libFuzzer reports it as a crash and the replay test dies
// on it: that trap is the assertion.

import MirageDevices
import MirageDNS

/// The fuzz targets of this package: name → run. Add a target with a line
/// here and one in Scripts/fuzzing/targets.txt.
let fuzzTargets: [(name: String, run: @Sendable (Span<UInt8>) -> FuzzReport)] = [
    ("dns-message", fuzzMessage),
    ("dns-zone", fuzzZoneFile),
    ("dns-server", fuzzServer),
]

/// What a run saw; folded so the optimiser keeps every read.
struct FuzzReport: CustomStringConvertible {
    /// Inputs that decoded as a whole (message or zone).
    var decoded = 0
    /// The decoder's error, if any.
    var error: DNSError? = nil
    /// Records seen in what decoded.
    var records = 0
    var digest: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func mix(_ value: UInt64) { digest = (digest ^ value) &* 0x100_0000_01b3 }

    var description: String {
        "decoded \(decoded), error \(error.map { "\($0)" } ?? "-"), records \(records)"
    }
}

// MARK: - dns-message

/// `dns-message`: the input is one message as a peer sends it. Whatever
/// decodes must encode, decode again to an equal message and encode again
/// to the same bytes; cut to a smaller size it must keep whole RRsets from
/// the front and set TC exactly when an answer or authority record went.
/// Every name's and record's presentation text must read back to it.
func fuzzMessage(_ input: Span<UInt8>) -> FuzzReport {
    var report = FuzzReport()
    let first: Message
    do {
        first = try Message(parsing: input)
    } catch {
        report.error = error
        return report
    }
    report.decoded = 1
    let records = first.answers + first.authority + first.additional
    report.records = records.count
    for q in first.questions { fuzzCheckName(q.name) }
    for r in records {
        fuzzCheckName(r.name)
        fuzzCheckPresentation(r.data)
        report.mix(UInt64(r.type.rawValue) << 32 | UInt64(r.ttl))
    }

    // Encode, decode, encode: the same message, then the same bytes.
    let bytes: [UInt8]
    do {
        bytes = try first.encode()
    } catch {
        // Names written whole where the peer compressed them may not fit 65535 bytes.
        guard case .messageTooLarge = error else { fuzzFail("a decoded message does not encode") }
        return report
    }
    let second: Message
    do {
        second = try fuzzDecode(bytes)
    } catch {
        fuzzFail("our encoding does not decode")
    }
    if second.header.isTruncated && !first.header.isTruncated {
        // Grew past 65535 bytes once names were written whole; cut, as asked.
        fuzzCheckCut(second, of: first)
    } else {
        fuzzCheck(second == first, "decode(encode(m)) != m")
        do {
            fuzzCheck(try second.encode() == bytes, "encode(decode(encode(m))) != encode(m)")
        } catch {
            fuzzFail("a re-decoded message does not encode")
        }
    }
    report.mix(UInt64(bytes.count))

    // A smaller limit, picked by the ID so the fuzzer can steer it.
    let limit = max(Header.size, bytes.count * (Int(first.header.id & 7) + 1) / 8)
    do {
        let cut = try first.encode(limit: limit)
        fuzzCheck(cut.count <= limit, "encode(limit:) went over the limit")
        let third: Message
        do {
            third = try fuzzDecode(cut)
        } catch {
            fuzzFail("a truncated encoding does not decode")
        }
        fuzzCheckCut(third, of: first)
    } catch {
        guard case .messageTooLarge = error else { fuzzFail("encode(limit:) failed other than for size") }
    }
    return report
}

/// Decodes an array (the span taken in one place).
func fuzzDecode(_ bytes: [UInt8]) throws(DNSError) -> Message {
    try Message(parsing: bytes.span)
}

/// `cut` is `whole` encoded under a size limit: same header and question,
/// the answer and authority sections cut at an RRset boundary with TC set
/// if anything went, the additional section a subsequence of whole RRsets.
func fuzzCheckCut(_ cut: Message, of whole: Message) {
    fuzzCheck(cut.questions == whole.questions, "truncation changed the question")
    fuzzCheck(cut.edns == whole.edns, "truncation lost the OPT record")
    fuzzCheck(cut.header.id == whole.header.id && cut.header.opcode == whole.header.opcode, "truncation changed the header")
    fuzzCheck(cut.responseCode == whole.responseCode, "truncation changed the rcode")
    let answersCut = fuzzCheckPrefix(cut.answers, of: whole.answers)
    let authorityCut = fuzzCheckPrefix(cut.authority, of: whole.authority)
    if answersCut { fuzzCheck(cut.authority.isEmpty, "authority after a cut answer section") }
    if answersCut || authorityCut { fuzzCheck(cut.additional.isEmpty, "additional after a cut section") }
    fuzzCheck(cut.header.isTruncated == (whole.header.isTruncated || answersCut || authorityCut), "TC does not say whether answers or authority went")
    // Additional: whole RRsets, in order, some left out.
    var j = 0
    var i = 0
    while i < whole.additional.count {
        var end = i + 1
        while end < whole.additional.count, fuzzSameRRset(whole.additional[end], whole.additional[i]) { end += 1 }
        if j < cut.additional.count, cut.additional[j] == whole.additional[i] {
            for k in i..<end {
                fuzzCheck(j < cut.additional.count && cut.additional[j] == whole.additional[k], "part of an additional RRset left out")
                j += 1
            }
        }
        i = end
    }
    fuzzCheck(j == cut.additional.count, "additional records that were not in the message")
}

/// Checks `part` is a prefix of `whole` ending at an RRset boundary; returns whether it is shorter.
func fuzzCheckPrefix(_ part: [ResourceRecord], of whole: [ResourceRecord]) -> Bool {
    fuzzCheck(part.count <= whole.count, "more records after truncation")
    for k in 0..<part.count { fuzzCheck(part[k] == whole[k], "truncation changed a record") }
    guard part.count < whole.count else { return false }
    if part.count > 0 { fuzzCheck(!fuzzSameRRset(whole[part.count], whole[part.count - 1]), "truncation split an RRset") }
    return true
}

func fuzzSameRRset(_ a: ResourceRecord, _ b: ResourceRecord) -> Bool {
    a.type == b.type && a.class == b.class && a.name == b.name
}

/// A name's text reads back to the same bytes, case included.
func fuzzCheckName(_ name: DomainName) {
    do {
        let back = try DomainName(name.description)
        fuzzCheck(back.wire == name.wire, "a name's text reads back to other bytes")
    } catch {
        fuzzFail("a name's text does not read back")
    }
}

/// Record data's text reads back to the same data.
func fuzzCheckPresentation(_ data: RData) {
    let text = data.presentation
    do {
        let back = try RData(type: data.type, presentation: fuzzTokens(Array(text.utf8)), origin: .root)
        fuzzCheck(back == data, "record data's text reads back to other data")
    } catch {
        fuzzFail("record data's text does not read back")
    }
}

/// Splits presentation text into zone tokens as a zone file lexer would
/// for one line: blanks separate, double quotes group and are removed,
/// backslash escapes are kept as written.
func fuzzTokens(_ text: [UInt8]) -> [ZoneToken] {
    var out: [ZoneToken] = []
    var current: [UInt8] = []
    var inQuotes = false, quoted = false, escaped = false, started = false
    for c in text {
        if escaped {
            current.append(c)
            escaped = false
            continue
        }
        switch c {
        case UInt8(ascii: "\\"):
            current.append(c)
            escaped = true
            started = true
        case UInt8(ascii: "\""):
            if !inQuotes { quoted = true; started = true }
            inQuotes.toggle()
        case UInt8(ascii: " ") where !inQuotes:
            if started { out.append(ZoneToken(text: current, quoted: quoted)) }
            current = []
            quoted = false
            started = false
        default:
            current.append(c)
            started = true
        }
    }
    if started { out.append(ZoneToken(text: current, quoted: quoted)) }
    return out
}

// MARK: - Checks

/// Traps with `message` unless `condition`.
func fuzzCheck(_ condition: Bool, _ message: StaticString, file: StaticString = #file, line: UInt = #line) {
    if !condition { fuzzFail(message, file: file, line: line) }
}

/// Traps with `message`.
@inline(never)
func fuzzFail(_ message: StaticString, file: StaticString = #file, line: UInt = #line) -> Never {
    fatalError("fuzz check failed: \(message)", file: file, line: line)
}
