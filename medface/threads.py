"""Thread counts of the numeric libraries and of medface's own parallel routines, in one place.

``OMP_NUM_THREADS`` (with its BLAS and numexpr siblings, :data:`THREAD_VARIABLES`) is the one
setting: the operator's, a batch worker's (the local pool gives each worker its share of the
cores, :func:`share_cores`) or Ray's for its tasks. medface's own parallel k-d tree queries, which
scipy does not tie to those variables, follow it too (:func:`query_workers`); without it, every core.
"""

from __future__ import annotations

import os
import sys

#: the thread-count settings of the numeric libraries a command may use (OpenMP: torch and
#: scikit-learn; the BLAS builds numpy and scipy link; numexpr)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def threads_per_worker(workers: int, cpus: int | None = None) -> int:
    """This machine's cores shared out between ``workers`` processes (at least one each)."""
    return max(1, int(cpus or os.cpu_count() or 1) // max(1, int(workers)))


def share_cores(threads: int) -> None:
    """Start of a pool worker: its numeric libraries use ``threads`` threads, so that W workers
    do not each start one thread per core and fight for the cores. Where the operator set any of
    :data:`THREAD_VARIABLES`, the environment is left as it is."""
    if any(os.environ.get(variable) for variable in THREAD_VARIABLES):
        return
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    if "torch" in sys.modules:  # already imported (a fork): the variable came too late for it
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def query_workers() -> int:
    """The ``workers`` argument for a parallel k-d tree query: ``OMP_NUM_THREADS`` when it is a
    positive whole number, else -1 (scipy's "every core")."""
    text = os.environ.get("OMP_NUM_THREADS", "").strip()
    try:
        count = int(text)
    except ValueError:
        return -1
    return count if count > 0 else -1
