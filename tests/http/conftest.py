"""Fixtures of the HTTP tests: the web lab (nginx + default-login Orthanc) on
DICOMGUARD_TEST_WEB_BASE (default 127.0.0.140-143); the main lab's Orthancs come from the
session `lab` fixture. Under CI=true a missing nginx or Orthanc fails the tests; elsewhere
they skip with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from dicomguard.lab.servers import in_ci
from dicomguard.lab.web import WebLab, missing_products, start_web_lab, stop_web_lab

WEB_BASE = os.environ.get("DICOMGUARD_TEST_WEB_BASE", "127.0.0.140")


@pytest.fixture(scope="session")
def web_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebLab]:
    missing = missing_products()
    if missing:
        reason = "web lab needs " + ", ".join(missing)
        if in_ci():
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("web")
    lab = start_web_lab(state, base_address=WEB_BASE)
    try:
        yield lab
    finally:
        stop_web_lab(state)
