"""The SOP class catalogue: generated data equal to pynetdicom's registry, and current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pynetdicom.sop_class as sop

from dicomguard.probes import sop_catalogue

ROOT = Path(__file__).resolve().parents[2]


def test_every_uid_is_the_registry_one() -> None:
    assert len(sop_catalogue.ALL_UIDS) == 47
    for uid, name in sop_catalogue.NAME_BY_UID.items():
        assert str(getattr(sop, name)) == uid, name
    for group in ("verification", "query_retrieve", "worklist", "storage"):
        assert sop_catalogue.CATALOGUE[group]
    assert sop_catalogue.VERIFICATION == "1.2.840.10008.1.1"
    assert sop_catalogue.STUDY_ROOT_FIND == "1.2.840.10008.5.1.4.1.2.2.1"


def test_group_names() -> None:
    got = sop_catalogue.group_names([sop_catalogue.VERIFICATION, "1.2.3"])
    assert got == {"verification": ["Verification"], "other": ["1.2.3"]}


def test_generator_output_is_up_to_date() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_sop_catalogue.py"),
                           "--check"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
