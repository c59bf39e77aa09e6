"""Audit over trees: counts, hashing, merging, parallel == serial, broken files, byte sources."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dicomguard.audit import (
    AuditContext,
    AuditOptions,
    AuditSummary,
    FileStatus,
    audit_file,
    iter_files,
    run_audit,
)
from dicomguard.audit.runner import audit_paths, reason_key
from dicomguard.dicomfile import BytesSource
from dicomguard.models import Severity

from .conftest import PATIENTS

SALT = b"0123456789abcdef"


def _comparable(s: AuditSummary) -> dict[str, object]:
    return {name: getattr(s, name) for name in AuditSummary.__slots__}


def test_tree_counts(tree: Path) -> None:
    result = run_audit([tree], AuditOptions(), salt=SALT)
    s = result.summary
    assert not result.interrupted
    assert s.files_seen == 9 + 2 + 3
    assert s.dicom_files == 9
    assert s.non_dicom == 2           # notes.txt, empty
    assert s.unreadable == 3
    assert sum(s.unreadable_reasons.values()) == 3
    # the three planted patients, plus the one of rtplan_truncated.dcm (unreadable, but what
    # was read before the cut was inspected and counted)
    assert s.unreadable_dicom == 3
    assert len(s.patients) == 4
    assert len(s.studies) == 4
    assert len(s.series) == 7
    assert s.attributes["PatientName"] == 9 + s.unreadable_dicom  # files, not elements
    # + garbage.dcm (ImageComments before the damage); cut.dcm ends before ImageComments
    assert s.text_findings["ImageComments\tname"] == 9 + 1
    assert s.worst_severity is Severity.CRITICAL
    folders = dict((f, p) for f, p, _ in s.top_folders())
    root = str(tree)
    assert folders[os.path.join(root, "ward-a", "2019")] == 1
    assert folders[os.path.join(root, "ward-b", "x")] == 1   # shortened to two levels
    assert s.study_date_min is not None


def test_hashes_are_salted_and_not_raw(tree: Path) -> None:
    a = run_audit([tree], AuditOptions(), salt=SALT).summary
    b = run_audit([tree], AuditOptions(), salt=b"another salt 123").summary
    assert len(a.patients) == len(b.patients) == 4
    assert set(a.patients).isdisjoint(set(b.patients))
    assert all(isinstance(h, int) and h.bit_length() <= 64 for h in a.patients)


def test_partial_summaries_merge_to_single_pass(tree: Path) -> None:
    items = list(iter_files([tree]))
    ctx = AuditContext(salt=SALT)
    single = audit_paths(items, ctx)
    merged = AuditSummary()
    for i in range(0, len(items), 4):
        merged.merge(audit_paths(items[i:i + 4], ctx))
    assert _comparable(merged) == _comparable(single)
    # merging is commutative
    parts = [audit_paths(items[i:i + 5], ctx) for i in range(0, len(items), 5)]
    rev = AuditSummary()
    for part in reversed(parts):
        rev.merge(part)
    assert _comparable(rev) == _comparable(single)


def test_parallel_equals_serial(tree: Path) -> None:
    serial = run_audit([tree], AuditOptions(jobs=1), salt=SALT).summary
    parallel = run_audit([tree], AuditOptions(jobs=2, chunk_size=2), salt=SALT).summary
    assert _comparable(parallel) == _comparable(serial)


def test_max_files(tree: Path) -> None:
    result = run_audit([tree], AuditOptions(max_files=4), salt=SALT)
    assert result.summary.files_seen == 4
    assert result.stopped_at_max_files


def test_broken_files_are_unreadable_with_reasons(tree: Path) -> None:
    cut = audit_file(tree / "broken" / "cut.dcm")
    assert cut.status == FileStatus.UNREADABLE
    assert cut.reason is not None and "N bytes" in cut.reason
    assert cut.inspection is not None            # what was read was still inspected
    garbage = audit_file(tree / "broken" / "garbage.dcm")
    assert garbage.status == FileStatus.UNREADABLE
    assert audit_file(tree / "notes.txt").status == FileStatus.NON_DICOM
    missing = audit_file(tree / "nope.dcm")
    assert missing.status == FileStatus.UNREADABLE
    assert missing.reason is not None and missing.reason.startswith("cannot open")


def test_reason_key_drops_offsets_and_bytes() -> None:
    assert reason_key("invalid VR b'\\x00A' for (0010,0010) at offset 1234") == \
        "invalid VR ? for (0010,0010)"
    assert reason_key("data ends after 2129 bytes") == "data ends after N bytes"


def test_byte_source_prefix_is_a_partial_dicom(tree: Path) -> None:
    data = (tree / PATIENTS[1][0] / "img0.bin").read_bytes()
    fa = audit_file(BytesSource(data[:4096], total_size=len(data)),
                    AuditContext(salt=SALT))
    assert fa.status == FileStatus.DICOM
    assert fa.partial
    assert fa.size == len(data)
    assert fa.patient is not None
    assert fa.inspection is not None and "PatientName" in fa.inspection.attributes
    summary = AuditSummary()
    summary.add(fa, folder="ftp://127.0.0.1/share")
    assert summary.partial_files == 1
    assert "Ostrander" not in repr(fa)


def test_symlinks_not_followed_unless_asked(tree: Path, tmp_path: Path) -> None:
    link_root = tmp_path / "links"
    link_root.mkdir()
    (link_root / "to-tree").symlink_to(tree, target_is_directory=True)
    (link_root / "loop").symlink_to(link_root, target_is_directory=True)
    plain = run_audit([link_root], AuditOptions()).summary
    assert plain.files_seen == 0
    assert plain.walk_errors["symbolic link not followed"] == 2
    followed = run_audit([link_root], AuditOptions(follow_symlinks=True)).summary
    assert followed.dicom_files == 9


def test_workers_are_forked_only_without_other_threads() -> None:
    # in a fresh interpreter: the test session may run threads of its own
    code = """if True:
        import threading
        from dicomguard.audit.runner import _mp_context
        print(_mp_context().get_start_method())
        stop = threading.Event()
        thread = threading.Thread(target=stop.wait)
        thread.start()
        print(_mp_context().get_start_method())
        stop.set()
        thread.join()
    """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == "fork" and out[1] in ("forkserver", "spawn")


def test_parallel_with_a_thread_alive_equals_serial(tree: Path) -> None:
    # a progress thread makes the runner use forkserver; the result is the same
    import threading

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        parallel = run_audit([tree], AuditOptions(jobs=3, chunk_size=1), salt=SALT).summary
    finally:
        stop.set()
        thread.join()
    serial = run_audit([tree], AuditOptions(jobs=1), salt=SALT).summary
    assert _comparable(parallel) == _comparable(serial)


def test_ocr_in_parallel_equals_serial(tmp_path: Path) -> None:
    # --ocr with --jobs: the burned-in ultrasound text is found the same way in the workers
    import os
    import shutil

    import pydicom

    from dicomguard.audit.runner import ocr_unavailable_reason

    reason = ocr_unavailable_reason()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    files = Path(pydicom.__file__).parent / "data" / "test_files"
    for name in ("examples_rgb_color.dcm", "examples_palette.dcm", "CT_small.dcm"):
        for copy in range(3):
            (tmp_path / str(copy)).mkdir(exist_ok=True)
            shutil.copy(files / name, tmp_path / str(copy) / name)
    serial = run_audit([tmp_path], AuditOptions(jobs=1, ocr=True), salt=SALT).summary
    parallel = run_audit([tmp_path], AuditOptions(jobs=2, ocr=True), salt=SALT).summary
    assert _comparable(parallel) == _comparable(serial)
    assert serial.ocr_files == 6 and serial.ocr_text_files == 6   # the ultrasound files
