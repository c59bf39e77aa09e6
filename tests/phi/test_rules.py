"""The Annex E rule table: generated data against the reference, and lookups."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from dicomguard.phi import rules
from dicomguard.phi.rules import OPTION_NAMES, action_for, rule_for

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "reference" / "dicom-standard"
REFERENCE_JSON = REFERENCE / "confidentiality_profile_attributes.json"

COLUMNS = {
    "retain-safe-private": "rtnSafePrivOpt",
    "retain-uids": "rtnUIDsOpt",
    "retain-device-identity": "rtnDevIdOpt",
    "retain-institution-identity": "rtnInstIdOpt",
    "retain-patient-characteristics": "rtnPatCharsOpt",
    "retain-longitudinal-full-dates": "rtnLongFullDatesOpt",
    "retain-longitudinal-modified-dates": "rtnLongModifDatesOpt",
    "clean-descriptors": "cleanDescOpt",
    "clean-structured-content": "cleanStructContOpt",
    "clean-graphics": "cleanGraphOpt",
}


def _reference_rows() -> list[dict[str, str]]:
    if not REFERENCE_JSON.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{REFERENCE_JSON} is missing; under CI=true the cross-check must run")
        pytest.skip(f"{REFERENCE_JSON} absent (shared/ is for developers and CI only)")
    data: list[dict[str, str]] = json.loads(REFERENCE_JSON.read_text(encoding="utf-8"))
    return data


def _key(tag: str) -> str:
    return "(GGGG,EEEE)" if tag.upper().startswith("(GGGG,EEEE)") else tag.upper()


def test_every_row_and_column_matches_reference() -> None:
    ref = {_key(r["tag"]): r for r in _reference_rows()}
    ours = {r.tag: r for r in rules.rules()}
    assert len(ref) == 621
    assert set(ours) == set(ref)
    for tag, src in ref.items():
        rule = ours[tag]
        assert rule.name == src["name"], tag
        assert rule.in_std_composite_iod == (src["stdCompIOD"] == "Y"), tag
        assert rule.basic == src["basicProfile"], tag
        for option, column in COLUMNS.items():
            assert rule.options.get(option) == src.get(column), (tag, option)
        assert set(rule.options) <= set(OPTION_NAMES)


def test_generator_output_is_up_to_date() -> None:
    _reference_rows()
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gen_annex_e
    finally:
        sys.path.remove(str(ROOT / "tools"))
    expected = gen_annex_e.render(gen_annex_e.build(REFERENCE))
    actual = (ROOT / "src" / "dicomguard" / "data" / "annex_e.json").read_text(encoding="utf-8")
    assert actual == expected, "run tools/gen_annex_e.py"


def test_provenance_recorded() -> None:
    info = rules.source_info()
    assert info["dataset_commit"] == "8670abdd9ad16c61af5146ef857899699bdd9c5f"
    assert info["dataset_date"] == "2024-04-18"
    assert "PS3.15" in info["standard"]


def test_keywords_from_dictionary() -> None:
    assert rule_for(0x00100010).keyword == "PatientName"  # type: ignore[union-attr]
    assert rule_for(0x60003000).keyword == "OverlayData"  # type: ignore[union-attr]
    assert rule_for(0x00091001).keyword is None  # type: ignore[union-attr]


@pytest.mark.parametrize(("tag", "expected"), [
    (0x00100010, "Z"),        # PatientName
    # PatientID: the reference table (innolitics parse of Table E.1-1) gives Z/D.
    (0x00100020, "Z/D"),
    (0x0020000D, "U"),        # StudyInstanceUID
    (0x00080018, "U"),        # SOPInstanceUID
    (0x00080050, "Z"),        # AccessionNumber
    (0x00100030, "Z"),        # PatientBirthDate
    (0x00080080, "X/Z/D"),    # InstitutionName
    (0x00081030, "X"),        # StudyDescription
    (0x60023000, "X"),        # OverlayData, group 6002
    (0x601E4000, "X"),        # OverlayComments, group 601E
    (0x50040010, "X"),        # curve data (50XX,XXXX)
    (0x00091001, "X"),        # private data element
    (0x00090010, "X"),        # private creator
    (0x60013000, "X"),        # odd group: private, not overlay
    (0x00280010, None),       # Rows: not in the table
    (0xFFFAFFFA, "X"),        # DigitalSignaturesSequence
])
def test_basic_profile_lookup(tag: int, expected: str | None) -> None:
    assert action_for(tag) == expected


@pytest.mark.parametrize(("tag", "options", "expected"), [
    (0x00091001, {"retain-safe-private"}, "C"),
    (0x00090010, {"retain-safe-private"}, "C"),
    (0x0020000D, {"retain-uids"}, "K"),
    (0x00081030, {"clean-descriptors"}, "C"),
    (0x60023000, {"clean-graphics"}, "C"),
    (0x50040010, {"clean-graphics"}, "C"),
    (0x00100010, {"retain-uids", "clean-descriptors"}, "Z"),   # options that do not apply
    # K beats C when two options name the same row (documented in rules.py):
    (0x00080022, {"retain-longitudinal-full-dates"}, "K"),
    (0x00080022, {"retain-longitudinal-modified-dates"}, "C"),
    (0x00080022, {"retain-longitudinal-full-dates", "retain-longitudinal-modified-dates"}, "K"),
])
def test_option_lookup(tag: int, options: set[str], expected: str) -> None:
    assert action_for(tag, options=options) == expected


def test_unknown_option_rejected() -> None:
    with pytest.raises(ValueError, match="unknown Annex E options"):
        action_for(0x00100010, options={"retain-everything"})


def test_masks_only_match_even_groups() -> None:
    overlay = rule_for(0x60003000)
    assert overlay is not None and overlay.tag == "(60XX,3000)"
    assert overlay.matches(0x60FE3000)
    assert not overlay.matches(0x60FF3000)
    assert rule_for(0x60FF3000) is rule_for(0x00091001)
    curve = rule_for(0x50001234)
    assert curve is not None and curve.tag == "(50XX,XXXX)"


def test_option_names_stable() -> None:
    assert tuple(COLUMNS) == OPTION_NAMES
