"""Self-contained HTML reports (and their JSON twins) from a :class:`medface.data.Result`.

The page needs nothing beyond itself: CSS is inline, figures are embedded as base64 ``data:``
URIs, there are no scripts, and a content security policy forbids every fetch. Everything that
came from a result (keys, values, table cells, paths, warnings) is HTML-escaped; only
:attr:`Section.html` is inserted as it is (trusted plugin HTML).
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import math
import os
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Iterable, Mapping

from .sections import Section, build_sections

__all__ = ["ReportPaths", "write_report", "render_html", "render_text", "format_value", "unit_of",
           "HTML_NAME", "JSON_NAME"]

HTML_NAME = "report.html"
JSON_NAME = "report.json"
MAX_TABLE_ROWS = 500  # rows shown per table in HTML; the JSON twin keeps them all

NOTICE = ("Research software, not a medical device. These results are not for diagnosis, treatment "
          "or identification on their own: a qualified professional must check them.")

# key suffix -> unit shown after the value ("bone_volume_ml" -> "12.5 mL")
UNITS = {
    "mm": "mm", "cm": "cm", "m": "m", "mm2": "mm²", "mm3": "mm³", "cm3": "cm³",
    "ml": "mL", "cc": "cm³", "l": "L",
    "deg": "°", "degrees": "°", "rad": "rad",
    "s": "s", "sec": "s", "ms": "ms", "min": "min",
    "hu": "HU", "pct": "%", "percent": "%", "px": "px", "vox": "voxels",
    "kg": "kg", "g": "g", "years": "years", "yr": "years", "bmi": "kg/m²",
    "mb": "MB", "gb": "GB", "mib": "MiB", "gib": "GiB",
}


@dataclass(frozen=True)
class ReportPaths:
    """Where :func:`write_report` wrote the page and its JSON twin."""

    html: Path
    json: Path


# --------------------------------------------------------------------------- formatting

def unit_of(key: str) -> str:
    """The unit implied by a key's last ``_suffix`` (``"extent_mm"`` -> ``"mm"``), or ``""``."""
    if "_" not in key:
        return ""
    return UNITS.get(key.rsplit("_", 1)[1].lower(), "")


def _label(key: str, value: Any = None) -> str:
    """``"bone_volume_ml"`` -> ``"Bone volume"`` (the unit goes with the value; kept for yes/no values)."""
    text = str(key)
    if unit_of(text) and not isinstance(value, bool):
        text = text.rsplit("_", 1)[0]
    text = text.replace("_", " ").strip() or str(key)
    return text[:1].upper() + text[1:]


def format_number(x: float | int) -> str:
    """Numbers for people: integers as they are, floats to about four significant digits."""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    x = float(x)
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0:
        return "0"
    a = abs(x)
    if 1e-3 <= a < 1e7:
        decimals = min(6, max(0, 3 - math.floor(math.log10(a))))
        text = f"{x:.{decimals}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text
    return f"{x:.3e}"


def _plain(value: Any) -> Any:
    """numpy scalars and arrays to Python values (without importing numpy)."""
    if hasattr(value, "tolist") and type(value).__module__.startswith("numpy"):
        return value.tolist()
    return value


def format_value(key: str, value: Any, *, unit: bool = True) -> str:
    """A value as plain text, with the unit its key implies (not escaped)."""
    value = _plain(value)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    suffix = f" {unit_of(key)}" if unit and unit_of(key) else ""
    if suffix == " °" or suffix == " %":
        suffix = suffix.strip()
    if isinstance(value, (int, float)):
        return format_number(value) + suffix
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                         for v in value):
        return "(" + ", ".join(format_number(v) for v in value) + ")" + suffix
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value("", v) for v in value) if value else "—"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {format_value(str(k), v)}" for k, v in value.items()) if value else "—"
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = float(seconds)
    if seconds < 60:
        return format_number(seconds) + " s"
    minutes, rest = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return (f"{hours} h " if hours else "") + f"{minutes} min {rest} s"


# --------------------------------------------------------------------------- figures

_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def _resolve(path, folder: Path) -> Path:
    """A figure or output path as given, or, when relative and absent, beside the report."""
    p = Path(path).expanduser()
    if not p.is_absolute() and not p.exists() and (folder / p).exists():
        return folder / p
    return p


def _embed(name: str, path, caption: str, folder: Path, warnings: list[str]) -> tuple[str, dict]:
    """``<figure>`` HTML with the image embedded, or a placeholder plus a warning."""
    record = {"name": name, "path": None if path is None else os.fspath(path), "caption": caption,
              "embedded": False}
    problem = None
    data = b""
    mime = ""
    if path is None or str(path) == "":
        problem = "no file was given"
    else:
        p = _resolve(path, folder)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            problem = f"file not found: {os.fspath(path)}"
        except IsADirectoryError:
            problem = f"is a folder, not an image: {os.fspath(path)}"
        except OSError as exc:
            problem = f"cannot be read ({exc.strerror or exc}): {os.fspath(path)}"
        else:
            mime = next((m for magic, m in _IMAGE_MAGIC if data.startswith(magic)), "")
            if not mime:
                problem = f"not a PNG or JPEG image: {os.fspath(path)}"
    if problem:
        warnings.append(f"figure '{name}' is missing from the report: {problem}")
        html = (f'<figure class="missing"><div class="placeholder">Figure “{_e(name)}” is not available: '
                f'{_e(problem)}</div>' + (f"<figcaption>{_e(caption)}</figcaption>" if caption else "")
                + "</figure>")
        return html, record
    record["embedded"] = True
    record["bytes"] = len(data)
    uri = f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
    html = (f'<figure><img src="{uri}" alt="{_e(caption or name)}">'
            f"<figcaption>{_e(caption or _label(name))}</figcaption></figure>")
    return html, record


# --------------------------------------------------------------------------- blocks

def _dl(items: Mapping[str, Any], *, empty: str = "none") -> str:
    if not items:
        return f'<p class="none">{_e(empty)}</p>'
    rows = "".join(f'<dt title="{_e(k)}">{_e(_label(str(k), v))}</dt><dd>{_e(format_value(str(k), v))}</dd>'
                   for k, v in items.items())
    return f"<dl>{rows}</dl>"


def _table(rows: list[dict], *, empty: str = "no rows") -> str:
    if not rows:
        return f'<p class="none">{_e(empty)}</p>'
    columns: list[str] = []
    for row in rows:
        for k in row:
            if str(k) not in columns:
                columns.append(str(k))
    head = "".join(f'<th title="{_e(c)}">{_e(c)}</th>' for c in columns)
    body = []
    for row in rows[:MAX_TABLE_ROWS]:
        plain = {str(k): v for k, v in row.items()}
        cells = "".join(f"<td>{_e(format_value(c, plain[c])) if c in plain else ''}</td>" for c in columns)
        body.append(f"<tr>{cells}</tr>")
    more = ""
    if len(rows) > MAX_TABLE_ROWS:
        more = f'<p class="note">{len(rows) - MAX_TABLE_ROWS} more rows are in {JSON_NAME}.</p>'
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
            + more)


def _records(records, kind: str) -> str:
    if not records:
        return f'<p class="none">no {_e(kind)}</p>'
    rows = []
    for r in records:
        r = r if isinstance(r, dict) else vars(r)
        rows.append(f"<tr><td>{_e(r.get('name', ''))}</td><td class='path'>{_e(r.get('path') or '—')}</td>"
                    f"<td><code class='sha'>{_e(r.get('sha256', ''))}</code></td><td>{_e(r.get('kind', ''))}</td></tr>")
    return ('<div class="scroll"><table><thead><tr><th>name</th><th>path</th><th>sha256</th><th>kind</th></tr>'
            f'</thead><tbody>{"".join(rows)}</tbody></table></div>')


def _paragraphs(text: str) -> str:
    parts = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return "".join(f"<p>{_e(p).replace(chr(10), '<br>')}</p>" for p in parts)


def _is_url(value: str) -> bool:
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", value) is not None


def _outputs(outputs: Mapping[str, Any], folder: Path) -> str:
    if not outputs:
        return '<p class="none">no files recorded</p>'
    items = []
    for name, path in outputs.items():
        path = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
        if _is_url(path):  # never link out of the report; show the text
            items.append(f"<li><b>{_e(name)}</b>: {_e(path)}</li>")
            continue
        target = Path(path)
        absolute = target if target.is_absolute() else Path.cwd() / target
        try:
            rel = Path(os.path.relpath(absolute, folder.resolve())).as_posix()
        except ValueError:  # another drive on Windows
            rel = absolute.resolve().as_uri()
        exists = absolute.exists() or (folder / target).exists()
        state = "" if exists else ' <span class="note">(not found)</span>'
        items.append(f'<li><b>{_e(name)}</b>: <a href="{_e(rel)}">{_e(rel)}</a>{state}</li>')
    return f'<ul class="outputs">{"".join(items)}</ul>'


CSS = """
:root{--fg:#1b1f24;--muted:#5b6470;--line:#d5dae0;--warn-bg:#fff4e0;--warn:#9a5b00;--bad:#a1262d;--accent:#1d5a8a}
*{box-sizing:border-box}
body{font:15px/1.5 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);
max-width:1100px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:1.7em;margin:0 0 4px}h2{font-size:1.25em;margin:32px 0 10px;padding-bottom:4px;
border-bottom:2px solid var(--line);color:var(--accent)}h3{font-size:1.05em;margin:18px 0 6px}
.purpose{color:var(--muted);margin:0 0 14px}
.notice{border:1px solid var(--bad);color:var(--bad);padding:8px 12px;border-radius:4px;margin:12px 0;font-weight:600}
dl{display:grid;grid-template-columns:minmax(160px,max-content) 1fr;gap:4px 18px;margin:0}
dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse;font-size:.92em;margin:4px 0}th,td{border:1px solid var(--line);padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f2f4f7}tbody tr:nth-child(even){background:#fafbfc}
.scroll{overflow-x:auto}code,.sha,.path{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.88em;
overflow-wrap:anywhere}
ul.warnings{list-style:none;padding:0}ul.warnings li{background:var(--warn-bg);border-left:5px solid var(--warn);
padding:6px 10px;margin:4px 0}ul.warnings li.report{border-left-color:var(--bad)}
figure{margin:12px 0;display:inline-block;max-width:100%;vertical-align:top}
img{max-width:100%;height:auto;border:1px solid var(--line)}figcaption{color:var(--muted);font-size:.9em}
.placeholder{border:2px dashed var(--bad);color:var(--bad);padding:24px;min-width:280px}
.none,.note{color:var(--muted);font-style:italic}
footer{margin-top:40px;color:var(--muted);font-size:.85em;border-top:1px solid var(--line);padding-top:8px}
@media print{body{max-width:none;padding:0}h2{break-after:avoid}figure,table{break-inside:avoid}}
"""

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


# --------------------------------------------------------------------------- assembly

def _default_purpose(result) -> str:
    """The command's title from its manifest when it is known, else a generic line."""
    title = ""
    try:
        from ..errors import MedfaceError
        from ..plugin.registry import get_registry

        try:
            _, command = get_registry().command(result.command)
            title = command.title or (command.help.strip().splitlines() or [""])[0]
        except (MedfaceError, LookupError, ValueError):
            title = ""
    except ImportError:  # pragma: no cover
        title = ""
    line = f"{title.rstrip('.')}: " if title else ""
    return line + f"what the command {result.command} found, the limits of its method, and how it was run."


def _build(result, folder: Path, title: str | None, purpose: str | None, sections: Iterable[Section] | None,
           figures: Mapping[str, Any] | None) -> tuple[str, dict]:
    from .. import __version__

    folder = Path(folder)
    warnings: list[str] = []
    all_sections, builder_warnings = build_sections(result, sections)
    warnings += builder_warnings
    title = title or f"medface report: {result.command}"
    purpose = purpose or _default_purpose(result)
    p = result.provenance
    generated = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")

    # figures: the result's, then those given here (a value may be a path or (path, caption))
    figure_specs: dict[str, tuple[Any, str]] = {}
    for source in (result.figures or {}, figures or {}):
        for name, value in source.items():
            if isinstance(value, (tuple, list)) and len(value) == 2:
                figure_specs[str(name)] = (value[0], str(value[1]))
            else:
                figure_specs[str(name)] = (value, _label(str(name)))
    figure_html, figure_records = [], []
    for name, (path, caption) in figure_specs.items():
        h, rec = _embed(name, path, caption, folder, warnings)
        figure_html.append(h)
        figure_records.append(rec)

    section_html, section_records = [], []
    for s in all_sections:
        parts = [f"<h2>{_e(s.title)}</h2>"]
        if s.text:
            parts.append(_paragraphs(s.text))
        if s.html:
            parts.append(f'<div class="plugin-html">{s.html}</div>')
        if s.table is not None:
            parts.append(_table(s.table))
        if s.figure is not None:
            h, _ = _embed(s.title, s.figure, s.caption, folder, warnings)
            parts.append(h)
        elif s.caption:
            parts.append(f'<p class="note">{_e(s.caption)}</p>')
        section_html.append(f'<section class="extra">{"".join(parts)}</section>')
        section_records.append(s.to_dict())

    table_html = "".join(f"<h3>{_e(name)}</h3>{_table(list(rows or []))}"
                         for name, rows in (result.tables or {}).items())
    warning_items = [f"<li>{_e(w)}</li>" for w in result.warnings] + \
                    [f'<li class="report">Report: {_e(w)}</li>' for w in warnings]
    limits = result.limits or []
    run_info = {
        "command": result.command,
        "medface_version": p.medface_version or __version__,
        "plugin": f"{p.plugin} {p.plugin_version}".strip() or "—",
        "device": p.device, "seed": p.seed,
        "started": p.started or "—", "finished": p.finished or "—", "duration": _duration(p.duration_s),
    }

    body = [
        f"<header><h1>{_e(title)}</h1><p class='purpose'>{_e(purpose)}</p>"
        f"<p class='notice'>{_e(NOTICE)}</p></header>",
        f"<section id='summary'><h2>Summary</h2>{_dl(result.summary, empty='no summary values')}</section>",
        "<section id='warnings'><h2>Warnings</h2>"
        + (f"<ul class='warnings'>{''.join(warning_items)}</ul>" if warning_items else "<p class='none'>none</p>")
        + "</section>",
    ]
    if figure_html:
        body.append(f"<section id='figures'><h2>Figures</h2>{''.join(figure_html)}</section>")
    if result.tables:
        body.append(f"<section id='tables'><h2>Tables</h2>{table_html}</section>")
    body += section_html
    body += [
        f"<section id='metrics'><h2>Metrics</h2>{_dl(result.metrics, empty='none recorded')}</section>",
        "<section id='limits'><h2>Limits of the method</h2>"
        + (f"<ul>{''.join(f'<li>{_e(x)}</li>' for x in limits)}</ul>" if limits else "<p class='none'>none stated</p>")
        + "</section>",
        f"<section id='outputs'><h2>Outputs</h2>{_outputs(result.outputs or {}, folder)}</section>",
        "<section id='provenance'><h2>Provenance</h2>"
        f"<h3>Run</h3>{_dl(run_info)}"
        f"<h3>Parameters</h3>{_dl(p.parameters or {}, empty='none')}"
        f"<h3>Inputs</h3>{_records(p.inputs, 'inputs')}"
        f"<h3>Models</h3>{_records(p.models, 'models')}"
        f"<h3>Host</h3>{_dl(p.host or {}, empty='not recorded')}</section>",
        f"<footer>Written by medface {_e(__version__)} on {_e(generated)}. The same content, machine-readable, "
        f"is in {_e(JSON_NAME)}.</footer>",
    ]
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="generator" content="medface {_e(__version__)}">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")

    doc = result.to_dict()
    doc["report"] = {
        "title": title, "purpose": purpose, "notice": NOTICE, "generated": generated,
        "medface_version": __version__, "html": HTML_NAME,
        "sections": section_records, "figures": figure_records, "warnings": warnings,
    }
    return page, doc


def render_html(result, *, folder=".", title: str | None = None, purpose: str | None = None,
                sections: Iterable[Section] | None = None, figures: Mapping[str, Any] | None = None) -> str:
    """The report page as a string (``folder`` anchors relative links and figure paths)."""
    return _build(result, Path(folder), title, purpose, sections, figures)[0]


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_report(result, folder, *, title: str | None = None, sections: Iterable[Section] | None = None,
                 figures: Mapping[str, Any] | None = None, purpose: str | None = None) -> ReportPaths:
    """Write ``report.html`` (self-contained) and ``report.json`` for ``result`` into ``folder``.

    - ``title``: the page title (default ``"medface report: <command>"``);
    - ``sections``: extra :class:`Section` objects, after those of the command's registered builders;
    - ``figures``: extra figures, name -> PNG path or ``(path, caption)``, after ``result.figures``;
    - ``purpose``: the one line under the title (default: the command's title from its manifest).

    A figure that cannot be embedded becomes a placeholder in the page and a warning in
    ``report.json["report"]["warnings"]``. Raises :class:`medface.OutputError` when the folder
    cannot be written. The result itself is not changed.
    """
    from ..data.result import Result
    from ..errors import OutputError

    if not isinstance(result, Result):
        raise TypeError(f"write_report takes a medface.data.Result, not {type(result).__name__}")
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the report folder ({exc.strerror or exc})", path=folder,
                          hint="choose a folder you can write to") from exc
    page, doc = _build(result, folder, title, purpose, sections, figures)
    paths = ReportPaths(html=folder / HTML_NAME, json=folder / JSON_NAME)
    try:
        _write_atomic(paths.json, json.dumps(doc, indent=2, allow_nan=False, ensure_ascii=False) + "\n")
        _write_atomic(paths.html, page)
    except OSError as exc:
        raise OutputError(f"cannot write the report ({exc.strerror or exc})", path=folder,
                          hint="check the free space and permissions of the folder") from exc
    return paths


def render_text(result, *, width: int = 100) -> str:
    """A short plain-text report for terminals: summary, warnings, limits, inputs."""
    import textwrap

    p = result.provenance
    lines = [f"medface report: {result.command}", NOTICE, ""]
    if result.summary:
        lines.append("Summary")
        pad = min(32, max(len(_label(str(k), v)) for k, v in result.summary.items()))
        lines += [f"  {_label(str(k), v):<{pad}}  {format_value(str(k), v)}" for k, v in result.summary.items()]
        lines.append("")
    for heading, items in (("Warnings", result.warnings), ("Limits of the method", result.limits or ["none stated"])):
        if items:
            lines.append(heading)
            for item in items:
                lines += textwrap.wrap(str(item), width, initial_indent="  - ", subsequent_indent="    ")
            lines.append("")
    if p.inputs:
        lines.append("Inputs")
        lines += [f"  {r.name}: {r.path or '(in memory)'}  sha256 {r.sha256}" for r in p.inputs]
        lines.append("")
    run = [f"medface {p.medface_version}" if p.medface_version else "",
           f"{p.plugin} {p.plugin_version}".strip(), f"device {p.device}",
           f"seed {p.seed}" if p.seed is not None else "", _duration(p.duration_s) if p.finished else ""]
    lines.append("Run: " + ", ".join(x for x in run if x))
    return "\n".join(lines) + "\n"
