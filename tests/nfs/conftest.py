"""The NFS lab (NFS-Ganesha + rpcbind on 127.0.0.1), started once per test session.

Only one NFS lab can run on a machine at a time (port 111 and rpcbind's registry are
machine-wide): start_nfs_lab takes a machine-wide lock, so a second test session waits for the
first. Under CI=true a missing Ganesha/rpcbind (or no root) fails; elsewhere the tests skip.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from dicomguard.lab.nfs import NfsLab, nfs_lab_unavailable, start_nfs_lab, stop_nfs_lab
from dicomguard.lab.servers import in_ci

NFS_ADDRESS = os.environ.get("DICOMGUARD_TEST_NFS_ADDRESS", "127.0.0.1")


def _missing(reason: str) -> None:
    if in_ci():
        pytest.fail(f"CI=true and the NFS lab cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def nfs_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NfsLab]:
    problem = nfs_lab_unavailable()
    if problem:
        _missing(problem)
    state = tmp_path_factory.mktemp("nfs")
    lab = start_nfs_lab(state, address=NFS_ADDRESS)
    try:
        yield lab
    finally:
        stop_nfs_lab(state)


@pytest.fixture(scope="session")
def showmount() -> str:
    path = shutil.which("showmount")
    if path is None:
        _missing("showmount not found (Debian package nfs-common)")
    assert path is not None
    return path
