"""A throwaway PostgreSQL server for tests.

`initdb` into a fresh temporary directory, `postgres` on a free port of 127.0.0.1 (and a Unix
socket inside that directory, never the system's /var/run/postgresql), trust authentication for
the superuser `postgres`, fsync off. `stop()` stops it and removes the directory. The Debian
cluster (pg_ctlcluster, port 5432) is never touched.

PostgreSQL refuses to run as root: when the tests run as root, the directory is given to the
`postgres` system user and the server programs are run through `runuser -u postgres --`.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text

SERVER_USER = "postgres"     # the system account used when running as root
SUPERUSER = "postgres"       # the database superuser initdb creates


class PostgresUnavailable(Exception):
    """The PostgreSQL server programs are not installed here."""


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl: $PG_BINDIR, the newest Debian
    /usr/lib/postgresql/N/bin, or the directory of an initdb on PATH."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = [d for d in debian.iterdir() if re.fullmatch(r"\d+(\.\d+)?", d.name)]
        for d in sorted(versions, key=lambda d: float(d.name), reverse=True):
            candidates.append(d / "bin")
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PostgresServer:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root: Path | None = None
        self.port = 0
        self._as_root = os.geteuid() == 0

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bindir / program), *args]
        if self._as_root:
            argv = ["runuser", "-u", SERVER_USER, "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                              stdin=subprocess.DEVNULL)

    def start(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dicomguard-pg-"))
        sockets = self.root / "sock"
        sockets.mkdir()
        if self._as_root:
            try:
                account = pwd.getpwnam(SERVER_USER)
            except KeyError as exc:
                raise PostgresUnavailable(f"running as root and no {SERVER_USER!r} user to run "
                                          "the server as") from exc
            for path in (self.root, sockets):
                os.chown(path, account.pw_uid, account.pw_gid)
        done = self._run("initdb", "-D", str(self.data_dir), "--auth=trust",
                         f"--username={SUPERUSER}", "--encoding=UTF8", "--locale=C", "--no-sync")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}): {done.stderr.strip()}")
        log = self.root / "server.log"
        last_error = ""
        for _attempt in range(3):      # the free port may be taken before postgres binds it
            self.port = free_port()
            options = (f"-k {sockets} -p {self.port} -c listen_addresses=127.0.0.1 "
                       "-c fsync=off -c full_page_writes=off -c synchronous_commit=off")
            done = self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(log), "-w",
                             "-t", "60", "-o", options, "start")
            if done.returncode == 0:
                return
            last_error = done.stderr.strip() + "\n" + (log.read_text()[-2000:]
                                                       if log.exists() else "")
        raise RuntimeError(f"postgres did not start: {last_error}")

    def stop(self) -> None:
        if self.root is None:
            return
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self, statement: str) -> None:
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(statement))
        finally:
            engine.dispose()

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", name), name
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", name), name
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
