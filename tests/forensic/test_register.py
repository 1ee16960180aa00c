"""Skull input checks and template registration (forensic plugin), on phantom skulls in
arbitrary poses; the phantom cohort shares the template's vertex topology, so correspondence
and landmarks can be checked against the truth."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("trimesh")

from medface_forensic.register import register_skull
from medface_forensic.skull_input import load_skull, prepare_skull

from medface.data import SurfaceMesh
from medface.errors import InputError


def _pose(angles_deg, shift) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    m = np.eye(4)
    m[:3, :3] = Rotation.from_euler("xyz", angles_deg, degrees=True).as_matrix()
    m[:3, 3] = shift
    return m


@pytest.fixture(scope="module")
def subject():
    from medface.phantom import cohort

    return next(iter(cohort(1, seed=3))).head


def _skull(head) -> SurfaceMesh:
    cr, md = head.cranium, head.mandible
    return SurfaceMesh(np.concatenate([cr.vertices, md.vertices]),
                       np.concatenate([cr.faces, md.faces + cr.n_vertices]), name="phantom skull")


def _moved(points, m):
    return np.asarray(points) @ m[:3, :3].T + m[:3, 3]


def test_whole_skull_in_any_pose_and_centimetres(subject):
    pose = _pose([40, -70, 130], [30.0, -500.0, 200.0])
    skull = _skull(subject)
    mesh = skull.transformed(pose).scaled(0.1)  # the file is in cm
    reg = register_skull(mesh, scale=10.0)
    assert reg.mandible_present and reg.mandible_component
    truth = _moved(skull.vertices, pose)
    err = np.linalg.norm(reg.vertices - truth, axis=1)
    assert err.mean() < 1.5, err.mean()
    lm_err = [np.linalg.norm(reg.landmarks[k] - _moved(subject.landmarks[k], pose)) for k in reg.landmarks.ids]
    assert np.mean(lm_err) < 2.0, np.mean(lm_err)
    assert all(reg.landmark_source[k] == "transferred" for k in reg.landmarks.ids)
    assert all(np.isfinite(reg.uncertainty_mm[k]) for k in reg.landmarks.ids)
    # the pose in the template's Frankfurt frame undoes the arbitrary rotation (up to shape)
    assert 0.97 < reg.scale < 1.03
    back = reg.to_frankfurt[:3, :3] @ pose[:3, :3]
    angle = np.degrees(np.arccos(np.clip((np.trace(back) - 1) / 2, -1, 1)))
    assert angle < 3.0, angle


def test_cranium_without_mandible(subject):
    pose = _pose([-20, 160, 75], [100.0, 20.0, -300.0])
    reg = register_skull(subject.cranium.transformed(pose))
    assert not reg.mandible_present
    assert any("no mandible" in w for w in reg.warnings)
    err = np.linalg.norm(reg.vertices[:reg.n_cranium] - _moved(subject.cranium.vertices, pose), axis=1)
    assert err.mean() < 1.5, err.mean()
    assert not np.isfinite(reg.uncertainty_mm["gn"]) and reg.landmarks.confidence["gn"] == 0.0
    assert reg.uncertainty_mm["n"] < 5.0


def test_user_landmarks_override_and_start(subject):
    ids = ["n", "po_l", "po_r", "or_l", "ans"]
    given = {k: np.asarray(subject.landmarks[k]) + [0.0, 0.0, 0.5] for k in ids}
    reg = register_skull(_skull(subject), landmarks=given)
    for k in ids:
        assert reg.landmark_source[k] == "user"
        np.testing.assert_allclose(reg.landmarks[k], given[k])
    assert reg.landmark_source["g"] == "transferred"
    rest = [k for k in reg.landmarks.ids if reg.landmark_source[k] == "transferred"]
    err = [np.linalg.norm(reg.landmarks[k] - subject.landmarks[k]) for k in rest]
    assert np.mean(err) < 2.5, np.mean(err)


def test_unknown_landmark_id_is_refused(subject):
    with pytest.raises(InputError, match="nasionn"):
        register_skull(_skull(subject), landmarks={"nasionn": [0.0, 0.0, 0.0]})


def test_sphere_of_skull_size_is_refused():
    import trimesh

    sphere = SurfaceMesh.from_trimesh(trimesh.creation.icosphere(4, radius=95.0))
    with pytest.raises(InputError, match="does not look like a skull.*shape check"):
        register_skull(sphere)


def test_implausible_size_is_refused_with_hint(subject):
    with pytest.raises(InputError, match=r"--scale 10\b"):
        prepare_skull(_skull(subject).scaled(0.1))
    with pytest.raises(InputError, match="--scale 1000"):
        prepare_skull(_skull(subject).scaled(0.001))


def test_empty_mesh_is_refused(tmp_path):
    path = tmp_path / "empty.ply"
    path.write_text("ply\nformat ascii 1.0\nelement vertex 0\nproperty float x\nproperty float y\n"
                    "property float z\nelement face 0\nproperty list uchar int vertex_indices\nend_header\n",
                    encoding="utf-8")
    with pytest.raises(InputError):
        load_skull(path)


def test_mandible_component_detection(subject):
    skull = prepare_skull(_skull(subject))
    assert skull.components == 2 and skull.mandible_present
    assert not prepare_skull(subject.cranium).mandible_present


def test_public_skull_mesh(shared_data):
    """skull_low_resolution.obj (arbitrary units, y up, face towards +z, mandible fused)."""
    path = shared_data / "meshes" / "skull_low_resolution.obj"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    reg = register_skull(path, scale=16.0)
    assert reg.mandible_present and not reg.mandible_component
    assert reg.residual_mm["shape_p75"] < 10.0
    pose = reg.pose_angles_deg()
    assert 75 < abs(pose["pitch"]) < 105 and abs(pose["roll"]) < 10 and abs(pose["yaw"]) < 10, pose
    # the face points towards +z in the file: nasion lies anterior of opisthocranion
    assert reg.landmarks["n"][2] - reg.landmarks["op"][2] > 100.0
