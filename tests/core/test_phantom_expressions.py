"""Phantom expressions and facial palsy: the movements, the palsy's scaling, the files, detection."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medface.errors import ParameterError
from medface.phantom import expressions as X


@pytest.fixture(scope="module")
def head():
    return X.default_head()


@pytest.fixture(scope="module")
def caps(head):
    return X.eye_caps(head)


def _moved(head, caps, expression, palsy, key):
    rest = X.pose(head, "rest", palsy, caps=caps).head.landmarks[key]
    return np.asarray(X.pose(head, expression, palsy, caps=caps).head.landmarks[key]) - rest


def test_smile_moves_commissures_the_documented_amount_scaled_by_the_palsy(head, caps):
    m = X.MAGNITUDES
    full = np.hypot(m["smile_lateral_mm"], m["smile_up_mm"])  # in the frontal plane
    palsy = X.Palsy("right", {"smile": 0.6})
    right = _moved(head, caps, "smile", palsy, "ch_r")
    left = _moved(head, caps, "smile", palsy, "ch_l")
    assert 10.0 <= np.hypot(left[0], left[2]) <= 15.0
    assert np.hypot(left[0], left[2]) == pytest.approx(full, rel=0.05)
    assert np.hypot(right[0], right[2]) == pytest.approx(0.4 * full, rel=0.05)
    assert left[0] > 0 and right[0] < 0 and left[2] > 0  # out (patient left is +x) and up


def test_brow_raise_lower_lip_and_pucker_move_by_their_magnitudes(head, caps):
    m = X.MAGNITUDES
    palsy = X.Palsy("left", {"brow": 1.0, "lower_lip": 0.5})
    fis = {s: X.E.Fissure.of(head, s) for s in X.SIDES}
    v = np.asarray(head.meshes["skin"][0])
    brow = {}
    for side, f in fis.items():  # the skin at mid-brow, 15 mm above the canthal line
        px, _ = f.pupil_xz
        near = (np.abs(v[:, 0] - px) < 2) & (np.abs(v[:, 2] - f.canthal(0.5) - 15) < 2) & (v[:, 1] < -60)
        d = X.pose(head, "brow_raise", palsy, caps=caps).head.meshes["skin"][0][near] - \
            X.pose(head, "rest", palsy, caps=caps).head.meshes["skin"][0][near]
        brow[side] = d[:, 2].mean()
    assert brow["right"] == pytest.approx(m["brow_raise_mm"], abs=1.5) and abs(brow["left"]) < 0.5
    rest_left = X.pose(head, "rest", palsy, caps=caps).head.meshes["skin"][0][near]
    assert (rest_left[:, 2] - v[near][:, 2]).mean() == pytest.approx(-m["rest_brow_ptosis_mm"], abs=0.5)
    pucker = _moved(head, caps, "pucker", None, "ch_l")
    assert pucker[0] == pytest.approx(-m["pucker_medial_mm"], rel=0.05)
    act = X.activation("lower_lip_depression", palsy)
    assert act["left"]["lower_lip"] == 0.5 and act["right"]["lower_lip"] == 1.0


def test_rest_without_palsy_is_left_right_symmetric(head, caps):
    lm = X.pose(head, "rest", None, caps=caps).head.landmarks
    for key in ("ch", "en", "ex", "ps", "al"):
        left, right = np.asarray(lm[f"{key}_l"]), np.asarray(lm[f"{key}_r"])
        assert np.allclose(left * [-1, 1, 1], right, atol=0.1), key
    push = {s: X.E.open_eye_push(np.asarray(head.meshes["skin"][0]), caps[s], 0.0) for s in X.SIDES}
    assert push["left"].sum() == pytest.approx(push["right"].sum(), rel=0.02) and push["left"].max() > 1.0


def test_eye_closure_and_synkinesis_close_the_fissure(caps):
    fis = caps["left"].fissure
    upper, lower = fis.margins(0.5, 0.0)
    assert upper - lower == pytest.approx(9.5)
    gentle = np.subtract(*fis.margins(0.5, X.MAGNITUDES["gentle_closure"]))
    assert gentle == pytest.approx(0.25 * 9.5) and np.subtract(*fis.margins(0.5, 1.0)) == pytest.approx(0)
    palsy = X.Palsy("right", {"eye": 0.8}, synkinesis=0.6)
    assert X.activation("eye_closure_full", palsy)["right"]["eye"] == pytest.approx(0.2)
    smile = X.activation("smile", palsy)
    assert smile["right"]["eye"] == pytest.approx(0.6 * X.MAGNITUDES["synkinesis_closure"]) and smile["left"]["eye"] == 0


@pytest.mark.parametrize("bad", [dict(side="middle"), dict(side="right", severity={"nose": 0.5}),
                                 dict(side="left", severity={"eye": 1.5}), dict(side="left", severity={"eye": float("nan")}),
                                 dict(side="left", synkinesis=-0.1), dict(side="left", severity=[0.5])])
def test_palsy_refuses_bad_input(bad):
    with pytest.raises(ParameterError):
        X.Palsy(**bad)


def test_palsy_round_trips_and_fills_missing_regions():
    p = X.Palsy("left", {"smile": 0.7}, synkinesis=0.2)
    assert p.severity == {"brow": 0.0, "eye": 0.0, "smile": 0.7, "lower_lip": 0.0}
    assert X.Palsy.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    with pytest.raises(ParameterError):
        X.Palsy.from_dict({"side": "left", "grade": 3})


@pytest.fixture(scope="module")
def rendered(head):
    palsy = X.Palsy("right", {"brow": 0.8, "eye": 0.8, "smile": 0.8, "lower_lip": 0.8})
    return palsy, X.render_expression_set(palsy=palsy, seed=2, size=(384, 384), head=head)


def test_write_expression_set_writes_photos_and_truth(rendered, tmp_path):
    palsy, images = rendered
    folder = X.write_expression_set(tmp_path / "session", images, palsy)
    assert sorted(p.name for p in folder.glob("*.png")) == sorted(f"{e}.png" for e in X.EXPRESSIONS)
    truth = json.loads((folder / "truth.json").read_text())
    assert truth["palsy"] == palsy.to_dict() and truth["expressions"] == list(X.EXPRESSIONS)
    assert truth["activation"]["smile"]["right"]["smile"] == pytest.approx(0.2)
    assert images["rest"].metadata["synthetic"] is True and images["smile"].metadata["expression"] == "smile"


def test_mediapipe_finds_a_face_with_iris_in_every_expression(rendered):
    from medface.face import get_detector

    _, images = rendered
    detector = get_detector()
    for name, image in images.items():
        faces = detector.detect(image.pixels)
        assert len(faces) == 1, name
        assert faces[0].landmarks.shape[0] >= 478, name


def test_renders_without_the_expression_module_are_unchanged(head):
    """The open eyes live in the expression renders only: a plain render_photo on the same
    thread's renderer, before and after an expression render, is the same closed-lid photo."""
    from medface.phantom import render_photo

    before = render_photo(head, seed=2, size=(128, 128))
    X.render_expression_set(seed=2, size=(128, 128), head=head, expressions=("smile",))
    after = render_photo(head, seed=2, size=(128, 128))
    assert np.array_equal(before.pixels, after.pixels)
    assert before.metadata["generator"] == "medface.phantom.photo" and "expression" not in after.metadata
