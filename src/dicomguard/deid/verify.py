"""``dicomguard deid --verify OUT``: re-audit de-identified files with the PHI inspector.

For each file the inspector (through :mod:`.adapters`) lists every element that carries a
value and has an Annex E action other than keep, plus free-text findings, with the options the
file says were applied (read from its DeidentificationMethodCodeSequence). Each is then judged:

- a free-text finding (a name, an ID, a phone number, an address, an e-mail, a date) is a
  failure: identifying text survived;
- an Annex E element passes only when its value is a form the de-identifier writes: empty, a
  keyed pseudonym (``DG`` + 10 base32 characters), a dummy (ANONYMOUS, 19000101, 000000, 0,
  000Y, zero bytes), UIDs under ``2.25.``, a date or time when the file says dates were kept
  or shifted (LongitudinalTemporalInformationModified UNMODIFIED or MODIFIED), a cleaned text
  (action C, no finding), or a private element when the Retain Safe Private Option is claimed;
- a file not marked de-identified (PatientIdentityRemoved not YES) or with burned-in text
  flagged (BurnedInAnnotation YES) is reported as such.

Issues name the attribute keyword and the reason, never the value. A file passes when it has
no issue; the run passes when every file does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .adapters import inspect_bytes
from .profile import CODES
from .remap import PSEUDONYM_RE

__all__ = ["FileVerdict", "VerifyReport", "verify_bytes", "verify_tree"]

_UID_RE = re.compile(r"^2\.25\.\d{1,39}$")
_DUMMIES = frozenset({"", "ANONYMOUS", "19000101", "000000", "19000101000000", "0", "000Y",
                      "REMOVED"})
_ZERO_HEX = re.compile(r"^(00 ?)+$")
_HEX = re.compile(r"^[0-9a-f]{2}( [0-9a-f]{2})+$")
_CODE_TO_OPTION = {code: name for name, (code, _m) in CODES.items()}
_DATE_KEYWORDS = ("Date", "Time", "DateTime")


@dataclass(frozen=True, slots=True)
class FileVerdict:
    source: str
    issues: tuple[tuple[str, str], ...] = ()      # (keyword, reason)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.issues and not self.error


@dataclass(slots=True)
class VerifyReport:
    files: int = 0
    passed: int = 0
    failed: list[FileVerdict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def _options_claimed(header: Any) -> tuple[frozenset[str], str, str]:
    """(options, LongitudinalTemporalInformationModified, PatientIdentityRemoved) from the
    output's own markers."""
    codes: set[str] = set()
    longitudinal = ""
    removed = ""
    for e in header.elements:
        if e.path and e.path[0][0] == 0x00120064 and e.tag == 0x00080100:
            codes.add(e.value.decode("ascii", "replace").strip(" \x00"))
        elif not e.path and e.tag == 0x00280303:
            longitudinal = e.value.decode("ascii", "replace").strip(" \x00").upper()
        elif not e.path and e.tag == 0x00120062:
            removed = e.value.decode("ascii", "replace").strip(" \x00").upper()
    options = frozenset(_CODE_TO_OPTION[c] for c in codes
                        if c in _CODE_TO_OPTION and _CODE_TO_OPTION[c] not in
                        ("basic", "clean-pixel-data", "retain-institution-identity"))
    if "113112" in codes:
        options |= {"retain-institution-identity"}
    return options, longitudinal, removed


def _value_allowed(hit: Any, longitudinal: str, options: frozenset[str]) -> bool:
    value = (hit.value or "").strip()
    if _HEX.match(value) and not _ZERO_HEX.match(value):  # a text value stored as UN/OB
        value = bytes.fromhex(value.replace(" ", "")).decode("latin_1").strip(" \x00")
    category = str(getattr(hit, "category", ""))
    if category == "private":
        return "retain-safe-private" in options
    if value in _DUMMIES or _ZERO_HEX.match(value):
        return True
    if PSEUDONYM_RE.match(value):
        return True
    parts = [p.strip() for p in value.split("\\")]
    if all(_UID_RE.match(p) or not p for p in parts):
        return True
    if longitudinal in ("MODIFIED", "UNMODIFIED") and (
            category == "date" or any(w in hit.keyword for w in _DATE_KEYWORDS)):
        return True
    return hit.action == "C"  # cleaned text: a leftover would be a text finding


def verify_bytes(data: bytes, source: str = "") -> FileVerdict:
    try:
        header, first = inspect_bytes(data, source)
    except Exception as exc:  # the verdict names the failure, it never crashes the run
        return FileVerdict(source, error=f"unreadable: {type(exc).__name__}")
    if not getattr(header, "is_dicom", True):
        return FileVerdict(source, error="not a DICOM file")
    options, longitudinal, removed = _options_claimed(header)
    insp = first
    if options:
        from dicomguard.phi.inspector import inspect

        insp = inspect(header, options=options, detail=True, show_phi=True)
    issues: list[tuple[str, str]] = []
    for hit in insp.hits:
        if hit.source.startswith("text:"):
            issues.append((hit.path, f"identifying text ({hit.source[5:]})"))
        elif not _value_allowed(hit, longitudinal, options):
            issues.append((hit.path, f"value survived (Annex E {hit.action})"))
    flags = int(getattr(insp, "flags", 0))
    if flags & 1:  # RiskFlag.BURNED_IN
        issues.append(("BurnedInAnnotation", "burned-in text in the pixels was not removed"))
    if removed != "YES":
        issues.append(("PatientIdentityRemoved", "not marked YES"))
    return FileVerdict(source, tuple(dict.fromkeys(issues)))


def verify_tree(root: Path, *, progress: Callable[[int, int], None] | None = None
                ) -> VerifyReport:
    from .runner import JOURNAL_DIR, iter_inputs

    report = VerifyReport()
    paths = [p for p in iter_inputs(root) if JOURNAL_DIR not in p.parts]
    for i, path in enumerate(paths, 1):
        rel = path.relative_to(root).as_posix()
        try:
            data = path.read_bytes()
        except OSError as exc:
            verdict = FileVerdict(rel, error=f"I/O error: {exc.strerror}")
        else:
            verdict = verify_bytes(data, rel)
        report.files += 1
        if verdict.ok:
            report.passed += 1
        else:
            report.failed.append(verdict)
        if progress is not None:
            progress(i, len(paths))
    return report


def iter_issue_lines(report: VerifyReport) -> Iterator[str]:
    for verdict in report.failed:
        if verdict.error:
            yield f"{verdict.source}: {verdict.error}"
        for keyword, reason in verdict.issues:
            yield f"{verdict.source}: {keyword}: {reason}"
