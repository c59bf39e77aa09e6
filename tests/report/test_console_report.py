"""The console report, rendered on a recording Console and read back as text."""

from __future__ import annotations

import dataclasses
import io

from rich.console import Console

from dicomguard.models import Endpoint, Finding, ScanResult, Service, Severity, Status
from dicomguard.report.console import (
    render_findings,
    render_scan,
    render_services,
    render_summary,
    safe_text,
    short_form,
)


def _console(width: int = 200) -> Console:
    return Console(file=io.StringIO(), record=True, width=width, force_terminal=True,
                   color_system="standard")


def _lines(console: Console) -> list[str]:
    return console.export_text(styles=False).splitlines()


def _row(lines: list[str], *needles: str) -> str:
    rows = [line for line in lines if all(n in line for n in needles)]
    assert len(rows) == 1, (needles, rows)
    return rows[0]


def test_findings_table(sample: ScanResult) -> None:
    console = _console()
    render_findings(console, sample.findings)
    lines = _lines(console)
    text = "\n".join(lines)
    assert "Findings" in lines[0]
    header = _row(lines, "ID", "Severity", "Status", "Endpoint", "Title", "Evidence")
    assert header

    cfind = _row(lines, "DICOM-003", "FAIL")
    assert "critical" in cfind
    assert "dicom://127.0.0.1:4242" in cfind
    assert "studies=9 patients=6 records=15" in cfind

    assert "[intrusive]" in _row(lines, "DICOM-007")
    assert text.count("[intrusive]") == 1

    error = _row(lines, "DICOM-004", "ERROR")
    assert "error: association aborted by peer" in error
    assert "UNKNOWN" in _row(lines, "DICOM-003", "dicom://127.0.0.2:11112")

    # PASS hidden by default, and said so
    assert "PASS" not in text
    assert "HTTP-001" not in text
    assert "2 passed checks not shown" in text

    # failures first, most severe first, then errors, then unknown
    order = [line.split()[1] for line in lines
             if line.startswith("│") and line.split()[1][:4] in {"DICO", "FTP-", "HTTP"}]
    assert order[:2] == ["DICOM-003", "DICOM-007"]
    assert order[2:] == ["DICOM-001", "FTP-001", "DICOM-005", "DICOM-004", "DICOM-003"]


def test_pass_rows_on_request(sample: ScanResult) -> None:
    console = _console()
    render_findings(console, sample.findings, show_pass=True)
    lines = _lines(console)
    assert "PASS" in _row(lines, "HTTP-001")
    assert "not shown" not in "\n".join(lines)


def test_severity_and_status_are_coloured(sample: ScanResult) -> None:
    console = _console()
    render_findings(console, sample.findings)
    styled = console.export_text(styles=True).splitlines()
    cfind = _row(styled, "DICOM-003", "4242")
    assert "\x1b[1;37;41mcritical" in cfind               # bold white on red
    assert "\x1b[1;31mFAIL" in cfind
    assert "\x1b[33mmedium" in _row(styled, "DICOM-005")
    assert "\x1b[1;35mERROR" in _row(styled, "DICOM-004")
    unknown = _row(styled, "DICOM-003", "11112")
    assert "\x1b[34mUNKNOWN" in unknown
    assert "\x1b[2mcritical" in unknown                   # not failed: severity dimmed


def test_services_table(sample: ScanResult) -> None:
    console = _console()
    render_services(console, sample.services)
    lines = _lines(console)
    row = _row(lines, "dicom://127.0.0.1:4242")
    assert "Orthanc" in row and "1.12.1" in row
    assert "accepted_contexts=42 any_called_ae=yes tls=no" in row
    assert "anonymous=yes dicom_files=14 paths=/pub/export,/pub/old" in _row(lines, "vsftpd")


def test_summary_line(sample: ScanResult) -> None:
    console = _console()
    render_summary(console, sample)
    assert console.export_text().strip() == (
        "4 services, 9 findings: 5 fail (2 critical, 2 high, 1 medium), 1 error, 1 unknown, "
        "2 pass; worst critical, exit code 4")


def test_interrupted_and_empty_scan(sample: ScanResult) -> None:
    console = _console()
    render_scan(console, dataclasses.replace(sample, services=(), findings=(), interrupted=True,
                                             finished_at=None))
    text = console.export_text()
    assert "No services identified." in text
    assert "No findings." in text
    assert "Scan interrupted: results are partial. 0 services, 0 findings; nothing failed, " \
           "exit code 0" in text


def test_only_passes(sample: ScanResult) -> None:
    console = _console()
    passes = [f for f in sample.findings if f.status is Status.PASS]
    render_findings(console, passes)
    assert "No findings (2 passed checks hidden)." in console.export_text()


def test_text_from_the_network_cannot_restyle_or_escape() -> None:
    ep = Endpoint("127.0.0.9", 104)
    service = Service(ep, "Evil\x1b[2J[bold red]PACS[/bold red]", "1.0\n2",
                      {"banner": "\x1b]0;pwned\x07"})
    finding = Finding("DICOM-001", "t [link=x]y[/link]", ep, Status.ERROR, Severity.LOW,
                      error="boom\x1b[31m")
    console = _console()
    render_services(console, [service])
    render_findings(console, [finding])
    raw = console.export_text(styles=True, clear=False)
    assert "\x1b[2J" not in raw and "\x1b]0" not in raw and "\x07" not in raw
    text = console.export_text()
    assert "Evil\\x1b[2J[bold red]PACS[/bold red]" in text
    assert "1.0\\n2" in text
    assert "t [link=x]y[/link]" in text
    assert "boom\\x1b[31m" in text


def test_short_form() -> None:
    assert short_form({"studies": 9, "patients": 6}) == "studies=9 patients=6"
    assert short_form({"levels": ["A", "B", "C", "D", "E"], "n": 1}) == "n=1 levels=A,B,C,+2"
    assert short_form({"counts": {"PatientName": 14, "PatientID": 3}, "nested": [[1, 2]],
                       "none": None, "empty": []}) == \
        "none=- counts={PatientName:14,PatientID:3} nested=[2] empty=[]"
    long = short_form({f"k{i}": i for i in range(40)}, limit=30)
    assert len(long) == 30 and long.endswith("…")
    assert safe_text("a\tb\u202ec") == "a\\tb\\u202ec"
