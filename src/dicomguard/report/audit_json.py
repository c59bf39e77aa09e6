"""The JSON audit report: a versioned document, ``dicomguard.audit/1`` (docs/audit-format.md).

    doc = audit_to_json(result)                 # a dict ready for json.dump
    write_audit_json(result, path)              # atomically: a temporary file, then a rename
    schema = load_audit_schema()                # JSON Schema (draft 2020-12)

By default the document holds counts, keywords and categories only: no value, no hash, no
institution or device name, study dates as year-month, folders shortened (by the walk). With
``show_phi`` (the user's ``--show-phi``) it adds full dates, institution and device names, and,
for a single-file audit, the values per attribute; ``show_phi`` is recorded in the document.
Fields may be added within major version 1, never removed or changed in meaning.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from dicomguard import __version__
from dicomguard.audit.runner import AuditResult
from dicomguard.models import Severity
from dicomguard.phi.inspector import CATEGORY_SEVERITY, Category, PhiHit

__all__ = [
    "SCHEMA",
    "audit_exit_code",
    "audit_to_json",
    "format_date",
    "load_audit_schema",
    "write_audit_json",
]

SCHEMA = "dicomguard.audit/1"


def audit_exit_code(result: AuditResult) -> int:
    """0 no DICOM or nothing identifying, else the worst file severity: 1 low, 2 medium,
    3 high, 4 critical (see docs/audit-format.md). Interruption is the caller's (130)."""
    return int(result.summary.worst_severity)


def format_date(value: str | None, show_phi: bool) -> str | None:
    """YYYYMMDD as YYYY-MM (default) or YYYY-MM-DD (show_phi)."""
    if not value or len(value) < 6:
        return None
    if show_phi and len(value) >= 8:
        return f"{value[:4]}-{value[4:6]}-{value[6:8]}"
    return f"{value[:4]}-{value[4:6]}"


def _rows(counter: Counter[str], key: str, limit: int | None = None) -> list[dict[str, Any]]:
    items = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    if limit is not None:
        items = items[:limit]
    return [{key: k, "files": n} for k, n in items]


def _hit(hit: PhiHit, show_phi: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"keyword": hit.keyword, "tag": f"{hit.tag:08X}", "path": hit.path,
                           "category": hit.category.value, "source": hit.source,
                           "action": hit.action}
    if show_phi:
        out["value"] = hit.value
    return out


def audit_to_json(result: AuditResult, *, hits: Sequence[PhiHit] | None = None,
                  max_folders: int = 20) -> dict[str, Any]:
    """The report document. ``hits``: per-element detail of a single-file audit."""
    s = result.summary
    show = result.options.show_phi
    worst = s.worst_severity
    started = datetime.datetime.fromtimestamp(result.started_at, datetime.UTC)
    attributes = [
        {"keyword": kw, "category": s.attribute_categories.get(kw, Category.OTHER.value),
         "files": n}
        for kw, n in sorted(s.attributes.items(), key=lambda kv: (-kv[1], kv[0]))]
    findings = []
    for key, n in sorted(s.text_findings.items(), key=lambda kv: (-kv[1], kv[0])):
        kw, _, det = key.partition("\t")
        findings.append({"keyword": kw, "detector": det, "files": n})
    categories = [
        {"category": c, "files": n, "severity": CATEGORY_SEVERITY[Category(c)].label()}
        for c, n in sorted(s.categories.items(), key=lambda kv: (-kv[1], kv[0]))]
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "tool": {"name": "dicomguard", "version": __version__},
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "elapsed_seconds": round(result.elapsed, 3),
        "interrupted": result.interrupted,
        "stopped_at_max_files": result.stopped_at_max_files,
        "show_phi": show,
        "roots": list(result.roots),
        "options": {"jobs": result.options.jobs, "ocr": result.options.ocr,
                    "max_files": result.options.max_files,
                    "follow_symlinks": result.options.follow_symlinks},
        "severity": worst.label(),
        "exit_code": audit_exit_code(result),
        "files": {"seen": s.files_seen, "dicom": s.dicom_files, "non_dicom": s.non_dicom,
                  "unreadable": s.unreadable, "unreadable_dicom": s.unreadable_dicom,
                  "partial": s.partial_files, "with_phi": s.phi_files,
                  "bytes_seen": s.bytes_seen, "bytes_dicom": s.bytes_dicom},
        "unreadable_reasons": [{"reason": r, "files": n} for r, n in
                               sorted(s.unreadable_reasons.items(), key=lambda kv: -kv[1])],
        "walk_errors": [{"reason": r, "count": n} for r, n in
                        sorted(s.walk_errors.items(), key=lambda kv: -kv[1])],
        "patients": len(s.patients),
        "files_without_patient": s.files_without_patient,
        "studies": len(s.studies),
        "series": len(s.series),
        "institutions": {"count": len(s.institutions)},
        "devices": {"count": len(s.devices)},
        "modalities": _rows(s.modalities, "modality"),
        "study_dates": {"min": format_date(s.study_date_min, show),
                        "max": format_date(s.study_date_max, show),
                        "precision": "day" if show else "month"},
        "severities": {sev.label(): s.severities.get(sev.name, 0) for sev in Severity},
        "categories": categories,
        "phi_attributes": attributes,
        "text_findings": findings,
        "risk_flags": [{"flag": f, "files": n} for f, n in
                       sorted(s.flags.items(), key=lambda kv: (-kv[1], kv[0]))],
        "top_folders": [{"folder": f, "patients": p, "files": n}
                        for f, p, n in s.top_folders(max_folders)],
        "ocr": None,
    }
    if show:
        doc["institutions"]["names"] = _rows(s.institution_names, "name", 100)
        doc["devices"]["names"] = _rows(s.device_names, "name", 100)
    if result.options.ocr:
        doc["ocr"] = {"files_examined": s.ocr_files, "files_with_text": s.ocr_text_files,
                      "identifier_matches": _rows(s.ocr_matches, "keyword"),
                      "errors": [{"reason": r, "files": n} for r, n in s.ocr_errors.items()]}
    if hits is not None:
        doc["hits"] = [_hit(h, show) for h in hits]
    return doc


def write_audit_json(result: AuditResult, path: str | os.PathLike[str], *,
                     hits: Sequence[PhiHit] | None = None) -> None:
    """Write the report atomically (a temporary file in the same folder, then a rename)."""
    doc = audit_to_json(result, hits=hits)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".audit-", suffix=".json", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load_audit_schema() -> dict[str, Any]:
    """The JSON Schema of the document (dicomguard/data/audit-report.schema.json)."""
    text = (resources.files("dicomguard") / "data" / "audit-report.schema.json").read_text(
        encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
