"""Photographs: upright, 8-bit RGB, and clear errors for broken files."""

from __future__ import annotations


import numpy as np
import pytest
from PIL import Image

from medface.data import FaceImage
from medface.errors import InputError, OutputError
from medface.io import read_image, write_image, write_landmarks


@pytest.fixture
def photo() -> FaceImage:
    pixels = np.random.default_rng(5).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    return FaceImage(pixels)


def test_png_round_trip_is_exact(tmp_path, photo):
    back = read_image(write_image(photo, tmp_path / "out" / "face.png"))
    np.testing.assert_array_equal(back.pixels, photo.pixels)
    assert back.exif_orientation == 1 and back.metadata["format"] == "PNG"


def test_jpeg_round_trip_is_close(tmp_path):
    smooth = np.zeros((48, 64, 3), np.uint8)
    smooth[..., 0] = np.linspace(0, 255, 64, dtype=np.uint8)
    smooth[..., 2] = 128
    back = read_image(write_image(FaceImage(smooth), tmp_path / "face.jpg"))
    assert back.pixels.shape == smooth.shape
    assert np.abs(back.pixels.astype(int) - smooth).mean() < 3


def test_exif_orientation_is_applied(tmp_path):
    # Stored landscape, 40 wide and 20 high, red block in the stored top-left corner. EXIF
    # orientation 6 says "rotate 90 degrees clockwise to display", so the upright image is 20
    # wide and 40 high and the red block lands in its top-right corner.
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:8, :8] = (255, 0, 0)
    image = Image.fromarray(stored)
    exif = Image.Exif()
    exif[274] = 6
    path = tmp_path / "portrait.jpg"
    image.save(path, format="JPEG", exif=exif.tobytes(), quality=95)

    upright = read_image(path)
    assert upright.exif_orientation == 6
    assert (upright.height, upright.width) == (40, 20)
    red = upright.pixels[..., 0].astype(int) - upright.pixels[..., 1]
    assert red[:6, -6:].min() > 150  # top-right corner is red
    assert red[:6, :6].max() < 60 and red[-6:, -6:].max() < 60


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "I;16", "CMYK"])
def test_any_mode_becomes_rgb(tmp_path, mode):
    grey = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (8, 1))  # 8 x 64
    if mode == "I;16":
        image = Image.fromarray((grey.astype(np.uint16) * 257))
        assert image.mode.startswith("I;16")
    elif mode == "RGBA":
        rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
        rgba[:, :4, 3] = 0  # transparent columns come out white
        image = Image.fromarray(rgba)
    else:
        image = Image.fromarray(grey).convert(mode)
    suffix = ".jpg" if mode == "CMYK" else ".png"
    image.save(tmp_path / f"face{suffix}")
    result = read_image(tmp_path / f"face{suffix}")
    assert result.pixels.shape == (8, 64, 3) and result.pixels.dtype == np.uint8
    expected = np.repeat(grey[:, :, None], 3, axis=2).astype(int)
    if mode == "RGBA":
        expected[:, :4] = 255
    tolerance = 6 if mode == "CMYK" else 0
    assert np.abs(result.pixels.astype(int) - expected).max() <= tolerance


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_images_are_refused(tmp_path, photo, suffix):
    data = write_image(photo, tmp_path / f"face{suffix}").read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated") as info:
        read_image(cut)
    assert str(cut) in str(info.value)


def test_landmark_file_is_not_an_image(tmp_path):
    from medface.data import Landmarks

    path = write_landmarks(Landmarks(["n"], [[0, 0, 0]]), tmp_path / "face.csv")
    with pytest.raises(InputError, match="is a landmark CSV file, not an image"):
        read_image(path)


def test_write_image_refuses_unknown_extensions(tmp_path, photo):
    with pytest.raises(OutputError, match=r"\.png, \.jpg"):
        write_image(photo, tmp_path / "face.gif")


def test_real_portraits(shared_data):
    faces = shared_data / "faces"
    astronaut = read_image(faces / "astronaut.png")
    assert (astronaut.width, astronaut.height) == (512, 512)
    hopper = read_image(faces / "grace_hopper.jpg")
    assert (hopper.width, hopper.height) == (512, 600)
