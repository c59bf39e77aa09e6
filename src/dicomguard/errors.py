"""The exception tree of dicomguard.

Errors of the libraries underneath (socket, ssl, asyncio, pydicom) are translated at the boundary
into these, carrying the target and protocol, so callers handle one tree:

    DicomguardError
    ├── ScopeError                 a target specification could not be parsed or is too large
    │   └── OutOfScopeError        a connection was attempted to an address outside the scope
    ├── ConnectivityError          (address, port, protocol) could not be talked to
    │   ├── ConnectTimeout
    │   ├── ConnectionRefused
    │   └── ReadTimeout            the peer accepted but did not answer in time (tarpit)
    ├── ProtocolError              the peer answered, but not in the protocol (garbage, bad PDU)
    │   └── AssociationRejected    a well-formed A-ASSOCIATE-RJ
    ├── DimseError                 a DIMSE exchange failed inside an established association
    │   └── PeerAborted            the peer answered with A-ABORT
    └── DicomFileError             a file could not be read as DICOM (see dicomfile/)
"""

from __future__ import annotations


class DicomguardError(Exception):
    """Base class of every error dicomguard raises on purpose."""


class ScopeError(DicomguardError):
    """A target specification is invalid or expands beyond the allowed size."""


class OutOfScopeError(ScopeError):
    """A connection to an address that is not in the expanded scope was attempted."""

    def __init__(self, address: str, port: int | None = None) -> None:
        self.address = address
        self.port = port
        where = address if port is None else f"{address}:{port}"
        super().__init__(
            f"{where} is outside the scan scope; connection refused by the scope guard")


class ConnectivityError(DicomguardError):
    """The endpoint could not be reached or stopped answering."""

    def __init__(self, address: str, port: int, protocol: str, reason: str) -> None:
        self.address = address
        self.port = port
        self.protocol = protocol
        self.reason = reason
        super().__init__(f"{protocol}://{address}:{port}: {reason}")


class ConnectTimeout(ConnectivityError):
    pass


class ConnectionRefused(ConnectivityError):
    pass


class ReadTimeout(ConnectivityError):
    pass


class ProtocolError(DicomguardError):
    """The peer answered with something that is not valid for the protocol."""

    def __init__(self, message: str, *, address: str = "", port: int = 0,
                 protocol: str = "dicom") -> None:
        self.address = address
        self.port = port
        self.protocol = protocol
        super().__init__(message)


class AssociationRejected(ProtocolError):
    """A well-formed A-ASSOCIATE-RJ: carries result, source and reason (PS3.8 9.3.4)."""

    def __init__(self, result: int, source: int, reason: int, description: str) -> None:
        self.result = result
        self.source = source
        self.reason = reason
        self.description = description
        super().__init__(f"association rejected: {description}")


class DimseError(DicomguardError):
    """A DIMSE message exchange failed (bad status, malformed response, abort)."""


class PeerAborted(DimseError):
    """The peer sent A-ABORT inside an established association (e.g. Orthanc refusing a
    C-FIND from an AE it does not know)."""

    def __init__(self, message: str, source: int, reason: int) -> None:
        self.source = source
        self.reason = reason
        super().__init__(message)


class DicomFileError(DicomguardError):
    """A file or byte source could not be read as DICOM."""
