"""A shaped link for benchmarks: two network namespaces joined by a veth pair, each end
rate-limited by a token bucket (tc tbf), so that a server in one and clients in the other
talk over something like an N Mbit/s Ethernet link instead of loopback.

    with shaped_link(100) as link:             # needs root, ip and tc (iproute2)
        start_vsftpd(..., link.server_address, ..., netns=link.server_ns)
        subprocess.run(link.client_argv(["wget", ...]))
        print(measure_mbit(link))               # bulk TCP payload rate, server -> client

What exists only while the block runs: namespaces `dgbench-<pid>-srv` and `dgbench-<pid>-cli`,
the veth pair inside them (never in this namespace: the pair is created in the server
namespace with its peer placed directly in the client one), RFC 2544 benchmark addresses
198.18.0.1/30 (server) and 198.18.0.2/30 (client), lo up in both. Nothing in the calling
namespace (interfaces, routes, addresses) is read or changed, and no packet leaves the pair.

Shaping: `tbf rate <N>mbit burst <B> latency 20ms` on BOTH veth ends (requests and ACKs are
rate-limited too). tbf counts whole frames, so TCP payload gets ~95 % of the rate
(1448 bytes of 1514). B is the larger of 64 KiB (a GSO packet of the veth fits in one burst,
so tbf never has to split it) and 1 ms of traffic; 20 ms bounds the queue (250 KB at
100 Mbit/s, a switch port's buffer). The kernel has no netem here, so there is no added
propagation delay: the round trip is what serialisation and queueing cost, as on a LAN.

`python bench/_netns.py source|sink ADDRESS PORT [BYTES]` are the two ends of measure_mbit.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

SERVER_ADDRESS = "198.18.0.1"
CLIENT_ADDRESS = "198.18.0.2"
PREFIX = 30
LATENCY_MS = 20
MIN_BURST = 64 * 1024
MEASURE_PORT = 5201
SERVER_DEV = "dgb-srv"
CLIENT_DEV = "dgb-cli"


class LinkError(RuntimeError):
    """The shaped link could not be set up (not root, iproute2 missing, a command failed)."""


@dataclass(frozen=True, slots=True)
class Link:
    mbit: int
    server_ns: str
    client_ns: str
    burst: int                              # bytes
    server_address: str = SERVER_ADDRESS
    client_address: str = CLIENT_ADDRESS

    def client_argv(self, argv: list[str]) -> list[str]:
        """`argv` run in the client namespace."""
        return ["ip", "netns", "exec", self.client_ns, *argv]

    def server_argv(self, argv: list[str]) -> list[str]:
        """`argv` run in the server namespace."""
        return ["ip", "netns", "exec", self.server_ns, *argv]

    def server_sent(self) -> int:
        """Bytes the server end has put on the link so far (its tbf counter: whole frames,
        headers included, also those a client had already reset and will drop)."""
        out = subprocess.run(["tc", "-n", self.server_ns, "-s", "qdisc", "show", "dev",
                              SERVER_DEV], capture_output=True, text=True, check=False,
                             timeout=30).stdout
        sent = re.search(r"Sent (\d+) bytes", out)
        if sent is None:
            raise LinkError(f"no tbf counter on {SERVER_DEV} in {self.server_ns}: {out!r}")
        return int(sent.group(1))

    def describe(self) -> str:
        return (f"{self.mbit} Mbit/s veth between namespaces {self.server_ns} and "
                f"{self.client_ns} (tbf burst {self.burst // 1024} KiB, "
                f"latency {LATENCY_MS} ms, both directions)")


def link_missing() -> str | None:
    """Why a shaped link cannot be set up here (None when it can)."""
    if os.geteuid() != 0:
        return "a shaped link needs root (network namespaces, tc)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"a shaped link needs `{tool}` (Debian package iproute2)"
    return None


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    if proc.returncode != 0:
        raise LinkError(f"`{' '.join(argv)}` failed ({proc.returncode}): "
                        f"{(proc.stderr or proc.stdout).strip()[:300]}")


@contextmanager
def shaped_link(mbit: int) -> Iterator[Link]:
    """Create the namespaces and the shaped veth pair; delete them on the way out, whatever
    happens (Ctrl-C included). Whatever still runs in them then is killed first: a namespace
    outlives its deletion while a process is in it."""
    problem = link_missing()
    if problem:
        raise LinkError(problem)
    if mbit <= 0:
        raise LinkError(f"link rate must be positive, not {mbit} Mbit/s")
    tag = f"dgbench-{os.getpid()}"
    burst = max(MIN_BURST, mbit * 1_000_000 // 8 // 1000)
    link = Link(mbit, f"{tag}-srv", f"{tag}-cli", burst)
    created: list[str] = []
    try:
        for ns in (link.server_ns, link.client_ns):
            _run(["ip", "netns", "add", ns])
            created.append(ns)
        _run(["ip", "-n", link.server_ns, "link", "add", SERVER_DEV, "type", "veth",
              "peer", "name", CLIENT_DEV, "netns", link.client_ns])
        for ns, dev, address in ((link.server_ns, SERVER_DEV, link.server_address),
                                 (link.client_ns, CLIENT_DEV, link.client_address)):
            _run(["ip", "-n", ns, "addr", "add", f"{address}/{PREFIX}", "dev", dev])
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            _run(["ip", "-n", ns, "link", "set", dev, "up"])
            _run(["tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf",
                  "rate", f"{mbit}mbit", "burst", str(burst), "latency", f"{LATENCY_MS}ms"])
        yield link
    finally:
        for ns in reversed(created):
            _kill_inside(ns)
            # deleting a namespace deletes its veth end, and the pair with it
            with suppress(LinkError, subprocess.TimeoutExpired):
                _run(["ip", "netns", "del", ns])


def _kill_inside(ns: str) -> None:
    """SIGKILL what still runs in a namespace of ours (a vsftpd session process leads its own
    process group, so stopping the server's group leaves it waiting for its idle timeout)."""
    with suppress(OSError, subprocess.SubprocessError):
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                              check=False, timeout=30).stdout.split()
        for pid in pids:
            with suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)


def measure_mbit(link: Link, seconds: float = 2.0) -> float:
    """Bulk TCP payload rate from the server namespace to the client one, in Mbit/s (about
    `seconds` worth of bytes at the nominal rate): checks that the shaping is real."""
    size = int(link.mbit * 1e6 / 8 * seconds)
    python = sys.executable
    source = subprocess.Popen(link.server_argv([python, __file__, "source", link.server_address,
                                                str(MEASURE_PORT), str(size)]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        sink = subprocess.run(link.client_argv([python, __file__, "sink", link.server_address,
                                                str(MEASURE_PORT)]),
                              capture_output=True, text=True, check=False,
                              timeout=30 + 4 * seconds)
    finally:
        source.kill()
        _, err = source.communicate()
    if sink.returncode != 0:
        raise LinkError(f"bulk transfer over the link failed: {sink.stderr.strip()[-300:]} "
                        f"{err.strip()[-300:]}")
    received, elapsed = (float(x) for x in sink.stdout.split())
    if received < size:
        raise LinkError(f"bulk transfer over the link got {received:.0f} of {size} bytes")
    return received * 8 / elapsed / 1e6


def _source(address: str, port: int, size: int) -> None:
    with socket.create_server((address, port)) as server:
        conn, _ = server.accept()
        with conn:
            block = bytes(65536)
            left = size
            while left > 0:
                left -= conn.send(block[:left])


def _sink(address: str, port: int) -> None:
    deadline = time.monotonic() + 10
    while True:                                     # until the source listens
        try:
            conn = socket.create_connection((address, port), timeout=5)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with conn:
        start = time.perf_counter()
        received = 0
        while chunk := conn.recv(1 << 20):
            received += len(chunk)
        print(received, time.perf_counter() - start)


if __name__ == "__main__":
    if sys.argv[1] == "source":
        _source(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        _sink(sys.argv[2], int(sys.argv[3]))
