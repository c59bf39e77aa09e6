"""Auditing files and folder trees for PHI: what is there, how much, how bad, never the values.

    from dicomguard.audit import run_audit, audit_file, AuditOptions
    result = run_audit(["/data/pacs"], AuditOptions(jobs=4))
    result.summary                         # an AuditSummary: counts, salted hashes, no values
    audit_file(BytesSource(prefix, total_size=n))   # one remote sample, same code

    walk.py      lazy os.scandir walk with folder keys
    summary.py   FileAudit, AuditSummary (mergeable), Hasher
    runner.py    audit_file, run_audit (serial or processes), Ctrl-C handling
    command.py   the `dicomguard audit` command: register(app)
"""

from .runner import (
    AuditContext,
    AuditOptions,
    AuditResult,
    audit_file,
    ocr_unavailable_reason,
    run_audit,
)
from .summary import AuditSummary, FileAudit, FileStatus, Hasher
from .walk import iter_files

__all__ = [
    "AuditContext",
    "AuditOptions",
    "AuditResult",
    "AuditSummary",
    "FileAudit",
    "FileStatus",
    "Hasher",
    "audit_file",
    "iter_files",
    "ocr_unavailable_reason",
    "run_audit",
]
