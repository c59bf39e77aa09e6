"""Generate ``src/dicomguard/data/attribute_types.json``: attribute Types per IOD, for Annex E.

PS3.15 Table E.1-1 gives some attributes a combined action (``X/Z``, ``X/D``, ``Z/D``, ``X/Z/D``,
``X/Z/U*``) to be resolved by the attribute's Type in the IOD of the instance: Type 1 needs a
real (dummy) value or replaced UIDs, Type 2 must stay present (possibly empty), Type 3 may go.
Only those attributes need a Type, so this file holds exactly them: for every IOD, the Type of
each such attribute at each place it occurs (top level, or inside a given parent sequence).

Input: highdicom's copy of the standard (``highdicom/_standard/``: sop_class_iod_map.json,
iod_module_map.json, module_attribute_map.json, about 23 MB), a *build-time* dependency only
(the ``test`` extra); the runtime reads the small generated file and never imports highdicom.

Output schema (``schema`` 1)::

    {"schema": 1, "source": {...}, "generator": "tools/gen_attribute_types.py",
     "tags": ["00080012", ...],                       # the combined-action tags considered
     "sop_classes": {"1.2.840.10008.5.1.4.1.1.2": "ct-image", ...},
     "iods": {"ct-image": {"00000000/00080012": 3, "00081140/...": 1, ...}, ...},
     "any": {...}}                                    # strongest Type over every IOD

Keys are ``PARENT/TAG`` in hex, PARENT being the innermost enclosing sequence's tag
(``00000000`` at the top level). Types: 1 (1 and 1C), 2 (2 and 2C), 3. Conditional Types count
as their unconditional form because the attribute is only looked up when it is present in the
instance, which is when its condition usually holds. Where one key occurs several times (several
modules or macros), the strongest Type wins: keeping a dummy or empty value is always
conformant, removing a required one is not, and dummies carry no identifying information.

Usage::

    .venv/bin/python tools/gen_attribute_types.py [--output FILE] [--check]
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from _generated import arguments, write_or_check  # tools/ helper (the script's own folder)
from pydicom.datadict import tag_for_keyword

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "src" / "dicomguard" / "data" / "attribute_types.json"
ANNEX_E = ROOT / "src" / "dicomguard" / "data" / "annex_e.json"
SCHEMA = 1
_RANK = {"1": 1, "1C": 1, "2": 2, "2C": 2, "3": 3}


def _combined_tags() -> set[int]:
    rows = json.loads(ANNEX_E.read_text(encoding="utf-8"))["rows"]
    out: set[int] = set()
    for row in rows:
        if row.get("private") or "X" in row["tag"][1:10]:
            continue
        actions = [row["basic"], *row["options"].values()]
        if any("/" in a for a in actions):
            out.add(int(row["tag"][1:5] + row["tag"][6:10], 16))
    return out


def _load(name: str) -> Any:
    base = resources.files("highdicom") / "_standard"
    return json.loads((base / name).read_text(encoding="utf-8"))


def generate() -> dict[str, Any]:
    import highdicom

    wanted = _combined_tags()
    sop_classes: dict[str, str] = _load("sop_class_iod_map.json")
    iod_modules: dict[str, list[dict[str, str]]] = _load("iod_module_map.json")
    module_attrs: dict[str, list[dict[str, Any]]] = _load("module_attribute_map.json")

    per_module: dict[str, dict[str, int]] = {}
    for module, attrs in module_attrs.items():
        found: dict[str, int] = {}
        for attr in attrs:
            tag = tag_for_keyword(attr["keyword"])
            if tag is None or tag not in wanted:
                continue
            rank = _RANK.get(str(attr["type"]).upper())
            if rank is None:
                continue
            parent = tag_for_keyword(attr["path"][-1]) if attr["path"] else 0
            if parent is None:
                continue
            key = f"{parent:08X}/{tag:08X}"
            found[key] = min(found.get(key, 3), rank)
        if found:
            per_module[module] = found

    iods: dict[str, dict[str, int]] = {}
    strongest: dict[str, int] = {}
    for iod, modules in sorted(iod_modules.items()):
        merged: dict[str, int] = {}
        for mod in modules:
            for key, rank in per_module.get(mod["key"], {}).items():
                merged[key] = min(merged.get(key, 3), rank)
        iods[iod] = dict(sorted(merged.items()))
        for key, rank in merged.items():
            strongest[key] = min(strongest.get(key, 3), rank)
    used_iods = set(iods)
    return {
        "schema": SCHEMA,
        "source": {
            "dataset": "highdicom/_standard (sop_class_iod_map, iod_module_map, "
                       "module_attribute_map)",
            "highdicom_version": highdicom.__version__,
        },
        "generator": "tools/gen_attribute_types.py",
        "tags": sorted(f"{t:08X}" for t in wanted),
        "sop_classes": {uid: iod for uid, iod in sorted(sop_classes.items())
                        if iod in used_iods},
        "iods": iods,
        "any": dict(sorted(strongest.items())),
    }


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    text = json.dumps(generate(), indent=0, sort_keys=False, separators=(",", ":")) + "\n"
    return write_or_check(args.output, text, check=args.check,
                          generator="tools/gen_attribute_types.py")


if __name__ == "__main__":
    raise SystemExit(main())
