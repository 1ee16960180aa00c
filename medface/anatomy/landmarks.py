"""The landmark vocabulary (:mod:`medface.data.vocabulary`, re-exported here) and its documentation.

The ids, definitions, sources, name resolution and lookups live with the data model in
:mod:`medface.data.vocabulary`; every name of it is available from this module too
(``from medface.anatomy.landmarks import soft_tissue_ids``). This module adds the Markdown
tables of ``docs/landmarks.md``: run ``python -m medface.anatomy.landmarks --write
docs/landmarks.md`` to regenerate them after changing an entry. Standard library only.
"""

from __future__ import annotations

import sys

from ..data.vocabulary import (KINDS, REFERENCES, REGIONS, SIDES, VOCABULARY, LandmarkDef, UnknownLandmarkError,
                               bilateral_pairs, counterpart, craniometric_ids, get, ids, is_known, mirror_id,
                               resolve, soft_tissue_ids)

__all__ = [
    "LandmarkDef", "UnknownLandmarkError", "VOCABULARY", "KINDS", "SIDES", "REGIONS", "REFERENCES",
    "get", "is_known", "resolve", "mirror_id", "counterpart", "ids", "craniometric_ids",
    "soft_tissue_ids", "bilateral_pairs", "markdown_tables", "markdown_references",
]


# --------------------------------------------------------------------------------------------
# Documentation
# --------------------------------------------------------------------------------------------

_TABLES_BEGIN = "<!-- BEGIN GENERATED LANDMARK TABLES -->"
_TABLES_END = "<!-- END GENERATED LANDMARK TABLES -->"
_REFS_BEGIN = "<!-- BEGIN GENERATED REFERENCES -->"
_REFS_END = "<!-- END GENERATED REFERENCES -->"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def markdown_tables() -> str:
    """The vocabulary as Markdown tables (one per kind), as written into docs/landmarks.md."""
    parts = []
    for kind, title in (("craniometric", "Craniometric (bony) landmarks"), ("soft_tissue", "Soft-tissue landmarks")):
        rows = [e for e in VOCABULARY.values() if e.kind == kind]
        parts.append(f"### {title} ({len(rows)})\n")
        parts.append("| id | name | region | side | mirror | definition | source | aliases |")
        parts.append("|---|---|---|---|---|---|---|---|")
        for e in rows:
            aliases = ", ".join(e.aliases)
            mirror = f"`{e.mirror}`" if e.mirror else ""
            parts.append(f"| `{e.id}` | {_cell(e.name)} | {e.region} | {e.side} | {mirror} | "
                         f"{_cell(e.definition)} | {_cell(e.source)} | {_cell(aliases)} |")
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def markdown_references() -> str:
    """The references cited in ``source`` fields, as a Markdown list."""
    return "\n".join(f"- **{key}**: {citation}" for key, citation in REFERENCES.items()) + "\n"


def _replace_block(text: str, begin: str, end: str, body: str) -> str:
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"markers {begin!r} ... {end!r} not found")
    return text[:start + len(begin)] + "\n" + body + text[stop:]


def _generated_blocks(text: str) -> dict[str, str]:
    """The current content between the generated-block markers of a docs file (for tests)."""
    out = {}
    for name, begin, end in (("tables", _TABLES_BEGIN, _TABLES_END), ("references", _REFS_BEGIN, _REFS_END)):
        start, stop = text.find(begin), text.find(end)
        out[name] = text[start + len(begin) + 1:stop] if 0 <= start < stop else None
    return out


def _write_docs(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = _replace_block(text, _TABLES_BEGIN, _TABLES_END, markdown_tables())
    text = _replace_block(text, _REFS_BEGIN, _REFS_END, markdown_references())
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--write":
        _write_docs(argv[1])
        print(f"updated {argv[1]}: {len(VOCABULARY)} landmarks")
        return 0
    if argv:
        print("usage: python -m medface.anatomy.landmarks [--write docs/landmarks.md]", file=sys.stderr)
        return 2
    sys.stdout.write(markdown_tables() + "\n" + markdown_references())
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
