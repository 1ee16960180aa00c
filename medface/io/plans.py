"""Reading and writing plans: JSON documents with a ``kind`` and a schema ``version``.

A plan file is untrusted input: it must be a regular file of at most
``budget().max_text_bytes`` bytes of UTF-8 JSON, nesting at most ``budget().max_json_depth``
levels, without ``NaN``/``Infinity``, numbers beyond a double or integers of more than
:data:`~medface.io.textfiles.MAX_INTEGER_DIGITS` digits (:func:`medface.io.textfiles.load_json`).
The envelope (``kind`` and ``version``, both strings) is checked here; a plugin checks the
content (``medface_surgery`` against its JSON Schema, worded by
:func:`medface.io.textfiles.describe_schema_error`: "kerf_mm: expected a number, got a list").
"""

from __future__ import annotations

import json
from pathlib import Path

from ..data.plan import Plan
from ._files import atomic_output
from .textfiles import load_json


def read_plan(path) -> Plan:
    """Read a plan file (JSON) as a :class:`Plan`; :class:`InputError` names what is wrong."""
    path = Path(path)
    doc = load_json(path, "plan")
    return Plan.from_json_dict(doc, source=str(path))


def write_plan(plan: Plan, path) -> Path:
    path = Path(path)
    with atomic_output(path, "plan") as tmp:
        tmp.write_text(json.dumps(plan.to_json_dict(), indent=2) + "\n", encoding="utf-8")
    return path
