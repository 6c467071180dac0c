// The `dns-zone` fuzz target (listed in FuzzDNS.swift's `fuzzTargets` and
// Scripts/fuzzing/targets.txt). Like FuzzDNS.swift it imports only
// MirageDevices and MirageDNS and traps with `fuzzCheck` on a broken promise.
//
// Input layout: the bytes up to the first NUL are the zone file ("zone");
// the bytes after it, if any, are the key-value store's "inc". The store
// also holds "fixed", a small include with its own $ORIGIN and $TTL, so a
// seed can `$INCLUDE fixed`, `$INCLUDE inc` (which may include itself).

import MirageDevices
import MirageDNS

/// The include every run's store holds besides the input's own.
let fuzzZoneFixedInclude: [UInt8] = Array("""
    $ORIGIN fixed.example.
    $TTL 1h
    @ NS ns
    ns A 192.0.2.53
      AAAA 2001:db8::53
    txt TXT "a b" c\\059d
    """.utf8)

/// The origin every run starts with.
let fuzzZoneOrigin: DomainName = {
    do { return try DomainName("example.com.") } catch { fuzzFail("the fuzz origin does not parse") }
}()

/// `dns-zone`: parse the input as a zone file. An error must name one of
/// the files and a line inside it. Whatever loads must hold only IN
/// records of storable types with TTLs in range, each entry pointing at a
/// line of its file; each record's data must read back from its
/// presentation text (tokenised by ZoneLexer); the whole zone written out
/// as text must parse back to the same records; and the records must go
/// through the wire format and back unchanged.
func fuzzZoneFile(_ input: Span<UInt8>) -> FuzzReport {
    var report = FuzzReport()
    var zone: [UInt8] = []
    var include: [UInt8]? = nil
    for i in input.indices {
        if input[i] == 0 {
            include = []
            include!.append(span: input.extracting((i + 1)...))
            break
        }
        zone.append(input[i])
    }
    var files: [String: [UInt8]] = ["fixed": fuzzZoneFixedInclude]
    if let include { files["inc"] = include }
    let store = MemoryKeyValueStore(files)
    files["zone"] = zone

    let entries: [ZoneFileEntry]
    do {
        entries = try ZoneFileParser.parse(zone, file: "zone", origin: fuzzZoneOrigin, includes: store)
    } catch {
        report.error = error
        guard case .zone(let file, let line, _) = error else { fuzzFail("a zone error that is not .zone") }
        // A missing include is reported at the $INCLUDE line, so the file is always one we have.
        guard let text = files[file] else { fuzzFail("an error naming a file that does not exist") }
        fuzzCheck(line >= 1 && line <= fuzzLineCount(text), "an error line outside its file")
        return report
    }
    report.decoded = 1
    report.records = entries.count

    for entry in entries {
        let record = entry.record
        guard let text = files[entry.file] else { fuzzFail("an entry naming a file that does not exist") }
        fuzzCheck(entry.line >= 1 && entry.line <= fuzzLineCount(text), "an entry line outside its file")
        fuzzCheck(record.class == .in, "a record of a class other than IN")
        fuzzCheck(record.ttl <= ZoneFileParser.maximumTTL, "a TTL over 2^31-1")
        let t = record.type.rawValue
        fuzzCheck(t != 0 && t != 41 && !(128...255).contains(t), "a meta type in a zone")
        fuzzCheckName(record.name)
        fuzzCheckZonePresentation(record.data)
        report.mix(UInt64(t) << 32 | UInt64(record.ttl))
    }

    // The zone written out as text reads back to the same records, names byte for byte.
    var dumped: [UInt8] = []
    for entry in entries {
        let r = entry.record
        dumped.append(contentsOf: "\(r.name) \(r.ttl) IN \(r.type) \(r.data.presentation)\n".utf8)
    }
    do {
        let again = try ZoneFileParser.parse(dumped, file: "dump", origin: .root, includes: MemoryKeyValueStore())
        fuzzCheck(again.count == entries.count, "a dumped zone reads back to another number of records")
        for (a, b) in zip(again, entries) {
            fuzzCheck(a.record == b.record, "a dumped zone reads back to other records")
            fuzzCheck(a.record.name.wire == b.record.name.wire, "a dumped owner name reads back to other bytes")
        }
    } catch {
        fuzzFail("a dumped zone does not parse")
    }

    // Through the wire: the records as the answers of a message.
    var message = Message(header: Header(id: 1))
    message.header.isResponse = true
    message.answers = entries.prefix(64).map(\.record)
    do {
        let bytes = try message.encode()
        let back = try Message(parsing: bytes.span)
        fuzzCheck(back.answers == message.answers, "records read from a zone change through the wire format")
        report.mix(UInt64(bytes.count))
    } catch {
        guard case .messageTooLarge = error else { fuzzFail("records read from a zone do not encode or decode") }
    }
    return report
}

/// Lines in `text` (the last one need not end with LF).
func fuzzLineCount(_ text: [UInt8]) -> Int {
    var n = 1
    for b in text where b == 0x0A { n += 1 }
    return n
}

/// Record data's text, tokenised by the zone lexer, reads back to the same data.
func fuzzCheckZonePresentation(_ data: RData) {
    do {
        let tokens = try ZoneLexer.tokens(of: data.presentation)
        let back = try RData(type: data.type, presentation: tokens, origin: .root)
        fuzzCheck(back == data, "record data's text reads back to other data")
    } catch {
        fuzzFail("record data's text does not read back")
    }
}
