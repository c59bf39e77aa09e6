"""Fixtures shared by the whole suite: the built-in lab, started once per session.

`lab` is the LabManifest of a lab running on 127.0.0.100-109 (override the base address with
DICOMGUARD_TEST_LAB_BASE), so it does not collide with a `dicomguard lab up` on the default
127.0.0.10. Under CI=true a missing Orthanc or dcmtk makes the fixture fail (start_lab raises);
elsewhere pynetdicom stand-ins replace them and `lab.skipped` says so: tests that need the real
product use `require_product`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dicomguard.lab import LabManifest, ServiceSpec, start_lab, stop_lab

TEST_LAB_BASE = os.environ.get("DICOMGUARD_TEST_LAB_BASE", "127.0.0.100")


@pytest.fixture(scope="session")
def lab_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lab")


@pytest.fixture(scope="session")
def lab(lab_state_dir: Path) -> Iterator[LabManifest]:
    """The running lab (all services answering, Orthanc loaded); stopped after the session."""
    manifest = start_lab(lab_state_dir, base_address=TEST_LAB_BASE)
    try:
        yield manifest
    finally:
        stop_lab(lab_state_dir)


@pytest.fixture(scope="session")
def lab_service(lab: LabManifest) -> Callable[[str], ServiceSpec]:
    """lab_service("orthanc-open") -> its ServiceSpec."""
    return lab.service


@pytest.fixture(scope="session")
def require_product(lab: LabManifest) -> Callable[[str], ServiceSpec]:
    """require_product("orthanc-open"): the service, which must be the real product; skips
    (fails under CI=true) when a pynetdicom stand-in runs in its place."""

    def get(name: str) -> ServiceSpec:
        svc = lab.service(name)
        if svc.stands_in_for is not None:
            reason = dict(lab.skipped).get(name, f"{name} is a stand-in")
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"{name} must be the real {svc.stands_in_for} under CI=true: {reason}")
            pytest.skip(reason)
        return svc

    return get
