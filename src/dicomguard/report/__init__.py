"""Reports of scan results.

    console.py       Rich tables for the terminal (render_scan, render_findings, ...)
    json_report.py   the versioned JSON document dicomguard.scan/1 (to_json, write_json, from_json)

The JSON format is documented in docs/report-format.md and described by the JSON Schema in
dicomguard/data/scan-report.schema.json. A new format is one more module here.
"""
