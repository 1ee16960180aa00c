"""ONNX export and the onnxruntime backend agree with torch, with a dynamic batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from medface.errors import DeviceError, ModelError  # noqa: E402
from medface.runtime import (ModelCard, OnnxBackend, build_network, compare_with_torch, export_onnx,  # noqa: E402
                             load_package, save_package)


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_smallcnn_dynamic_batch(tmp_path):
    torch.manual_seed(0)
    net = build_network("medface.SmallCNN", {"width": 8, "embedding_dim": 16, "num_classes": 3}).eval()
    path = export_onnx(net, tmp_path / "small.onnx", example_input=_rand(2, 3, 32, 32))
    x = _rand(5, 3, 32, 32, seed=1)
    got = OnnxBackend(path)(x)
    assert got.shape == (5, 3)
    with torch.no_grad():
        np.testing.assert_allclose(got, net(x).numpy(), atol=1e-4)
    assert compare_with_torch(net, path, x, atol=1e-4) <= 1e-4
    assert OnnxBackend(path)(x.numpy()).shape == (5, 3)  # numpy in, numpy out


def test_densenet121_dynamic_batch(tmp_path):
    torch.manual_seed(0)
    args = {"spatial_dims": 2, "in_channels": 3, "out_channels": 2, "init_features": 8, "growth_rate": 8,
            "block_config": [2, 2, 2, 2]}
    net = build_network("monai.DenseNet121", args).eval()
    path = export_onnx(net, tmp_path / "densenet.onnx", example_input=_rand(2, 3, 32, 32))
    x = _rand(5, 3, 32, 32, seed=2)
    diff = compare_with_torch(net, path, x, atol=1e-4)
    assert 0 <= diff <= 1e-4
    assert OnnxBackend(path)(x).shape == (5, 2)


def test_export_is_deterministic_and_from_package(tmp_path):
    torch.manual_seed(0)
    net = build_network("medface.SmallCNN", {"width": 4, "embedding_dim": 8})
    card = ModelCard(name="demo", version="1.0", architecture={"name": "medface.SmallCNN",
                                                               "args": {"width": 4, "embedding_dim": 8}},
                     inputs={"image": {"type": "image", "num_channels": 3}}, outputs={"logits": {"type": "logits"}},
                     labels=["x", "y"], training_data="synthetic: none", intended_use="tests",
                     limitations="none", licence="MIT", created="2024-01-01T00:00:00Z")
    package = load_package(save_package(net, card, tmp_path / "pkg"), device="cpu")
    x = _rand(2, 3, 16, 16)
    a = export_onnx(package, tmp_path / "a.onnx", example_input=x)
    b = export_onnx(package, tmp_path / "b.onnx", example_input=x)
    assert a.read_bytes() == b.read_bytes()
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(a)).metadata_props}
    assert meta["medface.model"] == "demo" and meta["medface.sha256"] == package.sha256
    assert compare_with_torch(package, a, _rand(3, 3, 16, 16, seed=4)) <= 1e-4


def test_static_batch_and_mismatch_detected(tmp_path):
    torch.manual_seed(0)
    net = build_network("medface.SmallCNN", {"width": 4, "embedding_dim": 8}).eval()
    path = export_onnx(net, tmp_path / "static.onnx", example_input=_rand(2, 3, 16, 16), dynamic_batch=False)
    with pytest.raises(ModelError, match="shape"):
        OnnxBackend(path)(_rand(5, 3, 16, 16))
    torch.manual_seed(1)
    other = build_network("medface.SmallCNN", {"width": 4, "embedding_dim": 8}).eval()
    with pytest.raises(ModelError, match="differ"):
        compare_with_torch(other, path, _rand(2, 3, 16, 16))


def test_backend_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        OnnxBackend(tmp_path / "absent.onnx")
    net = build_network("medface.SmallCNN", {"width": 4, "embedding_dim": 8}).eval()
    path = export_onnx(net, tmp_path / "m.onnx", example_input=_rand(1, 3, 16, 16))
    with pytest.raises(DeviceError, match="CPUExecutionProvider"):
        OnnxBackend(path, providers=["NoSuchExecutionProvider"])
