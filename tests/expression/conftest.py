"""Shared pieces of the expression tests: a phantom rest photo and one-sided synthetic movements."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medface.data import FaceImage
from medface.io import read_image

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def rest_photo() -> FaceImage:
    return read_image(REPO / "sample_data" / "photo_frontal.png")


@pytest.fixture(scope="session")
def rest_mesh(rest_photo):
    from medface.face import get_detector

    return get_detector().detect(rest_photo.pixels)[0].landmarks


def warp(image: FaceImage, centre, shift, sigma: float) -> FaceImage:
    """The image with the region around ``centre`` (px) moved by ``shift`` (px), fading out as a
    Gaussian of ``sigma`` px: a synthetic one-sided movement."""
    from scipy.ndimage import map_coordinates

    h, w = image.height, image.width
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    target = np.asarray(centre, float) + shift
    weight = np.exp(-((x - target[0]) ** 2 + (y - target[1]) ** 2) / (2 * sigma ** 2))
    sx, sy = x - shift[0] * weight, y - shift[1] * weight
    out = np.stack([map_coordinates(image.pixels[..., c].astype(np.float64), [sy, sx], order=1, mode="nearest")
                    for c in range(3)], axis=-1)
    return FaceImage(np.clip(np.round(out), 0, 255).astype(np.uint8))


@pytest.fixture(scope="session")
def left_smile(rest_photo, rest_mesh) -> FaceImage:
    """The rest photo with only the subject's left commissure (index 291) pulled out and up."""
    eye = np.linalg.norm(rest_mesh[263] - rest_mesh[33])
    return warp(rest_photo, rest_mesh[291], np.array([0.12, -0.10]) * eye, 0.12 * eye)
