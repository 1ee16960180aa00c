"""How many threads medface's own parallel routines may start (closest-point queries of scipy's
k-d trees, which do not read the OpenMP or BLAS settings).

``OMP_NUM_THREADS`` is the one setting: the operator's, a batch worker's (the local pool gives
each worker its share of the cores, :func:`medface.batches.worker.share_cores`) or Ray's for its
tasks. Without it, every core.
"""

from __future__ import annotations

import os


def query_workers() -> int:
    """The ``workers`` argument for a parallel k-d tree query: ``OMP_NUM_THREADS`` when it is a
    positive whole number, else -1 (scipy's "every core")."""
    text = os.environ.get("OMP_NUM_THREADS", "").strip()
    try:
        count = int(text)
    except ValueError:
        return -1
    return count if count > 0 else -1
