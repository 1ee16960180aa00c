"""Batch runs: one plugin command over many inputs, on a local process pool or a Ray cluster.

::

    medface batch phenotype.screen --inputs photos/ --out screened/ [--engine ray] [--workers 8]
    medface batch forensic.reconstruct --inputs skulls.csv --out recs/ --resume --sex unknown

    import medface
    result = medface.batch("phenotype.screen", "photos/*.jpg", "screened", engine="local", workers=2)
    result.counts, result.exit_code

Each item writes the command's usual outputs to ``OUT/items/<id>/``; ``OUT/results.parquet``
(+ ``results.csv``) holds one row per item (id, status, inputs with sha256, the command's
headline metrics, error class and message, duration, worker), ``OUT/journal.jsonl`` the
append-only record it is made from, ``OUT/batch.json`` the summary and ``OUT/batch.html`` the
report. See ``docs/batch.md``.
"""

from __future__ import annotations

from .driver import BatchResult, run_batch

__all__ = ["BatchResult", "run_batch"]
