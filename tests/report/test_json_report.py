"""The JSON report: round trip, atomic writing, the JSON Schema, the raw-PHI guard."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import stat
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dicomguard import __version__
from dicomguard.models import Endpoint, Finding, ScanResult, Severity, Status, exit_code_for
from dicomguard.report.json_report import (
    SCHEMA_ID,
    ReportFormatError,
    from_json,
    load_schema,
    read_json,
    to_json,
    write_json,
)
from dicomguard.store import RawPHIError
from dicomguard.store.codec import names_raw_phi


def _validator() -> jsonschema.Draft202012Validator:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_sample_document_is_what_to_json_writes(sample: ScanResult,
                                                    sample_doc: dict[str, Any]) -> None:
    doc = to_json(sample)
    assert doc["tool"] == {"name": "dicomguard", "version": __version__}
    sample_doc["tool"]["version"] = __version__        # the only field that may move
    assert doc == sample_doc


def test_round_trip(sample: ScanResult) -> None:
    assert from_json(to_json(sample)) == sample
    assert from_json(json.loads(json.dumps(to_json(sample)))) == sample


def test_documents_validate_against_the_schema(sample: ScanResult) -> None:
    validator = _validator()
    validator.validate(to_json(sample))
    interrupted = dataclasses.replace(sample, finished_at=None, interrupted=True,
                                      services=(), findings=())
    validator.validate(to_json(interrupted))


@pytest.mark.parametrize(("path", "value"), [
    (("findings", 0, "severity"), "severe"),
    (("findings", 0, "status"), "failed"),
    (("findings", 0, "check_id"), "dicom-1"),
    (("findings", 0, "endpoint", "port"), 70000),
    (("services", 0, "facts"), []),
    (("summary", "exit_code"), 64),
    (("schema",), "dicomguard.scan/2"),
    (("scan", "unexpected"), 1),
])
def test_the_schema_rejects_wrong_documents(sample: ScanResult, path: tuple[Any, ...],
                                            value: object) -> None:
    doc: Any = copy.deepcopy(to_json(sample))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        _validator().validate(doc)


def test_every_field_of_the_schema_is_documented() -> None:
    doc_text = (Path(__file__).parents[2] / "docs" / "report-format.md").read_text(encoding="utf-8")

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                assert f"`{name}`" in doc_text, f"{where}.{name} is not in docs/report-format.md"
                walk(sub, f"{where}.{name}")
            for name, sub in node.get("$defs", {}).items():
                walk(sub, name)

    walk(load_schema(), "report")


def test_summary(sample: ScanResult, sample_doc: dict[str, Any]) -> None:
    summary = to_json(sample)["summary"]
    assert summary == sample_doc["summary"]
    assert isinstance(summary, dict)
    assert summary["exit_code"] == exit_code_for(list(sample.findings)) == 4
    assert summary["worst_severity"] == "critical"
    nothing = to_json(dataclasses.replace(sample, findings=()))["summary"]
    assert isinstance(nothing, dict)
    assert (nothing["worst_severity"], nothing["exit_code"], nothing["findings"]) == (None, 0, 0)


def test_write_json_is_atomic_and_private(sample: ScanResult, tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    assert write_json(sample, path) == path
    assert read_json(path) == sample
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n")

    # a report that cannot be written leaves the previous file whole, and no temporary file
    bad = dataclasses.replace(sample, stats={"raw": b"\x00"})
    with pytest.raises(TypeError):
        write_json(bad, path)
    assert path.read_text(encoding="utf-8") == text
    assert os.listdir(tmp_path) == ["report.json"]


def test_write_failure_removes_the_temporary_file(sample: ScanResult, tmp_path: Path) -> None:
    (tmp_path / "report.json").mkdir()                 # os.replace onto a directory fails
    with pytest.raises(OSError):
        write_json(sample, tmp_path / "report.json")
    assert os.listdir(tmp_path) == ["report.json"]


@pytest.mark.parametrize("doc", [
    {"schema": "dicomguard.scan/2", "scan": {}},
    {"schema": "other.scan/1"},
    {"schema": "dicomguard.scan"},
    {},
    {"schema": SCHEMA_ID},
    {"schema": SCHEMA_ID, "scan": {"id": "x", "started_at": "t"},
     "findings": [{"check_id": "DICOM-001"}]},
    {"schema": SCHEMA_ID, "scan": {"id": "x", "started_at": "t"},
     "findings": [{"check_id": "DICOM-001", "title": "t", "status": "bogus", "severity": "low",
                   "endpoint": {"address": "127.0.0.1", "port": 104, "protocol": "dicom"}}]},
])
def test_from_json_rejects_other_documents(doc: dict[str, Any]) -> None:
    with pytest.raises(ReportFormatError):
        from_json(doc)


def test_read_json_rejects_non_json(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{not json")
    (tmp_path / "b.json").write_text("[]")
    for name in ("a.json", "b.json"):
        with pytest.raises(ReportFormatError):
            read_json(tmp_path / name)


PHI = Finding("DICOM-003", "C-FIND discloses patient records", Endpoint("127.0.0.1", 4242),
              Status.FAIL, Severity.CRITICAL, {"patients": 1, "phi_sample": ["DOE^JANE"]})


def test_no_raw_phi_in_reports(sample: ScanResult) -> None:
    def keys_with_text(node: Any) -> list[str]:
        found: list[str] = []
        if isinstance(node, dict):
            for key, value in node.items():
                if names_raw_phi(key) and not isinstance(value, int | float | bool | None):
                    found.append(key)
                found += keys_with_text(value)
        elif isinstance(node, list):
            for item in node:
                found += keys_with_text(item)
        return found

    assert keys_with_text(to_json(sample)) == []
    with pytest.raises(RawPHIError):
        to_json(dataclasses.replace(sample, findings=(PHI,)))
    shown = dataclasses.replace(sample, findings=(PHI,),
                                options={**sample.options, "show_phi": True})
    assert "DOE^JANE" in json.dumps(to_json(shown))


def test_the_example_in_the_docs_is_valid() -> None:
    doc_text = (Path(__file__).parents[2] / "docs" / "report-format.md").read_text(
        encoding="utf-8")
    example = doc_text.split("```json\n", 1)[1].split("```", 1)[0]
    doc = json.loads(example)
    _validator().validate(doc)
    assert to_json(from_json(doc))["summary"] == doc["summary"]
