"""The C accelerators (dicomfile/_fastscan.c, phi/_fastinspect.c) under AddressSanitizer and
UndefinedBehaviorSanitizer: they parse bytes from untrusted files and shares, so a read past a
buffer or a bad reference count must show up as a failure, not as a rare crash.

Both extensions are compiled with -fsanitize=address,undefined into a copy of the source tree,
then a child interpreter (libasan and libubsan preloaded) runs their comparison tests (C against
the Python reference on every bundled file, cut points, mutations, random records) and audits
mutated files. Any sanitizer report aborts the child. Under CI=true a missing compiler or
sanitizer runtime fails the test; elsewhere it is skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_CI = os.environ.get("CI", "").lower() == "true"

_FUZZ = """if True:
    import random
    from pathlib import Path
    import pydicom
    from dicomguard.dicomfile import BytesSource, read_header, reader
    from dicomguard.phi import inspector
    assert None not in (reader._SCAN, reader._META, inspector._WALK)
    assert "{tree}" in reader.__file__, reader.__file__
    rng = random.Random(11)
    ins = inspector.Inspector(detail=True)
    files = sorted((Path(pydicom.__file__).parent / "data" / "test_files").glob("*.dcm"))
    n = 0
    for path in files[:40]:
        base = path.read_bytes()[:30000]
        for _ in range(150):
            data = bytearray(base)
            for _ in range(rng.randint(1, 16)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            cut = rng.randrange(len(data) + 1) if rng.random() < 0.3 else len(data)
            header = read_header(BytesSource(bytes(data[:cut])))
            if header.is_dicom:
                ins.inspect(header)
            reader._META(bytes(data), 132, rng.randrange(40), reader.Element)
            n += 1
    print("mutations", n)
"""


def _runtime(name: str) -> str | None:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        return None
    out = subprocess.run([cc, f"-print-file-name={name}"], capture_output=True, text=True,
                         check=False).stdout.strip()
    return out if out and os.path.isabs(out) and os.path.exists(out) else None


def test_c_accelerators_under_sanitizers(tmp_path: Path) -> None:
    asan, ubsan = _runtime("libasan.so"), _runtime("libubsan.so")
    if asan is None or ubsan is None:
        if _CI:
            pytest.fail("gcc with libasan/libubsan is needed to test the C accelerators")
        pytest.skip("no gcc sanitizer runtimes here")
    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.copytree(ROOT / "src", tree / "src",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__", "*.egg-info"))
    for name in ("setup.py", "pyproject.toml"):
        shutil.copy(ROOT / name, tree / name)
    flags = "-fsanitize=address,undefined -fno-omit-frame-pointer -O1 -g"
    build = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace", "-b", str(tmp_path / "b"),
         "-t", str(tmp_path / "t")], cwd=tree, capture_output=True, text=True, check=False,
        env={**os.environ, "CFLAGS": flags, "LDFLAGS": "-fsanitize=address,undefined"},
        timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    built = sorted(p.name.split(".")[0] for p in (tree / "src").rglob("*.so"))
    assert built == ["_fastinspect", "_fastscan"], (built, build.stderr[-2000:])
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "LD_PRELOAD": f"{asan} {ubsan}",
           "PYTHONMALLOC": "malloc",   # objects from malloc: the sanitizer sees their bounds
           "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
           "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}
    env.pop("DICOMGUARD_PURE_PYTHON", None)
    fuzz = subprocess.run([sys.executable, "-c", _FUZZ.replace("{tree}", str(tree))],
                          env=env, capture_output=True, text=True, check=False, timeout=900)
    assert fuzz.returncode == 0, (fuzz.stdout[-1000:], fuzz.stderr[-4000:])
    assert "mutations 6000" in fuzz.stdout
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
         str(ROOT / "tests" / "dicomfile" / "test_fastscan_c.py"),
         str(ROOT / "tests" / "phi" / "test_fastinspect.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=1200)
    assert tests.returncode == 0, (tests.stdout[-3000:], tests.stderr[-3000:])
    assert " passed" in tests.stdout and " failed" not in tests.stdout
