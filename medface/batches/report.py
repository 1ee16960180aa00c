"""The batch's HTML report: the summary and the results table, one self-contained page.

Inputs are named by file name only (as in the table); each item links to its own report.
"""

from __future__ import annotations

import html
from pathlib import Path

SHOWN = ("id", "status", "error_class", "error_message", "duration_s", "attempts", "worker")
STATUS_COLOURS = {"done": "#e6f4ea", "refused": "#fff4e5", "failed": "#fde8e8", "crashed": "#f8d7da"}
MAX_ROWS = 5000  # beyond this the page lists the first ones and points to the table files


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape("" if value is None else str(value))


def write_batch_report(result, path: Path) -> Path:
    rows = result.rows
    extra = sorted({k for r in rows for k in r if k.startswith(("input_", "metric_")) and not k.endswith("_sha256")})
    columns = list(SHOWN) + extra
    summary = result.to_dict()
    counts = ", ".join(f"{k} {v}" for k, v in sorted(summary["counts"].items())) or "none"
    failures = ", ".join(f"{k} {v}" for k, v in sorted(summary["failures_by_class"].items())) or "none"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows[:MAX_ROWS]:
        link = r.get("output")
        cells = []
        for c in columns:
            text = _cell(r.get(c))
            if c == "id" and link and r.get("status") in ("done", "refused"):
                text = f'<a href="{html.escape(link)}/report.html">{text}</a>'
            cells.append(f"<td>{text}</td>")
        colour = STATUS_COLOURS.get(r.get("status"), "#ffffff")
        body.append(f'<tr style="background:{colour}">{"".join(cells)}</tr>')
    more = (f"<p>The first {MAX_ROWS} of {len(rows)} items; all of them are in results.parquet and results.csv.</p>"
            if len(rows) > MAX_ROWS else "")
    stopped = f'<p class="stopped"><b>{html.escape(result.stopped)}</b></p>' if result.stopped else ""
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>medface batch: {html.escape(result.command)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:0.85em}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:left}}th{{background:#eee}}.stopped{{color:#a00}}</style>
</head><body>
<h1>Batch: {html.escape(result.command)}</h1>
<p>{summary['items']} items on the {html.escape(result.engine)} engine in {summary['seconds']:.1f} s
({summary['skipped_unchanged']} unchanged items skipped). Status: {html.escape(counts)}. Failures by error class:
{html.escape(failures)}.</p>
{stopped}
<p>Tables: <a href="results.parquet">results.parquet</a>, <a href="results.csv">results.csv</a>. Not a medical
device.</p>
{more}
<table><thead><tr>{head}</tr></thead><tbody>
{"".join(body)}
</tbody></table></body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path
