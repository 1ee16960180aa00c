"""expression grade: naming, bad inputs, a one-sided synthetic movement, the outputs, and the scores."""

from __future__ import annotations

import numpy as np
import pytest

import medface
from medface.data import FaceImage
from medface.errors import InputError
from medface_expression import expression_of, grade_photos
from medface_expression.scoring import score


@pytest.mark.parametrize("name, expected", [("rest.png", "rest"), ("Smile.JPG", "smile"), ("smile-full.jpeg", "smile"),
                                            ("eyes closed.png", "eye_closure_full"), ("Neutral.jpg", "rest"),
                                            ("lower_lip_depression.png", "lower_lip_depression"), ("cat.png", None)])
def test_photos_are_named_by_expression(name, expected):
    assert expression_of(name) == expected


def _save(folder, **images):
    folder.mkdir(parents=True, exist_ok=True)
    for name, img in images.items():
        img.to_pil().save(folder / f"{name}.png")
    return folder


def test_a_session_without_rest_is_refused_with_the_reason(tmp_path, rest_photo):
    folder = _save(tmp_path / "s", Smile=rest_photo)
    with pytest.raises(InputError, match="no 'rest' photo among the photos given \\(smile\\)"):
        medface.run("expression.grade", photos=folder)


def test_photos_of_different_sizes_are_refused_unless_allowed(tmp_path, rest_photo):
    small = FaceImage(np.asarray(rest_photo.to_pil().resize((400, 400))))
    with pytest.raises(InputError, match="different sizes .*rest 512x512, smile 400x400"):
        grade_photos({"rest": rest_photo, "smile": small})
    assert grade_photos({"rest": rest_photo, "smile": small}, allow_mixed_sizes=True).measurements


def _refusal(tmp_path, rest: FaceImage) -> str:
    result = medface.run("expression.grade", rest=rest, out=tmp_path / "out", figures=False)
    assert result.refused and result.exit_code == 8 and (tmp_path / "out" / "result.json").exists()
    return result.refusal


def test_no_face_two_faces_and_a_profile_are_refused(tmp_path, rest_photo, repo_root):
    from medface.io import read_image

    assert "no face was found" in _refusal(tmp_path / "a", FaceImage(np.full((256, 256, 3), 128, np.uint8)))
    two = FaceImage(np.concatenate([rest_photo.pixels, rest_photo.pixels], axis=1))
    assert "2 faces of similar size" in _refusal(tmp_path / "b", two)
    profile = _refusal(tmp_path / "c", read_image(repo_root / "sample_data" / "photo_left.png"))
    assert any(w in profile for w in ("turned sideways", "landmarks could not be fitted", "no face")), profile


def test_a_refused_expression_photo_is_left_out_with_a_warning(rest_photo):
    g = grade_photos({"rest": rest_photo, "smile": FaceImage(np.full((512, 512, 3), 128, np.uint8))})
    assert "smile" in g.skipped and "smile" not in g.measurements and "rest" in g.measurements


def test_a_one_sided_smile_makes_the_other_side_the_affected_one(tmp_path, rest_photo, left_smile):
    result = medface.run("expression.grade", rest=rest_photo, smile=left_smile, out=tmp_path / "out")
    assert result.summary["affected_side"] == "right", result.summary
    moved = result.metrics
    assert moved["movement.smile.left"] > moved["movement.smile.right"] + 3.0
    item = next(i for i in result.tables["scores"] if i["item"] == "oral commissure movement with smile")
    assert item["score"] < 60
    for name in ("measurements.csv", "scores.csv", "rest_measured.png", "smile_measured.png", "rest_smile.png",
                 "rest_sides.png", "movement.png", "report.html"):
        assert (tmp_path / "out" / name).exists(), name
    header = (tmp_path / "out" / "measurements.csv").read_text().splitlines()[0]
    assert header.startswith("expression,measure,right,left")


def test_iris_units_are_mm_over_the_iris_diameter(rest_photo):
    mm = grade_photos({"rest": rest_photo})
    iris = grade_photos({"rest": rest_photo}, units="iris")
    a, b = mm.measurements["rest"]["right"], iris.measurements["rest"]["right"]
    assert b["mrd1"] == pytest.approx(a["mrd1"] / 11.7) and b["smile_angle"] == pytest.approx(a["smile_angle"])


def _session(right: dict, left: dict) -> dict:
    base = {"brow_height": 20.0, "mrd1": 4.0, "mrd2": 5.0, "fissure_height": 9.0, "commissure_excursion": 30.0,
            "commissure_height": 65.0, "commissure_width": 25.0, "smile_angle": 15.0, "upper_lip_height": 60.0,
            "lower_lip_height": 75.0, "dental_show": 0.0}
    smile_r, smile_l = {**base, **right}, {**base, **left}
    return {"rest": {"right": dict(base), "left": dict(base)}, "smile": {"right": smile_r, "left": smile_l}}


def test_scores_of_a_symmetric_and_of_a_one_sided_movement():
    sym = score(_session({}, {}), {"smile": {"right": 8.0, "left": 8.0}})
    assert sym.affected_side == "none" and sym.static == 100.0 and sym.dynamic == 100.0
    weak = score(_session({}, {}), {"smile": {"right": 8.0, "left": 2.0}})
    assert weak.affected_side == "left"
    assert next(i for i in weak.items if i["item"].startswith("oral commissure movement"))["score"] == 25.0
    assert {i["item"] for i in weak.items if not i["automated"]} >= {"nasolabial fold depth at rest"}
