#!/usr/bin/python3
"""Differential DNS test: sends the same queries to two authoritative servers
serving the same zones and reports every way their answers differ (issue #8,
"Real peers": NSD against mirage-dns).

    dns_differential.py --server nsd=127.0.0.1:5300 \\
                        --server mirage-dns=127.0.0.1:5301 [ZONEFILE...]
    dns_differential.py --self-test      # NSD against NSD, then against a changed zone
    dns_differential.py --server nsd=127.0.0.1:5300 --dump [--category C]

The queries are generated from the zone files (default: every *.zone in
Tests/InteropTests/DNSZones/differential): every owner name in mixed case
with the types it has and some it lacks, names below it that do not exist,
empty non-terminals, names under wildcards and below zone cuts, DS at cuts
and apexes, CNAME chains, ANY where NSD's one-RRset answer (RFC 8482 §4.1)
is determined, zones not served (REFUSED), other classes, and hand-made
messages: other opcodes, malformed questions, EDNS errors. The DO bit is
never set. Queries where mirage-dns departs from NSD on purpose (issue #8
asks otherwise) are listed with the reason by --list and left out unless
--with-divergences.

Each query goes over every transport: udp (no EDNS, 512 bytes),
udp-edns512, udp-edns1232, udp-edns4096, tcp (no EDNS) and tcp-edns (EDNS
1232); hand-made messages only over udp and tcp, as they are. A query's
flags (RD, CD, AD, …) vary with its number, the same for both servers.

Compared for each exchange:
  - whether an answer came at all (some queries must be dropped);
  - the message id, opcode, the full RCODE (with EDNS's extended bits) and
    the header flags QR AA TC RD RA Z AD CD;
  - the question section exactly (name bytes and case included: a server
    echoes the question as asked);
  - the answer, authority and additional sections each as a multiset of
    records (owner name, type, class, TTL, RDATA): record order is free and
    names compare without case (RFC 4343), also inside RDATA; a record in
    another section is a difference;
  - the OPT record: present or not, version, UDP payload size, flags, and
    its options (e.g. RFC 8914 Extended DNS Errors).
When both answers have TC set, their sections are not compared with each
other (RFC 2181 §9 leaves what a truncated message carries to the server;
a client retries over TCP); instead each server's records must all appear
in its own TCP answer to the same query. Everything else is compared as
above, so a TC bit set by only one server is a difference.

Prints each difference (the query, a dig command that repeats it, the
transport, what differs and both answers in full), then the line
"N queries × M transports: K differences", and exits 1 when K > 0, 2 when
a server never answered at all.

Runs on Debian's python3 with python3-dnspython (/usr/bin/python3: a
python3 elsewhere in PATH may lack the module).
"""

import argparse
import collections
import dataclasses
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

try:
    import dns.edns
    import dns.flags
    import dns.message
    import dns.name
    import dns.rcode
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset
    import dns.zone
except ImportError:
    sys.exit("dns_differential: needs dnspython (Debian: python3-dnspython; run with /usr/bin/python3)")

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_ZONE_DIR = os.path.normpath(os.path.join(HERE, "..", "DNSZones", "differential"))

# name → (TCP?, EDNS UDP payload size or None for no OPT)
TRANSPORTS = {
    "udp": (False, None),
    "udp-edns512": (False, 512),
    "udp-edns1232": (False, 1232),
    "udp-edns4096": (False, 4096),
    "tcp": (True, None),
    "tcp-edns": (True, 1232),
}
RAW_TRANSPORTS = ("udp", "tcp")

FLAG_NAMES = [("QR", 0x8000), ("AA", 0x0400), ("TC", 0x0200), ("RD", 0x0100),
              ("RA", 0x0080), ("Z", 0x0040), ("AD", 0x0020), ("CD", 0x0010)]
FLAG_MASK = sum(bit for _, bit in FLAG_NAMES)

# NSD answers at most 100 FORMERR/NOTIMP a second (ERROR_RATELIMIT in its
# nsd.h) and drops the rest, whatever rrl-ratelimit says: such queries are
# spaced out.
PACED_INTERVAL = 0.025

# Types asked at every name that lacks them, the first two missing
# (NODATA, or a CNAME to follow).
PROBE_TYPES = ["A", "AAAA", "TXT", "MX"]
# ANY: NSD answers one RRset (RFC 8482 §4.1): the first of these it finds...
ANY_PREFERRED = {"A", "AAAA", "SOA", "MX", "PTR"}
# ...else the last other one, else one of these.
ANY_NON_PREFERRED = {"DNSKEY", "RRSIG", "NSEC"}


@dataclasses.dataclass
class Query:
    """One query of the run."""
    category: str
    qname: str = ""
    qtype: str = "A"
    qclass: str = "IN"
    flags: int = 0x0100             # RD
    raw: bytes = b""                # a hand-made message (id patched per exchange)
    note: str = ""                  # what a hand-made message is
    transports: tuple = ()          # () = all (hand-made: RAW_TRANSPORTS)
    silent: bool = False            # no answer expected (a short wait)
    paced: bool = False             # NSD rate-limits its answer (see PACED_INTERVAL)
    divergence: str = ""            # why mirage-dns answers this unlike NSD on purpose (left out by default)

    def describe(self):
        if self.raw:
            return f"{self.note} (hand-made, {len(self.raw)} bytes: {self.raw.hex()})"
        flags = " ".join(n for n, bit in FLAG_NAMES if self.flags & bit) or "no flags"
        return f"{self.qname} {self.qclass} {self.qtype}, {flags}"

    def dig(self, server, transport):
        """A dig command line repeating the query (not for hand-made ones)."""
        if self.raw:
            return ""
        host, port = server.address
        tcp, payload = TRANSPORTS[transport]
        parts = ["dig", f"@{host}", "-p", str(port), "+norec" if not self.flags & 0x0100 else "+rec"]
        if self.flags & 0x0010:
            parts.append("+cd")
        if self.flags & 0x0020:
            parts.append("+adflag")
        else:
            parts.append("+noadflag")
        parts.append("+tcp" if tcp else "+notcp")
        parts.append(f"+bufsize={payload}" if payload else "+noedns")
        parts += ["+ignore", "+nocookie", "-c", self.qclass, self.qname, self.qtype]
        return " ".join(parts)


@dataclasses.dataclass
class Server:
    name: str
    address: tuple


# --- Zones --------------------------------------------------------------------

class ZoneData:
    """The zones as dnspython reads them, and what the query generator needs."""

    def __init__(self, paths):
        self.zones = []
        for path in paths:
            zone = dns.zone.from_file(path, origin=None, relativize=False, check_origin=True)
            self.zones.append(zone)
        self.zones.sort(key=lambda z: z.origin.to_text().lower())
        self.origins = [z.origin for z in self.zones]

    def zone_of(self, name):
        """The served zone whose origin is the closest ancestor of `name`."""
        best = None
        for zone in self.zones:
            if name.is_subdomain(zone.origin) and (best is None or len(zone.origin) > len(best.origin)):
                best = zone
        return best


def types_at(zone, name):
    node = zone.nodes.get(name)
    if node is None:
        return []
    return [dns.rdatatype.to_text(rds.rdtype) for rds in node.rdatasets]


def any_answer_is_determined(types):
    """Whether NSD's single-RRset ANY answer at a node with `types` does not
    depend on the order it keeps RRsets in."""
    candidates = [t for t in types if t != "NSEC3"]
    if not candidates:
        return True
    preferred = [t for t in candidates if t in ANY_PREFERRED]
    if preferred:
        return len(preferred) == 1
    normal = [t for t in candidates if t not in ANY_NON_PREFERRED]
    if normal:
        return len(normal) == 1
    return len(candidates) == 1


def mixed_case(text, rng):
    return "".join(c.upper() if c.isalpha() and rng.random() < 0.5 else c.lower() for c in text)


def generate_queries(data, seed=8):
    rng = random.Random(seed)
    queries = []

    def add(category, name, qtype, qclass="IN", casing="mixed", transports=()):
        text = name.to_text() if isinstance(name, dns.name.Name) else name
        if casing == "mixed":
            text = mixed_case(text, rng)
        elif casing == "upper":
            text = text.upper()
        elif casing == "lower":
            text = text.lower()
        queries.append(Query(category=category, qname=text, qtype=qtype, qclass=qclass, transports=transports))

    for zone in data.zones:
        origin = zone.origin
        names = sorted(zone.nodes.keys())
        cuts = [n for n in names if n != origin and "NS" in types_at(zone, n)]

        def below_cut(name):
            return any(name != cut and name.is_subdomain(cut) for cut in cuts)

        # Every owner name: the types it has, some it lacks, and a child that does not exist.
        for name in names:
            types = types_at(zone, name)
            for qtype in types:
                add("owner-types", name, qtype)
            for qtype in [t for t in PROBE_TYPES if t not in types][:2]:
                add("missing-types", name, qtype, casing="lower")
            add("nonexistent-child", dns.name.Name((b"nx-child",) + name.labels), "A")
            if name.labels[0] == b"*":
                continue
            if below_cut(name) or name in cuts:
                add("below-cut", name, "NS")
                add("below-cut", name, "DS")
        # The apex in capitals; every zone's DS (answered by the parent when we serve it).
        for qtype in ["SOA", "NS", "DS", "DNSKEY", "CNAME", "SRV", "PTR", "NSEC3", "TYPE65280"]:
            add("apex", origin, qtype, casing="upper")

        # Empty non-terminals: every ancestor of an owner that holds nothing.
        ents = set()
        for name in names:
            parent = name.parent() if len(name) > len(origin) else None
            while parent is not None and parent != origin and len(parent) > len(origin):
                if parent not in zone.nodes:
                    ents.add(parent)
                parent = parent.parent()
        for ent in sorted(ents):
            for qtype in ["A", "TXT", "NS"]:
                add("empty-non-terminal", ent, qtype)
            add("empty-non-terminal", dns.name.Name((b"nx-ent",) + ent.labels), "A")

        # Wildcards: names they synthesize at one and two levels, the wildcard
        # itself, and a name below the wildcard's owner that it does not cover.
        for name in names:
            if name.labels[0] != b"*":
                continue
            parent = name.parent()
            types = types_at(zone, name)
            for label in (b"foo", b"Bar-9"):
                synthesized = dns.name.Name((label,) + parent.labels)
                if synthesized in zone.nodes:
                    continue
                extra = ["AAAA", "SRV", "CNAME", "NS"] + (["ANY"] if any_answer_is_determined(types) else [])
                for qtype in types + [t for t in extra if t not in types]:
                    add("wildcard", synthesized, qtype)
            add("wildcard", dns.name.Name((b"a", b"b") + parent.labels), "A")
            add("wildcard", dns.name.Name((b"a", b"b") + parent.labels), "TXT")
            add("wildcard", name, "A", casing="lower")
            add("wildcard", dns.name.Name((b"x",) + name.labels), "A")

        # Delegations: the cut and names below it, with the types a resolver asks.
        for cut in cuts:
            for qtype in ["NS", "DS", "A", "SOA", "ANY", "DNSKEY"]:
                add("delegation", cut, qtype)
            for qtype in ["A", "NS", "DS", "MX", "ANY"]:
                add("delegation", dns.name.Name((b"www",) + cut.labels), qtype)
            add("delegation", dns.name.Name((b"a", b"b") + cut.labels), "TXT")

        # ANY where NSD's choice of one RRset is determined; NSEC3 and RRSIG asked everywhere in a sample.
        for name in names:
            types = types_at(zone, name)
            if name not in cuts and not below_cut(name) and name.labels[0] != b"*" and any_answer_is_determined(types):
                add("any", name, "ANY")
        for name in names[:: max(1, len(names) // 8)]:
            add("dnssec-types", name, "NSEC3")
            add("dnssec-types", name, "RRSIG")
            add("dnssec-types", name, "NSEC")

    # Names in no zone we serve: REFUSED.
    for text, qtype in [("example.com.", "A"), ("test.", "SOA"), (".", "NS"), ("www.example.org.", "A"),
                        ("nx.test.", "A"), ("example.test.example.com.", "A"), ("com.", "DS"),
                        ("Example.NET.", "MX")]:
        add("refused", text, qtype, casing="keep")

    # Other classes: CH (answered in NSD's chaos code: REFUSED unless id.server or
    # version.bind, which are left out: they say which program answers), HS and
    # NONE (REFUSED), and ANY (answered, without AA).
    add("class", "www.example.test.", "A", qclass="CH", casing="keep")
    add("class", "example.test.", "SOA", qclass="CH", casing="keep")
    add("class", "www.example.test.", "A", qclass="HS", casing="keep")
    add("class", "www.example.test.", "A", qclass="NONE", casing="keep")
    add("class", "www.example.test.", "A", qclass="CLASS42", casing="keep")
    add("class-any", "www.example.test.", "A", qclass="ANY", casing="keep")
    add("class-any", "www.example.test.", "TXT", qclass="ANY", casing="keep")
    add("class-any", "nothere.example.test.", "A", qclass="ANY", casing="keep")
    add("class-any", "www.sub.example.test.", "A", qclass="ANY", casing="keep")

    # Zone transfer types over UDP: NOTIMP (AXFR is compared over TCP by the Swift test).
    add("meta-types", "example.test.", "AXFR", casing="keep",
        transports=tuple(t for t in TRANSPORTS if not TRANSPORTS[t][0]))

    # Header flags a query should not carry: answered as if absent (only RD is echoed).
    for flags in (0x0400, 0x0200 | 0x0100, 0x0040, 0x0020 | 0x0010, 0x0080, 0x0000):
        queries.append(Query(category="query-flags", qname="www.example.test.", qtype="A", flags=flags))

    # Flags vary with the query's number (the same for both servers): RD set
    # on most, CD or AD on some.
    for i, query in enumerate(queries):
        if query.category == "query-flags":
            continue
        flags = 0x0100
        if i % 7 == 3:
            flags = 0
        if i % 11 == 5:
            flags |= 0x0010
        if i % 13 == 7:
            flags |= 0x0020
        query.flags = flags

    queries += hand_made_queries()
    return queries


# --- Hand-made messages --------------------------------------------------------

def encode_name(text):
    wire = b""
    for label in text.rstrip(".").split("."):
        if label:
            wire += bytes([len(label)]) + label.encode("ascii")
    return wire + b"\x00"


def header(flags=0x0100, qd=1, an=0, ns=0, ar=0, opcode=0):
    return struct.pack("!HHHHHH", 0, flags | (opcode << 11), qd, an, ns, ar)


def question(name="www.example.test.", qtype=1, qclass=1):
    return encode_name(name) + struct.pack("!HH", qtype, qclass)


def opt(payload=1232, version=0, options=b"", ext_rcode=0, do=False):
    ttl = (ext_rcode << 24) | (version << 16) | (0x8000 if do else 0)
    return b"\x00" + struct.pack("!HHIH", 41, payload, ttl, len(options)) + options


def hand_made_queries():
    made = []

    def add(note, raw, silent=False, paced=True, category="malformed", divergence=""):
        made.append(Query(category=category, raw=raw, note=note, silent=silent, paced=paced, divergence=divergence))

    for opcode, name in [(1, "IQUERY"), (2, "STATUS"), (3, "opcode 3"), (5, "UPDATE"), (6, "DSO"), (15, "opcode 15")]:
        add(f"{name} with a question", header(opcode=opcode) + question(), category="opcode")
        add(f"{name} with a question and EDNS", header(opcode=opcode, ar=1) + question() + opt(), category="opcode")
    add("no question", header(qd=0))
    add("no question, EDNS only (RFC 7873 §5.4 style)", header(qd=0, ar=1) + opt(), category="edns")
    add("two questions", header(qd=2) + question() + question("mail.example.test."))
    add("a record in the answer section",
        header(an=1) + question() + encode_name("www.example.test.") + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 1]))
    add("a record in the authority section",
        header(ns=1) + question() + encode_name("www.example.test.") + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 1]))
    add("an A record in the additional section",
        header(ar=1) + question() + encode_name("www.example.test.") + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 1]))
    add("question count 1, no question", header())
    add("question cut inside the name", (header() + question())[:18])
    add("question without type and class", header() + encode_name("www.example.test."))
    add("compression pointer in the question name (to itself)", header() + b"\xc0\x0c" + struct.pack("!HH", 1, 1))
    add("compression pointer in the question name (forward, out of the message)",
        header() + b"\x03www\xc0\x40" + struct.pack("!HH", 1, 1))
    add("label length 64 in the question", header() + b"\x40" + b"a" * 64 + b"\x00" + struct.pack("!HH", 1, 1))
    add("name of 256 bytes in the question",
        header() + (b"\x3f" + b"a" * 63) * 4 + b"\x00" + struct.pack("!HH", 1, 1))
    add("label type 0x80 (reserved) in the question", header() + b"\x81a\x00" + struct.pack("!HH", 1, 1))
    add("two OPT records", header(ar=2) + question() + opt() + opt(), category="edns")
    add("OPT with an owner name other than the root", header(ar=1) + question() + encode_name("www.example.test.")
        + struct.pack("!HHIH", 41, 1232, 0, 0), category="edns")
    add("OPT with an option cut short", header(ar=1) + question() + opt(options=b"\xfd\xe9\x00\x08abcd"),
        category="edns")
    add("EDNS version 1 (BADVERS)", header(ar=1) + question() + opt(version=1), paced=False, category="edns")
    add("EDNS version 1 without a question", header(qd=0, ar=1) + opt(version=1), category="edns")
    add("EDNS with an unknown option (65001)", header(ar=1) + question() + opt(options=b"\xfd\xe9\x00\x04abcd"),
        paced=False, category="edns")
    add("EDNS payload 100 (taken as 512), for 40 A records",
        header(ar=1) + question("big-a.example.test.") + opt(payload=100), paced=False, category="edns")
    add("EDNS payload 600 for fill-a-31", header(ar=1) + question("fill-a-31.example.test.") + opt(payload=600),
        paced=False, category="edns")
    add("EDNS with extended RCODE bits set in the query", header(ar=1) + question() + opt(ext_rcode=1),
        paced=False, category="edns")
    add("trailing garbage after the question", header() + question() + b"\x00\x01\x02", paced=False,
        divergence="issue #8 has trailing bytes refused with FORMERR; NSD, built without STRICT_MESSAGE_PARSE, "
                   "ignores them and answers")
    add("a response (QR=1): must be dropped", header(flags=0x8100) + question(), silent=True, paced=False)
    add("11 bytes: shorter than a header", header()[:11], silent=True, paced=False)
    add("RCODE 5 set in a query", header(flags=0x0105) + question())
    add("qtype OPT (41)", header() + question(qtype=41), paced=False)
    return made


# --- Exchanges -------------------------------------------------------------------

def build_wire(query, transport, query_id):
    if query.raw:
        return struct.pack("!H", query_id) + query.raw[2:]
    message = dns.message.Message(id=query_id)
    message.flags = query.flags
    name = dns.name.from_text(query.qname)
    message.find_rrset(message.question, name, dns.rdataclass.from_text(query.qclass),
                       dns.rdatatype.from_text(query.qtype), create=True, force_unique=True)
    payload = TRANSPORTS[transport][1]
    if payload is not None:
        message.use_edns(0, 0, payload)
    else:
        message.use_edns(False)
    return message.to_wire()


class TCPChannel:
    """One TCP connection to a server, reopened after it fails or closes."""

    def __init__(self, address):
        self.address = address
        self.sock = None
        self.reopened = 0      # times a kept connection was found closed by the server

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def exchange(self, wire, timeout):
        for attempt in range(2):
            fresh = self.sock is None
            if fresh:
                try:
                    self.sock = socket.create_connection(self.address, timeout=timeout)
                except OSError as error:
                    return None, f"connect: {error}"
            try:
                self.sock.settimeout(timeout)
                self.sock.sendall(struct.pack("!H", len(wire)) + wire)
                length = self._read(2)
                if length is None:
                    raise ConnectionResetError("closed")
                data = self._read(struct.unpack("!H", length)[0])
                if data is None:
                    raise ConnectionResetError("closed mid-message")
                return data, ""
            except socket.timeout:
                self.close()
                return None, "no answer (timeout)"
            except OSError as error:
                self.close()
                # A kept connection the server closed meanwhile: once more on a new one.
                if not fresh and attempt == 0:
                    self.reopened += 1
                    continue
                return None, f"no answer ({error})"
        return None, "no answer"

    def _read(self, count):
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                return None
            data += chunk
        return data


class UDPChannel:
    def __init__(self, address):
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def exchange(self, wire, timeout):
        self.sock.sendto(wire, self.address)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, "no answer (timeout)"
            self.sock.settimeout(left)
            try:
                data, peer = self.sock.recvfrom(65535)
            except socket.timeout:
                return None, "no answer (timeout)"
            except OSError as error:
                return None, f"no answer ({error})"
            # A late answer to an earlier query is skipped.
            if len(data) >= 2 and data[:2] == wire[:2]:
                return data, ""

    def close(self):
        self.sock.close()


# --- Comparison ------------------------------------------------------------------

@dataclasses.dataclass
class Answer:
    wire: bytes = b""
    error: str = ""          # no answer, or could not be parsed
    message: object = None
    opcode: int = 0          # from the header itself: dnspython knows only assigned opcodes

    @property
    def answered(self):
        return bool(self.wire)


def parse(wire, error):
    if not wire:
        return Answer(error=error or "no answer")
    opcode = (wire[2] >> 3) & 0x0F if len(wire) >= 3 else 0
    readable = wire
    if len(wire) >= 3 and opcode not in (0, 1, 2, 4, 5):
        # Parsed as a QUERY; the opcode is compared from the header.
        readable = wire[:2] + bytes([wire[2] & 0x87]) + wire[3:]
    try:
        message = dns.message.from_wire(readable, one_rr_per_rrset=True, raise_on_truncation=False)
        return Answer(wire=wire, message=message, opcode=opcode)
    except Exception as exc:  # dnspython raises many kinds
        return Answer(wire=wire, error=f"unparseable ({type(exc).__name__}: {exc})", opcode=opcode)


def record_keys(section):
    """A section as a multiset: (owner, type, class, TTL, canonical RDATA) per record."""
    keys = collections.Counter()
    texts = {}
    for rrset in section:
        owner = rrset.name.canonicalize().to_text()
        for rdata in rrset:
            try:
                canonical = rdata.to_digestable().hex()
            except Exception:
                canonical = rdata.to_text().lower()
            key = (owner, dns.rdatatype.to_text(rrset.rdtype), dns.rdataclass.to_text(rrset.rdclass),
                   rrset.ttl, canonical)
            keys[key] += 1
            texts[key] = f"{rrset.name} {rrset.ttl} {dns.rdataclass.to_text(rrset.rdclass)} " \
                         f"{dns.rdatatype.to_text(rrset.rdtype)} {rdata.to_text()}"
    return keys, texts


def flag_text(flags):
    return " ".join(n for n, bit in FLAG_NAMES if flags & bit) or "none"


def edns_summary(message):
    if message.edns < 0:
        return "no OPT"
    options = ", ".join(f"option {o.otype}: {o.to_wire().hex() if hasattr(o, 'to_wire') else o}"
                        for o in message.options)
    do = " DO" if message.ednsflags & dns.flags.DO else ""
    other = message.ednsflags & 0x7FFF
    return f"OPT version {message.edns}, payload {message.payload}{do}" \
           + (f", Z flags {other:#x}" if other else "") + (f", {options}" if options else "")


def question_text(message):
    return "; ".join(f"{rrset.name} {dns.rdataclass.to_text(rrset.rdclass)} {dns.rdatatype.to_text(rrset.rdtype)}"
                     for rrset in message.question) or "none"


SECTIONS = ("answer", "authority", "additional")


def compare(names, answers, full_answers, query_id):
    """What differs between two answers: (differences, notes), lists of lines."""
    a, b = answers
    differences, notes = [], []
    if not a.answered or not b.answered or a.error or b.error:
        # Unanswered or unreadable on one side at least: equal only when both
        # are silent, or both sent the same unreadable bytes (ids aside).
        same = a.answered == b.answered and a.error == b.error and a.wire[2:] == b.wire[2:]
        if not same:
            differences.append(f"answered: {names[0]}: {a.error or 'yes'}; {names[1]}: {b.error or 'yes'}")
        return differences, notes
    ma, mb = a.message, b.message
    for side, message in zip(names, (ma, mb)):
        if message.id != query_id:
            differences.append(f"id: {side} answered with id {message.id}, the query had {query_id}")
    if a.opcode != b.opcode:
        differences.append(f"opcode: {names[0]}={a.opcode} {names[1]}={b.opcode}")
    if ma.rcode() != mb.rcode():
        differences.append(f"rcode: {names[0]}={dns.rcode.to_text(ma.rcode())} {names[1]}={dns.rcode.to_text(mb.rcode())}")
    if (ma.flags & FLAG_MASK) != (mb.flags & FLAG_MASK):
        differences.append(f"flags: {names[0]}={flag_text(ma.flags)} {names[1]}={flag_text(mb.flags)}")
    qa, qb = question_text(ma), question_text(mb)
    if qa != qb:
        differences.append(f"question: {names[0]}={qa} {names[1]}={qb}")
    ea, eb = edns_summary(ma), edns_summary(mb)
    if ea != eb:
        differences.append(f"EDNS: {names[0]}={ea}; {names[1]}={eb}")
    truncated = bool(ma.flags & dns.flags.TC) and bool(mb.flags & dns.flags.TC)
    for section in SECTIONS:
        ka, ta = record_keys(getattr(ma, section))
        kb, tb = record_keys(getattr(mb, section))
        if truncated:
            # Not compared with each other: each must be part of the server's own full answer.
            if ka != kb:
                notes.append(f"TC on both: the {section} sections differ (not counted)")
            for side, keys, texts, full in zip(names, (ka, kb), (ta, tb), full_answers):
                if full is None or not full.message:
                    continue
                fkeys, _ = record_keys(getattr(full.message, section))
                extra = keys - fkeys
                for key in sorted(extra):
                    differences.append(f"{section}: {side}'s truncated answer has a record its TCP answer lacks: {texts[key]}")
            continue
        only_a, only_b = ka - kb, kb - ka
        for key in sorted(only_a):
            differences.append(f"{section} only from {names[0]}: {ta[key]}" + (f" (×{only_a[key]})" if only_a[key] > 1 else ""))
        for key in sorted(only_b):
            differences.append(f"{section} only from {names[1]}: {tb[key]}" + (f" (×{only_b[key]})" if only_b[key] > 1 else ""))
    return differences, notes


def message_text(answer):
    if not answer.answered:
        return f"    ({answer.error})"
    if answer.error:
        return f"    ({answer.error}) {answer.wire.hex()}"
    lines = answer.message.to_text().splitlines()
    if answer.opcode not in (0, 1, 2, 4, 5):
        lines.insert(0, f"(opcode {answer.opcode}, shown below as QUERY)")
    return "\n".join("    " + line for line in lines)


def query_id_for(index, transport):
    return (index * 7919 + list(TRANSPORTS).index(transport) * 104729 + 4242) & 0xFFFF


# --- The run ----------------------------------------------------------------------

def run(servers, queries, transports, timeout, show, out):
    """Sends every query over every transport to both servers; returns
    (differences, exchanges per server, silent servers)."""
    channels = {}
    for server in servers:
        for transport in transports:
            tcp = TRANSPORTS[transport][0]
            channels[(server.name, transport)] = TCPChannel(server.address) if tcp else UDPChannel(server.address)
    names = [s.name for s in servers]
    total_differences = 0
    exchanges = 0
    by_category = collections.Counter()
    answered = collections.Counter()
    notes = collections.Counter()
    last_paced = 0.0
    try:
        for index, query in enumerate(queries):
            query_transports = [t for t in (query.transports or (RAW_TRANSPORTS if query.raw else transports))
                                if t in transports]
            results = {}
            for transport in query_transports:
                query_id = query_id_for(index, transport)
                wire = build_wire(query, transport, query_id)
                pair = []
                for server in servers:
                    if query.paced:
                        wait = last_paced + PACED_INTERVAL - time.monotonic()
                        if wait > 0:
                            time.sleep(wait)
                        last_paced = time.monotonic()
                    data, error = channels[(server.name, transport)].exchange(wire, 0.5 if query.silent else timeout)
                    answer = parse(data, error)
                    if answer.answered:
                        answered[server.name] += 1
                    pair.append(answer)
                results[transport] = (query_id, pair)
                exchanges += 1
            for transport in query_transports:
                query_id, pair = results[transport]
                full = [None, None]
                for tcp_transport in ("tcp", "tcp-edns"):
                    if tcp_transport in results:
                        full = results[tcp_transport][1]
                        break
                differences, extra = compare(names, pair, full, query_id)
                for note in extra:
                    notes[note] += 1
                if not differences:
                    continue
                total_differences += 1
                by_category[query.category] += 1
                if total_differences <= show:
                    print(f"DIFFERENCE {total_differences} [{query.category}] {query.describe()} over {transport}", file=out)
                    command = query.dig(servers[0], transport)
                    if command:
                        print(f"  repeat: {command}  (and -p {servers[1].address[1]} for {servers[1].name})", file=out)
                    for line in differences:
                        print(f"  - {line}", file=out)
                    for server, answer in zip(servers, pair):
                        print(f"  {server.name}:", file=out)
                        print(message_text(answer), file=out)
                    print(file=out)
                elif total_differences == show + 1:
                    print(f"(further differences are counted, not shown; --show N to see more)", file=out)
    finally:
        for channel in channels.values():
            channel.close()
    for (name, transport), channel in sorted(channels.items()):
        if isinstance(channel, TCPChannel) and channel.reopened:
            notes[f"{name} closed a kept TCP connection (seen over {transport}; RFC 7766 §6.2.1 keeps it open)"] += channel.reopened
    if by_category:
        print("differences by category: " + ", ".join(f"{c} {n}" for c, n in sorted(by_category.items())), file=out)
    for note, count in sorted(notes.items()):
        print(f"note: {note}: {count} exchanges", file=out)
    silent = [s.name for s in servers if answered[s.name] == 0]
    return total_differences, exchanges, silent


def dump(server, queries, transports, timeout, out):
    """Prints every query and one server's answer over each transport."""
    channels = {t: (TCPChannel(server.address) if TRANSPORTS[t][0] else UDPChannel(server.address)) for t in transports}
    try:
        for index, query in enumerate(queries):
            query_transports = [t for t in (query.transports or (RAW_TRANSPORTS if query.raw else transports))
                                if t in transports]
            print(f"== [{query.category}] {query.describe()}", file=out)
            for transport in query_transports:
                if query.paced:
                    time.sleep(PACED_INTERVAL)
                data, error = channels[transport].exchange(build_wire(query, transport, query_id_for(index, transport)),
                                                           0.5 if query.silent else timeout)
                print(f"-- over {transport}:", file=out)
                print(message_text(parse(data, error)), file=out)
    finally:
        for channel in channels.values():
            channel.close()


def parse_server(text):
    if "=" not in text:
        raise argparse.ArgumentTypeError("--server takes NAME=ADDRESS:PORT")
    name, address = text.split("=", 1)
    host, _, port = address.rpartition(":")
    try:
        return Server(name, (host or "127.0.0.1", int(port)))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port in {text}")


def zone_files(arguments):
    if arguments:
        return [os.path.abspath(p) for p in arguments]
    return sorted(os.path.join(DEFAULT_ZONE_DIR, f) for f in os.listdir(DEFAULT_ZONE_DIR) if f.endswith(".zone"))


def summary_line(query_count, transport_count, differences):
    return f"{query_count} queries × {transport_count} transports: {differences} differences"


def select(queries, categories=(), skip=(), divergences=False):
    """The queries of the run: by category, and those where mirage-dns
    differs from NSD on purpose only when asked for."""
    return [q for q in queries
            if (not categories or q.category in categories) and q.category not in skip
            and (divergences or not q.divergence)]


def compare_servers(servers, files, transports, timeout, show, categories=(), skip=(), divergences=False,
                    out=sys.stdout):
    data = ZoneData(files)
    queries = select(generate_queries(data), categories, skip, divergences)
    differences, exchanges, silent = run(servers, queries, transports, timeout, show, out)
    print(summary_line(len(queries), len(transports), differences), file=out)
    print(f"({exchanges} exchanges with each server; zones: {', '.join(z.to_text() for z in data.origins)})", file=out)
    if silent:
        print(f"error: never answered: {', '.join(silent)}", file=out)
        return 2, differences
    return (1 if differences else 0), differences


# --- Self-test: NSD against NSD ------------------------------------------------------

def free_port():
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                    return port
                except OSError:
                    continue
    raise SystemExit("dns_differential: no free port")


# Changes that make the second NSD answer differently, each reached by the generated queries.
MUTATIONS = [
    ("www                 A     192.0.2.20", "www                 A     192.0.2.21"),
    ("*.cwild             CNAME www\n", ""),
    ("ns2                 A     192.0.2.2\n", ""),
    ("mail                A     192.0.2.25", "mail        60      A     192.0.2.25"),
]


def start_nsd(directory, port, files):
    sys.dont_write_bytecode = True   # no __pycache__ in the source tree
    sys.path.insert(0, HERE)
    import nsd_server
    zones = [nsd_server.parse_zone_argument(f) for f in files]
    config = nsd_server.write_config(directory, port, zones)
    log = open(os.path.join(directory, "nsd.log"), "w")
    process = subprocess.Popen([nsd_server.nsd_binary(), "-d", "-c", config], stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    if not nsd_server.wait_until_serving("127.0.0.1", port, zones[0][0], timeout=30, process=process):
        stop(process)
        with open(os.path.join(directory, "nsd.log")) as handle:
            sys.exit(f"dns_differential: NSD did not start:\n{handle.read()}")
    return process


def stop(process):
    if process.poll() is None:
        try:
            os.killpg(process.pid, 15)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=10)


def self_test(files, transports, timeout, show):
    if not (shutil.which("nsd") or os.path.exists("/usr/sbin/nsd")):
        sys.exit("dns_differential: --self-test needs nsd (Debian: nsd)")
    ok = True
    with tempfile.TemporaryDirectory(prefix="dns-differential-") as work:
        first = start_nsd(os.path.join(work, "a"), free_port(), files)
        processes = [first]
        try:
            port_a = int(open(os.path.join(work, "a", "nsd.conf")).read().split("port: ")[1].split()[0])
            second_port = free_port()
            second = start_nsd(os.path.join(work, "b"), second_port, files)
            processes.append(second)
            print("== self-test 1: NSD against NSD, the same zones (expect 0 differences) ==")
            servers = [Server("nsd-a", ("127.0.0.1", port_a)), Server("nsd-b", ("127.0.0.1", second_port))]
            status, count = compare_servers(servers, files, transports, timeout, show)
            if status != 0:
                ok = False
                print(f"self-test 1 FAILED: {count} differences between two NSDs with the same zones")
            stop(second)

            mutated_dir = os.path.join(work, "mutated")
            os.makedirs(mutated_dir)
            mutated_files = []
            applied = 0
            for path in files:
                text = open(path, encoding="utf-8").read()
                for old, new in MUTATIONS:
                    if old in text:
                        text = text.replace(old, new, 1)
                        applied += 1
                target = os.path.join(mutated_dir, os.path.basename(path))
                with open(target, "w", encoding="utf-8") as handle:
                    handle.write(text)
                mutated_files.append(target)
            if applied != len(MUTATIONS):
                sys.exit(f"dns_differential: only {applied} of {len(MUTATIONS)} zone changes applied; update MUTATIONS")
            second_port = free_port()
            second = start_nsd(os.path.join(work, "c"), second_port, mutated_files)
            processes.append(second)
            print()
            print(f"== self-test 2: NSD against NSD with {len(MUTATIONS)} records changed (expect differences) ==")
            servers = [Server("nsd", ("127.0.0.1", port_a)), Server("nsd-changed", ("127.0.0.1", second_port))]
            status, count = compare_servers(servers, files, transports, timeout, show)
            if status != 1 or count == 0:
                ok = False
                print("self-test 2 FAILED: the changed zone was not noticed")
        finally:
            for process in processes:
                stop(process)
    print("self-test: " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", action="append", type=parse_server, default=[],
                        help="NAME=ADDRESS:PORT, given twice: the reference first")
    parser.add_argument("--self-test", action="store_true",
                        help="start two NSDs: same zones (must agree), then one zone changed (must differ)")
    parser.add_argument("--transports", default=",".join(TRANSPORTS),
                        help=f"comma-separated, from {', '.join(TRANSPORTS)} (default: all)")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for each answer")
    parser.add_argument("--show", type=int, default=40, help="print at most this many differences in full")
    parser.add_argument("--category", action="append", default=[], help="only these query categories")
    parser.add_argument("--skip", action="append", default=[], help="leave out these query categories")
    parser.add_argument("--with-divergences", action="store_true",
                        help="also send the queries mirage-dns answers unlike NSD on purpose (see --list)")
    parser.add_argument("--list", action="store_true", help="print the queries and exit")
    parser.add_argument("--dump", action="store_true", help="with one --server: print every query and its answers")
    parser.add_argument("zones", nargs="*", help="zone files (default: DNSZones/differential/*.zone)")
    args = parser.parse_args()
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    for transport in transports:
        if transport not in TRANSPORTS:
            parser.error(f"unknown transport {transport}")
    files = zone_files(args.zones)
    if args.list:
        queries = select(generate_queries(ZoneData(files)), args.category, args.skip, True)
        for query in queries:
            print(f"[{query.category}] {query.describe()}"
                  + (f"\n    left out unless --with-divergences: {query.divergence}" if query.divergence else ""))
        print(f"{len(queries)} queries")
        return 0
    if args.dump:
        if len(args.server) != 1:
            parser.error("--dump takes one --server")
        queries = select(generate_queries(ZoneData(files)), args.category, args.skip, True)
        dump(args.server[0], queries, transports, args.timeout, sys.stdout)
        return 0
    if args.self_test:
        return self_test(files, transports, args.timeout, args.show)
    if len(args.server) != 2:
        parser.error("give --server twice (or --self-test)")
    status, _ = compare_servers(args.server, files, transports, args.timeout, args.show,
                                categories=set(args.category), skip=set(args.skip),
                                divergences=args.with_divergences)
    return status


if __name__ == "__main__":
    sys.exit(main())
