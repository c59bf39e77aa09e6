"""Orthanc's REST API as a second opinion on a DICOM fingerprint.

Orthanc is built on dcmtk's network layer and announces dcmtk's Implementation Class UID and
Version Name, so the A-ASSOCIATE-AC alone says "dcmtk". Its REST API tells the truth: `/system`
returns Name, Version, DicomAet and DicomPort (when authentication is off), and a 401 with the
realm "Orthanc Secure Area" when it is on. A match of DicomPort with the DICOM port probed
proves both ports belong to the same Orthanc. One GET per REST port, nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from dicomguard.errors import DicomguardError
from dicomguard.net import http
from dicomguard.net.connector import Connector

REALM_MARKER = "orthanc"


@dataclass(frozen=True, slots=True)
class OrthancInfo:
    rest_port: int
    version: str | None            # None when the REST API requires authentication
    authentication: bool
    dicom_port: int | None = None  # what /system announces
    dicom_aet: str | None = None

    def serves(self, dicom_port: int) -> bool:
        return self.dicom_port is None or self.dicom_port == dicom_port


async def identify(connector: Connector, address: str, rest_ports: tuple[int, ...], *,
                   timeout: float) -> OrthancInfo | None:
    """The first REST port that answers as Orthanc, or None."""
    for port in rest_ports:
        try:
            resp = await http.request(connector, address, port, "/system", timeout=timeout,
                                      max_body=64 * 1024)
        except DicomguardError:
            continue
        if resp.status == 401 and REALM_MARKER in (resp.header("www-authenticate") or "").lower():
            return OrthancInfo(port, None, True)
        if resp.status != 200:
            continue
        try:
            doc = json.loads(resp.body)
        except ValueError:
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("Version"), str) or \
                "DicomAet" not in doc:
            continue
        dicom_port = doc.get("DicomPort")
        aet = doc.get("DicomAet")
        return OrthancInfo(port, doc["Version"], False,
                           dicom_port if isinstance(dicom_port, int) else None,
                           aet if isinstance(aet, str) else None)
    return None
