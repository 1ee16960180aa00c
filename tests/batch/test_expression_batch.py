"""`expression grade` as a batch: a folder of session folders, one item per session (a command
whose input is a folder takes the subfolders as its items)."""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image

import medface
from medface.batches.results import read_results

SESSION = Path(__file__).resolve().parents[2] / "sample_data" / "expressions"


def test_a_folder_of_sessions_is_graded_one_session_per_item(tmp_path):
    sessions = tmp_path / "sessions"
    shutil.copytree(SESSION, sessions / "palsy_right")
    (sessions / "rest_only").mkdir()
    shutil.copy(SESSION / "rest.png", sessions / "rest_only" / "rest.png")
    (sessions / "no_face").mkdir()
    Image.new("RGB", (448, 448), (150, 160, 170)).save(sessions / "no_face" / "rest.png")
    (sessions / "notes.txt").write_text("a file beside the sessions is not an item")
    res = medface.batch("expression.grade", sessions, tmp_path / "out", workers=2)
    rows = {r["id"]: r for r in read_results(tmp_path / "out")}
    assert set(rows) == {"palsy_right", "rest_only", "no_face"}
    assert rows["palsy_right"]["status"] == "done" and rows["rest_only"]["status"] == "done"
    assert rows["no_face"]["status"] in ("refused", "failed") and "face" in rows["no_face"]["error_message"]
    assert res.counts["done"] == 2
    # the sample session's right-sided palsy is found as graded alone
    alone = medface.run("expression.grade", photos=sessions / "palsy_right", out=tmp_path / "alone")
    assert alone.summary["affected_side"] == "right"
    graded = (tmp_path / "out" / "items" / "palsy_right" / "result.json").read_text(encoding="utf-8")
    assert '"affected_side": "right"' in graded
