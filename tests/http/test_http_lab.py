"""The HTTP probe and checks against real servers: the lab's Orthancs (open with DICOMweb,
locked), an Orthanc taking orthanc/orthanc, nginx with autoindex over DICOM files, nginx with a
plain page, nginx over TLS. Each yields exactly the expected failures with the right counts."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from httpcheck_helpers import evaluate, failures, no_values, run_probe

from dicomguard import vulns
from dicomguard.lab import LabManifest, ServiceSpec
from dicomguard.lab.web import CERT_SUBJECT_CN, AccessRecord, WebLab, read_access_log
from dicomguard.models import Severity, Status
from dicomguard.probes.http import HttpConfig
from dicomguard.probes.share_walk import ShareLimits

pytestmark = pytest.mark.servers


def settled_log(path: str, before: int, sampled: int) -> list[AccessRecord]:
    """The access-log records after `before`, once nginx has written the last ones (it logs
    a request when its response is done, which may be after our client has closed)."""
    deadline = time.monotonic() + 3.0
    while True:
        records = read_access_log(path)[before:]
        if sum(r.range != "-" for r in records) >= sampled or time.monotonic() > deadline:
            return records
        time.sleep(0.02)


def patient_values(lab: LabManifest) -> list[str]:
    return [v for p in lab.patients for v in (p.patient_id, p.patient_name)]


def orthanc_cves(version: str | None) -> Severity | None:
    found = vulns.lookup("Orthanc", version)
    return max(v.severity for v in found) if found else None


def expected(base: dict[str, Severity], version: str | None) -> dict[str, Severity]:
    cve = orthanc_cves(version)
    return {**base, "HTTP-005": cve} if cve is not None else base


# --- the main lab's Orthancs ---------------------------------------------------------------


def test_open_orthanc_rest_and_dicomweb(lab: LabManifest,
                                        require_product: Callable[[str], ServiceSpec]) -> None:
    svc = require_product("orthanc-open")
    assert svc.rest_port is not None and svc.dicomweb_path == "/dicom-web/"
    facts = run_probe(svc.address, svc.rest_port)
    assert facts.reachable and facts.scheme == "http"
    assert facts.orthanc is not None and not facts.orthanc.authentication
    assert facts.orthanc.version == svc.version
    assert facts.orthanc.dicom_port == svc.port and facts.orthanc.dicom_aet == svc.ae_title
    assert (facts.orthanc.patients, facts.orthanc.studies) == (svc.patients, svc.studies)
    assert facts.orthanc.instances == svc.instances
    web = {d.root: d for d in facts.dicomweb}
    assert set(web) == {"/dicom-web/"}
    dw = web["/dicom-web/"]
    assert dw.open and not dw.truncated
    assert (dw.studies, dw.patients) == (lab.studies, len(lab.patients)) == (9, 6)
    assert "PatientName" in dw.attributes_returned and "PatientID" in dw.attributes_returned
    assert failures(facts) == expected({"HTTP-001": Severity.CRITICAL,
                                        "HTTP-003": Severity.CRITICAL,
                                        "HTTP-006": Severity.MEDIUM}, svc.version)
    outcomes = evaluate(facts)
    assert outcomes["HTTP-002"].status is Status.UNKNOWN      # not tried without the flag
    assert outcomes["HTTP-004"].status is Status.PASS
    assert outcomes["HTTP-001"].evidence["exposed"][0]["patients"] == 6
    no_values(facts, patient_values(lab))
    no_values(outcomes, patient_values(lab))
    no_values(facts.summary(), patient_values(lab))


def test_dicomweb_paging_and_cap(lab: LabManifest,
                                 require_product: Callable[[str], ServiceSpec]) -> None:
    svc = require_product("orthanc-open")
    assert svc.rest_port is not None
    paged = run_probe(svc.address, svc.rest_port, HttpConfig(timeout=3, qido_page=2))
    dw = paged.open_dicomweb[0]
    assert (dw.studies, dw.patients, dw.records, dw.truncated) == (9, 6, 9, False)
    capped = run_probe(svc.address, svc.rest_port, HttpConfig(timeout=3, qido_page=3,
                                                              qido_max_records=4))
    dw = capped.open_dicomweb[0]
    assert dw.truncated and dw.studies == 4 and dw.records == 4


def test_open_orthanc_show_phi_sample_only_on_request(
        lab: LabManifest, require_product: Callable[[str], ServiceSpec]) -> None:
    svc = require_product("orthanc-open")
    assert svc.rest_port is not None
    facts = run_probe(svc.address, svc.rest_port, HttpConfig(timeout=3, show_phi=True))
    sample = facts.open_dicomweb[0].phi_sample
    assert sample and any(p.patient_id in " ".join(sample) for p in lab.patients)
    assert "phi_sample" not in repr(facts.summary())


def test_locked_orthanc_has_no_exposure(lab: LabManifest,
                                        require_product: Callable[[str], ServiceSpec]) -> None:
    svc = require_product("orthanc-locked")
    assert svc.rest_port is not None
    for tried in (False, True):
        facts = run_probe(svc.address, svc.rest_port,
                          HttpConfig(timeout=3, try_default_credentials=tried))
        assert facts.orthanc is not None and facts.orthanc.authentication
        assert facts.orthanc.version is None and facts.orthanc.patients is None
        assert facts.dicomweb == ()          # 401 everywhere proves no DICOMweb
        assert [p.name for p in facts.products] == ["Orthanc"]
        # only the transport finding: Basic credentials would cross in clear text
        assert failures(facts) == {"HTTP-006": Severity.MEDIUM}
        outcome = evaluate(facts)
        assert outcome["HTTP-001"].status is Status.PASS
        assert outcome["HTTP-005"].status is Status.UNKNOWN
        if tried:
            assert [(c.username, c.accepted, c.status) for c in facts.credentials] == [
                ("orthanc", False, 401)]
            assert outcome["HTTP-002"].status is Status.PASS
        else:
            assert facts.credentials == ()
            assert outcome["HTTP-002"].status is Status.UNKNOWN
        assert svc.rest_password is not None and svc.rest_password not in repr(facts)


# --- the web lab ----------------------------------------------------------------------------


def test_default_credentials_found_only_when_asked(web_lab: WebLab) -> None:
    srv = web_lab.server("orthanc-default")
    quiet = run_probe(srv.address, srv.port)
    assert quiet.orthanc is not None and quiet.orthanc.authentication
    assert failures(quiet) == {"HTTP-006": Severity.MEDIUM}
    assert evaluate(quiet)["HTTP-002"].status is Status.UNKNOWN

    facts = run_probe(srv.address, srv.port, HttpConfig(timeout=3, try_default_credentials=True))
    assert len(facts.credentials) == 1                    # one attempt, never a dictionary
    attempt = facts.credentials[0]
    assert (attempt.product, attempt.username, attempt.accepted) == ("Orthanc", "orthanc", True)
    assert "orthanc.uclouvain.be" in attempt.reference
    assert facts.orthanc is not None and facts.orthanc.via_default_credentials
    assert facts.orthanc.patients == len(web_lab.data.patients)
    version = facts.orthanc.version
    assert version is not None
    assert failures(facts) == expected({"HTTP-002": Severity.CRITICAL,
                                        "HTTP-006": Severity.MEDIUM}, version)
    evidence = evaluate(facts)["HTTP-002"].evidence
    assert evidence["opened"]["patients"] == 6
    assert not hasattr(attempt, "password")      # the facts never hold a password


def test_autoindex_with_dicom(web_lab: WebLab) -> None:
    srv = web_lab.server("nginx-autoindex")
    assert srv.access_log is not None
    sample = 8192
    limits = ShareLimits(sample_bytes=sample)
    before = len(read_access_log(srv.access_log))
    facts = run_probe(srv.address, srv.port, HttpConfig(timeout=3, limits=limits))
    assert facts.listing is not None
    assert facts.listing.server == "nginx autoindex"
    walk = facts.listing.walk
    tree = web_lab.tree
    assert walk["dicom_files"] == tree.dicom_files == 24
    assert (walk["patients"], walk["studies"]) == (tree.patients, tree.studies) == (6, 9)
    assert walk["limits_reached"] == [] and walk["errors"] == {}
    assert failures(facts) == {"HTTP-004": Severity.CRITICAL}
    evidence = evaluate(facts)["HTTP-004"].evidence
    assert {f["folder"] for f in evidence["top_folders"]} <= {
        "/archive/2019/…", "/archive/2020/…", "/archive/2021/…"}
    pids = [p.patient_id for p in web_lab.data.patients]
    no_values(evidence, pids + [p.patient_name for p in web_lab.data.patients])
    no_values(facts.summary(), pids)

    # sampling: no file request delivered more body than the sample size, and the walker's
    # byte count is what nginx sent
    records = settled_log(srv.access_log, before, walk["files_sampled"])
    listings = {r.path for r in records if r.path.endswith("/") and r.status == 200}
    files = [r for r in records if r.range != "-"]
    assert len(files) == walk["files_sampled"] == tree.dicom_files + 3   # + 3 non-DICOM
    assert all(r.range == f"bytes=0-{sample - 1}" and r.status == 206 for r in files)
    assert all(r.path.rsplit("/", 1)[0] + "/" in listings for r in files)
    assert all(r.body_bytes_sent <= sample for r in files)
    assert sum(r.body_bytes_sent for r in files) == walk["bytes_read"]
    assert tree.max_file_size > sample          # the limit really cut something


def test_autoindex_limits_and_show_phi(web_lab: WebLab) -> None:
    srv = web_lab.server("nginx-autoindex")
    small = ShareLimits(sample_bytes=4096, max_files=5)
    facts = run_probe(srv.address, srv.port, HttpConfig(timeout=3, limits=small))
    assert facts.listing is not None
    assert facts.listing.walk["files_sampled"] == 5
    assert "max_files" in facts.listing.walk["limits_reached"]
    shallow = run_probe(srv.address, srv.port,
                        HttpConfig(timeout=3, limits=ShareLimits(max_depth=1)))
    assert shallow.listing is not None
    assert shallow.listing.walk["dicom_files"] == 0
    assert "max_depth" in shallow.listing.walk["limits_reached"]
    assert failures(shallow) == {}
    full = run_probe(srv.address, srv.port, HttpConfig(timeout=3, show_phi=True))
    assert full.listing is not None
    folders = {f["folder"] for f in full.listing.walk["top_folders"]}
    assert any(p.patient_id in f for f in folders for p in web_lab.data.patients)


def test_plain_page_yields_nothing(web_lab: WebLab) -> None:
    srv = web_lab.server("nginx-plain")
    facts = run_probe(srv.address, srv.port)
    assert facts.reachable and facts.title == "Welcome" and facts.products == ()
    assert facts.listing is None and facts.dicomweb == () and facts.orthanc is None
    assert failures(facts) == {}
    assert facts.server is not None and facts.server.startswith("nginx")


def test_tls_first_port_records_certificate(web_lab: WebLab) -> None:
    srv = web_lab.server("nginx-tls")
    facts = run_probe(srv.address, srv.port)
    assert facts.scheme == "https" and facts.tls is not None and facts.tls.handshake
    assert facts.tls.certificate_subject is not None
    assert f"CN={CERT_SUBJECT_CN}" in facts.tls.certificate_subject
    assert facts.title == "Welcome" and failures(facts) == {}


def test_scheme_fallbacks(web_lab: WebLab) -> None:
    # TLS server on a port not in the TLS-first list: nginx answers the plain request with
    # "The plain HTTP request was sent to HTTPS port", then HTTPS is used
    tls_srv = web_lab.server("nginx-tls")
    facts = run_probe(tls_srv.address, tls_srv.port, HttpConfig(timeout=3, tls_first_ports=()))
    assert facts.scheme == "https" and facts.title == "Welcome"
    # plain server on a TLS-first port: the handshake fails, plain HTTP is used
    plain = web_lab.server("nginx-plain")
    facts = run_probe(plain.address, plain.port,
                      HttpConfig(timeout=3, tls_first_ports=(plain.port,)))
    assert facts.scheme == "http" and facts.title == "Welcome"
    assert facts.tls is not None and not facts.tls.handshake and facts.tls.error


def test_requests_are_few(web_lab: WebLab) -> None:
    srv = web_lab.server("nginx-plain")
    facts = run_probe(srv.address, srv.port)
    assert facts.requests <= 6
    assert facts.errors == ()
