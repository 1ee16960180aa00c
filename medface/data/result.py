"""`Result`: what a command returns; serialises to JSON with its provenance."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .provenance import Provenance

OK, REFUSED = "ok", "refused"
# the exit code of each status on the command line (docs/cli.md); errors have theirs in medface.errors
STATUS_EXIT_CODES = {OK: 0, REFUSED: 8}


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
      not serialised: once written, their paths are in ``outputs`` and ``figures``;
    - ``status``: ``"ok"``, or ``"refused"`` when the command declined its input (a photo its
      quality gate refused) and says why in ``refusal``: the outputs are still written, and the
      command line exits with :attr:`exit_code` (8) so that a script can tell it from a result.
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
    status: str = OK
    refusal: str = ""

    def refuse(self, reason: str) -> "Result":
        """Mark the input as refused for ``reason`` (written with the result); returns the result."""
        self.status, self.refusal = REFUSED, str(reason)
        return self

    @property
    def refused(self) -> bool:
        return self.status == REFUSED

    @property
    def exit_code(self) -> int:
        """The command line's exit code for this result: 0, or 8 for a refused input."""
        return STATUS_EXIT_CODES[self.status]

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
            "status": self.status,
            "refusal": self.refusal or None,
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
            status=_known_status(d.get("status")), refusal=d.get("refusal") or "",
        )

    @classmethod
    def load(cls, path) -> "Result":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _known_status(value) -> str:
    """A stored status, ``"ok"`` for a result.json written before there was one."""
    if value is None:
        return OK
    if value not in STATUS_EXIT_CODES:
        from ..errors import InputError

        raise InputError(f"unknown result status {value!r}", hint=f"expected one of {', '.join(STATUS_EXIT_CODES)}")
    return value
