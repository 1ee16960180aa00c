"""expression evaluate: the comparison with the truth, on a stand-in renderer and on the phantom's sets."""

from __future__ import annotations

import importlib.util

import pytest

import medface
from medface_expression.evaluate import draw_palsies, evaluate_sets, severity_figure, side_figure

HAS_PHANTOM_SETS = importlib.util.find_spec("medface.phantom.expressions") is not None


def test_evaluation_compares_found_and_true_side_and_scores(rest_photo, left_smile):
    palsies = [{"side": "right", "severity": {"brow": 0.0, "eye": 0.0, "smile": 0.8, "lower_lip": 0.0},
                "synkinesis": 0.0}]
    found = evaluate_sets(palsies, lambda palsy, seed: {"rest": rest_photo, "smile": left_smile})
    (row,) = found.rows
    assert row["true_side"] == "right" == row["found_side"] and found.metrics["side_accuracy"] == 1.0
    assert row["smile_score"] < 60 and found.metrics["smile_score_mae"] < 40
    assert severity_figure(found.rows).width > 300 and side_figure(found.rows).height > 200


def test_palsy_draws_start_with_a_normal_face_and_alternate_sides():
    drawn = draw_palsies(5, seed=1)
    assert drawn[0]["side"] is None and [d["side"] for d in drawn[1:]] == ["right", "left", "right", "left"]
    assert all(0 <= v <= 1 for d in drawn for v in d["severity"].values())


@pytest.mark.skipif(not HAS_PHANTOM_SETS, reason="medface.phantom.expressions (the phantom's expression sets) "
                                                  "is not in this checkout yet")
def test_evaluate_on_phantom_sets_finds_the_affected_side(tmp_path):
    result = medface.run("expression.evaluate", subjects=3, size=512, out=tmp_path)
    assert result.metrics["side_accuracy"] >= 2 / 3, result.tables["sessions"]
    assert (tmp_path / "sessions.csv").exists() and (tmp_path / "severity.png").exists()
