"""Fixtures of the report tests: the sample scan, kept as a report document in data/ (it is also
the expected output of `to_json` for that scan: a change of format shows in review)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dicomguard.models import ScanResult
from dicomguard.report.json_report import from_json

SAMPLE = Path(__file__).parent / "data" / "sample-scan.json"


@pytest.fixture
def sample_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))
    return doc


@pytest.fixture
def sample(sample_doc: dict[str, Any]) -> ScanResult:
    return from_json(sample_doc)
