"""FTP test servers: a real vsftpd with anonymous access and a pyftpdlib requiring a password.

Addresses: DICOMGUARD_TEST_FTP_BASE (default 127.0.0.160) for vsftpd, +1 for pyftpdlib, +2 for
the scripted fakes of fakeftp.py. Under CI=true a vsftpd that cannot run (missing, not root)
fails the tests; elsewhere they skip with the reason. Servers are stopped after the session.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dicomguard.lab.ftp import (
    FtpServer,
    FtpTree,
    build_dicom_tree,
    require_vsftpd,
    start_pyftpdlib,
    start_vsftpd,
    stop_ftp,
)
from dicomguard.lab.servers import LabError

BASE = ipaddress.IPv4Address(os.environ.get("DICOMGUARD_TEST_FTP_BASE", "127.0.0.160"))
PORT = 2121


@dataclass(frozen=True)
class FtpLab:
    tree: FtpTree
    anonymous: FtpServer
    password: FtpServer


@pytest.fixture(scope="session")
def ftp_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FtpLab]:
    try:
        problem = require_vsftpd()
    except LabError as exc:
        pytest.fail(str(exc))
    if problem:
        pytest.skip(problem)
    base = tmp_path_factory.mktemp("ftp")
    state = base / "state"
    tree = build_dicom_tree(base / "root")
    try:
        anon = start_vsftpd(state, str(BASE), PORT, tree.root)
        locked = start_pyftpdlib(state, str(BASE + 1), PORT, tree.root)
        yield FtpLab(tree, anon, locked)
    finally:
        stop_ftp(state)


@pytest.fixture
def fake_address() -> str:
    return str(BASE + 2)


@pytest.fixture(scope="session")
def tree_root(ftp_lab: FtpLab) -> Path:
    return ftp_lab.tree.root
