"""The FTP probe against real servers: vsftpd with anonymous access to synthetic DICOM files,
pyftpdlib requiring a password. Exactly the expected findings and counts on each."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from dicomguard.checks import (
    ftp_001_anonymous_dicom,
    ftp_002_anonymous_login,
    ftp_003_no_tls,
    ftp_004_anonymous_writable,
    ftp_005_vulnerable_version,
)
from dicomguard.lab.ftp import read_xferlog
from dicomguard.lab.synthetic import identifying_values
from dicomguard.models import Endpoint, Severity, Status
from dicomguard.net.connector import Connector
from dicomguard.net.ftp import SAMPLE_RCVBUF, ftp_session
from dicomguard.probes.ftp import WRITE_TEST_PREFIX, FtpConfig, FtpFacts, probe
from dicomguard.probes.share_walk import ShareLimits

from .conftest import FtpLab

SAMPLE = 4096


def run_probe(server_address: str, port: int, cfg: FtpConfig, per_host: int = 2) -> FtpFacts:
    return asyncio.run(probe(Endpoint(server_address, port, "ftp"),
                             Connector(None, rate=0, per_host=per_host), cfg))


def outcomes(facts: FtpFacts) -> dict[str, tuple[Status, Severity | None]]:
    out = {}
    for check in (ftp_001_anonymous_dicom, ftp_002_anonymous_login, ftp_003_no_tls,
                  ftp_004_anonymous_writable):
        result = check.evaluate(facts)
        out[check.META.id] = (result.status, result.severity)
    return out


def test_anonymous_vsftpd_exact_findings(ftp_lab: FtpLab) -> None:
    srv, tree = ftp_lab.anonymous, ftp_lab.tree
    facts = run_probe(srv.address, srv.port, FtpConfig(limits=ShareLimits(sample_bytes=SAMPLE)))
    assert facts.error is None and facts.is_ftp
    assert (facts.product, facts.version) == ("vsftpd", "3.0.3") or facts.product == "vsftpd"
    assert facts.anonymous_user == "anonymous" and facts.listing_method == "LIST"
    assert outcomes(facts) == {
        "FTP-001": (Status.FAIL, Severity.CRITICAL),
        "FTP-002": (Status.FAIL, None),
        "FTP-003": (Status.FAIL, None),
        "FTP-004": (Status.FAIL, None),
    }
    walk = facts.walk
    assert walk is not None
    assert walk["dicom_files"] == tree.dicom_files
    assert walk["patients"] == tree.patients and walk["studies"] == tree.studies
    assert walk["modalities"] == tree.modalities
    assert walk["files_sampled"] == tree.dicom_files + tree.non_dicom    # tiny file never read
    assert walk["limits_reached"] == [] and walk["errors"] == {}
    assert set(walk["identifying_attributes"]) >= {"PatientName", "PatientID"}
    assert facts.writable_dirs == tree.writable_dirs and facts.writable_examples == ("/upload",)
    ev = ftp_001_anonymous_dicom.evaluate(facts).evidence
    assert ev["dicom_files"] == tree.dicom_files and ev["patients"] == tree.patients
    assert {f["folder"] for f in ev["top_folders"]} <= {f"/PACS/{y}/…"
                                                        for y in range(2019, 2025)}
    assert ftp_004_anonymous_writable.evaluate(facts).evidence["source"] == "listing permissions"
    # no patient value anywhere in the facts
    values = identifying_values([tree.root / p.lstrip("/") for p in tree.files])
    text = repr(facts)
    assert not [v for v in values if len(v) > 3 and v in text]


def test_sampling_reads_no_more_than_sample_bytes(ftp_lab: FtpLab) -> None:
    """Counted by the kernel (tcp_info bytes_received on each data socket): what reached this
    host, read by us or not. vsftpd's xferlog counts what it handed to its own socket buffer
    (sendfile), so it shows whole files even for aborted transfers: it tells which files were
    opened, not how much crossed the wire."""
    srv, tree = ftp_lab.anonymous, ftp_lab.tree
    assert srv.xferlog is not None
    before = len(read_xferlog(srv.xferlog))

    async def run() -> tuple[int, int, int]:
        conn = Connector(None, rate=0, per_host=2)
        async with ftp_session(conn, srv.address, srv.port) as client:
            await client.banner()
            await client.login("anonymous", "x@y")
            await client.binary()
            sizes = [len(await client.retr_prefix(p, SAMPLE)) for p in tree.files]
            assert all(n == SAMPLE for n in sizes)             # every file is larger
            return client.wire_by_command["RETR"], client.bytes_received, len(sizes)

    wire, kept, n = asyncio.run(run())
    assert kept == n * SAMPLE
    # the receive window (SO_RCVBUF, doubled by the kernel) bounds what the server can push
    # beyond the sample before the reset
    assert wire <= n * (SAMPLE + 2 * SAMPLE_RCVBUF)
    assert wire < tree.dicom_files * tree.largest / 4
    opened = [entry[0] for entry in read_xferlog(srv.xferlog)[before:]]
    assert sorted(opened) == sorted(tree.files)


def test_intrusive_write_test_stores_and_deletes(ftp_lab: FtpLab) -> None:
    srv, tree = ftp_lab.anonymous, ftp_lab.tree
    facts = run_probe(srv.address, srv.port, FtpConfig(intrusive=True, limits=ShareLimits(
        sample_bytes=SAMPLE)))
    test = facts.write_test
    assert test is not None and test.stored and test.deleted and test.directory == "/upload"
    result = ftp_004_anonymous_writable.evaluate(facts)
    assert result.status is Status.FAIL and result.evidence["source"] == "write test"
    assert not list((tree.root / "upload").iterdir())                  # nothing left behind
    assert srv.xferlog is not None
    stored = [p for p, _, _ in read_xferlog(srv.xferlog) if WRITE_TEST_PREFIX in p]
    assert len(stored) == 1 and stored[0].startswith("/upload/")


def test_show_phi_gives_full_folders(ftp_lab: FtpLab) -> None:
    srv = ftp_lab.anonymous
    facts = run_probe(srv.address, srv.port, FtpConfig(show_phi=True, limits=ShareLimits(
        sample_bytes=SAMPLE, path_levels=1)))
    assert facts.walk is not None
    folders = {f["folder"] for f in facts.walk["top_folders"]}
    assert all(f.count("/") == 3 for f in folders)          # /PACS/<year>/<patient>_<study>
    assert any("LAB0001_" in f for f in folders)
    short = run_probe(srv.address, srv.port, FtpConfig(limits=ShareLimits(
        sample_bytes=SAMPLE, path_levels=1)))
    assert short.walk is not None
    assert {f["folder"] for f in short.walk["top_folders"]} == {"/PACS/…"}


def test_limits_are_reported(ftp_lab: FtpLab) -> None:
    srv = ftp_lab.anonymous
    facts = run_probe(srv.address, srv.port, FtpConfig(limits=ShareLimits(
        sample_bytes=SAMPLE, max_files=5, max_depth=2)))
    assert facts.walk is not None
    assert facts.walk["files_sampled"] == 5 or "max_depth" in facts.walk["limits_reached"]
    assert set(facts.walk["limits_reached"]) >= {"max_depth"}
    ev = ftp_001_anonymous_dicom.evaluate(facts).evidence
    assert "max_depth" in ev["limits_reached"]


def test_per_host_cap_of_one_logs_in_but_does_not_walk(ftp_lab: FtpLab) -> None:
    srv = ftp_lab.anonymous
    facts = run_probe(srv.address, srv.port, FtpConfig(), per_host=1)
    assert facts.anonymous is True and facts.walk is None
    assert facts.walk_error and "per-host cap" in facts.walk_error
    assert ftp_001_anonymous_dicom.evaluate(facts).status is Status.UNKNOWN
    assert ftp_002_anonymous_login.evaluate(facts).status is Status.FAIL


def test_concurrent_sessions_share_the_cap_without_deadlock(ftp_lab: FtpLab) -> None:
    srv = ftp_lab.anonymous
    cfg = FtpConfig(timeout=5.0, limits=ShareLimits(sample_bytes=SAMPLE))

    async def run() -> list[FtpFacts]:
        conn = Connector(None, rate=0, per_host=3)            # room for one session at a time
        ep = Endpoint(srv.address, srv.port, "ftp")
        return await asyncio.wait_for(
            asyncio.gather(*(probe(ep, conn, cfg) for _ in range(3))), 60)

    results = asyncio.run(run())
    assert all(f.walk and f.walk["dicom_files"] == ftp_lab.tree.dicom_files for f in results)


def test_password_server_yields_no_exposure(ftp_lab: FtpLab) -> None:
    srv = ftp_lab.password
    facts = run_probe(srv.address, srv.port, FtpConfig(intrusive=True))
    assert facts.is_ftp and facts.product == "pyftpdlib"
    assert facts.anonymous is False and [a.user for a in facts.logins] == ["anonymous", "ftp"]
    assert facts.walk is None and facts.write_test is None and facts.bytes_read == 0
    assert outcomes(facts) == {
        "FTP-001": (Status.PASS, None),
        "FTP-002": (Status.PASS, None),
        "FTP-003": (Status.FAIL, None),        # pyftpdlib without TLS: still plain FTP
        "FTP-004": (Status.PASS, None),
    }
    assert ftp_005_vulnerable_version.evaluate(facts).status in (Status.PASS, Status.FAIL)


def test_mlsd_walk_with_the_password(ftp_lab: FtpLab) -> None:
    """The MLSD path against a real server (pyftpdlib has MLSD, vsftpd only LIST)."""
    srv, tree = ftp_lab.password, ftp_lab.tree
    assert srv.user and srv.password
    cfg = replace(FtpConfig(limits=ShareLimits(sample_bytes=SAMPLE)),
                  users=(srv.user,), password=srv.password)
    facts = run_probe(srv.address, srv.port, cfg)
    assert facts.listing_method == "MLSD" and facts.walk is not None
    assert facts.walk["dicom_files"] == tree.dicom_files
    assert facts.walk["patients"] == tree.patients
    assert facts.writable_dirs == 0            # perm=el for this user: nothing writable
