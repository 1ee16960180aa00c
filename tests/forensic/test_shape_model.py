"""The joint skull-face PPCA: conditioning, uncertainty, samples, I/O and input checks.

A small synthetic phantom cohort (30 training subjects, 2 held out) keeps this module quick.
"""

from __future__ import annotations

import numpy as np
import pytest
from medface_forensic.shape_model import load_model, save_model
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
        assert _err(model, post.mean, sk[i]) < 1.0
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
