"""Rich console rendering of an audit: overview, severities, PHI attributes, free-text findings,
risk flags, modalities, unreadable reasons, top folders; and the per-element view of one file.

Nothing here prints a value unless the result says ``show_phi`` (dates as year-month, no
institution or device names, hits without values). Keywords, counts and categories only.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dicomguard.audit.runner import AuditResult
from dicomguard.models import Severity
from dicomguard.phi.inspector import CATEGORY_SEVERITY, Category, PhiHit

from .audit_json import format_date

__all__ = ["render_audit", "render_hits", "severity_style"]

_STYLES = {Severity.INFO: "dim", Severity.LOW: "cyan", Severity.MEDIUM: "yellow",
           Severity.HIGH: "bold red", Severity.CRITICAL: "bold white on red"}


def severity_style(sev: Severity) -> str:
    return _STYLES[sev]


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _pct(n: int, total: int) -> str:
    return f"{100.0 * n / total:.0f}%" if total else "-"


def render_audit(result: AuditResult, console: Console, *, top: int = 25) -> None:
    """Print the summary tables of an audit."""
    s = result.summary
    show = result.options.show_phi
    dicom_total = s.dicom_files + s.unreadable_dicom

    overview = Table(title="PHI audit", show_header=False, title_justify="left")
    overview.add_column("what", style="bold")
    overview.add_column("value")
    overview.add_row("Files seen", f"{s.files_seen} ({_size(s.bytes_seen)})")
    overview.add_row("DICOM files", f"{s.dicom_files} ({_size(s.bytes_dicom)})"
                     + (f", {s.partial_files} partial" if s.partial_files else ""))
    overview.add_row("Not DICOM", str(s.non_dicom))
    overview.add_row("Unreadable", f"{s.unreadable}"
                     + (f" ({s.unreadable_dicom} DICOM, partly inspected)"
                        if s.unreadable_dicom else ""))
    overview.add_row("DICOM files with PHI", f"{s.phi_files} ({_pct(s.phi_files, dicom_total)})")
    overview.add_row("Patients (distinct)", f"{len(s.patients)}"
                     + (f" (+{s.files_without_patient} files without patient identity)"
                        if s.files_without_patient else ""))
    overview.add_row("Studies / series", f"{len(s.studies)} / {len(s.series)}")
    overview.add_row("Institutions / devices", f"{len(s.institutions)} / {len(s.devices)}")
    lo, hi = format_date(s.study_date_min, show), format_date(s.study_date_max, show)
    if lo is not None:
        overview.add_row("Study dates", f"{lo} .. {hi}")
    rate = s.files_seen / result.elapsed if result.elapsed > 0 else 0.0
    overview.add_row("Elapsed", f"{result.elapsed:.1f} s ({rate:.0f} files/s, "
                     f"{result.options.jobs} job{'s' if result.options.jobs > 1 else ''})")
    worst = s.worst_severity
    overview.add_row("Worst severity", f"[{severity_style(worst)}]{worst.label()}[/]")
    console.print(overview)

    if s.severities:
        sev_table = Table(title="Files by severity", title_justify="left")
        sev_table.add_column("severity")
        sev_table.add_column("files", justify="right")
        for sev in sorted(Severity, reverse=True):
            n = s.severities.get(sev.name, 0)
            if n:
                sev_table.add_row(f"[{severity_style(sev)}]{sev.label()}[/]", str(n))
        console.print(sev_table)

    if s.categories:
        cat_table = Table(title="What identifies (files per category)", title_justify="left")
        cat_table.add_column("category")
        cat_table.add_column("severity")
        cat_table.add_column("files", justify="right")
        cat_table.add_column("%", justify="right")
        for cat, n in sorted(s.categories.items(), key=lambda kv: (-CATEGORY_SEVERITY[
                Category(kv[0])], -kv[1])):
            sev = CATEGORY_SEVERITY[Category(cat)]
            cat_table.add_row(cat, f"[{severity_style(sev)}]{sev.label()}[/]", str(n),
                              _pct(n, dicom_total))
        console.print(cat_table)

    if s.attributes:
        public = [(k, n) for k, n in s.attributes.items() if not k.startswith("(")]
        private = [(k, n) for k, n in s.attributes.items() if k.startswith("(")]
        attr_table = Table(title=f"PHI attributes (top {top}; keywords only)",
                           title_justify="left")
        attr_table.add_column("attribute")
        attr_table.add_column("category")
        attr_table.add_column("files", justify="right")
        attr_table.add_column("%", justify="right")
        for kw, n in sorted(public, key=lambda kv: (-kv[1], kv[0]))[:top]:
            attr_table.add_row(Text(kw), s.attribute_categories.get(kw, ""), str(n),
                               _pct(n, dicom_total))
        if private:
            attr_table.add_row(f"[dim]{len(private)} private attributes[/]", "private",
                               str(max(n for _, n in private)), "")
        console.print(attr_table)

    if s.text_findings:
        tf = Table(title="Identifying data in free text", title_justify="left")
        tf.add_column("attribute")
        tf.add_column("found")
        tf.add_column("files", justify="right")
        for key, n in sorted(s.text_findings.items(), key=lambda kv: (-kv[1], kv[0]))[:top]:
            kw, _, det = key.partition("\t")
            tf.add_row(Text(kw), det, str(n))
        console.print(tf)

    if s.flags:
        ft = Table(title="Risk flags", title_justify="left")
        ft.add_column("flag")
        ft.add_column("files", justify="right")
        for flag, n in sorted(s.flags.items(), key=lambda kv: (-kv[1], kv[0])):
            ft.add_row(flag, str(n))
        console.print(ft)

    if s.modalities:
        mt = Table(title="Modalities", title_justify="left")
        mt.add_column("modality")
        mt.add_column("files", justify="right")
        for mod, n in s.modalities.most_common(15):
            mt.add_row(Text(mod), str(n))
        console.print(mt)

    if s.unreadable_reasons or s.walk_errors:
        ut = Table(title="Unreadable files and walk errors", title_justify="left")
        ut.add_column("reason")
        ut.add_column("count", justify="right")
        for reason, n in s.unreadable_reasons.most_common(15):
            ut.add_row(Text(reason), str(n))
        for reason, n in s.walk_errors.most_common(10):
            ut.add_row(Text(f"walk: {reason}", style="dim"), str(n))
        console.print(ut)

    folders = s.top_folders(10)
    if folders and any(p for _, p, _ in folders):
        title = "Top folders by patients" + ("" if show else " (first two levels)")
        tt = Table(title=title, title_justify="left")
        tt.add_column("folder", overflow="fold")
        tt.add_column("patients", justify="right")
        tt.add_column("DICOM files", justify="right")
        for folder, patients, files in folders:
            tt.add_row(Text(folder), str(patients), str(files))
        console.print(tt)

    if show and (s.institution_names or s.device_names):
        nt = Table(title="Institutions and devices (--show-phi)", title_justify="left")
        nt.add_column("kind")
        nt.add_column("name")
        nt.add_column("files", justify="right")
        for name, n in s.institution_names.most_common(10):
            nt.add_row("institution", Text(name), str(n))
        for name, n in s.device_names.most_common(10):
            nt.add_row("device", Text(name), str(n))
        console.print(nt)

    if result.options.ocr:
        ot = Table(title="Burned-in text (OCR)", title_justify="left", show_header=False)
        ot.add_column("what")
        ot.add_column("value")
        ot.add_row("Files examined", str(s.ocr_files))
        ot.add_row("Files with text in the pixels", str(s.ocr_text_files))
        for kw, n in s.ocr_matches.most_common(10):
            ot.add_row(Text(f"{kw} shown in the pixels"), f"{n} files")
        for reason, n in s.ocr_errors.most_common(5):
            ot.add_row(Text(f"error: {reason}", style="dim"), f"{n} files")
        console.print(ot)

    if result.stopped_at_max_files:
        console.print(f"[yellow]Stopped after --max-files {result.options.max_files}.[/]")
    if result.interrupted:
        console.print("[yellow]Interrupted: the summary covers the files audited so far.[/]")
    if not show and s.phi_files:
        console.print("[dim]Values are not shown; --show-phi shows them (handle the output as "
                      "PHI).[/]")


def render_hits(hits: Sequence[PhiHit], console: Console, *, show_phi: bool,
                title: str = "PHI in this file") -> None:
    """The per-element view of one file: path, category, source/action, value (show_phi)."""
    table = Table(title=title, title_justify="left")
    table.add_column("element", overflow="fold")
    table.add_column("category")
    table.add_column("why")
    if show_phi:
        table.add_column("value", overflow="fold")
    for hit in sorted(hits, key=lambda h: (-CATEGORY_SEVERITY[h.category], h.path)):
        sev = CATEGORY_SEVERITY[hit.category]
        why = hit.source if hit.action is None else f"Annex E {hit.action}"
        row: list[Text | str] = [Text(hit.path), f"[{severity_style(sev)}]{hit.category.value}[/]",
                                 why]
        if show_phi:
            row.append(Text("" if hit.value is None else hit.value))
        table.add_row(*row)
    console.print(table)
