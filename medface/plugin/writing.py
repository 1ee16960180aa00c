"""Writing a command's declared outputs (:mod:`medface.data.outputs`) into its output folder.

Each kind goes through the one writer the core has for it: meshes, volumes, landmarks, images
and plans through ``medface.io``, figures through ``medface.viz``, tables as CSV, JSON through
the result serialiser. Commands never write files themselves; this is the only place where a
declared value becomes a file.
"""

from __future__ import annotations

import csv
import io as _stdio
import json
from pathlib import Path

from ..data.outputs import Output
from ..data.result import Result, to_jsonable
from ..errors import PluginError


def _write_text(text: str, path: Path, what: str) -> None:
    from ..io._files import atomic_output

    with atomic_output(path, what) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def _table_csv(rows: list[dict]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [str(k) for k in row if str(k) not in columns]
    buffer = _stdio.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({str(k): _cell(v) for k, v in row.items()})
    return buffer.getvalue()


def _cell(value):
    value = to_jsonable(value)
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def _write_image(value, path: Path) -> None:
    import numpy as np

    from ..data.image import FaceImage
    from ..io import write_image

    write_image(value if isinstance(value, FaceImage) else FaceImage(np.asarray(value, np.uint8)), path)


def _write_figure(figure, path: Path) -> None:
    from ..viz import render_panels

    render_panels(figure.build_scenes(), path, views=figure.views, titles=figure.titles, shape=figure.shape,
                  size=figure.size)


def _write_io(kind: str, value, path: Path) -> None:
    from .. import io

    writers = {"mesh": io.write_mesh, "volume": io.write_volume, "landmarks": io.write_landmarks,
               "plan": io.write_plan}
    writers[kind](value, path)


def write_output(output: Output, folder: Path) -> Path:
    """Write one declared output under ``folder``; returns its path."""
    path = Path(folder) / output.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    kind, value = output.kind, output.value
    if kind in ("mesh", "volume", "landmarks", "plan"):
        _write_io(kind, value, path)
    elif kind == "image":
        _write_image(value, path)
    elif kind == "figure":
        _write_figure(value, path)
    elif kind == "table":
        _write_text(_table_csv(value), path, "table")
    elif kind == "json":
        _write_text(json.dumps(to_jsonable(value), indent=2, allow_nan=False) + "\n", path, "JSON file")
    elif kind == "text":
        _write_text(str(value), path, "text file")
    elif kind == "saveable":
        value.save(path)
    else:  # Output checks its kind; this is a bug in medface
        raise PluginError(f"no writer for output kind {kind!r}")
    return path


def write_declared(result: Result, folder: Path) -> None:
    """Write every declared output of ``result`` and record where each went."""
    for output in result.declared:
        path = write_output(output, folder)
        getattr(result, output.listed_as)[output.name] = str(path)
        if output.figure:
            result.figures[output.figure] = str(path)
