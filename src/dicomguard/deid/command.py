"""The ``deid`` and ``keygen`` commands. The CLI adds them with ``register(app)``.

    dicomguard keygen key.file
    dicomguard deid IN OUT --key key.file [--option NAME ...] [--jobs N] [--resume]
                    [--redact-burned-in] [--on-burned-in warn|quarantine|fail]
                    [--mapping DIR] [--overrides FILE] [--names uid|keep]
    dicomguard deid --verify OUT

Exit codes: 0 everything written (or verified clean); 1 some files were skipped with an error,
failed the burned-in policy, or failed verification; 64 usage error; 70 internal failure;
130 interrupted. Nothing here prints a value from a file or the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dicomguard.phi.rules import OPTION_NAMES

from .overrides import OverrideError, describe, load_overrides
from .profile import ProfileSettings
from .remap import KeyError_, generate_key_file, load_key
from .runner import BURNED_IN_POLICIES, RunConfig, RunError, Summary, run
from .verify import VerifyReport, iter_issue_lines, verify_tree

__all__ = ["register"]

EXIT_FAILED = 1
EXIT_USAGE = 64
EXIT_INTERRUPTED = 130

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _usage(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(EXIT_USAGE)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=True,
                    disable=not err.is_terminal)


def keygen(path: Annotated[Path, typer.Argument(help="Key file to create (mode 0600).")]
           ) -> None:
    """Create a de-identification key: 32 random bytes, hex, readable by you only."""
    try:
        generate_key_file(path)
    except FileExistsError:
        raise _usage(f"{path} exists; a key is never overwritten") from None
    except OSError as exc:
        raise _usage(f"cannot create {path}: {exc.strerror}") from None
    console.print(f"wrote a new key to {path} (mode 0600). Keep it secret and keep it safe: "
                  "the same key gives the same pseudonyms, UIDs and date offsets.")


def deid(
    input_dir: Annotated[Path, typer.Argument(help="Folder of DICOM files (or, with --verify, "
                                              "the de-identified folder to check).")],
    output_dir: Annotated[Path | None, typer.Argument(help="Output folder (new or empty).")
                          ] = None,
    key: Annotated[Path | None, typer.Option("--key", help="Key file (dicomguard keygen).")
                   ] = None,
    option: Annotated[list[str] | None, typer.Option(
        "--option", help="Annex E option, repeatable: " + ", ".join(OPTION_NAMES))] = None,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Worker processes.")] = 1,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an earlier run into the "
                                         "same output folder.")] = False,
    redact_burned_in: Annotated[bool, typer.Option(
        "--redact-burned-in", help="OCR burned-in text and fill it (needs tesseract).")
    ] = False,
    on_burned_in: Annotated[str, typer.Option(
        "--on-burned-in", help="Files at burned-in-text risk that were not redacted: "
        "warn (write, marked), quarantine (write to OUT-quarantine), fail.")] = "warn",
    mapping: Annotated[Path | None, typer.Option(
        "--mapping", help="Write uid_mapping.csv and patid_mapping.csv (original identifiers: "
        "PHI, mode 0600) into this folder.")] = None,
    overrides: Annotated[Path | None, typer.Option(
        "--overrides", help="TOML file: keep / remove / replace attributes.")] = None,
    names: Annotated[str, typer.Option(
        "--names", help="Output names: uid (Study/Series/SOP UIDs, default) or keep "
        "(input relative paths).")] = "uid",
    quarantine: Annotated[Path | None, typer.Option(
        "--quarantine", help="Quarantine folder (default: OUT-quarantine).")] = None,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Re-audit a de-identified folder; fail if anything identifying "
        "survived.")] = False,
) -> None:
    """De-identify DICOM files (PS3.15 Annex E), or verify a de-identified folder."""
    if verify:
        if output_dir is not None:
            raise _usage("--verify takes one folder: dicomguard deid --verify OUT")
        raise typer.Exit(_verify(input_dir))
    if output_dir is None:
        raise _usage("an output folder is required: dicomguard deid IN OUT --key key.file")
    if key is None:
        raise _usage("--key is required (create one with: dicomguard keygen key.file)")
    if on_burned_in not in BURNED_IN_POLICIES:
        raise _usage(f"--on-burned-in must be one of {', '.join(BURNED_IN_POLICIES)}")
    try:
        key_bytes = load_key(key)
    except KeyError_ as exc:
        raise _usage(str(exc)) from None
    if os.name == "posix" and key.stat().st_mode & 0o077:
        err.print(f"[yellow]warning:[/] key file {key} is readable by other users")
    try:
        over = load_overrides(overrides) if overrides else {}
        settings = ProfileSettings(options=frozenset(option or ()), overrides=over)
    except (OverrideError, ValueError) as exc:
        raise _usage(str(exc)) from None
    for line in describe(over):
        err.print(f"override: {line}")
    config = RunConfig(input=input_dir, output=output_dir, key=key_bytes, settings=settings,
                       jobs=jobs, resume=resume, redact=redact_burned_in,
                       on_burned_in=on_burned_in, mapping=mapping, names=names,
                       quarantine=quarantine)
    try:
        with _progress() as progress:
            task = progress.add_task("de-identifying", total=None)

            def step(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            summary = run(config, progress=step)
    except RunError as exc:
        raise _usage(str(exc)) from None
    except KeyboardInterrupt:
        err.print("interrupted: finished files are kept; run again with --resume")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    _print_summary(summary, config)
    raise typer.Exit(0 if summary.ok else EXIT_FAILED)


def _print_summary(summary: Summary, config: RunConfig) -> None:
    console.print(f"written: {summary.written}   quarantined: {summary.quarantined}   "
                  f"already done (resume): {summary.resumed}   errors: {len(summary.errors)}")
    if summary.redacted_files:
        console.print(f"burned-in text filled: {summary.redacted_boxes} boxes in "
                      f"{summary.redacted_files} files")
    if summary.burned_in_written:
        console.print(f"[yellow]{len(summary.burned_in_written)} files may carry burned-in "
                      "text[/] (written with BurnedInAnnotation YES, PatientIdentityRemoved "
                      "NO); use --redact-burned-in or --on-burned-in quarantine")
    if summary.quarantined:
        console.print(f"quarantined files are in {config.quarantine_dir}")
    for reason, count in summary.reasons.most_common():
        console.print(f"  {count} x {reason}")
    for source, reason in summary.errors[:50]:
        err.print(f"skipped {source}: {reason}")
    if len(summary.errors) > 50:
        err.print(f"... and {len(summary.errors) - 50} more")
    if config.mapping is not None:
        console.print(f"mapping written to {config.mapping} (contains original identifiers)")


def _verify(folder: Path) -> int:
    if not folder.is_dir():
        raise _usage(f"{folder} is not a folder")
    with _progress() as progress:
        task = progress.add_task("verifying", total=None)
        report: VerifyReport = verify_tree(
            folder, progress=lambda d, t: progress.update(task, completed=d, total=t))
    for line in iter_issue_lines(report):
        console.print(line)
    status = "[green]clean[/]" if report.ok else "[red]identifying data found[/]"
    console.print(f"verified {report.files} files: {report.passed} passed, "
                  f"{len(report.failed)} failed: {status}")
    return 0 if report.ok else EXIT_FAILED


def register(app: typer.Typer) -> None:
    """Add ``deid`` and ``keygen`` to the dicomguard command line."""
    app.command("deid")(deid)
    app.command("keygen")(keygen)
