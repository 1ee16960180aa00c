"""Synthetic face photos: orientation of the views, exact 2D landmarks, z-buffer visibility,
determinism and parameters."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("pyvista")

from medface.data import FaceImage  # noqa: E402
from medface.errors import ParameterError  # noqa: E402
from medface.phantom import make_head, mean_subject, sample_subject  # noqa: E402
from medface.phantom import photo as P  # noqa: E402

W = H = 384  # small renders keep the default suite fast


@pytest.fixture(scope="module")
def head():
    return make_head(mean_subject("F"))


@pytest.fixture(scope="module")
def frontal(head):
    return P.render_photo(head, view="frontal", size=(W, H), seed=0)


def pinhole(point, camera, size):
    """The pixel (x right, y down, corner origin) of a world point, from the recorded camera."""
    width, height = size
    pos = np.asarray(camera["position"], float)
    forward = np.asarray(camera["focal_point"], float) - pos
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, camera["view_up"])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    q = np.asarray(point, float) - pos
    f = (height / 2) / np.tan(np.radians(camera["view_angle_deg"]) / 2)
    return np.array([width / 2 + f * (q @ right) / (q @ forward), height / 2 - f * (q @ up) / (q @ forward)])


def is_background(image: FaceImage, x, y, tol=12):
    """Whether the pixel looks like the backdrop (its colour at the same image row on the border)."""
    row = int(y)
    border = image.pixels[row, 0].astype(int)
    return bool(np.abs(image.pixels[row, int(x)].astype(int) - border).max() <= tol)


def test_frontal_view_is_a_photo_of_the_face(frontal):
    L = frontal.landmarks_2d
    assert isinstance(frontal, FaceImage) and frontal.pixels.shape == (H, W, 3)
    assert abs(L["prn"][0] - W / 2) < 0.05 * W
    for key in ("en_l", "ex_l"):  # the patient's left is on the image's right
        assert L[key][0] > W / 2, key
    for key in ("en_r", "ex_r"):
        assert L[key][0] < W / 2, key
    assert L["ch_l"][0] > L["ch_r"][0] and L["ex_l"][0] > L["en_l"][0] and L["ex_r"][0] < L["en_r"][0]
    assert L["n_s"][1] < L["prn"][1] < L["sto"][1] < L["me_s"][1]  # y grows downward
    for key in ("g_s", "or_s_l", "or_s_r", "pog_s"):  # forehead, cheeks, chin: skin, not backdrop
        x, y = L[key]
        px = frontal.pixels[int(y), int(x)].astype(int)
        assert not is_background(frontal, x, y), key
        assert px[0] > px[2], f"{key}: {px} is not skin-coloured"
    md = frontal.metadata
    assert md["synthetic"] is True and md["view"] == "frontal" and md["seed"] == 0
    assert {"camera", "skin_tone", "lighting", "background", "hidden_landmarks"} <= set(md)
    assert json.loads(json.dumps(md)) == md  # plain JSON, for provenance
    assert not set(frontal.landmarks_2d) & set(md["hidden_landmarks"])


def test_face_fills_about_two_thirds_of_the_height(frontal):
    top = frontal.landmarks_2d["g_s"][1] - (frontal.landmarks_2d["me_s"][1] - frontal.landmarks_2d["g_s"][1]) * 0.4
    span = (frontal.landmarks_2d["me_s"][1] - top) / H
    assert 0.45 < span < 0.85


@pytest.mark.parametrize("view, faces", [("left", "left"), ("right", "right")])
def test_lateral_views_look_sideways_and_hide_the_far_side(head, view, faces):
    image = P.render_photo(head, view=view, size=(W, H), seed=1)
    L = image.landmarks_2d
    far = "r" if view == "left" else "l"
    near = "l" if view == "left" else "r"
    # the nose points toward the side the face looks: prn is the extreme of the face's
    # landmarks (the lips and chin are left out: a sampled profile may be convex there)
    facial = [k for k in L if k not in ("op_s", "v_s", "ls", "sto", "li", "sl", "pog_s", "me_s")
              and not k.startswith(("ch_", "go_s", "zy_s"))]
    xs = {k: L[k][0] for k in facial}
    pick = min if faces == "left" else max
    assert pick(xs, key=xs.get) == "prn"
    assert all((L["prn"][0] < L[k][0]) == (faces == "left") for k in ("n_s", "g_s", "sn", f"t_{near}", f"ex_{near}"))
    for key in (f"ex_{far}", f"en_{far}", f"ch_{far}", f"t_{far}"):
        assert key not in L and key in image.metadata["hidden_landmarks"], key
    for key in (f"ex_{near}", f"t_{near}", "prn"):
        assert key in L, key
    assert L[f"t_{near}"][0] - L["prn"][0] == pytest.approx((1 if faces == "left" else -1) * abs(
        L[f"t_{near}"][0] - L["prn"][0]))


def test_three_quarter_view_turns_the_face(head):
    image = P.render_photo(head, view="three_quarter_left", size=(W, H), seed=2)
    L = image.landmarks_2d
    assert L["prn"][0] < L["ex_l"][0] < L["t_l"][0]  # face toward the image's left, left ear seen
    assert "t_r" not in L


def test_same_seed_same_image_and_different_seeds_differ(head):
    a = P.render_photo(head, size=(W, H), seed=5)
    b = P.render_photo(head, size=(W, H), seed=5)
    np.testing.assert_array_equal(a.pixels, b.pixels)
    assert a.landmarks_2d == b.landmarks_2d and a.metadata == b.metadata
    with P.PhotoRenderer(size=(W, H)) as fresh:  # another plotter, same result
        c = fresh.render(head, size=(W, H), seed=5)
    np.testing.assert_array_equal(a.pixels, c.pixels)
    d = P.render_photo(head, size=(W, H), seed=6)
    assert np.abs(a.pixels.astype(int) - d.pixels.astype(int)).mean() > 2.0
    assert (a.metadata["skin_tone"], a.metadata["lighting"]) != (d.metadata["skin_tone"], d.metadata["lighting"])


def test_vtk_projection_agrees_with_a_pinhole_camera(head, frontal):
    cam = frontal.metadata["camera"]
    for key in ("prn", "en_l", "ch_r", "me_s"):
        from_pinhole = pinhole(head.landmarks[key], cam, (W, H))
        assert np.abs(from_pinhole - np.array(frontal.landmarks_2d[key])).max() < 1.0, key


def test_the_photo_camera_is_the_viz_camera_and_lands_on_the_same_pixels(head):
    """The phantom's photo camera is a perspective :class:`medface.viz.Camera`: projecting a
    known 3-D point with it (``Camera.project``, pure numpy) gives the pixel where the photo put
    the landmark (VTK's own projection), in the one pixel convention (corner origin), and the
    pixel holding it shows the skin."""
    from medface.viz import Camera

    params = {"yaw": 3.0, "pitch": -2.0, "roll": 1.5, "distance": 950.0, "fill": 0.62, "shift_x": 0.01,
              "shift_y": -0.01}
    image = P.render_photo(head, view="three_quarter_left", size=(W, H), seed=2, camera=params)
    cam = P.camera_setup(head, "three_quarter_left", params, (W, H))
    assert isinstance(cam, Camera) and not cam.parallel and cam.view == "three_quarter_left"
    assert image.metadata["camera"]["position"] == list(cam.position)
    assert image.metadata["camera"]["view_angle_deg"] == cam.view_angle
    (cx, cy), = cam.project(cam.focal_point, (W, H))
    assert (cx, cy) == pytest.approx((W / 2, H / 2), abs=1e-9)  # the centre is a pixel corner
    for key, xy in image.landmarks_2d.items():
        assert np.abs(cam.project(head.landmarks[key], (W, H))[0] - xy).max() < 1e-6, key
    x, y = cam.project(head.landmarks["prn"], (W, H))[0]
    assert not is_background(image, x, y)
    assert image.metadata["camera"]["base_yaw"] == 45.0


def test_projected_landmarks_sit_on_the_rendered_surface(head):
    """The depth VTK rendered at a landmark's pixel is the landmark's own depth: the 2D
    positions and the picture agree (not just two copies of the same formula)."""
    renderer = P.default_renderer()
    image = renderer.render(head, view="frontal", size=(W, H), seed=3, camera={})
    cam = image.metadata["camera"]
    forward = np.subtract(cam["focal_point"], cam["position"])
    forward /= np.linalg.norm(forward)
    errors = []
    for key in ("prn", "n_s", "g_s", "pog_s", "or_s_l", "or_s_r"):
        x, y = image.landmarks_2d[key]
        depth = (head.landmarks[key] - np.asarray(cam["position"])) @ forward
        errors.append(abs(renderer.last_depth[int(y), int(x)] - depth))
    assert max(errors) < 1.5, errors


@pytest.mark.parametrize("view", ["left", "frontal"])
def test_outline_agrees_with_the_projection(head, view):
    """The skin's vertices, projected like the landmarks, span exactly the rendered head: the
    extreme projections fall on the first and last foreground columns and the top row."""
    image = P.render_photo(head, view=view, size=(W, H), seed=4, background=(20, 200, 40))
    cam = image.metadata["camera"]
    xy = pinhole(np.asarray(head.meshes["skin"][0]), cam, (W, H))  # (2, N)
    mask = np.abs(image.pixels.astype(int) - image.pixels[H // 2, -1].astype(int)).max(axis=2) > 40
    cols, rows = np.nonzero(mask.any(axis=0))[0], np.nonzero(mask.any(axis=1))[0]
    assert abs(cols.min() - xy[0].min()) < 1.0 and abs(cols.max() + 1 - xy[0].max()) < 1.0
    assert abs(rows.min() - xy[1].min()) < 1.0


def test_render_views_matches_single_renders(head):
    views = P.render_views(head, views=("frontal", "right", "three_quarter_right"), size=(W, H), seed=8)
    assert list(views) == ["frontal", "right", "three_quarter_right"]
    single = P.render_photo(head, view="right", size=(W, H), seed=8)
    np.testing.assert_array_equal(views["right"].pixels, single.pixels)
    assert views["right"].landmarks_2d == single.landmarks_2d
    tones = {v.metadata["skin_tone"]["index"] for v in views.values()}
    assert len(tones) == 1  # one person, one appearance


def test_lips_are_redder_than_the_cheeks(head):
    image = P.render_photo(head, size=(W, H), seed=0, skin_tone=2, lighting="soft", camera={})
    px = image.pixels.astype(float)

    def redness(key, dy=0.0):
        x, y = image.landmarks_2d[key]
        patch = px[int(y + dy) - 1:int(y + dy) + 2, int(x) - 1:int(x) + 2].reshape(-1, 3)
        return (patch[:, 0] / np.maximum(patch[:, 1], 1)).mean()

    lower_lip = (image.landmarks_2d["sto"][1] + image.landmarks_2d["li"][1]) / 2 - image.landmarks_2d["sto"][1]
    assert redness("sto", dy=lower_lip) > redness("or_s_l") + 0.05


def test_parameters(head):
    a = P.render_photo(head, size=(320, 240), seed=0, skin_tone="VI", background=(10, 20, 30), hair=False,
                       lighting={"key_azimuth": -30.0}, camera={"distance": 1500.0, "roll": 3.0})
    assert a.pixels.shape == (240, 320, 3)
    assert a.metadata["skin_tone"]["index"] == 6 and a.metadata["hair"] is None
    assert a.metadata["lighting"]["key_azimuth"] == -30.0 and a.metadata["camera"]["distance"] == 1500.0
    assert np.abs(a.pixels[-1, 0].astype(int) - (10, 20, 30)).max() <= 3  # the backdrop's bottom colour
    assert abs(a.landmarks_2d["prn"][0] - 160) < 0.05 * 320
    assert P.skin_tone(1)[1] == P.skin_tone("I")[1] == P.skin_tone("very_light")[1] == "very_light"
    b = P.render_photo(head, size=(W, H), seed=0, camera={"roll": 10.0})
    assert b.landmarks_2d["en_l"][1] < b.landmarks_2d["en_r"][1]  # positive roll: face turns counter-clockwise


@pytest.mark.parametrize("kwargs, parameter", [
    ({"view": "top"}, "view"), ({"skin_tone": 9}, "skin_tone"), ({"skin_tone": "green"}, "skin_tone"),
    ({"lighting": "disco"}, "lighting"), ({"lighting": {"sun": 1}}, "lighting"), ({"camera": {"zoom": 2}}, "camera"),
    ({"camera": {"distance": 5.0}}, "camera"), ({"size": (4, 4)}, "size"), ({"seed": -1}, "seed"),
    ({"background": "plaid"}, "background"), ({"hair": "purple"}, "hair"),
])
def test_bad_parameters_are_refused_clearly(head, kwargs, parameter):
    with pytest.raises(ParameterError) as err:
        P.render_photo(head, **kwargs)
    assert err.value.parameter == parameter


@pytest.mark.slow
def test_sampled_subjects_in_every_view():
    rng = np.random.default_rng(11)
    for i in range(4):
        h = make_head(sample_subject(rng))
        views = P.render_views(h, views=P.PHOTO_VIEWS, size=(W, H), seed=i)
        F = views["frontal"].landmarks_2d
        assert F["en_l"][0] > F["en_r"][0] and F["n_s"][1] < F["prn"][1] < F["pog_s"][1]
        assert abs(F["prn"][0] - W / 2) < 0.05 * W
        for view, sign in (("left", 1), ("right", -1)):
            L = views[view].landmarks_2d
            assert sign * (L[f"t_{'l' if sign > 0 else 'r'}"][0] - L["prn"][0]) > 0
            assert f"ex_{'r' if sign > 0 else 'l'}" not in L
        for image in views.values():
            cam = image.metadata["camera"]
            for key, xy in image.landmarks_2d.items():
                assert np.abs(pinhole(h.landmarks[key], cam, (W, H)) - xy).max() < 1.0


@pytest.mark.slow
def test_fifty_photos_render_within_a_minute():
    import time

    rng = np.random.default_rng(0)
    heads = [make_head(sample_subject(rng)) for _ in range(50)]
    start = time.perf_counter()
    for i, h in enumerate(heads):
        P.render_photo(h, view=P.PHOTO_VIEWS[i % 5], seed=i)
    assert time.perf_counter() - start < 60.0
