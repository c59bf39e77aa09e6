"""The scan store: the only code in dicomguard that speaks SQL.

    store = Store()                                   # SQLite file in the user data directory
    store = Store("postgresql+psycopg2://u@host/db")  # or any SQLAlchemy URL (--db URL)
    store = Store("/path/to/scans.sqlite3")           # a plain path means an SQLite file

Two ways to save a scan:

- `save_scan(result)` writes a finished ScanResult in one transaction: all of it or nothing.
- Incrementally, so that Ctrl-C (or a crash) keeps what was already found: `begin_scan(...)` when
  the scan starts, `add_services(...)` / `add_findings(...)` as results arrive (each call commits),
  then `finish_scan(scan_id, interrupted=...)`. A scan that was begun and never finished lists with
  `finished_at` None and state "unfinished".

Tables are created on first use; the `meta` table records the schema version. Every SQLAlchemy or
driver error is translated into `StoreError` here. Before anything is written, evidence and facts
pass the raw-PHI guard (`codec.check_no_raw_phi`) unless the scan's options say `show_phi`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from dicomguard import __version__
from dicomguard.models import Endpoint, Finding, ScanResult, Service, Severity, Status
from dicomguard.store.codec import Counts, check_scan_phi, json_object
from dicomguard.store.errors import AmbiguousScanId, ScanNotFound, StoreError
from dicomguard.store.schema import (
    SCHEMA_VERSION,
    Base,
    FindingRow,
    Meta,
    ScanRow,
    ServiceRow,
)

DEFAULT_DB_FILENAME = "dicomguard.sqlite3"
MAX_SCAN_ID_LENGTH = 64


def default_db_path() -> Path:
    """The SQLite file used when no URL is given (the directory is created)."""
    directory = Path(platformdirs.user_data_dir("dicomguard", appauthor=False))
    directory.mkdir(parents=True, exist_ok=True)
    return directory / DEFAULT_DB_FILENAME


def resolve_url(url: str | None) -> str:
    """The SQLAlchemy URL for `url`: None means the default SQLite file, text without `://`
    a path to an SQLite file (its directory is created), anything else is used as given."""
    if url is None:
        return f"sqlite:///{default_db_path()}"
    if "://" not in url:
        path = Path(url).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    return url


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class ScanSummary:
    """One line of `Store.list_scans`."""

    scan_id: str
    started_at: str
    finished_at: str | None
    targets: tuple[str, ...]
    interrupted: bool
    services: int
    counts: Counts

    @property
    def state(self) -> str:
        """"interrupted", "finished", or "unfinished" (begun, never finished: still running or
        the process died)."""
        if self.interrupted:
            return "interrupted"
        return "finished" if self.finished_at is not None else "unfinished"


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Store:
    """Saves and loads scan results. Use as a context manager, or call `close()`."""

    def __init__(self, url: str | None = None, *, echo: bool = False) -> None:
        resolved = resolve_url(url)
        try:
            parsed = make_url(resolved)
        except ArgumentError as exc:
            raise StoreError(f"not a database URL: {url!r}") from exc
        self.url = parsed.render_as_string(hide_password=True)
        try:
            self._engine: Engine = create_engine(parsed, echo=echo)
        except ModuleNotFoundError as exc:
            extra = " (pip install 'dicomguard[postgres]')" if parsed.get_backend_name() \
                == "postgresql" else ""
            raise StoreError(f"{self.url}: requires the {exc.name} module{extra}") from exc
        except (SQLAlchemyError, ValueError) as exc:
            raise StoreError(f"{self.url}: {exc}") from exc
        if self._engine.dialect.name == "sqlite":
            event.listen(self._engine, "connect", _enable_sqlite_foreign_keys)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        self._ready = False

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        """"sqlite", "postgresql", ..."""
        return self._engine.dialect.name

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """A session in a transaction that commits on success; errors become StoreError."""
        try:
            if not self._ready:
                self._create_schema()
            with self._sessions.begin() as session:
                yield session
        except SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise StoreError(f"{self.url}: {str(reason).strip()}") from exc

    def _create_schema(self) -> None:
        Base.metadata.create_all(self._engine)
        with self._sessions.begin() as session:
            row = session.get(Meta, "schema_version")
            if row is None:
                session.add(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
            elif int(row.value) > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.url}: database schema version {row.value} is newer than this "
                    f"dicomguard ({__version__}) supports ({SCHEMA_VERSION}); upgrade dicomguard")
        self._ready = True

    def schema_version(self) -> int:
        with self._session() as session:
            row = session.get(Meta, "schema_version")
            assert row is not None
            return int(row.value)

    # -- writing -----------------------------------------------------------------------------

    def save_scan(self, result: ScanResult) -> None:
        """Write a whole scan in one transaction. Raises StoreError if the id exists, and
        RawPHIError (a StoreError) if evidence or facts hold raw PHI without show_phi."""
        check_scan_phi(result.services, result.findings, result.options)
        row = self._scan_row(result.scan_id, result.started_at, result.targets, result.options)
        row.finished_at = result.finished_at
        row.interrupted = result.interrupted
        row.stats = json_object(result.stats, where="stats")
        services = [_service_row(result.scan_id, s) for s in result.services]
        findings = [_finding_row(result.scan_id, f) for f in result.findings]
        with self._session() as session:
            self._refuse_existing(session, result.scan_id)
            session.add(row)
            session.add_all(services)
            session.add_all(findings)

    def begin_scan(self, scan_id: str, *, started_at: str | None = None,
                   targets: Sequence[str] = (), options: Mapping[str, Any] | None = None) -> None:
        """Record that a scan started (committed at once). `started_at` defaults to now."""
        row = self._scan_row(scan_id, started_at or utc_now(), targets, options or {})
        with self._session() as session:
            self._refuse_existing(session, scan_id)
            session.add(row)

    def add_services(self, scan_id: str, services: Iterable[Service]) -> None:
        """Append services to a begun, unfinished scan (one transaction, committed)."""
        services = list(services)
        with self._session() as session:
            scan = self._open_scan(session, scan_id)
            check_scan_phi(services, (), scan.options)
            session.add_all(_service_row(scan_id, s) for s in services)

    def add_findings(self, scan_id: str, findings: Iterable[Finding]) -> None:
        """Append findings to a begun, unfinished scan (one transaction, committed)."""
        findings = list(findings)
        with self._session() as session:
            scan = self._open_scan(session, scan_id)
            check_scan_phi((), findings, scan.options)
            session.add_all(_finding_row(scan_id, f) for f in findings)

    def finish_scan(self, scan_id: str, *, interrupted: bool = False,
                    finished_at: str | None = None,
                    stats: Mapping[str, Any] | None = None) -> None:
        """Mark a begun scan finished (or interrupted); `finished_at` defaults to now."""
        with self._session() as session:
            scan = self._open_scan(session, scan_id)
            scan.finished_at = finished_at or utc_now()
            scan.interrupted = interrupted
            if stats is not None:
                scan.stats = json_object(stats, where="stats")

    @staticmethod
    def _scan_row(scan_id: str, started_at: str, targets: Sequence[str],
                  options: Mapping[str, Any]) -> ScanRow:
        if not scan_id or len(scan_id) > MAX_SCAN_ID_LENGTH:
            raise StoreError(f"scan id must be 1 to {MAX_SCAN_ID_LENGTH} characters: {scan_id!r}")
        return ScanRow(id=scan_id, started_at=started_at, finished_at=None, interrupted=False,
                       targets=[str(t) for t in targets],
                       options=json_object(options, where="options"), stats={},
                       tool_version=__version__)

    @staticmethod
    def _refuse_existing(session: Session, scan_id: str) -> None:
        if session.get(ScanRow, scan_id) is not None:
            raise StoreError(f"a scan with id {scan_id!r} is already stored")

    @staticmethod
    def _open_scan(session: Session, scan_id: str) -> ScanRow:
        scan = session.get(ScanRow, scan_id)
        if scan is None:
            raise ScanNotFound(scan_id)
        if scan.finished_at is not None:
            raise StoreError(f"scan {scan_id!r} is already finished")
        return scan

    # -- reading -----------------------------------------------------------------------------

    def resolve_scan_id(self, scan_id: str) -> str:
        """The full id of the scan `scan_id` names, exactly or as a unique prefix."""
        if not scan_id:
            raise ScanNotFound(scan_id)
        with self._session() as session:
            if session.get(ScanRow, scan_id) is not None:
                return scan_id
            escaped = scan_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            candidates = list(session.scalars(
                select(ScanRow.id).where(ScanRow.id.like(escaped + "%", escape="\\"))
                .order_by(ScanRow.id).limit(10)))
        if not candidates:
            raise ScanNotFound(scan_id)
        if len(candidates) > 1:
            raise AmbiguousScanId(scan_id, candidates)
        return candidates[0]

    def load_scan(self, scan_id: str) -> ScanResult:
        """The scan with this id or unique id prefix (ScanNotFound, AmbiguousScanId)."""
        full_id = self.resolve_scan_id(scan_id)
        with self._session() as session:
            scan = session.get(ScanRow, full_id)
            if scan is None:        # deleted between the two transactions
                raise ScanNotFound(scan_id)
            services = session.scalars(
                select(ServiceRow).where(ServiceRow.scan_id == full_id).order_by(ServiceRow.id))
            findings = session.scalars(
                select(FindingRow).where(FindingRow.scan_id == full_id).order_by(FindingRow.id))
            return ScanResult(
                scan_id=scan.id,
                started_at=scan.started_at,
                finished_at=scan.finished_at,
                targets=tuple(scan.targets),
                options=dict(scan.options),
                services=tuple(_service_from_row(r) for r in services),
                findings=tuple(_finding_from_row(r) for r in findings),
                interrupted=scan.interrupted,
                stats=dict(scan.stats),
            )

    def list_scans(self, limit: int = 20) -> list[ScanSummary]:
        """The most recent scans first (by start time), at most `limit` of them."""
        with self._session() as session:
            scans = list(session.scalars(
                select(ScanRow).order_by(ScanRow.started_at.desc(), ScanRow.id.desc())
                .limit(limit)))
            ids = [s.id for s in scans]
            if not ids:
                return []
            pairs: dict[str, list[tuple[Status, Severity, int]]] = {i: [] for i in ids}
            grouped = session.execute(
                select(FindingRow.scan_id, FindingRow.status, FindingRow.severity, func.count())
                .where(FindingRow.scan_id.in_(ids))
                .group_by(FindingRow.scan_id, FindingRow.status, FindingRow.severity))
            for sid, status, severity, n in grouped:
                pairs[sid].append((Status(status), Severity(severity), int(n)))
            service_counts = {sid: n for sid, n in session.execute(
                select(ServiceRow.scan_id, func.count()).where(ServiceRow.scan_id.in_(ids))
                .group_by(ServiceRow.scan_id))}
            return [
                ScanSummary(scan_id=s.id, started_at=s.started_at, finished_at=s.finished_at,
                            targets=tuple(s.targets), interrupted=s.interrupted,
                            services=int(service_counts.get(s.id, 0)),
                            counts=Counts.from_pairs(pairs[s.id]))
                for s in scans
            ]


# -- rows <-> models ---------------------------------------------------------------------------

def _service_row(scan_id: str, service: Service) -> ServiceRow:
    ep = service.endpoint
    return ServiceRow(scan_id=scan_id, address=ep.address, port=ep.port, protocol=ep.protocol,
                      hostname=ep.hostname, product=service.product, version=service.version,
                      facts=json_object(service.facts, where=f"facts of {ep}"))


def _service_from_row(row: ServiceRow) -> Service:
    return Service(endpoint=Endpoint(row.address, row.port, row.protocol, row.hostname),
                   product=row.product, version=row.version, facts=dict(row.facts))


def _finding_row(scan_id: str, finding: Finding) -> FindingRow:
    ep = finding.endpoint
    evidence = json_object(finding.evidence, where=f"evidence of {finding.check_id} on {ep}")
    return FindingRow(scan_id=scan_id, check_id=finding.check_id, title=finding.title,
                      address=ep.address, port=ep.port, protocol=ep.protocol,
                      hostname=ep.hostname, status=finding.status.value,
                      severity=int(finding.severity), intrusive=finding.intrusive,
                      error=finding.error, evidence=evidence)


def _finding_from_row(row: FindingRow) -> Finding:
    return Finding(check_id=row.check_id, title=row.title,
                   endpoint=Endpoint(row.address, row.port, row.protocol, row.hostname),
                   status=Status(row.status), severity=Severity(row.severity),
                   evidence=dict(row.evidence), intrusive=row.intrusive, error=row.error)
