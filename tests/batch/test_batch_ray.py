"""Batch runs on a real local Ray cluster (ray.init(num_cpus=2))."""

from __future__ import annotations

import json

import pytest

import medface
from medface.batches.results import read_results
from medface.cli import main

from .conftest import write_inputs

ray = pytest.importorskip("ray")


def test_ray_engine_records_failures_and_crashes_and_finishes_the_rest(toy, tmp_path):
    write_inputs(tmp_path / "in", {"a": "ok 1", "b": "ok 2", "c": "bad", "d": "crash", "e": "ok 3", "f": "refuse"})
    res = medface.batch("batchtoy.work", tmp_path / "in", tmp_path / "out", engine="ray", workers=2, factor=2,
                        streaming=False)
    rows = {r["id"]: r for r in read_results(tmp_path / "out")}
    assert {k: rows[k]["status"] for k in rows} == {"a": "done", "b": "done", "c": "failed", "d": "crashed",
                                                      "e": "done", "f": "refused"}
    assert [rows[k]["metric_value"] for k in "abe"] == [2.0, 4.0, 6.0]
    assert rows["d"]["attempts"] == 2 and rows["d"]["error_class"] == "WorkerCrashed"
    assert rows["c"]["error_class"] == "InputError"
    assert res.engine == "ray" and res.exit_code == 9
    assert not ray.is_initialized()  # the cluster it started is shut down


def test_streaming_pipeline_gives_the_tasks_results_with_the_model_loaded_once(toy, tmp_path, monkeypatch):
    write_inputs(tmp_path / "in", {**{f"k{i:02d}": f"ok {i}" for i in range(12)}, "zbad": "bad"})
    log = tmp_path / "model.log"
    monkeypatch.setenv("BATCHTOY_MODEL_LOG", str(log))
    stream = medface.batch("batchtoy.work", tmp_path / "in", tmp_path / "s", engine="ray", workers=2, factor=3,
                           streaming=True)
    tasks = medface.batch("batchtoy.work", tmp_path / "in", tmp_path / "t", engine="ray", workers=2, factor=3)
    # by default a cluster without GPUs runs one task per item (faster there: docs/performance.md)
    assert stream.engine == "ray (streaming)" and tasks.engine == "ray"
    s = {r["id"]: r for r in read_results(tmp_path / "s")}
    t = {r["id"]: r for r in read_results(tmp_path / "t")}
    assert set(s) == set(t) and len(s) == 13
    for k in s:
        assert s[k]["status"] == t[k]["status"], k
        if s[k]["status"] == "done":
            assert s[k]["metric_value"] == t[k]["metric_value"] == 3.0 * int(k[1:])
            assert (tmp_path / "s" / "items" / k / "result.json").is_file()
    assert s["zbad"]["status"] == "failed" and s["zbad"]["error_class"] == "InputError"
    assert log.read_text().split() == ["loaded"]  # one actor, the model loaded once for the batch
    assert max(r.get("metric_batch_size") or 0 for r in s.values()) > 1  # items reached the model in batches
    code = main(["batch", "batchtoy.work", "--inputs", str(tmp_path / "in"), "--out", str(tmp_path / "c"),
                 "--engine", "ray", "--workers", "2", "--streaming", "on", "--json"])
    assert code == 9 and json.loads((tmp_path / "c" / "batch.json").read_text())["engine"] == "ray (streaming)"


def test_streaming_is_chosen_by_default_only_where_there_are_gpus():
    from medface.batches.engines import use_streaming

    stages = "pkg.module:Stages"
    assert use_streaming(stages, None, gpus=1) and not use_streaming(stages, None, gpus=0)
    assert use_streaming(stages, True, gpus=0) and not use_streaming(stages, False, gpus=4)
    assert not use_streaming(None, True, gpus=4)  # a command without stages never streams
