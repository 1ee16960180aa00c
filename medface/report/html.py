"""Self-contained HTML reports (and their JSON twins) from a :class:`medface.data.Result`.

The page is rendered from Jinja2 templates (``templates/``, autoescaped) and needs nothing
beyond itself: CSS is inline, figures are embedded as base64 ``data:`` URIs, there are no
scripts, and a content security policy forbids every fetch. Everything that came from a result
(keys, values, table cells, paths, warnings) is escaped by the templates; only
:attr:`Section.html` is inserted as it is (trusted plugin HTML).

Face pictures named in ``link_figures`` are linked, not embedded (``docs/privacy.md``); a
``scrub`` function (text -> text) is applied to every text of the page and of the JSON twin that
did not come from the result (sections, figure records, report warnings), so that the runner
can keep folders out of what it writes.

This module turns a result into plain values for the templates (:func:`page_context`); the
templates hold all the markup.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ..version import __version__
from .figures import FigureView, embed, link, relative_link
from .formatting import duration, format_value, label
from .purpose import NOTICE, default_purpose
from .sections import Section, build_sections

__all__ = ["ReportPaths", "write_report", "render_html", "page_context", "HTML_NAME", "JSON_NAME", "CSP"]

HTML_NAME = "report.html"
JSON_NAME = "report.json"
TEMPLATE = "report.html.j2"
MAX_TABLE_ROWS = 500  # rows shown per table in HTML; the JSON twin keeps them all
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


@dataclass(frozen=True)
class ReportPaths:
    """Where :func:`write_report` wrote the page and its JSON twin."""

    html: Path
    json: Path


@dataclass(frozen=True)
class ReportOptions:
    """What a caller may add to or change in a report (see :func:`write_report`)."""

    title: str | None = None
    purpose: str | None = None
    sections: Iterable[Section] | None = None
    figures: Mapping[str, Any] | None = None
    link_figures: frozenset = frozenset()  # figure names linked, not embedded (face pictures)
    scrub: Callable[[str], str] | None = None  # applied to texts not taken from the result


# --------------------------------------------------------------------------- plain values for the templates

def _items(values: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(key, label, formatted value)`` for a name/value list."""
    return [(str(k), label(str(k), v), format_value(str(k), v)) for k, v in values.items()]


def _table(rows: list[dict]) -> dict:
    """Columns (the union of the keys, in order of appearance), formatted cells, rows left out."""
    columns: list[str] = []
    for row in rows:
        columns += [str(k) for k in row if str(k) not in columns]
    cells = []
    for row in rows[:MAX_TABLE_ROWS]:
        plain = {str(k): v for k, v in row.items()}
        cells.append([format_value(c, plain[c]) if c in plain else "" for c in columns])
    return {"columns": columns, "rows": cells, "more": max(0, len(rows) - MAX_TABLE_ROWS)}


def _records(records) -> list[dict]:
    """Inputs or models for the page: the file (or path, when recorded) with its data files."""
    rows = []
    for r in records or []:
        r = r if isinstance(r, dict) else vars(r)
        parts = [p.get("file", "") for p in r.get("parts") or [] if isinstance(p, dict)]
        shown = r.get("path") or r.get("file") or "—"
        if len(parts) > 1:
            shown += f" (with {', '.join(parts[1:])})"
        rows.append({"name": r.get("name", ""), "path": shown, "sha256": r.get("sha256", ""),
                     "kind": r.get("kind", "")})
    return rows


def _paragraphs(text: str) -> list[list[str]]:
    """Blank lines separate paragraphs; a paragraph's lines are kept."""
    return [p.split("\n") for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def _is_url(value: str) -> bool:
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", value) is not None


def _output(name: str, path, folder: Path) -> dict:
    """A link relative to the report folder, or only text for a URL (a report never links out)."""
    path = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    if _is_url(path):
        return {"name": name, "text": path, "href": None, "missing": False}
    target = Path(path)
    absolute = target if target.is_absolute() else Path.cwd() / target
    rel = relative_link(target, folder)
    missing = not (absolute.exists() or (folder / target).exists()) and rel not in (HTML_NAME, JSON_NAME)
    return {"name": name, "text": rel, "href": rel, "missing": missing}


def _figure_specs(result, figures: Mapping[str, Any] | None) -> dict[str, tuple[Any, str]]:
    """The result's figures, then those given (a value is a path or ``(path, caption)``)."""
    specs: dict[str, tuple[Any, str]] = {}
    for source in (result.figures or {}, figures or {}):
        for name, value in source.items():
            if isinstance(value, (tuple, list)) and len(value) == 2:
                specs[str(name)] = (value[0], str(value[1]))
            else:
                specs[str(name)] = (value, label(str(name)))
    return specs


def _scrubbed(value, scrub: Callable[[str], str] | None):
    """``value`` with ``scrub`` applied to every string in it."""
    if scrub is None:
        return value
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrubbed(v, scrub) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrubbed(v, scrub) for v in value]
    return value


def _clean_section(s: Section, scrub: Callable[[str], str] | None) -> Section:
    if scrub is None:
        return s
    return Section(scrub(s.title), html=_scrubbed(s.html, scrub), text=_scrubbed(s.text, scrub),
                   table=_scrubbed(s.table, scrub), figure=s.figure, caption=scrub(s.caption))


def _section(s: Section, folder: Path, warnings: list[str]) -> dict:
    figure = embed(s.title, s.figure, s.caption, folder, warnings)[0] if s.figure is not None else None
    return {"title": s.title, "paragraphs": _paragraphs(s.text) if s.text else [], "html": s.html,
            "table": _table(s.table) if s.table is not None else None, "figure": figure, "caption": s.caption}


def _run_info(result) -> dict:
    p = result.provenance
    info = {
        "command": result.command,
        "medface_version": p.medface_version or __version__,
        "plugin": f"{p.plugin} {p.plugin_version}".strip() or "—",
        "purpose": getattr(p, "purpose", None), "consent": getattr(p, "consent", None),
        "device": p.device or "—", "seed": p.seed,
        "started": p.started or "—", "finished": p.finished or "—", "duration": duration(p.duration_s),
    }
    for key in ("plugin_source", "plugin_location", "plugin_code_sha256"):
        if getattr(p, key, ""):
            info[key] = getattr(p, key)
    return info


def _privacy(result) -> list[tuple[str, str, str]]:
    privacy = dict(getattr(result.provenance, "privacy", None) or {})
    if not privacy:
        return []
    privacy["left_out"] = privacy.get("left_out") or "nothing"
    return _items(privacy)


def _provenance(result) -> dict:
    p = result.provenance
    return {"run": _items(_run_info(result)), "parameters": _items(p.parameters or {}),
            "inputs": _records(p.inputs), "models": _records(p.models), "host": _items(p.host or {}),
            "privacy": _privacy(result)}


def _purpose_line(result) -> str:
    """``"Purpose of the run: casework; consent reference CASE-17"`` (empty when neither was given)."""
    p = result.provenance
    purpose, consent = getattr(p, "purpose", None), getattr(p, "consent", None)
    parts = ([f"purpose of the run: {purpose}"] if purpose else []) + \
        ([f"consent reference: {consent}"] if consent else [])
    text = "; ".join(parts)
    return text[:1].upper() + text[1:]


def _result_blocks(result, folder: Path) -> dict:
    """The parts of the page that come straight from the result."""
    return {
        "summary": _items(result.summary),
        "tables": [(name, _table(list(rows or []))) for name, rows in (result.tables or {}).items()],
        "metrics": _items(result.metrics),
        "limits": list(result.limits or []),
        "outputs": [_output(name, path, folder) for name, path in (result.outputs or {}).items()],
        **_provenance(result),
    }


def page_context(result, folder: Path, options: ReportOptions = ReportOptions()) -> tuple[dict, dict]:
    """Everything the template shows (plain values, escaped by the template) and the ``report``
    record of the JSON twin."""
    warnings: list[str] = []
    sections, builder_warnings = build_sections(result, options.sections)
    sections = [_clean_section(s, options.scrub) for s in sections]
    warnings += builder_warnings
    figures: list[FigureView] = []
    figure_records = []
    for name, (path, caption) in _figure_specs(result, options.figures).items():
        if name in options.link_figures:
            view, record = link(name, path, caption, folder)
        else:
            view, record = embed(name, path, caption, folder, warnings)
        figures.append(view)
        figure_records.append(record)
    section_views = [_section(s, folder, warnings) for s in sections]
    warnings = _scrubbed(warnings, options.scrub)
    figure_records = _scrubbed(figure_records, options.scrub)
    title = options.title or f"medface report: {result.command}"
    purpose = options.purpose or default_purpose(result.command)
    generated = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    context = {
        "title": title, "purpose": purpose, "notice": NOTICE, "version": __version__, "generated": generated,
        "run_purpose": _purpose_line(result), "csp": CSP, "json_name": JSON_NAME, "figures": figures,
        "sections": section_views,
        "warnings": [(w, False) for w in result.warnings] + [(w, True) for w in warnings],
        **_result_blocks(result, folder),
    }
    record = {"title": title, "purpose": purpose, "notice": NOTICE, "generated": generated,
              "medface_version": __version__, "html": HTML_NAME,
              "sections": [s.to_dict() for s in sections], "figures": figure_records, "warnings": warnings}
    return context, record


# --------------------------------------------------------------------------- rendering and writing

@functools.lru_cache(maxsize=1)
def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(loader=PackageLoader("medface.report", "templates"), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def _build(result, folder: Path, options: ReportOptions) -> tuple[str, dict]:
    context, record = page_context(result, Path(folder), options)
    page = _environment().get_template(TEMPLATE).render(context)
    doc = result.to_dict()
    doc["report"] = record
    return page, doc


def render_html(result, *, folder=".", title: str | None = None, purpose: str | None = None,
                sections: Iterable[Section] | None = None, figures: Mapping[str, Any] | None = None,
                link_figures: Iterable[str] = (), scrub: Callable[[str], str] | None = None) -> str:
    """The report page as a string (``folder`` anchors relative links and figure paths)."""
    options = ReportOptions(title, purpose, sections, figures, frozenset(link_figures), scrub)
    return _build(result, Path(folder), options)[0]


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_report(result, folder, *, title: str | None = None, sections: Iterable[Section] | None = None,
                 figures: Mapping[str, Any] | None = None, purpose: str | None = None,
                 link_figures: Iterable[str] = (), scrub: Callable[[str], str] | None = None) -> ReportPaths:
    """Write ``report.html`` (self-contained) and ``report.json`` for ``result`` into ``folder``.

    - ``title``: the page title (default ``"medface report: <command>"``);
    - ``sections``: extra :class:`Section` objects, after those of the command's registered builders;
    - ``figures``: extra figures, name -> PNG path or ``(path, caption)``, after ``result.figures``;
    - ``purpose``: the one line under the title (default: the command's title from its manifest);
      the run's own purpose and consent (``result.provenance``) are shown beneath it;
    - ``link_figures``: names of figures to link instead of embed (face pictures, docs/privacy.md);
    - ``scrub``: a function applied to every text not taken from the result (sections, figure
      records, warnings), e.g. to replace folders by file names.

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
    options = ReportOptions(title, purpose, sections, figures, frozenset(link_figures), scrub)
    page, doc = _build(result, folder, options)
    paths = ReportPaths(html=folder / HTML_NAME, json=folder / JSON_NAME)
    try:
        _write_atomic(paths.json, json.dumps(doc, indent=2, allow_nan=False, ensure_ascii=False) + "\n")
        _write_atomic(paths.html, page)
    except OSError as exc:
        raise OutputError(f"cannot write the report ({exc.strerror or exc})", path=folder,
                          hint="check the free space and permissions of the folder") from exc
    return paths
