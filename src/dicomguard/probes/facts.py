"""Typed facts the probes gather and the checks read.

Facts are PHI-free: patient identifiers are reduced to counts and per-scan salted hashes before
they reach this module; raw values exist only in `FindFacts.phi_sample` and only when the user
asked for them with --show-phi.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dicomguard.models import Endpoint


@dataclass(frozen=True, slots=True)
class AssocAttempt:
    """One A-ASSOCIATE-RQ and what came back."""

    called_ae: str
    calling_ae: str
    accepted: bool
    reject_result: int | None = None      # PS3.8 Table 9-21: 1 permanent, 2 transient
    reject_source: int | None = None      # 1 service-user, 2 ACSE provider, 3 presentation
    reject_reason: int | None = None
    reject_description: str | None = None
    error: str | None = None               # connectivity/protocol error instead of an answer
    failure: Exception | None = field(default=None, compare=False, repr=False)

    @property
    def called_ae_refused(self) -> bool:
        """Rejected by the service user because the called AE title is not recognised."""
        return (not self.accepted and self.reject_source == 1 and self.reject_reason == 7)

    @property
    def calling_ae_refused(self) -> bool:
        """Rejected by the service user because the calling AE title is not recognised."""
        return (not self.accepted and self.reject_source == 1 and self.reject_reason == 3)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"called_ae": self.called_ae, "accepted": self.accepted}
        if self.reject_description:
            out["reject"] = self.reject_description
        if self.error:
            out["error"] = self.error
        return out


@dataclass(frozen=True, slots=True)
class FindFacts:
    """C-FIND with universal matching, reduced to counts."""

    levels: tuple[str, ...] = ()           # e.g. ("STUDY", "PATIENT")
    information_models: tuple[str, ...] = ()
    status: int | None = None              # final DIMSE status of the last query
    studies: int = 0
    patients: int = 0                      # distinct salted hashes of PatientID + PatientName
    records: int = 0                       # responses received over all queries
    truncated: bool = False                # stopped at --max-records with C-CANCEL
    attributes_returned: tuple[str, ...] = ()   # keywords that came back non-empty
    worklist_items: int | None = None
    error: str | None = None
    refused: str | None = None             # the server refused the query (A-ABORT, failure)
    phi_sample: tuple[str, ...] = ()       # only with --show-phi

    @property
    def discloses(self) -> bool:
        return self.records > 0


@dataclass(frozen=True, slots=True)
class TlsFacts:
    port: int
    handshake: bool
    protocol: str | None = None            # "TLSv1.3", ...
    cipher: str | None = None
    certificate_subject: str | None = None
    dicom_over_tls: bool | None = None     # an association succeeded or was answered over TLS
    client_certificate_required: bool | None = None  # the server refused us without one
    error: str | None = None


@dataclass(frozen=True, slots=True)
class IntrusiveFacts:
    """Results of the opt-in tests that write to or pull from the device."""

    skipped: str | None = None             # why no test could run (no association)
    store_status: int | None = None        # C-STORE of the labelled synthetic test instance
    store_refused: str | None = None       # refused by A-ABORT, rejection or context refusal
    store_error: str | None = None
    move_status: int | None = None         # C-MOVE to a made-up destination
    move_refused: str | None = None
    move_error: str | None = None
    get_status: int | None = None          # C-GET of one instance, discarded
    get_instances: int = 0
    get_refused: str | None = None
    get_error: str | None = None


@dataclass(frozen=True, slots=True)
class DicomFacts:
    endpoint: Endpoint
    is_dicom: bool = False                 # a fully valid A-ASSOCIATE-AC or -RJ came back
    error: str | None = None               # why the endpoint could not be probed (not DICOM, ...)
    wildcard: AssocAttempt | None = None   # random called AE ("ANY-SCP"-style) + random calling AE
    known_ae_attempts: tuple[AssocAttempt, ...] = ()   # --aet / --guess-aet called AE titles
    accepted_called_ae: str | None = None  # the called AE title an unknown caller got in with
    random_calling_accepted: bool | None = None
    echo_status: int | None = None
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    max_pdu_length: int | None = None
    product: str | None = None
    version: str | None = None
    fingerprint_verified: bool = False
    accepted_sop_classes: tuple[str, ...] | None = None    # None: never negotiated
    rejected_sop_classes: int = 0
    find: FindFacts | None = None
    tls: TlsFacts | None = None            # TLS on this port
    tls_alt: TlsFacts | None = None        # TLS on the DICOM-TLS port (2762) of the same host
    intrusive: IntrusiveFacts | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def associated(self) -> bool:
        """Some unknown caller got an association."""
        return self.accepted_called_ae is not None
