"""What every generator in tools/ does with its output: write it, or check it is current."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def arguments(doc: str, default_output: Path) -> argparse.ArgumentParser:
    """The options every generator takes: --output FILE and --check (add more to it)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--output", type=Path, default=default_output)
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 when the output is out of date")
    return parser


def write_or_check(output: Path, text: str, *, check: bool, generator: str) -> int:
    """With ``check``: 0 when ``output`` already holds ``text``, else 1 and a hint on stderr.
    Without: write ``text`` to ``output``. Returns the exit status."""
    if check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            print(f"{output} is out of date; run {generator}", file=sys.stderr)
            return 1
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output} ({len(text)} bytes)")
    return 0
