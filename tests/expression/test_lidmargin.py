"""The palpebral fissure measured in the photo: closer to the phantom's true lid closure than the
face mesh's, both eyes fall back to the mesh together, and the side rule on constructed movements."""

from __future__ import annotations

import numpy as np
import pytest

from medface_expression import grade_photos
from medface_expression.grading import consistent_fissures
from medface_expression.lidmargin import MIN_CONTRAST, EyeReading, saturation_and_value, sclera_band
from medface_expression.scoring import affected_side

from .profiles import banded

SKIN, SCLERA, LASH = (200, 160, 135), (230, 225, 218), (40, 30, 25)


def _profile(bands, step=0.1):
    """Saturation and value along 0-12 mm of ``(start_mm, rgb)`` bands (each until the next)."""
    vs, rgb = banded(bands, step)
    return (vs, *saturation_and_value(rgb))


def test_the_sclera_band_is_found_between_the_lids_and_a_closed_lid_shows_none():
    vs, sat, value = _profile([(0.0, SKIN), (3.5, LASH), (4.0, SCLERA), (8.0, SKIN)])
    up, lo, ratio = sclera_band(vs, sat, value, (4.5, 7.5))
    assert up == pytest.approx(4.0, abs=0.2) and lo == pytest.approx(8.0, abs=0.2) and ratio > 1.0
    # a closed lid: skin with a dark lash line, which is not sclera however unsaturated it is
    vs, sat, value = _profile([(0.0, SKIN), (5.5, (70, 62, 58)), (6.5, SKIN)])
    assert sclera_band(vs, sat, value, (5.0, 7.0), ratio=1.2) is None
    grey = np.full_like(sat, 0.3)
    assert sclera_band(vs, grey, value, (5.0, 7.0)) is None and MIN_CONTRAST > 0


@pytest.fixture(scope="module")
def gentle_closure_session():
    """A phantom session whose subject's right eye is half paralysed: in gentle closure (0.75 of
    the fissure on a healthy eye) the right lid closes 0.375 of it, the left 0.75."""
    from medface.phantom.expressions import Palsy, activation, render_expression_set

    palsy = Palsy("right", {"eye": 0.5})
    images = render_expression_set(palsy=palsy, seed=11, size=(512, 512),
                                   expressions=("rest", "eye_closure_gentle", "eye_closure_full"))
    return grade_photos(images), activation("eye_closure_gentle", palsy)


def test_the_photo_fissure_is_closer_to_the_true_closure_than_the_mesh(gentle_closure_session):
    g, truth = gentle_closure_session
    m = g.measurements
    photo_err, mesh_err = [], []
    for side in ("right", "left"):
        true = truth[side]["eye"]
        photo = 1 - m["eye_closure_gentle"][side]["fissure_height"] / m["rest"][side]["fissure_height"]
        mesh = 1 - m["eye_closure_gentle"][side]["fissure_height_mesh"] / m["rest"][side]["fissure_height_mesh"]
        photo_err.append(abs(photo - true))
        mesh_err.append(abs(mesh - true))
        assert m["rest"][side]["sclera_columns"] >= 2  # measured in the photo (a pale skin: few columns count)
    assert max(photo_err) < 0.2 and sum(photo_err) < 0.5 * sum(mesh_err), (photo_err, mesh_err)
    full = {s: m["eye_closure_full"][s]["fissure_height"] / m["rest"][s]["fissure_height"] for s in m["rest"]}
    assert full["left"] < 0.1 and 0.35 < full["right"] < 0.65, full  # true open fractions 0 and 0.5
    assert not g.warnings


def _side(fissure, mesh, columns=6.0):
    return {"fissure_height": fissure, "fissure_height_mesh": mesh, "mrd1": fissure / 2, "mrd2": fissure / 2,
            "sclera_columns": columns}


def _reading(fissure, found=6, open_fraction=1.0):
    from medface_expression.lidmargin import Column

    cols = [Column(0.0, 0.0, 1.0, *((0.0, 1.0) if k < found else (None, None))) for k in range(6)]
    return EyeReading(cols, fissure / 2, fissure / 2, fissure if found else None, open_fraction)


def test_both_eyes_keep_the_mesh_when_one_eye_shows_no_sclera_at_rest():
    measured = {"rest": {"right": _side(6.0, 6.0), "left": _side(6.0, 6.0)},
                "eye_closure_full": {"right": _side(3.0, 3.0), "left": _side(3.0, 3.0)}}
    readings = {"rest": {"right": _reading(9.0), "left": EyeReading([], None, None, None, None)}}
    warnings = consistent_fissures(measured, readings)
    assert len(warnings) == 1 and "both eyes" in warnings[0] and "left eye" in warnings[0]
    assert all(measured[e][s]["fissure_height"] == measured[e][s]["fissure_height_mesh"]
               for e in measured for s in ("right", "left"))


def test_a_closed_reading_that_the_mesh_sees_open_sends_both_eyes_to_the_mesh():
    measured = {"rest": {"right": _side(6.0, 6.0), "left": _side(6.0, 6.0)},
                "smile": {"right": _side(5.8, 5.8), "left": _side(5.9, 5.9)}}
    readings = {"rest": {"right": _reading(9.0), "left": _reading(9.2)},
                "smile": {"right": _reading(0.0, found=0, open_fraction=0.0), "left": _reading(9.0)}}
    warnings = consistent_fissures(measured, readings)
    assert len(warnings) == 1 and "reads closed in the smile photo" in warnings[0]
    assert measured["smile"]["left"]["fissure_height"] == 5.9
    # and without the conflict both eyes take the photo's values
    readings["smile"]["right"] = _reading(8.0, open_fraction=0.9)
    readings["smile"]["right"].fissure = 8.0
    assert consistent_fissures(measured, readings) == []
    assert measured["smile"]["right"]["fissure_height"] == 8.0 and measured["rest"]["left"]["fissure_height"] == 9.2


def test_the_side_rule_on_constructed_movements():
    rest = {"right": {"brow_height": 20.0, "commissure_height": 50.0},
            "left": {"brow_height": 20.0, "commissure_height": 50.0}}
    weak_right = {"brow_raise": {"right": 5.0, "left": 10.0}, "smile": {"right": 6.0, "left": 10.0},
                  "eye_closure_full": {"right": 0.9, "left": 1.0}}
    assert affected_side({"rest": rest}, weak_right)[0] == "right"
    mirrored = {e: {"right": m["left"], "left": m["right"]} for e, m in weak_right.items()}
    assert affected_side({"rest": rest}, mirrored)[0] == "left"
    symmetric = {e: {"right": m["left"], "left": m["left"] * 0.95} for e, m in weak_right.items()}
    assert affected_side({"rest": rest}, symmetric)[0] == "none"
    # movements below the least that counts are not used: the rest photo decides
    tiny = {"brow_raise": {"right": 0.1, "left": 0.5}}
    assert affected_side({"rest": rest}, tiny) == ("none", 0.0)
