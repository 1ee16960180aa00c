"""A gallery of labelled face embeddings, stored as safetensors + JSON (never a pickle).

``gallery.safetensors`` holds one float32 matrix (N x D, L2-normalised rows); ``gallery.json``
holds, row for row, the image id, subject, label and the SHA-256 of the image file (so that an
evaluation can find its queries in the gallery: leakage.py), plus the embedding model's name, version
and weight hash, so that a gallery is never ranked against embeddings of another model. Cases
are added without retraining (``medface phenotype gallery add``); the files are rewritten
atomically, so an interrupted add loses nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medface.errors import InputError, ModelError

EMBEDDINGS_FILE = "gallery.safetensors"
INDEX_FILE = "gallery.json"
FORMAT = 1


@dataclass
class Gallery:
    embeddings: np.ndarray  # (N, D) float32, unit rows
    image_ids: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    model: dict = field(default_factory=dict)  # name, version, sha256 of the embedding model
    hashes: list[str] = field(default_factory=list)  # SHA-256 of each image file ("" when unknown)

    def __post_init__(self):
        e = np.asarray(self.embeddings, np.float32)
        if e.ndim != 2:
            raise InputError(f"gallery embeddings must be an (N, D) matrix, got shape {e.shape}")
        n = len(e)
        self.hashes = list(self.hashes) or [""] * n
        if len(self.hashes) != n:
            raise InputError(f"gallery has {n} embeddings but {len(self.hashes)} image hashes")
        if not (len(self.image_ids) == len(self.subjects) == len(self.labels) == n):
            raise InputError(f"gallery has {n} embeddings but {len(self.image_ids)} ids, {len(self.subjects)} "
                             f"subjects and {len(self.labels)} labels")
        if not np.all(np.isfinite(e)):
            raise InputError("gallery embeddings contain NaN or infinite values")
        norms = np.linalg.norm(e, axis=1, keepdims=True)
        self.embeddings = e / np.maximum(norms, 1e-12)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def conditions(self) -> list[str]:
        return sorted(set(self.labels))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for label in self.labels:
            out[label] = out.get(label, 0) + 1
        return dict(sorted(out.items()))

    def add(self, embeddings: np.ndarray, image_ids, subjects, labels, hashes=None) -> "Gallery":
        """A new gallery with these cases appended (ids must be new)."""
        e = np.atleast_2d(np.asarray(embeddings, np.float32))
        if e.shape[1] != self.dim and len(self):
            raise InputError(f"embeddings have {e.shape[1]} dimensions, the gallery {self.dim}")
        clash = sorted(set(image_ids) & set(self.image_ids))
        if clash:
            raise InputError(f"image id(s) already in the gallery: {', '.join(clash[:5])}")
        return Gallery(np.concatenate([self.embeddings, e]) if len(self) else e, self.image_ids + list(image_ids),
                       self.subjects + list(subjects), self.labels + list(labels), dict(self.model),
                       self.hashes + (list(hashes) if hashes is not None else [""] * len(e)))

    def subset(self, mask) -> "Gallery":
        idx = np.flatnonzero(np.asarray(mask))
        return Gallery(self.embeddings[idx], [self.image_ids[i] for i in idx], [self.subjects[i] for i in idx],
                       [self.labels[i] for i in idx], dict(self.model), [self.hashes[i] for i in idx])

    def check_model(self, model: dict) -> None:
        """Refuse to rank embeddings of a model other than the one that made the gallery."""
        mine, theirs = self.model.get("sha256"), model.get("sha256")
        if mine and theirs and mine != theirs:
            raise ModelError(f"the gallery was built with model {self.model.get('name')} "
                             f"{self.model.get('version')} (weights {mine[:12]}...), not with the model in use "
                             f"({model.get('name')} {model.get('version')}, weights {theirs[:12]}...)",
                             hint="rebuild the gallery with this model (medface phenotype train writes one)")

    def nearest(self, query: np.ndarray, top: int | None = None) -> list[dict]:
        """Conditions ranked by cosine distance of their nearest gallery image to ``query``
        (one embedding): [{"label", "distance", "image_id", "subject"}, ...]."""
        if not len(self):
            raise InputError("the gallery is empty")
        q = np.asarray(query, np.float32).ravel()
        q = q / max(float(np.linalg.norm(q)), 1e-12)
        dist = 1.0 - self.embeddings @ q
        best: dict[str, int] = {}
        for i in np.argsort(dist, kind="stable"):
            best.setdefault(self.labels[i], int(i))
        ranked = sorted(best.items(), key=lambda kv: (float(dist[kv[1]]), kv[0]))
        out = [{"label": label, "distance": round(float(dist[i]), 5), "image_id": self.image_ids[i],
                "subject": self.subjects[i]} for label, i in ranked]
        return out if top is None else out[:top]


def save_gallery(gallery: Gallery, folder: str | os.PathLike) -> Path:
    """Write the gallery's two files into ``folder`` (created), each atomically."""
    from safetensors.numpy import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    index = {"format": FORMAT, "model": gallery.model, "dim": gallery.dim if len(gallery) else 0,
             "rows": [{"image_id": i, "subject": s, "label": lab, "sha256": h} for i, s, lab, h in
                      zip(gallery.image_ids, gallery.subjects, gallery.labels, gallery.hashes)]}
    data = save({"embeddings": np.ascontiguousarray(gallery.embeddings, np.float32)})
    for name, payload in ((EMBEDDINGS_FILE, data), (INDEX_FILE, json.dumps(index, indent=1).encode("utf-8"))):
        tmp = folder / (name + ".tmp")
        tmp.write_bytes(payload)
        os.replace(tmp, folder / name)
    return folder


def load_gallery(folder: str | os.PathLike) -> Gallery:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    folder = Path(folder)
    emb_path, index_path = folder / EMBEDDINGS_FILE, folder / INDEX_FILE
    for p in (emb_path, index_path):
        if not p.is_file():
            raise InputError(f"not a gallery: {p.name} is missing", path=folder,
                             hint="a gallery folder holds gallery.safetensors and gallery.json")
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        rows = index["rows"]
        tensors = load(emb_path.read_bytes())
        emb = tensors["embeddings"]
    except (json.JSONDecodeError, KeyError, TypeError, SafetensorError, UnicodeDecodeError) as exc:
        raise InputError(f"the gallery cannot be read: {type(exc).__name__}: {exc}", path=folder) from exc
    if index.get("format") != FORMAT:
        raise InputError(f"unknown gallery format {index.get('format')!r}", path=folder)
    if len(rows) != len(emb):
        raise InputError(f"gallery.json lists {len(rows)} rows but gallery.safetensors holds {len(emb)} "
                         f"embeddings: the gallery is inconsistent", path=folder)
    return Gallery(emb, [r["image_id"] for r in rows], [r["subject"] for r in rows], [r["label"] for r in rows],
                   dict(index.get("model") or {}), [str(r.get("sha256") or "") for r in rows])
