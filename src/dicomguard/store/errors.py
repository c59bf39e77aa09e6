"""Errors raised by the store (and the raw-PHI guard the JSON report shares)."""

from __future__ import annotations

from dicomguard.errors import DicomguardError


class StoreError(DicomguardError):
    """The scan database could not be opened, read or written.

    Errors of SQLAlchemy and the database drivers are translated into this at the store's
    boundary; the URL in the message never carries the password.
    """


class ScanNotFound(StoreError):
    """No scan has this id (or an id starting with this prefix)."""

    def __init__(self, scan_id: str) -> None:
        self.scan_id = scan_id
        super().__init__(f"no scan with id {scan_id!r}")


class AmbiguousScanId(StoreError):
    """A prefix matches more than one scan."""

    def __init__(self, prefix: str, candidates: list[str]) -> None:
        self.prefix = prefix
        self.candidates = candidates
        shown = ", ".join(candidates[:5]) + (", ..." if len(candidates) > 5 else "")
        super().__init__(f"scan id prefix {prefix!r} matches {len(candidates)} scans: {shown}")


class RawPHIError(StoreError):
    """Evidence or facts hold a value under a key that names raw PHI (e.g. `PatientName`),
    and the scan was not run with `show_phi`. See `dicomguard.store.codec.check_no_raw_phi`."""

    def __init__(self, where: str, key: str) -> None:
        self.where = where
        self.key = key
        super().__init__(
            f"refusing to store raw PHI: {where} has a value under {key!r}; patient-identifying "
            "values are kept only when the user asked for them (show_phi)"
        )

