"""Benchmark: what an anonymous FTP share exposes, found by dicomguard's walk + sample versus a
plain full download of the same tree (`wget -m`, and `lftp mirror` when installed), then
counted by dicomguard's own audit of the downloaded folder.

    .venv/bin/python bench/bench_ftp_sample.py                    # 20,000 files, ~390 KB each
    .venv/bin/python bench/bench_ftp_sample.py --files 5000 --sample-bytes 65536
    .venv/bin/python bench/bench_ftp_sample.py --link loopback --link 1000 --link 100

The tree: `--patients` synthetic patients (invented names, pixel data of --rows x --cols 16-bit
CT, a realistic slice size), each one DICOM file hard-linked `files / patients` times under
PACS/<year>/<patient>_<study>/ (vsftpd serves hard links as separate files; the disk holds
one copy per patient), plus a text file per folder. Served by a real vsftpd (lab/ftp.py),
anonymous read-only, over each `--link` in turn (repeatable, one table per link):

- `loopback` (the default): vsftpd on 127.0.0.170, the clients in this namespace. Moving a
  byte costs almost nothing, so this measures per-file work, i.e. CPU;
- a rate in Mbit/s (`1000`, `100`): vsftpd in a network namespace, the clients in a second
  one, joined by a veth pair shaped to that rate in both directions by tc tbf (bench/_netns.py:
  198.18.0.1 and 198.18.0.2, RFC 2544 addresses; needs root, ip and tc; namespaces and what
  runs in them are deleted on the way out, Ctrl-C included). This measures what reading a
  share across an Ethernet segment costs: link time. A bulk TCP transfer is measured first
  and printed (95.9 Mbit/s on 100, 953-956 on 1000: tbf counts whole frames). No delay is
  added (no netem in this kernel): a round trip costs serialisation and queueing, as on a LAN;
  across a WAN dicomguard's per-file round trips would weigh more.

Measured, in the same run, on the same server:

- dicomguard: `probes.ftp.probe` with limits high enough to walk everything, in a fresh
  interpreter on the clients' side (`--_client`), timed inside it (start-up excluded); MiB:
  bytes that reached the client on data connections (Linux tcp_info bytes_received, listings
  included: the bytes on the wire, not just the bytes kept);
- wget -m (passive FTP, one connection like dicomguard), lftp mirror (--parallel=1): the
  process's time, and bytes downloaded (the files plus wget's .listing files);
- on a shaped link, link MiB: what the server's end put on the link during each client's run
  (tbf's counter: frames with headers; for dicomguard also the rest of a sample's window that
  was on its way when the client reset the transfer, and that it drops);
- the DICOM file and patient counts: dicomguard's from the walk, the peers' from
  `run_audit` over their download (not timed: the download alone is what is compared).

Prints the ratios (goal: same counts, >= 10x fewer bytes, >= 5x less time). Needs root
(vsftpd chroots) and wget; it is not a timed test.

Measured on the shared 2-CPU box while other CPU benchmarks ran on it (timings are noisy),
20,000 files, counts identical in every run; seconds (MiB received / link MiB):

    link       dicomguard 16 KiB     dicomguard 64 KiB      wget -m       lftp mirror
    loopback    9.6 s (470)          15.0 s (1408)          27.8 s        32.4 s   (7530 MiB)
    loopback    8.3 s (470)          13.1 s (1408)          20.0 s        30.1 s
    1000       13.3 s (444)          18.6 s (1438)          67.3 s        69.4 s
    1000       12.6 s (426 / 475)    16.8 s (1418 / 1513)   68.8 s (/ 7886)  69.6 s
    100        40.3 s (336 / 480)   125.1 s (1306 / 1491)  661.5 s (/ 7884) 662.2 s

Later, on a quiet box and with the faster audit (inspector pass in C), same command:

    1000        8.8 s (424 / 475)           -              67.0 s (/ 7886)  69.6 s
    loopback    8.9 s (470)                 -              21.4 s           29.4 s
    time ratios: 1000 Mbit/s 7.6x (lftp 7.9x); loopback 2.4x (3.3x); bytes 17.8x / 16.0x

    time ratios, wget (lftp) / dicomguard 16 KiB: loopback 2.9x and 2.4x (3.4x, 3.6x);
    1000 Mbit/s 5.0x and 5.5x (5.2x, 5.5x); 100 Mbit/s 16.4x (16.4x). 64 KiB: 1.5-2.3x,
    3.6-4.1x, 5.3x. Bytes: 16.0-17.7x fewer received with 16 KiB samples (16.4-16.6x on the
    link), 5.2-5.8x with 64 KiB.

Reading the time ratio. On loopback a 385 KiB transfer costs almost nothing, so both tools pay
mostly per-file work, and dicomguard's is CPU in one process: per file about 0.2 ms of audit
(reader + inspector on the sample), 0.15 ms of kernel time for the loopback send, connect and
reset (the reset also frees what vsftpd had queued), and 0.15 ms of asyncio and client code;
vsftpd needs about 0.15 ms more on the other CPU. The client already spends one round trip per
file (see net/ftp.py: final reply instead of ABOR + NOOP, EPSV sent with RETR, next RETR
started before the sample is audited), and waits little: the walk is CPU-bound. wget's time
depends on how fast the box writes 7.5 GB, so the ratio moves from run to run (earlier runs:
dicomguard 9.9 - 13.0 s, 15.4 s before the round-trip work; wget 17.8 - 30.1 s).

At 1000 Mbit/s wget and lftp are link-bound (~920 Mbit/s of payload); dicomguard is not (its
475 link MiB take 4.2 s of the 12.6 s): per file 0.63 ms instead of 0.41 on loopback, the
veth and tbf adding kernel work on both CPUs, and still mostly CPU (1.0 s of CPU in the client
for 1.4 s of walk, on 2,000 files). At 100 Mbit/s everybody is link-bound: the link is busy
for the whole walk (480 link MiB are 40.3 s at 100 Mbit/s), and a third of what dicomguard
puts on it is not the kept sample: ~4 % frame headers, and ~6 KiB a file of the sample's
window still queued on the link when the client resets the transfer (with it, the 426 reply
waits behind that data, ~0.45 ms a file). The receive buffer of a sample's data connection
(net/ftp.py SAMPLE_RCVBUF, 8 KiB) sets that window: 2 KiB made 2,000 files take 3.3 s instead
of 4.2 s at 100 Mbit/s, but 1.55 s instead of 1.1 s at 1000 Mbit/s (45 % more client CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pydicom
from _netns import Link, LinkError, link_missing, measure_mbit, shaped_link

from dicomguard.audit.runner import AuditOptions, run_audit
from dicomguard.lab import synthetic
from dicomguard.lab.ftp import start_vsftpd, stop_ftp, vsftpd_missing
from dicomguard.models import Endpoint
from dicomguard.net.connector import Connector
from dicomguard.probes.ftp import FtpConfig, probe
from dicomguard.probes.share_walk import ShareLimits

ADDRESS = "127.0.0.170"
PORT = 2121

#: How a client command runs: as is (loopback) or in the client namespace (Link.client_argv).
Side = Callable[[list[str]], list[str]]


def _here(argv: list[str]) -> list[str]:
    return argv


def build_tree(root: Path, files: int, patients: int, rows: int, cols: int) -> int:
    """Write the tree; returns the number of DICOM files (hard links included)."""
    template_dir = root.parent / "template"
    data = synthetic.generate(template_dir, seed=11)
    template = pydicom.dcmread(data.files[0])
    rng = np.random.default_rng(3)
    per_patient = max(1, files // patients)
    written = 0
    for p in range(patients):
        ds = template.copy()
        ds.PatientName = f"BENCHPATIENT^NUMBER{p:05d}"
        ds.PatientID = f"BENCH{p:06d}"
        ds.StudyInstanceUID = synthetic.lab_uid(11, "bench-study", p)
        ds.SeriesInstanceUID = synthetic.lab_uid(11, "bench-series", p)
        ds.SOPInstanceUID = synthetic.lab_uid(11, "bench-sop", p)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.Rows, ds.Columns = rows, cols
        ds.PixelData = rng.integers(0, 4096, size=rows * cols, dtype=np.uint16).tobytes()
        year = 2015 + p % 10
        folder = root / "PACS" / str(year) / f"{ds.PatientID}_study1"
        folder.mkdir(parents=True, exist_ok=True)
        first = folder / "IM000000"
        ds.save_as(first, enforce_file_format=True)
        for i in range(1, per_patient):
            os.link(first, folder / f"IM{i:06d}")
        written += per_patient
        (folder / "README.txt").write_text("exported by the synthetic bench archive\n" * 5)
    shutil.rmtree(template_dir)
    for dirpath, _subdirs, names in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in names:
            os.chmod(os.path.join(dirpath, name), 0o644)
    return written


def tree_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _subdirs, names in os.walk(folder):
        for name in names:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def walk(address: str, sample_bytes: int, files: int) -> dict[str, float]:
    """dicomguard's walk of the whole tree, in this process (the `--_client` side)."""
    limits = ShareLimits(max_depth=10, max_entries=10 * files + 1000, max_files=10 * files,
                         sample_bytes=sample_bytes, max_bytes=1 << 40, time_budget=3600)
    cfg = FtpConfig(timeout=30.0, limits=limits)
    start = time.perf_counter()
    facts = asyncio.run(probe(Endpoint(address, PORT, "ftp"),
                              Connector(None, rate=0, per_host=2), cfg))
    seconds = time.perf_counter() - start
    if facts.walk is None:
        raise SystemExit(f"dicomguard walk failed: {facts.error or facts.walk_error}")
    return {"seconds": seconds, "bytes": facts.wire_bytes, "kept": facts.bytes_read,
            "dicom_files": facts.walk["dicom_files"], "patients": facts.walk["patients"],
            "limits": len(facts.walk["limits_reached"])}


def run_dicomguard(side: Side, address: str, sample_bytes: int,
                   files: int) -> dict[str, float]:
    """The walk in a fresh interpreter on the client side; its own timing, start-up excluded."""
    argv = side([sys.executable, os.path.abspath(__file__), "--_client", address,
                 "--files", str(files), "--sample-bytes", str(sample_bytes)])
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=7200)
    if proc.returncode != 0:
        raise SystemExit(f"dicomguard walk exited {proc.returncode}: {proc.stderr[-800:]}")
    result: dict[str, float] = json.loads(proc.stdout.splitlines()[-1])
    return result


def run_peer(name: str, argv: list[str], out: Path) -> dict[str, float]:
    out.mkdir(parents=True)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=out, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, check=False, timeout=7200)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 8):       # wget: 8 = some server error response
        print(f"{name} exited {proc.returncode}: {proc.stderr[-500:]}", file=sys.stderr)
    size = tree_bytes(out)
    audit = run_audit([out], AuditOptions(jobs=max(1, (os.cpu_count() or 2) - 1)))
    shutil.rmtree(out)
    s = audit.summary
    return {"seconds": seconds, "bytes": size, "dicom_files": s.dicom_files,
            "patients": len(s.patients)}


def measure(link: Link | None, work: Path, samples: list[int], files: int,
            lftp: bool) -> dict[str, dict[str, float]]:
    """Every client against one vsftpd, on loopback (`link` None) or across the shaped link."""
    address = link.server_address if link else ADDRESS
    side: Side = link.client_argv if link else _here
    state = work / "state"
    results: dict[str, dict[str, float]] = {}

    def record(name: str, run: Callable[[], dict[str, float]]) -> None:
        before = link.server_sent() if link else 0
        results[name] = run()
        if link:
            results[name]["link_bytes"] = link.server_sent() - before

    url = f"ftp://{address}:{PORT}/"
    try:
        start_vsftpd(state, address, PORT, work / "root", name="bench-ftp", writable=False,
                     netns=link.server_ns if link else None)
        for sample in samples:
            record(f"dicomguard --sample-bytes {sample}",
                   partial(run_dicomguard, side, address, sample, files))
        record("wget -m", lambda: run_peer("wget", side(["wget", "-m", "-nv", "-nH", url]),
                                           work / "wget"))
        if lftp:
            record("lftp mirror", lambda: run_peer("lftp", side(
                ["lftp", "-c", f"set ftp:passive-mode on; set net:max-retries 1; "
                 f"open {url}; mirror --parallel=1 / ."]), work / "lftp"))
    finally:
        stop_ftp(state)
        shutil.rmtree(state, ignore_errors=True)
    return results


def report(results: dict[str, dict[str, float]]) -> None:
    """The table (MiB: bytes received, Mbit/s: their rate; on a shaped link, link MiB: what
    the server put on the link meanwhile) and the ratios."""
    width = max(len(k) for k in results)
    shaped = all("link_bytes" in r for r in results.values())
    print(f"{'':{width}}  {'seconds':>9} {'MiB':>10} {'Mbit/s':>8}"
          f"{' link MiB' if shaped else ''} {'DICOM files':>12} {'patients':>9}")
    for name, r in results.items():
        link = f" {r['link_bytes'] / 2**20:8.1f}" if shaped else ""
        print(f"{name:{width}}  {r['seconds']:9.2f} {r['bytes'] / 2**20:10.1f} "
              f"{r['bytes'] * 8 / r['seconds'] / 1e6:8.1f}{link} "
              f"{int(r['dicom_files']):12d} {int(r['patients']):9d}")
    ours = [k for k in results if k.startswith("dicomguard")]
    peers = [k for k in results if not k.startswith("dicomguard")]
    for peer in peers:
        for mine in ours:
            p, m = results[peer], results[mine]
            same = p["dicom_files"] == m["dicom_files"] and p["patients"] == m["patients"]
            on_link = (f" ({p['link_bytes'] / m['link_bytes']:.1f}x on the link)" if shaped
                       else "")
            print(f"{peer} / {mine}: {p['bytes'] / m['bytes']:.1f}x the bytes{on_link}, "
                  f"{p['seconds'] / m['seconds']:.1f}x the time; counts "
                  f"{'identical' if same else 'DIFFER'}")


def link_rate(text: str) -> int:
    """--link value: 0 for loopback, else the rate in Mbit/s ("100", "100mbit")."""
    if text == "loopback":
        return 0
    try:
        mbit = int(text.lower().removesuffix("mbit"))
    except ValueError:
        mbit = 0
    if mbit <= 0:
        raise argparse.ArgumentTypeError(f"not 'loopback' nor a rate in Mbit/s: {text!r}")
    return mbit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--rows", type=int, default=384)
    parser.add_argument("--cols", type=int, default=512)
    parser.add_argument("--sample-bytes", type=int, action="append",
                        help="dicomguard's --sample-bytes (repeatable; default 16384 and 65536)")
    parser.add_argument("--no-lftp", action="store_true")
    parser.add_argument("--link", type=link_rate, action="append", metavar="loopback|MBIT",
                        help="where the clients talk to vsftpd: 'loopback' (default), or a "
                             "veth between two namespaces shaped to MBIT Mbit/s each way "
                             "(needs root, ip, tc). Repeatable: one table per link")
    parser.add_argument("--_client", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    samples = args.sample_bytes or [16384, 65536]
    if args._client:
        print(json.dumps(walk(args._client, samples[0], args.files)))
        return
    links: list[int] = args.link or [0]
    problem = vsftpd_missing() or ("wget not found" if shutil.which("wget") is None else None)
    if any(links):
        problem = problem or link_missing()
    if problem:
        raise SystemExit(problem)
    lftp = not args.no_lftp and shutil.which("lftp") is not None
    work = Path(tempfile.mkdtemp(prefix="dicomguard-bench-ftp-"))
    try:
        t0 = time.perf_counter()
        dicom = build_tree(work / "root", args.files, args.patients, args.rows, args.cols)
        served = tree_bytes(work / "root")
        print(f"tree: {dicom} DICOM files of {args.rows}x{args.cols}x16 bit "
              f"({served / dicom / 1024:.0f} KiB each), {args.patients} patients, "
              f"{served / 2**30:.2f} GiB served, built in {time.perf_counter() - t0:.0f} s",
              flush=True)
        for mbit in links:
            if not mbit:
                print("\nlink: loopback", flush=True)
                report(measure(None, work, samples, args.files, lftp))
                continue
            try:
                with shaped_link(mbit) as link:
                    print(f"\nlink: {link.describe()}; bulk TCP measured "
                          f"{measure_mbit(link):.1f} Mbit/s", flush=True)
                    results = measure(link, work, samples, args.files, lftp)
            except LinkError as exc:
                raise SystemExit(f"shaped link: {exc}") from exc
            report(results)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
