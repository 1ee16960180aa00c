"""The validation page of `forensic evaluate` (model against the tissue-depth and the constant-offset
baselines, calibration with the SD-error rank correlation) and the evaluation that fills it."""

from __future__ import annotations

import numpy as np
import pytest
from medface_forensic import metrics as M
from medface_forensic import validation_doc as V

META = {"training_data": "synthetic: medface phantom cohort(n=200, seed=0)", "tissue_prior": True,
        "covariate_effect": "explicit: the literature tissue prior's sex, age and BMI fields",
        "variance_target": 0.999, "n_components": 139, "n_subjects": 200, "explained_variance": 0.999,
        "sigma2_mm2": 0.01, "vertex_subsets": {"cranium": 3000, "mandible": 800, "face": 8000}}


def _method(level: float, worse_region: str | None = None, rank1: float = 50.0) -> dict:
    """A method's results whose errors are ``level`` mm everywhere (twice that in ``worse_region``)."""
    rng = np.random.default_rng(int(level * 100))

    def stats(scale):
        return M.summarise(np.abs(rng.normal(0, scale, 2000)))

    out = {"face": stats(level), "regions": {r: stats(2 * level if r == worse_region else level) for r in M.REGIONS},
           "identification": {"rank1": rank1, "rank5": 80.0, "rank10": 90.0, "n_probes": 10, "pool_size": 110,
                              "counts": {"rank1": int(rank1 / 10), "rank5": 8, "rank10": 9}, "median_rank": 1.0,
                              "chance_rank1_pct": 100 / 110, "cmc_pct": [rank1] + [100.0] * 109}}
    return out


def _results() -> dict:
    model = _method(1.0, worse_region="orbits", rank1=90.0)
    model["calibration"] = {"within_1sd": 67.0, "within_2sd": 94.0}
    model["calibration_regions"] = {r: {"within_1sd": 66.0, "within_2sd": 93.0} for r in M.REGIONS}
    model["sd_error_rank_corr"] = 0.412
    model["sd_error_rank_corr_regions"] = {r: 0.3 for r in M.REGIONS}
    model["sd_error_rank_corr_ideal"] = {"face": 0.45, "regions": {r: 0.4 for r in M.REGIONS}}
    model["sd_median_mm"] = {"face": 1.4, "regions": {r: 1.5 for r in M.REGIONS}}
    offset = _method(3.0, rank1=20.0) | {"depth_mm": 10.0}
    full = {"n_test": 10, "test_seed": 1000, "sigma_mm": 1.0, "face_vertices": 27000,
            "identification_pool": {"size": 110, "true_faces": 10, "distractors": 100, "distractor_seed": 2000,
                                    "vertices": 6800, "distance": M.FACE_DISTANCE},
            "timing_condition_plus_100_samples_s": 2.0,
            "model": model, "baseline": _method(1.6, rank1=60.0), "offset": offset}
    return {"full": full}


def test_error_table_compares_the_model_with_both_baselines_per_region():
    full = _results()["full"]
    table = V.error_table(full)
    header = table.splitlines()[0]
    assert "model mean" in header and "tissue-depth mean" in header and "constant offset mean" in header
    face_row = next(line for line in table.splitlines() if line.startswith("| face |"))
    cells = [c.strip() for c in face_row.strip("|").split("|")]
    assert len(cells) == 1 + 3 * 4  # region + (mean, RMS, P95, ≤ 2.5 mm) for each method
    for i, method in enumerate(("model", "baseline", "offset")):
        assert cells[1 + 4 * i] == f"{full[method]['face']['mean']:.2f}"
    for r in M.REGIONS:
        assert f"| {r} |" in table


def test_comparison_names_the_regions_where_the_model_does_not_beat_a_baseline():
    full = _results()["full"]
    text = V.comparison_text(full)
    assert "NOT below" in text and "orbits" in text and "tissue-depth baseline" in text
    assert "nose" not in text  # the model is better there
    full["model"]["regions"]["orbits"] = dict(full["model"]["regions"]["nose"])
    assert "below both baselines" in V.comparison_text(full)


def test_calibration_table_has_coverage_and_the_rank_correlation():
    table = V.calibration_table(_results()["full"])
    assert "within ±1σ" in table and "within ±2σ" in table and "rank corr." in table
    assert "| face | 67.0 % | 94.0 % | 0.41 | 1.40 |" in table
    assert "| lips | 66.0 % | 93.0 % | 0.30 | 1.50 |" in table
    assert "ρ = 0.41" in V.calibration_text(_results()["full"]) and "0.45" in V.calibration_text(_results()["full"])


def test_page_describes_the_model_and_both_baselines_truthfully():
    population = {"sites": 22, "site_sd_rms_mm": 3.7, "residual_sd_rms_sites_mm": 3.4,
                  "residual_sd_rms_face_mm": 2.0, "correlation_length_mm": 15.0,
                  "residual_floor_mean_abs_mm": {"face": 1.1, "regions": {r: 1.0 for r in M.REGIONS}}}
    results = _results()
    page = V.markdown(results, META, population=population)
    assert "SYNTHETIC" in page and "NOT an estimate of accuracy" in page
    # covariates through the explicit effect, not as PPCA dimensions; the faces follow the tissue prior
    assert "explicit covariate effect" in page and "not as PPCA dimensions" in page
    assert "extra observed dimensions" not in page
    assert "3.7 mm RMS" in page and "2.0 mm" in page
    # the constant offset's depth and where it comes from
    assert "10.0 mm" in page and "not tuned" in page
    # both baselines in the identification table, the variants and the goals
    assert "| constant-offset baseline |" in page and "| tissue-depth baseline |" in page
    assert "constant offset mean (mm)" in page
    assert f"constant offset {results['full']['offset']['face']['mean']:.2f} mm" in page  # the goals
    assert "follow their skulls far more closely" not in page
    # the disclosure of the earlier choice on test data stays while the 99.9 % setting is in use
    assert "a choice made on test data" in page
    assert "a choice made on test data" not in V.markdown(_results(), META | {"variance_target": 0.99})


def test_page_of_a_model_with_covariate_dimensions_says_so():
    meta = {k: v for k, v in META.items() if k not in ("covariate_effect", "tissue_prior")}
    page = V.markdown(_results(), meta)
    assert "extra observed dimensions" in page and "explicit covariate effect" not in page


# ----------------------------------------------------------- the evaluation behind the page
@pytest.fixture(scope="module")
def evaluation(small_model):
    from medface_forensic.evaluate import evaluate
    from medface_forensic.shape_model import load_model

    return evaluate(load_model(small_model), n_test=2, seed=1000, distractors=[])


def test_evaluation_measures_the_constant_offset_like_the_tissue_depth_baseline(evaluation):
    from medface_forensic.baseline import typical_face_depth

    for method in ("model", "baseline", "offset"):
        res = evaluation[method]
        assert set(res["regions"]) == set(M.REGIONS) and res["face"]["mean"] > 0
        assert res["identification"]["pool_size"] == 2 and len(res["per_subject_mean"]) == 2
    assert evaluation["offset"]["depth_mm"] == pytest.approx(typical_face_depth())
    # a skull pushed out by one depth is a much worse face than the model's
    assert evaluation["model"]["face"]["mean"] < evaluation["offset"]["face"]["mean"]
    assert set(evaluation["mean_abs_error_map"]) == {"model", "baseline", "offset"}


def test_evaluation_reports_the_sd_error_rank_correlation(evaluation):
    m = evaluation["model"]
    assert -1.0 <= m["sd_error_rank_corr"] <= 1.0 and set(m["sd_error_rank_corr_regions"]) == set(M.REGIONS)
    # a Gaussian error with exactly the reported SD: the ceiling, clearly positive
    assert 0.0 < m["sd_error_rank_corr_ideal"]["face"] < 1.0
    assert m["sd_median_mm"]["face"] > 0
