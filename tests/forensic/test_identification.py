"""Identification in `forensic evaluate`: ranks, CMC curve, rates with counts (model and both
baselines), the page and the figure."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from medface_forensic import metrics as M
from medface_forensic import validation_doc
from medface_forensic.evaluate import cmc_image, identification_rows


def test_true_match_ranks_count_ties_against_the_probe():
    d = np.array([[1.0, 2.0, 3.0],    # true 0: closest -> 1
                  [1.0, 1.0, 0.5],    # true 1: tied with 0 and beaten by 2 -> 3
                  [0.2, 0.1, 0.3]])   # true 2: farthest -> 3
    np.testing.assert_array_equal(M.true_match_ranks(d, [0, 1, 2]), [1, 3, 3])


def test_cmc_is_cumulative_and_ends_at_100():
    curve = M.cmc(np.array([1, 1, 2, 5]), pool_size=6)
    np.testing.assert_allclose(curve, [50, 75, 75, 75, 100, 100])


def _faces(n, m=300, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 20, (m, 3)) for _ in range(n)]


def test_identification_finds_rotated_noisy_copies_among_distractors():
    pool = _faces(120)  # 20 true faces, 100 distractors
    rng = np.random.default_rng(1)
    probes = []
    for i in range(20):
        rot = Rotation.random(random_state=i).as_matrix()
        probes.append(pool[i] @ rot.T + rng.normal(0, 1.0, pool[i].shape) + [5.0, -3.0, 40.0])
    ident = M.identification(probes, pool, list(range(20)))
    assert ident["rank1"] == 100.0 and ident["counts"] == {"rank1": 20, "rank5": 20, "rank10": 20}
    assert ident["pool_size"] == 120 and ident["n_probes"] == 20 and len(ident["cmc_pct"]) == 120
    assert ident["chance_rank1_pct"] == pytest.approx(100 / 120)


def test_identification_of_unrelated_probes_is_near_chance():
    pool = _faces(100, seed=2)
    probes = _faces(50, seed=3)  # no probe resembles its "true" face more than any other
    ident = M.identification(probes, pool, list(range(50)))
    assert ident["rank1"] <= 10.0 and 20.0 <= ident["median_rank"] <= 80.0
    assert ident["counts"]["rank10"] == round(ident["rank10"] * 50 / 100)


def _results():
    pool = {"size": 103, "true_faces": 3, "distractors": 100, "distractor_seed": 2000, "vertices": 500,
            "distance": M.FACE_DISTANCE}

    def method(ranks):
        curve = M.cmc(np.array(ranks), 103)
        return {"identification": {"rank1": curve[0], "rank5": curve[4], "rank10": curve[9],
                                   "counts": {f"rank{k}": int((np.array(ranks) <= k).sum()) for k in (1, 5, 10)},
                                   "n_probes": 3, "pool_size": 103, "median_rank": float(np.median(ranks)),
                                   "chance_rank1_pct": 100 / 103, "cmc_pct": list(curve)}}
    return {"full": {"n_test": 3, "identification_pool": pool, "model": method([1, 1, 7]),
                     "baseline": method([2, 12, 40]), "offset": method([30, 60, 90])}}


def test_page_section_gives_rates_with_counts_the_pool_and_the_figure():
    text = validation_doc.identification_section(_results()["full"], "images/forensic_cmc.png")
    assert "pool of 103 faces" in text and "100 distractor" in text and "seed=2000" in text
    assert "| model | 67 % (2/3) | 67 % (2/3) | 100 % (3/3) |" in text
    assert "| tissue-depth baseline | 0 % (0/3) | 33 % (1/3) | 33 % (1/3) |" in text
    assert "| constant-offset baseline | 0 % (0/3) | 0 % (0/3) | 0 % (0/3) | 60 |" in text
    assert "![CMC curve](images/forensic_cmc.png)" in text


def test_table_rows_and_cmc_picture():
    rows = identification_rows(_results()["full"])
    assert [r["method"] for r in rows] == ["model", "baseline", "offset"]
    assert rows[0]["rank10_count"] == 3 and rows[1]["rank1_pct"] == 0.0 and rows[2]["median_rank"] == 60.0
    image = cmc_image(_results())
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.min() < 100 and image.max() == 255  # curves and labels drawn on a white ground
