"""The joint skull-face PPCA: conditioning, uncertainty, samples, I/O and input checks.

A small synthetic phantom cohort (30 training subjects, 2 held out) keeps this module quick.
"""

from __future__ import annotations

import numpy as np
import pytest
from medface_forensic.shape_model import DEFAULT_COVARIATE_SD, load_model, save_model
from medface_forensic.train import phantom_training_set, train_phantom_model

from medface.errors import InputError, ModelError

N_TRAIN = 30


@pytest.fixture(scope="module")
def model():
    return train_phantom_model(N_TRAIN, seed=7, sizes={"cranium": 1500, "mandible": 400, "face": 3000})


@pytest.fixture(scope="module")
def train_set():
    return phantom_training_set(2, 7)  # the first two training subjects (same cohort seed)


@pytest.fixture(scope="module")
def held_out():
    return phantom_training_set(2, 12345)


def _err(model, face, true):
    return float(np.linalg.norm(face - true, axis=1)[model.face_idx].mean())


def test_own_skull_gives_own_face(model, train_set):
    cr, md, sk, _, subj = train_set
    for i in range(2):
        s = subj[i]
        post = model.condition(cr[i], md[i], sigma=0.5, sex=s["sex"], age=s["age"], bmi=s["bmi"])
        # 1.2 mm: with the explicit covariate effect the covariates no longer enter the PPCA, which
        # then fits a training subject's own face a little less closely (0.91 -> 1.06 mm for the
        # first subject) while held-out faces got closer (1.83 -> 1.79 mm on 4 subjects)
        assert _err(model, post.mean, sk[i]) < 1.2
        assert _err(model, post.mean, sk[i]) < 0.5 * _err(model, model.baseline_face(cr[i]), sk[i])


def test_pose_of_the_skull_is_followed(model, held_out):
    cr, md, *_ = held_out
    ang = np.deg2rad(10.0)
    r = np.array([[1, 0, 0], [0, np.cos(ang), -np.sin(ang)], [0, np.sin(ang), np.cos(ang)]])
    t = np.array([5.0, -3.0, 12.0])
    a = model.condition(cr[0], md[0]).mean
    b = model.condition(cr[0] @ r.T + t, md[0] @ r.T + t).mean
    assert np.abs(a @ r.T + t - b).max() < 1e-3


def test_sd_shrinks_with_observation_and_grows_without_mandible(model, held_out):
    cr, md, *_ = held_out
    lower = model.mean_skin()[:, 2] < -70.0  # chin and lower lip (phantom frame: porion at z = 0)
    face = np.zeros(model.n_skin, bool)
    face[model.face_idx] = True
    # the posterior's own SD (the calibration factors differ with and without the mandible)
    prior = model.prior().sd(calibrated=False)
    no_mand = model.condition(cr[0], None).sd(calibrated=False)
    full = model.condition(cr[0], md[0]).sd(calibrated=False)
    noisy = model.condition(cr[0], md[0], sigma=5.0).sd(calibrated=False)
    assert full[face].mean() < no_mand[face].mean() < prior[face].mean()
    assert full[face].mean() < noisy[face].mean()
    # the missing mandible widens the lower face more than the rest of the face
    ratio = no_mand / full
    assert ratio[face & lower].mean() > ratio[face & ~lower].mean()
    assert ratio[face & lower].mean() > 1.05


def test_samples_match_mean_and_sd(model, held_out):
    from medface.data.mesh import vertex_normals

    cr, md, *_ = held_out
    post = model.condition(cr[1], md[1], sex="F", age=40, bmi=24)
    k = 200
    s = post.sample(k, np.random.default_rng(3))
    assert s.shape == (k, model.n_skin, 3)
    mean = post.mean
    normals = vertex_normals(mean, model.skin_faces)
    sel = model.face_idx
    sd = post.sd(include_residual=False)  # along the normal, calibrated like the samples
    se = np.abs(s.mean(0)[sel] - mean[sel]).max(1)
    assert np.all(se < 4 * np.sqrt(3) * post.sd_per_coordinate(False)[sel].max(1) * post.factor[sel]
                  / np.sqrt(k) + 0.01)

    def normal_spread(samples):
        dev = np.einsum("kij,ij->ki", samples[:, sel].astype(np.float64) - mean[sel], normals[sel])
        return dev.std(0)

    assert abs(np.median(normal_spread(s) / sd[sel]) - 1.0) < 0.1
    sr = post.sample(k, 4, residual=True)
    assert abs(np.median(normal_spread(sr) / post.sd()[sel]) - 1.0) < 0.1
    # the calibration widens or narrows samples and SD alike; uncalibrated samples match the raw SD
    raw = post.sample(k, 5, calibrated=False)
    assert abs(np.median(normal_spread(raw) / post.sd(False, calibrated=False)[sel]) - 1.0) < 0.1
    assert not np.allclose(post.factor, 1.0)
    # deterministic for a seed
    assert np.array_equal(post.sample(3, 9), post.sample(3, 9))


def test_calibrated_sd_covers_held_out_faces(model):
    """On subjects the model never saw, about 68 % of the true surface lies within one
    calibrated SD of the reconstruction (a small model here: 30 training and 10 calibration
    subjects; docs/validation/forensic.md has the full-size figures)."""
    from medface.data.mesh import vertex_normals

    cr, md, sk, cov, _ = phantom_training_set(6, 4242)
    inside = []
    for i in range(len(cr)):
        post = model.condition(cr[i], md[i], sex="M" if cov[i, 0] else "F", age=cov[i, 1], bmi=cov[i, 2])
        err = np.einsum("ij,ij->i", post.mean - sk[i], vertex_normals(sk[i], model.skin_faces))[model.face_idx]
        inside.append(np.abs(err) <= post.sd()[model.face_idx])
    share = 100 * np.mean(inside)
    assert 55 < share < 82, share
    # without the mandible its own calibration applies, wider over the lower face
    no_mand = model.condition(cr[0], None)
    assert not np.array_equal(no_mand.factor, model.condition(cr[0], md[0]).factor)
    assert model.metadata["sd_calibration"]["coverage_on_calibration_data_pct"]["within_1sd"] > 60


def test_save_load_round_trip(model, held_out, tmp_path):
    cr, md, *_ = held_out
    save_model(model, tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").is_file()
    meta = (tmp_path / "m" / "model.json").read_text(encoding="utf-8")
    assert "synthetic: medface phantom" in meta
    back = load_model(tmp_path / "m")
    a, b = model.condition(cr[0], md[0], bmi=30), back.condition(cr[0], md[0], bmi=30)
    assert np.array_equal(a.mean, b.mean)
    assert np.array_equal(a.sd(), b.sd())
    assert back.metadata["n_subjects"] == N_TRAIN


def test_bad_inputs(model, held_out):
    cr, md, *_ = held_out
    with pytest.raises(InputError, match="vertices but the model"):
        model.condition(cr[0][:-5], md[0])
    with pytest.raises(InputError, match="mandible"):
        model.condition(cr[0], md[0][:100])
    bad = cr[0].copy()
    bad[10, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        model.condition(bad, md[0])
    with pytest.raises(InputError, match=r"\(N, 3\)"):
        model.condition(cr[0][:, :2])
    with pytest.raises(InputError, match="sex"):
        model.condition(cr[0], sex="X")
    with pytest.raises(InputError, match="sigma"):
        model.condition(cr[0], sigma=np.ones(7))
    with pytest.raises(ModelError, match="missing"):
        load_model("/nonexistent/model/folder")


# ----------------------------------------------------------------- explicit covariate effect
def _along_normals(model, a, b):
    """The signed move from face ``a`` to face ``b``: its length, with the sign of its
    component along ``a``'s vertex normals (the move is along the normals by construction;
    measuring the length keeps the check exact where normals turn sharply, at the lips)."""
    from medface.data.mesh import vertex_normals

    d = b - a
    return np.linalg.norm(d, axis=1) * np.sign(np.einsum("ij,ij->i", d, vertex_normals(a, model.skin_faces)))


def _agree(got, expected, atol=0.02, share=0.99):
    """Equal magnitudes everywhere, equal signs at ``share`` of the vertices."""
    np.testing.assert_allclose(np.abs(got), np.abs(expected), atol=atol)
    clear = np.abs(expected) > 0.1
    assert np.mean(np.sign(got[clear]) == np.sign(expected[clear])) >= share


def test_sex_and_age_move_the_face_by_the_models_covariate_effect(model, held_out):
    cr, md, *_ = held_out
    assert model.covariate_effect is not None  # the phantom model carries the tissue prior's fields
    f = model.condition(cr[0], md[0], sex="F", age=40, bmi=24)
    m = model.condition(cr[0], md[0], sex="M", age=40, bmi=24)
    old = model.condition(cr[0], md[0], sex="F", age=60, bmi=24)
    face = model.face_idx
    _agree(_along_normals(model, f.mean, m.mean)[face], model.covariate_effect[0][face])
    _agree(_along_normals(model, f.mean, old.mean)[face], 20 * model.covariate_effect[1][face])
    np.testing.assert_array_equal(f.mean_z, m.mean_z)  # the covariates do not enter the latent fit


def test_unknown_or_estimated_sex_gives_the_expected_face_and_a_wider_sd(model, held_out):
    cr, md, *_ = held_out
    f = model.condition(cr[0], md[0], sex="F", age=40, bmi=24)
    m = model.condition(cr[0], md[0], sex="M", age=40, bmi=24)
    likely_m = model.condition(cr[0], md[0], p_male=0.9, age=40, bmi=24)
    unknown = model.condition(cr[0], md[0], age=40, bmi=24)
    effect = model.covariate_effect[0].astype(float)
    big = np.abs(effect) > 0.5
    assert big.sum() > 100
    _agree(_along_normals(model, f.mean, likely_m.mean)[big], 0.9 * effect[big])
    p = model.cov_center[0]  # the cohort's share of men stands in for an unknown sex
    _agree(_along_normals(model, f.mean, unknown.mean)[big], p * effect[big])
    given_sd = DEFAULT_COVARIATE_SD["sex"]
    np.testing.assert_allclose(unknown.covariate_variance() - f.covariate_variance(),
                               (p * (1 - p) - given_sd ** 2) * effect ** 2, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(likely_m.covariate_variance() - f.covariate_variance(),
                               (0.09 - given_sd ** 2) * effect ** 2, rtol=1e-4, atol=1e-6)
    sd_known, sd_likely, sd_unknown = f.sd()[big], likely_m.sd()[big], unknown.sd()[big]
    assert np.median(sd_known) < np.median(sd_likely) < np.median(sd_unknown)
    # the variants spread by the sex uncertainty too
    s = unknown.sample(400, np.random.default_rng(2)) - unknown.mean.astype(np.float32)
    from medface.data.mesh import vertex_normals

    along = np.einsum("kij,ij->ki", s, vertex_normals(unknown.mean, model.skin_faces)).std(0)
    expected = unknown.sd(include_residual=False)
    assert np.median(along[big] / expected[big]) == pytest.approx(1.0, abs=0.1)


def test_p_male_outside_zero_one_is_refused(model, held_out):
    from medface.errors import ParameterError

    cr, md, *_ = held_out
    for p in (-0.1, 1.5, float("nan")):
        with pytest.raises(ParameterError, match="p_male"):
            model.condition(cr[0], md[0], p_male=p)


def test_covariate_effect_survives_save_and_load(model, held_out, tmp_path):
    cr, md, *_ = held_out
    back = load_model(save_model(model, tmp_path / "m"))
    np.testing.assert_array_equal(back.covariate_effect, model.covariate_effect)
    a = model.condition(cr[0], md[0], sex="M", age=30)
    b = back.condition(cr[0], md[0], sex="M", age=30)
    np.testing.assert_allclose(a.mean, b.mean, atol=1e-5)
    np.testing.assert_allclose(a.sd(), b.sd(), atol=1e-5)


def test_a_model_without_covariate_effect_conditions_on_the_probability_of_male(held_out):
    cr, md, *_ = held_out
    plain = train_phantom_model(N_TRAIN, seed=7, sizes={"cranium": 1500, "mandible": 400, "face": 3000},
                                n_calibration=0, covariate_effect=None)
    assert plain.covariate_effect is None
    f, m = plain.condition(cr[0], md[0], sex="F"), plain.condition(cr[0], md[0], sex="M")
    likely_m = plain.condition(cr[0], md[0], p_male=0.95)
    # the PPCA learns the sex effect through its components: a likely man comes out nearer the man
    face = plain.face_idx
    to_m = np.linalg.norm(likely_m.mean - m.mean, axis=1)[face].mean()
    to_f = np.linalg.norm(likely_m.mean - f.mean, axis=1)[face].mean()
    assert to_m < to_f
