"""Two Samba `smbd` instances for the SMB tests, started once per test session.

- `smb_open` (DICOMGUARD_TEST_SMB_BASE, default 127.0.0.150): SMB1 enabled (NT1), signing
  optional, a guest share of synthetic DICOM studies and a share for one user; also listens on
  a second port spoken to as the NetBIOS session service.
- `smb_strict` (base + 1): SMB2 minimum, signing mandatory, the same shares.

Under CI=true a missing smbd fails the tests; elsewhere they skip with the reason.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator

import pytest

from dicomguard.lab.servers import in_ci
from dicomguard.lab.smb import SmbLab, smbd_missing, start_smb, stop_smb

SMB_BASE = ipaddress.IPv4Address(os.environ.get("DICOMGUARD_TEST_SMB_BASE", "127.0.0.150"))
SMB_PORT = 4445
NETBIOS_PORT = 4139


def _require() -> None:
    missing = smbd_missing()
    if missing:
        if in_ci():
            pytest.fail(f"CI=true and the SMB lab cannot run: {missing}")
        pytest.skip(missing)


@pytest.fixture(scope="session")
def smb_open(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmbLab]:
    _require()
    state = tmp_path_factory.mktemp("smb-open")
    lab = start_smb(state, address=str(SMB_BASE), port=SMB_PORT, netbios_port=NETBIOS_PORT,
                    smb1=True, signing="auto")
    try:
        yield lab
    finally:
        stop_smb(state)


@pytest.fixture(scope="session")
def smb_strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmbLab]:
    _require()
    state = tmp_path_factory.mktemp("smb-strict")
    lab = start_smb(state, address=str(SMB_BASE + 1), port=SMB_PORT, smb1=False,
                    signing="mandatory")
    try:
        yield lab
    finally:
        stop_smb(state)
