"""The built-in lab: a small synthetic hospital on loopback addresses.

Used by `dicomguard demo`, `dicomguard lab up|down|status` and the test suite:

    from dicomguard.lab import start_lab, stop_lab, lab_status
    manifest = start_lab(state_dir)          # LabManifest: services, addresses, expectations
    ...
    stop_lab(state_dir)

Only invented patients (see synthetic.py) and only 127.0.0.0/8 addresses.
"""

from dicomguard.lab.manifest import LabManifest, PatientSpec, ServiceSpec
from dicomguard.lab.servers import (
    DEFAULT_BASE_ADDRESS,
    DEFAULT_SEED,
    KNOWN_CALLING_AE,
    LabError,
    ServiceStatus,
    default_state_dir,
    lab_status,
    start_lab,
    stop_lab,
)

__all__ = [
    "DEFAULT_BASE_ADDRESS",
    "DEFAULT_SEED",
    "KNOWN_CALLING_AE",
    "LabError",
    "LabManifest",
    "PatientSpec",
    "ServiceSpec",
    "ServiceStatus",
    "default_state_dir",
    "lab_status",
    "start_lab",
    "stop_lab",
]
