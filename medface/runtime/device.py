"""Compute devices, precision, CPU threads and model placement.

``resolve_device("auto")`` picks CUDA, then Apple MPS, then the CPU; the environment variable
``MEDFACE_DEVICE`` overrides ``"auto"`` (never an explicit argument). CUDA runs under bf16
autocast where the GPU supports it (fp16 otherwise); the CPU and MPS run in fp32.
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
import warnings

import torch
from torch import nn

from ..errors import DeviceError

DEVICE_ENV = "MEDFACE_DEVICE"
THREADS_ENV = "MEDFACE_NUM_THREADS"
_KNOWN_TYPES = ("cpu", "cuda", "mps")

_threads_configured: int | None = None


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    try:
        return bool(mps is not None and mps.is_available())
    except Exception:  # pragma: no cover - odd builds
        return False


def available_devices() -> list[str]:
    """The devices this machine offers, e.g. ``["cuda:0", "cpu"]`` (always ends with "cpu")."""
    found = []
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        found.append("mps")
    found.append("cpu")
    return found


def _auto() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or a torch.device into a
    checked :class:`torch.device`.

    ``None`` means ``"auto"``. For ``"auto"``, ``MEDFACE_DEVICE`` (if set) is used instead.
    Raises :class:`DeviceError` naming the available devices when the request can't be met.
    """
    source = "argument"
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        env = os.environ.get(DEVICE_ENV, "").strip()
        if not env or env.lower() == "auto":
            return _auto()
        device, source = env, f"environment variable {DEVICE_ENV}"
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device.strip().lower())
        except (RuntimeError, ValueError) as exc:
            raise DeviceError(f"unknown device {device!r} (from the {source})",
                              hint=f"use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'; available here: "
                                   f"{', '.join(available_devices())}") from exc
    else:
        raise DeviceError(f"device must be a string or torch.device, not {type(device).__name__} (from the {source})")

    available = ", ".join(available_devices())
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {str(dev)!r} (from the {source}) is not available: this machine has no "
                              f"usable CUDA GPU", hint=f"available devices: {available}; use 'auto' or 'cpu'")
        count = torch.cuda.device_count()
        index = torch.cuda.current_device() if dev.index is None else dev.index
        if index >= count:
            raise DeviceError(f"device {str(dev)!r} (from the {source}) does not exist: this machine has {count} "
                              f"CUDA device(s)", hint=f"available devices: {available}")
        return torch.device("cuda", index)
    if dev.type == "mps":
        if not _mps_available():
            raise DeviceError(f"device 'mps' (from the {source}) is not available on this machine",
                              hint=f"available devices: {available}")
        return torch.device("mps")
    raise DeviceError(f"device type {dev.type!r} (from the {source}) is not supported by medface",
                      hint=f"use one of {', '.join(_KNOWN_TYPES)}; available here: {available}")


def _as_device(device) -> torch.device:
    return device if isinstance(device, torch.device) and device.type != "cuda" else resolve_device(device)


def autocast_dtype(device) -> torch.dtype | None:
    """bf16 on CUDA GPUs that support it, fp16 on other CUDA GPUs, ``None`` (fp32) on CPU and MPS."""
    dev = _as_device(device)
    if dev.type != "cuda":
        return None
    with torch.cuda.device(dev):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device):
    """A context manager running the enclosed forward passes in :func:`autocast_dtype` precision
    (a no-op context on CPU and MPS)."""
    dev = _as_device(device)
    dtype = autocast_dtype(dev)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=dev.type, dtype=dtype)


def configure_threads(n: int | None = None) -> int:
    """Set torch's CPU thread count and return it.

    The count is ``MEDFACE_NUM_THREADS`` if set (so an operator can cap a shared workstation),
    else ``n``, else ``os.cpu_count()``. ``torch.set_num_threads`` is called only when the count
    changes.
    """
    global _threads_configured
    env = os.environ.get(THREADS_ENV, "").strip()
    if env:
        try:
            count = int(env)
        except ValueError:
            raise DeviceError(f"environment variable {THREADS_ENV}={env!r} is not a whole number",
                              hint="set it to a positive integer or unset it") from None
        source = f"environment variable {THREADS_ENV}"
    elif n is not None:
        count, source = n, "argument n"
    else:
        count, source = os.cpu_count() or 1, "os.cpu_count()"
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise DeviceError(f"thread count {count!r} from the {source} must be a positive integer")
    if _threads_configured != count or torch.get_num_threads() != count:
        torch.set_num_threads(count)
        _threads_configured = count
    return count


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch; with ``deterministic``, ask torch for deterministic kernels
    (warn-only, so an op without a deterministic variant still runs) and turn off cuDNN autotuning."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover
        pass
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def _has_4d_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.conv._ConvNd) and getattr(m, "weight", None) is not None
               and m.weight.dim() == 4 for m in model.modules())


class CompiledModel(nn.Module):
    """``torch.compile`` output that falls back to the eager module (with one warning) when
    compilation fails on the first call. ``.module`` is the eager network."""

    def __init__(self, module: nn.Module, compiled):
        super().__init__()
        self.module = module
        object.__setattr__(self, "_compiled", compiled)
        self._failed = False

    def forward(self, *args, **kwargs):
        if not self._failed:
            try:
                return self._compiled(*args, **kwargs)
            except Exception as exc:  # compilation problems surface on the first call
                self._failed = True
                warnings.warn(f"torch.compile failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                              f"running the model without compilation", RuntimeWarning, stacklevel=2)
        return self.module(*args, **kwargs)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain network under a :class:`CompiledModel` or ``torch.compile`` wrapper."""
    while True:
        if isinstance(model, CompiledModel):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def prepare_model(model: nn.Module, device=None, *, channels_last: bool = True, compile: bool = False) -> nn.Module:
    """Put ``model`` in eval mode on ``device`` (resolved with :func:`resolve_device`; ``None``
    means auto), in channels-last memory format when it has 2D convolutions, optionally compiled
    with ``torch.compile`` (falling back to eager with a warning if that fails)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"prepare_model needs a torch.nn.Module, not {type(model).__name__}")
    dev = resolve_device(device)
    model = model.eval().to(dev)
    if channels_last and _has_4d_conv(model):
        model = model.to(memory_format=torch.channels_last)
    if compile:
        try:
            compiled = torch.compile(model)
        except Exception as exc:
            warnings.warn(f"torch.compile is unavailable ({type(exc).__name__}: {exc}); running the model "
                          f"without compilation", RuntimeWarning, stacklevel=2)
            return model
        return CompiledModel(model, compiled).eval()
    return model


def _cpu_memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def describe_device(device=None) -> dict:
    """Facts about a device for provenance and ``medface doctor``: name, type, index, memory in
    GiB, bf16 support and the autocast dtype used there."""
    dev = resolve_device(device)
    info = {"device": str(dev), "type": dev.type, "index": dev.index, "name": None, "memory_gib": None,
            "bf16": False, "autocast_dtype": None, "capability": None}
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        with torch.cuda.device(dev):
            bf16 = bool(torch.cuda.is_bf16_supported())
        info.update(name=props.name, memory_gib=round(props.total_memory / 2**30, 1), bf16=bf16,
                    capability=f"{props.major}.{props.minor}")
    elif dev.type == "mps":
        info.update(name="Apple MPS", bf16=False)
    else:
        info.update(name=platform.processor() or platform.machine() or "cpu", memory_gib=_cpu_memory_gib(),
                    bf16=False, threads=torch.get_num_threads())
    dtype = autocast_dtype(dev)
    info["autocast_dtype"] = str(dtype).replace("torch.", "") if dtype is not None else "float32"
    return info
