"""The one instance an intrusive C-STORE sends: synthetic, tiny, and labelled as a test.

Nothing in it belongs to a patient; every descriptive field says what it is so a PACS
administrator who finds it knows it can be deleted.
"""

from __future__ import annotations

import datetime
import secrets

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

SECONDARY_CAPTURE = UID("1.2.840.10008.5.1.4.1.1.7")
LABEL = "DICOMGUARD SECURITY TEST - SAFE TO DELETE"


def _uid() -> UID:
    return UID(f"2.25.{secrets.randbits(120)}")


def make_test_instance() -> Dataset:
    now = datetime.datetime.now(datetime.UTC)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = _uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = _uid()
    ds.SeriesInstanceUID = _uid()
    ds.PatientName = "DICOMGUARD^SECURITY TEST"
    ds.PatientID = "DICOMGUARD-TEST"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyDate = now.strftime("%Y%m%d")
    ds.StudyTime = now.strftime("%H%M%S")
    ds.StudyID = "DGTEST"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = LABEL
    ds.SeriesDescription = LABEL
    ds.ImageComments = LABEL
    ds.Modality = "OT"
    ds.ConversionType = "SYN"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.BurnedInAnnotation = "NO"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 8
    ds.Columns = 8
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(64)
    return ds
