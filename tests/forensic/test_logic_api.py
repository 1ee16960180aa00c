"""The forensic logic API without the CLI or files: registration in stages, the reconstruction
logic and its typed result, the face model as an estimator, and what the command declares."""

from __future__ import annotations

import numpy as np
import pytest

import medface
from medface.data import SurfaceMesh
from medface.errors import ModelError, ParameterError
from medface.phantom import cohort


@pytest.fixture(scope="module")
def head():
    return next(iter(cohort(1, seed=3))).head


@pytest.fixture(scope="module")
def skull(head) -> SurfaceMesh:
    cr, md = head.cranium, head.mandible
    return SurfaceMesh(np.concatenate([cr.vertices, md.vertices]),
                       np.concatenate([cr.faces, md.faces + cr.n_vertices]), name="phantom skull")


def test_registration_stages_report_residuals_and_chain_like_register_skull(skull):
    from medface_forensic import SkullRegistration, register_skull

    reg = SkullRegistration(skull)
    pose = reg.initial_pose()
    scores = [s.score for s in pose.starts]
    assert len(scores) == 48 and scores == sorted(scores)  # 24 axis starts for each template variant
    sim = reg.similarity(pose)
    assert sim.mandible_present and sim.residual_mm["shape_p75"] < 5.0
    assert sim.transform.scale == pytest.approx(1.0, abs=0.05)
    nonrigid = reg.fit_field(sim)
    assert nonrigid.residual_mm["final_median"] < sim.residual_mm["similarity_median"]  # the field fits closer
    staged = reg.registration(sim, nonrigid)
    whole = register_skull(skull)
    np.testing.assert_array_equal(staged.vertices, whole.vertices)
    assert staged.residual_mm == whole.residual_mm
    err = np.linalg.norm(staged.vertices - skull.vertices, axis=1)  # the phantom shares the template's topology
    assert err.mean() < 1.5


def test_reconstruction_logic_returns_a_typed_result_and_writes_nothing(small_model, skull, head, tmp_path,
                                                                        monkeypatch):
    from medface_forensic import Reconstruction, ReconstructionResult, load_model

    monkeypatch.chdir(tmp_path)
    rec = Reconstruction(load_model(small_model), variants=2, seed=1).run(skull, sex="F", age=40.0)
    assert isinstance(rec, ReconstructionResult) and not any(tmp_path.iterdir())
    n = len(head.skin.vertices)
    assert rec.face.vertices.shape == (n, 3) and rec.variants.shape == (2, n, 3)
    assert set(rec.face.point_data) == {"sd_mm", "tissue_thickness_mm", "model_sd_mm"}
    front = head.skin.vertices[:, 1] < np.percentile(head.skin.vertices[:, 1], 30)
    assert np.linalg.norm(rec.face.vertices - head.skin.vertices, axis=1)[front].mean() < 3.0
    assert len(rec.soft_tissue_landmarks) >= 15 and rec.baseline is not None
    assert rec.synthetic and any("synthetic" in w for w in rec.warnings)
    assert rec.registration.mandible_present


def test_the_command_declares_its_outputs_and_writes_them_only_with_a_folder(small_model, skull, tmp_path):
    result = medface.run("forensic.reconstruct", skull=skull, model=small_model, variants=2)
    declared = [o.filename for o in result.declared]
    # every mesh as PLY and as VTP (point arrays VTK, ParaView and 3D Slicer read), each variant its own file
    assert declared == ["face.ply", "face.vtp", "variant_00.ply", "variant_00.vtp", "variant_01.ply", "variant_01.vtp",
                        "face_landmarks.mrk.json", "reconstruction.png", "variants.png", "tissue_depth_face.ply",
                        "tissue_depth_face.vtp"]
    assert result.outputs == {} and result.figures == {}
    assert result.data["reconstruction"].face is result.data["face"]


def test_face_model_is_an_estimator(head):
    from medface_forensic import FaceModel
    from medface_forensic.train import phantom_training_set

    cr, md, sk, covs, _ = phantom_training_set(12, 21)
    test = phantom_training_set(3, 4321)
    params = {"n_components": 6, "sizes": {"cranium": 600, "mandible": 200, "face": 1200}, "calibration_folds": 0}
    est = FaceModel(**params)
    assert est.get_params()["n_components"] == 6 and est.get_params()["variance"] == 0.999
    with pytest.raises(ModelError, match="not fitted"):
        est.condition(cr[0])
    est.fit(cr, md, sk, covs)
    assert est.model_.n_components == 6
    good = est.score(*test[:4])
    poor = FaceModel(**dict(params, n_components=1)).fit(cr, md, sk, covs).score(*test[:4])
    assert -4.0 < good and poor < good  # mm: more components predict held-out faces better
    assert est.sample(3, test[0][0], test[1][0], sex="F").shape == (3, len(head.skin.vertices), 3)
    assert est.sample(2).shape == (2, len(head.skin.vertices), 3)  # the prior, without a skull
    with pytest.raises(ParameterError, match="no parameter 'n_comp'"):
        est.set_params(n_comp=3)
    assert FaceModel(**est.get_params()).set_params(seed=4).get_params()["seed"] == 4
