"""The scan store on SQLite and on a real PostgreSQL server (fixtures in conftest.py)."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pgserver import free_port
from sqlalchemy import create_engine, text

from dicomguard.models import (
    Endpoint,
    Finding,
    ScanResult,
    Severity,
    Status,
    exit_code_for,
    worst_severity,
)
from dicomguard.store import (
    AmbiguousScanId,
    RawPHIError,
    ScanNotFound,
    Store,
    StoreError,
    default_db_path,
)
from dicomguard.store.schema import SCHEMA_VERSION


def _with_id(result: ScanResult, scan_id: str, started_at: str | None = None) -> ScanResult:
    return dataclasses.replace(result, scan_id=scan_id,
                               started_at=started_at or result.started_at)


def test_save_and_load_round_trip(store: Store, sample: ScanResult) -> None:
    store.save_scan(sample)
    assert store.load_scan(sample.scan_id) == sample


def test_load_by_unique_prefix(store: Store, sample: ScanResult) -> None:
    store.save_scan(_with_id(sample, "abc123"))
    store.save_scan(_with_id(sample, "abd456"))
    assert store.load_scan("abc").scan_id == "abc123"
    with pytest.raises(AmbiguousScanId) as info:
        store.load_scan("ab")
    assert info.value.candidates == ["abc123", "abd456"]
    with pytest.raises(ScanNotFound):
        store.load_scan("zz")
    with pytest.raises(ScanNotFound):
        store.load_scan("")
    # LIKE wildcards in the prefix are taken literally
    with pytest.raises(ScanNotFound):
        store.load_scan("a%")
    with pytest.raises(ScanNotFound):
        store.load_scan("a_c")


def test_list_scans_summaries(store: Store, sample: ScanResult) -> None:
    older = _with_id(sample, "older", "2026-11-01T08:00:00+00:00")
    empty = dataclasses.replace(_with_id(sample, "empty", "2026-11-02T08:00:00+00:00"),
                                services=(), findings=())
    store.save_scan(older)
    store.save_scan(empty)
    store.save_scan(sample)
    summaries = store.list_scans()
    assert [s.scan_id for s in summaries] == [sample.scan_id, "empty", "older"]
    assert [s.scan_id for s in store.list_scans(limit=2)] == [sample.scan_id, "empty"]

    top = summaries[0]
    assert top.started_at == sample.started_at
    assert top.finished_at == sample.finished_at
    assert top.targets == sample.targets
    assert top.state == "finished"
    assert top.services == len(sample.services)
    findings = list(sample.findings)
    assert top.counts.total == len(findings)
    assert dict(top.counts.by_status) == {
        st.value: sum(f.status is st for f in findings) for st in Status}
    assert dict(top.counts.by_severity) == {
        sev.label(): sum(f.status is Status.FAIL and f.severity is sev for f in findings)
        for sev in Severity}
    assert top.counts.worst_severity == worst_severity(findings) == Severity.CRITICAL
    assert top.counts.exit_code == exit_code_for(findings) == 4

    assert summaries[1].services == 0
    assert summaries[1].counts.total == 0
    assert summaries[1].counts.worst_severity is None
    assert summaries[1].counts.exit_code == 0


def test_incremental_save_keeps_an_interrupted_scan(db_url: str, sample: ScanResult) -> None:
    half = len(sample.findings) // 2
    with Store(db_url) as store:
        store.begin_scan(sample.scan_id, started_at=sample.started_at, targets=sample.targets,
                         options=sample.options)
        store.add_services(sample.scan_id, sample.services)
        store.add_findings(sample.scan_id, sample.findings[:1])
        store.add_findings(sample.scan_id, sample.findings[1:half])
        (running,) = store.list_scans()
        assert running.state == "unfinished"
        assert running.finished_at is None
        assert running.counts.total == half
        # Ctrl-C: the engine marks the scan interrupted
        store.finish_scan(sample.scan_id, interrupted=True,
                          finished_at="2026-11-28T19:00:10+00:00", stats={"open": 4})
    with Store(db_url) as store:                         # a later process sees it
        (summary,) = store.list_scans()
        assert summary.interrupted
        assert summary.state == "interrupted"
        assert summary.finished_at == "2026-11-28T19:00:10+00:00"
        loaded = store.load_scan(sample.scan_id)
    assert loaded == dataclasses.replace(
        sample, findings=sample.findings[:half], interrupted=True,
        finished_at="2026-11-28T19:00:10+00:00", stats={"open": 4})


def test_findings_committed_before_a_crash_survive(db_url: str, sample: ScanResult,
                                                   tmp_path: Path) -> None:
    """Each add_findings commits: a process killed outright keeps what it had added."""
    sample_path = Path(__file__).parent.parent / "report" / "data" / "sample-scan.json"
    script = textwrap.dedent("""
        import json, sys, time
        from dicomguard.report.json_report import from_json
        from dicomguard.store import Store
        result = from_json(json.load(open(sys.argv[2])))
        store = Store(sys.argv[1])
        store.begin_scan(result.scan_id, started_at=result.started_at,
                         targets=result.targets, options=result.options)
        store.add_findings(result.scan_id, result.findings[:3])
        print("added", flush=True)
        time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", script, db_url, str(sample_path)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "added"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
    with Store(db_url) as store:
        (summary,) = store.list_scans()
        assert summary.state == "unfinished"
        assert store.load_scan(sample.scan_id).findings == sample.findings[:3]
        store.finish_scan(sample.scan_id, interrupted=True)
        assert store.list_scans()[0].state == "interrupted"


def test_misuse_is_refused(store: Store, sample: ScanResult) -> None:
    store.save_scan(sample)
    with pytest.raises(StoreError, match="already stored"):
        store.save_scan(sample)
    with pytest.raises(StoreError, match="already stored"):
        store.begin_scan(sample.scan_id)
    with pytest.raises(StoreError, match="already finished"):
        store.add_findings(sample.scan_id, sample.findings[:1])
    with pytest.raises(ScanNotFound):
        store.add_findings("nope", sample.findings[:1])
    with pytest.raises(ScanNotFound):
        store.finish_scan("nope")
    with pytest.raises(StoreError, match="scan id"):
        store.begin_scan("x" * 65)
    assert store.load_scan(sample.scan_id) == sample


PHI = Finding("DICOM-003", "C-FIND discloses patient records", Endpoint("127.0.0.1", 4242),
              Status.FAIL, Severity.CRITICAL, {"patients": 1, "phi_sample": ["DOE^JANE"]})


def test_raw_phi_is_refused_without_show_phi(store: Store, sample: ScanResult) -> None:
    leaky = dataclasses.replace(sample, findings=(*sample.findings, PHI))
    with pytest.raises(RawPHIError, match="phi_sample"):
        store.save_scan(leaky)
    assert store.list_scans() == []                      # nothing half-written

    store.begin_scan("incremental", options={"show_phi": False})
    store.add_findings("incremental", sample.findings[:2])
    with pytest.raises(RawPHIError):
        store.add_findings("incremental", [PHI])
    assert len(store.load_scan("incremental").findings) == 2


def test_raw_phi_is_stored_when_the_user_asked(store: Store, sample: ScanResult) -> None:
    options = {**sample.options, "show_phi": True}
    asked = dataclasses.replace(sample, options=options, findings=(PHI,))
    store.save_scan(asked)
    assert store.load_scan(sample.scan_id).findings == (PHI,)


def test_evidence_is_stored_as_json(store: Store, sample: ScanResult) -> None:
    finding = dataclasses.replace(
        sample.findings[0],
        evidence={"levels": ("PATIENT", "STUDY"), "ports": {104, 11112}, "severity": Severity.LOW,
                  "nested": {"a": [1, 2.5, None, True]}})
    store.save_scan(dataclasses.replace(sample, findings=(finding,)))
    (loaded,) = store.load_scan(sample.scan_id).findings
    assert loaded.evidence == {"levels": ["PATIENT", "STUDY"], "ports": [104, 11112],
                               "severity": 1, "nested": {"a": [1, 2.5, None, True]}}
    with pytest.raises(TypeError, match="bytes"):
        store.save_scan(dataclasses.replace(
            sample, scan_id="raw", findings=(dataclasses.replace(finding, evidence={"b": b"x"}),)))


def test_schema_version_is_recorded_and_checked(db_url: str) -> None:
    with Store(db_url) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.list_scans() == []
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE meta SET value = :v WHERE key = 'schema_version'"),
                         {"v": str(SCHEMA_VERSION + 1)})
    finally:
        engine.dispose()
    with Store(db_url) as store, pytest.raises(StoreError, match="newer"):
        store.list_scans()


def test_tables_and_indexes(db_url: str) -> None:
    from sqlalchemy import inspect
    with Store(db_url) as store:
        store.list_scans()
    engine = create_engine(db_url)
    try:
        inspector = inspect(engine)
        assert {"meta", "scans", "services", "findings"} <= set(inspector.get_table_names())
        indexed = {tuple(ix["column_names"]) for ix in inspector.get_indexes("findings")}
        assert {("scan_id",), ("check_id",), ("address", "port")} <= indexed
        indexed = {tuple(ix["column_names"]) for ix in inspector.get_indexes("services")}
        assert {("scan_id",), ("address", "port")} <= indexed
    finally:
        engine.dispose()


def test_default_url_is_a_sqlite_file_in_the_user_data_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample: ScanResult) -> None:
    data_dir = tmp_path / "data" / "dicomguard"
    monkeypatch.setattr("dicomguard.store.db.platformdirs.user_data_dir",
                        lambda *args, **kwargs: str(data_dir))
    assert default_db_path() == data_dir / "dicomguard.sqlite3"
    with Store() as store:
        assert store.dialect == "sqlite"
        store.save_scan(sample)
    assert (data_dir / "dicomguard.sqlite3").is_file()
    with Store(str(tmp_path / "elsewhere" / "scans.db")) as store:   # a plain path
        store.save_scan(sample)
    assert (tmp_path / "elsewhere" / "scans.db").is_file()


def test_unreachable_database_is_a_store_error_without_the_password() -> None:
    url = f"postgresql+psycopg2://scanner:s3cret@127.0.0.1:{free_port()}/scans"
    store = Store(url)
    try:
        assert "s3cret" not in store.url
        with pytest.raises(StoreError) as info:
            store.list_scans()
        assert "s3cret" not in str(info.value)
        assert "127.0.0.1" in str(info.value)
    finally:
        store.close()


def test_not_a_url_is_a_store_error() -> None:
    with pytest.raises(StoreError):
        Store("nosuchdialect://x/y")
