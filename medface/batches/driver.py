"""A batch from start to end: items, resume, engine, journal, table, summary, report.

:func:`run_batch` is what ``medface batch`` and :func:`medface.batch` call. The driver never
runs an item itself: it expands the inputs, decides what is left to do, hands tasks to the
engine and records every row the moment it comes back.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ParameterError
from . import items as I
from .engines import Task, make_engine
from .results import Journal, TableWriter
from .worker import CRASHED, FAILED, FINISHED

SUMMARY_FILE = "batch.json"
REPORT_FILE = "batch.html"


@dataclass
class BatchResult:
    """What a batch did: counts by status, failures by error class, the table's rows, files."""

    command: str
    out: Path
    engine: str
    total: int
    counts: dict
    failures_by_class: dict
    skipped: int
    seconds: float
    stopped: str = ""  # why the batch stopped early ("" when it ran to its end)
    rows: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.stopped and not (self.counts.get(FAILED, 0) or self.counts.get(CRASHED, 0))

    @property
    def exit_code(self) -> int:
        """0 when every item is done or refused; 9 when some failed; 10 when stopped early."""
        return 10 if self.stopped else (0 if self.ok else 9)

    def to_dict(self) -> dict:
        return {"command": self.command, "engine": self.engine, "items": self.total, "counts": self.counts,
                "failures_by_class": self.failures_by_class, "skipped_unchanged": self.skipped,
                "seconds": round(self.seconds, 2), "stopped": self.stopped, "exit_code": self.exit_code,
                "rate_items_per_s": round(sum(self.counts.values()) / self.seconds, 3) if self.seconds else None}


class Progress:
    """Counts, rate and ETA on a terminal (tqdm); nothing in CI or a pipe."""

    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled and total:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="item", dynamic_ncols=True, smoothing=0.1)
        self.counts: Counter = Counter()

    def update(self, row: dict) -> None:
        self.counts[row["status"]] += 1
        if self.bar is not None:
            self.bar.set_postfix({k: v for k, v in sorted(self.counts.items())}, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _command(command_id: str):
    from ..plugin.registry import get_registry

    return get_registry().command(command_id)[1]


def run_batch(command: str, inputs, out, *, engine: str = "local", workers: int | None = None,
              ray_address: str | None = None, resume: bool = False, max_failures: int | None = None,
              input_param: str | None = None, params: dict | None = None, options: dict | None = None,
              progress: bool | None = None, streaming: bool | None = None) -> BatchResult:
    """Run ``command`` ("plugin.command") on every item of ``inputs`` into ``out``; see the module
    docstring of :mod:`medface.batches`. On the ray engine, a command that has streaming stages
    runs as its Ray Data pipeline when ``streaming`` is True, as one Ray task per item when it is
    False, and by default (None) streams only on a cluster with GPUs."""
    from ..progress import progress_enabled
    from .report import write_batch_report

    spec = _command(command)
    out_param = I.output_param(spec)
    shared = {k.replace("-", "_"): v for k, v in (params or {}).items()}
    if out_param in shared:
        raise ParameterError(f"'{out_param}' is set per item by the batch (DIR/items/<id>/); give --out DIR only",
                             parameter=out_param)
    if max_failures is not None and max_failures < 1:
        raise ParameterError(f"must be at least 1, got {max_failures}", parameter="max_failures")
    out = Path(out)
    items = I.expand_inputs(inputs, spec, input_param)
    out.mkdir(parents=True, exist_ok=True)
    journal = Journal(out)
    if journal.latest and not resume:
        raise ParameterError(f"{out} holds an earlier batch (journal.jsonl): give --resume to finish it, or another "
                             "--out", parameter="out")
    runner = make_engine(engine, workers, ray_address, spec.streaming, streaming)
    started = time.perf_counter()
    tasks, keys, skipped = [], {}, 0
    for item in items:
        full = {**shared, **item.params}
        key, columns = I.fingerprint(spec, full)
        keys[item.id] = (key, columns)
        done = journal.latest.get(item.id)
        if resume and done is not None and done.get("key") == key and done.get("status") in FINISHED:
            skipped += 1
            continue
        tasks.append(Task(command, item.id, full, out_param, str(out / "items" / item.id), dict(options or {})))
    table = TableWriter(out, journal, [i.id for i in items])
    bar = Progress(len(tasks), progress_enabled() if progress is None else progress)
    failures = 0
    stopped = ""

    def record(row: dict) -> bool:
        nonlocal failures, stopped
        key, columns = keys[row["id"]]
        row = {**columns, **row, "key": key, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        journal.append(row)
        bar.update(row)
        table.maybe_write()
        if row["status"] in (FAILED, CRASHED):
            failures += 1
            if max_failures is not None and failures >= max_failures:
                stopped = (f"stopped after {failures} failed items (--max-failures {max_failures}): the batch looks "
                           f"misconfigured; the last error: {row.get('error_class')}: {row.get('error_message')}")
                return False
        return True

    try:
        runner.run(tasks, record)
    finally:
        bar.close()
        rows = table.flush()
    this_run = Counter(r["status"] for r in rows)
    failed = Counter(r.get("error_class") or "?" for r in rows if r["status"] in (FAILED, CRASHED))
    result = BatchResult(command, out, runner.name, len(items), dict(this_run), dict(failed), skipped,
                         time.perf_counter() - started, stopped, rows)
    import json

    (out / SUMMARY_FILE).write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    write_batch_report(result, out / REPORT_FILE)
    return result
