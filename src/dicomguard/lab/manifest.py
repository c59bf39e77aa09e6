"""The lab manifest: what runs where, and what a correct scan must find there.

Written by `start_lab` as `<state_dir>/manifest.json`; tests and `dicomguard demo` read it to
know each service's address, port, product and expected behaviour, so they can assert the exact
findings per service. The JSON is the dataclasses below through `dataclasses.asdict`; the
`schema` number changes when a field changes meaning.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

SCHEMA = 1
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """One lab service and the behaviour it is expected to show.

    `accepts_any_called_ae`: an association with a called AE title other than `ae_title` is
    accepted. `accepts_any_calling_ae`: an unknown calling AE title is accepted.
    `allows_echo` / `allows_find` / `allows_store`: what an *unknown* calling AE (one that is not
    in `known_calling_aes`) may do once associated (None when not applicable, e.g. hostile).
    `known_calling_aes`: calling AE titles the service is configured to trust (they may FIND).
    `patients` / `studies` / `series` / `instances`: what C-FIND (or the REST API) returns.
    """

    name: str
    role: str
    product: str                       # "Orthanc" | "dcmtk" | "pynetdicom" | "hostile"
    address: str
    port: int
    protocol: str = "dicom"            # "dicom" | "tcp" (hostile) | "none" (closed port)
    program: str | None = None         # "Orthanc", "dcmqrscp", "storescp", "python" ...
    expected_version: str | None = None
    version: str | None = None         # what the binary reported at start
    ae_title: str | None = None
    accepts_any_called_ae: bool | None = None
    accepts_any_calling_ae: bool | None = None
    allows_echo: bool | None = None
    allows_find: bool | None = None
    allows_store: bool | None = None
    known_calling_aes: tuple[str, ...] = ()
    patients: int = 0
    studies: int = 0
    series: int = 0
    instances: int = 0
    rest_port: int | None = None       # Orthanc REST API (HTTP), same address
    rest_auth_required: bool | None = None
    rest_username: str | None = None
    rest_password: str | None = None
    dicomweb_path: str | None = None   # e.g. "/dicom-web/" when the DICOMweb plugin is loaded
    behaviour: str | None = None       # hostile: "random-bytes" | "bogus-associate-ac" |
                                       # "tarpit" | "closed"
    # Fingerprints observed on the real products (None when unknown): the identifiers of the
    # A-ASSOCIATE-AC user information, and the A-ASSOCIATE-RJ (result, source, reason) sent for
    # a wrong called AE title / an unknown calling AE title, and whether the server keeps the
    # TCP connection open after such a reject until the client closes it.
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    reject_wrong_called_ae: tuple[int, ...] | None = None
    reject_unknown_calling_ae: tuple[int, ...] | None = None
    holds_connection_after_reject: bool | None = None
    stands_in_for: str | None = None   # a pynetdicom SCP replacing a missing product
    pid: int | None = None
    notes: str = ""

    @property
    def called_ae(self) -> str | None:
        """The AE title to call this service with (alias of `ae_title`)."""
        return self.ae_title

    @property
    def endpoint(self) -> tuple[str, int]:
        return (self.address, self.port)

    @property
    def ports(self) -> tuple[int, ...]:
        """Every TCP port this service listens on (DICOM, then REST)."""
        if self.protocol == "none":
            return ()
        return (self.port,) if self.rest_port is None else (self.port, self.rest_port)


@dataclass(frozen=True, slots=True)
class PatientSpec:
    patient_id: str
    patient_name: str
    birth_date: str
    sex: str
    study_instance_uids: tuple[str, ...]
    modalities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LabManifest:
    """The whole lab: its services, its synthetic patients, and what could not run (why)."""

    state_dir: str
    base_address: str
    seed: int
    started_at: str
    services: tuple[ServiceSpec, ...]
    patients: tuple[PatientSpec, ...]
    data_dir: str
    skipped: tuple[tuple[str, str], ...] = ()   # (service name, reason) for what did not run
    schema: int = SCHEMA
    extra: dict[str, Any] = field(default_factory=dict)

    def service(self, name: str) -> ServiceSpec:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise KeyError(f"no lab service named {name!r}; have {[s.name for s in self.services]}")

    def by_product(self, product: str) -> tuple[ServiceSpec, ...]:
        return tuple(s for s in self.services if s.product == product)

    @property
    def studies(self) -> int:
        return sum(len(p.study_instance_uids) for p in self.patients)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def save(self, state_dir: Path) -> Path:
        path = state_dir / MANIFEST_NAME
        tmp = path.with_suffix(".tmp")
        tmp.touch(mode=0o600)  # it holds the locked Orthanc's REST password
        tmp.write_text(self.to_json() + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabManifest:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"lab manifest schema {data.get('schema')!r}, expected {SCHEMA}")
        services = tuple(_build(ServiceSpec, s) for s in data["services"])
        patients = tuple(_build(PatientSpec, p) for p in data["patients"])
        skipped = tuple((str(a), str(b)) for a, b in data.get("skipped", ()))
        return cls(
            state_dir=data["state_dir"], base_address=data["base_address"], seed=data["seed"],
            started_at=data["started_at"], services=services, patients=patients,
            data_dir=data["data_dir"], skipped=skipped, schema=data["schema"],
            extra=dict(data.get("extra", {})),
        )

    @classmethod
    def load(cls, state_dir: Path) -> LabManifest:
        path = state_dir / MANIFEST_NAME
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


def _build(cls: type[Any], data: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in data:
            value = data[f.name]
            kwargs[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)
