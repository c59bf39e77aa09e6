"""A small tree of DICOM files with invented patients, non-DICOM and broken files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
CT_SMALL = TEST_FILES / "CT_small.dcm"
MR_SMALL = TEST_FILES / "MR_small.dcm"

#: invented patients planted into the tree: (folder, name, id)
PATIENTS = [("ward-a/2019", "Quimby^Harriet", "QH100001"),
            ("ward-a/2020", "Ostrander^Felix", "OF200002"),
            ("ward-b/x/y/z", "Pennywhistle^Maud", "PM300003")]


def build_tree(root: Path, copies: int = 3) -> Path:
    for i, (folder, name, pid) in enumerate(PATIENTS):
        target = root / folder
        target.mkdir(parents=True, exist_ok=True)
        for j in range(copies):
            src = CT_SMALL if j % 2 == 0 else MR_SMALL
            ds = pydicom.dcmread(src)
            ds.PatientName = name
            ds.PatientID = pid
            ds.StudyInstanceUID = f"1.2.826.0.1.3680043.99.{i}"
            ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.99.{i}.{j % 2}"
            ds.SOPInstanceUID = f"1.2.826.0.1.3680043.99.{i}.{j % 2}.{j}"
            ds.ImageComments = f"reviewed for {name.split('^')[0]}"
            ds.save_as(target / f"img{j}.bin", enforce_file_format=True)  # no .dcm on purpose
    (root / "notes.txt").write_text("not an image\n")
    (root / "empty").write_bytes(b"")
    data = (root / PATIENTS[0][0] / "img0.bin").read_bytes()
    (root / "broken").mkdir()
    (root / "broken" / "cut.dcm").write_bytes(data[:1500])
    bad = bytearray(data[:4000])
    bad[132 + 300:132 + 308] = b"\xff" * 8       # garbage lengths inside the data set
    (root / "broken" / "garbage.dcm").write_bytes(bytes(bad))
    shutil.copy(TEST_FILES / "rtplan_truncated.dcm", root / "broken" / "rtplan_truncated.dcm")
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return build_tree(tmp_path / "tree")
