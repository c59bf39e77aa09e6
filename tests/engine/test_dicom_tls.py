"""DICOM over TLS against a real dcmtk storescp (+tls): found as DICOM over TLS when it accepts
anyone, reported as TLS demanding a client certificate when it does (dcmtk's default)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dicomguard.engine.scan import EndpointResult, ScanConfig, scan_batch
from dicomguard.probes.dicom import DicomProbeConfig
from dicomguard.scope import build_scope

ADDRESS = "127.0.0.44"


def _require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{binary} is required under CI=true (apt-get install dcmtk openssl)")
        pytest.skip(f"{binary} not installed")
    return path


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = _require("openssl")
    d = tmp_path_factory.mktemp("tls")
    key, cert = d / "key.pem", d / "cert.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=dicomguard-test-pacs", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return key, cert


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((ADDRESS, 0))
        return int(s.getsockname()[1])


def _wait(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"storescp exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex((ADDRESS, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("storescp did not listen")


@pytest.fixture()
def storescp_tls(certificate: tuple[Path, Path], tmp_path: Path,
                 request: pytest.FixtureRequest) -> Iterator[int]:
    storescp = _require("storescp")
    key, cert = certificate
    port = _free_port()
    peer = list(request.param)
    out = tmp_path / "out"
    out.mkdir()
    # storescp binds every interface; it only ever sees loopback traffic from this test.
    proc = subprocess.Popen([storescp, "--ignore", "-od", str(out), "+tls", str(key), str(cert),
                             *peer, str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait(port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _scan(port: int) -> EndpointResult:
    scope = build_scope([f"{ADDRESS}:{port}"])
    cfg = ScanConfig(ports=(), rate=0, connect_timeout=3.0,
                     dicom=DicomProbeConfig(read_timeout=3.0, tls_timeout=3.0))
    [result] = scan_batch(scope.targets(), cfg, guard=scope)
    return result


@pytest.mark.servers
@pytest.mark.parametrize("storescp_tls", [["-ic"]], indirect=True)
def test_dicom_over_tls_open_to_anyone(storescp_tls: int) -> None:
    result = _scan(storescp_tls)
    assert result.service is not None
    facts = result.service.facts
    assert facts["dicom"] is True
    assert facts["tls"]["dicom_over_tls"] is True
    assert facts["tls"]["protocol"].startswith("TLSv1")
    assert "dicomguard-test-pacs" in facts["tls"]["certificate_subject"]
    statuses = {f.check_id: f.status.value for f in result.findings}
    assert statuses["DICOM-005"] == "pass"      # TLS is there
    assert statuses["DICOM-001"] == "fail"      # but anyone may associate over it
    assert statuses["DICOM-002"] == "fail"
    assert result.service.product == "dcmtk"


@pytest.mark.servers
@pytest.mark.parametrize("storescp_tls", [["-rc"]], indirect=True)
def test_tls_requiring_a_client_certificate(storescp_tls: int) -> None:
    result = _scan(storescp_tls)
    assert result.service is not None
    facts = result.service.facts
    assert facts.get("dicom") is False, facts  # nothing proves DICOM without a certificate
    assert facts["tls"]["handshake"] is True
    assert facts["tls"]["client_certificate_required"] is True
    assert result.findings == ()
