"""`Plan`: a versioned JSON document describing what a command should do (a surgical plan)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError


@dataclass
class Plan:
    """A plan is a ``kind`` (e.g. ``"medface.surgery.plan"``), a schema ``version`` and content.

    The core only knows this envelope; plugins define and validate what ``content`` holds.
    """

    kind: str
    version: str
    content: dict[str, Any] = field(default_factory=dict)
    source: str | None = None

    def to_json_dict(self) -> dict:
        return {"kind": self.kind, "version": self.version, **self.content}

    def save(self, path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_json_dict(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_json_dict(cls, doc: dict, *, source: str | None = None) -> "Plan":
        """The plan a parsed JSON document holds: an object with the strings ``kind`` and
        ``version``; :class:`InputError` ("field kind: expected a string, got a list") if not."""
        if not isinstance(doc, dict):
            raise InputError(f"a plan must be a JSON object, got {_json_type(doc)}", path=source)
        missing = [k for k in ("kind", "version") if k not in doc]
        if missing:
            raise InputError(f"the plan lacks the key(s) {', '.join(missing)}", path=source,
                             hint='a plan starts with {"kind": ..., "version": ...}')
        for key in ("kind", "version"):
            if not isinstance(doc[key], str):
                raise InputError(f"field {key}: expected a string, got {_json_type(doc[key])}", path=source)
        content = {k: v for k, v in doc.items() if k not in ("kind", "version")}
        return cls(doc["kind"], doc["version"], content, source=source)


def _json_type(value) -> str:
    """How JSON names the type of a parsed value, as in "expected a number, got a list"."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null",
             int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)
