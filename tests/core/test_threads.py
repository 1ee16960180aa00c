"""medface's own parallel queries follow the one thread setting an operator or a batch worker makes."""

from __future__ import annotations

import pytest

from medface.threads import query_workers


@pytest.mark.parametrize("value, expected", [(None, -1), ("1", 1), ("3", 3), ("0", -1), ("many", -1), (" 2 ", 2)])
def test_kd_tree_queries_use_omp_num_threads_or_every_core(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert query_workers() == expected
