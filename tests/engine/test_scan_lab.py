"""Scan the built-in lab (real Orthanc 1.10, dcmtk dcmqrscp/storescp, a pynetdicom SCP and hostile
ports) and compare with the expected findings in tests/engine/expected/.

Each service yields exactly the expected findings and no others; C-FIND counts equal what the lab
loaded; the fingerprint names Orthanc and dcmtk with the versions the binaries report; hostile
ports are never DICOM; the closed port yields nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dicomguard.engine.scan import EndpointResult, ScanConfig, scan_batch
from dicomguard.lab import LabManifest, ServiceSpec, start_lab, stop_lab
from dicomguard.probes.dicom import DicomProbeConfig
from dicomguard.scope import build_scope

EXPECTED = Path(__file__).parent / "expected"
REAL_PRODUCTS = ("orthanc-open", "orthanc-locked", "dcmqrscp-open", "dcmqrscp-restricted",
                 "storescp")


def run_lab_scan(manifest: LabManifest, *, intrusive: bool) -> dict[str, EndpointResult]:
    scope = build_scope([f"{s.address}:{s.port}" for s in manifest.services])
    aets = tuple(s.ae_title for s in manifest.services if s.ae_title)
    cfg = ScanConfig(ports=(), rate=0, connect_timeout=2.0, dicom=DicomProbeConfig(
        read_timeout=2.0, known_aets=aets, intrusive=intrusive))
    results = scan_batch(scope.targets(), cfg, guard=scope)
    names = {(s.address, s.port): s.name for s in manifest.services}
    return {names[(r.endpoint.address, r.endpoint.port)]: r for r in results}


def check_against(expected_file: str, manifest: LabManifest,
                  results: dict[str, EndpointResult]) -> None:
    expected = json.loads((EXPECTED / expected_file).read_text())["services"]
    assert set(expected) == {s.name for s in manifest.services}
    for name, statuses in expected.items():
        if statuses is None:
            assert name not in results, f"{name} should yield nothing"
            continue
        got = {f.check_id: f.status.value for f in results[name].findings}
        assert got == statuses, f"{name}: {got} != {statuses}"


@pytest.fixture(scope="module")
def safe_scan(lab: LabManifest, require_product: Callable[[str], ServiceSpec]
              ) -> dict[str, EndpointResult]:
    for name in REAL_PRODUCTS:
        require_product(name)
    return run_lab_scan(lab, intrusive=False)


@pytest.mark.servers
def test_safe_scan_yields_exactly_the_expected_findings(
        lab: LabManifest, safe_scan: dict[str, EndpointResult]) -> None:
    check_against("lab-safe.json", lab, safe_scan)


@pytest.mark.servers
def test_cfind_counts_match_the_lab(lab: LabManifest,
                                    safe_scan: dict[str, EndpointResult]) -> None:
    for name in ("orthanc-open", "dcmqrscp-open"):
        svc = lab.service(name)
        [finding] = [f for f in safe_scan[name].findings if f.check_id == "DICOM-003"]
        assert finding.evidence["patients"] == svc.patients == 6
        assert finding.evidence["studies"] == svc.studies == 9
        assert {"PatientName", "PatientID"} <= set(finding.evidence["attributes_returned"])


@pytest.mark.servers
def test_fingerprints(lab: LabManifest, safe_scan: dict[str, EndpointResult]) -> None:
    open_orthanc = safe_scan["orthanc-open"].service
    assert open_orthanc is not None
    assert open_orthanc.product == "Orthanc"
    assert open_orthanc.version == lab.service("orthanc-open").version
    assert open_orthanc.version is not None and open_orthanc.version.startswith("1.10.")
    assert open_orthanc.facts["built_on"].startswith("dcmtk")
    locked = safe_scan["orthanc-locked"].service
    assert locked is not None and locked.product == "Orthanc" and locked.version is None
    for name in ("dcmqrscp-open", "storescp"):
        svc = safe_scan[name].service
        assert svc is not None
        assert (svc.product, svc.version) == ("dcmtk", lab.service(name).version)
        assert svc.facts["fingerprint_verified"] is True
    echo = safe_scan["echo-scp"].service
    assert echo is not None and echo.product == "pynetdicom"


@pytest.mark.servers
def test_no_patient_value_in_results(lab: LabManifest,
                                     safe_scan: dict[str, EndpointResult]) -> None:
    text = json.dumps([[r.service.facts if r.service else None,
                        [dict(f.evidence) for f in r.findings]] for r in safe_scan.values()])
    for patient in lab.patients:
        assert patient.patient_id not in text
        assert patient.patient_name not in text
        assert patient.patient_name.replace("^", " ") not in text
        for uid in patient.study_instance_uids:
            assert uid not in text


@pytest.fixture(scope="module")
def intrusive_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabManifest]:
    """A lab of its own: the intrusive scan stores a test instance into it."""
    state = tmp_path_factory.mktemp("intrusive-lab")
    base = os.environ.get("DICOMGUARD_TEST_INTRUSIVE_LAB_BASE", "127.0.0.120")
    manifest = start_lab(state, base_address=base)
    try:
        yield manifest
    finally:
        stop_lab(state)


@pytest.mark.servers
def test_intrusive_scan_yields_exactly_the_expected_findings(
        intrusive_lab: LabManifest, require_product: Callable[[str], ServiceSpec]) -> None:
    for name in REAL_PRODUCTS:
        require_product(name)
    results = run_lab_scan(intrusive_lab, intrusive=True)
    check_against("lab-intrusive.json", intrusive_lab, results)
    for name in ("orthanc-open", "dcmqrscp-open"):
        [get] = [f for f in results[name].findings if f.check_id == "DICOM-009"]
        assert get.intrusive and get.evidence["instances_received"] == 1
    [move] = [f for f in results["dcmqrscp-open"].findings if f.check_id == "DICOM-008"]
    assert move.evidence["status"] == "0xA801"
