"""Types every layer agrees on: targets, endpoints, severities, findings.

Frozen dataclasses inside the program; JSON/DB schemas only at the edges (report/, store/).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any


class Severity(IntEnum):
    """Severity of a check; the exit code of a scan is the worst failed severity."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        return cls[text.strip().upper()]

    def label(self) -> str:
        return self.name.lower()


class Status(StrEnum):
    """Outcome of one check on one endpoint.

    PASS: the check ran and found no problem. FAIL: the check ran and found the problem.
    UNKNOWN: the facts needed were not gathered (e.g. the association was refused before the
    question could be asked, or an intrusive test was not enabled). ERROR: the probe or check
    crashed; an error is never reported as a pass.
    """

    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Target:
    """One address to assess, as expanded from the user's target specification.

    `host` is what the user wrote (a name or an address); `address` is the IP address to connect
    to; `ports` are explicit ports given with `host:port` or by an nmap/masscan import (empty
    means: the scan's port list).
    """

    address: str
    host: str | None = None
    ports: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An address and port speaking (or suspected to speak) a protocol."""

    address: str
    port: int
    protocol: str = "dicom"
    hostname: str | None = None

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.protocol}://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Finding:
    """The result of one check on one endpoint, with the evidence that shows it.

    Evidence holds counts, accepted contexts, product names, hashes: never a raw patient value.
    """

    check_id: str
    title: str
    endpoint: Endpoint
    status: Status
    severity: Severity
    evidence: Mapping[str, Any] = field(default_factory=dict)
    intrusive: bool = False
    error: str | None = None


def worst_severity(findings: list[Finding]) -> Severity | None:
    """The highest severity among failed findings, or None when nothing failed."""
    failed = [f.severity for f in findings if f.status is Status.FAIL]
    return max(failed) if failed else None


def exit_code_for(findings: list[Finding]) -> int:
    """Exit code by worst failed severity: 0 nothing failed (or only INFO), 1 low, 2 medium,
    3 high, 4 critical. Usage and runtime errors of the tool itself use 64 and above."""
    worst = worst_severity(findings)
    return 0 if worst is None else int(worst)


@dataclass(frozen=True, slots=True)
class Service:
    """What was identified on an endpoint: protocol, product and version, and a PHI-free summary
    of the facts the probe gathered (accepted contexts, counts, TLS, ...)."""

    endpoint: Endpoint
    product: str | None = None
    version: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScanResult:
    """Everything one scan produced; what the store saves and the reports render."""

    scan_id: str
    started_at: str                      # ISO 8601, UTC
    finished_at: str | None
    targets: tuple[str, ...]             # the target specifications as the user gave them
    options: Mapping[str, Any]           # effective options (ports, timeouts, intrusive, ...)
    services: tuple[Service, ...]
    findings: tuple[Finding, ...]
    interrupted: bool = False
    stats: Mapping[str, Any] = field(default_factory=dict)  # addresses, ports, open, durations
