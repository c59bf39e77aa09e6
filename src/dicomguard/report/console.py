"""Console rendering of a scan with Rich: findings, services and a summary line.

Every function takes the Console to print on, so the CLI passes its own and tests pass
`Console(record=True, width=...)` and read the text back.

Text that came from the network (product names, versions, evidence, error messages) is printed as
plain text, never as Rich markup, and control characters in it are shown escaped (`\\x1b`), so a
device cannot restyle the report or send escape sequences to the user's terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dicomguard.models import Finding, ScanResult, Service, Severity, Status
from dicomguard.store.codec import Counts, scan_counts

SEVERITY_STYLE: Mapping[Severity, str] = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}

STATUS_STYLE: Mapping[Status, str] = {
    Status.FAIL: "bold red",
    Status.ERROR: "bold magenta",
    Status.UNKNOWN: "blue",
    Status.PASS: "green",
}

# Order of the findings table: what needs attention first.
_STATUS_ORDER = {Status.FAIL: 0, Status.ERROR: 1, Status.UNKNOWN: 2, Status.PASS: 3}

INTRUSIVE_MARK = "[intrusive]"
MAX_SHORT = 80          # characters of evidence/facts shown in one cell
MAX_ITEMS = 3           # items of a list or object shown before "+N"
_CONTAINERS = (Mapping, list, tuple, set, frozenset)


def safe_text(value: object) -> str:
    """`value` as one printable line: control characters are shown escaped."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


def _short_value(value: Any, depth: int = 0) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "-"
    if isinstance(value, Mapping):
        if depth > 0:
            return f"{{{len(value)}}}"
        items = [f"{safe_text(k)}:{_short_value(v, depth + 1)}"
                 for k, v in list(value.items())[:MAX_ITEMS]]
        more = len(value) - MAX_ITEMS
        return "{" + ",".join(items) + (f",+{more}" if more > 0 else "") + "}"
    if isinstance(value, _CONTAINERS):
        seq = list(value)
        if depth > 0:
            return f"[{len(seq)}]"
        items = [_short_value(v, depth + 1) for v in seq[:MAX_ITEMS]]
        more = len(seq) - MAX_ITEMS
        return ",".join(items) + (f",+{more}" if more > 0 else "") if items else "[]"
    return safe_text(value)


def short_form(data: Mapping[str, Any], limit: int = MAX_SHORT) -> str:
    """Key evidence or facts on one line, e.g. "studies=9 patients=6 levels=PATIENT,STUDY".

    Scalars come first (in their order), then lists and objects, shortened to a few items; the
    whole is cut at `limit` characters with "…".
    """
    ordered = sorted(data.items(), key=lambda kv: isinstance(kv[1], _CONTAINERS))
    text = " ".join(f"{safe_text(k)}={_short_value(v)}" for k, v in ordered)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _severity_cell(severity: Severity, status: Status = Status.FAIL) -> Text:
    """The severity, coloured when the check failed; dim otherwise (it is then only the severity
    the problem would have)."""
    return Text(severity.label(),
                style=SEVERITY_STYLE[severity] if status is Status.FAIL else "dim")


def _status_cell(status: Status) -> Text:
    return Text(status.value.upper(), style=STATUS_STYLE[status])


def _sort_key(finding: Finding) -> tuple[int, int, str, int, str]:
    ep = finding.endpoint
    return (_STATUS_ORDER[finding.status], -int(finding.severity), ep.address, ep.port,
            finding.check_id)


def render_findings(console: Console, findings: Iterable[Finding], *,
                    show_pass: bool = False) -> None:
    """The findings table: failures first, most severe first. PASS rows are hidden unless
    `show_pass`; ERROR rows show the error instead of evidence; intrusive checks are marked."""
    findings = list(findings)
    shown = sorted((f for f in findings if show_pass or f.status is not Status.PASS),
                   key=_sort_key)
    hidden = len(findings) - len(shown)
    if not shown:
        note = "No findings." if not findings else f"No findings ({hidden} passed checks hidden)."
        console.print(Text(note, style="green"))
        return
    table = Table(title="Findings", title_justify="left", show_lines=False, expand=False)
    table.add_column("ID", no_wrap=True)
    table.add_column("Severity", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Endpoint", no_wrap=True)
    table.add_column("Title", ratio=2)
    table.add_column("Evidence", ratio=3)
    for f in shown:
        title = Text(safe_text(f.title))
        if f.intrusive:
            title.append(" " + INTRUSIVE_MARK, style="bold yellow")
        if f.status is Status.ERROR:
            detail = Text(f"error: {safe_text(f.error or 'unknown error')}", style="magenta")
        else:
            detail = Text(short_form(f.evidence))
        table.add_row(Text(f.check_id, style="bold"), _severity_cell(f.severity, f.status),
                      _status_cell(f.status), Text(safe_text(f.endpoint)), title, detail)
    if hidden:
        table.caption = f"{hidden} passed checks not shown"
    console.print(table)


def render_services(console: Console, services: Sequence[Service]) -> None:
    """The services table: endpoint, product, version and key facts."""
    if not services:
        console.print(Text("No services identified.", style="dim"))
        return
    table = Table(title="Services", title_justify="left")
    table.add_column("Endpoint", no_wrap=True)
    table.add_column("Product")
    table.add_column("Version")
    table.add_column("Facts", ratio=1)
    for s in services:
        table.add_row(Text(safe_text(s.endpoint)), Text(safe_text(s.product or "?")),
                      Text(safe_text(s.version or "?")), Text(short_form(s.facts)))
    console.print(table)


def summary_text(counts: Counts, *, services: int, interrupted: bool = False) -> Text:
    """One line, e.g. "2 services, 7 findings: 3 fail (2 critical, 1 high), 1 error, 3 pass;
    worst critical, exit code 4"."""
    line = Text()
    if interrupted:
        line.append("Scan interrupted: results are partial. ", style="bold yellow")
    line.append(f"{services} service{'s' if services != 1 else ''}, "
                f"{counts.total} finding{'s' if counts.total != 1 else ''}")
    parts = [(s, counts.by_status[s.value]) for s in sorted(Status, key=_STATUS_ORDER.__getitem__)
             if counts.by_status[s.value]]
    if parts:
        line.append(": ")
    for i, (status, n) in enumerate(parts):
        if i:
            line.append(", ")
        line.append(f"{n} {status.value}", style=STATUS_STYLE[status])
        if status is Status.FAIL:
            by_sev = [f"{counts.by_severity[sev.label()]} {sev.label()}"
                      for sev in sorted(Severity, reverse=True)
                      if counts.by_severity[sev.label()]]
            line.append(f" ({', '.join(by_sev)})")
    if counts.worst_severity is None:
        line.append("; nothing failed", style="green")
    else:
        line.append("; worst ")
        line.append_text(_severity_cell(counts.worst_severity))
    line.append(f", exit code {counts.exit_code}")
    return line


def render_summary(console: Console, result: ScanResult) -> None:
    console.print(summary_text(scan_counts(result), services=len(result.services),
                               interrupted=result.interrupted))


def render_scan(console: Console, result: ScanResult, *, show_pass: bool = False) -> None:
    """Services, findings and the summary line of a scan."""
    render_services(console, result.services)
    render_findings(console, result.findings, show_pass=show_pass)
    render_summary(console, result)
