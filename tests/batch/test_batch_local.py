"""Batch runs on the local process pool: every item recorded once, whatever it does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

import medface
from medface.batches.results import Journal, read_results
from medface.cli import main
from medface.errors import ParameterError

from .conftest import write_inputs


def _by_id(rows):
    return {r["id"]: r for r in rows}


def test_bad_input_refusal_and_crash_are_recorded_and_the_rest_done(toy, tmp_path):
    write_inputs(tmp_path / "in", {"a": "ok 1", "b": "ok 2", "c": "bad", "d": "refuse", "e": "crash", "f": "ok 3",
                                   "g": "ok 4"})
    res = medface.batch("batchtoy.work", tmp_path / "in", tmp_path / "out", workers=2, factor=10)
    rows = _by_id(read_results(tmp_path / "out"))
    assert set(rows) == set("abcdefg")
    for i, k in zip((1, 2, 3, 4), "abfg"):
        assert rows[k]["status"] == "done" and rows[k]["metric_value"] == 10.0 * i
        assert (tmp_path / "out" / "items" / k / "result.json").is_file()
    assert rows["c"]["status"] == "failed" and rows["c"]["error_class"] == "InputError"
    assert rows["c"]["error_message"] == "the instruction file says bad" and rows["c"]["error_hint"] == "write ok N instead"
    assert rows["d"]["status"] == "refused" and "told to refuse" in rows["d"]["error_message"]
    assert rows["e"]["status"] == "crashed" and rows["e"]["attempts"] == 2 and "SIGKILL" in rows["e"]["error_message"]
    # items in flight when the crash broke the pool ran again, alone; nothing else ran twice
    assert sum(r["attempts"] == 2 for k, r in rows.items() if k != "e") <= 3
    assert all(r["attempts"] in (1, 2) for r in rows.values())
    assert rows["a"]["input_text"] == "a.txt" and len(rows["a"]["input_text_sha256"]) == 64
    assert res.counts == {"done": 4, "failed": 1, "refused": 1, "crashed": 1} and res.exit_code == 9
    assert res.failures_by_class == {"InputError": 1, "WorkerCrashed": 1}
    summary = json.loads((tmp_path / "out" / "batch.json").read_text())
    assert summary["counts"]["done"] == 4 and summary["exit_code"] == 9
    page = (tmp_path / "out" / "batch.html").read_text()
    assert "items/a/report.html" in page and "WorkerCrashed" in page
    assert str(tmp_path) not in page  # inputs by file name only


def test_a_pool_found_broken_when_submitting_loses_no_item_and_reruns_none(toy, tmp_path, monkeypatch):
    """A worker can die between two waits; the next submission then raises at once. That item has
    not run: it goes to a fresh pool, it is neither lost nor counted as a crash."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    write_inputs(tmp_path / "in", {k: f"ok {i}" for i, k in enumerate("abcdefgh", 1)})
    submit, calls = ProcessPoolExecutor.submit, []

    def submit_that_finds_the_pool_broken_once(pool, fn, *args, **kwargs):
        calls.append(args[1])
        if len(calls) == 3:
            raise BrokenProcessPool("a child process terminated abruptly")
        return submit(pool, fn, *args, **kwargs)

    monkeypatch.setattr(ProcessPoolExecutor, "submit", submit_that_finds_the_pool_broken_once)
    res = medface.batch("batchtoy.work", tmp_path / "in", tmp_path / "out", workers=2)
    rows = _by_id(read_results(tmp_path / "out"))
    assert set(rows) == set("abcdefgh") and res.counts == {"done": 8}
    assert all(r["attempts"] == 1 for r in rows.values())
    assert calls.count(calls[2]) == 2  # the refused submission was made again, once


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to tell shared from set")
def test_pool_workers_share_the_cores_unless_the_operator_set_a_thread_count(toy, tmp_path, monkeypatch):
    from medface.threads import THREAD_VARIABLES

    for variable in THREAD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    write_inputs(tmp_path / "in", {"a": "threads", "b": "threads", "c": "threads"})
    rows = _by_id(medface.batch("batchtoy.work", tmp_path / "in", tmp_path / "out", workers=2).rows)
    assert {r["metric_value"] for r in rows.values()} == {float(max(1, (os.cpu_count() or 1) // 2))}
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # torch takes at most the cores it has
    rows = _by_id(medface.batch("batchtoy.work", tmp_path / "in", tmp_path / "out2", workers=2).rows)
    assert {r["metric_value"] for r in rows.values()} == {2.0}


def test_a_script_without_a_main_guard_is_told_so_at_once_not_after_every_item_crashed(toy, tmp_path):
    """Spawned workers import the calling script again; without ``if __name__ == "__main__"`` each
    dies as it starts. The batch stops with that reason instead of recording every item as a crash."""
    write_inputs(tmp_path / "in", {k: "ok 1" for k in "abcdefghijkl"})
    script = tmp_path / "unguarded.py"
    script.write_text(f"import medface\nmedface.batch('batchtoy.work', {str(tmp_path / 'in')!r}, "
                      f"{str(tmp_path / 'out')!r}, workers=2, progress=False)\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "WorkersCannotStart" in proc.stderr and "__name__" in proc.stderr
    rows = Journal(tmp_path / "out").read()
    assert not any(r["status"] == "crashed" for r in rows.values())


def test_a_table_maps_columns_to_parameters_and_resume_reruns_only_what_changed(toy, tmp_path, monkeypatch):
    write_inputs(tmp_path / "in", {"a": "ok 1", "b": "ok 2", "c": "bad"})
    table = tmp_path / "items.csv"
    table.write_text("id,text,factor\nfirst,in/a.txt,2\nsecond,in/b.txt,3\nthird,in/c.txt,1\n")
    log = tmp_path / "runs.log"
    monkeypatch.setenv("BATCHTOY_LOG", str(log))
    res = medface.batch("batchtoy.work", table, tmp_path / "out", workers=2)
    rows = _by_id(res.rows)
    assert rows["first"]["metric_value"] == 2.0 and rows["second"]["metric_value"] == 6.0
    assert rows["third"]["status"] == "failed"
    assert sorted(log.read_text().split()) == ["a", "b", "c"]
    # nothing changed: a finished item is not run again, a failed one is
    again = medface.batch("batchtoy.work", table, tmp_path / "out", workers=2, resume=True)
    assert again.skipped == 2 and sorted(log.read_text().split()) == ["a", "b", "c", "c"]
    # an edited input file is rerun
    (tmp_path / "in" / "a.txt").write_text("ok 5")
    third = medface.batch("batchtoy.work", table, tmp_path / "out", workers=2, resume=True)
    assert third.skipped == 1 and _by_id(third.rows)["first"]["metric_value"] == 10.0
    with pytest.raises(ParameterError, match="--resume"):
        medface.batch("batchtoy.work", table, tmp_path / "out", workers=2)


def test_unknown_table_column_is_refused_before_anything_runs(toy, tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("text,colour\nx.txt,red\n")
    with pytest.raises(ParameterError, match="colour"):
        medface.batch("batchtoy.work", table, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_max_failures_stops_a_misconfigured_batch(toy, tmp_path):
    write_inputs(tmp_path / "in", {f"x{i:02d}": "bad" for i in range(12)})
    res = medface.batch("batchtoy.work", tmp_path / "in", tmp_path / "out", workers=1, max_failures=3)
    assert res.stopped and "--max-failures 3" in res.stopped and res.exit_code == 10
    assert 3 <= res.counts["failed"] < 12


def test_cli_batch_exit_code_and_summary(toy, tmp_path, capsys):
    write_inputs(tmp_path / "in", {"a": "ok 1", "b": "bad"})
    code = main(["batch", "batchtoy.work", "--inputs", str(tmp_path / "in" / "*.txt"), "--out", str(tmp_path / "o"),
                 "--workers", "1", "--factor", "4", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 9 and out["counts"] == {"done": 1, "failed": 1}
    rows = _by_id(read_results(tmp_path / "o"))
    assert rows["a"]["metric_value"] == 4.0


def test_a_killed_driver_loses_only_items_in_flight_and_resume_finishes(toy, tmp_path):
    """The driver runs in its own process, is killed mid-batch, and a rerun with --resume
    completes without running the finished items again."""
    write_inputs(tmp_path / "in", {f"s{i:02d}": "sleep 0.4" for i in range(10)})
    log = tmp_path / "runs.log"
    env = {**os.environ, "BATCHTOY_LOG": str(log)}
    cmd = [sys.executable, "-m", "medface", "batch", "batchtoy.work", "--inputs", str(tmp_path / "in"), "--out",
           str(tmp_path / "out"), "--workers", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = tmp_path / "out" / "journal.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not journal.is_file() or len(journal.read_text().splitlines()) < 3):
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    finished = set(Journal(tmp_path / "out").latest)
    assert 3 <= len(finished) < 10
    ran_before = log.read_text().split()
    assert subprocess.run(cmd + ["--resume"], env=env, capture_output=True).returncode == 0
    rows = _by_id(read_results(tmp_path / "out"))
    assert len(rows) == 10 and all(r["status"] == "done" for r in rows.values())
    ran_after = log.read_text().split()[len(ran_before):]
    assert not set(ran_after) & finished  # finished items did not run again
    assert set(ran_after) | finished == {f"s{i:02d}" for i in range(10)}


def test_a_slow_table_rewrite_is_made_less_often(tmp_path, monkeypatch):
    """A million-row table takes seconds to rewrite; rewriting it every 5 s would stall the driver."""
    from medface.batches import results

    journal = Journal(tmp_path)
    journal.append({"id": "a", "status": "done"})
    writer = results.TableWriter(tmp_path, journal, ["a"], interval_s=5.0)
    writer.flush()  # the first one also imports pyarrow
    writer.flush()
    assert writer.wait_s() == 5.0  # a one-row table: the plain interval
    monkeypatch.setattr(results, "write_table", lambda rows, folder: time.sleep(0.5))
    writer.flush()
    assert writer.wait_s() >= writer.COST_FACTOR * 0.5
