"""Reports: a self-contained HTML page and a JSON twin for any :class:`medface.data.Result`.

::

    from medface.report import write_report, Section
    paths = write_report(result, "out/report")          # out/report/report.html, report.json
    paths = write_report(result, "out", sections=[Section("Notes", text="...")])

Plugins add sections per command with :func:`register_section_builder`. See ``docs/reports.md``.
Only the standard library is imported here; figures are embedded from files already written.
"""

from __future__ import annotations

from .html import HTML_NAME, JSON_NAME, ReportPaths, format_value, render_html, render_text, write_report
from .sections import Section, build_sections, register_section_builder, section_builders, unregister_section_builder

__all__ = ["write_report", "render_html", "render_text", "ReportPaths", "Section", "register_section_builder",
           "unregister_section_builder", "section_builders", "build_sections", "format_value", "HTML_NAME",
           "JSON_NAME"]
