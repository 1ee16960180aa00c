"""ONNX export of a model (or model package) and an onnxruntime backend to run it.

``export_onnx`` uses torch's TorchScript-based exporter (``dynamo=False``: it needs no extra
packages and gives the same bytes for the same model), marks the batch dimension dynamic and
checks the graph with ``onnx.checker``. A package's name, version and weights' sha256 go into
the ONNX file's metadata.
"""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import DeviceError, ModelError
from .device import unwrap_model


def _model_of(package_or_model) -> tuple[nn.Module, dict]:
    from .package import ModelPackage

    if isinstance(package_or_model, ModelPackage):
        card = package_or_model.card
        meta = {"medface.model": card.name, "medface.version": card.version, "medface.sha256": card.sha256,
                "medface.architecture": card.architecture["name"]}
        return unwrap_model(package_or_model.model), meta
    if isinstance(package_or_model, nn.Module):
        return unwrap_model(package_or_model), {}
    raise TypeError(f"export_onnx needs a ModelPackage or torch.nn.Module, not {type(package_or_model).__name__}")


def _output_count(out) -> int:
    if isinstance(out, torch.Tensor):
        return 1
    if isinstance(out, (tuple, list)) and all(isinstance(o, torch.Tensor) for o in out):
        return len(out)
    raise ModelError(f"ONNX export supports models returning a tensor or a tuple of tensors, not {type(out).__name__}")


def export_onnx(package_or_model, path: str | os.PathLike, *, example_input: torch.Tensor, opset: int = 17,
                dynamic_batch: bool = True) -> Path:
    """Export to ONNX at ``path`` (written atomically) and return the path.

    The input is named ``input``; outputs ``output`` (or ``output_0``, ``output_1``, ...). With
    ``dynamic_batch`` the first dimension of every input and output is symbolic (``batch``).
    The model is copied to the CPU in fp32 for export; the original is left untouched.
    """
    import onnx

    model, meta = _model_of(package_or_model)
    if not isinstance(example_input, torch.Tensor):
        raise TypeError("example_input must be a torch.Tensor")
    model = copy.deepcopy(model).to("cpu", torch.float32).eval()
    x = example_input.detach().to("cpu", torch.float32).contiguous()
    with torch.no_grad():
        n_out = _output_count(model(x))
    outputs = ["output"] if n_out == 1 else [f"output_{i}" for i in range(n_out)]
    dynamic_axes = {name: {0: "batch"} for name in ["input", *outputs]} if dynamic_batch else None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            try:
                torch.onnx.export(model, (x,), tmp, dynamo=False, opset_version=opset, input_names=["input"],
                                  output_names=outputs, dynamic_axes=dynamic_axes, do_constant_folding=True,
                                  export_params=True)
            except Exception as exc:
                raise ModelError(f"ONNX export (opset {opset}) of {type(model).__name__} failed: "
                                 f"{type(exc).__name__}: {exc}", path=path,
                                 hint="try another opset or simplify the model's forward") from exc
        proto = onnx.load(tmp)
        if meta:
            for key, value in sorted(meta.items()):
                entry = proto.metadata_props.add()
                entry.key, entry.value = key, str(value)
        try:
            onnx.checker.check_model(proto, full_check=True)
        except Exception as exc:
            raise ModelError(f"exported ONNX graph fails onnx.checker: {exc}", path=path) from exc
        onnx.save(proto, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


class OnnxBackend:
    """Run an ONNX model with onnxruntime: ``OnnxBackend("m.onnx")(batch) -> np.ndarray``.

    ``providers`` defaults to ``["CPUExecutionProvider"]``; an unavailable provider raises
    :class:`DeviceError` naming those available. Calling returns the first output; use
    :meth:`run` for all of them.
    """

    def __init__(self, path: str | os.PathLike, providers: list[str] | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError("ONNX model file not found", path=self.path)
        providers = list(providers) if providers else ["CPUExecutionProvider"]
        available = ort.get_available_providers()
        missing = [p for p in providers if (p[0] if isinstance(p, tuple) else p) not in available]
        if missing:
            raise DeviceError(f"onnxruntime provider(s) {', '.join(map(str, missing))} not available",
                              hint=f"available providers: {', '.join(available)}")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
        except Exception as exc:
            raise ModelError(f"onnxruntime cannot load the model: {exc}", path=self.path) from exc
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"OnnxBackend supports single-input models; this one has {len(inputs)}", path=self.path)
        self.input_name = inputs[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.providers = self.session.get_providers()

    def run(self, x) -> list[np.ndarray]:
        if isinstance(x, torch.Tensor):
            x = x.detach().to("cpu").numpy()
        x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
        try:
            return self.session.run(self.output_names, {self.input_name: x})
        except Exception as exc:
            raise ModelError(f"onnxruntime failed on an input of shape {tuple(x.shape)}: {exc}",
                             path=self.path) from exc

    def __call__(self, x) -> np.ndarray:
        return self.run(x)[0]


def compare_with_torch(model, onnx_path: str | os.PathLike, inputs, atol: float = 1e-4) -> float:
    """Run ``inputs`` through the torch model (CPU, fp32) and the ONNX file and return the largest
    absolute difference of the first outputs; raise :class:`ModelError` if it exceeds ``atol``."""
    net, _ = _model_of(model)
    net = copy.deepcopy(net).to("cpu", torch.float32).eval()
    x = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, torch.Tensor) else inputs)
    x = x.detach().to("cpu", torch.float32)
    with torch.no_grad():
        out = net(x)
    expected = (out if isinstance(out, torch.Tensor) else out[0]).numpy()
    got = OnnxBackend(onnx_path)(x)
    if got.shape != expected.shape:
        raise ModelError(f"ONNX output shape {got.shape} differs from torch's {expected.shape}", path=onnx_path)
    diff = float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64)))) if got.size else 0.0
    if not diff <= atol:
        raise ModelError(f"ONNX and torch outputs differ by up to {diff:.3g} (allowed {atol:g})", path=onnx_path,
                         hint="check for ops exported differently, or raise atol if the difference is expected")
    return diff
