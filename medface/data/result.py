"""`Result`: what a command returns; serialises to JSON with its provenance."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .provenance import Provenance


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, paths and dataclasses into plain JSON values."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if np is not None:
        if isinstance(value, np.ndarray):
            return to_jsonable(value.tolist())
        if isinstance(value, np.generic):
            return to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "to_dict"):
        return to_jsonable(value.to_dict())
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


@dataclass
class Result:
    """The outcome of one command.

    - ``summary``: the few values a person reads first (name -> value);
    - ``outputs``: files written (name -> path);
    - ``metrics``: numbers for machines (name -> number);
    - ``tables``: named lists of rows (each a dict);
    - ``figures``: named PNG paths;
    - ``warnings``: things the user must know about this run;
    - ``limits``: what the method cannot know, in plain words;
    - ``data``: in-memory objects (meshes, volumes) for Python callers; not serialised;
    - ``declared``: outputs to be written by the runner (:class:`~medface.data.outputs.Output`);
      not serialised: once written, their paths are in ``outputs`` and ``figures``.
    """

    command: str
    summary: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tables: dict[str, list[dict]] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)
    provenance: Provenance = field(default_factory=Provenance)
    data: dict[str, Any] = field(default_factory=dict, repr=False)
    declared: list = field(default_factory=list, repr=False)

    def declare(self, name: str, filename: str, value: Any, kind: str = "", *, figure: str = "",
                face: bool = False) -> "Result":
        """Hand ``value`` to the runner to be written as ``filename`` in the output folder and
        listed as ``name`` (see :mod:`medface.data.outputs`); ``figure``: also show the written
        image in the report under that name; ``face``: the picture shows a face (linked, not
        embedded, in the report; left out with ``--no-face-images``). Returns the result."""
        from .outputs import Output

        self.declared.append(Output(name, filename, value, kind, figure, face))
        return self

    def to_dict(self) -> dict:
        return to_jsonable({
            "command": self.command,
            "summary": self.summary,
            "outputs": self.outputs,
            "metrics": self.metrics,
            "tables": self.tables,
            "figures": self.figures,
            "warnings": self.warnings,
            "limits": self.limits,
            "provenance": self.provenance.to_dict(),
        })

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def save(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, d: dict) -> "Result":
        return cls(
            command=d["command"], summary=d.get("summary", {}), outputs=d.get("outputs", {}),
            metrics=d.get("metrics", {}), tables=d.get("tables", {}), figures=d.get("figures", {}),
            warnings=d.get("warnings", []), limits=d.get("limits", []),
            provenance=Provenance.from_dict(d.get("provenance", {})),
        )

    @classmethod
    def load(cls, path) -> "Result":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
