"""Realistic-mix benchmark: the built-in lab (real Orthanc, dcmtk, pynetdicom, garbage, bogus-AC
and tarpit ports, a closed port) scanned by nmap's dicom-ping and by dicomguard, one run.

    .venv/bin/python bench/bench_dicom_mix.py

Both tools get the same addresses and the same port list (every port the lab uses). Prints wall
time, what each tool reports as DICOM against the lab's ground truth (missed services, false
positives), and the speed ratio. dicomguard runs its default safe probe at default timeouts.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from dicomguard.engine.scan import ScanConfig, scan_batch  # noqa: E402
from dicomguard.lab import LabManifest, start_lab, stop_lab  # noqa: E402
from dicomguard.probes.dicom import DicomProbeConfig  # noqa: E402
from dicomguard.scope import build_scope  # noqa: E402

BASE = "127.0.0.140"


def truth(manifest: LabManifest) -> set[tuple[str, int]]:
    return {(s.address, s.port) for s in manifest.services if s.protocol == "dicom"}


def run_nmap(addresses: list[str], ports: list[int]) -> tuple[float, set[tuple[str, int]]]:
    exe = shutil.which("nmap")
    if exe is None:
        raise SystemExit("nmap is not installed (apt-get install nmap)")
    start = time.perf_counter()
    out = subprocess.run([exe, "-n", "-Pn", "-sT", "-p", ",".join(map(str, ports)),
                          "--script", "dicom-ping", "-oX", "-", *addresses],
                         capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - start
    found: set[tuple[str, int]] = set()
    root = ET.fromstring(out.stdout)
    for host in root.iter("host"):
        addr = host.find("address")
        if addr is None:
            continue
        for port in host.iter("port"):
            script = port.find("script[@id='dicom-ping']")
            if script is not None and re.search(r"DICOM|dicom", script.get("output", "")):
                found.add((addr.get("addr", ""), int(port.get("portid", "0"))))
    return elapsed, found


def run_dicomguard(addresses: list[str], ports: list[int]) -> tuple[float, set[tuple[str, int]],
                                                                     int]:
    scope = build_scope(addresses)
    cfg = ScanConfig(ports=tuple(ports), dicom=DicomProbeConfig())  # default safe probe
    start = time.perf_counter()
    results = scan_batch(scope.targets(), cfg, guard=scope)
    elapsed = time.perf_counter() - start
    found = {(r.endpoint.address, r.endpoint.port) for r in results
             if r.service is not None and r.service.facts.get("dicom")}
    failed = sum(1 for r in results for f in r.findings if f.status.value == "fail")
    return elapsed, found, failed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        manifest = start_lab(Path(tmp), base_address=BASE)
        try:
            addresses = sorted({s.address for s in manifest.services})
            ports = sorted({s.port for s in manifest.services})
            real = truth(manifest)
            print(f"lab: {len(addresses)} addresses x ports {ports}; {len(real)} DICOM services; "
                  f"hostile: random bytes, bogus A-ASSOCIATE-AC, tarpit; one closed port")
            nm_time, nm_found = run_nmap(addresses, ports)
            dg_time, dg_found, failed = run_dicomguard(addresses, ports)
        finally:
            stop_lab(Path(tmp))
    for name, secs, found in (("nmap --script dicom-ping", nm_time, nm_found),
                              ("dicomguard scan (default safe probe)", dg_time, dg_found)):
        missed = sorted(real - found)
        false = sorted(found - real)
        print(f"{name:40} {secs:7.2f} s  DICOM found {len(found & real)}/{len(real)}"
              f"  missed {missed or '-'}  false positives {false or '-'}")
    print(f"dicomguard failed findings: {failed}")
    print(f"ratio: dicomguard {nm_time / dg_time:.1f}x faster than nmap dicom-ping (goal >= 5x)")


if __name__ == "__main__":
    main()
