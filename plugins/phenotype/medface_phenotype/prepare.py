"""Prepare a whole data set: every photo through the screening path (decode, detect, quality
gate, align), with the aligned crops cached so that training and evaluation don't detect twice.

The cache lives in ``$MEDFACE_CACHE_DIR/phenotype`` (:func:`medface.cache.folder`) and is keyed
by the CSV's bytes, each photo's size and modification time, the detector's name and version
and the alignment template, so any change to the photos or the pipeline prepares them again.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medface.errors import MedfaceError

from .align import TEMPLATE_112
from .dataset import FaceDataset
from .faces import MODEL_SIZE, prepare

CACHE_FORMAT = 1


@dataclass
class PreparedSet:
    """Crops (N, 112, 112, 3) uint8 for every record; ``usable[i]`` is False where the photo
    could not be read or the quality gate refused it (``reasons[i]`` says why)."""

    crops: np.ndarray
    usable: np.ndarray
    reasons: list[str]

    def summary(self) -> dict:
        refused: dict[str, int] = {}
        for ok, reason in zip(self.usable, self.reasons):
            if not ok:
                key = reason.split(":")[0].split("(")[0].strip()[:80]
                refused[key] = refused.get(key, 0) + 1
        return {"photos": int(len(self.usable)), "usable": int(self.usable.sum()), "refused": refused}


def _cache_key(dataset: FaceDataset, detector: str) -> str:
    from medface.face.detect import get_detector

    h = hashlib.sha256()
    h.update(json.dumps([CACHE_FORMAT, detector, getattr(get_detector(detector), "version", "?"),
                         TEMPLATE_112.tolist(), MODEL_SIZE]).encode())
    for r in dataset.records:
        st = r.path.stat()
        h.update(f"{r.image_id}|{r.path}|{st.st_size}|{st.st_mtime_ns}\n".encode("utf-8"))
    return h.hexdigest()[:24]


def _cache_path(key: str) -> Path:
    """One file per data set and pipeline version (never pruned: each data set has its own)."""
    from medface import cache

    return cache.folder("phenotype") / f"crops-{key}.npz"


def _one(path: Path, detector: str) -> tuple[np.ndarray | None, str]:
    from medface.io import read_image

    try:
        face = prepare(read_image(path).pixels, detector=detector)
    except MedfaceError as exc:
        return None, f"unreadable: {exc}"
    if face.crop is None or face.quality.refused:
        return face.crop, face.quality.verdict
    return face.crop, ""


def prepare_dataset(dataset: FaceDataset, *, detector: str = "mediapipe", workers: int = 2,
                    cache: bool = True) -> PreparedSet:
    """Crops and verdicts for every record of ``dataset`` (in record order)."""
    key = _cache_key(dataset, detector)
    path = _cache_path(key)
    if cache and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return PreparedSet(z["crops"], z["usable"], [str(s) for s in z["reasons"]])
    paths = [r.path for r in dataset.records]
    with ThreadPoolExecutor(max(1, int(workers))) as pool:
        results = list(pool.map(lambda p: _one(p, detector), paths))
    crops = np.zeros((len(paths), MODEL_SIZE, MODEL_SIZE, 3), np.uint8)
    usable = np.zeros(len(paths), bool)
    reasons = []
    for i, (crop, reason) in enumerate(results):
        if crop is not None:
            crops[i] = crop
        usable[i] = crop is not None and not reason
        reasons.append(reason)
    out = PreparedSet(crops, usable, reasons)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, crops=crops, usable=usable, reasons=np.array(reasons, dtype=str))
        os.replace(tmp, path)
    return out
