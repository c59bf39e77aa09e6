"""Fixtures of the store tests: every store test runs on SQLite (a file in tmp_path) and on a real
PostgreSQL server started for the session (see pgserver.py).

Where the PostgreSQL server programs are not installed, the PostgreSQL variants skip with the
reason; under CI=true they fail instead. A server that is installed but does not start always
fails.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgserver import PostgresServer, PostgresUnavailable, find_bindir

from dicomguard.models import ScanResult
from dicomguard.report.json_report import from_json
from dicomguard.store import Store

SAMPLE = Path(__file__).parent.parent / "report" / "data" / "sample-scan.json"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = find_bindir()
    if bindir is None:
        _unavailable("PostgreSQL server programs (initdb, pg_ctl) not found: "
                     "apt-get install postgresql, or set PG_BINDIR")
    assert bindir is not None
    server = PostgresServer(bindir)
    try:
        server.start()
    except PostgresUnavailable as exc:
        server.stop()
        _unavailable(str(exc))
    except BaseException:
        server.stop()
        raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: an SQLite file, or a new database on the test server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'scans.sqlite3'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"dicomguard_{uuid.uuid4().hex[:12]}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store(db_url) as s:
        yield s


@pytest.fixture
def sample() -> ScanResult:
    """A realistic scan of the demo hospital: fail, pass, unknown, error and intrusive results."""
    return from_json(json.loads(SAMPLE.read_text(encoding="utf-8")))
