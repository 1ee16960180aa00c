"""Reports: a self-contained HTML page and a JSON twin for any :class:`medface.data.Result`.

::

    from medface.report import write_report, Section
    paths = write_report(result, "out/report")          # out/report/report.html, report.json
    paths = write_report(result, "out", sections=[Section("Notes", text="...")])

Plugins add sections per command with :func:`register_section_builder`. See ``docs/reports.md``.
Importing this package loads only the standard library; the page is rendered from Jinja2
templates (``templates/``, autoescaped), and figures are embedded from files already written.
"""

from __future__ import annotations

from .formatting import UNITS, format_number, format_value, unit_of
from .html import CSP, HTML_NAME, JSON_NAME, ReportPaths, render_html, write_report
from .purpose import NOTICE, set_command_titles
from .sections import Section, build_sections, register_section_builder, section_builders, unregister_section_builder
from .text import render_text

__all__ = ["write_report", "render_html", "render_text", "ReportPaths", "Section", "register_section_builder",
           "unregister_section_builder", "section_builders", "build_sections", "format_value", "format_number",
           "unit_of", "UNITS", "NOTICE", "CSP", "HTML_NAME", "JSON_NAME", "set_command_titles"]
