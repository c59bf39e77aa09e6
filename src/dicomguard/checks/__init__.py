"""The check catalogue: an explicit list, one line a check (no import side effects).

To add a check: write checks/<protocol>_<nnn>_<what>.py with META and evaluate(facts), add its
line below, add its unit test in tests/checks/. IDs are permanent: never renumber or reuse one.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from dicomguard.checks.base import Check, CheckMeta, Outcome, validate_registry

# One line a check, in any order (the catalogue is sorted by ID).
_MODULE_NAMES: tuple[str, ...] = (
    "dicom_001_any_called_ae",
    "dicom_002_any_calling_ae",
    "dicom_003_cfind_discloses_patients",
    "dicom_004_services_offered",
    "dicom_005_no_tls",
    "dicom_006_vulnerable_version",
    "dicom_007_store_accepted",
    "dicom_008_move_accepted",
    "dicom_009_get_returns_images",
    "dicom_010_service_reachable",
    "ftp_001_anonymous_dicom",
    "ftp_002_anonymous_login",
    "ftp_003_no_tls",
    "ftp_004_anonymous_writable",
    "ftp_005_vulnerable_version",
    "http_001_web_pacs_no_auth",
    "http_002_default_credentials",
    "http_003_dicomweb_open",
    "http_004_directory_listing_dicom",
    "http_005_vulnerable_version",
    "http_006_no_tls",
    "nfs_001_export_to_everyone",
    "nfs_002_exports_listed",
    "smb_001_guest_share_dicom",
    "smb_002_guest_access",
    "smb_003_smb1_enabled",
    "smb_004_signing_not_required",
)
_MODULES: tuple[ModuleType, ...] = tuple(
    importlib.import_module(f"dicomguard.checks.{name}") for name in _MODULE_NAMES)

CHECKS: tuple[Check, ...] = tuple(sorted((Check(m.META, m.evaluate) for m in _MODULES),
                                          key=lambda c: c.meta.id))
validate_registry(CHECKS)

__all__ = ["CHECKS", "Check", "CheckMeta", "Outcome", "by_id", "for_protocol"]


_BY_PROTOCOL: dict[str, tuple[Check, ...]] = {}
for _check in CHECKS:
    _BY_PROTOCOL[_check.meta.protocol] = (*_BY_PROTOCOL.get(_check.meta.protocol, ()), _check)


def for_protocol(protocol: str) -> tuple[Check, ...]:
    return _BY_PROTOCOL.get(protocol, ())


def by_id(check_id: str) -> Check:
    for c in CHECKS:
        if c.meta.id == check_id:
            return c
    raise KeyError(check_id)
