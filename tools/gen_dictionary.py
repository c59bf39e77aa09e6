"""Generate ``src/dicomguard/data/dictionary.json``: the DICOM data dictionary (PS3.6) the
header reader and the PHI inspector need: each public tag's VR and keyword, and the repeating
group entries (``60xx3000`` ...) as masks.

Input: pydicom's copy of the dictionary (``pydicom._dicom_dict``), a *build-time* source only:
the runtime loads the small generated file and never imports pydicom (importing it pulls numpy
in, ~0.3 s and ~55 MB per process, paid again by every audit worker).

Output schema (``schema`` 1)::

    {"schema": 1, "source": {"dataset": "pydicom._dicom_dict", "pydicom_version": "3.0.2"},
     "generator": "tools/gen_dictionary.py",
     "tags": [["00100010", "PN", "PatientName"], ...],          # sorted by tag
     "repeaters": [["60xx3000", "OB or OW", "OverlayData"], ...]} # as the standard writes them

VRs are as the dictionary gives them, ambiguous ones included (``US or SS``, ``OB or OW``);
the readers resolve them. Retired entries are kept: old files carry them.

Usage::

    .venv/bin/python tools/gen_dictionary.py [--output FILE] [--check]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pydicom
from _generated import arguments, write_or_check  # tools/ helper (the script's own folder)
from pydicom.datadict import DicomDictionary, RepeatersDictionary

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "src" / "dicomguard" / "data" / "dictionary.json"
SCHEMA = 1


def generate() -> dict[str, Any]:
    tags = [[f"{tag:08X}", entry[0], entry[4]] for tag, entry in sorted(DicomDictionary.items())]
    repeaters = [[key.upper().replace("X", "x"), entry[0], entry[4]]
                 for key, entry in sorted(RepeatersDictionary.items())]
    return {
        "schema": SCHEMA,
        "source": {"dataset": "pydicom._dicom_dict (DICOM PS3.6 data dictionary)",
                   "pydicom_version": pydicom.__version__},
        "generator": "tools/gen_dictionary.py",
        "tags": tags,
        "repeaters": repeaters,
    }


def render(data: dict[str, Any]) -> str:
    """One entry a line: small diffs when the dictionary changes."""
    head = {k: v for k, v in data.items() if k not in ("tags", "repeaters")}
    lines = [json.dumps(head, separators=(",", ":"))[:-1] + ","]
    for key in ("tags", "repeaters"):
        rows = ",\n".join(json.dumps(row, separators=(",", ":")) for row in data[key])
        lines.append(f'"{key}":[\n{rows}\n]' + ("," if key == "tags" else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    text = render(generate())
    json.loads(text)  # the hand-made layout is still JSON
    return write_or_check(args.output, text, check=args.check, generator="tools/gen_dictionary.py")


if __name__ == "__main__":
    raise SystemExit(main())
