"""The `forensic.condition-face` panel (medface_forensic.live.ConditionedFace) on the sample skull
with the small phantom-trained model: a frame is the reconstruction for its covariates, a higher
BMI moves the cheeks outward, the same controls give the same frame, a slider beyond its range
is refused. Speed is measured by benchmarks, not here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medface.data import SurfaceMesh
from medface.data.mesh import vertex_normals
from medface.errors import ParameterError
from medface.io import read_mesh
from medface.plugin.panels import update_panel

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
PANEL = "forensic.condition-face"


@pytest.fixture(scope="module")
def skull():
    """The sample cranium with its mandible, in mm."""
    cranium, mandible = read_mesh(SAMPLE / "skull.ply"), read_mesh(SAMPLE / "mandible.ply")
    return SurfaceMesh(np.vstack([cranium.vertices, mandible.vertices]),
                       np.vstack([cranium.faces, mandible.faces + cranium.n_vertices]))


@pytest.fixture(scope="module")
def panel(skull, small_model):
    from medface_forensic.live import ConditionedFace

    return ConditionedFace(skull, model=small_model)


def _cheeks(panel) -> np.ndarray:
    """Face vertices within 20 mm of the middle of each cheek (between soft-tissue zygion and cheilion)."""
    marks = panel.reconstruction.soft_tissue_landmarks
    face = panel.reconstruction.face.vertices
    centres = [0.5 * (marks[f"zy_s_{side}"] + marks[f"ch_{side}"]) for side in ("l", "r")]
    return np.flatnonzero(np.min([np.linalg.norm(face - c, axis=1) for c in centres], axis=0) < 20.0)


def test_a_frame_is_the_reconstruction_with_those_covariates(panel, skull, small_model):
    from medface_forensic import Reconstruction

    frame = update_panel(panel, PANEL, sex="M", age=62, bmi=33)
    rec = Reconstruction(model=small_model, variants=0).run(skull, sex="M", age=62, bmi=33)
    face = frame.meshes["face"]
    assert np.allclose(face.vertices, rec.face.vertices, atol=1e-6)
    assert np.allclose(face.point_data["sd_mm"], rec.face.point_data["sd_mm"], rtol=1e-4)
    assert np.allclose(frame.meshes["tissue_depth_face"].vertices, rec.baseline.vertices, atol=1e-6)
    assert frame.summary["registration_residual_mm"] == pytest.approx(rec.registration.residual_mm["final_median"],
                                                                      abs=1e-3)
    assert (frame.summary["sex"], frame.summary["age_years"], frame.summary["bmi_kg_m2"]) == ("M", 62.0, 33.0)
    assert any("synthetic" in w for w in frame.warnings)


def test_a_higher_bmi_moves_the_cheeks_outward(panel):
    lean = update_panel(panel, PANEL, sex="F", bmi=18).meshes["face"]
    heavy = update_panel(panel, PANEL, sex="F", bmi=40).meshes["face"]
    cheeks = _cheeks(panel)
    assert len(cheeks) > 100
    outward = vertex_normals(lean.vertices, lean.faces)[cheeks]
    along = np.einsum("ij,ij->i", heavy.vertices[cheeks] - lean.vertices[cheeks], outward)
    assert along.mean() > 1.0  # mm: the tables' BMI slopes over 22 kg/m2
    lean_base = update_panel(panel, PANEL, sex="F", bmi=18).meshes["tissue_depth_face"].vertices
    heavy_base = update_panel(panel, PANEL, sex="F", bmi=40).meshes["tissue_depth_face"].vertices
    assert np.einsum("ij,ij->i", heavy_base[cheeks] - lean_base[cheeks], outward).mean() > 0


def test_the_same_controls_give_the_same_frame(panel):
    first = update_panel(panel, PANEL, sex="unknown", age=30, bmi=22)
    update_panel(panel, PANEL, sex="M", age=80, bmi=44)  # another frame in between leaves nothing behind
    again = update_panel(panel, PANEL, sex="unknown", age=30, bmi=22)
    for name in ("face", "tissue_depth_face"):
        assert np.array_equal(first.meshes[name].vertices, again.meshes[name].vertices)
    assert np.array_equal(first.meshes["face"].point_data["sd_mm"], again.meshes["face"].point_data["sd_mm"])
    assert first.summary == again.summary and first.warnings == again.warnings
    assert first.summary["sex_used"] != "given"  # unknown: the skull's estimate or the cohort's spread


def test_an_age_beyond_the_models_range_is_refused_before_the_panel_runs(panel):
    with pytest.raises(ParameterError, match="parameter 'age': 120 years is above the maximum 90 years"):
        update_panel(panel, PANEL, age=120)
    with pytest.raises(ParameterError, match="'X' is not one of: F, M, unknown"):
        update_panel(panel, PANEL, sex="X")


def test_the_fast_sd_and_tissue_depth_face_equal_the_direct_ones(panel):
    from medface_forensic.baseline import tissue_depth_face

    posterior = panel.posterior.with_covariates(sex="F", age=50, bmi=30)
    fresh = type(posterior)(**{f: getattr(posterior, f) for f in posterior.__dataclass_fields__})  # no caches
    assert np.allclose(posterior.sd(), fresh.sd(), rtol=1e-5)
    reg = panel.reconstruction.registration
    direct = tissue_depth_face(panel.reconstruction.model, reg.cranium, reg.mandible, sex="F", age=50, bmi=30)
    assert np.allclose(panel.baselines.face(sex="F", age=50, bmi=30), direct, atol=1e-6)


def test_conditioning_again_gives_what_the_covariate_shortcut_gives(panel):
    """The path for a model whose covariates are latent dimensions (condition again) and the
    shortcut for one with an explicit covariate effect agree where both apply."""
    import copy
    import dataclasses

    covariates = {"sex": "M", "age": 55.0, "bmi": 31.0}
    again = copy.copy(panel)
    again.posterior = dataclasses.replace(panel.posterior, covariates=None)  # as if the effect were latent
    assert np.allclose(again.conditioned(covariates).mean, panel.conditioned(covariates).mean, atol=1e-6)
