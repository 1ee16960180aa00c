"""Photos lying on their side or upside down are turned upright before screening (the face mesh
alone would fit an upright mesh onto an inverted face and screen it)."""

from __future__ import annotations

import numpy as np
import pytest

from medface.io import read_image
from medface_phenotype.faces import prepare

SAMPLE = "sample_data/photo_frontal.png"


@pytest.fixture(scope="module")
def upright():
    pixels = read_image(SAMPLE).pixels
    return pixels, prepare(pixels)


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_a_turned_photo_is_screened_upright_with_a_warning(upright, turns):
    pixels, straight = upright
    assert straight.turns == 0 and straight.usable
    turned = np.ascontiguousarray(np.rot90(pixels, -turns))  # the photo as a camera without EXIF saved it
    face = prepare(turned)
    assert face.turns == turns and face.usable
    check = next(c for c in face.quality.checks if c.name == "orientation")
    assert check.status == "warn" and "turned upright" in check.message
    # the aligned crop is the upright one, not an inverted face
    diff = np.abs(face.crop.astype(float) - straight.crop.astype(float)).mean()
    assert diff < 6.0, f"crop differs from the upright crop by {diff:.1f} grey levels"


def test_an_upright_photo_gets_no_orientation_note(upright):
    _, straight = upright
    assert all(c.name != "orientation" for c in straight.quality.checks)
