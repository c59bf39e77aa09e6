"""Conversions shared by the store and the JSON report: JSON values, the raw-PHI guard, counts."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dicomguard.models import (
    Endpoint,
    Finding,
    Service,
    Severity,
    Status,
    exit_code_for,
    worst_severity,
)
from dicomguard.store import RawPHIError
from dicomguard.store.codec import (
    Counts,
    check_no_raw_phi,
    check_scan_phi,
    jsonable,
    names_raw_phi,
)


@pytest.mark.parametrize("key", [
    "PatientName", "patient_name", "patient_names", "PatientID", "patient-ids", "OtherPatientNames",
    "PatientBirthDate", "birth_dates", "DOB", "phi_sample", "AccessionNumber", "patients",
    "ReferringPhysicianName",
])
def test_keys_that_name_raw_phi(key: str) -> None:
    assert names_raw_phi(key)


@pytest.mark.parametrize("key", [
    "patient_hashes", "patients_count", "studies", "phi_attributes", "phi_attribute_counts",
    "PatientSex", "StudyDescription", "names", "calling_ae", "InstitutionName",
])
def test_keys_that_do_not(key: str) -> None:
    assert not names_raw_phi(key)


def test_text_under_a_phi_key_is_refused_at_any_depth() -> None:
    check_no_raw_phi({"patients": 6, "PatientName": 14, "patient_hashes": ["ab12"],
                      "phi_attribute_counts": {"PatientName": 3, "PatientID": None},
                      "flags": {"patient": True}}, where="ok")
    for bad in ({"PatientName": "DOE^JOHN"},
                {"patients": ["DOE^JOHN"]},
                {"records": [{"study": 1}, {"PatientID": "12345"}]},
                {"nested": {"deeper": {"patient_names": {"first": "JOHN"}}}},
                {"phi_sample": [b"DOE"]}):
        with pytest.raises(RawPHIError) as info:
            check_no_raw_phi(bad, where="evidence of X")
        assert "evidence of X" in str(info.value)
        assert "DOE" not in str(info.value) and "JOHN" not in str(info.value)


def test_scan_check_honours_show_phi() -> None:
    ep = Endpoint("127.0.0.1", 104)
    services = [Service(ep, facts={"PatientID": "12345"})]
    with pytest.raises(RawPHIError, match=re.escape("facts of dicom://127.0.0.1:104")):
        check_scan_phi(services, [], {"show_phi": False})
    with pytest.raises(RawPHIError):
        check_scan_phi(services, [], {"show_phi": "yes"})     # only a real true counts
    check_scan_phi(services, [], {"show_phi": True})


def test_jsonable() -> None:
    when = datetime(2026, 11, 28, 19, 0, tzinfo=UTC)
    assert jsonable({"a": (1, 2), "b": {3, 1}, "c": Status.FAIL, "d": when, 5: None}) == \
        {"a": [1, 2], "b": [1, 3], "c": "fail", "d": "2026-11-28T19:00:00+00:00", "5": None}
    assert jsonable(Severity.HIGH) == 3
    with pytest.raises(ValueError, match="nan"):
        jsonable({"x": math.nan}, where="stats")
    with pytest.raises(TypeError, match=re.escape("stats.x: bytes")):
        jsonable({"x": b"raw"}, where="stats")
    with pytest.raises(TypeError, match="key"):
        jsonable({(1, 2): 1})
    with pytest.raises(TypeError, match="object"):
        jsonable(object())


findings = st.lists(st.builds(
    Finding, check_id=st.just("DICOM-001"), title=st.just("t"),
    endpoint=st.just(Endpoint("127.0.0.1", 104)), status=st.sampled_from(Status),
    severity=st.sampled_from(Severity)), max_size=12)


@given(findings)
def test_counts_agree_with_the_models(items: list[Finding]) -> None:
    counts = Counts.of(items)
    assert counts.exit_code == exit_code_for(items)
    assert counts.worst_severity == worst_severity(items)
    assert counts.total == len(items)
    assert sum(counts.by_severity.values()) == counts.by_status["fail"]
    assert list(counts.by_status) == ["pass", "fail", "unknown", "error"]
    assert list(counts.by_severity) == ["info", "low", "medium", "high", "critical"]
