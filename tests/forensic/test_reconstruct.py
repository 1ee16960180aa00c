"""`forensic reconstruct` end to end: a held-out phantom skull in another pose and in centimetres
gets a face that overlays the true skin in the skull's own frame and units."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

import medface
from medface.data import SurfaceMesh
from medface.errors import InputError
from medface.io import read_mesh, write_mesh
from medface.phantom import cohort
from medface_forensic.reconstruction import synthetic_floor
from medface_forensic.shape_model import load_model


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """A held-out subject's skull (cranium + mandible in one file), turned and in centimetres."""
    head = next(cohort(1, seed=999)).head
    rot = Rotation.from_euler("xyz", [20, -35, 110], degrees=True).as_matrix()
    shift = np.array([40.0, -25.0, 300.0])

    def move(v):
        return (v @ rot.T + shift) / 10.0  # mm -> cm

    v = np.concatenate([head.cranium.vertices, head.mandible.vertices])
    f = np.concatenate([head.cranium.faces, head.mandible.faces + len(head.cranium.vertices)])
    path = tmp_path_factory.mktemp("skull") / "skull_cm.ply"
    write_mesh(SurfaceMesh(move(v), f), path)
    return path, move(head.skin.vertices), head


def test_face_overlays_the_true_skin_in_the_skulls_frame_and_units(small_model, case, tmp_path):
    path, true_skin_cm, head = case
    out = tmp_path / "rec"
    result = medface.run("forensic.reconstruct", skull=path, scale=10.0, model=small_model, variants=3, out=out,
                         figures=False)
    face = read_mesh(out / "face.ply")
    assert face.vertices.shape == true_skin_cm.shape
    # the face lies on the true skin (in cm): front-of-face vertices within a few mm on average
    front = head.skin.vertices[:, 1] < np.percentile(head.skin.vertices[:, 1], 30)
    d_cm = cKDTree(true_skin_cm).query(face.vertices[front])[0]
    assert np.mean(d_cm) < 0.3  # 3 mm
    sd, model_sd = face.point_data["sd_mm"], face.point_data["model_sd_mm"]
    assert np.all(model_sd > 0) and np.median(model_sd) < 3.0
    # a synthetic-trained model adds its assumed floor for real people, in quadrature, unless its
    # faces followed the literature tissue prior (its SD holds that variation already)
    floor = synthetic_floor(load_model(small_model).metadata)
    assert np.allclose(sd, np.sqrt(model_sd.astype(np.float64) ** 2 + floor ** 2), atol=1e-3)
    assert any("synthetic" in w and "model_sd_mm" in w for w in result.warnings)
    assert result.summary["mandible"] == "present" and result.summary["variants"] == 3
    # no sex was given: the skull's own estimate is reported and says where the sex came from
    assert result.summary["sex_used"].startswith(("estimated from the skull", "unknown"))
    assert result.summary["skull_sex_estimate"] and "phantom-trained" in result.metrics["demography"]["basis"]
    variants = [read_mesh(out / f"variant_{i:02d}.ply").vertices for i in range(3)]
    assert all(np.abs(v - face.vertices).max() > 0 for v in variants)  # variants differ from the mean
    marks = json.loads((out / "face_landmarks.mrk.json").read_text(encoding="utf-8"))
    assert len(marks["markups"][0]["controlPoints"]) >= 15
    # the classic tissue-depth face comes along for comparison, in the same frame and units
    base = read_mesh(out / "tissue_depth_face.ply")
    assert base.vertices.shape == face.vertices.shape
    assert np.mean(cKDTree(true_skin_cm).query(base.vertices[front])[0]) < 0.5
    assert result.metrics["tissue_depth_baseline"]["median_distance_to_model_mm"] > 0


def test_user_landmarks_are_in_the_skulls_units(small_model, case):
    """Landmarks given in the file's units (cm here) are scaled once, like the skull."""
    from medface.data import Landmarks

    path, _, head = case
    rot = Rotation.from_euler("xyz", [20, -35, 110], degrees=True).as_matrix()
    ids = ["n", "po_l", "po_r", "or_l", "ans"]
    marks = Landmarks.from_dict({k: (np.asarray(head.landmarks[k]) @ rot.T + [40.0, -25.0, 300.0]) / 10.0 for k in ids})
    result = medface.run("forensic.reconstruct", skull=path, scale=10.0, landmarks=marks, model=small_model,
                         variants=0, figures=False)
    reg = result.data["registration"]  # in mm
    for k in ids:
        assert reg.landmark_source[k] == "user"
        np.testing.assert_allclose(reg.landmarks[k], marks[k] * 10.0)
    assert reg.residual_mm["final_median"] < 2.0


def test_refuses_a_sphere_and_a_skull_in_wrong_units(small_model, case, tmp_path):
    import trimesh

    ball = trimesh.creation.icosphere(subdivisions=4, radius=95.0)
    write_mesh(SurfaceMesh(np.asarray(ball.vertices), np.asarray(ball.faces)), tmp_path / "ball.ply")
    with pytest.raises(InputError):
        medface.run("forensic.reconstruct", skull=tmp_path / "ball.ply", model=small_model)
    with pytest.raises(InputError, match="scale"):
        medface.run("forensic.reconstruct", skull=case[0], model=small_model)  # cm read as mm


def test_evaluate_command_reports_model_and_baseline(small_model, tmp_path):
    result = medface.run("forensic.evaluate", out=tmp_path, model=small_model, n_test=3, variants=False,
                         figures=False)
    doc = json.loads((tmp_path / "forensic_evaluation.json").read_text(encoding="utf-8"))
    full = doc["full"]
    assert full["n_test"] == 3 and set(full["model"]["identification"]) >= {"rank1", "rank5", "rank10", "counts"}
    # identification against a pool of at least 100 faces: the 3 true ones and distractors
    ident = full["model"]["identification"]
    assert ident["pool_size"] == full["identification_pool"]["size"] >= 100 and len(ident["cmc_pct"]) == ident["pool_size"]
    assert ident["counts"]["rank1"] == round(ident["rank1"] * 3 / 100) and ident["cmc_pct"][-1] == 100.0
    assert [r["method"] for r in result.tables["identification"]] == ["model", "baseline", "offset"]
    assert result.summary["model_mean_mm"] < result.summary["baseline_mean_mm"]
    regions = {r["region"] for r in result.tables["face and regions"]}
    assert {"face", "nose", "lips", "chin"} <= regions
    # the validation page carries the same numbers, the goals and what the baseline is
    page = (tmp_path / "forensic.md").read_text(encoding="utf-8")
    assert f"| face | {full['model']['face']['mean']:.2f} |" in page
    assert "1σ coverage 68 ± 10 %" in page and "SYNTHETIC" in page and "tissue-depth" in page
    assert f"pool of {ident['pool_size']} faces" in page and "| rank-10 |" in page
    assert {g["goal"] for g in result.tables["goals"]} >= {"mean error ≤ 2.0 mm", "rank-1 ≥ 50 %"}


def test_default_model_is_keyed_by_template_data_not_by_phantom_code(small_model, tmp_path, monkeypatch):
    """The cached default model depends on the template file's sha256, the training parameters
    and MODEL_VERSION: computing its key runs no phantom code, a cached entry is used as it is,
    and a new MODEL_VERSION is a new entry."""
    import shutil
    import subprocess
    import sys

    from medface_forensic import model_cache

    code = ("import sys; from medface_forensic.model_cache import model_key; model_key(); "
            "assert 'medface.phantom' not in sys.modules, 'the model key ran phantom code'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    monkeypatch.setenv("MEDFACE_CACHE_DIR", str(tmp_path))
    folder = model_cache.default_model_folder()
    assert folder.parent == tmp_path / "forensic" and folder.name.startswith("phantom-n200-s0-")
    shutil.copytree(small_model, folder)  # stands in for the trained default model: no training here
    assert model_cache.default_model().metadata["n_subjects"] == 30
    monkeypatch.setattr(model_cache, "MODEL_VERSION", model_cache.MODEL_VERSION + 1)
    assert model_cache.default_model_folder() != folder


def test_failed_run_leaves_no_empty_output_folder(tmp_path):
    """A command that fails removes the output folders the runner made for it, not others."""
    from medface.errors import ParameterError

    fresh = tmp_path / "new" / "deeper"
    with pytest.raises(ParameterError):
        medface.run("forensic.reconstruct", out=fresh)  # neither skull nor ct
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "kept"
    existing.mkdir()
    with pytest.raises(ParameterError):
        medface.run("forensic.reconstruct", out=existing)
    assert existing.is_dir()
