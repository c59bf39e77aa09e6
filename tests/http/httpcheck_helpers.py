"""Helpers of the HTTP tests (imported by name: tests/http is on sys.path under pytest's
default import mode): the check modules under test, probing and evaluating."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from dicomguard.checks import (
    http_001_web_pacs_no_auth,
    http_002_default_credentials,
    http_003_dicomweb_open,
    http_004_directory_listing_dicom,
    http_005_vulnerable_version,
    http_006_no_tls,
)
from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Endpoint, Severity, Status
from dicomguard.net.connector import Connector
from dicomguard.probes.http import HttpConfig, HttpFacts, probe

MODULES = (http_001_web_pacs_no_auth, http_002_default_credentials, http_003_dicomweb_open,
           http_004_directory_listing_dicom, http_005_vulnerable_version, http_006_no_tls)


def checks_under_test() -> list[tuple[CheckMeta, Callable[[Any], Outcome]]]:
    return [(m.META, m.evaluate) for m in MODULES]


def run_probe(address: str, port: int, cfg: HttpConfig | None = None,
              connector: Connector | None = None) -> HttpFacts:
    async def go() -> HttpFacts:
        conn = connector or Connector(None, rate=0, per_host=2, connect_timeout=2.0)
        return await probe(Endpoint(address, port, "http"), conn, cfg or HttpConfig(timeout=3))

    return asyncio.run(go())


def evaluate(facts: HttpFacts) -> dict[str, Outcome]:
    return {meta.id: fn(facts) for meta, fn in checks_under_test()}


def failures(facts: HttpFacts) -> dict[str, Severity]:
    """check id -> effective severity of every FAIL (an ERROR fails the test)."""
    out = {}
    for meta, fn in checks_under_test():
        outcome = fn(facts)
        assert outcome.status is not Status.ERROR, (meta.id, outcome)
        if outcome.status is Status.FAIL:
            out[meta.id] = outcome.severity if outcome.severity is not None else meta.severity
    return out


def no_values(blob: Any, values: list[str]) -> None:
    """No part (4+ characters) of a patient value appears in blob's repr."""
    text = repr(blob)
    for value in values:
        for part in value.replace("^", " ").split():
            if len(part) >= 4:
                assert part not in text, f"patient value leaked: {part}"
