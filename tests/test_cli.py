"""The command line end to end: scan, JSON report, database history, exit codes, lab and demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from pynetdicom import AE

from dicomguard.report.json_report import load_schema

VERIFICATION = "1.2.840.10008.1.1"


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "dicomguard", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.fixture()
def echo_scp() -> Iterator[int]:
    ae = AE(ae_title="CLITEST")
    ae.add_supported_context(VERIFICATION)
    server = ae.start_server(("127.0.0.41", 0), block=False)
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def test_scan_json_db_show(tmp_path: Path, echo_scp: int) -> None:
    db = tmp_path / "history.sqlite"
    report = tmp_path / "report.json"
    proc = run_cli("scan", f"127.0.0.41:{echo_scp}", "--no-progress", "--db", str(db),
                   "--json", str(report), "--no-tls")
    assert proc.returncode == 3, proc.stderr  # worst failed: high (any AE accepted)
    doc = json.loads(report.read_text())
    jsonschema.validate(doc, load_schema())
    assert doc["schema"] == "dicomguard.scan/1"
    failed = {f["check_id"] for f in doc["findings"] if f["status"] == "fail"}
    assert failed == {"DICOM-001", "DICOM-002", "DICOM-005", "DICOM-010"}
    assert [s["product"] for s in doc["services"]] == ["pynetdicom"]
    listing = run_cli("scans", "--db", str(db))
    assert doc["scan"]["id"] in listing.stdout
    shown = run_cli("show", doc["scan"]["id"][:12], "--db", str(db), "--json",
                    str(tmp_path / "again.json"))
    assert shown.returncode == 3
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["findings"] == doc["findings"]


def test_nothing_found_exits_zero(tmp_path: Path) -> None:
    proc = run_cli("scan", "127.0.0.42:1", "--no-progress", "--db", "none")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("args", [
    ["scan"],
    ["scan", "10.0.0.0/8"],                       # larger than 65,536 addresses
    ["scan", "not a target!"],
    ["scan", "127.0.0.1", "--aet", "THIS-AE-TITLE-IS-FAR-TOO-LONG"],
    ["scan", "127.0.0.1", "--per-host", "0"],
])
def test_usage_errors_exit_64_without_a_packet(args: list[str]) -> None:
    proc = run_cli(*args, "--db", "none")
    assert proc.returncode == 64, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr


def test_checks_catalogue() -> None:
    proc = run_cli("checks")
    assert proc.returncode == 0
    for cid in ("DICOM-001", "DICOM-003", "DICOM-009"):
        assert cid in proc.stdout


@pytest.mark.servers
def test_demo_end_to_end(tmp_path: Path) -> None:
    report = tmp_path / "demo.json"
    proc = run_cli("demo", "--state-dir", str(tmp_path / "lab"), "--base-address",
                   "127.0.0.160", "--json", str(report), "--db", "none", timeout=240)
    assert proc.returncode == 4, proc.stderr   # critical: C-FIND discloses patients
    doc = json.loads(report.read_text())
    jsonschema.validate(doc, load_schema())
    critical = [f for f in doc["findings"] if f["check_id"] == "DICOM-003"
                and f["status"] == "fail"]
    assert len(critical) == 2 and all(f["evidence"]["patients"] == 6 for f in critical)
    failed = {f["check_id"] for f in doc["findings"] if f["status"] == "fail"}
    # every way the demo hospital leaks is found (NFS only where its machine-wide lab could run)
    assert {"FTP-001", "SMB-001", "HTTP-001", "HTTP-003", "HTTP-004"} <= failed
    protocols = {s["endpoint"]["protocol"] for s in doc["services"]}
    assert {"dicom", "ftp", "smb", "http", "https", "unknown"} <= protocols
    assert "JSON report" in proc.stderr
    status = run_cli("lab", "status", "--state-dir", str(tmp_path / "lab"))
    assert "yes" not in status.stdout  # the demo stopped its lab


@pytest.mark.servers
def test_lab_up_status_down(tmp_path: Path) -> None:
    state = str(tmp_path / "lab")
    up = run_cli("lab", "up", "--state-dir", state, "--base-address", "127.0.0.180")
    try:
        assert up.returncode == 0, up.stderr
        status = run_cli("lab", "status", "--state-dir", state)
        assert status.stdout.count("yes") >= 15
    finally:
        down = run_cli("lab", "down", "--state-dir", state)
    assert down.returncode == 0
