"""HTTP-004: an open web directory listing exposes DICOM files."""

from __future__ import annotations

from dicomguard.checks.base import CheckMeta, Outcome
from dicomguard.models import Severity, Status
from dicomguard.probes.http import HttpFacts

META = CheckMeta(
    id="HTTP-004",
    protocol="http",
    severity=Severity.CRITICAL,
    title="Open directory listing exposes DICOM files",
    risk=(
        "Every file in the listed folders can be downloaded by anyone who reaches the web "
        "server; DICOM headers carry names, IDs, birth dates and the images themselves. Such "
        "listings are indexed by search engines and found by mass scans."
    ),
    remediation=(
        "Turn directory listings off (nginx: \"autoindex off;\", Apache: \"Options "
        "-Indexes\", IIS: directoryBrowse enabled=\"false\"), move images out of the web root "
        "or behind authentication, and remove export folders that are no longer needed."
    ),
    references=(
        "https://nginx.org/en/docs/http/ngx_http_autoindex_module.html",
        "https://httpd.apache.org/docs/2.4/mod/core.html#options",
        "CWE-548: Exposure of Information Through Directory Listing",
    ),
)

_KEYS = ("dicom_files", "patients", "studies", "series", "modalities", "phi_attributes",
         "top_folders", "files_sampled", "bytes_read", "directories", "entries",
         "limits_reached", "errors")


def evaluate(facts: HttpFacts) -> Outcome:
    if not facts.reachable:
        return Outcome(Status.UNKNOWN, {"reason": facts.error or "no HTTP answer"})
    listing = facts.listing
    if listing is None:
        return Outcome(Status.PASS, {"reason": "no open directory listing at the root"})
    evidence = {"path": listing.path, "server": listing.server,
                **{k: listing.walk[k] for k in _KEYS if k in listing.walk}}
    if listing.dicom_files == 0:
        return Outcome(Status.PASS, evidence)
    return Outcome(Status.FAIL, evidence,
                   severity=Severity.CRITICAL if listing.patients > 0 else Severity.HIGH)
