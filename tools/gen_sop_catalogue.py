"""Generate src/dicomguard/data/sop_catalogue.json: the SOP classes the DICOM probe proposes,
grouped by what accepting them exposes, with their UIDs from pynetdicom's copy of the UID
registry (PS3.6 Annex A). probes/sop_catalogue.py loads it; pynetdicom is a build-time source.

Output (``schema`` 1)::

    {"schema": 1, "source": {...}, "generator": "tools/gen_sop_catalogue.py",
     "groups": {"verification": [["Verification", "1.2.840.10008.1.1"]], ...}}

Usage::

    .venv/bin/python tools/gen_sop_catalogue.py [--output FILE] [--check]
"""

from __future__ import annotations

import json
from pathlib import Path

import pynetdicom
import pynetdicom.sop_class as sop
from _generated import arguments, write_or_check  # tools/ helper (the script's own folder)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "src" / "dicomguard" / "data" / "sop_catalogue.json"

GROUPS = {
    "verification": "Verification",
    "query_retrieve": (
        "PatientRootQueryRetrieveInformationModelFind PatientRootQueryRetrieveInformationModelMove "
        "PatientRootQueryRetrieveInformationModelGet StudyRootQueryRetrieveInformationModelFind "
        "StudyRootQueryRetrieveInformationModelMove StudyRootQueryRetrieveInformationModelGet "
        "CompositeInstanceRootRetrieveMove CompositeInstanceRootRetrieveGet"),
    "worklist": "ModalityWorklistInformationFind",
    "storage": (
        "CTImageStorage EnhancedCTImageStorage MRImageStorage EnhancedMRImageStorage "
        "ComputedRadiographyImageStorage DigitalXRayImageStorageForPresentation "
        "DigitalXRayImageStorageForProcessing DigitalMammographyXRayImageStorageForPresentation "
        "DigitalMammographyXRayImageStorageForProcessing BreastTomosynthesisImageStorage "
        "UltrasoundImageStorage UltrasoundMultiFrameImageStorage SecondaryCaptureImageStorage "
        "MultiFrameGrayscaleByteSecondaryCaptureImageStorage "
        "MultiFrameGrayscaleWordSecondaryCaptureImageStorage "
        "MultiFrameTrueColorSecondaryCaptureImageStorage XRayAngiographicImageStorage "
        "XRayRadiofluoroscopicImageStorage NuclearMedicineImageStorage "
        "PositronEmissionTomographyImageStorage RTImageStorage RTDoseStorage "
        "RTStructureSetStorage RTPlanStorage VLPhotographicImageStorage VLEndoscopicImageStorage "
        "OphthalmicPhotography8BitImageStorage DigitalIntraOralXRayImageStorageForPresentation "
        "EncapsulatedPDFStorage BasicTextSRStorage EnhancedSRStorage ComprehensiveSRStorage "
        "KeyObjectSelectionDocumentStorage GrayscaleSoftcopyPresentationStateStorage "
        "SegmentationStorage RawDataStorage SpatialRegistrationStorage"),
}


def render() -> str:
    """JSON with one SOP class a line (small diffs when the registry changes)."""
    head = {"schema": 1,
            "source": {"dataset": "pynetdicom.sop_class (DICOM PS3.6 Annex A UID registry)",
                       "pynetdicom_version": pynetdicom.__version__},
            "generator": "tools/gen_sop_catalogue.py"}
    groups = []
    for group, names in GROUPS.items():
        rows = ",\n".join(f"  {json.dumps([name, str(getattr(sop, name))])}"
                          for name in names.split())
        groups.append(f"{json.dumps(group)}: [\n{rows}\n ]")
    text = json.dumps(head)[:-1] + ',\n"groups": {\n ' + ",\n ".join(groups) + "\n}}\n"
    json.loads(text)  # the hand-made layout is still JSON
    return text


def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__, DEFAULT_OUTPUT).parse_args(argv)
    return write_or_check(args.output, render(), check=args.check,
                          generator="tools/gen_sop_catalogue.py")


if __name__ == "__main__":
    raise SystemExit(main())
