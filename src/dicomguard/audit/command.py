"""The ``dicomguard audit`` command: wiring, progress and exit codes only.

    from dicomguard.audit.command import register
    register(app)          # adds `audit` to the Typer app

Exit codes (docs/audit-format.md): 0 no DICOM file or nothing identifying; 1 low, 2 medium,
3 high, 4 critical (the worst file); 64 usage error (including --ocr when OCR cannot run);
70 the tool itself failed; 130 interrupted (the partial summary is printed and written first).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import BrokenExecutor
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from dicomguard.dicomfile import read_header
from dicomguard.phi.inspector import Inspector, PhiHit

from .runner import AuditOptions, AuditResult, ocr_unavailable_reason, run_audit
from .summary import AuditSummary

__all__ = ["EXIT_INTERRUPTED", "EXIT_SOFTWARE", "EXIT_USAGE", "audit", "register"]

EXIT_USAGE = 64
EXIT_SOFTWARE = 70
EXIT_INTERRUPTED = 130


def register(app: typer.Typer) -> None:
    """Add the ``audit`` command to ``app``."""
    app.command("audit")(audit)


def audit(
    paths: Annotated[list[Path], typer.Argument(
        help="Files and folders to audit (DICOM files are recognised by content).")],
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=256,
                                      help="Worker processes.")] = 1,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write the JSON report (dicomguard.audit/1) to this file.")] = None,
    ocr: Annotated[bool, typer.Option(
        "--ocr", help="Search the pixels of files at burned-in risk for text (Tesseract; "
                      "slow).")] = False,
    show_phi: Annotated[bool, typer.Option(
        "--show-phi", help="Show values (names, IDs, full dates, institutions, full folders). "
                           "The output is then PHI.")] = False,
    max_files: Annotated[int | None, typer.Option(
        "--max-files", min=1, help="Stop after this many files.")] = None,
    follow_symlinks: Annotated[bool, typer.Option(
        "--follow-symlinks", help="Follow symbolic links (each folder is visited once).")
    ] = False,
    progress: Annotated[bool, typer.Option(
        "--progress/--no-progress", help="Progress on stderr.")] = True,
) -> None:
    """Audit files and folders for patient-identifying data (PHI): what, how much, how bad.

    Reports attribute keywords, counts, categories and risk flags; never a value unless
    --show-phi. For a single file, --show-phi lists the value of every identifying attribute.
    """
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    for p in paths:
        if not os.path.lexists(p):
            err.print(f"[bold red]error:[/] no such file or folder: {p}")
            raise typer.Exit(EXIT_USAGE)
    if ocr:
        reason = ocr_unavailable_reason()
        if reason is not None:
            err.print(f"[bold red]error:[/] --ocr is unavailable: {reason}")
            raise typer.Exit(EXIT_USAGE)
    options = AuditOptions(jobs=jobs, show_phi=show_phi, max_files=max_files,
                           follow_symlinks=follow_symlinks, ocr=ocr)
    try:
        result = _run(paths, options, err if progress else None)
        hits = _single_file_hits(paths, show_phi)
        from dicomguard.report.audit_console import render_audit, render_hits
        from dicomguard.report.audit_json import audit_exit_code, write_audit_json

        render_audit(result, out)
        if hits is not None:
            render_hits(hits, out, show_phi=show_phi, title=f"PHI in {paths[0]}")
        if json_out is not None:
            write_audit_json(result, json_out, hits=hits)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except OSError as exc:
        err.print(f"[bold red]error:[/] {exc.strerror or exc}")
        raise typer.Exit(EXIT_SOFTWARE) from None
    except BrokenExecutor:
        err.print("[bold red]error:[/] a worker process died; try --jobs 1")
        raise typer.Exit(EXIT_SOFTWARE) from None
    if result.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    raise typer.Exit(audit_exit_code(result))


def _run(paths: list[Path], options: AuditOptions, err: Console | None) -> AuditResult:
    roots = [str(p) for p in paths]
    if err is None:
        return run_audit(roots, options)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    # refreshed by the audit's own progress calls (several a second), not by a thread: with
    # no other thread alive, --jobs workers are forked, which is fastest (see runner)
    with Progress(*columns, console=err, transient=True, auto_refresh=False) as bar:
        task = bar.add_task("auditing", total=None)

        last = 0.0

        def update(summary: AuditSummary) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last < 0.1:
                return
            last = now
            bar.update(task, description=(
                f"auditing: {summary.files_seen} files, {summary.dicom_files} DICOM, "
                f"{len(summary.patients)} patients"))
            bar.refresh()

        return run_audit(roots, options, progress=update)


def _single_file_hits(paths: list[Path], show_phi: bool) -> list[PhiHit] | None:
    """Per-element detail when the audit is of exactly one file."""
    if len(paths) != 1 or not paths[0].is_file():
        return None
    header = read_header(paths[0])
    if not header.is_dicom:
        return None
    return list(Inspector(detail=True, show_phi=show_phi).inspect(header).hits)
