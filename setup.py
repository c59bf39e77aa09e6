"""Build hook for the optional C accelerator of the header reader (see pyproject.toml for
everything else). ``optional=True``: when the extension does not compile (no compiler, no
Python headers), the install goes on without it and the reader uses its pure-Python loop."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "dicomguard.dicomfile._fastscan",
            sources=["src/dicomguard/dicomfile/_fastscan.c"],
            optional=True,
        )
    ]
)
