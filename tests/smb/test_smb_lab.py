"""The SMB probe and checks against real Samba servers on loopback (see conftest.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from dicomguard.checks import (
    smb_001_guest_share_dicom,
    smb_002_guest_access,
    smb_003_smb1_enabled,
    smb_004_signing_not_required,
)
from dicomguard.checks.base import Outcome
from dicomguard.lab.smb import SmbLab, start_smb, stop_smb
from dicomguard.models import Endpoint, Severity, Status
from dicomguard.net import smb as smbnet
from dicomguard.net.connector import Connector
from dicomguard.probes.share_walk import ShareLimits
from dicomguard.probes.smb import SmbConfig, SmbFacts, probe

from .conftest import NETBIOS_PORT, SMB_BASE, SMB_PORT

CHECKS = (smb_001_guest_share_dicom, smb_002_guest_access, smb_003_smb1_enabled,
          smb_004_signing_not_required)


def run(lab: SmbLab, port: int | None = None, **cfg: object) -> SmbFacts:
    config = SmbConfig(netbios_ports=frozenset({NETBIOS_PORT}), **cfg)  # type: ignore[arg-type]
    endpoint = Endpoint(lab.address, port or lab.port, "smb")
    return asyncio.run(probe(endpoint, Connector(None, per_host=1), config))


def outcomes(facts: SmbFacts) -> dict[str, Outcome]:
    return {check.META.id: check.evaluate(facts) for check in CHECKS}


def failed(results: dict[str, Outcome]) -> dict[str, Severity]:
    return {cid: (o.severity or next(c.META.severity for c in CHECKS if c.META.id == cid))
            for cid, o in results.items() if o.status is Status.FAIL}


def test_open_server_exact_findings(smb_open: SmbLab) -> None:
    facts = run(smb_open)
    assert facts.error is None and facts.speaks_smb and facts.errors == ()
    assert facts.smb1_enabled and facts.smb1_dialect == "NT LM 0.12"
    assert facts.smb2 and facts.smb2_dialect == "3.1.1"
    assert facts.smb2_signing_required is False
    results = outcomes(facts)
    assert failed(results) == {"SMB-001": Severity.CRITICAL, "SMB-002": Severity.MEDIUM,
                               "SMB-003": Severity.HIGH, "SMB-004": Severity.MEDIUM}
    ev = results["SMB-001"].evidence
    data = smb_open.guest_data
    assert [s["share"] for s in ev["shares"]] == [smb_open.guest_share]
    assert ev["dicom_files"] == data.instances == 24
    assert ev["patients"] == len(data.patients) == 6
    assert ev["studies"] == data.studies == 9
    assert sum(ev["modalities"].values()) == data.instances
    share = ev["shares"][0]
    assert share["identifiable"] and share["top_folders"] == [
        {"folder": "/Radiology/2024/…", "patients": 6}]
    assert share["files_sampled"] == data.instances + smb_open.non_dicom_files
    assert set(results["SMB-002"].evidence["readable_shares"]) == {"null", "guest"}
    assert results["SMB-003"].evidence["dialect"] == "NT LM 0.12"


def test_user_only_share_is_not_exposed(smb_open: SmbLab) -> None:
    facts = run(smb_open)
    user_share = next(s for s in facts.shares if s.name == smb_open.user_share)
    assert user_share.readable_by == () and user_share.walk is None
    text = repr(outcomes(facts))
    assert smb_open.user_share not in text
    # ... and it is not empty: the lab user reads DICOM files there
    client = smbnet.NullClient(smb_open.address, smb_open.port, 5.0, smb_open.user,
                               smb_open.password)
    try:
        assert client.login().accepted
        entries = client.list_dir(smb_open.user_share, "/Cardiology")
        assert len(entries) == len(smb_open.user_data.patients)
    finally:
        client.close()


def test_no_patient_values_in_facts_or_evidence(smb_open: SmbLab) -> None:
    facts = run(smb_open)
    text = repr(facts) + repr(outcomes(facts))
    for patient in smb_open.guest_data.patients:
        assert patient.patient_id not in text
        for part in patient.patient_name.split("^"):
            assert part not in text
    shown = run(smb_open, limits=ShareLimits(show_phi=True))
    assert smb_open.guest_data.patients[0].patient_id in repr(shown.shares)


def test_sampling_reads_at_most_sample_bytes(smb_open: SmbLab) -> None:
    sample = 2048
    assert smb_open.largest_file > 10 * sample
    facts = run(smb_open, limits=ShareLimits(sample_bytes=sample))
    walk = next(s.walk for s in facts.shares if s.walk)
    assert walk is not None
    assert walk["dicom_files"] == smb_open.guest_data.instances
    assert 0 < walk["max_read_bytes"] <= sample
    assert walk["bytes_read"] <= walk["files_sampled"] * sample
    assert facts.totals["bytes_read"] == walk["bytes_read"]


def test_limits_are_reported(smb_open: SmbLab) -> None:
    facts = run(smb_open, limits=ShareLimits(max_files=5))
    assert facts.totals["files_sampled"] == 5
    assert "max_files" in facts.totals["limits_reached"]
    ev = smb_001_guest_share_dicom.evaluate(facts).evidence
    assert "max_files" in ev["limits_reached"]


def test_netbios_session_service(smb_open: SmbLab) -> None:
    facts = run(smb_open, port=NETBIOS_PORT)
    assert facts.transport == "netbios" and facts.speaks_smb
    assert facts.smb1_enabled and facts.smb2
    assert not facts.sessions_assessed
    results = outcomes(facts)
    assert results["SMB-001"].status is Status.UNKNOWN
    assert results["SMB-002"].status is Status.UNKNOWN
    assert results["SMB-003"].status is Status.FAIL
    assert results["SMB-004"].status is Status.FAIL


def test_strict_server_smb1_off_signing_mandatory(smb_strict: SmbLab) -> None:
    facts = run(smb_strict)
    assert facts.error is None
    assert facts.smb1_enabled is False and facts.smb2_signing_required is True
    guest = facts.session("guest")
    assert guest is not None and guest.accepted and not guest.usable  # cannot sign
    results = outcomes(facts)
    # anonymous sessions are never signed, yet Samba still serves the guest share to them
    assert failed(results) == {"SMB-001": Severity.CRITICAL, "SMB-002": Severity.MEDIUM}
    assert results["SMB-002"].evidence["readable_shares"] == {"null": [smb_strict.guest_share]}
    assert results["SMB-001"].evidence["patients"] == len(smb_strict.guest_data.patients)
    assert results["SMB-003"].status is Status.PASS
    assert results["SMB-004"].status is Status.PASS


def test_server_without_guest_access_yields_no_finding(tmp_path: Path) -> None:
    address = str(SMB_BASE + 2)
    lab = start_smb(tmp_path / "locked", address=address, port=SMB_PORT, guest=False)
    try:
        facts = run(lab)
        named = run(lab, extra_shares=(lab.guest_share, lab.user_share))
    finally:
        stop_smb(tmp_path / "locked")
    assert facts.error is None and not facts.shares_enumerated
    assert failed(outcomes(facts)) == {"SMB-004": Severity.MEDIUM}
    assert outcomes(facts)["SMB-001"].status is Status.UNKNOWN  # share names not learned
    assert all(s.readable_by == () for s in named.shares)
    results = outcomes(named)
    assert results["SMB-001"].status is Status.PASS
    assert results["SMB-002"].status is Status.PASS
    assert failed(results) == {"SMB-004": Severity.MEDIUM}


def test_stop_leaves_nothing_running(tmp_path: Path) -> None:
    lab = start_smb(tmp_path / "s", address=str(SMB_BASE + 3), port=SMB_PORT)
    run(lab)
    stop_smb(tmp_path / "s")
    time.sleep(0.2)
    conf = str(lab.conf)
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            assert conf not in cmd or state == "Z", cmd
