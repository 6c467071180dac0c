#!/usr/bin/python3
"""Runs NSD (Debian's) for the DNS tests and benchmarks, as issue #8 asks:
`server-count: 1`, `rrl-ratelimit: 0` and `rrl-whitelist-ratelimit: 0` (the
response rate limiter would otherwise drop test and benchmark traffic), and
every other setting at its default, except what it takes to run from a
temporary folder on one address and port: no user switch, no chroot, no
database file, state files and pid file in the folder, no control socket.
Each zone allows AXFR to 127.0.0.1 (`provide-xfr: 127.0.0.1 NOKEY`) for the
`dig AXFR` comparison.

    nsd_server.py --dir DIR --port PORT [--address 127.0.0.1] \\
        [--config-only] [ORIGIN=]ZONEFILE...

writes DIR/nsd.conf, checks it with nsd-checkconf, then replaces itself
with `nsd -d -c DIR/nsd.conf` (foreground; SIGTERM stops it and its
children). A zone's origin is the first `$ORIGIN` line of its file unless
given as ORIGIN=FILE. With --config-only it prints the config's path and
exits. Other scripts import `write_config` and `wait_until_serving`.
"""

import argparse
import os
import shutil
import socket
import struct
import subprocess
import sys
import time

# The settings issue #8 fixes for the NSD we compare against.
REQUIRED_SETTINGS = [
    ("server-count", "1"),
    ("rrl-ratelimit", "0"),
    ("rrl-whitelist-ratelimit", "0"),
]


def zone_origin(path):
    """The origin named by the first $ORIGIN line of a zone file."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            fields = line.split(";", 1)[0].split()
            if len(fields) >= 2 and fields[0].upper() == "$ORIGIN":
                return fields[1]
    raise SystemExit(f"nsd_server: {path} has no $ORIGIN line (give ORIGIN=FILE)")


def parse_zone_argument(text):
    """'ORIGIN=FILE' or 'FILE' → (origin with a trailing dot, absolute path)."""
    origin = None
    path = text
    if "=" in text and not os.path.exists(text):
        origin, path = text.split("=", 1)
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise SystemExit(f"nsd_server: no zone file {path}")
    if origin is None:
        origin = zone_origin(path)
    if not origin.endswith("."):
        origin += "."
    return origin, path


def quoted(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(directory, port, zones, address="127.0.0.1", verbosity=None):
    """Writes DIR/nsd.conf for `zones` ([(origin, path)]) and returns its path."""
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    lines = [
        "# Written by Tests/InteropTests/DNS/nsd_server.py",
        "server:",
    ]
    lines += [f"    {key}: {value}" for key, value in REQUIRED_SETTINGS]
    lines += [
        f"    ip-address: {address}",
        f"    port: {port}",
        # Running from a temporary folder as whoever we are.
        '    username: ""',
        '    chroot: ""',
        f"    zonesdir: {quoted(directory)}",
        f"    pidfile: {quoted(directory + '/nsd.pid')}",
        '    database: ""',
        f"    zonelistfile: {quoted(directory + '/zone.list')}",
        f"    xfrdfile: {quoted(directory + '/xfrd.state')}",
        f"    xfrdir: {quoted(directory)}",
        # Never write zone files back into the source tree.
        "    zonefiles-write: 0",
    ]
    if verbosity is not None:
        lines.append(f"    verbosity: {verbosity}")
    lines += ["", "remote-control:", "    control-enable: no", ""]
    for origin, path in zones:
        lines += [
            "zone:",
            f"    name: {quoted(origin)}",
            f"    zonefile: {quoted(path)}",
            "    provide-xfr: 127.0.0.1 NOKEY",
            "",
        ]
    config = directory + "/nsd.conf"
    with open(config, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    checker = shutil.which("nsd-checkconf") or "/usr/sbin/nsd-checkconf"
    if os.path.exists(checker):
        result = subprocess.run([checker, config], capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise SystemExit(f"nsd_server: nsd-checkconf rejected {config}:\n{result.stdout}{result.stderr}")
    return config


def nsd_binary():
    return shutil.which("nsd") or "/usr/sbin/nsd"


def soa_query(origin, query_id=0x5151):
    """A plain UDP query for ORIGIN SOA, without EDNS."""
    wire = b""
    for label in origin.rstrip(".").split("."):
        if label:
            wire += bytes([len(label)]) + label.encode("ascii")
    wire += b"\x00"
    return struct.pack("!HHHHHH", query_id, 0, 1, 0, 0, 0) + wire + struct.pack("!HH", 6, 1)


def wait_until_serving(address, port, origin, timeout=30.0, process=None):
    """Polls ADDRESS:PORT with an SOA query for ORIGIN until an answer with
    the AA bit comes back; returns False after `timeout` seconds or when
    `process` (a Popen) has exited."""
    deadline = time.monotonic() + timeout
    query = soa_query(origin)
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.3)
            try:
                sock.sendto(query, (address, port))
                data, _ = sock.recvfrom(65535)
                if len(data) >= 12 and data[:2] == query[:2] and data[2] & 0x04:
                    return True
            except OSError:
                pass
        time.sleep(0.1)
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", required=True, help="folder for nsd.conf and NSD's state files")
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--verbosity", type=int, help="NSD's verbosity (default: NSD's own)")
    parser.add_argument("--config-only", action="store_true", help="write and check the config, print its path, exit")
    parser.add_argument("zones", nargs="+", metavar="[ORIGIN=]ZONEFILE")
    args = parser.parse_args()
    zones = [parse_zone_argument(z) for z in args.zones]
    config = write_config(args.dir, args.port, zones, address=args.address, verbosity=args.verbosity)
    if args.config_only:
        print(config)
        return
    sys.stdout.flush()
    os.execv(nsd_binary(), [nsd_binary(), "-d", "-c", config])


if __name__ == "__main__":
    main()
