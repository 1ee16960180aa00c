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
        if not isinstance(doc, dict):
            raise InputError("a plan must be a JSON object", path=source)
        missing = [k for k in ("kind", "version") if k not in doc]
        if missing:
            raise InputError(f"the plan lacks the key(s) {', '.join(missing)}", path=source)
        content = {k: v for k, v in doc.items() if k not in ("kind", "version")}
        return cls(str(doc["kind"]), str(doc["version"]), content, source=source)
