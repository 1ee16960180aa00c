"""The windowed colour sampling gives exactly what sampling the whole photo gives."""

import numpy as np
from scipy.ndimage import map_coordinates

from medface_expression.sampling import sample_rgb


def _whole(pixels, pts):
    return np.stack([map_coordinates(np.asarray(pixels[..., c], np.float64), [pts[:, 1], pts[:, 0]], order=1,
                                     mode="nearest") for c in range(3)], axis=-1)


def test_same_as_the_whole_photo_inside_and_beyond_the_edges():
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (61, 47, 3), dtype=np.uint8)
    columns = [np.stack([np.full(40, x), np.linspace(y0, y1, 40)], axis=-1)
               for x, y0, y1 in [(10.3, 5.2, 30.7), (0.0, -3.0, 12.0), (46.0, 50.5, 64.0), (-2.5, 20.0, 20.4),
                                 (30.999, 0.0, 60.0), (12.5, 60.0, 60.0)]]
    for pts in columns + [rng.uniform(-5, 65, (200, 2))]:
        np.testing.assert_array_equal(sample_rgb(pixels, pts), _whole(pixels, pts))


def test_reads_only_colour_channels():
    pixels = np.zeros((8, 8, 4), np.uint8)
    pixels[..., 3] = 255
    pixels[..., 0] = 100
    np.testing.assert_array_equal(sample_rgb(pixels, np.array([[3.5, 3.5]])), [[100.0, 0.0, 0.0]])
