"""The DICOM probe: network I/O only, returns `DicomFacts`.

Safe by default. What it does to an endpoint, in order:

1. One association with a random called AE title and a random calling AE title (titles no site
   has configured), proposing Verification and the SOP class catalogue (one association: the
   catalogue stays under 128 presentation contexts). Its A-ASSOCIATE-AC gives the fingerprint
   (Implementation Class UID / Version Name, max PDU length) and the accepted SOP classes;
   an A-ASSOCIATE-RJ gives the reject source and reason.
2. If the called AE title was refused: the known titles (--aet), and with --guess-aet a short
   list of vendor defaults, one association at a time, each closed at once after its answer
   (Orthanc 1.10 serves nothing else while a rejected association stays open).
3. On an accepted association: C-ECHO, then C-FIND with universal matching at STUDY (Study Root)
   and PATIENT (Patient Root) level and on the Modality Worklist, capped by max_records with
   C-CANCEL. Identifiers become counts and per-scan salted hashes right here.
4. TLS: a handshake on the port when it did not speak clear DICOM, and on 2762 when asked.
5. Intrusive (opt-in): C-STORE of a labelled synthetic instance, C-MOVE to a made-up
   destination, C-GET of one instance (our own test instance when the store succeeded),
   received and discarded.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import secrets
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pydicom.dataset import Dataset

from dicomguard.errors import (
    AssociationRejected,
    ConnectivityError,
    DicomguardError,
    DimseError,
    OutOfScopeError,
    PeerAborted,
    ProtocolError,
)
from dicomguard.models import Endpoint
from dicomguard.net import dicom_sweep, dicom_ul
from dicomguard.net.connector import Connector
from dicomguard.net.pdu import AssociateAccept
from dicomguard.probes import fingerprint, orthanc_rest, sop_catalogue
from dicomguard.probes.facts import (
    AssocAttempt,
    DicomFacts,
    FindFacts,
    IntrusiveFacts,
)
from dicomguard.probes.tls import client_context, probe_tls

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
TRANSFER_SYNTAXES = (EXPLICIT_LE, IMPLICIT_LE)

# AE titles products ship with, tried only with --guess-aet (one attempt each, never a loop).
VENDOR_DEFAULT_AETS: tuple[str, ...] = (
    "ORTHANC", "DCM4CHEE", "STORESCP", "ANY-SCP", "PACS", "DCMQRSCP", "CONQUESTSRV1",
    "OSIRIX", "HOROS", "PYNETDICOM", "QRSCP", "ARCHIVE",
)

# How OpenSSL reports a server that wants a client certificate we do not have.
_CERT_REQUIRED = re.compile(r"CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|certificate required",
                            re.IGNORECASE)

STUDY_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
              "StudyDate", "StudyDescription", "AccessionNumber", "ModalitiesInStudy",
              "ReferringPhysicianName")
PATIENT_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex")
WORKLIST_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber")


def random_ae(prefix: str = "DG") -> str:
    """A 16-character AE title nobody has configured."""
    return (prefix + secrets.token_hex(8)).upper()[:16]


@dataclass(frozen=True, slots=True)
class DicomProbeConfig:
    read_timeout: float = 5.0
    tls_timeout: float = 3.0
    calling_ae: str = field(default_factory=random_ae)
    called_ae: str = field(default_factory=random_ae)
    known_aets: tuple[str, ...] = ()
    guess_aet: bool = False
    max_records: int = 10_000
    query: bool = True          # False: association + C-ECHO + fingerprint + release only
    negotiate_catalogue: bool = True
    tls: bool = True
    tls_port: int | None = 2762
    orthanc_rest_ports: tuple[int, ...] = (8042,)   # second opinion on dcmtk fingerprints
    intrusive: bool = False
    show_phi: bool = False
    salt: bytes = field(default_factory=lambda: secrets.token_bytes(16))


@functools.lru_cache(maxsize=64)
def _contexts(uids: tuple[str, ...]) -> tuple[dicom_ul.PresentationContext, ...]:
    """Presentation contexts proposing `uids` (odd ids from 1); built once per set, so the
    encoded A-ASSOCIATE-RQ cache in net.pdu hits without rebuilding them per endpoint."""
    return tuple(dicom_ul.PresentationContext(2 * i + 1, uid, TRANSFER_SYNTAXES)
                 for i, uid in enumerate(uids))


def salted_hash(salt: bytes, *parts: str) -> str:
    h = hashlib.blake2b(digest_size=12, key=salt[:64])
    for p in parts:
        h.update(p.encode("utf-8", "replace"))
        h.update(b"\x00")
    return h.hexdigest()


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


class _FindTally:
    """Reduces C-FIND responses to counts and salted hashes as they arrive."""

    def __init__(self, salt: bytes, show_phi: bool) -> None:
        self.salt = salt
        self.show_phi = show_phi
        self.patients: set[str] = set()
        self.studies: set[str] = set()
        self.records = 0
        self.attributes: set[str] = set()
        self.sample: list[str] = []
        self.first_study_uid: str | None = None

    def add(self, ds: Dataset) -> None:
        self.records += 1
        for elem in ds:
            if elem.keyword and elem.keyword not in ("QueryRetrieveLevel",
                                                     "SpecificCharacterSet",
                                                     "RetrieveAETitle") and elem.value not in (
                    None, "", b""):
                self.attributes.add(elem.keyword)
        pid, name = _text(ds, "PatientID"), _text(ds, "PatientName")
        if pid or name:
            self.patients.add(salted_hash(self.salt, pid, name))
            if self.show_phi and len(self.sample) < 5:
                self.sample.append(f"{name} / {pid}")
        study = _text(ds, "StudyInstanceUID")
        if study:
            self.studies.add(salted_hash(self.salt, study))
            if self.first_study_uid is None:
                self.first_study_uid = study  # kept in memory for C-GET/C-MOVE only


class DicomProber:
    """Probes one endpoint; one association open at a time (the per-host cap stays exact).

    Facts accumulate in a plain dict while the probe runs and are frozen once at the end.
    """

    def __init__(self, connector: Connector, cfg: DicomProbeConfig) -> None:
        self.connector = connector
        self.cfg = cfg
        uids = sop_catalogue.ALL_UIDS if cfg.negotiate_catalogue else (
            sop_catalogue.VERIFICATION,)
        self.contexts = _contexts(uids)
        self.ssl_context: ssl.SSLContext | None = None   # set once the port proved to be TLS

    async def probe(self, endpoint: Endpoint) -> DicomFacts:
        cfg = self.cfg
        acc: dict[str, Any] = {"extra": {}}
        wildcard = await self._session(endpoint, cfg.called_ae, acc)
        if wildcard.error and not acc.get("is_dicom"):
            acc["error"] = wildcard.error
            # Something answered, but not DICOM: it may be DICOM over TLS. Not after a refused
            # or timed-out connection: a TLS server would have answered our bytes at once.
            if not (cfg.tls and isinstance(wildcard.failure, ProtocolError)):
                acc["wildcard"] = wildcard
                return DicomFacts(endpoint=endpoint, **acc)
            tls = await probe_tls(self.connector, endpoint.address, endpoint.port,
                                  timeout=cfg.tls_timeout)
            acc["tls"] = tls
            if not tls.handshake:
                acc["wildcard"] = wildcard
                return DicomFacts(endpoint=endpoint, **acc)
            self.ssl_context = client_context()
            wildcard = await self._session(endpoint, cfg.called_ae, acc)
            if not acc.get("is_dicom"):
                acc["wildcard"] = wildcard
                if wildcard.error and _CERT_REQUIRED.search(wildcard.error):
                    acc["tls"] = replace(tls, client_certificate_required=True)
                return DicomFacts(endpoint=endpoint, **acc)
            del acc["error"]
            acc["tls"] = replace(tls, dicom_over_tls=True)
        acc["wildcard"] = wildcard
        if not wildcard.accepted and wildcard.called_ae_refused:
            candidates = list(dict.fromkeys(
                list(cfg.known_aets) + (list(VENDOR_DEFAULT_AETS) if cfg.guess_aet else [])))
            attempts = []
            for called in candidates:
                attempt = await self._session(endpoint, called, acc)
                attempts.append(attempt)
                if attempt.accepted or attempt.calling_ae_refused:
                    break
            acc["known_ae_attempts"] = tuple(attempts)
            if any(a.calling_ae_refused for a in attempts):
                acc["random_calling_accepted"] = False
        elif not wildcard.accepted and wildcard.calling_ae_refused:
            acc["random_calling_accepted"] = False

        if acc.get("product") == "dcmtk" and cfg.orthanc_rest_ports:
            await self._refine_orthanc(endpoint, acc)

        if cfg.tls and cfg.tls_port and cfg.tls_port != endpoint.port and acc.get("is_dicom"):
            acc["tls_alt"] = await probe_tls(self.connector, endpoint.address, cfg.tls_port,
                                             timeout=cfg.tls_timeout)
        first_study = acc["extra"].pop("_first_study_uid", None)  # memory only, never stored
        facts = DicomFacts(endpoint=endpoint, **acc)
        if cfg.intrusive:
            intrusive = IntrusiveFacts(skipped="no association for an unknown AE") \
                if facts.accepted_called_ae is None else \
                await self._intrusive(endpoint, facts, first_study)
            facts = replace(facts, intrusive=intrusive)
        return facts

    async def _session(self, endpoint: Endpoint, called_ae: str,
                       acc: dict[str, Any]) -> AssocAttempt:
        """One association: negotiate, and when accepted, echo, query and release."""
        cfg = self.cfg
        if not (cfg.query or cfg.negotiate_catalogue) and self.ssl_context is None:
            return await self._sweep_session(endpoint, called_ae, acc)
        try:
            async with self.connector.open(endpoint.address, endpoint.port, "dicom",
                                           ssl_context=self.ssl_context) as (reader, writer):
                try:
                    assoc = await dicom_ul.associate(
                        reader, writer, called_ae=called_ae, calling_ae=cfg.calling_ae,
                        contexts=self.contexts, read_timeout=cfg.read_timeout,
                        peer=(endpoint.address, endpoint.port))
                except AssociationRejected as rj:
                    acc["is_dicom"] = True
                    return AssocAttempt(called_ae, cfg.calling_ae, False, rj.result, rj.source,
                                        rj.reason, rj.description)
                self._accept_facts(acc, assoc.accept, called_ae)
                try:
                    await self._use(assoc, acc)
                finally:
                    await self._release(assoc)
                return AssocAttempt(called_ae, cfg.calling_ae, True)
        except OutOfScopeError:
            raise  # never a property of the endpoint: the scan itself is wrong
        except DicomguardError as exc:
            return AssocAttempt(called_ae, cfg.calling_ae, False, error=str(exc), failure=exc)

    async def _sweep_session(self, endpoint: Endpoint, called_ae: str,
                             acc: dict[str, Any]) -> AssocAttempt:
        """The quick probe's association + C-ECHO + release on the callback fast path."""
        cfg = self.cfg
        try:
            res = await dicom_sweep.echo_sweep(
                self.connector, endpoint.address, endpoint.port, called_ae=called_ae,
                calling_ae=cfg.calling_ae, read_timeout=cfg.read_timeout)
        except OutOfScopeError:
            raise
        except DicomguardError as exc:
            return AssocAttempt(called_ae, cfg.calling_ae, False, error=str(exc), failure=exc)
        if res.reject is not None:
            rj = res.reject
            acc["is_dicom"] = True
            return AssocAttempt(called_ae, cfg.calling_ae, False, rj.result, rj.source,
                                rj.reason, rj.description)
        if res.accept is None:
            return AssocAttempt(called_ae, cfg.calling_ae, False, error=res.error,
                                failure=res.failure)
        self._accept_facts(acc, res.accept, called_ae)
        if res.echo_status is not None:
            acc["echo_status"] = res.echo_status
        elif res.error:
            acc["extra"]["echo_error"] = res.error
        return AssocAttempt(called_ae, cfg.calling_ae, True)

    async def _refine_orthanc(self, endpoint: Endpoint, acc: dict[str, Any]) -> None:
        info = await orthanc_rest.identify(
            self.connector, endpoint.address,
            tuple(p for p in self.cfg.orthanc_rest_ports if p != endpoint.port),
            timeout=self.cfg.read_timeout)
        if info is None or not info.serves(endpoint.port):
            return
        acc["extra"]["built_on"] = f"dcmtk {acc.get('version') or ''}".strip()
        acc["extra"]["orthanc_rest"] = {"port": info.rest_port,
                                        "authentication": info.authentication,
                                        "dicom_port_matches": info.dicom_port == endpoint.port}
        acc.update(product="Orthanc", version=info.version,
                   fingerprint_verified=fingerprint.ORTHANC_VERIFIED)

    @staticmethod
    async def _release(assoc: dicom_ul.Association) -> None:
        try:
            await assoc.release()
        except DicomguardError:
            with contextlib.suppress(DicomguardError):
                await assoc.abort()

    @staticmethod
    def _accept_facts(acc: dict[str, Any], ac: AssociateAccept, called_ae: str) -> None:
        fp = fingerprint.identify(ac.implementation_class_uid, ac.implementation_version_name)
        acc.update(
            is_dicom=True, accepted_called_ae=called_ae, random_calling_accepted=True,
            implementation_class_uid=ac.implementation_class_uid,
            implementation_version_name=ac.implementation_version_name,
            max_pdu_length=ac.max_pdu_length,
            product=fp.product if fp else None, version=fp.version if fp else None,
            fingerprint_verified=fp.verified if fp else False,
            accepted_sop_classes=tuple(c.abstract_syntax for c in ac.contexts if c.result == 0),
            rejected_sop_classes=sum(1 for c in ac.contexts if c.result != 0))

    async def _use(self, assoc: dicom_ul.Association, acc: dict[str, Any]) -> None:
        if assoc.accepted(sop_catalogue.VERIFICATION) is not None:
            try:
                acc["echo_status"] = await assoc.c_echo()
            except DicomguardError as exc:
                acc["extra"]["echo_error"] = str(exc)
        if self.cfg.query:
            find, first_study = await self._find(assoc)
            if find is not None:
                acc["find"] = find
            if first_study:
                acc["extra"]["_first_study_uid"] = first_study

    async def _find(self, assoc: dicom_ul.Association) -> tuple[FindFacts | None, str | None]:
        cfg = self.cfg
        tally = _FindTally(cfg.salt, cfg.show_phi)
        levels: list[str] = []
        models: list[str] = []
        status: int | None = None
        truncated = False
        errors: list[str] = []
        worklist_items: int | None = None
        queries: list[tuple[str, str, tuple[str, ...]]] = []
        if assoc.accepted(sop_catalogue.STUDY_ROOT_FIND):
            queries.append((sop_catalogue.STUDY_ROOT_FIND, "STUDY", STUDY_KEYS))
        if assoc.accepted(sop_catalogue.PATIENT_ROOT_FIND):
            queries.append((sop_catalogue.PATIENT_ROOT_FIND, "PATIENT", PATIENT_KEYS))
        if assoc.accepted(sop_catalogue.WORKLIST_FIND):
            queries.append((sop_catalogue.WORKLIST_FIND, "", WORKLIST_KEYS))
        if not queries:
            return None, None
        refusals: list[str] = []
        for uid, level, keys in queries:
            remaining = cfg.max_records - tally.records
            if remaining <= 0:
                truncated = True
                break
            ds = Dataset()
            if level:
                ds.QueryRetrieveLevel = level
            for key in keys:
                setattr(ds, key, "")
            if not level:  # Modality Worklist: universal Scheduled Procedure Step
                sps = Dataset()
                sps.Modality = ""
                sps.ScheduledProcedureStepStartDate = ""
                ds.ScheduledProcedureStepSequence = [sps]
            before = tally.records
            name = level or "WORKLIST"
            try:
                res = await assoc.c_find(uid, ds, max_records=remaining)
            except PeerAborted as exc:
                # The server refused the query by aborting (Orthanc does this for unknown AEs);
                # the association is gone, so no further query can run.
                refusals.append(f"{name}: A-ABORT (source {exc.source}, reason {exc.reason})")
                break
            except (DimseError, ProtocolError, ConnectivityError) as exc:
                errors.append(f"{name}: {exc}")
                break
            for match in res.matches:
                tally.add(match)
            status = res.status
            truncated = truncated or res.truncated
            if res.status is None:
                errors.append(f"{name}: {res.error or 'no final response'}")
            elif res.status not in (0x0000, 0xFE00) and not res.matches:
                refusals.append(f"{name}: status 0x{res.status:04X}")
                continue
            models.append(sop_catalogue.NAME_BY_UID.get(uid, uid))
            if level:
                levels.append(level)
            else:
                worklist_items = tally.records - before
        find = FindFacts(
            levels=tuple(levels), information_models=tuple(models), status=status,
            studies=len(tally.studies), patients=len(tally.patients), records=tally.records,
            truncated=truncated, attributes_returned=tuple(sorted(tally.attributes)),
            worklist_items=worklist_items, error="; ".join(errors) or None,
            refused="; ".join(refusals) or None,
            phi_sample=tuple(tally.sample))
        return find, tally.first_study_uid

    async def _intrusive(self, endpoint: Endpoint, facts: DicomFacts,
                         study_uid: str | None) -> IntrusiveFacts:
        """Opt-in tests that write to or pull from the device, each clearly labelled.

        Each test runs on its own association, so a server that aborts one (Orthanc refuses
        by A-ABORT) is still asked the next question. An A-ABORT or a failure status in answer
        to a request is a refusal; a broken connection is an error.
        """
        from dicomguard.probes.test_instance import make_test_instance

        called = facts.accepted_called_ae or self.cfg.called_ae
        storage = tuple(uid for _, uid in sop_catalogue.CATALOGUE["storage"])
        out: dict[str, Any] = {}
        instance = make_test_instance()

        async def store(assoc: dicom_ul.Association) -> None:
            status = await assoc.c_store(instance, sop_class_uid=instance.SOPClassUID,
                                         sop_instance_uid=instance.SOPInstanceUID)
            out["store_status"] = status
            nonlocal study_uid
            if status == 0 or (status & 0xF000) == 0xB000:
                study_uid = instance.StudyInstanceUID  # retrieve our own instance, not a patient's

        def identifier() -> Dataset:
            ident = Dataset()
            ident.QueryRetrieveLevel = "STUDY"
            ident.StudyInstanceUID = study_uid or f"2.25.{secrets.randbits(100)}"
            return ident

        async def move(assoc: dicom_ul.Association) -> None:
            mv = await assoc.c_move(sop_catalogue.STUDY_ROOT_MOVE, identifier(),
                                    move_destination=random_ae("DGNODEST"))
            out["move_status"] = mv.status
            if mv.status is None:
                out["move_error"] = mv.error or "no final C-MOVE response"

        async def get(assoc: dicom_ul.Association) -> None:
            got = await assoc.c_get(sop_catalogue.STUDY_ROOT_GET, identifier(), max_instances=1)
            out["get_status"], out["get_instances"] = got.status, got.instances_received
            if got.status is None and not got.instances_received:
                out["get_error"] = got.move.error or "no final C-GET response"

        await self._one_test(endpoint, called, "store", (instance.SOPClassUID,), (), store, out)
        await self._one_test(endpoint, called, "move", (sop_catalogue.STUDY_ROOT_MOVE,), (),
                             move, out)
        if study_uid:
            await self._one_test(endpoint, called, "get", (sop_catalogue.STUDY_ROOT_GET,
                                                           *storage), storage, get, out)
        return IntrusiveFacts(**out)

    async def _one_test(self, endpoint: Endpoint, called: str, name: str,
                        uids: tuple[str, ...], roles: tuple[str, ...],
                        run: Callable[[dicom_ul.Association], Awaitable[None]],
                        out: dict[str, Any]) -> None:
        cfg = self.cfg
        try:
            async with self.connector.open(endpoint.address, endpoint.port, "dicom",
                                           ssl_context=self.ssl_context) as (reader, writer):
                assoc = await dicom_ul.associate(
                    reader, writer, called_ae=called, calling_ae=cfg.calling_ae,
                    contexts=_contexts(uids), read_timeout=cfg.read_timeout,
                    scp_scu_roles=roles, peer=(endpoint.address, endpoint.port))
                if assoc.accepted(uids[0]) is None:
                    out[f"{name}_refused"] = "presentation context not accepted"
                    await self._release(assoc)
                    return
                try:
                    await run(assoc)
                except PeerAborted as exc:
                    out[f"{name}_refused"] = f"A-ABORT (source {exc.source}, reason {exc.reason})"
                    return
                await self._release(assoc)
        except AssociationRejected as rj:
            out[f"{name}_refused"] = f"association rejected: {rj.description}"
        except OutOfScopeError:
            raise
        except DicomguardError as exc:
            out[f"{name}_error"] = str(exc)


async def probe(endpoint: Endpoint, connector: Connector, cfg: DicomProbeConfig) -> DicomFacts:
    """Probe one endpoint. Never raises for what the peer does; errors land in the facts."""
    try:
        return await DicomProber(connector, cfg).probe(endpoint)
    except OutOfScopeError:
        raise
    except DicomguardError as exc:
        return DicomFacts(endpoint=endpoint, error=str(exc))

