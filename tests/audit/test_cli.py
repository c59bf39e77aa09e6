"""The `audit` command: output without values, --show-phi, JSON against its schema, exit codes,
Ctrl-C on a big tree."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pydicom
import typer
from typer.testing import CliRunner

from dicomguard.audit.command import register
from dicomguard.report.audit_json import load_audit_schema

from .conftest import CT_SMALL, PATIENTS, build_tree

app = typer.Typer()


@app.callback()
def _root() -> None:
    """test app"""


register(app)
runner = CliRunner(env={"COLUMNS": "250"})

# every planted value, and CT_small's own
SECRETS = [p for _, name, pid in PATIENTS for p in (*name.split("^"), pid)] + [
    "CompressedSamples", "JFK IMAGING", "20040119", "2004-01-19", "ABCD1234", "CT01_OC0"]


def _no_secrets(text: str) -> None:
    for value in SECRETS:
        assert value not in text, value


def test_default_output_and_json_hold_no_values(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    res = runner.invoke(app, ["audit", str(tree), "--json", str(out), "--no-progress"])
    assert res.exit_code == 4, res.output
    assert "PatientName" in res.output
    _no_secrets(res.output)
    text = out.read_text()
    _no_secrets(text)
    doc = json.loads(text)
    jsonschema.validate(doc, load_audit_schema())
    assert doc["schema"] == "dicomguard.audit/1"
    assert doc["files"]["dicom"] == 9
    assert doc["patients"] == 4
    assert doc["study_dates"]["precision"] == "month"
    assert "names" not in doc["institutions"]


def test_single_file_shows_values_only_with_show_phi(tmp_path: Path) -> None:
    res = runner.invoke(app, ["audit", str(CT_SMALL), "--no-progress",
                              "--json", str(tmp_path / "a.json")])
    assert res.exit_code == 4
    assert "OtherPatientIDsSequence[1].PatientID" in res.output
    _no_secrets(res.output)
    _no_secrets((tmp_path / "a.json").read_text())
    res = runner.invoke(app, ["audit", str(CT_SMALL), "--no-progress", "--show-phi",
                              "--json", str(tmp_path / "b.json")])
    assert res.exit_code == 4
    assert "CompressedSamples^CT1" in res.output
    assert "ABCD1234" in res.output
    doc = json.loads((tmp_path / "b.json").read_text())
    jsonschema.validate(doc, load_audit_schema())
    assert doc["show_phi"] is True
    assert doc["study_dates"]["min"] == "2004-01-19"
    assert {"keyword": "PatientName", "value": "CompressedSamples^CT1"}.items() <= next(
        h for h in doc["hits"] if h["path"] == "PatientName").items()


def test_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello")
    assert runner.invoke(app, ["audit", str(tmp_path), "--no-progress"]).exit_code == 0
    assert runner.invoke(app, ["audit", str(tmp_path / "nope")]).exit_code == 64
    ds = pydicom.dcmread(CT_SMALL)
    for keyword in ("PatientName", "PatientID", "OtherPatientIDsSequence", "ImageComments"):
        delattr(ds, keyword)
    ds.remove_private_tags()
    ds.StudyID = "1"
    ds.save_as(tmp_path / "uids_dates.dcm", enforce_file_format=True)
    res = runner.invoke(app, ["audit", str(tmp_path / "uids_dates.dcm"), "--no-progress"])
    assert res.exit_code == 2, res.output        # UIDs, dates, institution: medium


def test_jobs_two_gives_the_same_json(tree: Path, tmp_path: Path) -> None:
    docs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"r{jobs}.json"
        res = runner.invoke(app, ["audit", str(tree), "--jobs", jobs, "--no-progress",
                                  "--json", str(out)])
        assert res.exit_code == 4
        doc = json.loads(out.read_text())
        for key in ("started_at", "elapsed_seconds", "options"):
            doc.pop(key)
        docs.append(doc)
    assert docs[0] == docs[1]


_SCRIPT = """
import sys, typer
from dicomguard.audit.command import register
app = typer.Typer()
@app.callback()
def root() -> None: pass
register(app)
if __name__ == "__main__":
    app()
"""


def _wait_until_walking(pid: int, root: Path, timeout: float = 60.0) -> None:
    """Wait until the process has a folder under ``root`` open (the walk has started), so the
    signal does not land while Python is still importing."""
    deadline = time.monotonic() + timeout
    fd_dir = Path(f"/proc/{pid}/fd")
    while time.monotonic() < deadline:
        try:
            targets = [os.readlink(fd) for fd in fd_dir.iterdir()]
        except OSError:
            targets = []
        if any(t.startswith(str(root)) for t in targets):
            return
        time.sleep(0.05)
    raise AssertionError("the audit did not start walking")


def test_ctrl_c_prints_partial_summary(tmp_path: Path) -> None:
    big = tmp_path / "big"
    build_tree(big, copies=2)
    src = big / PATIENTS[0][0] / "img0.bin"
    for i in range(40000):  # far more than a second's work, however fast the audit gets
        d = big / "bulk" / f"{i // 100:03d}"
        d.mkdir(parents=True, exist_ok=True)
        os.link(src, d / f"f{i}.bin")
    script = tmp_path / "cli.py"
    script.write_text(_SCRIPT)
    for jobs in ("1", "2"):
        proc = subprocess.Popen(
            [sys.executable, str(script), "audit", str(big), "--jobs", jobs, "--no-progress",
             "--json", str(tmp_path / f"int{jobs}.json")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        _wait_until_walking(proc.pid, big)
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)   # what a terminal's Ctrl-C does: the whole group
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Interrupted" in out
        assert "Files seen" in out
        doc = json.loads((tmp_path / f"int{jobs}.json").read_text())
        assert doc["interrupted"] is True
        assert doc["files"]["seen"] < 40000 + 12
        if jobs == "1":  # workers start slowly; their first chunks may not be merged yet
            assert doc["files"]["seen"] > 0
