"""3D input: a face surface is found in any orientation, rendered frontally and screened like a
photo; wrong units and surfaces without a face are refused with clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from medface_phenotype import surface as S
from scipy.spatial.transform import Rotation

from medface.data import SurfaceMesh
from medface.errors import InputError
from medface.io import read_mesh

REPO = Path(__file__).resolve().parents[2]
SKIN = REPO / "sample_data" / "skin.ply"  # phantom head, LPS mm: the face looks toward -y
FRONT = np.array([0.0, -1.0, 0.0])


@pytest.fixture(scope="module")
def skin() -> SurfaceMesh:
    return read_mesh(SKIN)


@pytest.fixture(scope="module")
def upright(skin) -> S.FrontalView:
    return S.frontal_view(skin)


def _angle(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


def _rotated(mesh: SurfaceMesh, rotation: np.ndarray) -> SurfaceMesh:
    m = np.eye(4)
    m[:3, :3] = rotation
    return mesh.transformed(m)


def test_turn_undoes_a_known_camera_turn():
    # camera yawed 20 deg toward the image's right, pitched 10 deg up, rolled 15 deg
    d0, u0 = FRONT, np.array([0.0, 0.0, 1.0])
    y, p = np.radians(20.0), np.radians(10.0)
    d = np.array([np.sin(y) * np.cos(p), -np.cos(y) * np.cos(p), np.sin(p)])
    d_back, _ = S.turn(d, u0, {"yaw": 20.0, "pitch": 10.0, "roll": 0.0})
    assert _angle(d_back, d0) < 0.5
    _, u = S.turn(d0, u0, {"yaw": 0.0, "pitch": 0.0, "roll": 15.0})
    assert _angle(u, u0) == pytest.approx(15.0, abs=0.01)
    assert abs(u @ d0) < 1e-9


def _camera(yaw, pitch, roll):
    """Phantom-camera view of the head (direction, up): yawed toward the image's right, pitched up, rolled."""
    y, p, q = np.radians([yaw, pitch, roll])
    d = np.array([np.sin(y) * np.cos(p), -np.cos(y) * np.cos(p), np.sin(p)])
    right = np.cross(-d, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, -d)
    return d, np.cos(q) * up + np.sin(q) * right


def test_measured_pose_signs_and_turning_back_on_renders(skin):
    """The signs turn() assumes, checked on renders of the phantom head: one turn brings an
    oblique view (20 deg yaw, 12 deg pitch, 15 deg roll) close to frontal."""
    r = S.renderer()
    d, u = _camera(20.0, 12.0, 15.0)
    image, depth, _ = r.render(skin, d, u)
    face = S._face_in(image, depth)
    assert face.pose["yaw"] > 10 and face.pose["roll"] < -8, face.pose
    d2, u2 = S.turn(d, u, face.pose)
    assert _angle(d2, FRONT) < 10 < _angle(d, FRONT)
    assert _angle(u2, [0, 0, 1]) < 8
    image, depth, _ = r.render(skin, d2, u2)
    again = S._face_in(image, depth).pose
    for k in ("yaw", "roll"):
        assert abs(again[k]) < abs(face.pose[k]) - 5, (k, face.pose, again)


def test_render_view_is_an_rgb_image_with_the_surface_in_the_middle(skin):
    img = S.render_view(skin, FRONT, [0, 0, 1], size=256)
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    corner, centre = img[:8, :8].reshape(-1, 3).mean(0), img[120:136, 120:136].reshape(-1, 3).mean(0)
    assert np.abs(corner - S.BACKGROUND_RGB).max() < 25  # the backdrop
    assert centre[0] > centre[2] + 20  # skin: redder than blue


def test_frontal_view_of_the_phantom_head(upright):
    assert abs(upright.pose["yaw"]) < 8 and abs(upright.pose["pitch"]) < 8, upright.pose
    assert _angle(upright.direction, FRONT) < 15, upright.direction
    assert _angle(upright.up, [0, 0, 1]) < 15, upright.up
    assert upright.image.shape == (512, 512, 3)
    assert upright.renders >= 24


# a random rotation from a fixed seed, the face looking along +z, and the head upside down
ROTATIONS = {
    "random_seed7": Rotation.random(random_state=7).as_matrix(),
    "face_up_z": np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]),  # -y (the face) -> +z
    "upside_down": np.diag([-1.0, 1.0, -1.0]),  # 180 deg about y
}


@pytest.mark.parametrize("name", sorted(ROTATIONS))
def test_frontal_view_in_any_orientation(skin, upright, name):
    rot = ROTATIONS[name]
    view = S.frontal_view(_rotated(skin, rot))
    assert abs(view.pose["yaw"]) < 8 and abs(view.pose["pitch"]) < 8, view.pose
    back = rot.T @ view.direction  # the chosen direction in the unrotated head's frame
    assert _angle(back, upright.direction) < 15, (back, upright.direction)
    assert _angle(back, FRONT) < 15, back
    assert _angle(rot.T @ view.up, [0, 0, 1]) < 20


def test_metres_are_refused_as_millimetres_and_accepted_as_metres(skin):
    metres = skin.scaled(0.001)
    with pytest.raises(InputError) as err:
        S.to_millimetres(metres, "mm")
    assert "implausible" in str(err.value) and "units='m'" in (err.value.hint or "")
    mm = S.to_millimetres(metres, "m")
    assert np.allclose(mm.vertices, skin.vertices)
    assert S.to_millimetres(skin, "mm") is skin
    with pytest.raises(InputError):
        S.to_millimetres(skin, "m")  # 300 m: not a face
    with pytest.raises(InputError) as err:
        S.to_millimetres(skin.scaled(0.1), "mm")
    assert "units='cm'" in (err.value.hint or "")
    with pytest.raises(InputError, match="empty"):
        S.to_millimetres(SurfaceMesh(np.zeros((0, 3)), np.zeros((0, 3), int)), "mm")


def test_load_face_mesh_in_metres(tmp_path, skin):
    from medface.io import write_mesh

    path = write_mesh(skin.scaled(0.001), tmp_path / "head_m.ply")
    with pytest.raises(InputError, match="implausible"):
        S.load_face_mesh(path)
    view = S.frontal_view(S.load_face_mesh(path, units="m"))
    assert abs(view.pose["yaw"]) < 8 and abs(view.pose["pitch"]) < 8


def test_a_surface_without_a_face_is_refused():
    pv = pytest.importorskip("pyvista")
    sphere = SurfaceMesh.from_pyvista(pv.Sphere(radius=100.0, theta_resolution=48, phi_resolution=48))
    with pytest.raises(InputError, match="no face was found"):
        S.frontal_view(sphere)


def test_the_inside_of_a_face_does_not_count(skin):
    """The front half of the head seen from behind (the hollow-face illusion) is no face."""
    keep = np.all(skin.vertices[skin.faces][:, :, 1] < -20.0, axis=1)  # the face's front, an open mask
    mask = SurfaceMesh(skin.vertices, skin.faces[keep])
    r = S.renderer()
    for up in ([0, 0, 1], [0, 0, -1]):
        image, depth, _ = r.render(mask, -FRONT, up)
        assert S._face_in(image, depth) is None
    image, depth, _ = r.render(mask, FRONT, [0, 0, 1])
    assert S._face_in(image, depth) is not None


def test_real_face_scan_fran(shared_data):
    path = shared_data / "meshes" / "fran_cut.vtk"
    with pytest.raises(InputError, match="implausible"):
        S.load_face_mesh(path)  # saved in metres
    view = S.frontal_view(S.load_face_mesh(path, units="m"))
    assert abs(view.pose["yaw"]) < 8 and abs(view.pose["pitch"]) < 8, view.pose


def test_screen_mesh_with_the_demo_model(tmp_path, skin):
    import medface

    result = medface.run("phenotype.screen-mesh", mesh=skin, out=tmp_path, top=5)
    assert result.summary["screened"], result.summary
    surface = result.metrics["surface"]
    assert _angle(surface["view_direction"], FRONT) < 15 and surface["units"] == "mm"
    assert Path(result.outputs["surface_view"]).is_file()
    assert any("uniform skin colour" in line for line in result.limits)
    assert 1 <= len(result.tables["conditions"]) <= 5
    saved = json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))
    assert saved["metrics"]["surface"]["renders"] >= 24
