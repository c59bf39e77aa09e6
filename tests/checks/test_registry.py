"""Every check module in checks/ is in the registry, exactly once."""

from __future__ import annotations

from pathlib import Path

from dicomguard import checks


def test_every_check_module_is_registered() -> None:
    folder = Path(checks.__file__).parent
    on_disk = {p.stem for p in folder.glob("*_[0-9][0-9][0-9]_*.py")}
    registered = set(checks._MODULE_NAMES)
    assert on_disk == registered
    assert len(checks._MODULE_NAMES) == len(registered) == len(checks.CHECKS)
