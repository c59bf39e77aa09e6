"""Build hook for the optional C accelerators of the header reader and of the PHI inspector
(see pyproject.toml for everything else). ``optional=True``: when an extension does not
compile (no compiler, no Python headers), the install goes on without it and the code uses
its pure-Python twin."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "dicomguard.dicomfile._fastscan",
            sources=["src/dicomguard/dicomfile/_fastscan.c"],
            optional=True,
        ),
        Extension(
            "dicomguard.phi._fastinspect",
            sources=["src/dicomguard/phi/_fastinspect.c"],
            optional=True,
        ),
    ]
)
