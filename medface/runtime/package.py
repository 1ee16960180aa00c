"""Model packages: a folder holding ``model.safetensors`` and ``card.json``.

The card describes the network (an allow-listed architecture and its args), its inputs and
outputs in the spirit of MONAI's ``network_data_format``, labels, preprocessing, training data,
metrics, intended use, limitations, licence and the sha256 of the weights. Loading checks,
in this order: the card is valid; the folder holds ``model.safetensors`` and no pickle weight
file; a package a plugin ships (pinned with :func:`pin_package`) has exactly the card and
weights shipped with the plugin's code; the architecture is on the allow-list and its weights
fit the size budget (measured without allocating; not for a pinned package, whose architecture
args are the shipped ones, though its weight file's size is still checked); the weights' sha256 matches the card (before
anything is deserialised); the state dict fits the network exactly. See docs/runtime.md.

The card's sha256 is an *integrity* check (a damaged copy is refused); whoever can rewrite the
weights can rewrite the card too. *Authenticity* comes only from a pin: hashes kept in a
plugin's code (``model_hashes.py``) for the packages it bundles.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import InputError, ModelError
from .device import prepare_model, resolve_device, unwrap_model
from .networks import ARCHITECTURES, build_network, check_network_size, max_model_bytes

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "card.json"
CARD_VERSION = "1"
#: weight files that would need pickle to read; a package holding one is refused.
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt", ".tar", ".joblib", ".npy", ".npz")
#: the largest card.json read (a card is a few kilobytes; this bounds a hostile one)
MAX_CARD_BYTES = 16 * 1024 * 1024
#: room for the safetensors header beyond the tensors' bytes
_HEADER_ALLOWANCE = 64 * 1024 * 1024

_TENSOR_SPEC = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "minLength": 1},
        "format": {"type": "string"},
        "num_channels": {"type": "integer", "minimum": 0},
        "spatial_shape": {"type": "array", "items": {"type": ["integer", "string"]}},
        "dtype": {"type": "string"},
        "value_range": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
        "is_patch_data": {"type": "boolean"},
        "channel_def": {"type": "object"},
    },
}

CARD_SCHEMA: dict = {
    "type": "object",
    "required": ["name", "version", "architecture", "inputs", "outputs", "labels", "training_data",
                 "intended_use", "limitations", "licence"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "version": {"type": "string", "minLength": 1},
        "architecture": {
            "type": "object",
            "required": ["name", "args"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string", "minLength": 1}, "args": {"type": "object"}},
        },
        "inputs": {"type": "object", "minProperties": 1, "additionalProperties": _TENSOR_SPEC},
        "outputs": {"type": "object", "minProperties": 1, "additionalProperties": _TENSOR_SPEC},
        "labels": {"type": "array", "items": {"type": "string"}},
        "preprocessing": {"type": "object"},
        "training_data": {"type": "string", "minLength": 1},
        "metrics": {"type": "object"},
        "intended_use": {"type": "string", "minLength": 1},
        "limitations": {"type": "string", "minLength": 1},
        "licence": {"type": "string", "minLength": 1},
        "sha256": {"type": "string", "pattern": "^([0-9a-f]{64})?$"},
        "framework": {"type": "object"},
        "created": {"type": "string"},
        "card_version": {"type": "string", "enum": [CARD_VERSION]},
        "extra": {"type": "object"},
    },
}


def _problems(data: Any) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(CARD_SCHEMA)
    out = []
    for err in sorted(validator.iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        where = ".".join(str(p) for p in err.absolute_path)
        if err.validator == "required":
            missing = [k for k in err.validator_value if not isinstance(err.instance, dict) or k not in err.instance]
            for key in missing:
                out.append(f"missing key '{where + '.' if where else ''}{key}'")
        elif err.validator == "additionalProperties" and err.validator_value is False:
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            for key in extra:
                out.append(f"unknown key '{where + '.' if where else ''}{key}' (put free-form fields under 'extra')")
        else:
            out.append(f"'{where or '(card)'}': {err.message}")
    return list(dict.fromkeys(out))  # one 'required' error per missing key repeats the whole list


def _invalid(problems: list[str], path=None) -> ModelError:
    err = ModelError("invalid model card:\n" + "\n".join(f"  - {p}" for p in problems), path=path,
                     hint="fix card.json; docs/runtime.md shows a complete example")
    err.problems = list(problems)
    return err


@dataclass
class ModelCard:
    """What a model is, what it takes and returns, what it was trained on and may be used for.

    ``training_data`` must say plainly whether the data were synthetic (e.g. "synthetic:
    medface phantom cohort, seed 7"). ``sha256`` is filled by :func:`save_package`.
    """

    name: str
    version: str
    architecture: dict
    inputs: dict
    outputs: dict
    labels: list[str]
    training_data: str
    intended_use: str
    limitations: str
    licence: str
    preprocessing: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    sha256: str = ""
    framework: dict = field(default_factory=dict)
    created: str = ""
    card_version: str = CARD_VERSION
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))  # a deep, JSON-clean copy

    @classmethod
    def from_dict(cls, data: dict, *, path=None) -> "ModelCard":
        """Validate ``data`` (every problem is listed in one :class:`ModelError`) and build a card."""
        if not isinstance(data, dict):
            raise _invalid([f"a model card must be a JSON object, not {type(data).__name__}"], path)
        _check_depth(data, path)
        problems = _problems(data)
        if problems:
            raise _invalid(problems, path)
        try:
            return cls(**json.loads(json.dumps(data)))
        except (ValueError, RecursionError) as exc:  # an int of more than 4300 digits, a cycle
            raise _invalid([f"the card holds a value that cannot be stored as JSON: {exc}"], path) from None

    @property
    def is_synthetic(self) -> bool:
        return "synthetic" in self.training_data.lower()


def _check_depth(data, path) -> None:
    from ..io.limits import check_json_depth

    try:
        check_json_depth(data, path, what="model card")
    except InputError as exc:
        raise ModelError(exc.message, path=path, hint=exc.hint) from None


@dataclass
class ModelPackage:
    """A loaded model package: the network (eval mode, on ``device``), its card and folder.

    ``authenticated`` is True when the package is one a plugin ships and pins
    (:func:`pin_package`) and it matched the pinned hashes; False for any other package, whose
    card sha256 proves only that the weights are intact."""

    model: nn.Module
    card: ModelCard
    path: Path
    device: torch.device
    authenticated: bool = False

    @property
    def labels(self) -> list[str]:
        return list(self.card.labels)

    @property
    def sha256(self) -> str:
        return self.card.sha256


def _framework() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"torch": torch.__version__.split("+")[0]}
    for name in ("monai", "safetensors"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    from ..version import __version__

    out["medface"] = __version__
    return out


def _now() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    t = (_dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc) if epoch and epoch.isdigit()
         else _dt.datetime.now(_dt.timezone.utc))
    return t.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _state_dict_for_saving(model: nn.Module) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in unwrap_model(model).state_dict().items():
        if not isinstance(value, torch.Tensor):
            raise ModelError(f"state dict entry {key!r} is a {type(value).__name__}, not a tensor; "
                             f"safetensors can only store tensors")
        # a private contiguous CPU copy: breaks shared storage (tied weights) and channels-last layout
        out[key] = value.detach().to("cpu").contiguous().clone()
    return out


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def card_json(card: ModelCard) -> bytes:
    """The canonical bytes of ``card.json`` (sorted keys, two-space indent, final newline)."""
    return (json.dumps(card.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def save_package(model: nn.Module, card: ModelCard | dict, folder: str | os.PathLike) -> Path:
    """Write ``folder/model.safetensors`` and ``folder/card.json`` (sha256 filled in) atomically.

    The same weights and card give byte-identical files. ``framework`` and ``created`` are
    filled when empty (``created`` from ``SOURCE_DATE_EPOCH`` when set, else now, UTC).
    The card's architecture is checked against the allow-list and the model's state dict.
    """
    from safetensors.torch import save

    card = ModelCard.from_dict(card.to_dict() if isinstance(card, ModelCard) else card)
    arch = card.architecture["name"]
    if arch not in ARCHITECTURES:
        raise ModelError(f"card names unknown architecture {arch!r}; a saved package could not be loaded",
                         hint=f"known architectures: {', '.join(sorted(ARCHITECTURES))}")
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot create model package folder: {exc}", path=folder) from exc
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise ModelError(f"refusing to write a package beside pickle weight file(s) {', '.join(pickles)}: it "
                         f"would be refused when loaded", path=folder, hint="remove them or choose an empty folder")
    tensors = _state_dict_for_saving(model)
    data = save(tensors, metadata={"format": "pt"})
    card.sha256 = hashlib.sha256(data).hexdigest()
    if not card.framework:
        card.framework = _framework()
    if not card.created:
        card.created = _now()
    card.card_version = CARD_VERSION
    _atomic_write(folder / WEIGHTS_FILE, data)
    _atomic_write(folder / CARD_FILE, card_json(card))
    return folder


def read_card(folder: str | os.PathLike) -> ModelCard:
    """Read and validate ``folder/card.json`` (or a card file path)."""
    path = Path(folder)
    if path.is_dir():
        path = path / CARD_FILE
    if not path.is_file():  # also refuses a folder, a named pipe or a device named card.json
        raise ModelError(f"model card {CARD_FILE} not found", path=path,
                         hint="a model package is a folder with model.safetensors and card.json")
    size = path.stat().st_size
    if size > MAX_CARD_BYTES:
        raise ModelError(f"model card is {size:,} bytes, more than the {MAX_CARD_BYTES:,} a card may have",
                         path=path, hint="a model card is a small JSON file; this one is not a card")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ModelError(f"model card is not UTF-8 text: {exc}", path=path) from exc
    except json.JSONDecodeError as exc:
        raise ModelError(f"model card is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                         path=path) from exc
    except RecursionError:
        raise ModelError("model card nests too deeply to be read", path=path,
                         hint="fix card.json: a card nests a few levels deep") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise ModelError(f"model card holds a number that cannot be read: {exc}", path=path,
                         hint="fix card.json") from None
    return ModelCard.from_dict(data, path=path)


# ----------------------------------------------------------------------------- pinned packages


@dataclass(frozen=True)
class PackagePin:
    """What a plugin's code says a package it ships must be: the sha256 of ``model.safetensors``
    and of the card's content (:func:`card_content_sha256`: architecture and args, labels,
    settings, everything), and who pinned it (for messages)."""

    weights_sha256: str
    card_sha256: str
    owner: str = ""


_PINS: dict[str, PackagePin] = {}


def card_content_sha256(card: ModelCard | dict) -> str:
    """sha256 of a card's content as canonical JSON (sorted keys, no spaces): any change of a
    value (an architecture arg, a label, a threshold) changes it; re-indenting the file does not."""
    data = card.to_dict() if isinstance(card, ModelCard) else ModelCard.from_dict(card).to_dict()
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def package_hashes(folder: str | os.PathLike) -> dict[str, str]:
    """The two values a pin holds, computed from a package on disk (for ``model_hashes.py``)."""
    folder = Path(folder)
    return {"weights_sha256": _sha256_file(folder / WEIGHTS_FILE),
            "card_sha256": card_content_sha256(read_card(folder))}


def _pin_key(folder) -> str:
    return os.path.normcase(os.path.realpath(os.fspath(folder)))


def pin_package(folder: str | os.PathLike, *, weights_sha256: str, card_sha256: str, owner: str = "") -> None:
    """Declare that the package in ``folder`` (one a plugin ships) must have exactly these hashes;
    :func:`load_package` and :func:`verify_package` then refuse any other content there.
    Plugins call this from the module that registers their architectures (``model_hashes.py``)."""
    for label, value in (("weights_sha256", weights_sha256), ("card_sha256", card_sha256)):
        if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise ValueError(f"{label} must be 64 lower-case hex digits, got {value!r}")
    _PINS[_pin_key(folder)] = PackagePin(weights_sha256, card_sha256, owner)


def package_pin(folder: str | os.PathLike) -> PackagePin | None:
    """The pin of the package in ``folder``, or None for a package no plugin ships."""
    return _PINS.get(_pin_key(folder))


def _pin_problem(folder: Path, card: ModelCard, pin: PackagePin) -> str:
    """Empty when the card is the pinned one (and so names the pinned weights' sha256)."""
    if card_content_sha256(card) == pin.card_sha256:
        return ""
    owner = f"with {pin.owner}" if pin.owner else "with the plugin that ships it"
    if card.sha256 != pin.weights_sha256:
        what = (f"its weights' sha256 in {CARD_FILE} is {card.sha256 or 'missing'}, not the "
                f"{pin.weights_sha256} shipped {owner}: the weights were replaced and the card rewritten to match")
    else:
        what = (f"its {CARD_FILE} is not the card shipped {owner} (content sha256 {card_content_sha256(card)}, "
                f"pinned {pin.card_sha256}): the architecture, its args, labels or settings were changed")
    return (f"the bundled model package {folder} is not authentic: {what}; reinstall the plugin (or, if you "
            f"rebuilt the model on purpose, update the plugin's model_hashes.py)")


def _weights_problems(folder: Path) -> tuple[list[str], Path]:
    weights = folder / WEIGHTS_FILE
    problems = []
    pickles = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        problems.append(f"refusing pickle weight file(s) {', '.join(pickles)} in {folder}: medface loads weights "
                        f"only from {WEIGHTS_FILE} (convert with safetensors.torch.save_file and delete them)")
    if not weights.is_file():
        problems.append(f"{weights} is missing: a model package needs {WEIGHTS_FILE} beside {CARD_FILE}")
    return problems, weights


def _sha_mismatch(weights: Path, actual: str, expected: str) -> str:
    return (f"{weights} is tampered or corrupt: sha256 {actual} does not match the expected {expected} "
            f"from {CARD_FILE}; get a fresh copy of the package")


def verify_package(folder: str | os.PathLike) -> list[str]:
    """Every problem with a package, without deserialising the weights (an empty list: fine)."""
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder} is not a folder: a model package is a folder with {WEIGHTS_FILE} and {CARD_FILE}"]
    problems: list[str] = []
    card = None
    try:
        card = read_card(folder)
    except ModelError as exc:
        problems += [f"{CARD_FILE}: {p}" for p in getattr(exc, "problems", [])] or [str(exc)]
    weight_problems, weights = _weights_problems(folder)
    problems += weight_problems
    if card is None:
        return problems
    if card.architecture["name"] not in ARCHITECTURES:
        problems.append(f"{CARD_FILE}: unknown architecture {card.architecture['name']!r} "
                        f"(known: {', '.join(sorted(ARCHITECTURES))})")
    pin = package_pin(folder)
    if pin is not None and _pin_problem(folder, card, pin):
        problems.append(_pin_problem(folder, card, pin))
    if not card.sha256:
        problems.append(f"{CARD_FILE}: no sha256 of {WEIGHTS_FILE}; re-save the package with save_package")
    if weights.is_file() and card.sha256:
        actual = _sha256_file(weights)
        if actual != card.sha256:
            problems.append(_sha_mismatch(weights, actual, card.sha256))
    if weights.is_file() and not problems:
        try:
            from safetensors import safe_open

            with safe_open(str(weights), framework="pt") as fh:  # reads the JSON header only
                stored = set(fh.keys())
            expected = set(build_network(card.architecture["name"], card.architecture["args"]).state_dict())
        except ModelError as exc:
            problems.append(str(exc))
        except Exception as exc:
            problems.append(f"{weights}: unreadable safetensors header: {exc}")
        else:
            problems += _key_problems(weights, expected, stored)
    return problems


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _key_problems(weights: Path, expected: set[str], stored: set[str]) -> list[str]:
    out = []
    missing, unexpected = sorted(expected - stored), sorted(stored - expected)
    if missing:
        out.append(f"{weights} lacks {len(missing)} key(s) the architecture needs: {', '.join(missing)}")
    if unexpected:
        out.append(f"{weights} has {len(unexpected)} key(s) the architecture does not have: {', '.join(unexpected)}")
    return out


def _check_before_reading(folder: Path, card: ModelCard, weights: Path) -> bool:
    """The checks :func:`load_package` makes before it reads the weights: the pin (returns
    whether the package is a pinned one), the network's size (not for a pinned package: its card,
    architecture args included, is the one its plugin ships; building the network on the meta
    device costs about a second, as it imports torch's compiler), the weight file's size."""
    pin = package_pin(folder)
    problem = _pin_problem(folder, card, pin) if pin is not None else ""
    if problem:
        raise ModelError(problem)
    if not card.sha256:
        raise ModelError(f"{CARD_FILE} has no sha256 of {WEIGHTS_FILE}, so the weights cannot be checked",
                         path=folder / CARD_FILE, hint="re-save the package with medface.runtime.save_package")
    if pin is None:
        check_network_size(card.architecture["name"], card.architecture["args"])  # nothing allocated yet
    size, limit = weights.stat().st_size, max_model_bytes() + _HEADER_ALLOWANCE
    if size > limit:
        raise ModelError(f"{WEIGHTS_FILE} is {size:,} bytes, more than the model budget of {limit:,}", path=weights,
                         hint="set MEDFACE_MAX_MODEL_BYTES to allow larger models, if the package is genuine")
    return pin is not None


def load_package(folder: str | os.PathLike, *, device="auto", trust_card: bool = False) -> ModelPackage:
    """Load a model package after checking it (see the module docstring for the order).

    ``device`` goes through :func:`resolve_device`. ``trust_card=True`` skips recomputing the
    weights' sha256 (for a package already checked with :func:`verify_package` in this
    session); every other check still runs. Raises :class:`ModelError` on any problem.
    """
    from safetensors.torch import load as load_safetensors

    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError("model package folder not found", path=folder,
                         hint=f"a model package is a folder with {WEIGHTS_FILE} and {CARD_FILE}")
    card = read_card(folder)
    problems, weights = _weights_problems(folder)
    if problems:
        raise ModelError("; ".join(problems))
    pinned = _check_before_reading(folder, card, weights)
    data = weights.read_bytes()  # hashed and parsed from the same bytes: no swap in between
    if not trust_card:
        actual = hashlib.sha256(data).hexdigest()
        if actual != card.sha256:  # for a pinned package, card.sha256 is the pinned one
            raise ModelError(_sha_mismatch(weights, actual, card.sha256))
    dev = resolve_device(device)
    model = build_network(card.architecture["name"], card.architecture["args"], check_size=False)  # checked above
    try:
        state = load_safetensors(data)
    except Exception as exc:  # SafetensorError and friends
        raise ModelError(f"cannot read weights: {exc}", path=weights) from exc
    key_problems = _key_problems(weights, set(model.state_dict()), set(state))
    if key_problems:
        raise ModelError("weights do not fit architecture " + repr(card.architecture["name"]) + ": "
                         + "; ".join(key_problems), hint="the card's architecture args may be wrong")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"weights do not fit architecture {card.architecture['name']!r}: {exc}", path=weights,
                         hint="the card's architecture args may be wrong") from exc
    model = prepare_model(model, dev)
    return ModelPackage(model=model, card=card, path=folder, device=dev, authenticated=pinned and not trust_card)
