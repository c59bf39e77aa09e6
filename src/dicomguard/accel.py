"""The optional C accelerators (dicomfile/_fastscan.c, phi/_fastinspect.c), found at import.

    scan = accelerator("dicomguard.dicomfile._fastscan", "scan")   # a function, or None

Each C function mirrors a Python function that stays the reference (tests compare them); the
code uses the C one when it was built (``pip install`` compiles it where a compiler is, and
goes on without it where not). ``DICOMGUARD_PURE_PYTHON=1`` (or yes, true) turns them all off.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

__all__ = ["accelerator", "pure_python"]


def pure_python() -> bool:
    """Whether DICOMGUARD_PURE_PYTHON asks for the Python code only."""
    return os.environ.get("DICOMGUARD_PURE_PYTHON", "").strip().lower() in ("1", "yes", "true")


def accelerator(module: str, name: str) -> Any:
    """Function ``name`` of the C extension ``module``; None when it was not built (or has no
    such function) or when pure_python() holds."""
    if pure_python():
        return None
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None
