"""Batch de-identification of a folder: safe, resumable, parallel.

    summary = run(RunConfig(input=Path("in"), output=Path("out"), key=key, jobs=4))

Safety rules:

- never writes over the input: the output folder may not be the input folder, inside it, or
  contain it; every output path is checked against its input;
- each output is written to a temporary file in its final folder and renamed into place
  (``os.replace``), so a reader (or a crash) never sees half a file;
- an output folder that already holds files is refused unless ``resume`` is set; with
  ``resume``, inputs recorded as done in the journal whose output exists are skipped;
- a corrupt, unsupported or non-DICOM input is reported with its reason and skipped; the
  batch goes on; DICOMDIR files are skipped (they index the input's paths);
- files at burned-in-text risk that were not redacted follow ``on_burned_in``: ``warn``
  (written, BurnedInAnnotation YES, PatientIdentityRemoved NO, reported), ``quarantine``
  (written to the quarantine folder instead) or ``fail`` (not written, the run fails).

Output names: ``uid`` (default) puts each file at ``<StudyUID>/<SeriesUID>/<SOPUID>.dcm`` with
the new UIDs, so no original identifier survives in a path; ``keep`` keeps the input's
relative path (only when the paths are known to carry nothing identifying).

The journal (``<output>/.dicomguard-deid/journal.jsonl``) holds, per finished input, a keyed
HMAC of its relative path, size and modification time, and the output's relative path: no
original identifier. Mapping pairs (PHI) are only collected with ``mapping`` set.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .codec import CodecError
from .engine import Engine, EngineConfig
from .mapping import write_mappings
from .profile import ProfileSettings

__all__ = [
    "BURNED_IN_POLICIES",
    "FileOutcome",
    "RunConfig",
    "RunError",
    "Summary",
    "iter_inputs",
    "run",
]

BURNED_IN_POLICIES = ("warn", "quarantine", "fail")
JOURNAL_DIR = ".dicomguard-deid"
JOURNAL = "journal.jsonl"
MAX_FILE_BYTES = 4 * 1024 ** 3


class RunError(Exception):
    """The run cannot start (bad folders, output not empty without resume, ...)."""


@dataclass(frozen=True, slots=True)
class RunConfig:
    input: Path
    output: Path
    key: bytes = field(repr=False)
    settings: ProfileSettings = field(default_factory=ProfileSettings)
    jobs: int = 1
    resume: bool = False
    redact: bool = False
    on_burned_in: str = "warn"
    mapping: Path | None = None
    names: str = "uid"
    quarantine: Path | None = None

    @property
    def quarantine_dir(self) -> Path:
        return self.quarantine or self.output.with_name(self.output.name + "-quarantine")


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What happened to one input. ``source`` is the relative input path; ``reason`` never
    holds a value from the file."""

    source: str
    status: str                     # written | quarantined | skipped | error
    reason: str = ""
    output: str = ""
    burned_in: bool = False         # written at burned-in risk (warn policy)
    redacted_boxes: int = 0
    journal_key: str = ""
    uid_pairs: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    patid_pairs: tuple[tuple[str, str], ...] = field(default=(), repr=False)


@dataclass(slots=True)
class Summary:
    written: int = 0
    quarantined: int = 0
    resumed: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    burned_in_written: list[str] = field(default_factory=list)
    redacted_files: int = 0
    redacted_boxes: int = 0
    failed_policy: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.failed_policy


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.relative_to(parent)
        return True
    except ValueError:
        return False


def check_folders(config: RunConfig) -> None:
    src = config.input.resolve()
    dst = config.output.resolve()
    if not src.is_dir():
        raise RunError(f"input {config.input} is not a folder")
    for name, other in (("output", dst), ("quarantine", config.quarantine_dir.resolve())):
        if other == src or _inside(other, src) or _inside(src, other):
            raise RunError(f"the {name} folder must be outside the input folder (and not "
                           "contain it): dicomguard never writes into its input")
    if config.mapping is not None:
        m = config.mapping.resolve()
        if m == src or _inside(m, src):
            raise RunError("the mapping folder must be outside the input folder")
        if m == dst or _inside(m, dst):
            raise RunError("the mapping folder must be outside the output folder (it holds "
                           "original identifiers; the output is meant to be shared)")
    if dst.exists() and not config.resume and any(p.name != JOURNAL_DIR for p in dst.iterdir()):
        raise RunError(f"output {config.output} is not empty; use --resume to continue "
                       "an earlier run, or choose an empty folder")
    if config.on_burned_in not in BURNED_IN_POLICIES:
        raise RunError(f"--on-burned-in must be one of {', '.join(BURNED_IN_POLICIES)}")
    if config.names not in ("uid", "keep"):
        raise RunError("--names must be uid or keep")


def iter_inputs(root: Path) -> Iterator[Path]:
    """Regular files under root, sorted, symlinks not followed."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                yield path


def _journal_key(key: bytes, rel: str, st: os.stat_result) -> str:
    msg = f"{rel}\0{st.st_size}\0{st.st_mtime_ns}".encode("utf-8", "surrogateescape")
    return hmac.new(key, b"journal\0" + msg, hashlib.sha256).hexdigest()[:32]


def _load_journal(output: Path) -> dict[str, str]:
    path = output / JOURNAL_DIR / JOURNAL
    done: dict[str, str] = {}
    if not path.exists():
        return done
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
                done[str(rec["in"])] = str(rec["out"])
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a crash
    return done


# --- worker side ------------------------------------------------------------------------

_ENGINE: Engine | None = None
_CONFIG: RunConfig | None = None


def _init_worker(config: RunConfig) -> None:
    global _ENGINE, _CONFIG
    _CONFIG = config
    _ENGINE = Engine(EngineConfig(key=config.key, settings=config.settings,
                                  record_mapping=config.mapping is not None))


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _process(task: tuple[str, str]) -> FileOutcome:
    rel, journal_key = task
    assert _ENGINE is not None and _CONFIG is not None
    engine, config = _ENGINE, _CONFIG
    src = config.input / rel
    try:
        return _process_one(engine, config, src, rel, journal_key)
    except CodecError as exc:
        return FileOutcome(rel, "error", f"unreadable: {exc}", journal_key=journal_key)
    except OSError as exc:
        return FileOutcome(rel, "error", f"I/O error: {exc.strerror or type(exc).__name__}",
                           journal_key=journal_key)
    except Exception as exc:  # one broken file never aborts the batch
        return FileOutcome(rel, "error", f"internal error: {type(exc).__name__}",
                           journal_key=journal_key)


def _process_one(engine: Engine, config: RunConfig, src: Path, rel: str,
                 journal_key: str) -> FileOutcome:
    if src.name.upper() == "DICOMDIR":
        return FileOutcome(rel, "skipped", "DICOMDIR not copied (it indexes the input paths)",
                           journal_key=journal_key)
    if src.stat().st_size > MAX_FILE_BYTES:
        return FileOutcome(rel, "error", "larger than 4 GiB", journal_key=journal_key)
    data = src.read_bytes()
    if (len(data) < 132 or data[128:132] != b"DICM") and not _headerless_dicom(data):
        return FileOutcome(rel, "error", "not a DICOM file", journal_key=journal_key)
    remapper = engine.remapper
    if remapper.record:
        remapper.uid_pairs.clear()
        remapper.patid_pairs.clear()
    boxes = 0
    cleaned = False
    reason = ""
    if config.redact:
        from .redact import RedactionError, redact_bytes

        try:
            redacted = redact_bytes(data, force=False)
        except RedactionError as exc:
            redacted = None
            reason = str(exc)
        if redacted is not None:
            data, boxes = redacted.data, redacted.boxes
            cleaned = redacted.cleaned
    result = engine.deidentify(data, pixels_cleaned=cleaned)
    if config.names == "uid" and result.sop_instance_uid:
        out_rel = "/".join([result.study_uid or "no-study", result.series_uid or "no-series",
                            result.sop_instance_uid + ".dcm"])
    else:
        out_rel = rel
    status = "written"
    target_root = config.output
    if result.burned_in_risk:
        if config.on_burned_in == "fail":
            return FileOutcome(rel, "error", "burned-in text risk, not redacted "
                               f"(--on-burned-in fail){': ' + reason if reason else ''}",
                               journal_key="")
        if config.on_burned_in == "quarantine":
            status = "quarantined"
            target_root = config.quarantine_dir
    dest = target_root / out_rel
    if dest.resolve() == src.resolve():
        return FileOutcome(rel, "error", "output path is the input path", journal_key="")
    _atomic_write(dest, result.data)
    return FileOutcome(
        rel, status, reason, output=out_rel, burned_in=result.burned_in_risk,
        redacted_boxes=boxes, journal_key=journal_key if status == "written" else "",
        uid_pairs=tuple(remapper.uid_pairs.items()) if remapper.record else (),
        patid_pairs=tuple(remapper.patid_pairs.items()) if remapper.record else ())


def _headerless_dicom(data: bytes) -> bool:
    """A Part 10 file without preamble, or a raw data set starting with group 0008."""
    if len(data) < 8:
        return False
    return data[0:2] in (b"\x02\x00", b"\x08\x00")


# --- main side ---------------------------------------------------------------------------


def run(config: RunConfig, *, progress: Callable[[int, int], None] | None = None) -> Summary:
    """De-identify every file under config.input into config.output."""
    check_folders(config)
    config.output.mkdir(parents=True, exist_ok=True)
    journal_dir = config.output / JOURNAL_DIR
    journal_dir.mkdir(exist_ok=True)
    done = _load_journal(config.output) if config.resume else {}
    summary = Summary()
    tasks: list[tuple[str, str]] = []
    for path in iter_inputs(config.input):
        rel = path.relative_to(config.input).as_posix()
        try:
            st = path.stat()
        except OSError as exc:
            summary.errors.append((rel, f"I/O error: {exc.strerror}"))
            continue
        jkey = _journal_key(config.key, rel, st)
        out = done.get(jkey)
        if out is not None and (config.output / out).is_file():
            summary.resumed += 1
            continue
        tasks.append((rel, jkey))
    total = len(tasks)
    uid_pairs: dict[str, str] = {}
    patid_pairs: dict[str, str] = {}
    jobs = max(1, config.jobs)
    with (journal_dir / JOURNAL).open("a", encoding="utf-8") as journal:
        try:
            for i, outcome in enumerate(_outcomes(config, tasks, jobs), 1):
                _account(summary, outcome)
                if outcome.status == "written" and outcome.journal_key:
                    journal.write(json.dumps({"in": outcome.journal_key,
                                              "out": outcome.output}) + "\n")
                    journal.flush()
                if config.mapping is not None:
                    uid_pairs.update(outcome.uid_pairs)
                    patid_pairs.update(outcome.patid_pairs)
                if progress is not None:
                    progress(i, total)
        finally:
            if config.mapping is not None and (uid_pairs or patid_pairs):
                write_mappings(config.mapping, uid_pairs, patid_pairs)
    return summary


def _outcomes(config: RunConfig, tasks: list[tuple[str, str]],
              jobs: int) -> Iterator[FileOutcome]:
    if jobs == 1 or len(tasks) < 2:
        _init_worker(config)
        for task in tasks:
            yield _process(task)
        return
    chunk = max(1, min(64, len(tasks) // (jobs * 8) or 1))
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                             initargs=(config,)) as pool:
        yield from pool.map(_process, tasks, chunksize=chunk)


def _account(summary: Summary, outcome: FileOutcome) -> None:
    if outcome.redacted_boxes:
        summary.redacted_files += 1
        summary.redacted_boxes += outcome.redacted_boxes
    if outcome.status == "written":
        summary.written += 1
        if outcome.burned_in:
            summary.burned_in_written.append(outcome.source)
    elif outcome.status == "quarantined":
        summary.quarantined += 1
    elif outcome.status == "skipped":
        summary.reasons[outcome.reason] += 1
    else:
        if "--on-burned-in fail" in outcome.reason:
            summary.failed_policy += 1
        summary.errors.append((outcome.source, outcome.reason))
        summary.reasons[outcome.reason.split(":")[0]] += 1
