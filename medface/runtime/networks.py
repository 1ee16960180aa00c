"""The architecture allow-list: the only networks a model package may name.

A model card says ``{"architecture": {"name": "monai.DenseNet121", "args": {...}}}``; the name
is looked up in :data:`ARCHITECTURES` and the builder is called with the args as keyword
arguments. Nothing is imported, evaluated or downloaded from a card's text. Plugins add their
own networks with :func:`register_architecture`.

MONAI networks are registered under ``monai.<Name>``. Two differences from MONAI's own
defaults: ``spatial_dims`` defaults to 2 (face images) and ``pretrained`` must be false,
because weights come from the package's ``model.safetensors`` and nothing is downloaded.
"""

from __future__ import annotations

import inspect
import itertools
import os
from typing import Callable

import torch
from torch import nn

from ..errors import ModelError

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}


def register_architecture(name: str):
    """Decorator adding a network builder (a class or function returning an ``nn.Module``) to
    the allow-list under ``name``. Re-registering a name with a different builder is an error."""
    if not isinstance(name, str) or not name or name != name.strip():
        raise ValueError(f"architecture name must be a non-empty string without spaces around it, got {name!r}")

    def decorate(builder: Callable[..., nn.Module]):
        existing = ARCHITECTURES.get(name)
        if existing is not None and existing is not builder:
            raise ValueError(f"architecture {name!r} is already registered (by {existing!r})")
        ARCHITECTURES[name] = builder
        return builder

    return decorate


#: the default budget on one network's parameters and buffers (``MEDFACE_MAX_MODEL_BYTES`` overrides)
DEFAULT_MAX_MODEL_BYTES = 2 * 1024**3
#: what a builder raises when the args do not fit it (the real build; see :func:`build_network`)
_ARG_ERRORS = (TypeError, ValueError, AssertionError, KeyError, IndexError, NotImplementedError, OverflowError,
               RuntimeError)


def max_model_bytes() -> int:
    """The budget in force on one network's size in bytes: ``MEDFACE_MAX_MODEL_BYTES`` or 2 GiB."""
    text = os.environ.get("MEDFACE_MAX_MODEL_BYTES", "").strip()
    if not text:
        return DEFAULT_MAX_MODEL_BYTES
    try:
        value = int(float(text))
    except (ValueError, OverflowError):
        raise ModelError(f"MEDFACE_MAX_MODEL_BYTES={text!r} is not a number of bytes",
                         hint="unset it or give a whole number, e.g. 4000000000") from None
    return value


def _builder(name, args) -> tuple[Callable[..., nn.Module], dict]:
    if not isinstance(name, str) or name not in ARCHITECTURES:
        raise ModelError(f"unknown architecture {name!r}: it is not on medface's allow-list",
                         hint=f"known architectures: {', '.join(sorted(ARCHITECTURES))}; a plugin can add one "
                              f"with medface.runtime.register_architecture")
    args = {} if args is None else args
    if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
        raise ModelError(f"arguments of architecture {name!r} must be a JSON object of keyword arguments, "
                         f"got {type(args).__name__}")
    return ARCHITECTURES[name], args


def _shown(args: dict) -> str:
    text = repr(args)
    return text if len(text) <= 300 else text[:300] + "...}"


def _rejected(name: str, args: dict, exc: BaseException) -> ModelError:
    message = str(exc)
    message = message if len(message) <= 300 else message[:300] + "..."
    return ModelError(f"architecture {name!r} rejected its args {_shown(args)}: {type(exc).__name__}: {message}",
                      hint="fix 'architecture.args' in card.json to match the network's parameters")


def network_bytes(name: str, args: dict | None = None) -> int | None:
    """Bytes the parameters and buffers of ``name(**args)`` would take, found by building it on
    torch's ``meta`` device (shapes only: nothing is allocated, so ``width=4096`` costs
    milliseconds). ``None`` when the builder cannot run on the meta device (it computes with
    tensors while it is built); :class:`ModelError` when it rejects the args."""
    builder, args = _builder(name, args)
    try:
        with torch.device("meta"):
            model = builder(**args)
    except ModelError:
        raise
    except (RuntimeError, NotImplementedError):  # a builder that needs real tensors: unknown here
        return None
    except _ARG_ERRORS as exc:
        raise _rejected(name, args, exc) from exc
    if not isinstance(model, nn.Module):
        raise ModelError(f"builder of architecture {name!r} returned {type(model).__name__}, not a torch.nn.Module")
    tensors = itertools.chain(model.parameters(), model.buffers())
    return int(sum(t.numel() * t.element_size() for t in tensors))


def check_network_size(name: str, args: dict | None = None) -> int | None:
    """:func:`network_bytes`, or a :class:`ModelError` when it exceeds :func:`max_model_bytes`
    (before anything is allocated)."""
    size, limit = network_bytes(name, args), max_model_bytes()
    if size is not None and size > limit:
        raise ModelError(f"architecture {name!r} with args {_shown(args or {})} would need {size / 1e9:,.1f} GB "
                         f"for its weights, more than the budget of {limit / 1e9:,.1f} GB; the card's "
                         f"architecture args are wrong or tampered with",
                         hint="fix 'architecture.args' in card.json; set MEDFACE_MAX_MODEL_BYTES to allow larger "
                              "networks, if the model is genuine")
    return size


def build_network(name: str, args: dict | None = None, *, check_size: bool = True) -> nn.Module:
    """Build the allow-listed network ``name`` with keyword arguments ``args``.

    Raises :class:`ModelError` for an unknown name (listing the known ones), arguments the
    builder rejects (naming them) or a network larger than the budget
    (:func:`check_network_size`, checked before anything is allocated; ``check_size=False``
    for a caller that has checked it already, or trusts the args).
    """
    builder, args = _builder(name, args)
    if check_size:
        check_network_size(name, args)
    try:
        model = builder(**args)
    except ModelError:
        raise
    except MemoryError as exc:
        raise ModelError(f"architecture {name!r} with args {_shown(args)} does not fit in memory",
                         hint="fix 'architecture.args' in card.json") from exc
    except _ARG_ERRORS as exc:
        raise _rejected(name, args, exc) from exc
    if not isinstance(model, nn.Module):
        raise ModelError(f"builder of architecture {name!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


# ----------------------------------------------------------------------------- medface networks


@register_architecture("medface.SmallCNN")
class SmallCNN(nn.Module):
    """A compact 2D CNN classifier and embedder for tests, demos and small screening models.

    ``depth`` blocks of (3x3 conv, batch norm, ReLU, 2x2 max-pool) doubling the width, global
    average pooling, a linear embedding of ``embedding_dim`` and a linear head of
    ``num_classes`` logits. With ``num_classes=0`` the forward pass returns the embedding.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2, width: int = 16, embedding_dim: int = 64,
                 depth: int = 3):
        super().__init__()
        for key, value, low in (("in_channels", in_channels, 1), ("num_classes", num_classes, 0),
                                ("width", width, 1), ("embedding_dim", embedding_dim, 1), ("depth", depth, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{key} must be an integer >= {low}, got {value!r}")
        layers: list[nn.Module] = []
        channels = in_channels
        for i in range(depth):
            out = width * 2**i
            layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            channels = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.embedding = nn.Linear(channels, embedding_dim)
        self.head = nn.Linear(embedding_dim, num_classes) if num_classes > 0 else None
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(torch.flatten(self.pool(self.features(x)), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.embed(x)
        return e if self.head is None else self.head(torch.relu(e))


# ----------------------------------------------------------------------------- MONAI networks


def _monai_builder(attr: str, *, spatial_key: str | None = "spatial_dims", pretrained: bool = False):
    """A builder that imports ``monai.networks.nets.<attr>`` when first called (keeping medface's
    import cheap), defaults ``spatial_key`` to 2 and refuses ``pretrained=True``."""

    def build(**args):
        import monai.networks.nets as nets

        factory = getattr(nets, attr)
        args = dict(args)
        if pretrained:
            if args.get("pretrained"):
                raise ModelError(f"architecture 'monai.{attr}': pretrained=true would download weights; medface "
                                 f"never downloads at run time",
                                 hint="set pretrained to false (the weights come from model.safetensors)")
            args["pretrained"] = False
        if spatial_key is not None:
            args.setdefault(spatial_key, 2)
        return factory(**args)

    build.__name__ = build.__qualname__ = f"build_monai_{attr}"
    build.__doc__ = f"monai.networks.nets.{attr} (spatial_dims defaults to 2; no pretrained download)."
    return build


for _attr, _kw in {
    "DenseNet121": dict(pretrained=True),
    "DenseNet169": dict(pretrained=True),
    "EfficientNetBN": dict(pretrained=True),
    "ResNet": dict(),
    "resnet10": dict(pretrained=True),
    "resnet18": dict(pretrained=True),
    "resnet34": dict(pretrained=True),
    "resnet50": dict(pretrained=True),
    "UNet": dict(),
    "BasicUNet": dict(),
    "Classifier": dict(spatial_key=None),
    "Regressor": dict(spatial_key=None),
}.items():
    register_architecture(f"monai.{_attr}")(_monai_builder(_attr, **_kw))
del _attr, _kw


def architecture_signature(name: str) -> inspect.Signature | None:
    """The call signature of a registered builder (for error messages and docs), if known."""
    builder = ARCHITECTURES.get(name)
    if builder is None:
        return None
    try:
        return inspect.signature(builder)
    except (TypeError, ValueError):  # pragma: no cover
        return None
