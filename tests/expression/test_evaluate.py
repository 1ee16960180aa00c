"""expression evaluate: the comparison with the truth, on a stand-in renderer and on the phantom's sets."""

from __future__ import annotations

import importlib.util

import pytest

import medface
from medface_expression.evaluate import draw_palsies, evaluate_sets, palsy_grade, severity_figure, side_figure

HAS_PHANTOM_SETS = importlib.util.find_spec("medface.phantom.expressions") is not None


def test_evaluation_compares_found_and_true_side_and_scores(rest_photo, left_smile):
    palsies = [{"side": "right", "severity": {"brow": 0.0, "eye": 0.0, "smile": 0.8, "lower_lip": 0.0},
                "synkinesis": 0.0}]
    found = evaluate_sets(palsies, lambda palsy, seed: {"rest": rest_photo, "smile": left_smile})
    (row,) = found.rows
    assert row["true_side"] == "right" == row["found_side"] and found.metrics["side_accuracy"] == 1.0
    assert row["side_by"] == "mean asymmetry" and found.metrics["side_found_by"] == {"mean asymmetry": 1}
    assert row["smile_score"] < 60 and found.metrics["smile_score_mae"] < 40
    assert severity_figure(found.rows).width > 300 and side_figure(found.rows).height > 200


def test_palsy_draws_hold_normal_faces_and_alternate_sides():
    drawn = draw_palsies(9, seed=1)
    assert [d["side"] for d in drawn] == [None, "right", "left", "right", None, "left", "right", "left", None]
    assert all(0 <= v <= 1 for d in drawn for v in d["severity"].values())
    assert {palsy_grade(d) for d in drawn[:1]} == {"normal"}


def test_grades_follow_the_mean_severity():
    def palsy(*values):
        return {"side": "left", "severity": dict(zip(("brow", "eye", "smile", "lower_lip"), values))}

    assert palsy_grade(palsy(0.2, 0.2, 0.2, 0.2)) == "mild"
    assert palsy_grade(palsy(0.0, 0.9, 0.9, 0.0)) == "moderate"
    assert palsy_grade(palsy(1.0, 1.0, 1.0, 0.5)) == "severe"


def test_metrics_rank_the_asymmetry_against_the_severity():
    """Spearman of the measured asymmetry (100 - score) with the severity; side accuracy by grade."""
    from medface_expression.evaluate import _metrics

    rows = []
    for i, (sev, score) in enumerate([(0.0, 98), (0.3, 75), (0.5, 52), (0.8, 30), (1.0, 2)]):
        row = {"session": i, "grade": "normal" if sev == 0 else "severe", "true_side": "none" if sev == 0 else "left",
               "found_side": "none" if sev == 0 else ("left" if i != 2 else "right"), "total": 95.0 if sev == 0 else 40.0,
               "side_by": "none" if sev == 0 else ("regions" if i == 1 else "mean asymmetry"), "warnings": int(i == 3)}
        for region in ("brow", "eye", "smile", "lower_lip"):
            row[f"{region}_severity"], row[f"{region}_score"] = sev, (score if region != "eye" else 100 - score)
        rows.append(row)
    m = _metrics(rows)
    assert m["brow_spearman"] == 1.0 and m["eye_spearman"] == -1.0
    assert m["side_accuracy_moderate_severe"] == 0.75 and m["normals_in_normal_range"] == 1.0
    assert m["side_found_by"] == {"mean asymmetry": 3, "none": 1, "regions": 1} and m["sessions_with_warnings"] == 1


@pytest.mark.skipif(not HAS_PHANTOM_SETS, reason="medface.phantom.expressions (the phantom's expression sets) "
                                                  "is not in this checkout yet")
def test_evaluate_on_phantom_sets_finds_the_affected_side(tmp_path):
    result = medface.run("expression.evaluate", subjects=3, size=512, out=tmp_path)
    assert result.metrics["side_accuracy"] >= 2 / 3, result.tables["sessions"]
    assert result.metrics["normals_in_normal_range"] == 1.0, result.tables["sessions"]
    assert (tmp_path / "sessions.csv").exists() and (tmp_path / "severity.png").exists()
