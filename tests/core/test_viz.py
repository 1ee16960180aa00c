"""The 3D visualizer: anatomical views (checked on rendered pixels), scenes, PNG / panels / HTML, the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medface.errors import InputError, ParameterError
from medface.viz import VIEWS, camera_for, check_view

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample_data"
SIZE = (300, 300)
BG = np.array([255, 255, 255])

pv = pytest.importorskip("pyvista")


@pytest.fixture(scope="module")
def skin():
    from medface import io

    return io.read(SAMPLE / "skin.ply")


@pytest.fixture(scope="module")
def landmarks():
    from medface import io

    return io.read(SAMPLE / "landmarks.mrk.json")


@pytest.fixture(scope="module")
def skin_scene(skin):
    from medface.viz import Scene

    return Scene().add_mesh(skin)


@pytest.fixture(scope="module")
def renders(skin_scene):
    """Every view of the sample skin, rendered once at 300x300: {view: (image, camera)}."""
    from medface.viz import render_image

    return {v: render_image(skin_scene, v, SIZE) for v in VIEWS}


def _is_fg(img, xy) -> bool:
    """Whether the pixel holding the point ``xy`` (pixel convention: corner origin) is not backdrop."""
    c, r = (int(v) for v in xy)
    return bool(np.abs(img[r, c].astype(int) - BG).sum() > 30)


# views --------------------------------------------------------------------------------------
def test_import_medface_viz_does_not_load_vtk():
    code = "import medface, medface.viz, medface.cli, sys; print('pyvista' in sys.modules or 'vtkmodules' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_views_are_upright_and_orthonormal():
    assert set(VIEWS) == {"frontal", "posterior", "left", "right", "three_quarter_left", "three_quarter_right",
                          "superior", "inferior"}
    for name, (to_cam, up) in VIEWS.items():
        assert abs(np.dot(to_cam, up)) < 1e-12 and np.isclose(np.linalg.norm(to_cam), 1)
        if name not in ("superior", "inferior"):
            assert tuple(up) == (0, 0, 1)  # head upright
        else:
            assert tuple(up) == (0, -1, 0)  # anterior up


def test_camera_conventions():
    b = [[-50, -60, -70], [50, 60, 70]]
    frontal = camera_for("frontal", b)
    assert frontal.position[1] < 0 and np.allclose(frontal.direction, [0, 1, 0])
    assert np.allclose(frontal.right, [1, 0, 0])  # the patient's left (+x) on the image's right
    left = camera_for("left", b)
    assert left.position[0] > 0 and np.allclose(left.right, [0, 1, 0])  # anterior (-y) on the image's left
    assert np.allclose(camera_for("inferior", b).right, [1, 0, 0])
    assert np.allclose(camera_for("superior", b).right, [-1, 0, 0])
    # fits: every corner projects inside the picture
    corners = np.array([[x, y, z] for x in (-50, 50) for y in (-60, 60) for z in (-70, 70)])
    px = frontal.project(corners, (200, 100))
    assert px[:, 0].min() >= 0 and px[:, 0].max() <= 200 and px[:, 1].min() >= 0 and px[:, 1].max() <= 100


def test_unknown_view_lists_views():
    with pytest.raises(ParameterError, match="three_quarter_left") as err:
        check_view("top")
    assert err.value.exit_code == 2
    with pytest.raises(ParameterError):
        camera_for("sideways", [[0, 0, 0], [1, 1, 1]])


def test_pixel_convention_is_the_corner_origin():
    """The focal point lands on the image's centre, the corner between the four middle pixels of
    an even-sized image: x = width / 2, y = height / 2 (not width / 2 - 0.5)."""
    b = [[-50, -60, -70], [50, 60, 70]]
    for parallel in (True, False):
        cam = camera_for("frontal", b, parallel=parallel)
        (x, y), = cam.project(cam.focal_point, (200, 100))
        assert (x, y) == pytest.approx((100.0, 50.0), abs=1e-9)
        # the patient's left (+x) and the top of the head (+z) go to the right and to row 0's side
        (xl, yl), = cam.project(np.add(cam.focal_point, [10.0, 0.0, 10.0]), (200, 100))
        assert xl > 100.0 and yl < 50.0


def test_projection_matches_vtk(skin_scene, landmarks):
    """Our pure-numpy projection agrees with VTK's world-to-display transform for the same camera,
    to the same pixel convention: VTK's display x, and its display y counted from the top."""
    from medface.viz.render import _apply_camera, _draw, _plotter, scene_camera

    cam = scene_camera(skin_scene, "three_quarter_left", SIZE)
    p = _plotter(SIZE)
    try:
        _draw(p, skin_scene)
        _apply_camera(p, cam)
        p.render()
        ren = p.renderer
        for lid in ("prn", "ex_l", "g_s", "go_s_r"):
            x, y, z = landmarks[lid]
            ren.SetWorldPoint(x, y, z, 1.0)
            ren.WorldToDisplay()
            dx, dy, _ = ren.GetDisplayPoint()
            col, row = cam.project(landmarks[lid], SIZE)[0]
            assert abs(col - dx) < 1e-6 and abs(row - (SIZE[1] - dy)) < 1e-6, lid
    finally:
        p.close()


def test_frontal_view(renders, landmarks):
    img, cam = renders["frontal"]
    assert img.shape == (SIZE[1], SIZE[0], 3)
    prn, ex_l, ex_r, g_s = cam.project([landmarks[i] for i in ("prn", "ex_l", "ex_r", "g_s")], SIZE)
    assert abs(prn[0] - SIZE[0] / 2) < 0.05 * SIZE[0]  # nose tip centred
    assert ex_l[0] > SIZE[0] / 2 > ex_r[0]  # patient's left eye on the image's right
    assert _is_fg(img, g_s) and _is_fg(img, prn)  # the projected points land on the face
    # the head is upright: soft-tissue glabella above the nose tip
    assert g_s[1] < prn[1]
    # the silhouette is centred and leaves background in the corners
    assert (np.abs(img[0, 0].astype(int) - BG).sum() < 10) and (np.abs(img[-1, -1].astype(int) - BG).sum() < 10)


def test_lateral_views(renders, landmarks):
    img, cam = renders["left"]
    prn, po = cam.project([landmarks["prn"], landmarks["op_s"] if "op_s" in landmarks else landmarks["v"]], SIZE)
    assert prn[0] < SIZE[0] * 0.3  # face looks to the image's left
    assert _is_fg(img, cam.project(landmarks["g_s"], SIZE)[0])
    fg_cols = np.where((np.abs(img.astype(int) - BG).sum(2) > 30).any(0))[0]
    assert abs(fg_cols.min() - prn[0]) < 6  # the nose tip is the leftmost part of the silhouette
    img_r, cam_r = renders["right"]
    assert cam_r.project(landmarks["prn"], SIZE)[0][0] > SIZE[0] * 0.7
    # mirror images of each other (the phantom is symmetric)
    mask_l = (np.abs(img.astype(int) - BG).sum(2) > 30)
    mask_r = (np.abs(img_r.astype(int) - BG).sum(2) > 30)
    assert (mask_l != mask_r[:, ::-1]).mean() < 0.02


def test_three_quarter_and_posterior(renders, landmarks):
    img, cam = renders["three_quarter_left"]
    ex_l, ex_r, prn = cam.project([landmarks[i] for i in ("ex_l", "ex_r", "prn")], SIZE)
    assert prn[0] < SIZE[0] / 2 and ex_l[0] > ex_r[0]
    img, cam = renders["posterior"]
    ex_l, ex_r = cam.project([landmarks["ex_l"], landmarks["ex_r"]], SIZE)
    assert ex_l[0] < ex_r[0]  # seen from behind the patient's left is on the image's left


def test_superior_inferior(renders, landmarks):
    for view, left_side in (("superior", "right"), ("inferior", "left")):
        img, cam = renders[view]
        prn, ex_l = cam.project([landmarks["prn"], landmarks["ex_l"]], SIZE)
        assert prn[1] < SIZE[1] * 0.2  # anterior at the top
        assert (ex_l[0] > SIZE[0] / 2) == (left_side == "left")
        assert _is_fg(img, cam.project(landmarks["v" if view == "superior" else "me_s"], SIZE)[0])


def test_render_is_repeatable_and_matches_reference(skin_scene, renders, tmp_path):
    from PIL import Image

    from medface.viz import render_png

    ref, _ = renders["frontal"]
    out = render_png(skin_scene, tmp_path / "f.png", view="frontal", size=SIZE)
    again = np.asarray(Image.open(out).convert("RGB"))
    diff = np.abs(again.astype(int) - ref.astype(int))
    assert diff.mean() < 0.5 and (diff.max(2) > 40).mean() < 0.002
    other, _ = renders["left"]
    assert np.abs(other.astype(int) - ref.astype(int)).mean() > 5  # the comparison can tell views apart


# scenes -------------------------------------------------------------------------------------
def test_scene_items_and_scalars(skin, landmarks, tmp_path):
    from medface.viz import Scene, render_image

    d = skin.vertices[:, 1] - skin.vertices[:, 1].mean()
    scene = Scene().add_mesh(skin, scalars=d, diverging=True)
    item = scene.items[0]
    assert item.clim[0] == -item.clim[1] and item.cmap == "RdBu_r"
    scene.add_landmarks(landmarks, ids=["prn", "ex_l"]).add_plane(landmarks["prn"], (0, 0, 1), 120)
    b = scene.bounds()
    assert np.all(b[0] <= skin.bounds()[0] + 1e-6) and np.all(b[1] >= skin.bounds()[1] - 1e-6)
    img, _ = render_image(scene, "frontal", (240, 240))
    red_or_blue = (np.abs(img[..., 0].astype(int) - img[..., 2].astype(int)) > 60).mean()
    assert red_or_blue > 0.05
    with pytest.raises(ParameterError, match="point data"):
        Scene().add_mesh(skin, scalars="distance")
    with pytest.raises(ParameterError, match="one value per vertex"):
        Scene().add_mesh(skin, scalars=np.zeros(3))
    with pytest.raises(ParameterError, match="prn_x"):
        Scene().add_landmarks(landmarks, ids=["prn_x"])
    with pytest.raises(InputError, match="empty"):
        Scene().bounds()


def test_volume_slices_in_physical_place(tmp_path):
    from medface.data.volume import Volume
    from medface.viz import Scene

    a = np.zeros((20, 30, 40), np.int16) - 1000
    a[5:15, 10:20, 10:30] = 1000
    direction = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]], float)  # rotated in-plane axes
    vol = Volume(a, spacing=(1.0, 2.0, 3.0), origin=(10, 20, 30), direction=direction)
    box = vol.bounds()
    scene = Scene().add_volume_slices(vol)
    slices = [i for i in scene.items if i.name.endswith("slice")]
    assert [s.name for s in slices] == ["axial slice", "coronal slice", "sagittal slice"]
    for s in slices:
        sb = s.bounds()
        assert np.all(sb[0] >= box[0] - 1e-6) and np.all(sb[1] <= box[1] + 1e-6)
    axial = slices[0].bounds()
    assert np.isclose(axial[0, 2], axial[1, 2])  # flat in z
    # the voxel at a point keeps its value: sample the axial slice's data at a known voxel
    data = slices[0].data
    ijk = np.array([15, 12, (20 - 1) // 2])
    p = vol.index_to_physical(ijk)
    k = int(np.argmin(np.linalg.norm(np.asarray(data.points) - p, axis=1)))
    assert np.allclose(data.points[k], p) and data.point_data["value"][k] == a[ijk[2], ijk[1], ijk[0]]
    with pytest.raises(ParameterError, match="unknown plane"):
        Scene().add_volume_slices(vol, planes=("oblique",))


def test_ct_slices_with_outlines(tmp_path):
    from medface import io
    from medface.viz import Scene, render_png
    from medface.viz.cli_view import bone_surface

    ct = io.read(SAMPLE / "head_ct.nii.gz")
    bone = bone_surface(ct)
    assert bone is not None and bone.n_faces > 1000
    scene = Scene().add_volume_slices(ct, meshes=[bone])
    assert any(i.kind == "lines" for i in scene.items)
    out = render_png(scene, tmp_path / "ct.png", view="three_quarter_left", size=(240, 240))
    assert out.stat().st_size > 2000


def test_panels(skin_scene, skin, tmp_path):
    from PIL import Image

    from medface.viz import Scene, render_panels

    moved = Scene().add_mesh(skin.scaled(0.8))
    out = render_panels([skin_scene, moved], tmp_path / "p.png", views="frontal", titles=["before", "after"],
                        size=(160, 160))
    img = np.asarray(Image.open(out).convert("RGB"))
    assert img.shape == (160, 320, 3)
    fg = np.abs(img.astype(int) - BG).sum(2) > 30
    # same camera: the smaller head covers fewer pixels than the original
    assert fg[:, 160:].sum() < fg[:, :160].sum()
    with pytest.raises(ParameterError):
        render_panels([skin_scene], tmp_path / "q.png", views=["frontal", "left"])


def test_panels_show_scenes_at_different_depths(tmp_path):
    """Linked cameras share one clipping range: it must hold every panel's scene, so a flat
    object far behind (or in front of) another is drawn in its own panel, not clipped away."""
    import trimesh
    from PIL import Image

    from medface.data import SurfaceMesh
    from medface.viz import Scene, render_panels

    plate = SurfaceMesh.from_trimesh(trimesh.creation.box((100, 2, 100)))
    behind = SurfaceMesh(plate.vertices + np.array([0.0, 300.0, 0.0]), plate.faces)
    out = render_panels([Scene().add_mesh(plate), Scene().add_mesh(behind)], tmp_path / "d.png",
                        views="frontal", size=(120, 120))
    img = np.asarray(Image.open(out).convert("RGB")).astype(int)
    fg = np.abs(img - BG).sum(2) > 30
    assert fg[:, :120].mean() > 0.3 and fg[:, 120:].mean() > 0.3


def test_show_without_display(skin_scene, monkeypatch):
    from medface.viz import NoDisplayError, show

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if not sys.platform.startswith("linux"):
        pytest.skip("display detection only matters on Linux")
    with pytest.raises(NoDisplayError, match="--png"):
        show(skin_scene)


def test_html_is_standalone(skin_scene, landmarks, tmp_path):
    from medface.viz import export_html

    scene = skin_scene
    scene_l = type(scene)()
    scene_l.items = list(scene.items)
    scene_l.add_landmarks(landmarks, ids=["prn", "g_s"])
    out = export_html(scene_l, tmp_path / "s.html")
    text = out.read_text(encoding="utf-8")
    assert "<canvas" in text and "webgl2" in text and '"prn"' in text
    assert not re.search(r"<script[^>]+src=", text)
    assert not re.search(r"https?://", text)
    assert not re.search(r"<link[^>]+href=", text)


# errors and the command line ----------------------------------------------------------------
def test_empty_mesh_is_an_input_error(tmp_path):
    from medface import io

    empty = tmp_path / "empty.ply"
    empty.write_text("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                     "property float z\nelement face 0\nproperty list uchar int vertex_indices\nend_header\n"
                     "0 0 0\n1 0 0\n0 1 0\n")
    with pytest.raises(InputError):
        io.read(empty)


def _cli(*args, cwd):
    from medface.cli import main

    return main([str(a) for a in args])


def test_cli_png_and_html(tmp_path, capsys):
    from PIL import Image

    png, html = tmp_path / "out.png", tmp_path / "out.html"
    rc = _cli("view", SAMPLE / "skin.ply", "--png", png, "--html", html, "--landmarks",
              SAMPLE / "landmarks.mrk.json", "--size", "320x240", "--view", "left", cwd=tmp_path)
    assert rc == 0
    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.shape == (240, 320, 3)
    assert img.std() > 10  # not blank
    text = html.read_text(encoding="utf-8")
    assert '<script src="http' not in text and not re.search(r"<script[^>]+src=", text)


def test_cli_errors(tmp_path, capsys):
    assert _cli("view", tmp_path / "missing.ply", "--png", tmp_path / "x.png", cwd=tmp_path) == 3
    assert "missing.ply" in capsys.readouterr().err
    empty = tmp_path / "empty.stl"
    empty.write_text("solid empty\nendsolid empty\n")
    assert _cli("view", empty, "--png", tmp_path / "x.png", cwd=tmp_path) == 3
    capsys.readouterr()
    assert _cli("view", SAMPLE / "skin.ply", "--view", "top", "--png", tmp_path / "x.png", cwd=tmp_path) == 2
    err = capsys.readouterr().err
    assert "frontal" in err and "inferior" in err
    assert _cli("view", SAMPLE / "skin.ply", "--size", "big", "--png", tmp_path / "x.png", cwd=tmp_path) == 2
    assert _cli("view", SAMPLE / "skin.ply", "--scalars", "distance", "--png", tmp_path / "x.png",
                cwd=tmp_path) == 2
