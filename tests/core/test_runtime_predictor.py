"""The batched Predictor: same numbers as a plain loop, order, failures, pickling, volumes."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from medface.errors import InputError, ModelError  # noqa: E402
from medface.runtime.networks import build_network  # noqa: E402
from medface.runtime.package import load_package, save_package  # noqa: E402
from medface.runtime.predictor import Predictions, Predictor, default_transform  # noqa: E402

ARGS = {"in_channels": 3, "num_classes": 5, "width": 8, "embedding_dim": 16}
SIZE = 32


def _card(args=ARGS) -> dict:
    return {
        "name": "test-smallcnn",
        "version": "0.0.1",
        "architecture": {"name": "medface.SmallCNN", "args": dict(args)},
        "inputs": {"image": {"type": "image", "format": "RGB", "num_channels": 3, "spatial_shape": [SIZE, SIZE],
                             "dtype": "float32", "value_range": [0, 1]}},
        "outputs": {"logits": {"type": "logits", "num_channels": args["num_classes"], "dtype": "float32"}},
        "labels": [f"class{i}" for i in range(args["num_classes"])],
        "preprocessing": {"transform": "uint8 RGB HxWxC -> float CxHxW / 255"},
        "training_data": "none: random weights for tests",
        "metrics": {},
        "intended_use": "unit tests only",
        "limitations": "random weights",
        "licence": "Apache-2.0",
    }


def _model(seed: int = 0):
    torch.manual_seed(seed)
    model = build_network("medface.SmallCNN", dict(ARGS))
    # non-trivial batch-norm statistics so that eval mode differs from identity
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pkg") / "smallcnn"
    save_package(_model(), _card(), folder)
    return folder


def _images(n: int, seed: int = 1, size: int = SIZE) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


def _reference(folder, images) -> list[np.ndarray]:
    model = load_package(folder, device="cpu").model.float().eval()
    out = []
    with torch.inference_mode():
        for image in images:
            x = torch.from_numpy(default_transform(image))[None]
            out.append(_first(model(x))[0].numpy().copy())
    return out


def _first(y):
    return y[0] if isinstance(y, (tuple, list)) else y


def _out(o):
    return o[0] if isinstance(o, tuple) else o


@pytest.mark.parametrize("num_workers", [0, 2])
def test_batched_outputs_equal_a_plain_loop_in_order(package_dir, num_workers):
    images = _images(37)
    expected = _reference(package_dir, images)
    predictor = Predictor(package_dir, device="cpu", batch_size=8, num_workers=num_workers)
    preds = predictor.predict(images)
    assert isinstance(preds, Predictions)
    assert len(preds) == 37 and preds.ok() and preds.failures == []
    for got, want in zip(preds.outputs, expected):
        np.testing.assert_allclose(_out(got), want, rtol=1e-5, atol=1e-5)
    # items are distinct: a shuffled order would not pass
    assert not np.allclose(_out(preds.outputs[0]), _out(preds.outputs[1]))


def test_generator_is_streamed_not_materialised(package_dir):
    pulled = []

    def gen():
        for i, image in enumerate(_images(200, seed=3)):
            pulled.append(i)
            yield image

    predictor = Predictor(package_dir, device="cpu", batch_size=4, num_workers=2)
    model = predictor.model
    seen_at_first_forward = []
    handle = model.register_forward_hook(lambda *a: seen_at_first_forward.append(len(pulled)))
    try:
        preds = predictor.predict(gen())
    finally:
        handle.remove()
    assert len(preds) == 200 and preds.ok()
    assert seen_at_first_forward[0] < 40  # bounded look-ahead, not the whole generator


def test_failing_items_are_reported_and_the_others_keep_their_places(package_dir):
    images = _images(20)
    items: list = list(images)
    items[3] = "not an image"
    items[7] = np.zeros((SIZE, SIZE), np.float32)  # 2-D float: not CHW
    items[12] = np.zeros((SIZE + 4, SIZE, 3), np.uint8)  # another size than the others
    expected = _reference(package_dir, images)
    preds = Predictor(package_dir, device="cpu", batch_size=6, num_workers=2).predict(items)
    assert len(preds) == 20 and not preds.ok()
    assert [i for i, _ in preds.failures] == [3, 7, 12]
    reasons = dict(preds.failures)
    assert "str" in reasons[3]
    assert "(32, 32)" in reasons[7]
    assert "shape" in reasons[12]
    for i in range(20):
        if i in reasons:
            assert preds.outputs[i] is None
        else:
            np.testing.assert_allclose(_out(preds.outputs[i]), expected[i], rtol=1e-5, atol=1e-5)
    with pytest.raises(InputError):
        preds.stacked()


def test_a_failing_preprocess_function_is_recorded(package_dir):
    def prep(item):
        if item % 5 == 2:
            raise ValueError(f"bad item {item}")
        return np.full((3, SIZE, SIZE), item / 10, np.float32)

    preds = Predictor(package_dir, device="cpu", batch_size=4, num_workers=2, preprocess=prep).predict(range(11))
    assert preds.failures == [(2, "bad item 2"), (7, "bad item 7")]
    assert sum(o is not None for o in preds.outputs) == 9


def test_pickle_round_trip_is_a_small_recipe(package_dir):
    images = _images(10)
    predictor = Predictor(package_dir, device="cpu", batch_size=4, num_workers=2)
    before = pickle.dumps(predictor)
    first = predictor.predict(images)
    after = pickle.dumps(predictor)  # a loaded model is not pickled either
    weights = sum(p.stat().st_size for p in package_dir.iterdir())
    assert len(before) < 1500 and len(after) < 1500 < weights
    for blob in (before, after):
        clone = pickle.loads(blob)
        assert clone._model is None  # lazy: loads on first use
        again = clone.predict(images)
        for a, b in zip(first.outputs, again.outputs):
            np.testing.assert_array_equal(_out(a), _out(b))


def test_in_memory_model_refuses_to_pickle():
    predictor = Predictor(_model(), device="cpu")
    with pytest.raises(ModelError):
        pickle.dumps(predictor)


def test_ray_style_call_on_a_dict_batch(package_dir):
    images = _images(9)
    predictor = Predictor(package_dir, device="cpu", batch_size=4, num_workers=0)
    batch = {"image": np.stack(images), "id": np.arange(9)}
    out = predictor(batch)
    assert set(out) >= {"image", "id", "output"} and "error" not in out
    expected = np.stack(_reference(package_dir, images))
    assert out["output"].shape == expected.shape
    np.testing.assert_allclose(out["output"], expected, rtol=1e-5, atol=1e-5)
    # the class itself is what Ray instantiates per actor: construct, then call
    clone = pickle.loads(pickle.dumps(predictor))
    np.testing.assert_array_equal(clone(batch)["output"], out["output"])


def test_same_seed_same_outputs_on_cpu(tmp_path):
    images = _images(12, seed=5)
    runs = []
    for k in range(2):
        folder = tmp_path / f"run{k}"
        save_package(_model(seed=42), _card(), folder)
        runs.append(Predictor(folder, device="cpu", batch_size=5).predict(images))
    for a, b in zip(runs[0].outputs, runs[1].outputs):
        np.testing.assert_array_equal(_out(a), _out(b))


def test_predict_volume_shape_and_single_window_equals_forward():
    from monai.networks.nets import UNet

    torch.manual_seed(0)
    net = UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=(4, 8, 16), strides=(2, 2),
               num_res_units=1).eval()
    volume = np.random.default_rng(0).normal(size=(32, 32, 32)).astype(np.float32)
    with torch.inference_mode():
        direct = net(torch.from_numpy(volume)[None, None])[0].numpy()
    predictor = Predictor(net, device="cpu")
    whole = predictor.predict_volume(volume, roi_size=(32, 32, 32), sw_batch_size=1, overlap=0.0)
    assert whole.shape == (2, 32, 32, 32) and whole.dtype == np.float32
    np.testing.assert_allclose(whole, direct, rtol=1e-4, atol=1e-4)
    tiled = predictor.predict_volume(volume[None], roi_size=16, sw_batch_size=4, overlap=0.25)
    assert tiled.shape == (2, 32, 32, 32)
    assert predictor.predict_volume(torch.from_numpy(volume)[None, None], roi_size=16).shape == (1, 2, 32, 32, 32)
    with pytest.raises(InputError):
        predictor.predict_volume(volume[0], roi_size=16)


def test_bad_settings_are_refused():
    with pytest.raises(InputError):
        Predictor("x", batch_size=0)
    with pytest.raises(InputError):
        Predictor("x", precision="int3")
