"""The JSON scan report: a versioned, documented document (docs/report-format.md).

    doc = to_json(result)            # a dict ready for json.dump
    write_json(result, path)         # written atomically: a temporary file, then a rename
    result = from_json(doc)          # back to a ScanResult (round trip)
    result = read_json(path)

The document's shape is fixed by `schema` ("dicomguard.scan/1") and described by the JSON Schema
(draft 2020-12) in dicomguard/data/scan-report.schema.json (`load_schema()`). Readers accept any
document whose schema name is dicomguard.scan and whose major version they know; fields may be
added within a major version, never removed or changed in meaning.

Like the store, the report refuses to carry raw PHI (see `store.codec.check_no_raw_phi`) unless
the scan's options say `show_phi`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from dicomguard import __version__
from dicomguard.errors import DicomguardError
from dicomguard.models import ScanResult
from dicomguard.store.codec import (
    JSONValue,
    check_scan_phi,
    finding_from_dict,
    finding_to_dict,
    json_object,
    scan_counts,
    service_from_dict,
    service_to_dict,
)

SCHEMA_NAME = "dicomguard.scan"
SCHEMA_MAJOR = 1
SCHEMA_ID = f"{SCHEMA_NAME}/{SCHEMA_MAJOR}"
SCHEMA_RESOURCE = "data/scan-report.schema.json"


class ReportFormatError(DicomguardError, ValueError):
    """A JSON document is not a dicomguard scan report this version can read."""


def load_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that every document `to_json` produces satisfies."""
    text = resources.files("dicomguard").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def to_json(result: ScanResult) -> dict[str, JSONValue]:
    """The report document for a scan. Raises RawPHIError for raw PHI without show_phi,
    TypeError/ValueError for evidence with no JSON form."""
    check_scan_phi(result.services, result.findings, result.options)
    counts = scan_counts(result)
    return {
        "schema": SCHEMA_ID,
        "tool": {"name": "dicomguard", "version": __version__},
        "scan": {
            "id": result.scan_id,
            "started_at": result.started_at,
            "finished_at": result.finished_at,
            "interrupted": result.interrupted,
            "targets": list(result.targets),
            "options": json_object(result.options, where="options"),
            "stats": json_object(result.stats, where="stats"),
        },
        "services": [service_to_dict(s) for s in result.services],
        "findings": [finding_to_dict(f) for f in result.findings],
        "summary": {
            "services": len(result.services),
            "findings": counts.total,
            "by_status": dict(counts.by_status),
            "failed_by_severity": dict(counts.by_severity),
            "worst_severity": None if counts.worst_severity is None
            else counts.worst_severity.label(),
            "exit_code": counts.exit_code,
        },
    }


def dumps(result: ScanResult) -> str:
    """The report as text: indented UTF-8 JSON ending in a newline."""
    return json.dumps(to_json(result), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(result: ScanResult, path: str | os.PathLike[str]) -> Path:
    """Write the report to `path` atomically: readers see the old file or the whole new one,
    never a part. The file is created readable by its owner only (it lists exposed systems)."""
    target = Path(path)
    text = dumps(result)            # fails before anything touches the disk
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                    dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def _schema_major(doc: Mapping[str, Any]) -> int:
    schema = doc.get("schema")
    if not isinstance(schema, str) or "/" not in schema:
        raise ReportFormatError(f"not a dicomguard scan report (schema: {schema!r})")
    name, _, major = schema.partition("/")
    if name != SCHEMA_NAME or not major.isdigit():
        raise ReportFormatError(f"not a dicomguard scan report (schema: {schema!r})")
    return int(major)


def from_json(doc: Mapping[str, Any]) -> ScanResult:
    """The ScanResult a report document describes (the inverse of `to_json`).

    The summary is not read: it is derived from the findings. Raises ReportFormatError for a
    document that is not a scan report of a major version this code reads.
    """
    major = _schema_major(doc)
    if major != SCHEMA_MAJOR:
        raise ReportFormatError(
            f"scan report schema {doc['schema']!r} is not supported by dicomguard {__version__} "
            f"(it reads {SCHEMA_ID})")
    try:
        scan = doc["scan"]
        return ScanResult(
            scan_id=str(scan["id"]),
            started_at=str(scan["started_at"]),
            finished_at=scan.get("finished_at"),
            targets=tuple(str(t) for t in scan.get("targets", ())),
            options=dict(scan.get("options") or {}),
            services=tuple(service_from_dict(s) for s in doc.get("services", ())),
            findings=tuple(finding_from_dict(f) for f in doc.get("findings", ())),
            interrupted=bool(scan.get("interrupted", False)),
            stats=dict(scan.get("stats") or {}),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ReportFormatError(f"malformed scan report: {exc!r}") from exc


def read_json(path: str | os.PathLike[str]) -> ScanResult:
    """Read a report file written by `write_json`."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportFormatError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ReportFormatError(f"{path}: not a JSON object")
    return from_json(doc)
