"""The out-of-distribution gate: does a face look like the photos the screening model learned?

A network trained on one kind of image (the demo model: phantom renders) gives confident
probabilities for anything, real portraits included, so its probabilities mean something only
for inputs like its training data. The gate measures that with the Mahalanobis distance of the
network's own activations (Lee et al., NeurIPS 2018): for each of the encoder's four stages, the
channel means of its activations (``GestaltNet`` output ``features``) are modelled as one
Gaussian fitted on the training photos (Ledoit-Wolf shrinkage of the covariance, Ledoit & Wolf
2004); a photo's score is the largest, over the stages, of its squared distance divided by the
median squared distance of the training photos. Low stages see texture and lighting, high
stages face shape, so a real photo is caught by the first and an odd face by the last.

The threshold is a quantile (:data:`IN_QUANTILE`) of the scores of the *validation* photos,
which the Gaussians never saw, so about that share of new photos from the training
distribution passes; the rate on held-out test photos is reported by ``phenotype evaluate``.
A photo above the threshold is *off-distribution*: screening withholds its probabilities and
syndromic score and shows the gallery matches as similarity only.

The gate is two files of a screening package, ``ood.safetensors`` (means and precision
matrices) and ``ood.json`` (stage sizes, scales, threshold, how it was fitted).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medface.errors import InputError

ARRAYS_FILE, INDEX_FILE = "ood.safetensors", "ood.json"
FORMAT = 1
#: share of in-distribution photos the threshold lets through, set on the validation photos
IN_QUANTILE = 0.99
#: fewest training and validation photos a gate is fitted on (a package trained on fewer has none)
MIN_TRAIN, MIN_VAL = 10, 5
METHOD = "max over encoder stages of Mahalanobis distance^2 / its median on the training photos (Lee et al. 2018)"


def stage_sizes(width: int) -> tuple[int, ...]:
    """Channels of GestaltNet's four encoder stages for an encoder ``width``."""
    return (width, 2 * width, 4 * width, 8 * width)


@dataclass
class OODGate:
    """Per-stage Gaussians and the threshold of the gate (see the module's docstring)."""

    sizes: tuple[int, ...]
    means: list[np.ndarray]
    precisions: list[np.ndarray]
    scales: np.ndarray  # median squared distance of the training photos, per stage
    threshold: float
    fitted: dict  # counts and quantile, for the card and the validation document

    def _split(self, features: np.ndarray) -> list[np.ndarray]:
        f = np.atleast_2d(np.asarray(features, np.float64))
        if f.shape[1] != sum(self.sizes):
            raise InputError(f"the gate expects {sum(self.sizes)} stage features, got {f.shape[1]}: it belongs to "
                             "another network")
        return np.split(f, np.cumsum(self.sizes)[:-1], axis=1)

    def stage_scores(self, features: np.ndarray) -> np.ndarray:
        """(N, stages) squared Mahalanobis distances divided by the training photos' medians."""
        parts = self._split(features)
        d2 = [np.einsum("ij,jk,ik->i", p - m, prec, p - m) for p, m, prec in zip(parts, self.means, self.precisions)]
        return np.stack(d2, axis=1) / self.scales

    def score(self, features: np.ndarray) -> np.ndarray:
        """(N,) gate scores: the largest stage score of each photo."""
        return self.stage_scores(features).max(axis=1)

    def in_distribution(self, features: np.ndarray) -> np.ndarray:
        """(N,) True where the photo's score is within the threshold."""
        return self.score(features) <= self.threshold


def _gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.covariance import LedoitWolf

    lw = LedoitWolf().fit(x)
    return lw.location_, lw.precision_


def fit_gate(train_features: np.ndarray, val_features: np.ndarray, sizes, *, quantile: float = IN_QUANTILE) -> OODGate:
    """Fit the stage Gaussians on the training photos and set the threshold at ``quantile`` of the
    validation photos' scores."""
    train = np.asarray(train_features, np.float64)
    val = np.asarray(val_features, np.float64)
    if len(train) < MIN_TRAIN or len(val) < MIN_VAL:
        raise InputError(f"the gate needs at least 10 training and 5 validation photos, got {len(train)} and "
                         f"{len(val)}")
    if not 0.5 <= quantile < 1.0:
        raise InputError(f"the gate's quantile must be in [0.5, 1), got {quantile}")
    sizes = tuple(int(s) for s in sizes)
    parts = np.split(train, np.cumsum(sizes)[:-1], axis=1)
    gaussians = [_gaussian(p) for p in parts]
    gate = OODGate(sizes, [g[0] for g in gaussians], [g[1] for g in gaussians], np.ones(len(sizes)), np.inf, {})
    gate.scales = np.maximum(np.median(gate.stage_scores(train), axis=0), 1e-12)
    val_scores = gate.score(val)
    gate.threshold = float(np.quantile(val_scores, quantile))
    gate.fitted = {"method": METHOD, "quantile": quantile, "train_photos": int(len(train)),
                   "val_photos": int(len(val)), "val_in_distribution": float(np.mean(val_scores <= gate.threshold))}
    return gate


def save_gate(gate: OODGate, folder) -> str:
    """Write the gate's two files into a package folder (atomically); returns the SHA-256 of the
    arrays file, which the card records."""
    import hashlib

    from safetensors.numpy import save

    folder = Path(folder)
    tensors = {"scales": np.asarray(gate.scales, np.float64)}
    for k, (m, p) in enumerate(zip(gate.means, gate.precisions)):
        tensors[f"mean_{k}"], tensors[f"precision_{k}"] = np.asarray(m, np.float64), np.asarray(p, np.float64)
    data = save(tensors)
    index = {"format": FORMAT, "sizes": list(gate.sizes), "threshold": gate.threshold, **gate.fitted}
    for name, payload in ((ARRAYS_FILE, data), (INDEX_FILE, json.dumps(index, indent=1).encode("utf-8"))):
        tmp = folder / (name + ".tmp")
        tmp.write_bytes(payload)
        os.replace(tmp, folder / name)
    return hashlib.sha256(data).hexdigest()


def load_gate(folder, sha256: str | None = None) -> OODGate | None:
    """The package's gate, or None for a package without one; an InputError when its files are
    unreadable or the arrays do not match ``sha256`` (the card's record)."""
    import hashlib

    from safetensors import SafetensorError
    from safetensors.numpy import load

    folder = Path(folder)
    arrays, index_path = folder / ARRAYS_FILE, folder / INDEX_FILE
    if not arrays.is_file() and not index_path.is_file():
        return None
    try:
        data = arrays.read_bytes()
        index = json.loads(index_path.read_text(encoding="utf-8"))
        tensors = load(data)
        sizes = tuple(int(s) for s in index["sizes"])
        gate = OODGate(sizes, [tensors[f"mean_{k}"] for k in range(len(sizes))],
                       [tensors[f"precision_{k}"] for k in range(len(sizes))], tensors["scales"],
                       float(index["threshold"]), {k: v for k, v in index.items() if k not in ("format", "sizes",
                                                                                             "threshold")})
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError, SafetensorError) as exc:
        raise InputError(f"the package's out-of-distribution gate cannot be read: {type(exc).__name__}: {exc}",
                         path=folder) from exc
    if sha256 and hashlib.sha256(data).hexdigest() != sha256:
        raise InputError(f"{ARRAYS_FILE} does not match the hash in the package's card: the gate was changed",
                         path=folder, hint="retrain the package, or restore its ood files")
    return gate
