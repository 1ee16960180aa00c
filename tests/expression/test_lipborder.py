"""The lower lip's border found in the photo: a one-sided lower-lip palsy shows where the mesh's
points do not, and weak or ambiguous contrast falls back to the mesh with a warning."""

from __future__ import annotations

import numpy as np
import pytest

from medface.data import FaceImage
from medface_expression import grade_photos
from medface_expression.grading import consistent_lower_lip
from medface_expression.lipborder import edge_in_profile, lower_lip_border, pseudo_hue
from medface_expression.measure import FaceFrame

from .profiles import banded

SKIN, LIP, MOUTH = (200, 160, 135), (150, 92, 80), (60, 20, 20)


def _profile(bands, step=0.1):
    """A pseudo-hue profile from 0 to 12 mm of ``(start_mm, rgb)`` bands (each until the next)."""
    vs, rgb = banded(bands, step)
    return vs, pseudo_hue(rgb)


def test_the_border_is_the_lowest_fall_from_lip_to_skin():
    vs, signal = _profile([(0.0, LIP), (6.0, SKIN)])
    v, drop = edge_in_profile(vs, signal)
    assert v == pytest.approx(6.0, abs=0.15) and drop > 0.03
    # the open mouth above the lip falls into the lip too, more steeply: the lower fall is the border
    vs, signal = _profile([(0.0, MOUTH), (2.0, LIP), (8.0, SKIN)])
    assert edge_in_profile(vs, signal)[0] == pytest.approx(8.0, abs=0.15)


def test_a_red_shadow_band_below_the_lip_makes_the_edge_ambiguous():
    vs, signal = _profile([(0.0, LIP), (4.0, SKIN), (7.0, (120, 60, 50)), (9.0, SKIN)])
    assert edge_in_profile(vs, signal)[1] == 0.0


def _frame():
    return FaceFrame(np.array([100.0, 20.0]), np.array([1.0, 0.0]), np.array([0.0, 1.0]), 4.0)


def _mouth_landmarks():
    """Face-frame landmarks (mm) with only the lower lip's outer contour and the commissures set:
    the contour at v = 30 mm."""
    f = np.zeros((478, 2))
    for side, sign in (("right", -1.0), ("left", 1.0)):
        from medface_expression import landmarks as L

        for k, i in enumerate(L.OUTER_LOWER_LIP[side]):
            f[i] = (sign * (20.0 - 4.0 * k), 30.0)
    return f


def test_the_border_is_found_in_a_drawn_lip_and_not_in_a_grey_patch():
    frame, f = _frame(), _mouth_landmarks()
    pixels = np.empty((200, 200, 3), np.uint8)
    pixels[:] = SKIN
    pixels[: 20 + round(32.5 * 4)] = LIP  # the lip's lower border 2.5 mm below the mesh's contour
    for side in ("right", "left"):
        b = lower_lip_border(pixels, frame, f, side)
        assert b.refined and b.v == pytest.approx(32.5, abs=0.3) and b.v_mesh == pytest.approx(30.0)
    grey = np.full((200, 200, 3), 128, np.uint8)
    b = lower_lip_border(grey, frame, f, "left")
    assert not b.refined and b.v == b.v_mesh and b.drop == 0.0


def test_a_side_without_a_border_in_the_rest_photo_uses_the_mesh_in_every_photo():
    def side(height, mesh, drop):
        return {"lower_lip_height": height, "lower_lip_height_mesh": mesh, "lower_lip_border_drop": drop}

    measured = {"rest": {"right": side(80.0, 79.0, 0.0), "left": side(81.0, 79.0, 0.04)},
                "lower_lip_depression": {"right": side(81.0, 82.0, 0.05), "left": side(88.0, 83.0, 0.05)}}
    warnings = consistent_lower_lip(measured)
    assert len(warnings) == 1 and "subject's right" in warnings[0] and "rest photo" in warnings[0]
    assert measured["lower_lip_depression"]["right"]["lower_lip_height"] == 82.0
    assert measured["lower_lip_depression"]["left"]["lower_lip_height"] == 88.0


def test_a_grey_photo_region_falls_back_to_the_mesh_in_grading(rest_photo, rest_mesh):
    pixels = rest_photo.pixels.copy()
    lo, hi = rest_mesh[[61, 291, 17]].min(axis=0).astype(int), rest_mesh[[61, 291, 17]].max(axis=0).astype(int)
    pixels[lo[1] - 15:hi[1] + 25, lo[0] - 10:hi[0] + 10] = 150  # the mouth region painted grey
    g = grade_photos({"rest": FaceImage(pixels)})
    m = g.measurements["rest"]
    assert all(m[s]["lower_lip_height"] == m[s]["lower_lip_height_mesh"] for s in m)
    lip = [w for w in g.warnings if "lower lip" in w]
    assert len(lip) == 2 and all("could not be found" in w for w in lip)
    assert not [w for w in grade_photos({"rest": rest_photo}).warnings if "lower lip" in w]


@pytest.fixture(scope="module")
def one_sided_lower_lip():
    """A phantom session whose subject's right lower lip is flaccid (only the left half moves)."""
    from medface.phantom.expressions import Palsy, render_expression_set

    images = render_expression_set(palsy=Palsy("right", {"lower_lip": 1.0}), seed=7, size=(512, 512),
                                   expressions=("rest", "lower_lip_depression"))
    return grade_photos(images)


def test_a_one_sided_lower_lip_palsy_shows_in_the_photo_not_in_the_mesh(one_sided_lower_lip):
    m = one_sided_lower_lip.measurements
    rest, moved = m["rest"], m["lower_lip_depression"]
    image = {s: moved[s]["lower_lip_height"] - rest[s]["lower_lip_height"] for s in ("right", "left")}
    mesh = {s: moved[s]["lower_lip_height_mesh"] - rest[s]["lower_lip_height_mesh"] for s in ("right", "left")}
    assert image["left"] > 5.0 and image["right"] < 0.35 * image["left"], image
    assert mesh["right"] > 0.6 * mesh["left"], mesh  # the mesh's shape prior moves both halves
    item = next(i for i in one_sided_lower_lip.scores.items if i["item"] == "lower lip movement")
    assert item["score"] < 35 and not one_sided_lower_lip.warnings
