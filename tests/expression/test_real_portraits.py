"""The real portraits of ../shared/data/faces: the smiling one has the larger commissure excursion."""

from __future__ import annotations

from medface.io import read_image
from medface_expression import grade_photos


def _rest(shared_data, name):
    g = grade_photos({"rest": read_image(shared_data / "faces" / name)}, units="iris")
    assert not g.skipped, g.skipped
    return g.measurements["rest"]


def test_the_smiling_portrait_has_a_larger_commissure_excursion_than_the_neutral_one(shared_data):
    smiling, neutral = _rest(shared_data, "astronaut.png"), _rest(shared_data, "grace_hopper.jpg")
    # in iris diameters, since these are different people; per side and on average
    for side in ("right", "left"):
        assert smiling[side]["commissure_excursion"] > 1.15 * neutral[side]["commissure_excursion"]
        assert smiling[side]["dental_show"] > 10 * max(neutral[side]["dental_show"], 0.01)
    for m in (smiling, neutral):  # adult ranges, in iris diameters (11.7 mm)
        assert 0.2 < m["right"]["mrd1"] < 0.7 and 1.0 < m["left"]["brow_height"] < 3.0
