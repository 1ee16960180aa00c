"""Batched, streaming inference: :class:`Predictor`.

A :class:`Predictor` is a *recipe*: the path of a model package plus settings. Pickling it keeps
exactly that (a few hundred bytes, never the weights); the model loads lazily, once per process,
the first time it is needed (:meth:`Predictor._ensure_loaded`). So the same object can be sent
to worker processes, or handed to Ray Data as a callable class without changes::

    ds.map_batches(Predictor, fn_constructor_args=("models/screening",),
                   batch_size=256, concurrency=2, num_gpus=1)   # each actor loads once

    preds = Predictor("models/screening").predict(images)       # any iterable, even a generator
    preds.outputs[i]   # np.ndarray for item i, or None if it failed
    preds.failures     # [(index, reason), ...]

Pipeline of :meth:`Predictor.predict`:

* Preprocessing runs in a thread pool of ``num_workers`` threads with a bounded look-ahead, so
  a generator larger than memory streams through and results keep input order. Threads, not a
  ``DataLoader`` with worker processes: the work is numpy (which releases the GIL), items need
  no pickling between processes, nothing forks a process holding a CUDA context, a plain
  generator can be consumed as it is (a ``DataLoader`` would need an ``IterableDataset`` and
  per-worker sharding), and a failing item is caught where it happens. The pool keeps
  preparing the next batches while the main thread runs the current forward pass.
* The default transform takes uint8 HWC images (or float CHW arrays). uint8 images travel to
  the device as uint8 (four times fewer bytes than float32) and are converted to float in
  ``[0, 1]`` there; an NHWC batch permuted to NCHW is already channels-last.
* Batches are stacked into pinned host memory on CUDA and copied with ``non_blocking=True``;
  the outputs of batch *k* are copied back while batch *k + 1* is launched.
* Inference runs under ``torch.inference_mode()`` and the device's autocast (bf16/fp16 on
  CUDA, fp32 on CPU) unless ``precision`` says otherwise.
* An item whose preprocessing raises, or whose shape differs from the first good item's, is
  recorded in ``failures`` with its index and reason; the others still run. An error of the
  model itself is not an item's fault and raises :class:`~medface.errors.ModelError`.

This module imports only numpy, torch, ``medface.runtime.device`` and ``medface.progress`` at import time (MONAI,
tqdm and the package loader are imported when used), so it also runs where only torch is
installed, with an in-memory model.
"""

from __future__ import annotations

import collections
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

from medface.errors import InputError, ModelError, ParameterError
from medface.progress import progress_enabled
from medface.runtime.device import autocast, prepare_model, resolve_device

__all__ = ["Predictor", "Predictions", "default_transform"]

_PRECISIONS = {"auto": None, "fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
               "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}


@dataclass
class Predictions:
    """What :meth:`Predictor.predict` returns.

    ``outputs[i]`` is the output for input item ``i`` (an ``np.ndarray``, or a tuple/dict of
    them for models with several outputs), ``None`` where the item failed; ``failures`` lists
    ``(index, reason)`` for those items, in index order.
    """

    outputs: list = field(default_factory=list)
    failures: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.outputs)

    def ok(self) -> bool:
        """True when every item produced an output."""
        return not self.failures

    def stacked(self) -> np.ndarray:
        """The outputs of all items as one array; raises :class:`InputError` if any item failed."""
        if self.failures:
            index, reason = self.failures[0]
            raise InputError(f"{len(self.failures)} item(s) failed, the first (item {index}): {reason}")
        return np.stack(self.outputs) if self.outputs else np.empty((0,), np.float32)


def default_transform(item: Any) -> np.ndarray:
    """uint8 HWC (or HW) image -> float32 CHW in [0, 1]; float arrays are taken as CHW already."""
    kind, array = _validate(item)
    if kind == "u8":
        return np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)
    return array


def _validate(item: Any) -> tuple[str, np.ndarray]:
    """Check an item for the default transform: ("u8", HWC uint8) or ("chw", CHW float32)."""
    if isinstance(item, torch.Tensor):
        item = item.detach().cpu().numpy()
    if not isinstance(item, np.ndarray):
        raise InputError(f"expected an image array, got {type(item).__name__}",
                         hint="pass numpy arrays, or give the Predictor a preprocess function")
    if item.dtype == np.uint8:
        if item.ndim == 2:
            item = item[:, :, None]
        if item.ndim != 3:
            raise InputError(f"a uint8 image must be HxW or HxWxC, got shape {item.shape}")
        return "u8", np.ascontiguousarray(item)
    if item.dtype.kind == "f":
        if item.ndim != 3:
            raise InputError(f"a float image must be CxHxW, got shape {item.shape}")
        return "chw", np.ascontiguousarray(item, dtype=np.float32)
    raise InputError(f"unsupported image dtype {item.dtype} (use uint8 HWC or float CHW)")


class _Progress:
    """A tqdm bar on a terminal; nothing otherwise (or when tqdm is missing)."""

    def __init__(self, total: int | None, desc: str):
        self._bar = None
        if progress_enabled():
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - tqdm is a dependency, but torch-only hosts lack it
                return
            self._bar = tqdm(total=total, desc=desc, unit="item", leave=False)

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class Predictor:
    """Batched inference with a model package; a picklable recipe (see the module docstring).

    Parameters
    ----------
    package:
        A package folder (``model.safetensors`` + ``card.json``), or for in-process use an
        already loaded ``ModelPackage`` or a plain ``torch.nn.Module``. Only a folder (or a
        package that knows its folder) can be pickled.
    device:
        ``"auto"`` (CUDA, then MPS, then CPU; ``MEDFACE_DEVICE`` overrides), ``"cpu"``, ``"cuda:0"``...
    batch_size:
        Items per forward pass; the last batch may be smaller.
    num_workers:
        Preprocessing threads; 0 preprocesses in the calling thread.
    preprocess:
        ``preprocess(item) -> np.ndarray`` (float32 CHW). ``None``: :func:`default_transform`
        (uint8 HWC images, converted on the device; float CHW arrays as they are). It must be
        picklable (a module-level function) for the Predictor to be picklable.
    precision:
        ``"auto"`` (the device's autocast: bf16/fp16 on CUDA, fp32 on CPU), ``"fp32"``,
        ``"bf16"`` or ``"fp16"``.
    channels_last, compile:
        Passed to ``prepare_model``; inputs are given in channels-last layout when set.
    """

    def __init__(self, package: Any, *, device: str | torch.device = "auto", batch_size: int = 32,
                 num_workers: int = 2, preprocess: Callable[[Any], np.ndarray] | None = None,
                 precision: str = "auto", channels_last: bool = True, compile: bool = False):
        if int(batch_size) < 1:
            raise ParameterError(f"must be at least 1, got {batch_size}", parameter="batch_size")
        if int(num_workers) < 0:
            raise ParameterError(f"must be 0 or more, got {num_workers}", parameter="num_workers")
        if precision not in _PRECISIONS:
            raise ParameterError(f"unknown precision {precision!r}", parameter="precision",
                                 hint=f"use one of {sorted(_PRECISIONS)}")
        self._source = package
        self.path: Path | None = None
        if isinstance(package, (str, os.PathLike)):
            self.path = Path(package)
            self._source = None
        elif getattr(package, "path", None) is not None and not isinstance(package, torch.nn.Module):
            self.path = Path(package.path)
        self.device_spec = device if isinstance(device, str) else str(device)
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.preprocess = preprocess
        self.precision = precision
        self.channels_last = bool(channels_last)
        self.compile = bool(compile)
        self._reset_runtime()

    # -- pickling: a recipe, never the weights ------------------------------------------------

    _SETTINGS = ("path", "device_spec", "batch_size", "num_workers", "preprocess", "precision",
                 "channels_last", "compile")

    def __getstate__(self) -> dict:
        if self.path is None:
            raise ModelError("this Predictor wraps an in-memory model and cannot be pickled",
                             hint="save it with medface.runtime.package.save_package and pass the folder")
        return {name: getattr(self, name) for name in self._SETTINGS}

    def __setstate__(self, state: dict) -> None:
        for name in self._SETTINGS:
            setattr(self, name, state[name])
        self._source = None
        self._reset_runtime()

    def __repr__(self) -> str:
        what = str(self.path) if self.path is not None else type(self._source).__name__
        return (f"Predictor({what!r}, device={self.device_spec!r}, batch_size={self.batch_size}, "
                f"num_workers={self.num_workers}, precision={self.precision!r})")

    def _reset_runtime(self) -> None:
        self._model: torch.nn.Module | None = None
        self._device: torch.device | None = None
        self._card = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    # -- loading --------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        self._ensure_loaded()
        return self._device

    @property
    def model(self) -> torch.nn.Module:
        self._ensure_loaded()
        return self._model

    @property
    def card(self):
        self._ensure_loaded()
        return self._card

    def _ensure_loaded(self) -> torch.nn.Module:
        """Load and prepare the model once per process (again after a fork)."""
        if self._model is not None and self._pid == os.getpid():
            return self._model
        with self._lock:
            if self._model is not None and self._pid == os.getpid():
                return self._model
            device = resolve_device(self.device_spec)
            source = self._source
            if source is None:
                from medface.runtime.package import load_package

                source = load_package(self.path, device=device)
            if isinstance(source, torch.nn.Module):
                model, card = source, None
            else:
                model, card = getattr(source, "model", None), getattr(source, "card", None)
                if not isinstance(model, torch.nn.Module):
                    raise ModelError(f"expected a model package or a torch.nn.Module, got {type(source).__name__}")
            model = prepare_model(model, device, channels_last=self.channels_last, compile=self.compile)
            model.eval()
            self._model, self._card, self._device, self._pid = model, card, device, os.getpid()
            return model

    def _autocast(self):
        dtype = _PRECISIONS[self.precision]
        if self.precision == "auto":
            return autocast(self._device)
        if dtype is torch.float32:
            return _null_context()
        return torch.autocast(device_type=self._device.type, dtype=dtype)

    # -- the pipeline ----------------------------------------------------------------------------

    def _prepare_item(self, item: Any) -> tuple[str, np.ndarray]:
        if self.preprocess is None:
            return _validate(item)
        array = self.preprocess(item)
        if isinstance(array, torch.Tensor):
            array = array.detach().cpu().numpy()
        array = np.asarray(array)
        if array.dtype.kind not in "fiub":
            raise InputError(f"preprocess returned an array of dtype {array.dtype}")
        return "chw", np.ascontiguousarray(array, dtype=np.float32)

    def _safe_prepare(self, item: Any):
        try:
            return self._prepare_item(item)
        except Exception as exc:  # an item's failure is recorded, never raised
            return exc

    def _prepare_chunk(self, chunk: list) -> list:
        return [self._safe_prepare(item) for item in chunk]

    def _prepared(self, items: Iterable) -> Iterator[tuple[int, Any]]:
        """(index, prepared or exception), in input order, with bounded look-ahead.

        Items go to the pool in small chunks (one future per chunk, not per item) so that the
        bookkeeping of the calling thread stays far below the cost of a forward pass.
        """
        if self.num_workers == 0:
            for index, item in enumerate(items):
                yield index, self._safe_prepare(item)
            return
        chunk_size = max(1, min(16, self.batch_size // self.num_workers))
        ahead = max(2, (2 * self.batch_size) // chunk_size + self.num_workers)  # chunks in flight
        pending: collections.deque = collections.deque()
        iterator = iter(items)
        index = 0
        with ThreadPoolExecutor(self.num_workers, thread_name_prefix="medface-pre") as pool:
            try:
                while True:
                    chunk = list(itertools.islice(iterator, chunk_size))
                    if chunk:
                        pending.append((index, pool.submit(self._prepare_chunk, chunk)))
                        index += len(chunk)
                    if pending and (len(pending) >= ahead or not chunk):
                        start, fut = pending.popleft()
                        for offset, prepared in enumerate(fut.result()):
                            yield start + offset, prepared
                    elif not chunk:
                        break
            finally:
                for _, fut in pending:
                    fut.cancel()

    def _batches(self, items: Iterable, failures: list):
        """Yield (indices, kinds, arrays) of up to batch_size good items; record bad ones."""
        expected: tuple | None = None
        indices, kinds, arrays = [], [], []
        for index, prepared in self._prepared(items):
            if isinstance(prepared, BaseException):
                failures.append((index, _reason(prepared)))
                continue
            kind, array = prepared
            shape = _chw_shape(kind, array)
            if expected is None:
                expected = shape
            elif shape != expected:
                failures.append((index, f"shape {shape} (as CxHxW) differs from {expected} of the first item; "
                                        f"all items of one call must share one shape"))
                continue
            indices.append(index)
            kinds.append(kind)
            arrays.append(array)
            if len(indices) == self.batch_size:
                yield indices, kinds, arrays
                indices, kinds, arrays = [], [], []
        if indices:
            yield indices, kinds, arrays

    def _to_device(self, kinds: list[str], arrays: list[np.ndarray]) -> torch.Tensor:
        device = self._device
        cuda = device.type == "cuda"
        u8 = all(k == "u8" for k in kinds)
        if not u8:
            arrays = [default_transform(a) if k == "u8" else a for k, a in zip(kinds, arrays)]
        first = arrays[0]
        host = torch.empty((len(arrays), *first.shape), dtype=torch.uint8 if u8 else torch.float32,
                           pin_memory=cuda)
        np.stack(arrays, out=host.numpy())
        x = host.to(device, non_blocking=True) if device.type != "cpu" else host
        if u8:
            # NHWC -> NCHW view: the strides are those of channels-last already.
            x = x.permute(0, 3, 1, 2).float().div_(255.0)
            if not self.channels_last:
                x = x.contiguous()
        elif self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _forward(self, x: torch.Tensor):
        try:
            with torch.inference_mode(), self._autocast():
                return self._model(x)
        except Exception as exc:
            raise ModelError(f"the model failed on a batch of shape {tuple(x.shape)}: {_reason(exc)}") from exc

    def predict(self, items: Iterable) -> Predictions:
        """Run the model on every item of ``items`` (any iterable, streamed); see :class:`Predictions`."""
        self._ensure_loaded()
        total = len(items) if hasattr(items, "__len__") else None
        outputs: dict[int, Any] = {}
        failures: list[tuple[int, str]] = []
        progress = _Progress(total, "predict")
        in_flight = None  # (indices, outputs on their way to the host, event)
        try:
            for indices, kinds, arrays in self._batches(items, failures):
                out = self._forward(self._to_device(kinds, arrays))
                moved = _to_host(out)
                event = None
                if self._device.type == "cuda":
                    event = torch.cuda.Event()
                    event.record()
                if in_flight is not None:
                    self._collect(in_flight, outputs, progress)
                in_flight = (indices, moved, event)
            if in_flight is not None:
                self._collect(in_flight, outputs, progress)
        finally:
            progress.close()
        count = max([*outputs, *(i for i, _ in failures)], default=-1) + 1
        failures.sort()
        result = [outputs.get(i) for i in range(count)]
        return Predictions(outputs=result, failures=failures)

    @staticmethod
    def _collect(in_flight, outputs: dict, progress: _Progress) -> int:
        indices, moved, event = in_flight
        if event is not None:
            event.synchronize()
        for position, index in enumerate(indices):
            outputs[index] = _pick(moved, position)
        progress.update(len(indices))
        return len(indices)

    # -- Ray Data style ---------------------------------------------------------------------------

    def __call__(self, batch: dict) -> dict:
        """Ray Data ``map_batches`` entry: ``{"image": array}`` -> the batch plus ``"output"``.

        ``batch["image"]`` is an (N, H, W, C) uint8 array, an (N, C, H, W) float array, or an
        object array/list of per-row items (for a ``preprocess`` function). Rows whose
        preprocessing failed get NaN outputs and their reason in ``"error"`` ("" for good rows),
        so the row count never changes.
        """
        if "image" not in batch:
            raise InputError(f"the batch has no 'image' column (columns: {sorted(batch)})")
        images = batch["image"]
        rows = list(images) if not isinstance(images, np.ndarray) or images.dtype == object else \
            [images[i] for i in range(len(images))]
        preds = self.predict(rows)
        good = [o for o in preds.outputs if o is not None]
        if not good:
            reason = preds.failures[0][1] if preds.failures else "empty batch"
            if not rows:
                return {**batch, "output": np.empty((0,), np.float32)}
            raise InputError(f"every row of the batch failed, e.g.: {reason}")
        if not isinstance(good[0], np.ndarray):
            raise ModelError("__call__ supports models with a single tensor output")
        filled = [o if o is not None else np.full_like(good[0], np.nan) for o in preds.outputs]
        out = dict(batch)
        out["output"] = np.stack(filled)
        if preds.failures:
            errors = np.array([""] * len(rows), dtype=object)
            for index, reason in preds.failures:
                errors[index] = reason
            out["error"] = errors
        return out

    # -- volumes ----------------------------------------------------------------------------------

    def predict_volume(self, volume, roi_size, sw_batch_size: int = 4, overlap: float = 0.25,
                       mode: str = "gaussian") -> np.ndarray:
        """Sliding-window inference (MONAI ``SlidingWindowInferer``) on a 3D volume.

        ``volume`` is (D, H, W), (C, D, H, W) or (1, C, D, H, W), numpy or torch; the result is
        float32 numpy, (C_out, D, H, W) for the first two, (1, C_out, D, H, W) for the last.
        ``preprocess`` does not apply here: pass the volume already normalised.
        """
        self._ensure_loaded()
        try:
            from monai.inferers import SlidingWindowInferer
        except ImportError as exc:  # pragma: no cover - MONAI is a dependency of medface
            raise ModelError("predict_volume needs MONAI (pip install monai)") from exc
        x = volume if isinstance(volume, torch.Tensor) else torch.from_numpy(np.asarray(volume))
        ndim = x.ndim
        if ndim == 3:
            x = x[None, None]
        elif ndim == 4:
            x = x[None]
        elif ndim != 5 or x.shape[0] != 1:
            raise InputError(f"a volume must be DxHxW, CxDxHxW or 1xCxDxHxW, got shape {tuple(x.shape)}")
        x = x.to(torch.float32)
        roi = tuple(int(r) for r in (roi_size if isinstance(roi_size, (tuple, list)) else (roi_size,) * 3))
        inferer = SlidingWindowInferer(roi_size=roi, sw_batch_size=int(sw_batch_size), overlap=float(overlap),
                                       mode=mode, sw_device=self._device, device=self._device, progress=False)
        try:
            with torch.inference_mode(), self._autocast():
                y = inferer(x.to(self._device, non_blocking=True), self._model)
        except Exception as exc:
            raise ModelError(f"sliding-window inference failed on a volume of shape {tuple(x.shape)}: "
                             f"{_reason(exc)}") from exc
        if not isinstance(y, torch.Tensor):
            raise ModelError("predict_volume supports models with a single tensor output")
        y = y.float().cpu().numpy()
        return y[0] if ndim in (3, 4) else y


class _null_context:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, (InputError, ValueError)) else f"{type(exc).__name__}: {text}"


def _chw_shape(kind: str, array: np.ndarray) -> tuple:
    if kind == "u8":
        h, w, c = array.shape
        return (c, h, w)
    return tuple(array.shape)


def _to_host(out):
    """Start moving a model output (tensor, tuple/list or dict of tensors) to float32 on the host."""
    if isinstance(out, torch.Tensor):
        t = out.detach()
        if t.is_floating_point() and t.dtype != torch.float32:
            t = t.float()
        return t.to("cpu", non_blocking=True) if t.device.type == "cuda" else t
    if isinstance(out, (tuple, list)):
        return type(out)(_to_host(o) for o in out)
    if isinstance(out, dict):
        return {k: _to_host(v) for k, v in out.items()}
    raise ModelError(f"the model returned {type(out).__name__}; expected tensors")


def _pick(moved, position: int):
    if isinstance(moved, torch.Tensor):
        return moved[position].numpy().copy()
    if isinstance(moved, (tuple, list)):
        return tuple(_pick(m, position) for m in moved)
    return {k: _pick(v, position) for k, v in moved.items()}

