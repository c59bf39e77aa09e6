"""Conversions between the models and plain JSON data, shared by the store and the JSON report.

Evidence, facts, options and stats are free-form mappings. Before they are stored or written they
go through `jsonable`, which keeps JSON's own types, turns tuples and sets into lists, enums into
their values and dates into ISO 8601 text, and refuses anything else (bytes, arbitrary objects,
NaN): a value that cannot be shown faithfully is a bug in a check, not something to guess at.
After a round trip, sequences come back as lists.

The raw-PHI guard (`check_no_raw_phi`) lives here too, so the database and the JSON report apply
the same rule.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import Enum
from typing import Any

from dicomguard.models import (
    Endpoint,
    Finding,
    ScanResult,
    Service,
    Severity,
    Status,
)
from dicomguard.store.errors import RawPHIError

JSONValue = None | bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"]


def jsonable(value: Any, *, where: str = "value") -> JSONValue:
    """Return `value` as plain JSON data (dict with str keys, list, str, int, float, bool, None).

    Raises TypeError for a value with no faithful JSON form and ValueError for NaN/infinity.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, Enum):
        return jsonable(value.value, where=where)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value!r} has no JSON form")
        return value
    if isinstance(value, Mapping):
        out: dict[str, JSONValue] = {}
        for key, item in value.items():
            if isinstance(key, Enum):
                key = key.value
            if not isinstance(key, str | int):
                raise TypeError(f"{where}: key {key!r} is not a string")
            out[str(key)] = jsonable(item, where=f"{where}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [jsonable(item, where=f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, set | frozenset):
        items = [jsonable(item, where=f"{where}[]") for item in value]
        return sorted(items, key=repr)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    raise TypeError(f"{where}: {type(value).__name__} value has no JSON form")


def json_object(value: Mapping[str, Any], *, where: str) -> dict[str, JSONValue]:
    """`jsonable` for a mapping, typed as a JSON object."""
    out = jsonable(value, where=where)
    assert isinstance(out, dict)
    return out


# ---------------------------------------------------------------------------------------------
# The raw-PHI guard
#
# The models carry counts and salted hashes only. As a second line of defence, evidence and facts
# are refused when a key that names a patient-identifying attribute holds text. The key is
# compared case-insensitively with punctuation and a trailing "s" removed, so "PatientName",
# "patient_name" and "patient_names" all match; "patient_name_hashes" or "patients_count" do not.
# Numbers, booleans and null under such a key are counts or flags and pass ("patients": 6,
# "PatientName": 12 in a table of attribute counts). The check is skipped when the user asked to
# see PHI (the scan option `show_phi` is true).
# ---------------------------------------------------------------------------------------------

RAW_PHI_KEYS: frozenset[str] = frozenset({
    # DICOM keywords (PS3.6) of attributes that identify a patient, and their snake_case forms
    "patientname", "patientid", "patientbirthdate", "patientbirthtime", "patientbirthname",
    "patientaddress", "patienttelephonenumber", "patientmotherbirthname", "otherpatientname",
    "otherpatientid", "medicalrecordlocator", "accessionnumber", "referringphysicianname",
    # plain words for the same
    "patient", "birthdate", "dateofbirth", "dob",
    # raw samples the probes keep only under show_phi
    "phisample", "phivalue", "rawphi",
})

_NOT_ALNUM = re.compile(r"[^0-9a-z]")


def names_raw_phi(key: str) -> bool:
    """Whether a key names a patient-identifying value (see the rule above)."""
    norm = _NOT_ALNUM.sub("", key.lower())
    return norm in RAW_PHI_KEYS or (norm.endswith("s") and norm[:-1] in RAW_PHI_KEYS)


def _holds_text(value: Any) -> bool:
    if isinstance(value, str | bytes):
        return True
    if isinstance(value, Mapping):
        return any(_holds_text(v) for v in value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_holds_text(v) for v in value)
    return False


def check_no_raw_phi(data: Mapping[str, Any], *, where: str) -> None:
    """Raise RawPHIError when `data` (searched recursively) holds text under a raw-PHI key."""
    for key, value in data.items():
        if isinstance(key, str) and names_raw_phi(key) and _holds_text(value):
            raise RawPHIError(where, key)
        if isinstance(value, Mapping):
            check_no_raw_phi(value, where=f"{where}.{key}")
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    check_no_raw_phi(item, where=f"{where}.{key}[{i}]")


def phi_allowed(options: Mapping[str, Any]) -> bool:
    """Whether the user asked to see PHI for this scan (scan option `show_phi` is true)."""
    return options.get("show_phi") is True


def check_scan_phi(services: Iterable[Service], findings: Iterable[Finding],
                   options: Mapping[str, Any]) -> None:
    """Apply `check_no_raw_phi` to every service's facts and finding's evidence of a scan."""
    if phi_allowed(options):
        return
    for service in services:
        check_no_raw_phi(service.facts, where=f"facts of {service.endpoint}")
    for finding in findings:
        check_no_raw_phi(finding.evidence,
                         where=f"evidence of {finding.check_id} on {finding.endpoint}")


# ---------------------------------------------------------------------------------------------
# Models <-> dicts (the JSON report's shapes; the store uses the same field names as columns)
# ---------------------------------------------------------------------------------------------

def endpoint_to_dict(endpoint: Endpoint) -> dict[str, JSONValue]:
    return {"address": endpoint.address, "port": endpoint.port, "protocol": endpoint.protocol,
            "hostname": endpoint.hostname}


def endpoint_from_dict(data: Mapping[str, Any]) -> Endpoint:
    return Endpoint(address=str(data["address"]), port=int(data["port"]),
                    protocol=str(data["protocol"]), hostname=data.get("hostname"))


def service_to_dict(service: Service) -> dict[str, JSONValue]:
    return {
        "endpoint": endpoint_to_dict(service.endpoint),
        "product": service.product,
        "version": service.version,
        "facts": json_object(service.facts, where=f"facts of {service.endpoint}"),
    }


def service_from_dict(data: Mapping[str, Any]) -> Service:
    return Service(endpoint=endpoint_from_dict(data["endpoint"]), product=data.get("product"),
                   version=data.get("version"), facts=dict(data.get("facts") or {}))


def finding_to_dict(finding: Finding) -> dict[str, JSONValue]:
    return {
        "check_id": finding.check_id,
        "title": finding.title,
        "endpoint": endpoint_to_dict(finding.endpoint),
        "status": finding.status.value,
        "severity": finding.severity.label(),
        "intrusive": finding.intrusive,
        "evidence": json_object(finding.evidence,
                                where=f"evidence of {finding.check_id} on {finding.endpoint}"),
        "error": finding.error,
    }


def finding_from_dict(data: Mapping[str, Any]) -> Finding:
    return Finding(
        check_id=str(data["check_id"]),
        title=str(data["title"]),
        endpoint=endpoint_from_dict(data["endpoint"]),
        status=Status(data["status"]),
        severity=Severity.parse(str(data["severity"])),
        evidence=dict(data.get("evidence") or {}),
        intrusive=bool(data.get("intrusive", False)),
        error=data.get("error"),
    )


# ---------------------------------------------------------------------------------------------
# Counts
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Counts:
    """How many findings of each status, and how many failed findings of each severity.

    Every status and severity is present (0 when none), in the enums' order.
    """

    by_status: Mapping[str, int]
    by_severity: Mapping[str, int]      # FAIL findings only
    worst_severity: Severity | None     # highest severity among FAIL findings
    exit_code: int                      # the same as models.exit_code_for (tests hold them equal)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[Status, Severity, int]]) -> Counts:
        """From (status, severity, number of findings) triples, e.g. a GROUP BY."""
        status: Counter[Status] = Counter()
        failed: Counter[Severity] = Counter()
        for st, sev, n in pairs:
            status[st] += n
            if st is Status.FAIL:
                failed[sev] += n
        worst = max(failed) if failed else None
        return cls(
            by_status={s.value: status[s] for s in Status},
            by_severity={s.label(): failed[s] for s in Severity},
            worst_severity=worst,
            exit_code=0 if worst is None else int(worst),
        )

    @classmethod
    def of(cls, findings: Iterable[Finding]) -> Counts:
        return cls.from_pairs((f.status, f.severity, 1) for f in findings)


def scan_counts(result: ScanResult) -> Counts:
    return Counts.of(result.findings)
