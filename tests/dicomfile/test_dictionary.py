"""The generated data dictionary: equal to pydicom's, current, and free of pydicom at run time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pydicom.datadict import DicomDictionary, RepeatersDictionary
from pydicom.datadict import keyword_for_tag as pydicom_keyword

from dicomguard.dicomfile import dictionary

ROOT = Path(__file__).resolve().parents[2]


def test_every_tag_matches_pydicom() -> None:
    assert len(dictionary.TAGS) == len(DicomDictionary)
    for tag, entry in DicomDictionary.items():
        assert dictionary.TAGS[tag] == (entry[0], entry[4]), hex(tag)
        assert dictionary.vr_of(tag) == entry[0]
        assert dictionary.keyword_for_tag(tag) == entry[4]


def test_repeating_groups_resolve_like_pydicom() -> None:
    assert len(dictionary.REPEATERS) == len(RepeatersDictionary)
    for key, entry in RepeatersDictionary.items():
        for fill in ("0", "2", "E"):
            tag = int(key.replace("x", fill), 16)
            if tag in DicomDictionary:
                continue
            assert dictionary.keyword_for_tag(tag) == pydicom_keyword(tag) == entry[4], key
            assert dictionary.vr_of(tag) == entry[0]


def test_unknown_and_private_tags() -> None:
    assert dictionary.keyword_for_tag(0x00091010) == ""
    assert dictionary.keyword_for_tag(0x00080003) == ""
    assert dictionary.vr_of(0x00080003) is None
    assert dictionary.keyword_for_tag(0x60003000) == "OverlayData"
    assert dictionary.keyword_for_tag(0x601E3000) == "OverlayData"


def test_generator_output_is_up_to_date() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_dictionary.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert dictionary.source_info()["pydicom_version"]


def test_audit_path_does_not_import_pydicom_or_numpy() -> None:
    code = ("import sys, dicomguard.audit.runner, dicomguard.phi.inspector; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'pydicom', 'numpy'}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip() == "[]"
