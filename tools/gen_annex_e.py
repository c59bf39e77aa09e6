"""Generate ``src/dicomguard/data/annex_e.json`` from DICOM PS3.15 Table E.1-1.

Input: the machine-readable table in ``shared/reference/dicom-standard/`` (see SOURCE.md there for
where it comes from). Output: dicomguard's own rule table, a versioned data file that the package
loads at run time (the package never reads ``shared/``).

Usage::

    .venv/bin/python tools/gen_annex_e.py [--reference DIR] [--output FILE] [--check]

``--check`` exits 1 when the output file is not what the generator would write (for CI/review).

Output schema (``schema`` 1)::

    {"schema": 1, "source": {...provenance...}, "generator": "tools/gen_annex_e.py",
     "options": {"retain-safe-private": "rtnSafePrivOpt", ...},
     "rows": [{"tag": "(0010,0010)", "keyword": "PatientName", "name": "Patient's Name",
               "in_std_composite_iod": true, "basic": "Z", "options": {"...": "K"}}, ...]}

Tags are written upper-case as in the standard; repeating groups keep their ``X`` masks, e.g.
``(50XX,XXXX)``, ``(60XX,3000)``; the private-attributes row is ``(GGGG,EEEE)`` with
``"private": true``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from _generated import arguments, write_or_check  # tools/ helper (the script's own folder)
from pydicom.datadict import keyword_for_tag

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REFERENCE = ROOT.parent / "shared" / "reference" / "dicom-standard"
DEFAULT_OUTPUT = ROOT / "src" / "dicomguard" / "data" / "annex_e.json"
SCHEMA = 1

# Stable dicomguard option names -> column of the reference table (PS3.15 Table E.1-1 order).
OPTION_COLUMNS: dict[str, str] = {
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

BASIC_ACTIONS = {"X", "D", "U", "Z", "X/D", "X/Z", "X/Z/D", "Z/D", "X/Z/U*"}
OPTION_ACTIONS = {"K", "C"}
_TAG_RE = re.compile(r"^\(([0-9A-FX]{4}),([0-9A-FX]{4})\)$")


def _source_info(reference: Path) -> dict[str, str]:
    text = (reference / "SOURCE.md").read_text(encoding="utf-8")
    commit = re.search(r"commit ([0-9a-f]{40})", text)
    changed = re.search(r"last changed (\d{4}-\d{2}-\d{2})", text)
    if commit is None or changed is None:
        raise SystemExit("SOURCE.md: cannot find the source commit or date")
    return {
        "standard": "DICOM PS3.15 Annex E, Table E.1-1 (Application Level Confidentiality "
                    "Profile Attributes), NEMA web edition",
        "dataset": "innolitics/dicom-standard standard/confidentiality_profile_attributes.json",
        "dataset_licence": "MIT",
        "dataset_commit": commit.group(1),
        "dataset_date": changed.group(1),
    }


def _normalise_tag(raw: str) -> tuple[str, bool]:
    """Return ("(GGGG,EEEE)", is_private_row)."""
    if raw.upper().startswith("(GGGG,EEEE)"):
        return "(GGGG,EEEE)", True
    tag = raw.upper()
    if not _TAG_RE.match(tag):
        raise SystemExit(f"unexpected tag format: {raw!r}")
    return tag, False


def _keyword(tag: str) -> str | None:
    """Keyword from pydicom's dictionary; masked tags use their first group (e.g. 6000)."""
    group, elem = tag[1:5], tag[6:10]
    if "X" in elem:  # (50XX,XXXX): a whole group of curve attributes, no single keyword
        return None
    value = int(group.replace("X", "0") + elem, 16)
    kw = keyword_for_tag(value)
    return kw or None


def build(reference: Path) -> dict[str, Any]:
    rows_in = json.loads((reference / "confidentiality_profile_attributes.json")
                         .read_text(encoding="utf-8"))
    rows: list[dict[str, Any]] = []
    for src in rows_in:
        tag, private = _normalise_tag(src["tag"])
        basic = src["basicProfile"]
        if basic not in BASIC_ACTIONS:
            raise SystemExit(f"{tag}: unknown basic profile action {basic!r}")
        options: dict[str, str] = {}
        for name, column in OPTION_COLUMNS.items():
            if column in src:
                if src[column] not in OPTION_ACTIONS:
                    raise SystemExit(f"{tag}: unknown option action {src[column]!r}")
                options[name] = src[column]
        row: dict[str, Any] = {
            "tag": tag,
            "keyword": None if private else _keyword(tag),
            "name": src["name"],
            "in_std_composite_iod": src["stdCompIOD"] == "Y",
            "basic": basic,
            "options": options,
        }
        if private:
            row["private"] = True
        rows.append(row)
    rows.sort(key=lambda r: r["tag"])
    if len({r["tag"] for r in rows}) != len(rows):
        raise SystemExit("duplicate tags in the reference table")
    return {
        "schema": SCHEMA,
        "source": _source_info(reference),
        "generator": "tools/gen_annex_e.py",
        "options": OPTION_COLUMNS,
        "rows": rows,
    }


def render(table: dict[str, Any]) -> str:
    return json.dumps(table, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, DEFAULT_OUTPUT)
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    args = parser.parse_args(argv)
    text = render(build(args.reference))
    return write_or_check(args.output, text, check=args.check, generator="tools/gen_annex_e.py")


if __name__ == "__main__":
    raise SystemExit(main())
