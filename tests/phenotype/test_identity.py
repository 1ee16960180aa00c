"""dlib's pretrained identity encoder (identity.py): descriptors that stay put when a photo is
slightly rescaled and tell two people apart, a clear error without the optional packages, the
descriptor cache that repeated splits rely on, and the head trained on the descriptors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from medface.errors import InputError, ModelError
from medface.io import read_image
from medface_phenotype.identity import (DESCRIPTOR_DIM, DescriptorCache, DescriptorHead, DlibEncoder,
                                        _checked_descriptors, describe_files)


def _rescaled(pixels: np.ndarray, scale: float = 1.06, dx: float = 7.0, dy: float = -5.0) -> np.ndarray:
    """The photo enlarged by ``scale`` about its centre and shifted by (dx, dy) pixels."""
    import cv2

    h, w = pixels.shape[:2]
    m = np.array([[scale, 0, (1 - scale) * w / 2 + dx], [0, scale, (1 - scale) * h / 2 + dy]])
    return cv2.warpAffine(pixels, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="module")
def phantom_photos(tmp_path_factory):
    """Frontal renders of two different phantom subjects (unaffected), as files."""
    from medface_phenotype.dataset import read_dataset, write_phantom_dataset

    root = write_phantom_dataset(tmp_path_factory.mktemp("identity") / "data", subjects_per_condition={},
                                 controls=2, photos_per_subject=1, seed=11, size=320)
    return [r.path for r in read_dataset(root).records]


def _encoder(alignment: str = "predictor") -> DlibEncoder:
    """dlib's encoder, or a skip when the optional extra `identity` is not installed."""
    pytest.importorskip("dlib")
    try:
        return DlibEncoder(alignment=alignment)
    except ModelError as exc:
        pytest.skip(f"dlib's weights are not installed: {exc}")


@pytest.fixture(scope="module")
def encoder():
    return _encoder()


@pytest.mark.parametrize("alignment", ["predictor", "mesh"])
def test_rescaled_copy_is_nearer_than_another_subject(phantom_photos, alignment):
    enc = _encoder(alignment)
    first, second = (read_image(p).pixels for p in phantom_photos)
    a, a_moved, b = enc.describe_photo(first), enc.describe_photo(_rescaled(first)), enc.describe_photo(second)
    assert a.shape == (DESCRIPTOR_DIM,)
    moved, other = np.linalg.norm(a - a_moved), np.linalg.norm(a - b)
    assert moved < 0.3, moved
    assert moved < other, (moved, other)


@pytest.mark.parametrize("name", ["astronaut.png", "grace_hopper.jpg"])
def test_real_portrait_descriptor_survives_rescaling(shared_data, encoder, name):
    pixels = read_image(shared_data / "faces" / name).pixels
    moved = np.linalg.norm(encoder.describe_photo(pixels) - encoder.describe_photo(_rescaled(pixels)))
    assert moved < 0.3, moved


def test_photo_lying_on_its_side_gives_the_upright_descriptor(phantom_photos, encoder):
    pixels = read_image(phantom_photos[0]).pixels
    upright = encoder.describe_photo(pixels)
    sideways = encoder.describe_photo(np.ascontiguousarray(np.rot90(pixels, 1)))
    assert np.linalg.norm(upright - sideways) < 0.05


def test_without_dlib_the_error_gives_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` fail
    with pytest.raises(ModelError) as err:
        DlibEncoder()
    assert "pip install" in str(err.value) and "dlib-bin==" in str(err.value)


def test_missing_model_files_are_named(tmp_path):
    with pytest.raises(ModelError) as err:
        DlibEncoder(model_dir=tmp_path)
    assert "pip install" in str(err.value)


class _CountingEncoder:
    """Stands in for DlibEncoder: a fixed descriptor per chip call, counting the faces it describes."""

    def __init__(self):
        self.described = 0

    def describe_batch(self, items, batch_size=32):
        self.described += len(items)
        return np.array([[float(p.mean())] * DESCRIPTOR_DIM for p, _ in items])


def test_descriptors_are_cached_per_photo_and_faceless_photos_reported(phantom_photos, tmp_path):
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 200, 3), 127, np.uint8)).save(blank)
    paths = [*phantom_photos, blank]
    fake = _CountingEncoder()
    desc, reasons = describe_files(paths, DescriptorCache(fake, tmp_path / "cache"))
    assert fake.described == 2 and reasons[:2] == ["", ""] and reasons[2] == "no face found"
    assert np.isfinite(desc[:2]).all() and np.isnan(desc[2]).all()
    again = _CountingEncoder()
    desc2, reasons2 = describe_files(paths, DescriptorCache(again, tmp_path / "cache"))
    assert again.described == 0 and reasons2 == reasons
    np.testing.assert_array_equal(desc2[:2], desc[:2])
    with pytest.raises(InputError, match="blank.png"):
        _checked_descriptors(desc, reasons, paths)


def _toy_descriptors(seed: int, n_per_class: int = 12, n_classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Separable toy descriptors: class centres 0.4 apart, scatter 0.03 per dimension (dlib's scale)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 0.4 / np.sqrt(2 * DESCRIPTOR_DIM), (n_classes, DESCRIPTOR_DIM)) + 0.05
    y = np.repeat(np.arange(n_classes), n_per_class)
    return centres[y] + rng.normal(0, 0.03, (y.size, DESCRIPTOR_DIM)), y


def test_head_probabilities_sum_to_one_and_rank_the_true_class_first():
    x, y = _toy_descriptors(0)
    x_val, y_val = _toy_descriptors(0, n_per_class=4)
    head = DescriptorHead().fit(x, y, 3, x_val, y_val, seed=0)
    p = head.probabilities(x)
    assert p.shape == (len(y), 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    assert (p.argmax(axis=1) == y).all()
    assert head.temperature > 0
    np.testing.assert_allclose(np.linalg.norm(head.embed(x), axis=1), 1.0, atol=1e-9)


def test_head_is_reproducible_and_refuses_use_before_fit():
    x, y = _toy_descriptors(1)
    a = DescriptorHead().fit(x, y, 3, seed=4).probabilities(x)
    b = DescriptorHead().fit(x, y, 3, seed=4).probabilities(x)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ModelError):
        DescriptorHead().embed(x)
    with pytest.raises(InputError):
        DescriptorHead().fit(x, np.zeros(len(x), int), 1)
