"""What a check is: permanent metadata plus a pure function of probe facts.

A check module defines `META: CheckMeta` and `evaluate(facts) -> Outcome`. The registry in
checks/__init__.py lists the modules explicitly; `validate_registry` runs at import and refuses
duplicate IDs, malformed IDs and missing texts, so a broken catalogue never ships.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dicomguard.models import Severity, Status

ID_PATTERN = re.compile(r"^[A-Z]{2,8}-\d{3}$")


@dataclass(frozen=True, slots=True)
class CheckMeta:
    id: str                        # permanent, never renumbered: "DICOM-003"
    protocol: str                  # which facts it reads: "dicom", "ftp", ...
    severity: Severity
    title: str                     # what a FAIL means, one line
    risk: str                      # why it matters
    remediation: str               # what to change, product-specific keys where known
    references: tuple[str, ...] = ()
    intrusive: bool = False        # needs an opt-in test that writes to / pulls from the device


@dataclass(frozen=True, slots=True)
class Outcome:
    """What evaluate() returns: a status, PHI-free evidence, and optionally a severity override
    (a CVE check is as severe as the worst CVE it found)."""

    status: Status
    evidence: Mapping[str, Any] = field(default_factory=dict)
    severity: Severity | None = None
    error: str | None = None


Evaluate = Callable[[Any], Outcome]


@dataclass(frozen=True, slots=True)
class Check:
    meta: CheckMeta
    evaluate: Evaluate


def validate_registry(checks: tuple[Check, ...]) -> None:
    seen: set[str] = set()
    for check in checks:
        meta = check.meta
        if not ID_PATTERN.match(meta.id):
            raise ValueError(f"check id {meta.id!r} does not match {ID_PATTERN.pattern}")
        if meta.id in seen:
            raise ValueError(f"duplicate check id {meta.id}")
        seen.add(meta.id)
        for name in ("title", "risk", "remediation", "protocol"):
            if not getattr(meta, name).strip():
                raise ValueError(f"check {meta.id} has an empty {name}")
        if not meta.references:
            raise ValueError(f"check {meta.id} has no references")


def intrusive_gate(intr: Any, refused: str | None) -> Outcome | None:
    """The common start of an intrusive check: not enabled (UNKNOWN), nothing could be tried
    because no association was granted (PASS), or the server refused the request (PASS).
    `intr` is the probe's IntrusiveFacts or None; returns None when the check must decide."""
    if intr is None:
        return Outcome(Status.UNKNOWN, {"reason": "intrusive tests not enabled (--intrusive)"})
    if intr.skipped:
        return Outcome(Status.PASS, {"reason": intr.skipped})
    if refused:
        return Outcome(Status.PASS, {"refused": refused})
    return None
