"""Batch runs on a real local Ray cluster (ray.init(num_cpus=2))."""

from __future__ import annotations

import pytest

import medface
from medface.batches.results import read_results

from .conftest import write_inputs

ray = pytest.importorskip("ray")


def test_ray_engine_records_failures_and_crashes_and_finishes_the_rest(toy, tmp_path):
    write_inputs(tmp_path / "in", {"a": "ok 1", "b": "ok 2", "c": "bad", "d": "crash", "e": "ok 3", "f": "refuse"})
    res = medface.batch("batchtoy.work", tmp_path / "in", tmp_path / "out", engine="ray", workers=2, factor=2)
    rows = {r["id"]: r for r in read_results(tmp_path / "out")}
    assert {k: rows[k]["status"] for k in rows} == {"a": "done", "b": "done", "c": "failed", "d": "crashed",
                                                      "e": "done", "f": "refused"}
    assert [rows[k]["metric_value"] for k in "abe"] == [2.0, 4.0, 6.0]
    assert rows["d"]["attempts"] == 2 and rows["d"]["error_class"] == "WorkerCrashed"
    assert rows["c"]["error_class"] == "InputError"
    assert res.engine == "ray" and res.exit_code == 9
    assert not ray.is_initialized()  # the cluster it started is shut down
