"""What screening found, put back on the photo as given (medface_phenotype.photo_frame): the face's
points and the attention map line up with the photo's own pixels, also when the photo had to be
turned upright first, and sit where a viewer shows the photo (medface.data.image.photo_ijk_to_lps)."""

from __future__ import annotations

import numpy as np
import pytest

from medface.data import FaceImage
from medface.data.image import photo_ijk_to_lps, photo_points_to_lps
from medface.io import read_image
from medface_phenotype.photo_frame import attention_on_photo, face_points_on_photo, unturned_points

SAMPLE = "sample_data/photo_frontal.png"


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
def test_a_position_on_the_turned_photo_names_the_same_pixel_of_the_photo(turns):
    height, width = 5, 7
    photo = np.arange(height * width).reshape(height, width)
    turned = np.rot90(photo, turns)
    rows, cols = np.mgrid[0:turned.shape[0], 0:turned.shape[1]]
    centres = np.column_stack([cols.ravel() + 0.5, rows.ravel() + 0.5])  # x right, y down, corner origin
    back = unturned_points(centres, turns, width, height)
    assert np.array_equal(photo[(back[:, 1] - 0.5).astype(int), (back[:, 0] - 0.5).astype(int)], turned.ravel())


def test_a_pixel_lands_on_the_photos_voxel_in_the_scene():
    affine = photo_ijk_to_lps(640, 480)
    centre_of_pixel = photo_points_to_lps([[10.5, 20.5]], 640, 480)[0]
    assert np.allclose(centre_of_pixel, (affine @ [10, 20, 0, 1])[:3])
    assert centre_of_pixel[0] < 0 and centre_of_pixel[2] > 0  # top left of the picture: patient's right, up


@pytest.fixture(scope="module")
def screened():
    from medface_phenotype.screening import Screener

    screener = Screener(None, attention=True)
    photo = read_image(SAMPLE)
    turned = FaceImage(np.ascontiguousarray(np.rot90(photo.pixels, -1)))  # on its side, as saved without EXIF
    return photo, screener.screen_one(photo), turned, screener.screen_one(turned)


def test_the_face_points_and_attention_follow_a_photo_that_was_screened_on_its_side(screened):
    photo, upright, turned, on_side = screened
    assert upright.screened and on_side.screened and on_side.turns == 1
    points = face_points_on_photo(upright, photo.width, photo.height)
    points_turned = face_points_on_photo(on_side, turned.width, turned.height)
    assert points.ids == points_turned.ids and "face_eye_left" in points.ids
    # the photo turned a quarter clockwise: pixel (x, y) of the photo is at (H - y, x) of the turned one
    def pixels_of(lm, w, h):
        ijk = np.linalg.solve(photo_ijk_to_lps(w, h), np.column_stack([lm.points, np.ones(len(lm.points))]).T).T
        return ijk[:, :2] + 0.5
    xy = pixels_of(points, photo.width, photo.height)
    expected = np.column_stack([photo.height - xy[:, 1], xy[:, 0]])
    assert np.abs(pixels_of(points_turned, turned.width, turned.height) - expected).max() < 4.0  # pixels

    attention = attention_on_photo(upright, photo.width, photo.height)
    attention_turned = attention_on_photo(on_side, turned.width, turned.height)
    assert attention.array.shape == (1, photo.height, photo.width)
    assert attention.array.max() > 0.5 and attention.array.min() == 0.0  # outside the crop: no evidence
    moved_back = np.rot90(attention_turned.array[0], 1)
    assert np.abs(moved_back - attention.array[0]).mean() < 0.05
    # the map's mass lies inside the detected face's box
    x0, y0, x1, y1 = (int(round(v)) for v in upright.face.box)
    inside = attention.array[0, max(y0, 0):y1, max(x0, 0):x1].sum()
    assert inside > 0.8 * attention.array.sum()


def test_screen_writes_the_face_points_and_the_attention_over_the_photo(tmp_path):
    import medface
    from medface import io

    result = medface.run("phenotype.screen", image=SAMPLE, out=tmp_path)
    assert {"face_points", "attention_on_photo"} <= set(result.outputs)
    volume = io.read_volume(tmp_path / "attention_on_photo.nrrd")
    photo = read_image(SAMPLE)
    assert volume.array.shape == (1, photo.height, photo.width)
    assert np.allclose(volume.direction, photo_ijk_to_lps(photo.width, photo.height)[:3, :3])
    assert len(io.read_landmarks(tmp_path / "face_points.mrk.json").ids) == 9
