"""Scale benchmark: dicomguard vs nmap's dicom-ping vs a bare-socket floor, same targets, one run.

    .venv/bin/python bench/bench_dicom_scale.py [--endpoints 1000] [--closed 200] [--memory]

Starts `bench/listeners.py` (minimal Verification SCPs, one per loopback address, port 11112)
plus addresses where nothing listens, then measures, on exactly those targets:
  - nmap 7.93 `--script dicom-ping` (association only), wall time including start-up;
  - the bare-socket floor: a sequential loop that sends one A-ASSOCIATE-RQ and reads the reply;
  - dicomguard's quick probe (association + C-ECHO + fingerprint + release), and its default
    safe probe (+ SOP class catalogue, C-FIND when offered, TLS on 2762), in-process;
and prints endpoints/s and the ratios. With --memory it also runs `dicomguard scan` over a
65,536-address target list (127.2.0.0/16, nothing listening) and prints its peak RSS.
Traffic goes to 127.0.0.0/8 only.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import resource
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from dicomguard.engine.scan import ScanConfig  # noqa: E402
from dicomguard.engine.workers import scan_parallel  # noqa: E402
from dicomguard.probes.dicom import DicomProbeConfig  # noqa: E402
from dicomguard.scope import build_scope  # noqa: E402

PORT = 11112
FIRST = ipaddress.IPv4Address("127.1.0.1")
CLOSED_FIRST = ipaddress.IPv4Address("127.1.200.1")


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))


def start_listeners(count: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench/listeners.py"), "--first",
                             str(FIRST), "--count", str(count), "--port", str(PORT)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise SystemExit("listeners did not start")
    return proc


def addresses(first: ipaddress.IPv4Address, count: int) -> list[str]:
    return [str(first + i) for i in range(count)]


def associate_rq() -> bytes:
    """A-ASSOCIATE-RQ proposing Verification, built from PS3.8 9.3.2 for the floor loop."""
    def item(t: int, payload: bytes) -> bytes:
        return struct.pack(">BBH", t, 0, len(payload)) + payload
    ctx = item(0x20, bytes([1, 0, 0, 0]) + item(0x30, b"1.2.840.10008.1.1")
               + item(0x40, b"1.2.840.10008.1.2"))
    user = item(0x50, item(0x51, struct.pack(">I", 16384)) + item(0x52, b"1.2.3.4"))
    body = (struct.pack(">HH", 1, 0) + b"ANY-SCP".ljust(16) + b"FLOOR".ljust(16) + bytes(32)
            + item(0x10, b"1.2.840.10008.3.1.1.1") + ctx + user)
    return struct.pack(">BBI", 1, 0, len(body)) + body


def floor(targets: list[str], closed: list[str]) -> tuple[float, int]:
    rq = associate_rq()
    found = 0
    start = time.perf_counter()
    for addr in targets + closed:
        try:
            with socket.create_connection((addr, PORT), timeout=2) as sock:
                sock.sendall(rq)
                header = b""
                while len(header) < 6:
                    chunk = sock.recv(6 - len(header))
                    if not chunk:
                        break
                    header += chunk
                if len(header) == 6 and header[0] == 2:
                    length = struct.unpack(">I", header[2:])[0]
                    got = 0
                    while got < length:
                        chunk = sock.recv(length - got)
                        if not chunk:
                            break
                        got += len(chunk)
                    found += 1
        except OSError:
            pass
    return time.perf_counter() - start, found


def nmap(targets: list[str], closed: list[str], tmp: Path) -> tuple[float, int] | None:
    exe = shutil.which("nmap")
    if exe is None:
        return None
    listing = tmp / "nmap-targets.txt"
    listing.write_text("\n".join(targets + closed) + "\n")
    start = time.perf_counter()
    out = subprocess.run([exe, "-n", "-Pn", "-sT", "-p", str(PORT), "--script", "dicom-ping",
                          "-iL", str(listing), "-oX", "-"], capture_output=True, text=True,
                         check=False)
    elapsed = time.perf_counter() - start
    found = len(re.findall(r'id="dicom-ping"', out.stdout))
    return elapsed, found


def dicomguard(targets: list[str], closed: list[str], *, quick: bool,
               workers: int = 1) -> tuple[float, int]:
    specs = [f"{a}:{PORT}" for a in targets + closed]
    scope = build_scope(specs)
    probe = DicomProbeConfig(read_timeout=5.0, query=not quick, negotiate_catalogue=not quick,
                             tls=not quick)
    cfg = ScanConfig(ports=(PORT,), rate=0, per_host=2, connect_timeout=3.0,
                     max_in_flight=512, dicom=probe)
    start = time.perf_counter()
    results = scan_parallel(scope.targets(), cfg, guard=scope, workers=workers)
    elapsed = time.perf_counter() - start
    found = sum(1 for r in results if r.service is not None and r.service.facts.get("dicom"))
    return elapsed, found


def memory_65536() -> tuple[float, float]:
    exe = ROOT / ".venv/bin/dicomguard"
    cmd = [str(exe) if exe.exists() else "dicomguard", "scan", "127.2.0.0/16", "--only-ports",
           str(PORT), "--quick", "--rate", "0", "--db", "none", "--no-progress",
           "--connect-timeout", "2"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        print(f"  (scan exited with status {os.waitstatus_to_exitcode(status)})")
    return elapsed, usage.ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--closed", type=int, default=200)
    parser.add_argument("--memory", action="store_true")
    args = parser.parse_args()
    raise_fd_limit()
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    targets = addresses(FIRST, args.endpoints)
    closed = addresses(CLOSED_FIRST, args.closed)
    proc = start_listeners(args.endpoints)
    try:
        n = len(targets) + len(closed)
        print(f"targets: {len(targets)} listening DICOM endpoints + {len(closed)} closed "
              f"addresses, port {PORT}")
        rows: list[tuple[str, float, int]] = []
        t, found = floor(targets, closed)
        rows.append(("bare-socket floor (A-ASSOCIATE-RQ/AC only)", t, found))
        nm = nmap(targets, closed, tmp)
        if nm is not None:
            rows.append(("nmap --script dicom-ping", nm[0], nm[1]))
        t, found = dicomguard(targets, closed, quick=True)
        rows.append(("dicomguard quick probe, 1 process", t, found))
        t, found = dicomguard(targets, closed, quick=True, workers=2)
        rows.append(("dicomguard quick probe, --workers 2", t, found))
        t, found = dicomguard(targets, closed, quick=False)
        rows.append(("dicomguard default safe probe, 1 process", t, found))
        print(f"{'tool':50} {'seconds':>8} {'found':>6} {'targets/s':>10}")
        for name, secs, found in rows:
            print(f"{name:50} {secs:8.3f} {found:6d} {n / secs:10.0f}")
        by_name = {name: secs for name, secs, _ in rows}
        floor_t = rows[0][1]
        for label in ("dicomguard quick probe, 1 process", "dicomguard quick probe, --workers 2"):
            t = by_name[label]
            print(f"{label}: {(nm[0] / t) if nm else float('nan'):.2f}x nmap's throughput "
                  f"(goal >= 2x); {t / floor_t:.2f}x the bare-socket floor's time (goal <= 3x)")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    if args.memory:
        secs, rss = memory_65536()
        print(f"65,536-address target list (quick, nothing listening): {secs:.1f} s, peak RSS "
              f"{rss:.0f} MB (goal < 300 MB)")


if __name__ == "__main__":
    main()
