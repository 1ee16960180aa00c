"""The batch's record: an append-only journal and the results table made from it.

Every finished item is appended to ``journal.jsonl`` (one JSON line, flushed and synced before
the next item is handed out), so killing the driver loses at most the items in flight. The
table ``results.parquet`` (and ``results.csv``) is rewritten from the journal every few seconds
and at the end, each time to a temporary file renamed into place: a reader sees the old table
or the new one, never half of one. A torn last journal line (the driver killed while writing)
is ignored on reading.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

JOURNAL = "journal.jsonl"
PARQUET, CSV = "results.parquet", "results.csv"
#: first columns of the table, in this order; the inputs and the command's metrics follow
LEADING = ("id", "status", "key", "attempts", "error_class", "error_message", "error_hint", "exit_code",
           "duration_s", "worker", "finished", "output")


class Journal:
    """Append-only JSON lines in ``folder/journal.jsonl``; ``latest`` holds the last row of each
    id (read from the file when it exists, then kept up to date by :meth:`append`)."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / JOURNAL
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.latest: dict[str, dict] = self.read()

    def append(self, row: dict) -> None:
        line = json.dumps(row, sort_keys=True, default=str, allow_nan=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.latest[str(row["id"])] = row

    def read(self) -> dict[str, dict]:
        if not self.path.is_file():
            return {}
        out: dict[str, dict] = {}
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:  # a line torn by a killed driver
                    continue
                if isinstance(row, dict) and "id" in row:
                    out[str(row["id"])] = row
        return out


def _column(values: list):
    """One table column: numbers stay numbers, anything mixed becomes text (empty for missing)."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return values
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return [None if v is None else float(v) for v in values]
    return ["" if v is None else str(v) for v in values]


def table_columns(rows: list[dict]) -> dict[str, list]:
    names = [c for c in LEADING if any(c in r for r in rows)]
    names += sorted({c for r in rows for c in r if c.startswith("input_")} - set(names))
    names += sorted({c for r in rows for c in r} - set(names))
    return {name: _column([r.get(name) for r in rows]) for name in names}


def write_table(rows: list[dict], folder: Path) -> tuple[Path, Path]:
    """``results.parquet`` and ``results.csv`` in ``folder``, each written atomically."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    folder = Path(folder)
    table = pa.table(table_columns(rows)) if rows else pa.table({"id": pa.array([], pa.string())})
    out = []
    for name, write in ((PARQUET, lambda t, p: pq.write_table(t, p)), (CSV, lambda t, p: pacsv.write_csv(t, p))):
        target = folder / name
        tmp = folder / f".{name}.tmp-{os.getpid()}"
        write(table, str(tmp))
        os.replace(tmp, target)
        out.append(target)
    return out[0], out[1]


def read_results(folder) -> list[dict]:
    """The rows of a batch's ``results.parquet``."""
    import pyarrow.parquet as pq

    return pq.read_table(Path(folder) / PARQUET).to_pylist()


class TableWriter:
    """Rewrites the table from the journal's rows at most every ``interval_s`` seconds (and
    always on :meth:`flush`)."""

    #: the wait between two rewrites is at least this many times the last rewrite's duration, so
    #: that rewriting a large table (a million rows) takes at most ~5 % of the driver's time
    COST_FACTOR = 20.0

    def __init__(self, folder: Path, journal: Journal, order: list[str], interval_s: float = 5.0):
        self.folder, self.journal, self.order, self.interval_s = Path(folder), journal, order, interval_s
        self._known = set(order)
        self._last = 0.0
        self._cost = 0.0

    def wait_s(self) -> float:
        """Seconds between two rewrites: ``interval_s``, or longer when a rewrite is slow."""
        return max(self.interval_s, self.COST_FACTOR * self._cost)

    def maybe_write(self) -> None:
        if time.monotonic() - self._last >= self.wait_s():
            self.flush()

    def flush(self) -> list[dict]:
        started = time.monotonic()
        rows = self.journal.latest
        ordered = [rows[i] for i in self.order if i in rows] + [r for i, r in rows.items() if i not in self._known]
        write_table(ordered, self.folder)
        self._last = time.monotonic()
        self._cost = self._last - started
        return ordered
