"""Extra report sections from plugins: the :class:`Section` type and a per-command registry.

A plugin adds to the report of one of its commands in one of two ways:

- pass ``sections=[Section(...), ...]`` to :func:`medface.report.write_report`, or
- register a builder, ``register_section_builder("surgery.plan", build)``, where
  ``build(result) -> list[Section]``; every report of that command then carries its sections.

Builders run in registration order, before the sections passed directly. A builder that raises
or returns something other than sections does not stop the report: its failure becomes a
report warning.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable

__all__ = ["Section", "SectionBuilder", "register_section_builder", "unregister_section_builder",
           "section_builders", "build_sections"]


@dataclass
class Section:
    """One titled block of a report.

    Any combination of the content fields may be given; they are shown in this order:

    - ``text``: plain text, HTML-escaped; blank lines separate paragraphs;
    - ``html``: **trusted** HTML written by the plugin, inserted as it is. Escape anything that
      came from a user or a file yourself (``html.escape``). The report's content security
      policy blocks scripts and every network fetch, so it can only format, not load;
    - ``table``: a list of row dicts (columns: the union of the keys), escaped;
    - ``figure``: the path of a PNG (or JPEG) file, embedded in the page, with ``caption``.
    """

    title: str
    html: str | None = None
    text: str | None = None
    table: list[dict] | None = None
    figure: str | os.PathLike | None = None
    caption: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.title, str) or not self.title.strip():
            raise TypeError("a report Section needs a non-empty title (a string)")
        if self.html is not None and not isinstance(self.html, str):
            raise TypeError(f"Section {self.title!r}: html must be a string, not {type(self.html).__name__}")
        if self.text is not None and not isinstance(self.text, str):
            raise TypeError(f"Section {self.title!r}: text must be a string, not {type(self.text).__name__}")
        if self.table is not None:
            if not isinstance(self.table, (list, tuple)) or not all(isinstance(r, dict) for r in self.table):
                raise TypeError(f"Section {self.title!r}: table must be a list of row dicts")
            self.table = list(self.table)

    def to_dict(self) -> dict:
        from ..data.result import to_jsonable

        return to_jsonable({"title": self.title, "text": self.text, "html": self.html, "table": self.table,
                            "figure": os.fspath(self.figure) if self.figure is not None else None,
                            "caption": self.caption})


SectionBuilder = Callable[[Any], "list[Section]"]

_BUILDERS: dict[str, list[SectionBuilder]] = {}


def register_section_builder(command_id: str, fn: SectionBuilder) -> SectionBuilder:
    """Add ``fn(result) -> list[Section]`` to the reports of ``command_id`` (``"plugin.command"``).

    Registering the same function twice for a command has no further effect. Returns ``fn``.
    A plugin usually registers at import time, in the module that holds the command: that
    module is imported when the command first runs, before any report is written.
    """
    if not isinstance(command_id, str) or "." not in command_id:
        raise ValueError(f"command_id must look like 'plugin.command', not {command_id!r}")
    if not callable(fn):
        raise TypeError(f"a section builder must be callable, not {type(fn).__name__}")
    builders = _BUILDERS.setdefault(command_id, [])
    if fn not in builders:
        builders.append(fn)
    return fn


def unregister_section_builder(command_id: str, fn: SectionBuilder) -> bool:
    """Remove a builder; returns whether it was registered."""
    builders = _BUILDERS.get(command_id, [])
    if fn in builders:
        builders.remove(fn)
        if not builders:
            del _BUILDERS[command_id]
        return True
    return False


def section_builders(command_id: str) -> list[SectionBuilder]:
    """The builders registered for ``command_id``, in registration order (a copy)."""
    return list(_BUILDERS.get(command_id, []))


def _name(fn) -> str:
    module = getattr(fn, "__module__", None) or "?"
    return f"{module}.{getattr(fn, '__qualname__', repr(fn))}"


def build_sections(result, extra: Iterable[Section] | None = None) -> tuple[list[Section], list[str]]:
    """The sections of ``result``'s report: its command's builders, then ``extra``.

    Returns ``(sections, warnings)``; a failing builder contributes a warning, not an exception.
    """
    sections: list[Section] = []
    warnings: list[str] = []
    for fn in section_builders(getattr(result, "command", "")):
        try:
            produced = fn(result)
        except Exception as exc:  # a plugin's report helper must not cost the user the report
            warnings.append(f"section builder {_name(fn)} failed ({type(exc).__name__}: {exc}); "
                            "its sections are missing from this report")
            continue
        if isinstance(produced, Section):
            produced = [produced]
        if produced is None:
            continue
        if not isinstance(produced, (list, tuple)):
            warnings.append(f"section builder {_name(fn)} returned {type(produced).__name__}, "
                            "not a list of Section; ignored")
            continue
        for item in produced:
            if isinstance(item, Section):
                sections.append(item)
            else:
                warnings.append(f"section builder {_name(fn)} returned a {type(item).__name__} "
                                "among its sections; ignored")
    for item in extra or ():
        if not isinstance(item, Section):
            raise TypeError(f"sections= takes medface.report.Section objects, not {type(item).__name__}")
        sections.append(item)
    return sections, warnings
