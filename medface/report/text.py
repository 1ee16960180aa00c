"""A short plain-text report for terminals: summary, warnings, limits, inputs."""

from __future__ import annotations

import textwrap

from .formatting import duration, format_value, label
from .purpose import NOTICE

__all__ = ["render_text"]


def _summary_lines(summary: dict) -> list[str]:
    if not summary:
        return []
    pad = min(32, max(len(label(str(k), v)) for k, v in summary.items()))
    return ["Summary", *(f"  {label(str(k), v):<{pad}}  {format_value(str(k), v)}" for k, v in summary.items()), ""]


def _listed(heading: str, items, width: int) -> list[str]:
    if not items:
        return []
    lines = [heading]
    for item in items:
        lines += textwrap.wrap(str(item), width, initial_indent="  - ", subsequent_indent="    ")
    return lines + [""]


def _run_line(p) -> str:
    run = [f"medface {p.medface_version}" if p.medface_version else "",
           f"{p.plugin} {p.plugin_version}".strip(), f"device {p.device}" if p.device else "",
           f"seed {p.seed}" if p.seed is not None else "", duration(p.duration_s) if p.finished else ""]
    return "Run: " + ", ".join(x for x in run if x)


def render_text(result, *, width: int = 100) -> str:
    """A short plain-text report for terminals: summary, warnings, limits, inputs."""
    p = result.provenance
    lines = [f"medface report: {result.command}", NOTICE, ""]
    lines += _summary_lines(result.summary)
    lines += _listed("Warnings", result.warnings, width)
    lines += _listed("Limits of the method", result.limits or ["none stated"], width)
    if p.inputs:
        lines += ["Inputs", *(f"  {r.name}: {r.path or getattr(r, 'file', '') or '(in memory)'}  sha256 {r.sha256}"
                              for r in p.inputs), ""]
    purpose, consent = getattr(p, "purpose", None), getattr(p, "consent", None)
    if purpose or consent:
        lines.append(f"Purpose: {purpose or 'not given'}; consent reference: {consent or 'not given'}")
    lines.append(_run_line(p))
    return "\n".join(lines) + "\n"
