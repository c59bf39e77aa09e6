"""The lab answers as its manifest says: real associations, real queries, real bytes.

The exact answers recorded here (reject result/source/reason, implementation class UID and
version name in the A-ASSOCIATE-AC, Orthanc's A-ABORT on a refused C-FIND) are the
fingerprints and behaviours the scanner's tables rely on; a product upgrade that changes them
shows up here first.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from rawul import STUDY_ROOT_FIND, VERIFICATION, associate

from dicomguard.lab import (
    KNOWN_CALLING_AE,
    LabError,
    LabManifest,
    ServiceSpec,
    lab_status,
    start_lab,
    stop_lab,
)
from dicomguard.lab.synthetic import generate, identifying_values, source_files

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
DCMTK_367_UID = "1.2.276.0.7230010.3.0.3.6.7"
DCMTK_367_NAME = "OFFIS_DCMTK_367"

Product = Callable[[str], ServiceSpec]


def _ae(calling: str = "DGUARDTEST") -> AE:
    ae = AE(ae_title=calling)
    ae.add_requested_context(VERIFICATION)
    ae.add_requested_context(STUDY_ROOT_FIND)
    ae.add_requested_context(PATIENT_ROOT_FIND)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 5
    ae.connection_timeout = 3
    return ae


def find_count(
    svc: ServiceSpec, *, level: str = "STUDY", called: str | None = None,
    calling: str = "DGUARDTEST",
) -> tuple[int, list[int | None], set[str]]:
    """C-FIND at `level`; (matches, statuses, PatientIDs). Statuses hold None when the
    association was aborted instead of answered."""
    assoc = _ae(calling).associate(svc.address, svc.port, ae_title=called or svc.ae_title or "")
    assert assoc.is_established, f"{svc.name}: association not established"
    query = Dataset()
    query.QueryRetrieveLevel = level
    query.PatientID = ""
    if level != "PATIENT":
        query.StudyInstanceUID = ""
    matches = 0
    statuses: list[int | None] = []
    ids: set[str] = set()
    model = PATIENT_ROOT_FIND if level == "PATIENT" else STUDY_ROOT_FIND
    for status, identifier in assoc.send_c_find(query, model):
        statuses.append(int(status.Status) if status else None)
        if status and status.Status in (0xFF00, 0xFF01) and identifier is not None:
            matches += 1
            ids.add(str(identifier.PatientID))
    if assoc.is_established:
        assoc.release()
    return matches, statuses, ids


def _http(url: str, auth: tuple[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if auth:
        request.add_header(
            "Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --- manifest ----------------------------------------------------------------------------------


def test_manifest_describes_every_service(lab: LabManifest, lab_state_dir: Path) -> None:
    names = [s.name for s in lab.services]
    assert names == [
        "orthanc-open", "orthanc-locked", "dcmqrscp-open", "dcmqrscp-restricted", "storescp",
        "echo-scp", "hostile-random", "hostile-bogus-ac", "hostile-tarpit", "closed",
    ]
    addresses = [s.address for s in lab.services]
    assert len(set(addresses)) == len(addresses)
    assert all(a.startswith("127.") for a in addresses)
    assert len(lab.patients) == 6 and lab.studies == 9
    assert LabManifest.load(lab_state_dir) == lab
    for svc in lab.services:
        if svc.stands_in_for is None and svc.product == "Orthanc":
            assert svc.version == svc.expected_version == "1.10.1"
        if svc.stands_in_for is None and svc.product == "dcmtk":
            assert svc.version == svc.expected_version == "3.6.7"
        if svc.allows_find:
            assert (svc.patients, svc.studies, svc.series, svc.instances) == (6, 9, 11, 24)


def test_status_reports_every_service_up(lab: LabManifest, lab_state_dir: Path) -> None:
    status = lab_status(lab_state_dir)
    assert [s.name for s in status] == [s.name for s in lab.services]
    assert all(s.ok for s in status), [s for s in status if not s.ok]
    closed = next(s for s in status if s.name == "closed")
    assert not closed.answering and closed.pid is None


def _listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of the IPv4/IPv6 TCP sockets pid listens on (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] != "0A" or cols[9] not in inodes:  # 0A: LISTEN
                continue
            hex_addr, hex_port = cols[1].split(":")
            if len(hex_addr) == 8:
                address = socket.inet_ntoa(bytes.fromhex(hex_addr)[::-1])
            else:
                address = "ipv6:" + hex_addr
            found.add((address, int(hex_port, 16)))
    return found


def test_every_listener_binds_its_loopback_address_only(lab: LabManifest) -> None:
    for svc in lab.services:
        if svc.pid is None or svc.product == "hostile":
            continue
        assert _listening(svc.pid) == {(svc.address, p) for p in svc.ports}, svc.name
    hostile = {s.pid for s in lab.services if s.product == "hostile" and s.pid}
    assert len(hostile) == 1
    assert _listening(hostile.pop()) == {
        (s.address, s.port) for s in lab.services if s.product == "hostile" and s.pid
    }


def assert_fingerprints(manifest: LabManifest) -> None:
    """Every DICOM service answers with the AC identifiers and rejects its manifest records."""
    for svc in manifest.services:
        if svc.protocol != "dicom":
            continue
        accepted = associate(*svc.endpoint, called=svc.ae_title or "",
                             calling=KNOWN_CALLING_AE)
        assert accepted.kind == "accept", svc.name
        assert svc.implementation_class_uid is not None, svc.name
        assert accepted.implementation_class_uid == svc.implementation_class_uid, svc.name
        assert accepted.implementation_version_name == svc.implementation_version_name
        if svc.reject_wrong_called_ae is not None:
            answer = associate(*svc.endpoint, called="WRONG-AET", calling=KNOWN_CALLING_AE,
                               linger=0.3)
            assert (answer.result, answer.source, answer.reason) == svc.reject_wrong_called_ae
            assert answer.closed_after is not svc.holds_connection_after_reject, svc.name
        else:
            assert associate(*svc.endpoint, called="WRONG-AET").kind == "accept", svc.name
        if svc.reject_unknown_calling_ae is not None:
            answer = associate(*svc.endpoint, called=svc.ae_title or "", calling="STRANGER")
            assert (answer.result, answer.source, answer.reason) == svc.reject_unknown_calling_ae


def test_fingerprints_match_the_manifest(lab: LabManifest) -> None:
    assert_fingerprints(lab)


# --- Orthanc -------------------------------------------------------------------------------


def test_open_orthanc_answers_find_with_the_synthetic_patients(lab: LabManifest,
                                                                lab_service: Product) -> None:
    svc = lab_service("orthanc-open")
    expected_ids = {p.patient_id for p in lab.patients}
    matches, statuses, ids = find_count(svc, level="STUDY")
    assert matches == 9 and statuses[-1] == 0x0000 and ids == expected_ids
    # any called AE title is accepted
    matches, _, _ = find_count(svc, level="STUDY", called="NOT-ORTHANC")
    assert matches == 9


def test_open_orthanc_rest_is_unauthenticated(require_product: Product) -> None:
    svc = require_product("orthanc-open")
    status, body = _http(f"http://{svc.address}:{svc.rest_port}/patients")
    assert status == 200 and len(json.loads(body)) == 6
    status, body = _http(f"http://{svc.address}:{svc.rest_port}/system")
    assert json.loads(body)["Version"] == "1.10.1"
    if svc.dicomweb_path:
        status, body = _http(f"http://{svc.address}:{svc.rest_port}{svc.dicomweb_path}studies")
        assert status == 200 and len(json.loads(body)) == 9


def test_orthanc_accept_fingerprint(require_product: Product) -> None:
    for name in ("orthanc-open", "orthanc-locked"):
        svc = require_product(name)
        answer = associate(svc.address, svc.port, called=svc.ae_title or "")
        assert answer.kind == "accept"
        # Debian's Orthanc 1.10.1 is built on the system dcmtk 3.6.7: its AC carries dcmtk's
        # identifiers, exactly as dcmqrscp does.
        assert answer.implementation_class_uid == DCMTK_367_UID
        assert answer.implementation_version_name == DCMTK_367_NAME


def test_locked_orthanc_rejects_a_wrong_called_ae_and_holds_the_connection(
    require_product: Product,
) -> None:
    svc = require_product("orthanc-locked")
    answer = associate(svc.address, svc.port, called="WRONG-AET", linger=0.5)
    # rejected-permanent, service-user, called-AE-title-not-recognized
    assert (answer.kind, answer.result, answer.source, answer.reason) == ("reject", 1, 1, 7)
    assert answer.raw == bytes.fromhex("03000000000400010107")
    assert answer.closed_after is False  # Orthanc 1.10.1 waits for the client to close
    assert associate(svc.address, svc.port, called=svc.ae_title or "").kind == "accept"


def test_locked_orthanc_refuses_find_from_an_unknown_ae(lab_service: Product) -> None:
    svc = lab_service("orthanc-locked")
    assert not svc.allows_find and not svc.accepts_any_called_ae
    if svc.stands_in_for is None:
        # Orthanc associates an unknown calling AE (echo allowed) and answers its C-FIND
        # with an A-ABORT.
        matches, statuses, _ = find_count(svc)
        assert matches == 0 and statuses == [None]
    else:
        assert associate(svc.address, svc.port, called=svc.ae_title or "").kind == "reject"
    matches, statuses, _ = find_count(svc, calling=KNOWN_CALLING_AE)
    assert matches == 9 and statuses[-1] == 0x0000


def test_locked_orthanc_rest_requires_credentials(require_product: Product) -> None:
    svc = require_product("orthanc-locked")
    assert svc.rest_auth_required and svc.rest_username and svc.rest_password
    url = f"http://{svc.address}:{svc.rest_port}/patients"
    assert _http(url)[0] == 401
    assert _http(url, ("orthanc", "orthanc"))[0] == 401
    status, body = _http(url, (svc.rest_username, svc.rest_password))
    assert status == 200 and len(json.loads(body)) == 6


# --- dcmtk ---------------------------------------------------------------------------------


def test_dcmqrscp_open_answers_find(lab: LabManifest, lab_service: Product) -> None:
    svc = lab_service("dcmqrscp-open")
    matches, statuses, ids = find_count(svc, level="STUDY")
    assert matches == 9 and statuses[-1] == 0x0000
    assert ids == {p.patient_id for p in lab.patients}


def test_dcmqrscp_open_checks_the_called_ae(require_product: Product) -> None:
    svc = require_product("dcmqrscp-open")
    assert not svc.accepts_any_called_ae
    answer = associate(svc.address, svc.port, called="WRONG-AET", linger=0.5)
    assert (answer.kind, answer.result, answer.source, answer.reason) == ("reject", 1, 1, 7)
    assert answer.closed_after is True  # dcmtk closes after its A-ASSOCIATE-RJ
    accepted = associate(svc.address, svc.port, called=svc.ae_title or "")
    assert accepted.implementation_class_uid == DCMTK_367_UID
    assert accepted.implementation_version_name == DCMTK_367_NAME


def test_dcmqrscp_restricted_rejects_an_unknown_calling_ae(lab_service: Product) -> None:
    svc = lab_service("dcmqrscp-restricted")
    assert not svc.accepts_any_calling_ae
    answer = associate(svc.address, svc.port, called=svc.ae_title or "", calling="STRANGER")
    assert answer.kind == "reject" and answer.result == 1 and answer.source == 1
    if svc.stands_in_for is None:
        # dcmqrscp 3.6.7 gives reason 7 (called AE not recognised) for an unlisted calling AE
        # too: it cannot be told apart from a wrong called AE by the reject alone.
        assert answer.reason == 7
    matches, _, _ = find_count(svc, calling=KNOWN_CALLING_AE)
    assert matches == 9


def test_storescp_accepts_echo_and_store_but_no_query(lab: LabManifest,
                                                      lab_service: Product) -> None:
    svc = lab_service("storescp")
    answer = associate(svc.address, svc.port, called="ANY-TITLE",
                       abstract_syntaxes=(VERIFICATION, STUDY_ROOT_FIND))
    assert answer.kind == "accept"
    assert answer.accepted_contexts == {1: 0, 3: 3}  # FIND: abstract syntax not supported
    ae = AE(ae_title="DGUARDTEST")
    ae.add_requested_context(CT_IMAGE_STORAGE)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 5
    ae.connection_timeout = 3
    assoc = ae.associate(svc.address, svc.port, ae_title="ANY-TITLE")
    assert assoc.is_established
    ct = next(p for p in Path(lab.data_dir).rglob("*.dcm")
              if pydicom.dcmread(p, stop_before_pixels=True).Modality == "CT")
    status = assoc.send_c_store(pydicom.dcmread(ct))
    assoc.release()
    assert status and status.Status == 0x0000


# --- pynetdicom and hostile -----------------------------------------------------------------


def test_echo_scp_answers_verification_only(lab_service: Product) -> None:
    svc = lab_service("echo-scp")
    assert svc.port not in (104, 11112, 4242)
    answer = associate(svc.address, svc.port, called="WHATEVER",
                       abstract_syntaxes=(VERIFICATION, STUDY_ROOT_FIND))
    assert answer.kind == "accept" and answer.accepted_contexts == {1: 0, 3: 3}
    assert (answer.implementation_version_name or "").startswith("PYNETDICOM_")
    assoc = _ae().associate(svc.address, svc.port, ae_title="WHATEVER")
    assert assoc.is_established
    status = assoc.send_c_echo()
    assoc.release()
    assert status and status.Status == 0x0000


def test_hostile_ports(lab_service: Product) -> None:
    random_bytes = associate(*lab_service("hostile-random").endpoint, called="X")
    assert random_bytes.kind == "garbage" and not 0x01 <= random_bytes.raw[0] <= 0x07
    bogus = associate(*lab_service("hostile-bogus-ac").endpoint, called="X")
    assert bogus.kind == "garbage" and bogus.raw[0] == 0x02
    tarpit = associate(*lab_service("hostile-tarpit").endpoint, called="X", timeout=1.0)
    assert tarpit.kind == "timeout"
    closed = lab_service("closed")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(closed.endpoint, timeout=2).close()


# --- synthetic data --------------------------------------------------------------------------


def test_synthetic_data_share_no_identifier_with_the_originals(lab: LabManifest) -> None:
    synthetic_files = sorted(Path(lab.data_dir).rglob("*.dcm"))
    assert len(synthetic_files) == 24
    leaked = identifying_values(synthetic_files) & identifying_values(source_files())
    assert not leaked
    for path in synthetic_files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert ds.InstitutionName == "Dicomguard Lab Hospital"
        assert str(ds.PatientID).startswith("LAB")
        assert all(str(ds[k].value).startswith("2.25.") for k in
                   ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"))
        private = [e for e in ds if e.tag.is_private and not e.tag.is_private_creator]
        assert all("LAB" in str(e.value) for e in private)
        assert {e.tag.group for e in ds if e.tag.is_private} <= {0x0009}
    modalities = {m for p in lab.patients for m in p.modalities}
    assert modalities == {"CT", "MR", "US", "CR"}


def test_synthetic_data_are_deterministic(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", seed=7)
    second = generate(tmp_path / "b", seed=7)
    other = generate(tmp_path / "c", seed=8)
    assert first.patients == second.patients
    assert [p.read_bytes() for p in first.files] == [p.read_bytes() for p in second.files]
    assert first.patients != other.patients
    assert (first.studies, first.series, first.instances) == (9, 11, 24)


# --- life cycle ------------------------------------------------------------------------------


def test_refuses_non_loopback_and_second_start(lab: LabManifest, lab_state_dir: Path,
                                               tmp_path: Path) -> None:
    with pytest.raises(LabError, match="loopback"):
        start_lab(tmp_path / "x", base_address="192.0.2.10")
    with pytest.raises(LabError, match="already running"):
        start_lab(lab_state_dir, base_address=lab.base_address)
    with pytest.raises(LabError, match="in use"):
        start_lab(tmp_path / "y", base_address=lab.base_address)
    assert not list((tmp_path / "y" / "pids").glob("*.pid"))


def test_stand_in_lab_starts_and_stops_cleanly(tmp_path: Path) -> None:
    state = tmp_path / "standin"
    manifest = start_lab(state, base_address="127.0.0.120", use_products=False)
    try:
        assert {s.product for s in manifest.services} == {"pynetdicom", "hostile"}
        assert dict(manifest.skipped).keys() == {
            "orthanc-open", "orthanc-locked", "dcmqrscp-open", "dcmqrscp-restricted", "storescp"
        }
        open_pacs = manifest.service("orthanc-open")
        assert open_pacs.stands_in_for == "Orthanc"
        assert find_count(open_pacs, called="ANYTHING")[0] == 9
        assert find_count(open_pacs, level="PATIENT")[0] == 6
        restricted = manifest.service("dcmqrscp-restricted")
        assert associate(*restricted.endpoint, called=restricted.ae_title or "",
                         calling="STRANGER").kind == "reject"
        assert all(s.ok for s in lab_status(state))
        assert_fingerprints(manifest)
        pids = {s.pid for s in manifest.services if s.pid}
    finally:
        stop_lab(state)
    assert all(not Path(f"/proc/{pid}").exists() for pid in pids)
    assert not any(s.running or s.answering for s in lab_status(state))
    stop_lab(state)  # idempotent
    stop_lab(tmp_path / "never-started")


def test_missing_products_fail_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(LabError, match="CI=true") as excinfo:
        start_lab(tmp_path / "ci", base_address="127.0.0.130")
    assert "Orthanc not found" in str(excinfo.value)
    assert not list((tmp_path / "ci").glob("pids/*.pid"))
