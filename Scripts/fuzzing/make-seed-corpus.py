#!/usr/bin/env python3
"""Writes the seed corpus of the MirageTCPIP fuzz targets.

    Scripts/fuzzing/make-seed-corpus.py [--check]

Every seed is an Ethernet frame built here with its own checksum code (an
implementation independent of the Swift one). The frame goes to
Corpus/tcpip-ethernet/<name>; the layers inside it, found by a small parser
below, go to the other targets under the same name:

    tcpip-arp   the Ethernet payload of an ARP frame
    tcpip-ipv4  the Ethernet payload of an IPv4 frame (padding included)
    tcpip-icmp  the IPv4 payload of an ICMP packet
    tcpip-udp   source and destination address (8 bytes, the pseudo-header
                input) followed by the IPv4 payload of a UDP packet
    tcpip-dhcp  the UDP payload of a datagram between ports 67 and 68
    tcpip-tcp   source and destination address (8 bytes) followed by the
                IPv4 payload of a TCP segment

A layer is passed on only when its header parses (and, for IPv4, when the
packet is not a later fragment), as FuzzDecoders.swift does. CorpusReplayTests
keeps what each seed must decode to. Files whose names are not seed names
(libFuzzer's SHA-1 names from `Scripts/fuzz run --grow`, regress-* cases) are
left alone. Corpus/tcpip-stack/ gets its own seeds (stack_seeds, inputs for
FuzzStack.swift), and so does Corpus/tcpip-tcpconn/ (conn_seeds, inputs for
FuzzConnection.swift), and so does Corpus/tcpip-vnet/ (vnet_seeds, inputs for
FuzzVirtioNet.swift). --check writes nothing and fails if a seed file differs.
"""

import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "Packages/TCPIP/Tests/MirageTCPIPTests/Corpus")

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
BROADCAST = b"\xff" * 6
IP_A = bytes([10, 0, 0, 1])
IP_B = bytes([10, 0, 0, 2])

ETH_IPV4, ETH_ARP, ETH_VLAN, ETH_QINQ, ETH_IPV6 = 0x0800, 0x0806, 0x8100, 0x88A8, 0x86DD
PROTO_ICMP, PROTO_TCP, PROTO_UDP, PROTO_SCTP = 1, 6, 17, 132


# ------------------------------------------------------------------ builders

def ones_sum(data: bytes) -> int:
    """RFC 1071 sum: 16-bit big-endian words, odd byte padded, folded."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def checksum(data: bytes) -> int:
    return ~ones_sum(data) & 0xFFFF


def ethernet(payload: bytes, ethertype: int, dst=MAC_B, src=MAC_A, vlan=None, pad=False) -> bytes:
    header = dst + src
    if vlan is not None:
        header += struct.pack("!HH", ETH_VLAN, vlan)
    frame = header + struct.pack("!H", ethertype) + payload
    if pad and len(frame) < 60:  # 64-byte minimum less the 4-byte FCS
        frame += b"\x00" * (60 - len(frame))
    return frame


def arp(op=1, sha=MAC_A, spa=IP_A, tha=b"\x00" * 6, tpa=IP_B, htype=1, ptype=ETH_IPV4, hlen=6, plen=4) -> bytes:
    return struct.pack("!HHBBH", htype, ptype, hlen, plen, op) + sha + spa + tha + tpa


def ipv4(payload: bytes, proto: int, src=IP_A, dst=IP_B, ident=0x1c46, flags=0x4000, ttl=64,
         options=b"", total=None, ihl=None, version=4, good_checksum=True) -> bytes:
    header_len = 20 + len(options)
    words = ihl if ihl is not None else header_len // 4
    total_len = total if total is not None else header_len + len(payload)
    header = struct.pack("!BBHHHBBH4s4s", version << 4 | words, 0, total_len, ident, flags, ttl, proto, 0,
                         src, dst) + options
    c = checksum(header)
    if not good_checksum:
        c ^= 0x0101
    return header[:10] + struct.pack("!H", c) + header[12:] + payload


def icmp(type_: int, code: int, rest: bytes, data: bytes, good_checksum=True) -> bytes:
    message = struct.pack("!BBH", type_, code, 0) + rest + data
    c = checksum(message)
    if not good_checksum:
        c ^= 0x0101
    return message[:2] + struct.pack("!H", c) + message[4:]


def udp(sport: int, dport: int, payload: bytes, src=IP_A, dst=IP_B, length=None, checksum_mode="good") -> bytes:
    stated = length if length is not None else 8 + len(payload)
    datagram = struct.pack("!HHHH", sport, dport, stated, 0) + payload
    if checksum_mode == "none":
        return datagram
    pseudo = src + dst + struct.pack("!BBH", 0, PROTO_UDP, len(datagram))
    c = checksum(pseudo + datagram) or 0xFFFF
    if checksum_mode == "bad":
        c ^= 0x0101
    return datagram[:6] + struct.pack("!H", c) + datagram[8:]


FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def tcp(sport: int, dport: int, seq: int, ack: int, flags: int, window: int, options: bytes = b"",
        payload: bytes = b"", src=IP_A, dst=IP_B, urgent=0, offset=None, good_checksum=True) -> bytes:
    """A TCP segment (RFC 9293 §3.1); `offset` overrides the data offset (in 32-bit words)."""
    assert offset is not None or len(options) % 4 == 0
    words = offset if offset is not None else (20 + len(options)) // 4
    segment = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, words << 4, flags, window, 0, urgent) + options + payload
    pseudo = src + dst + struct.pack("!BBH", 0, PROTO_TCP, len(segment))
    c = checksum(pseudo + segment)
    if not good_checksum:
        c ^= 0x0101
    return segment[:16] + struct.pack("!H", c) + segment[18:]


def tcp_mss(mss: int) -> bytes:
    return struct.pack("!BBH", 2, 4, mss)


def tcp_timestamps(value: int, echo: int) -> bytes:
    return struct.pack("!BBII", 8, 10, value, echo)


def tcp_sack(*blocks) -> bytes:
    return struct.pack("!BB", 5, 2 + 8 * len(blocks)) + b"".join(struct.pack("!II", l, r) for l, r in blocks)


NOP, SACK_PERMITTED = b"\x01", b"\x04\x02"
# What Linux sends on a SYN: MSS, SACK-permitted, timestamps, NOP, window scale.
LINUX_SYN_OPTIONS = tcp_mss(1460) + SACK_PERMITTED + tcp_timestamps(123456, 0) + NOP + b"\x03\x03\x07"
HTTP_GET = b"GET / HTTP/1.1\r\nHost: 10.0.0.2\r\n\r\n"


def tcp_frame(segment: bytes, reply=False, pad=False) -> bytes:
    """`segment` from A to B (or back) in a full frame."""
    if reply:
        return ethernet(ipv4(segment, PROTO_TCP, src=IP_B, dst=IP_A), ETH_IPV4, dst=MAC_A, src=MAC_B, pad=pad)
    return ethernet(ipv4(segment, PROTO_TCP), ETH_IPV4, pad=pad)


PING_DATA = bytes(range(0x10, 0x10 + 56))
DNS_QUERY = bytes.fromhex("12340100000100000000000007") + b"example" + b"\x03com\x00" + bytes.fromhex("00010001")


def bootp(op: int, options: bytes, yiaddr=b"\0" * 4, siaddr=b"\0" * 4, sname=b"", file=b"",
          cookie=0x63825363, xid=0x3903F326, chaddr=MAC_A) -> bytes:
    """A BOOTP/DHCP message (RFC 2131 §2) from client `chaddr` (MAC_A)."""
    fixed = struct.pack("!BBBBIHH4s4s4s4s", op, 1, 6, 0, xid, 0, 0x8000, b"\0" * 4, yiaddr, siaddr,
                        b"\0" * 4)
    fixed += chaddr + b"\0" * 10 + sname.ljust(64, b"\0") + file.ljust(128, b"\0")
    return fixed + struct.pack("!I", cookie) + options


def dhcp_discover() -> bytes:
    return bootp(1, bytes([53, 1, 1, 55, 3, 1, 3, 6, 255]))


def dhcp_offer_options(message_type: int) -> bytes:
    return (bytes([53, 1, message_type, 54, 4]) + IP_A + bytes([51, 4]) + struct.pack("!I", 3600)
            + bytes([1, 4, 255, 255, 255, 0, 3, 4]) + IP_A + bytes([6, 4]) + IP_A
            + bytes([26, 2]) + struct.pack("!H", 1500) + b"\xff")


def dhcp_frame(message: bytes, server=True) -> bytes:
    """`message` from server to client (67 → 68) or back, in a full frame."""
    if server:
        return ethernet(ipv4(udp(67, 68, message), PROTO_UDP, flags=0), ETH_IPV4)
    return ethernet(ipv4(udp(68, 67, message, src=IP_B, dst=IP_A), PROTO_UDP, src=IP_B, dst=IP_A, flags=0),
                    ETH_IPV4, dst=MAC_A, src=MAC_B)


def seeds() -> dict:
    """Name → Ethernet frame. Keep in step with CorpusReplayTests.expected."""
    s = {}
    ping = icmp(8, 0, struct.pack("!HH", 0x4d2, 1), PING_DATA)
    quoted_udp = ipv4(udp(53000, 53, DNS_QUERY, src=IP_B, dst=IP_A), PROTO_UDP, src=IP_B, dst=IP_A)[:28]

    # Valid frames.
    s["arp-request"] = ethernet(arp(op=1), ETH_ARP, dst=BROADCAST, pad=True)
    s["arp-reply"] = ethernet(arp(op=2, sha=MAC_B, spa=IP_B, tha=MAC_A, tpa=IP_A), ETH_ARP, dst=MAC_A, src=MAC_B)
    s["icmp-echo-request"] = ethernet(ipv4(ping, PROTO_ICMP), ETH_IPV4)
    s["icmp-echo-reply"] = ethernet(
        ipv4(icmp(0, 0, struct.pack("!HH", 0x4d2, 1), PING_DATA), PROTO_ICMP, src=IP_B, dst=IP_A, flags=0),
        ETH_IPV4, dst=MAC_A, src=MAC_B)
    s["icmp-echo-odd-length"] = ethernet(ipv4(icmp(8, 0, struct.pack("!HH", 7, 9), b"odd-len"), PROTO_ICMP),
                                         ETH_IPV4, pad=True)
    s["icmp-port-unreachable"] = ethernet(ipv4(icmp(3, 3, b"\0" * 4, quoted_udp), PROTO_ICMP, flags=0), ETH_IPV4)
    s["icmp-fragmentation-needed"] = ethernet(
        ipv4(icmp(3, 4, struct.pack("!HH", 0, 1400), quoted_udp), PROTO_ICMP, flags=0), ETH_IPV4)
    s["icmp-time-exceeded"] = ethernet(ipv4(icmp(11, 0, b"\0" * 4, quoted_udp), PROTO_ICMP, ttl=255), ETH_IPV4)
    s["udp-dns-query"] = ethernet(ipv4(udp(53000, 53, DNS_QUERY), PROTO_UDP), ETH_IPV4)
    s["udp-no-checksum"] = ethernet(ipv4(udp(7, 7, b"echo me", checksum_mode="none"), PROTO_UDP), ETH_IPV4)
    s["udp-empty-padded"] = ethernet(ipv4(udp(9, 9, b""), PROTO_UDP), ETH_IPV4, pad=True)
    s["udp-dhcp-discover"] = ethernet(
        ipv4(udp(68, 67, dhcp_discover(), src=b"\0" * 4, dst=b"\xff" * 4), PROTO_UDP, src=b"\0" * 4,
             dst=b"\xff" * 4, flags=0, ttl=128), ETH_IPV4, dst=BROADCAST)
    s["dhcp-offer"] = dhcp_frame(bootp(2, dhcp_offer_options(2), yiaddr=IP_B, siaddr=IP_A))
    s["dhcp-request-no-end"] = dhcp_frame(bootp(1, bytes([53, 1, 3, 0, 0, 50, 4]) + IP_B), server=False)
    s["dhcp-overload-both"] = dhcp_frame(bootp(2, bytes([53, 1, 5, 52, 1, 3, 255]), yiaddr=IP_B,
                                               file=bytes([1, 4, 255, 255, 255, 0, 3, 4]) + IP_A + b"\xff",
                                               sname=bytes([6, 4]) + IP_A + b"\xff"))
    router_alert = bytes([0x94, 0x04, 0x00, 0x00])
    s["ipv4-options-udp"] = ethernet(ipv4(udp(5000, 5001, b"options", ), PROTO_UDP, options=router_alert), ETH_IPV4)
    whole = udp(5000, 5001, bytes(range(256)) * 8)  # 2056 bytes: split 1480 + 576
    s["ipv4-fragment-first"] = ethernet(ipv4(whole[:1480], PROTO_UDP, ident=0x77, flags=0x2000), ETH_IPV4)
    s["ipv4-fragment-last"] = ethernet(ipv4(whole[1480:], PROTO_UDP, ident=0x77, flags=1480 // 8), ETH_IPV4)
    s["ipv4-other-protocol"] = ethernet(ipv4(b"\x00\x50\x01\xbb" + b"\0" * 16, PROTO_SCTP), ETH_IPV4)
    s["vlan-icmp-echo-request"] = ethernet(ipv4(ping, PROTO_ICMP), ETH_IPV4, vlan=(3 << 13) | 100)
    s["vlan-arp-request"] = ethernet(arp(op=1), ETH_ARP, dst=BROADCAST, vlan=4095, pad=True)
    s["ipv6-frame"] = ethernet(bytes.fromhex("6000000000003a40") + b"\0" * 15 + b"\x01" + b"\0" * 15 + b"\x02",
                               ETH_IPV6)

    syn = tcp(50000, 80, 0x1a2b3c4d, 0, SYN, 64240, LINUX_SYN_OPTIONS)
    s["tcp-linux-syn"] = tcp_frame(syn)
    s["tcp-syn-ack"] = tcp_frame(tcp(80, 50000, 0x99887766, 0x1a2b3c4e, SYN | ACK, 65160,
                                     tcp_mss(1400) + SACK_PERMITTED + tcp_timestamps(777, 123456) + NOP
                                     + b"\x03\x03\x09", src=IP_B, dst=IP_A), reply=True)
    # Timestamps and three SACK blocks fill the 40 option bytes (data offset 15).
    s["tcp-data-sack"] = tcp_frame(tcp(50000, 80, 0x1a2b3c4e, 0x99887767, PSH | ACK, 502,
                                       NOP + NOP + tcp_timestamps(123500, 777) + NOP + NOP
                                       + tcp_sack((0x99887767 + 1000, 0x99887767 + 2000),
                                                  (0x99887767 + 3000, 0x99887767 + 3500),
                                                  (0xFFFFFF00, 0x00000100)), HTTP_GET))
    s["tcp-fin"] = tcp_frame(tcp(80, 50000, 0x99887767, 0x1a2b3c4e + len(HTTP_GET), FIN | ACK, 509,
                                 NOP + NOP + tcp_timestamps(800, 123500), src=IP_B, dst=IP_A), reply=True)
    s["tcp-rst"] = tcp_frame(tcp(50000, 80, 0x1a2b3c4f + len(HTTP_GET), 0, RST, 0), pad=True)
    # Unknown kind 254 skipped by its length; EOL stops before the second MSS.
    s["tcp-unknown-option-eol"] = tcp_frame(tcp(1, 2, 3, 4, SYN, 1024, bytes.fromhex("fe04abcd02040218000000000204ffff")))

    # Refused or malformed frames.
    s["empty"] = b""
    s["truncated-ethernet"] = ethernet(b"", ETH_IPV4)[:10]
    s["truncated-vlan-tag"] = ethernet(b"", ETH_IPV4, vlan=5)[:16]
    s["qinq-refused"] = MAC_B + MAC_A + struct.pack("!HHHH", ETH_QINQ, 10, ETH_VLAN, 20) + struct.pack(
        "!H", ETH_IPV4) + ipv4(ping, PROTO_ICMP)
    s["vlan-double-tag-refused"] = MAC_B + MAC_A + struct.pack("!HHHH", ETH_VLAN, 10, ETH_VLAN, 20) + struct.pack(
        "!H", ETH_IPV4) + ipv4(ping, PROTO_ICMP)
    s["arp-truncated"] = ethernet(arp()[:20], ETH_ARP)
    s["arp-not-ethernet"] = ethernet(arp(htype=6), ETH_ARP)
    s["arp-bad-address-length"] = ethernet(arp(hlen=8), ETH_ARP)
    s["arp-unknown-operation"] = ethernet(arp(op=3), ETH_ARP)
    s["ipv4-truncated-header"] = ethernet(ipv4(ping, PROTO_ICMP)[:12], ETH_IPV4)
    s["ipv4-bad-version"] = ethernet(ipv4(ping, PROTO_ICMP, version=6), ETH_IPV4)
    s["ipv4-ihl-too-small"] = ethernet(ipv4(ping, PROTO_ICMP, ihl=4), ETH_IPV4)
    s["ipv4-ihl-beyond-packet"] = ethernet(ipv4(b"", PROTO_ICMP, ihl=15, total=20)[:20] + b"\0" * 20, ETH_IPV4)
    s["ipv4-total-length-lies-long"] = ethernet(ipv4(ping, PROTO_ICMP, total=1500), ETH_IPV4)
    s["ipv4-total-length-below-header"] = ethernet(ipv4(ping, PROTO_ICMP, total=10), ETH_IPV4)
    s["ipv4-bad-checksum"] = ethernet(ipv4(ping, PROTO_ICMP, good_checksum=False), ETH_IPV4)
    s["icmp-bad-checksum"] = ethernet(ipv4(icmp(8, 0, b"\0\1\0\2", PING_DATA, good_checksum=False), PROTO_ICMP),
                                      ETH_IPV4)
    s["icmp-truncated"] = ethernet(ipv4(b"\x08\x00\xf7\xff", PROTO_ICMP), ETH_IPV4, pad=True)
    s["udp-bad-checksum"] = ethernet(ipv4(udp(53000, 53, DNS_QUERY, checksum_mode="bad"), PROTO_UDP), ETH_IPV4)
    s["udp-length-lies-long"] = ethernet(ipv4(udp(1, 2, b"short", length=200), PROTO_UDP), ETH_IPV4)
    s["udp-length-below-header"] = ethernet(ipv4(udp(1, 2, b"abcd", length=4, checksum_mode="none"), PROTO_UDP),
                                            ETH_IPV4)
    s["dhcp-truncated"] = dhcp_frame(bootp(2, b"")[:200])
    s["dhcp-bad-cookie"] = dhcp_frame(bootp(2, dhcp_offer_options(2), cookie=0x63825364))
    s["dhcp-option-overrun"] = dhcp_frame(bootp(2, bytes([53, 1, 2, 12, 50]) + b"host"))
    s["dhcp-overload-file-malformed"] = dhcp_frame(bootp(2, bytes([53, 1, 5, 52, 1, 1, 255]),
                                                         file=bytes([15, 200]) + b"example.com"))
    s["udp-truncated-header"] = ethernet(ipv4(b"\x00\x01\x00\x02\x00\x08", PROTO_UDP), ETH_IPV4, pad=True)
    s["tcp-truncated-header"] = tcp_frame(syn[:12], pad=True)
    s["tcp-bad-checksum"] = tcp_frame(tcp(50000, 80, 0x1a2b3c4d, 0, SYN, 64240, LINUX_SYN_OPTIONS,
                                          good_checksum=False))
    s["tcp-data-offset-too-small"] = tcp_frame(tcp(50000, 80, 1, 0, RST, 0, offset=4), pad=True)
    s["tcp-data-offset-beyond-segment"] = tcp_frame(tcp(50000, 80, 1, 2, ACK, 100, b"", b"data", offset=15), pad=True)
    s["tcp-option-length-0"] = tcp_frame(tcp(50000, 80, 1, 0, SYN, 100, tcp_mss(1460) + b"\x03\x00\x00\x00"))
    s["tcp-option-length-1"] = tcp_frame(tcp(50000, 80, 1, 0, SYN, 100, NOP + NOP + b"\xfd\x01"))
    s["tcp-mss-length-2"] = tcp_frame(tcp(50000, 80, 1, 0, SYN, 100, b"\x02\x02\x00\x00"))
    s["tcp-sack-bad-length"] = tcp_frame(tcp(50000, 80, 1, 2, ACK, 100,
                                             NOP + NOP + b"\x05\x0c" + bytes(range(10)) + b"\x00\x00"))
    # The field ends 2 bytes into the timestamps' value.
    s["tcp-timestamps-truncated"] = tcp_frame(tcp(50000, 80, 1, 2, ACK, 100, NOP + NOP + tcp_timestamps(5, 6)[:6]))
    return s


# ------------------------------------------------------------------ tcpip-stack

# The tcpip-stack target (FuzzStack.swift) runs two stacks: "static" with
# MAC_A and 10.0.0.1/24 (gateway 10.0.0.254; UDP port 7 echoes), and "dhcp"
# with DHCP_MAC and a DHCP client. The peer here is MAC_B, 10.0.0.2. Its
# input is a list of records, each led by a big-endian 16-bit word.

DHCP_MAC = bytes.fromhex("020000000003")
GATEWAY = bytes([10, 0, 0, 254])
LEASED = bytes([10, 0, 0, 50])


def rec_frame(frame: bytes, verified=False) -> bytes:
    """A frame for both stacks (word < 0x4000; 0x4000 set: checksums verified)."""
    assert len(frame) < 0x4000
    return struct.pack("!H", len(frame) | (0x4000 if verified else 0)) + frame


def rec_advance(ms: int) -> bytes:
    """Advance the clock by about `ms` (mantissa of 10 bits << shift, rounded up)."""
    shift = 0
    while (ms + (1 << shift) - 1) >> shift > 0x3FF:
        shift += 1
    mantissa = (ms + (1 << shift) - 1) >> shift
    assert shift < 16
    return struct.pack("!H", 0x8000 | shift << 10 | mantissa)


def rec_call(op: int, arg: int) -> bytes:
    """An application call (FuzzWorld.applicationCall)."""
    return struct.pack("!H", 0xC000 | op << 10 | arg)


def to_static(payload: bytes, proto: int, src=IP_B, ident=0x1c46, flags=0x4000) -> bytes:
    """An IPv4 packet from the peer to the static stack."""
    return ethernet(ipv4(payload, proto, src=src, dst=IP_A, ident=ident, flags=flags), ETH_IPV4, dst=MAC_A, src=MAC_B)


def dhcp_server_options(message_type: int) -> bytes:
    return (bytes([53, 1, message_type, 54, 4]) + GATEWAY + bytes([51, 4]) + struct.pack("!I", 1200)
            + bytes([1, 4, 255, 255, 255, 0, 3, 4]) + GATEWAY + bytes([6, 8]) + GATEWAY + IP_B
            + bytes([26, 2]) + struct.pack("!H", 1400) + b"\xff")


def to_dhcp_client(message_type: int) -> bytes:
    """An OFFER or ACK from the server (10.0.0.254, MAC_B) to the DHCP stack.
    xid 0: the harness patches in the stack's current one."""
    message = bootp(2, dhcp_server_options(message_type), yiaddr=LEASED, siaddr=GATEWAY, xid=0, chaddr=DHCP_MAC)
    return ethernet(ipv4(udp(67, 68, message, src=GATEWAY, dst=LEASED), PROTO_UDP, src=GATEWAY, dst=LEASED, flags=0),
                    ETH_IPV4, dst=DHCP_MAC, src=MAC_B)


def stack_seeds() -> dict:
    """Name → tcpip-stack input. Keep in step with CorpusReplayTests.stackExpected."""
    s = {}
    ping = icmp(8, 0, struct.pack("!HH", 0x4d2, 1), PING_DATA)
    arp_request = rec_frame(ethernet(arp(op=1, sha=MAC_B, spa=IP_B, tpa=IP_A), ETH_ARP, dst=BROADCAST, src=MAC_B,
                                     pad=True))
    arp_reply = rec_frame(ethernet(arp(op=2, sha=MAC_B, spa=IP_B, tha=MAC_A, tpa=IP_A), ETH_ARP, dst=MAC_A,
                                   src=MAC_B))
    # What the static stack sent from port 7 to the peer's port 9, as quoted back.
    sent = ipv4(udp(7, 9, b"hello", src=IP_A, dst=IP_B), PROTO_UDP, src=IP_A, dst=IP_B)[:28]
    whole = udp(5000, 7, bytes(range(256)) * 7 + bytes(208), src=IP_B, dst=IP_A)  # 2000 bytes: 1480 + 520

    s["stack-echo-request"] = rec_frame(to_static(ping, PROTO_ICMP)) + arp_reply
    s["stack-arp-request"] = arp_request
    s["stack-udp-echo"] = arp_request + rec_frame(to_static(udp(5000, 7, b"echo me", src=IP_B, dst=IP_A), PROTO_UDP))
    s["stack-udp-fragments"] = (arp_request
                                + rec_frame(to_static(whole[:1480], PROTO_UDP, ident=0x77, flags=0x2000))
                                + rec_frame(to_static(whole[1480:], PROTO_UDP, ident=0x77, flags=1480 // 8)))
    s["stack-udp-closed-port"] = arp_request + rec_frame(to_static(udp(5000, 9, b"anyone?", src=IP_B, dst=IP_A),
                                                                   PROTO_UDP))
    s["stack-icmp-port-unreachable"] = rec_frame(to_static(icmp(3, 3, b"\0" * 4, sent), PROTO_ICMP, flags=0))
    s["stack-icmp-fragmentation-needed"] = rec_frame(
        to_static(icmp(3, 4, struct.pack("!HH", 0, 1400), sent), PROTO_ICMP, src=GATEWAY, flags=0))
    s["stack-reassembly-timeout"] = (rec_frame(to_static(whole[:1480], PROTO_UDP, ident=0x78, flags=0x2000))
                                     + rec_advance(31_000))
    s["stack-arp-timeout"] = rec_frame(to_static(udp(5000, 7, b"echo me", src=IP_B, dst=IP_A), PROTO_UDP)) \
        + rec_advance(5_000)
    s["stack-ping-reply"] = (rec_call(0, 2 << 2 | 0) + arp_reply
                             + rec_frame(to_static(icmp(0, 0, struct.pack("!HH", 0x4d2, 8), bytes(48)), PROTO_ICMP,
                                                   flags=0)))
    offer, ack = rec_frame(to_dhcp_client(2)), rec_frame(to_dhcp_client(5))
    s["stack-dhcp-offer-ack"] = offer + ack
    # T1 is 600 s: the REQUEST goes unicast to the server, once ARP found it.
    s["stack-dhcp-renew"] = (offer + ack + rec_advance(601_000)
                             + rec_frame(ethernet(arp(op=2, sha=MAC_B, spa=GATEWAY, tha=DHCP_MAC, tpa=LEASED), ETH_ARP,
                                                  dst=DHCP_MAC, src=MAC_B))
                             + ack)
    # TCP: a Linux SYN to the echo listener (port 7) is answered with a
    # SYN-ACK once ARP finds the peer; a SYN to a closed port with a RST.
    syn = tcp(40000, 7, 1000, 0, 0x02, 64240, LINUX_SYN_OPTIONS, src=IP_B, dst=IP_A)
    s["stack-tcp-syn"] = arp_request + rec_frame(to_static(syn, PROTO_TCP))
    closed = tcp(40001, 9, 5000, 0, 0x02, 64240, LINUX_SYN_OPTIONS, src=IP_B, dst=IP_A)
    s["stack-tcp-closed-port"] = arp_request + rec_frame(to_static(closed, PROTO_TCP))
    return s


# ------------------------------------------------------------------ tcpip-tcpconn
# FuzzConnection.swift: three configuration bytes, then records led by an
# opcode byte. Sequence offsets count from RCV.NXT (the peer's ISS before the
# connection synchronized), acknowledgment offsets from the highest sequence
# number the connection sent (ack_base 0), SND.UNA (1), the send buffer's end
# (2) or our ISS (3).

F_FIN, F_SYN, F_RST, F_PSH, F_ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def conn_config(passive=False, receive_buffer=3, send_buffer=3, wscale=True, timestamps=True, sack=True,
                nagle=True, mss=0, mtu=0, iss=4, peer_iss=5) -> bytes:
    """The three configuration bytes (indices into the harness's tables)."""
    b0 = int(passive) | receive_buffer << 1 | send_buffer << 3 | wscale << 5 | timestamps << 6 | sack << 7
    b1 = int(nagle) | mss << 1 | mtu << 3 | iss << 5
    return bytes([b0, b1, peer_iss])


def conn_segment(flags: int, seq=0, ack=0, window=0xFFFF, ack_base=0, seq_shift=0, mss=None, wscale=None,
                 sack_permitted=False, timestamps=None, sack=(), payload=0) -> bytes:
    """A peer segment record. timestamps: (TSval delta in ms, TSecr selector: n < 0xFE
    the connection's latest TSval less n ms, 0xFF zero; 0xFE takes 4 more bytes, which
    this builder does not write). sack: (offset from SND.UNA, length)."""
    assert 0 <= ack_base < 4 and 0 <= seq_shift < 4 and len(sack) < 4 and payload <= 2000
    mask = ((mss is not None) | (wscale is not None) << 1 | sack_permitted << 2 | (timestamps is not None) << 3
            | len(sack) << 4)
    out = bytes([seq_shift << 2 | ack_base, flags]) + struct.pack("!hhHB", seq, ack, window, mask)
    if mss is not None:
        out += struct.pack("!H", mss)
    if wscale is not None:
        out += bytes([wscale])
    if timestamps is not None:
        out += struct.pack("!bB", *timestamps)
    for offset, length in sack:
        out += struct.pack("!hH", offset, length)
    return out + struct.pack("!H", payload)


def conn_advance(ms: int) -> bytes:
    """Advance the clock by about `ms` (a byte of mantissa << shift, rounded up)."""
    shift = 0
    while (ms + (1 << shift) - 1) >> shift > 0xFF:
        shift += 1
    assert shift <= 20
    return bytes([0x80 | shift, (ms + (1 << shift) - 1) >> shift])


def conn_fire() -> bytes:
    return b"\xa0"


def conn_write(n: int) -> bytes:
    assert n < 4096
    return bytes([0xB0 | n & 0xF, n >> 4])


def conn_read(maximum: int) -> bytes:
    assert maximum % 64 == 0 and 64 <= maximum <= 1024
    return bytes([0xC0 | maximum // 64 - 1])


CONN_TOGGLE_READ, CONN_DID_READ, CONN_CLOSE, CONN_SHUTDOWN, CONN_ABORT, CONN_REPLAY = (
    b"\xd0", b"\xd8", b"\xe0", b"\xe8", b"\xf0", b"\xf4")


def conn_seeds() -> dict:
    """Name → tcpip-tcpconn input. Keep in step with CorpusReplayTests.connectionExpected."""
    s = {}
    syn_options = dict(mss=1460, wscale=7, sack_permitted=True, timestamps=(0, 0))
    ts = dict(timestamps=(0, 0))
    # Active open: SYN-ACK, 1000 bytes in, 3000 bytes out and acknowledged,
    # the peer's FIN, our close, the ACK of our FIN, then TIME-WAIT's 2 MSL.
    s["conn-active-data-fin"] = (conn_config()
                                 + conn_segment(F_SYN | F_ACK, **syn_options)
                                 + conn_segment(F_ACK | F_PSH, payload=1000, **ts)
                                 + conn_write(3000)
                                 + conn_segment(F_ACK, **ts)
                                 + conn_segment(F_ACK | F_FIN, **ts)
                                 + CONN_CLOSE
                                 + conn_segment(F_ACK, **ts)
                                 + conn_advance(61_000))
    # Passive open; data arrives out of order: 1000..1500, 0..1000, 1500..2000; FIN.
    s["conn-passive-out-of-order"] = (conn_config(passive=True)
                                      + conn_segment(F_SYN, **syn_options)
                                      + conn_segment(F_ACK, **ts)
                                      + conn_segment(F_ACK, seq=1000, payload=500, **ts)
                                      + conn_segment(F_ACK, payload=1000, **ts)
                                      + conn_segment(F_ACK | F_FIN, payload=500, **ts)
                                      + CONN_CLOSE
                                      + conn_segment(F_ACK, **ts))
    # A RST in the window but not at RCV.NXT gets a challenge ACK; the exact one resets.
    s["conn-rst"] = (conn_config()
                     + conn_segment(F_SYN | F_ACK, **syn_options)
                     + conn_segment(F_RST, seq=100)
                     + conn_segment(F_RST))
    # Data sent and lost: the retransmission timer resends it, then the ACK comes.
    s["conn-retransmit"] = (conn_config(timestamps=False, sack=False)
                            + conn_segment(F_SYN | F_ACK, mss=1460)
                            + conn_write(2000)
                            + conn_fire() + conn_fire()
                            + conn_segment(F_ACK))
    # The peer closes its window: persist probes until it opens again.
    s["conn-zero-window"] = (conn_config(wscale=False, timestamps=False, sack=False)
                             + conn_segment(F_SYN | F_ACK, mss=536)
                             + conn_segment(F_ACK, window=0)
                             + conn_write(1000)
                             + conn_fire() + conn_fire()
                             + conn_segment(F_ACK, ack_base=1, window=8192))
    # An ACK of nothing new and three copies: four duplicate ACKs, the third triggers a fast retransmit.
    s["conn-duplicate-acks"] = (conn_config(timestamps=False, sack=False, mss=2)
                                + conn_segment(F_SYN | F_ACK, mss=100)
                                + conn_write(1000)
                                + conn_segment(F_ACK, ack_base=1, window=0xFFFF)
                                + CONN_REPLAY + CONN_REPLAY + CONN_REPLAY)
    # Simultaneous open: a SYN without ACK in SYN-SENT, then the ACK of ours.
    s["conn-simultaneous-open"] = (conn_config()
                                   + conn_segment(F_SYN, **syn_options)
                                   + conn_segment(F_ACK, **ts))
    # Nobody answers: the SYN is sent seven times, then the connect times out.
    s["conn-syn-timeout"] = conn_config() + conn_fire() * 8
    # A passive open whose application writes, reads slowly and closes first.
    s["conn-passive-close-first"] = (conn_config(passive=True, receive_buffer=0)
                                     + conn_segment(F_SYN, mss=536)
                                     + conn_segment(F_ACK)
                                     + CONN_TOGGLE_READ
                                     + conn_segment(F_ACK, payload=1024)
                                     + conn_read(512) + CONN_DID_READ
                                     + conn_write(600)
                                     + CONN_CLOSE
                                     + conn_segment(F_ACK)
                                     + conn_segment(F_ACK | F_FIN, seq=0)
                                     + conn_advance(61_000))
    return s


# ------------------------------------------------------------------ tcpip-vnet
# FuzzVirtioNet.swift: a 12-byte virtio-net header (struct virtio_net_hdr_v1,
# little-endian), then the frame. The harness has opened a connection from
# the peer (MAC_B, 10.0.0.2, port 40000, ISS 1000) to the static stack's TCP
# echo on port 7 (MAC_A, 10.0.0.1); a TCP segment on it with ACK set and
# acknowledgment 0 gets the stack's SND.NXT patched in.

VNET_NEEDS_CSUM, VNET_DATA_VALID = 1, 2
VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_GSO_UDP = 0, 1, 3


def vnet_header(flags=0, gso_type=VNET_GSO_NONE, hdr_len=0, gso_size=0, csum_start=0, csum_offset=0,
                num_buffers=0) -> bytes:
    return struct.pack("<BBHHHHH", flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers)


def peer_tcp_partial(payload: bytes) -> bytes:
    """A data segment (ACK|PSH, seq 1001, ack 0 to be patched) from the peer
    to the echo, its checksum field holding only the pseudo-header sum, as a
    sender leaving the checksum to the device (NEEDS_CSUM) writes it."""
    segment = struct.pack("!HHIIBBHHH", 40000, 7, 1001, 0, 5 << 4, PSH | ACK, 0xFFFF, 0, 0) + payload
    partial = ones_sum(IP_B + IP_A + struct.pack("!BBH", 0, PROTO_TCP, len(segment)))
    segment = segment[:16] + struct.pack("!H", partial) + segment[18:]
    return ethernet(ipv4(segment, PROTO_TCP, src=IP_B, dst=IP_A), ETH_IPV4, dst=MAC_A, src=MAC_B)


def vnet_seeds() -> dict:
    """Name → tcpip-vnet input. Keep in step with CorpusReplayTests.vnetExpected."""
    s = {}
    tcp_headers = 14 + 20 + 20
    csum = dict(csum_start=14 + 20, csum_offset=16)
    # Two full segments coalesced by the host (GRO), checksum left partial.
    big = peer_tcp_partial(bytes(range(256)) * 11 + bytes(80))  # 2896 bytes = 2 × 1448
    s["vnet-gso-tcpv4"] = vnet_header(VNET_NEEDS_CSUM, VNET_GSO_TCPV4, tcp_headers, 1448, **csum) + big
    small = peer_tcp_partial(b"x" * 100)
    s["vnet-needs-csum"] = vnet_header(VNET_NEEDS_CSUM, **csum) + small
    # DATA_VALID: the device checked the checksum, so the stack does not (it is wrong here).
    s["vnet-data-valid"] = vnet_header(VNET_DATA_VALID) + to_static(
        udp(5000, 7, b"echo me", src=IP_B, dst=IP_A, checksum_mode="bad"), PROTO_UDP)
    s["vnet-plain-ping"] = vnet_header() + to_static(icmp(8, 0, struct.pack("!HH", 0x4d2, 1), PING_DATA), PROTO_ICMP)
    # Malformed headers: refused before the frame is looked at.
    s["vnet-gso-unknown-type"] = vnet_header(VNET_NEEDS_CSUM, 2, tcp_headers, 1448, **csum) + big
    s["vnet-gso-udp-fragmentation"] = vnet_header(VNET_NEEDS_CSUM, VNET_GSO_UDP, tcp_headers, 1448, **csum) + big
    s["vnet-gso-size-zero"] = vnet_header(VNET_NEEDS_CSUM, VNET_GSO_TCPV4, tcp_headers, 0, **csum) + big
    s["vnet-csum-beyond-frame"] = vnet_header(VNET_NEEDS_CSUM, **csum) + small[:40]
    s["vnet-short-header"] = vnet_header(VNET_NEEDS_CSUM, **csum)[:7]
    return s


# ------------------------------------------------------------------ layers

def layers(frame: bytes) -> dict:
    """Target → bytes for every layer of `frame` a decoder would reach."""
    out = {"tcpip-ethernet": frame}
    if len(frame) < 14:
        return out
    ethertype, header = struct.unpack_from("!H", frame, 12)[0], 14
    if ethertype == ETH_QINQ:
        return out
    if ethertype == ETH_VLAN:
        if len(frame) < 18:
            return out
        ethertype, header = struct.unpack_from("!H", frame, 16)[0], 18
        if ethertype in (ETH_VLAN, ETH_QINQ):
            return out
    payload = frame[header:]
    if ethertype == ETH_ARP:
        out["tcpip-arp"] = payload
    elif ethertype == ETH_IPV4:
        out["tcpip-ipv4"] = payload
        if len(payload) < 20 or payload[0] >> 4 != 4:
            return out
        ihl, total = (payload[0] & 0xF) * 4, struct.unpack_from("!H", payload, 2)[0]
        if ihl < 20 or ihl > len(payload) or total < ihl or total > len(payload):
            return out
        if struct.unpack_from("!H", payload, 6)[0] & 0x1FFF:
            return out  # a later fragment: no transport header
        body = payload[ihl:total]
        if payload[9] == PROTO_ICMP:
            out["tcpip-icmp"] = body
        elif payload[9] == PROTO_TCP:
            out["tcpip-tcp"] = payload[12:20] + body
        elif payload[9] == PROTO_UDP:
            out["tcpip-udp"] = payload[12:20] + body
            if len(body) >= 8:
                sport, dport, stated = struct.unpack_from("!HHH", body)
                if {sport, dport} == {67, 68} and 8 <= stated <= len(body):
                    out["tcpip-dhcp"] = body[8:stated]
    return out


def main() -> int:
    check = "--check" in sys.argv[1:]
    written = differing = 0
    files = [(target, name, data) for name, frame in seeds().items() for target, data in layers(frame).items()]
    files += [("tcpip-stack", name, data) for name, data in stack_seeds().items()]
    files += [("tcpip-tcpconn", name, data) for name, data in conn_seeds().items()]
    files += [("tcpip-vnet", name, data) for name, data in vnet_seeds().items()]
    for target, name, data in files:
        path = os.path.join(CORPUS, target, name)
        old = open(path, "rb").read() if os.path.exists(path) else None
        if old == data:
            continue
        differing += 1
        if check:
            print(f"differs: {os.path.relpath(path, ROOT)}")
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        written += 1
    if check:
        return 1 if differing else 0
    print(f"{written} seed files written under {os.path.relpath(CORPUS, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
