"""A small, reusable training loop: seeded, checkpointed, resumable, and ending in a model package.

The loop is deliberately plain: AdamW, an optional cosine schedule, optional gradient clipping,
automatic mixed precision on CUDA, early stopping on a monitored value, and the best weights
restored at the end. It writes a model package (``model.safetensors`` + ``card.json``) through
:func:`medface.runtime.package.save_package`.

Determinism: every epoch reseeds python ``random``, numpy, torch and the DataLoader's shuffling
generator from ``(seed, epoch)``, and on CPU ``torch.use_deterministic_algorithms(True,
warn_only=True)`` is switched on for the duration of the run. Two CPU runs with the same seed give
bit-identical weights, and a run resumed from a checkpoint gives the same weights as one that was
never interrupted.

Checkpoints (no pickle anywhere): ``checkpoint_dir/last.safetensors`` holds the model weights
(``model.*``) and the optimizer's state tensors (``optim.<param>.<name>``);
``checkpoint_dir/best.safetensors`` holds the best weights so far; ``checkpoint_dir/state.json``
holds the epoch, the early-stopping state, the history, the optimizer's param groups and
non-tensor state, and the scheduler and gradient-scaler states.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from medface.errors import InputError, ModelError, ParameterError
from medface.progress import progress_enabled

__all__ = ["TrainConfig", "TrainingResult", "train", "accuracy"]

CHECKPOINT_FORMAT = 1
_LOSSES: dict[str, Callable] = {
    "cross_entropy": nn.functional.cross_entropy,
    "mse": nn.functional.mse_loss,
    "l1": nn.functional.l1_loss,
    "bce_with_logits": nn.functional.binary_cross_entropy_with_logits,
}


@dataclass
class TrainConfig:
    """How to train. ``mode`` defaults to "min" for a monitor ending in "loss", else "max"."""

    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    num_workers: int = 0
    patience: int | None = None
    monitor: str = "val_loss"
    mode: str | None = None
    checkpoint_dir: str | os.PathLike | None = None
    max_grad_norm: float | None = None
    scheduler: str | None = None

    def __post_init__(self):
        if int(self.epochs) < 1:
            raise ParameterError(f"must be at least 1, got {self.epochs}", parameter="epochs")
        if int(self.batch_size) < 1:
            raise ParameterError(f"must be at least 1, got {self.batch_size}", parameter="batch_size")
        if not (float(self.lr) >= 0):
            raise ParameterError(f"must be 0 or more, got {self.lr}", parameter="lr")
        if not (float(self.weight_decay) >= 0):
            raise ParameterError(f"must be 0 or more, got {self.weight_decay}", parameter="weight_decay")
        if int(self.num_workers) < 0:
            raise ParameterError(f"must be 0 or more, got {self.num_workers}", parameter="num_workers")
        if self.patience is not None and int(self.patience) < 1:
            raise ParameterError(f"must be at least 1 (or None for no early stopping), got {self.patience}",
                                 parameter="patience")
        if self.mode not in (None, "min", "max"):
            raise ParameterError(f"must be 'min' or 'max', got {self.mode!r}", parameter="mode")
        if self.scheduler not in (None, "cosine"):
            raise ParameterError(f"must be 'cosine' or None, got {self.scheduler!r}", parameter="scheduler")
        if self.max_grad_norm is not None and not (float(self.max_grad_norm) > 0):
            raise ParameterError(f"must be positive, got {self.max_grad_norm}", parameter="max_grad_norm")

    @property
    def effective_mode(self) -> str:
        """``mode``, or when None: "min" for a monitor ending in "loss", else "max"."""
        if self.mode is not None:
            return self.mode
        return "min" if str(self.monitor).endswith("loss") else "max"

    def fingerprint(self) -> dict:
        """The settings that must not change between a run and its resumption."""
        return {"batch_size": int(self.batch_size), "lr": float(self.lr),
                "weight_decay": float(self.weight_decay), "seed": int(self.seed),
                "scheduler": self.scheduler, "monitor": self.monitor, "mode": self.effective_mode,
                "max_grad_norm": self.max_grad_norm}


@dataclass
class TrainingResult:
    """``history`` has one dict per epoch (1-based ``epoch``, ``train_loss``, ``val_loss``, metrics, ``lr``)."""

    package_path: Path | None
    history: list[dict]
    best_epoch: int
    best_value: float
    stopped_early: bool
    model: nn.Module | None = field(default=None, repr=False, compare=False)


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Top-1 accuracy of class logits ``(N, C)`` against integer targets ``(N,)``."""
    if outputs.ndim < 2 or outputs.shape[0] != targets.shape[0]:
        raise InputError(f"accuracy needs logits (N, C) and targets (N,), got {tuple(outputs.shape)} "
                         f"and {tuple(targets.shape)}")
    return float((outputs.argmax(dim=1) == targets.reshape(-1).long()).float().mean())


# --------------------------------------------------------------------------------------------
# seeding


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch)]).generate_state(1)[0])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _seed_worker(worker_id: int) -> None:  # module level so that worker processes can pickle it
    s = torch.initial_seed() % 2**32
    random.seed(s)
    np.random.seed(s)


# --------------------------------------------------------------------------------------------
# checkpoints (safetensors + JSON, no pickle)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else (1e308 if value > 0 else -1e308)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ModelError(f"cannot store {type(value).__name__} in a checkpoint's state.json")


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


def _split_optimizer_state(opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict] = {}
    for pid, st in sd["state"].items():
        for name, value in st.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{name}"] = value.detach().to("cpu", copy=True).contiguous()
            else:
                plain.setdefault(str(pid), {})[name] = _jsonable(value)
    return tensors, {"param_groups": _jsonable(sd["param_groups"]), "state": plain}


def _join_optimizer_state(opt: torch.optim.Optimizer, tensors: dict, doc: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    for pid, extra in doc.get("state", {}).items():
        state.setdefault(int(pid), {}).update(extra)
    groups = []
    for saved, current in zip(doc["param_groups"], opt.state_dict()["param_groups"]):
        group = dict(saved)
        for k, v in current.items():  # JSON turned tuples (betas) into lists
            if isinstance(v, tuple) and isinstance(group.get(k), list):
                group[k] = tuple(group[k])
        groups.append(group)
    return {"state": state, "param_groups": groups}


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _save_checkpoint(folder: Path, *, model, opt, sched, scaler, best_state, state: dict) -> None:
    from safetensors.torch import save

    folder.mkdir(parents=True, exist_ok=True)
    opt_tensors, opt_doc = _split_optimizer_state(opt)
    meta = {"epoch": str(state["epoch"]), "format": str(CHECKPOINT_FORMAT)}
    tensors = {f"model.{k}": v for k, v in _cpu_copy(model.state_dict()).items()}
    tensors.update(opt_tensors)
    _atomic_write_bytes(folder / "last.safetensors", save(tensors, metadata=meta))
    if best_state is not None:
        _atomic_write_bytes(folder / "best.safetensors", save(best_state, metadata=meta))
    doc = dict(state)
    doc["format"] = CHECKPOINT_FORMAT
    doc["optimizer"] = opt_doc
    doc["scheduler"] = _jsonable(sched.state_dict()) if sched is not None else None
    doc["scaler"] = _jsonable(scaler.state_dict()) if scaler is not None and scaler.is_enabled() else None
    _atomic_write_bytes(folder / "state.json", json.dumps(doc, indent=1).encode())


def _load_checkpoint(folder: Path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    state_path, last_path = folder / "state.json", folder / "last.safetensors"
    if not state_path.is_file() or not last_path.is_file():
        raise InputError("resume=True but there is no checkpoint (state.json and last.safetensors) here",
                         path=folder, hint="train once with checkpoint_dir set, or pass resume=False")
    try:
        doc = json.loads(state_path.read_text(encoding="utf-8"))
        with safe_open(str(last_path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(last_path))
        best = load_file(str(folder / "best.safetensors")) if (folder / "best.safetensors").is_file() else None
    except Exception as exc:  # OSError, JSON errors, safetensors' SafetensorError
        raise ModelError(f"the checkpoint cannot be read: {exc}", path=folder) from exc
    if doc.get("format") != CHECKPOINT_FORMAT or str(doc.get("epoch")) != meta.get("epoch"):
        raise ModelError("the checkpoint is inconsistent: state.json and last.safetensors are from different "
                         "epochs (a run was probably killed while writing)", path=folder,
                         hint="delete the checkpoint folder and train again")
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    return doc, model_state, tensors, best


# --------------------------------------------------------------------------------------------
# data


def _check_dataset(data, name: str) -> None:
    if data is None:
        return
    if not isinstance(data, Dataset) and not hasattr(data, "__getitem__"):
        raise InputError(f"the {name} set must be a torch Dataset or a list of (x, y) pairs, "
                         f"got {type(data).__name__}")
    try:
        n = len(data)
    except TypeError:
        return  # an IterableDataset without a length: checked when the first epoch yields nothing
    if n == 0:
        raise InputError(f"the {name} set is empty", hint=f"give at least one (x, y) sample in the {name} set")


def _loader(data, cfg: TrainConfig, *, shuffle: bool, seed: int, pin: bool) -> DataLoader:
    g = torch.Generator()
    g.manual_seed(seed)
    return DataLoader(data, batch_size=int(cfg.batch_size), shuffle=shuffle, num_workers=int(cfg.num_workers),
                      generator=g, worker_init_fn=_seed_worker if cfg.num_workers else None,
                      pin_memory=pin)


def _split_batch(batch, where: str):
    if isinstance(batch, dict) and "image" in batch and "label" in batch:  # MONAI-style dictionaries
        return batch["image"], batch["label"]
    if isinstance(batch, (list, tuple)) and len(batch) == 2:
        return batch[0], batch[1]
    raise InputError(f"each {where} sample must be an (x, y) pair (or a dict with 'image' and 'label'), "
                     f"got a batch of type {type(batch).__name__}"
                     + (f" with {len(batch)} items" if isinstance(batch, (list, tuple)) else ""))


def _shape(t) -> str:
    return f"{tuple(t.shape)} {str(t.dtype).replace('torch.', '')}" if isinstance(t, torch.Tensor) else type(t).__name__


# --------------------------------------------------------------------------------------------
# the loop


def _checked_card(card_dict, out):
    """Validate the card before training, so that a bad card does not waste a training run."""
    if out is None:
        return card_dict
    if card_dict is None:
        raise ParameterError("a model package needs a card (name, version, inputs, outputs, labels, "
                             "training_data, intended_use, limitations, licence)", parameter="card")
    from medface.runtime.package import ModelCard

    ModelCard.from_dict(card_dict)  # raises ModelError listing every problem
    return card_dict


def _resolve_model_and_card(model_or_arch, card, out):
    card_dict: dict | None
    if card is None:
        card_dict = None
    elif isinstance(card, dict):
        card_dict = json.loads(json.dumps(card, default=str))  # a deep copy; the caller's dict is left alone
    elif dataclasses.is_dataclass(card):
        card_dict = dataclasses.asdict(card)
    else:
        raise ParameterError(f"must be a dict or a ModelCard, got {type(card).__name__}", parameter="card")

    if isinstance(model_or_arch, nn.Module):
        model = model_or_arch
        if out is not None:
            arch = (card_dict or {}).get("architecture")
            if not isinstance(arch, dict) or not arch.get("name"):
                raise ModelError("a model given as an nn.Module needs its architecture in the card "
                                 "(card['architecture'] = {'name': ..., 'args': {...}}) so that the package can "
                                 "be rebuilt", hint="or pass {'name': ..., 'args': ...} instead of the module")
        return model, _checked_card(card_dict, out)
    if isinstance(model_or_arch, dict) and "name" in model_or_arch:
        from medface.runtime.networks import build_network

        arch = {"name": str(model_or_arch["name"]), "args": dict(model_or_arch.get("args") or {})}
        model = build_network(arch["name"], arch["args"])
        if card_dict is not None:
            given = card_dict.get("architecture")
            if given and (given.get("name") != arch["name"] or dict(given.get("args") or {}) != arch["args"]):
                raise ModelError(f"the card's architecture {given} differs from the one trained {arch}")
            card_dict["architecture"] = arch
        return model, _checked_card(card_dict, out)
    raise ParameterError("must be an nn.Module or {'name': ..., 'args': {...}}, got "
                         f"{type(model_or_arch).__name__}", parameter="model_or_arch")


def _better(value: float, best: float | None, mode: str) -> bool:
    if best is None:
        return math.isfinite(value)
    return value < best if mode == "min" else value > best


def _amp_setup(device: torch.device, enabled: bool):
    """(autocast context factory, GradScaler or None). bf16 needs no scaler; fp16 does."""
    if not enabled or device.type != "cuda":
        return nullcontext, None
    from medface.runtime.device import autocast, autocast_dtype

    scaler = torch.amp.GradScaler("cuda") if autocast_dtype(device) == torch.float16 else None
    return (lambda: autocast(device)), scaler


def train(model_or_arch, train_data, val_data=None, *, loss: str | Callable = "cross_entropy",
          metrics: dict[str, Callable] | None = None, config: TrainConfig | None = None,
          card: dict | Any | None = None, out: str | os.PathLike | None = None,
          resume: bool = False, on_epoch: Callable[[dict], None] | None = None) -> TrainingResult:
    """Train a network and write it as a model package.

    ``model_or_arch`` is an ``nn.Module`` (then ``card['architecture']`` must name it) or
    ``{"name": ..., "args": {...}}`` built with :func:`medface.runtime.networks.build_network`.
    ``train_data``/``val_data`` are torch Datasets or lists of ``(x, y)`` pairs. ``loss`` is a
    name (``cross_entropy``, ``mse``, ``l1``, ``bce_with_logits``) or ``loss(outputs, targets)``.
    ``metrics`` maps a name to ``metric(outputs, targets) -> float``, computed on the whole
    validation set each epoch. ``card`` is the model card (dict or ModelCard) for the package:
    its ``metrics`` gain the best and final epoch's values, its ``training_data`` is kept.
    ``out`` is the package folder (None: no package). ``resume=True`` continues from
    ``config.checkpoint_dir``. ``on_epoch(row)`` is called after every epoch with its history row
    (e.g. to log progress where no progress bar is shown).
    """
    cfg = config or TrainConfig()
    metrics = dict(metrics or {})
    for name in metrics:
        if name in ("epoch", "train_loss", "val_loss", "lr", "time_s"):
            raise ParameterError(f"metric name {name!r} is reserved", parameter="metrics")
        if not callable(metrics[name]):
            raise ParameterError(f"metric {name!r} is not callable", parameter="metrics")
    if isinstance(loss, str):
        if loss not in _LOSSES:
            raise ParameterError(f"unknown loss {loss!r}; known: {', '.join(_LOSSES)} (or give a callable)",
                                 parameter="loss")
        loss_fn, loss_name = _LOSSES[loss], loss
    elif callable(loss):
        loss_fn, loss_name = loss, getattr(loss, "__name__", type(loss).__name__)
    else:
        raise ParameterError(f"must be a loss name or a callable, got {type(loss).__name__}", parameter="loss")

    monitor = cfg.monitor
    allowed = {"train_loss"} | ({"val_loss"} | set(metrics) if val_data is not None else set())
    if monitor not in allowed:
        if monitor == "val_loss" and val_data is None:
            monitor = "train_loss"  # nothing to validate on: watch the training loss
        else:
            raise ParameterError(f"monitor {monitor!r} is not computed; choose one of {sorted(allowed)}"
                                 + ("" if val_data is not None else " (metrics need val_data)"),
                                 parameter="monitor")
    _check_dataset(train_data, "training")
    _check_dataset(val_data, "validation")
    if resume and cfg.checkpoint_dir is None:
        raise ParameterError("resume=True needs config.checkpoint_dir", parameter="resume")

    from medface.runtime.device import resolve_device

    device = resolve_device(cfg.device)
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    _seed_everything(int(cfg.seed))  # before building the network: its initial weights are seeded
    model, card_dict = _resolve_model_and_card(model_or_arch, card, out)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        return _run(_Run(model, card_dict, train_data, val_data, loss_fn, loss_name, metrics, cfg, monitor, device,
                         out=out, resume=resume, on_epoch=on_epoch))
    finally:
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)


@dataclass
class _Run:
    """What a training run works with: fixed from its start to its end."""

    model: nn.Module
    card_dict: dict | None
    train_data: Any
    val_data: Any
    loss_fn: Callable
    loss_name: str
    metrics: dict[str, Callable]
    cfg: TrainConfig
    monitor: str
    device: torch.device
    out: str | os.PathLike | None = None
    resume: bool = False
    on_epoch: Callable[[dict], None] | None = None


@dataclass
class _Optimisation:
    """The optimizer, its schedule and mixed precision of a run."""

    opt: torch.optim.Optimizer
    sched: Any
    make_autocast: Callable
    scaler: Any

    @classmethod
    def of(cls, run: _Run) -> "_Optimisation":
        cfg = run.cfg
        opt = torch.optim.AdamW(run.model.parameters(), lr=float(cfg.lr), weight_decay=float(cfg.weight_decay))
        sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(cfg.epochs))
                 if cfg.scheduler == "cosine" else None)
        make_autocast, scaler = _amp_setup(run.device, bool(cfg.amp))
        return cls(opt, sched, make_autocast, scaler)


@dataclass
class _RunState:
    """What a run has reached: its history and early-stopping state (saved in checkpoints)."""

    history: list[dict] = field(default_factory=list)
    best_value: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    start_epoch: int = 1
    stopped_early: bool = False

    def checkpoint_doc(self, epoch: int, monitor: str, cfg: TrainConfig) -> dict:
        return {"epoch": epoch, "best_value": self.best_value, "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs, "monitor": monitor, "history": self.history,
                "config": cfg.fingerprint()}


def _run(run: _Run) -> TrainingResult:
    run.model.to(run.device)
    optim = _Optimisation.of(run)
    ckpt_dir = Path(run.cfg.checkpoint_dir) if run.cfg.checkpoint_dir is not None else None
    state = _resumed_state(run, optim, ckpt_dir) if run.resume else _RunState()
    _run_epochs(run, optim, state, ckpt_dir)
    model = run.model
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    if state.best_value is None:
        state.best_value = float("nan")
    model.eval()
    package_path = _write_package(run, state) if run.out is not None else None
    return TrainingResult(package_path=package_path, history=state.history, best_epoch=state.best_epoch,
                          best_value=float(state.best_value), stopped_early=state.stopped_early, model=model)


def _resumed_state(run: _Run, optim: _Optimisation, ckpt_dir: Path) -> _RunState:
    """The model, optimizer, schedule and scaler as checkpointed, and the run's state then."""
    cfg = run.cfg
    doc, model_state, tensors, best_state = _load_checkpoint(ckpt_dir)
    if doc.get("config") != cfg.fingerprint():
        raise ModelError(f"the checkpoint was made with other settings {doc.get('config')} than these "
                         f"{cfg.fingerprint()}; resuming would not reproduce the run", path=ckpt_dir,
                         hint="resume with the same settings (only epochs may change) or start afresh")
    try:
        run.model.load_state_dict(model_state)
        optim.opt.load_state_dict(_join_optimizer_state(optim.opt, tensors, doc["optimizer"]))
    except (RuntimeError, KeyError, ValueError) as exc:
        raise ModelError(f"the checkpoint does not fit this model: {exc}", path=ckpt_dir) from exc
    if optim.sched is not None and doc.get("scheduler"):
        optim.sched.load_state_dict(doc["scheduler"])
        optim.sched.T_max = int(cfg.epochs)  # more epochs than first planned: stretch the schedule
    if optim.scaler is not None and doc.get("scaler"):
        optim.scaler.load_state_dict(doc["scaler"])
    return _RunState(history=list(doc.get("history", [])), best_value=doc.get("best_value"),
                     best_epoch=int(doc.get("best_epoch", 0)), bad_epochs=int(doc.get("bad_epochs", 0)),
                     best_state=best_state, start_epoch=int(doc["epoch"]) + 1)


def _run_epochs(run: _Run, optim: _Optimisation, state: _RunState, ckpt_dir: Path | None) -> None:
    """Train from ``state.start_epoch`` to the last epoch or an early stop, with a progress bar
    on a terminal."""
    cfg = run.cfg
    bar = None
    if progress_enabled() and state.start_epoch <= cfg.epochs:
        from tqdm.auto import tqdm

        bar = tqdm(total=int(cfg.epochs), initial=state.start_epoch - 1, desc="training", unit="epoch",
                   leave=False, file=sys.stderr)
    try:
        for epoch in range(state.start_epoch, int(cfg.epochs) + 1):
            row = _one_epoch(run, optim, epoch)
            state.history.append(row)
            if run.on_epoch is not None:
                run.on_epoch(dict(row))
            stop = _update_early_stopping(run, state, row, epoch)
            if ckpt_dir is not None:
                _save_checkpoint(ckpt_dir, model=run.model, opt=optim.opt, sched=optim.sched, scaler=optim.scaler,
                                 best_state=state.best_state, state=state.checkpoint_doc(epoch, run.monitor, cfg))
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k not in ("epoch", "lr", "time_s")})
            if stop:
                state.stopped_early = True
                break
    finally:
        if bar is not None:
            bar.close()


def _one_epoch(run: _Run, optim: _Optimisation, epoch: int) -> dict:
    """Train and validate one epoch (reseeded from the seed and the epoch): its history row."""
    cfg, pin = run.cfg, run.device.type == "cuda"
    t0 = time.perf_counter()
    es = _epoch_seed(int(cfg.seed), epoch)
    _seed_everything(es)
    row: dict[str, Any] = {"epoch": epoch, "lr": float(optim.opt.param_groups[0]["lr"])}
    row["train_loss"] = _train_epoch(run, optim, epoch, _loader(run.train_data, cfg, shuffle=True, seed=es, pin=pin))
    if run.val_data is not None:
        row.update(_validate(run.model, optim.make_autocast, run.loss_fn, run.metrics, run.device, epoch,
                             _loader(run.val_data, cfg, shuffle=False, seed=es, pin=pin)))
    if optim.sched is not None:
        optim.sched.step()
    row["time_s"] = round(time.perf_counter() - t0, 4)
    return row


def _update_early_stopping(run: _Run, state: _RunState, row: dict, epoch: int) -> bool:
    """Keep the best weights so far; whether the run has stopped improving for ``patience`` epochs."""
    value = float(row[run.monitor])
    if _better(value, state.best_value, run.cfg.effective_mode):
        state.best_value, state.best_epoch, state.bad_epochs = value, epoch, 0
        state.best_state = _cpu_copy(run.model.state_dict())
    else:
        state.bad_epochs += 1
    return run.cfg.patience is not None and state.bad_epochs >= int(run.cfg.patience)


def _forward_loss(model, x, y, loss_fn, make_autocast, *, first: bool, where: str, epoch: int):
    out_shape = None
    try:
        with make_autocast():
            outputs = model(x)
        out_shape = _shape(outputs)
        loss = loss_fn(outputs.float(), y)
    except (RuntimeError, ValueError) as exc:
        if not first or isinstance(exc, torch.OutOfMemoryError):
            raise
        raise InputError(f"the first {where} batch does not fit the model (epoch {epoch}): inputs {_shape(x)}, "
                         f"targets {_shape(y)}, model output {out_shape or '(forward pass failed)'}: {exc}",
                         hint="check the image size and channel count the network expects, the number of "
                              "classes, and the target type the loss needs") from exc
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ParameterError(f"the loss must return a scalar tensor, got {_shape(loss)}", parameter="loss")
    return outputs, loss


def _nan_error(value: float, where: str, epoch: int, step: int | None, cfg: TrainConfig) -> ModelError:
    at = f"epoch {epoch}" + (f", step {step}" if step is not None else "")
    return ModelError(f"the {where} loss became {value} at {at}: training diverged",
                      hint=f"lower the learning rate (lr={cfg.lr:g} now, try {cfg.lr / 10:g}), set max_grad_norm, "
                           "or check the inputs and targets for NaN or inf")


def _train_epoch(run: _Run, optim: _Optimisation, epoch: int, loader) -> float:
    model, opt, scaler, cfg = run.model, optim.opt, optim.scaler, run.cfg
    model.train()
    total, count = 0.0, 0
    for step, batch in enumerate(loader, start=1):
        x, y = _split_batch(batch, "training")
        x = x.to(run.device, non_blocking=True) if isinstance(x, torch.Tensor) else x
        y = y.to(run.device, non_blocking=True) if isinstance(y, torch.Tensor) else y
        opt.zero_grad(set_to_none=True)
        _, loss = _forward_loss(model, x, y, run.loss_fn, optim.make_autocast, first=(step == 1), where="training",
                                epoch=epoch)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise _nan_error(value, "training", epoch, step, cfg)
        if scaler is not None:
            scaler.scale(loss).backward()
            if cfg.max_grad_norm is not None:
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(model.parameters(), float(cfg.max_grad_norm))
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            if cfg.max_grad_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), float(cfg.max_grad_norm))
            opt.step()
        n = len(x) if hasattr(x, "__len__") else 1
        total += value * n
        count += n
    if count == 0:
        raise InputError("the training set yielded no batches", hint="give at least one (x, y) sample")
    return total / count


@torch.no_grad()
def _validate(model, make_autocast, loss_fn, metrics, device, epoch, loader) -> dict:
    model.eval()
    total, count = 0.0, 0
    outs, targets = [], []
    for step, batch in enumerate(loader, start=1):
        x, y = _split_batch(batch, "validation")
        x = x.to(device, non_blocking=True) if isinstance(x, torch.Tensor) else x
        y = y.to(device, non_blocking=True) if isinstance(y, torch.Tensor) else y
        outputs, loss = _forward_loss(model, x, y, loss_fn, make_autocast, first=(step == 1), where="validation",
                                      epoch=epoch)
        n = len(x) if hasattr(x, "__len__") else 1
        total += float(loss) * n
        count += n
        if metrics:
            outs.append(outputs.float().cpu())
            targets.append(y.cpu() if isinstance(y, torch.Tensor) else torch.as_tensor(y))
    if count == 0:
        raise InputError("the validation set yielded no batches", hint="give at least one (x, y) sample")
    row = {"val_loss": total / count}
    if not math.isfinite(row["val_loss"]):
        raise ModelError(f"the validation loss became {row['val_loss']} at epoch {epoch}: training diverged",
                         hint="lower the learning rate, set max_grad_norm, or check the validation data")
    if metrics:
        all_out, all_y = torch.cat(outs), torch.cat(targets)
        for name, fn in metrics.items():
            row[name] = float(fn(all_out, all_y))
    return row


def _write_package(run: _Run, state: _RunState):
    from medface.runtime.package import save_package

    cfg, history = run.cfg, state.history
    card_dict = dict(run.card_dict or {})
    best = next((dict(r) for r in history if r["epoch"] == state.best_epoch), None)
    final = dict(history[-1]) if history else None
    for r in (best, final):
        if r is not None:
            r.pop("time_s", None)
    metrics = dict(card_dict.get("metrics") or {})
    metrics.update({
        "monitor": run.monitor,
        "mode": cfg.effective_mode,
        "best_epoch": state.best_epoch,
        "best_value": _jsonable(float(state.best_value)),
        "best": _jsonable(best),
        "final": _jsonable(final),
        "epochs_run": len(history),
        "stopped_early": state.stopped_early,
    })
    card_dict["metrics"] = metrics
    extra = dict(card_dict.get("extra") or {})
    extra["training"] = {"epochs": int(cfg.epochs), "batch_size": int(cfg.batch_size), "lr": float(cfg.lr),
                         "weight_decay": float(cfg.weight_decay), "seed": int(cfg.seed), "loss": run.loss_name,
                         "optimizer": "AdamW", "scheduler": cfg.scheduler, "max_grad_norm": cfg.max_grad_norm,
                         "amp": bool(cfg.amp)}
    card_dict["extra"] = extra
    return Path(save_package(run.model, card_dict, run.out))
