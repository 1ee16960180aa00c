"""Reading and writing plans: JSON documents with a ``kind`` and a schema ``version``."""

from __future__ import annotations

import json
from pathlib import Path

from ..data.plan import Plan
from ..errors import InputError
from ._files import atomic_output


def read_plan(path) -> Plan:
    path = Path(path)
    if not path.is_file():
        raise InputError("does not exist or is not a file", path=path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError("is not a text file; a plan is a JSON document", path=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", path=path) from None
    return Plan.from_json_dict(doc, source=str(path))


def write_plan(plan: Plan, path) -> Path:
    path = Path(path)
    with atomic_output(path, "plan") as tmp:
        tmp.write_text(json.dumps(plan.to_json_dict(), indent=2) + "\n", encoding="utf-8")
    return path
