"""Device choice, precision, threads, model preparation and CPU determinism."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch

from medface.errors import DeviceError
from medface.runtime import (autocast, autocast_dtype, build_network, configure_threads, describe_device,
                             prepare_model, resolve_device, seed_everything)

needs_no_gpu = pytest.mark.skipif(torch.cuda.is_available() or torch.backends.mps.is_available(),
                                  reason="checks the CPU-only behaviour")


@needs_no_gpu
def test_auto_is_cpu_here(monkeypatch):
    monkeypatch.delenv("MEDFACE_DEVICE", raising=False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device() == torch.device("cpu")


def test_env_overrides_auto_only(monkeypatch):
    monkeypatch.setenv("MEDFACE_DEVICE", "cpu")
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setenv("MEDFACE_DEVICE", "tpu-ish")
    with pytest.raises(DeviceError, match="MEDFACE_DEVICE"):
        resolve_device("auto")
    assert resolve_device("cpu") == torch.device("cpu")  # an explicit argument wins over the environment


@needs_no_gpu
def test_cuda_absent_names_available_devices(monkeypatch):
    monkeypatch.delenv("MEDFACE_DEVICE", raising=False)
    for request in ("cuda", "cuda:1"):
        with pytest.raises(DeviceError) as info:
            resolve_device(request)
        assert "available devices: cpu" in str(info.value) and request in str(info.value)
    monkeypatch.setenv("MEDFACE_DEVICE", "cuda")
    with pytest.raises(DeviceError, match="MEDFACE_DEVICE"):
        resolve_device("auto")


def test_bad_device_strings():
    for bad in ("gpu", "cuda:x", "xla"):
        with pytest.raises(DeviceError):
            resolve_device(bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_index_out_of_range():
    with pytest.raises(DeviceError, match="does not exist"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")
    assert autocast_dtype("cuda") in (torch.bfloat16, torch.float16)


def test_cpu_precision_is_fp32():
    assert autocast_dtype("cpu") is None
    assert autocast_dtype(torch.device("cpu")) is None
    with autocast("cpu"):
        y = torch.nn.Linear(4, 2)(torch.ones(1, 4))
    assert y.dtype == torch.float32
    info = describe_device("cpu")
    assert info["type"] == "cpu" and info["autocast_dtype"] == "float32" and info["bf16"] is False


def test_configure_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("MEDFACE_NUM_THREADS", raising=False)
        assert configure_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("MEDFACE_NUM_THREADS", "2")
        assert configure_threads(1) == 2 and torch.get_num_threads() == 2
        monkeypatch.setenv("MEDFACE_NUM_THREADS", "many")
        with pytest.raises(DeviceError, match="MEDFACE_NUM_THREADS"):
            configure_threads()
        monkeypatch.delenv("MEDFACE_NUM_THREADS")
        with pytest.raises(DeviceError):
            configure_threads(0)
    finally:
        torch.set_num_threads(before)


def test_prepare_model_eval_channels_last():
    net = build_network("medface.SmallCNN", {"width": 4, "embedding_dim": 8})
    net.train()
    out = prepare_model(net, "cpu")
    assert not out.training
    conv = out.features[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    flat = prepare_model(torch.nn.Linear(3, 2), "cpu")  # no 4D conv: left alone
    assert flat.weight.is_contiguous()
    plain = prepare_model(build_network("medface.SmallCNN", {}), "cpu", channels_last=False)
    assert plain.features[0].weight.is_contiguous()


def test_compile_failure_falls_back(monkeypatch):
    def broken_compile(model, *a, **k):
        def call(*args, **kwargs):
            raise RuntimeError("no compiler here")
        return call

    monkeypatch.setattr(torch, "compile", broken_compile)
    net = build_network("medface.SmallCNN", {"width": 4, "embedding_dim": 8})
    prepared = prepare_model(net, "cpu", compile=True)
    x = torch.rand(2, 3, 16, 16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.no_grad():
            y = prepared(x)
    assert any("torch.compile failed" in str(w.message) for w in caught)
    with torch.no_grad():
        assert torch.equal(y, net(x))


def _seeded_run(seed: int) -> torch.Tensor:
    seed_everything(seed)
    net = prepare_model(build_network("medface.SmallCNN", {"width": 8, "embedding_dim": 16}), "cpu")
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        return net(x)


def test_seeded_cpu_runs_identical():
    was = torch.are_deterministic_algorithms_enabled()
    try:
        a, b, c = _seeded_run(3), _seeded_run(3), _seeded_run(4)
    finally:
        torch.use_deterministic_algorithms(was)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_seeded_runs_identical_across_processes():
    code = ("import torch, medface.runtime as rt; rt.seed_everything(5); "
            "n = rt.prepare_model(rt.build_network('medface.SmallCNN', {'width': 8}), 'cpu'); "
            "print(n(torch.rand(2, 3, 16, 16)).detach().numpy().tobytes().hex())")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            for _ in range(2)]
    assert runs[0] == runs[1] and len(runs[0]) > 10


def test_importing_runtime_is_cheap():
    code = "import sys, medface.runtime; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
