"""Every DICOM check from facts alone, no sockets."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dicomguard import checks
from dicomguard.checks.base import Check, CheckMeta, validate_registry
from dicomguard.models import Endpoint, Severity, Status
from dicomguard.probes import sop_catalogue
from dicomguard.probes.facts import (
    AssocAttempt,
    DicomFacts,
    FindFacts,
    IntrusiveFacts,
    TlsFacts,
)

EP = Endpoint("127.0.0.1", 104)
RANDOM_AE = "DG0123456789ABCD"


def run(check_id: str, facts: DicomFacts):  # type: ignore[no-untyped-def]
    return checks.by_id(check_id).evaluate(facts)


def open_server(**kw: object) -> DicomFacts:
    base = DicomFacts(
        endpoint=EP, is_dicom=True,
        wildcard=AssocAttempt(RANDOM_AE, "DGCALLING", True),
        accepted_called_ae=RANDOM_AE, random_calling_accepted=True, echo_status=0,
        implementation_class_uid="1.2.276.0.7230010.3.0.3.6.7",
        implementation_version_name="OFFIS_DCMTK_367", product="dcmtk", version="3.6.7",
        accepted_sop_classes=(sop_catalogue.VERIFICATION, sop_catalogue.STUDY_ROOT_FIND),
        find=FindFacts(levels=("STUDY",), studies=9, patients=6, records=9,
                       attributes_returned=("PatientID", "PatientName")),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def rejected(source: int, reason: int) -> AssocAttempt:
    return AssocAttempt(RANDOM_AE, "DGCALLING", False, 1, source, reason, "rejected")


def test_registry_ids_unique_and_valid() -> None:
    ids = [c.meta.id for c in checks.CHECKS]
    assert len(ids) == len(set(ids))
    assert ids == sorted(ids)
    for check in checks.CHECKS:
        assert check.meta.id.split("-")[0].lower() == check.meta.protocol


def test_registry_refuses_duplicates_and_empty_texts() -> None:
    meta = checks.CHECKS[0].meta
    with pytest.raises(ValueError, match="duplicate"):
        validate_registry((checks.CHECKS[0], checks.CHECKS[0]))
    bad = Check(CheckMeta("DICOM-999", "dicom", Severity.LOW, "t", "r", " ", ("x",)),
                checks.CHECKS[0].evaluate)
    with pytest.raises(ValueError, match="remediation"):
        validate_registry((bad,))
    with pytest.raises(ValueError, match="does not match"):
        validate_registry((Check(replace(meta, id="dicom-1"), checks.CHECKS[0].evaluate),))


def test_open_server_fails_the_access_checks() -> None:
    facts = open_server()
    assert run("DICOM-001", facts).status is Status.FAIL
    assert run("DICOM-002", facts).status is Status.FAIL
    out = run("DICOM-003", facts)
    assert out.status is Status.FAIL
    assert out.evidence["patients"] == 6 and out.evidence["studies"] == 9
    assert run("DICOM-004", facts).status is Status.FAIL
    assert run("DICOM-010", facts).status is Status.FAIL


def test_called_ae_checked_but_calling_ae_not() -> None:
    facts = open_server(wildcard=rejected(1, 7), accepted_called_ae="PACS",
                        known_ae_attempts=(AssocAttempt("PACS", "DGCALLING", True),))
    assert run("DICOM-001", facts).status is Status.PASS
    assert run("DICOM-002", facts).status is Status.FAIL


def test_locked_server_without_known_aet() -> None:
    facts = DicomFacts(endpoint=EP, is_dicom=True, wildcard=rejected(1, 7))
    assert run("DICOM-001", facts).status is Status.PASS
    out = run("DICOM-002", facts)
    assert out.status is Status.UNKNOWN and "--aet" in out.evidence["hint"]
    assert run("DICOM-003", facts).status is Status.PASS
    assert run("DICOM-004", facts).status is Status.PASS


def test_calling_ae_refused() -> None:
    facts = DicomFacts(endpoint=EP, is_dicom=True, wildcard=rejected(1, 3),
                       random_calling_accepted=False)
    assert run("DICOM-001", facts).status is Status.UNKNOWN
    assert run("DICOM-002", facts).status is Status.PASS


def test_probe_error_is_never_a_pass() -> None:
    facts = DicomFacts(endpoint=EP, wildcard=AssocAttempt(RANDOM_AE, "X", False,
                                                          error="read timed out"))
    assert run("DICOM-001", facts).status is Status.UNKNOWN
    assert run("DICOM-002", facts).status is Status.UNKNOWN
    find_error = open_server(find=FindFacts(levels=("STUDY",), error="peer aborted"))
    assert run("DICOM-003", find_error).status is Status.ERROR


def test_cfind_empty_archive_passes_003_but_004_still_fails() -> None:
    facts = open_server(find=FindFacts(levels=("STUDY",), records=0, status=0))
    assert run("DICOM-003", facts).status is Status.PASS
    assert run("DICOM-004", facts).status is Status.FAIL


def test_verification_only_server() -> None:
    facts = open_server(accepted_sop_classes=(sop_catalogue.VERIFICATION,), find=None)
    assert run("DICOM-003", facts).status is Status.PASS
    assert run("DICOM-004", facts).status is Status.PASS
    assert run("DICOM-001", facts).status is Status.FAIL


def test_tls() -> None:
    assert run("DICOM-005", open_server()).status is Status.FAIL
    tls = TlsFacts(port=2762, handshake=True, protocol="TLSv1.3")
    assert run("DICOM-005", open_server(tls=tls)).status is Status.PASS
    alt = run("DICOM-005", open_server(tls_alt=tls))
    assert alt.status is Status.FAIL and alt.evidence["tls_port_handshake"] is True


def test_vulnerable_versions() -> None:
    out = run("DICOM-006", open_server(product="Orthanc", version="1.10.1"))
    assert out.status is Status.FAIL
    assert [c["cve"] for c in out.evidence["cves"]] == ["CVE-2023-33466"]
    assert out.severity is Severity.HIGH
    assert run("DICOM-006", open_server(product="Orthanc", version="1.12.3")).status \
        is Status.PASS
    old = run("DICOM-006", open_server(product="dcmtk", version="3.6.6"))
    assert {"CVE-2022-2119", "CVE-2022-2120", "CVE-2022-2121"} <= {
        c["cve"] for c in old.evidence["cves"]}
    assert run("DICOM-006", open_server(product=None)).status is Status.UNKNOWN
    assert run("DICOM-006", open_server(version=None)).status is Status.UNKNOWN


def test_intrusive_checks() -> None:
    facts = open_server()
    for cid in ("DICOM-007", "DICOM-008", "DICOM-009"):
        assert run(cid, facts).status is Status.UNKNOWN  # not enabled
    refused = open_server(intrusive=IntrusiveFacts(store_status=0xA700, move_status=0xA801,
                                                   get_status=0xC000, get_instances=0))
    assert run("DICOM-007", refused).status is Status.PASS
    assert run("DICOM-008", refused).status is Status.PASS
    assert run("DICOM-009", refused).status is Status.PASS
    accepted = open_server(intrusive=IntrusiveFacts(store_status=0, move_status=0xFF00,
                                                    get_status=0, get_instances=1))
    assert run("DICOM-007", accepted).status is Status.FAIL
    assert run("DICOM-008", accepted).status is Status.FAIL
    out = run("DICOM-009", accepted)
    assert out.status is Status.FAIL and out.evidence["kept"] is False
    warn = open_server(intrusive=IntrusiveFacts(store_status=0xB000))
    assert run("DICOM-007", warn).status is Status.FAIL
    err = open_server(intrusive=IntrusiveFacts(store_error="connection reset"))
    assert run("DICOM-007", err).status is Status.ERROR
    aborted = open_server(intrusive=IntrusiveFacts(store_refused="A-ABORT", move_refused="x",
                                                   get_refused="y"))
    for cid in ("DICOM-007", "DICOM-008", "DICOM-009"):
        assert run(cid, aborted).status is Status.PASS
    skipped = open_server(intrusive=IntrusiveFacts(skipped="no association"))
    for cid in ("DICOM-007", "DICOM-008", "DICOM-009"):
        assert run(cid, skipped).status is Status.PASS


def test_every_check_handles_non_dicom_and_bare_facts() -> None:
    for check in checks.for_protocol("dicom"):
        out = check.evaluate(DicomFacts(endpoint=EP))
        assert out.status is not Status.FAIL, check.meta.id


def test_evidence_never_carries_phi_sample_unless_present() -> None:
    out = run("DICOM-003", open_server())
    assert "phi_sample" not in out.evidence
    shown = run("DICOM-003", open_server(find=FindFacts(records=1, phi_sample=("A / B",))))
    assert shown.evidence["phi_sample"] == ["A / B"]
