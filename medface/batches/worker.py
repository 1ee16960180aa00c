"""One item, run in a worker process: the command through :func:`medface.run`, into its own
output folder, and one results row back, whatever happened.

A bad input, a refusal or a plugin error becomes a row with the error's class, its one-line
message and hint: the batch goes on. Only the death of the process itself (a segfault, the
out-of-memory killer) escapes, and the engine records that (:mod:`.engines`).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

#: statuses of a results row
DONE, REFUSED, FAILED, CRASHED, SKIPPED = "done", "refused", "failed", "crashed", "skipped"
FINISHED = (DONE, REFUSED)  # what --resume keeps


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def headline(summary: dict, limit: int = 24) -> dict:
    """The command's scalar summary values as ``metric_<key>`` columns (numbers and short texts)."""
    out = {}
    for key, value in summary.items():
        if isinstance(value, bool):
            out[f"metric_{key}"] = value
        elif isinstance(value, (int, float)):
            out[f"metric_{key}"] = float(value)
        elif isinstance(value, str) and len(value) <= 200:
            out[f"metric_{key}"] = value
        if len(out) >= limit:
            break
    return out


def first_line(text: str, limit: int = 400) -> str:
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line[:limit]


def run_item(command: str, item_id: str, params: dict, out_param: str, out_dir: str,
             options: dict | None = None) -> dict:
    """Run ``command`` on one item's full parameters with its output folder parameter
    ``out_param`` set to ``out_dir``; the results row (no exception escapes except the
    process's own death)."""
    import medface
    from medface.errors import MedfaceError

    started = time.perf_counter()
    row = {"id": item_id, "worker": worker_name()}
    try:
        result = medface.run(command, **params, **(options or {}), **{out_param: out_dir})
    except MedfaceError as exc:
        row.update(status=FAILED, error_class=type(exc).__name__, error_message=first_line(getattr(exc, "message", exc)),
                   error_hint=first_line(getattr(exc, "hint", "") or ""), exit_code=exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - a bug in a plugin: recorded, the batch goes on
        row.update(status=FAILED, error_class=type(exc).__name__, error_message=first_line(exc),
                   error_hint="an internal error of medface or the plugin; rerun the item alone with --verbose",
                   exit_code=70)
    else:
        row.update(status=REFUSED if result.refused else DONE, exit_code=result.exit_code,
                   error_class="", error_message=first_line(result.refusal or "") if result.refused else "",
                   error_hint="")
        row.update(headline(result.summary))
    row["duration_s"] = round(time.perf_counter() - started, 3)
    row["output"] = str(Path("items") / item_id)
    return row
