"""`phenotype train`: a screening model package (network + gallery + split) from a GMDB-layout
data set, through the shared runtime's training loop.

Steps: every photo goes through the screening path (prepare.py); subjects are split into
train / validation / test (subject-disjoint, stratified; the test subjects are never seen);
conditions with few subjects are *rare* and left out of the softmax head, as in GMDB, so that
the evaluation can test matching them through the gallery alone; the network trains with a
cosine-margin loss, early stopping on validation accuracy and a cosine learning-rate schedule;
the softmax temperature is fitted on the validation photos; the gallery holds the embeddings
of every train and validation photo of every condition (frequent and rare).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from medface.data import Result
from medface.errors import InputError, ParameterError

from . import protocol
from .dataset import CONTROL_LABEL, read_dataset
from .faces import MODEL_SIZE
from .explain import mean_face, save_reference_face
from .gallery import Gallery, save_gallery
from .ood import MIN_TRAIN, MIN_VAL, OODGate, fit_gate, save_gate, stage_sizes
from .model import cosface_loss, fit_temperature
from .prepare import prepare_dataset

SPLIT_FILE = "split.json"
MARGIN, SCALE = 0.25, 16.0


class CropDataset(torch.utils.data.Dataset):
    """Aligned uint8 crops as float tensors in [0, 1], with light augmentation for training:
    mirror, +-4 deg rotation, +-4 % scale, +-3 px shift, brightness and contrast +-15 %."""

    def __init__(self, crops: np.ndarray, targets: np.ndarray, augment: bool):
        self.crops, self.targets, self.augment = crops, np.asarray(targets, np.int64), augment

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, i: int):
        img = self.crops[i]
        if self.augment:
            import cv2

            r = torch.rand(7).numpy()
            angle, scale = (r[0] - 0.5) * 8.0, 1.0 + (r[1] - 0.5) * 0.08
            m = cv2.getRotationMatrix2D((MODEL_SIZE / 2 - 0.5, MODEL_SIZE / 2 - 0.5), angle, scale)
            m[:, 2] += (r[2:4] - 0.5) * 6.0
            img = cv2.warpAffine(img, m, (MODEL_SIZE, MODEL_SIZE), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
            if r[4] < 0.5:
                img = img[:, ::-1]
            x = img.astype(np.float32) / 255.0
            x = (x - x.mean()) * (1.0 + (r[5] - 0.5) * 0.3) + x.mean() * (1.0 + (r[6] - 0.5) * 0.3)
            x = np.clip(x, 0.0, 1.0)
        else:
            x = img.astype(np.float32) / 255.0
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))), int(self.targets[i])


def embed_crops(package_dir: Path, crops: np.ndarray, *, device: str = "auto", batch_size: int = 64) -> dict:
    """Embeddings (flip TTA), logits and, when the network gives them, the stage features of the
    out-of-distribution gate, of aligned crops through the runtime's Predictor."""
    from medface.runtime import Predictor

    preds = Predictor(package_dir, device=device, batch_size=batch_size, num_workers=0).predict(list(crops))
    if preds.failures:
        raise InputError(f"{len(preds.failures)} crops failed in the network, e.g. {preds.failures[0]}")
    keys = [k for k in ("embedding", "logits", "features") if preds.outputs and k in preds.outputs[0]]
    return {k: np.stack([o[k] for o in preds.outputs]).astype(np.float32) for k in keys}


def _split_ids(ds, usable, test_fraction, val_fraction, seed):
    idx = np.flatnonzero(usable)
    labels = [ds.records[i].label for i in idx]
    subjects = [ds.records[i].subject for i in idx]
    tr, te = protocol.subject_disjoint_split(subjects, labels, test_fraction=test_fraction, seed=seed)
    sub_labels = [labels[i] for i in tr]
    sub_subjects = [subjects[i] for i in tr]
    tr2, va = protocol.subject_disjoint_split(sub_subjects, sub_labels, test_fraction=val_fraction, seed=seed + 1)
    return idx[tr[tr2]], idx[tr[va]], idx[te]


def dataset_fingerprint(ds) -> str:
    import hashlib

    h = hashlib.sha256()
    for r in ds.records:
        h.update(f"{r.image_id}|{r.subject}|{r.label}\n".encode("utf-8"))
    return h.hexdigest()


def _limitations(training_data: str) -> str:
    text = ("Trained and evaluated only on the data named in training_data; performance on other populations, "
            "cameras, ages and conditions is unknown.")
    if training_data.startswith("synthetic"):
        text = ("Learned synthetic phantom faces only (rendered condition presets that shift single measurements); "
                "not validated on patients or on any real photograph, and its output on a real face means nothing "
                "clinically. " + text)
    return text


def _log_epoch(row: dict) -> None:
    if os.environ.get("MEDFACE_QUIET"):
        return
    print(f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}, "
          f"val loss {row.get('val_loss', float('nan')):.4f}, val accuracy {row.get('accuracy', float('nan')):.3f} "
          f"({row['time_s']:.0f} s)", file=sys.stderr, flush=True)


def _describe(ds, prep) -> str:
    """The card's training_data line; says "synthetic" when every photo is a phantom render."""
    synthetic = all("synthetic" in str(r.extra.get("source", "")).lower() for r in ds.records)
    counts = {}
    for r in ds.records:
        counts[r.label] = counts.get(r.label, 0) + 1
    what = ("synthetic: medface phantom faces (rendered condition presets, no patient data)" if synthetic
            else "photos of the data set")
    return (f"{what}; data set '{ds.root.name}', {len(ds)} photos of {len(set(ds.subjects))} subjects, "
            f"{len(counts)} labels, {int(prep.usable.sum())} passed the quality gate")


@dataclass
class TrainingSettings:
    """How to train a screening package (every field has the command's default)."""

    rare: list[str] | None = None  # conditions kept out of the softmax head; None: by min_subjects
    min_subjects: int = 10
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    width: int = 32
    embedding_dim: int = 128
    test_fraction: float = 0.25
    val_fraction: float = 0.15
    seed: int = 0
    device: str = "auto"
    patience: int = 8
    name: str = "phenotype-screening"
    version: str = "0.1.0"
    training_data: str | None = None  # the card's training_data line; default: described from the data
    workers: int = 2


@dataclass
class TrainingSplit:
    """Photo indices of the subject-disjoint split, the frequent/rare division and the classes of
    the softmax head, with the train and validation photos of those classes and their targets."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    conditions: protocol.FrequentRare
    classes: list[str]
    train_keep: np.ndarray
    train_y: np.ndarray
    val_keep: np.ndarray
    val_y: np.ndarray

    @property
    def gallery(self) -> np.ndarray:
        """The photos the gallery holds: every training and validation photo."""
        return np.concatenate([self.train, self.val])


@dataclass
class TrainingSummary:
    """What training made: the head's classes, the rare conditions, the fitted temperature, the
    gallery's size, photo counts and the runtime's metrics."""

    classes: list[str]
    rare: list[str]
    temperature: float
    gallery: int
    data: dict
    metrics: dict

    def to_dict(self) -> dict:
        return {"classes": self.classes, "rare": self.rare, "temperature": self.temperature,
                "gallery": self.gallery, **self.data, "metrics": self.metrics}


def head_subset(labels, idx: np.ndarray, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The photos of ``idx`` whose label is one of the head's ``classes``, and their class indices."""
    labels = np.asarray(labels, dtype=object)
    cls_index = {c: k for k, c in enumerate(classes)}
    keep = np.array([i for i in idx if labels[i] in cls_index], int)
    return keep, np.array([cls_index[labels[i]] for i in keep], np.int64)


def split_photos(ds, usable: np.ndarray, settings: TrainingSettings) -> TrainingSplit:
    """Split the usable photos by subject, divide the conditions and choose the head's classes."""
    train_idx, val_idx, test_idx = _split_ids(ds, usable, settings.test_fraction, settings.val_fraction,
                                              settings.seed)
    all_labels = np.array(ds.labels)
    seen = np.concatenate([train_idx, val_idx])
    fr = protocol.split_frequent_rare([all_labels[i] for i in seen], [ds.records[i].subject for i in seen],
                                      rare=settings.rare, min_subjects=settings.min_subjects)
    classes = sorted(fr.frequent) + ([CONTROL_LABEL] if CONTROL_LABEL in set(all_labels) else [])
    if len(classes) < 2:
        raise ParameterError(f"need at least two trained classes, got {classes}", parameter="rare")
    return TrainingSplit(train_idx, val_idx, test_idx, fr, classes, *head_subset(all_labels, train_idx, classes),
                         *head_subset(all_labels, val_idx, classes))


def package_card(settings: TrainingSettings, classes: list[str], training_data: str) -> dict:
    """The model card of a screening package (architecture, inputs, outputs, intended use)."""
    arch = {"name": "phenotype.GestaltNet",
            "args": {"num_classes": len(classes), "embedding_dim": settings.embedding_dim, "width": settings.width,
                     "scale": SCALE}}
    return {
        "name": settings.name, "version": settings.version, "architecture": arch,
        "inputs": {"image": {"type": "image", "format": "RGB", "num_channels": 3,
                             "spatial_shape": [MODEL_SIZE, MODEL_SIZE], "dtype": "float32", "value_range": [0, 1]}},
        "outputs": {"embedding": {"type": "embedding", "spatial_shape": [settings.embedding_dim], "dtype": "float32"},
                    "logits": {"type": "logits", "num_channels": len(classes), "dtype": "float32"}},
        "labels": classes,
        "preprocessing": {"detector": "mediapipe face mesh (medface.face.detect)",
                          "alignment": "5-point weighted similarity to medface_phenotype.align.TEMPLATE_112",
                          "crop_px": MODEL_SIZE, "quality_gate": "medface.face.quality + medface_phenotype.crop_quality"},
        "training_data": training_data,
        "intended_use": "Research and software testing of facial-gestalt screening pipelines. Not a medical device; "
                        "not for diagnosis or any clinical decision.",
        "limitations": _limitations(training_data),
        "licence": "Apache-2.0",
    }


def _edit_card(out: Path, edit) -> dict:
    """Read the package's card, let ``edit(doc)`` change it, write it back; returns the document."""
    from medface.runtime import CARD_FILE

    path = out / CARD_FILE
    doc = json.loads(path.read_text(encoding="utf-8"))
    edit(doc)
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return doc


def _screening_outputs(doc: dict) -> None:
    """Screening settings of the network: both outputs, mirror test-time augmentation."""
    doc["architecture"]["args"].update({"output": "both", "flip_tta": True})


class ScreeningTrainer:
    """Trains a screening package (network, gallery, calibration, split) from a GMDB-layout data
    set: ``ScreeningTrainer(epochs=10).fit(data, out)`` writes the package into ``out`` (the
    runtime's training loop writes as it goes) and returns a :class:`TrainingSummary`.
    ``stage(text)``, when given, is told when each stage begins."""

    def __init__(self, settings: TrainingSettings | None = None, *, stage=None, **overrides):
        self.settings = replace(settings or TrainingSettings(), **overrides)
        self.stage = stage or (lambda text: None)

    def fit(self, data, out) -> TrainingSummary:
        s, out = self.settings, Path(out)
        self.stage("preparing the photos: detection, quality gate, alignment")
        ds = read_dataset(data)
        prep = prepare_dataset(ds, workers=s.workers)
        if prep.usable.sum() < 10:
            raise InputError(f"only {int(prep.usable.sum())} of {len(ds)} photos passed the quality gate; "
                             f"too few to train", path=ds.root)
        split = split_photos(ds, prep.usable, s)
        self.stage(f"training the network on {len(split.train_keep)} photos")
        self.train_network(prep.crops, split, s.training_data or _describe(ds, prep), out)
        self.stage("fitting the temperature, the out-of-distribution gate and building the gallery")
        temperature, gallery, gate = self._calibrate(ds, prep.crops, split, out)
        save_gallery(gallery, out)
        ood = (_no_gate(split) if gate is None
               else {"sha256": save_gate(gate, out), "threshold": round(gate.threshold, 4), **gate.fitted})
        reference_sha = save_reference_face(reference_face(ds, prep.crops, split.train), out)
        (out / SPLIT_FILE).write_text(json.dumps(_split_document(ds, split, s), indent=1), encoding="utf-8")
        data_counts = {"prepared": prep.summary(), "train_photos": int(len(split.train)),
                       "val_photos": int(len(split.val)), "test_photos": int(len(split.test))}
        screening = {"temperature": round(temperature, 4), "control_label": CONTROL_LABEL,
                     "frequent": sorted(split.conditions.frequent), "rare": sorted(split.conditions.rare),
                     "gallery_size": len(gallery), "margin": MARGIN, "scale": SCALE, "ood": ood,
                     "reference_face_sha256": reference_sha}
        doc = _edit_card(out, lambda d: d.setdefault("extra", {}).update(screening=screening, data=data_counts))
        return TrainingSummary(split.classes, sorted(split.conditions.rare), temperature, len(gallery), data_counts,
                               doc.get("metrics", {}))

    def train_network(self, crops: np.ndarray, split: TrainingSplit, training_data: str, out: Path) -> None:
        """Train the network on ``split``'s head photos into the package folder ``out`` (its card
        set for screening: both outputs, mirror test-time augmentation). No gallery, no calibration."""
        from medface.runtime import TrainConfig, train
        from medface.runtime.training import accuracy

        s = self.settings
        card = package_card(s, split.classes, training_data)
        cfg = TrainConfig(epochs=s.epochs, batch_size=s.batch_size, lr=s.lr, seed=s.seed, device=s.device,
                          patience=s.patience, monitor="accuracy", mode="max", scheduler="cosine", weight_decay=5e-4)
        train(card["architecture"], CropDataset(crops[split.train_keep], split.train_y, True),
              CropDataset(crops[split.val_keep], split.val_y, False), loss=cosface_loss(MARGIN, SCALE),
              metrics={"accuracy": accuracy}, config=cfg, card=card, out=out, on_epoch=_log_epoch)
        _edit_card(out, _screening_outputs)

    def _calibrate(self, ds, crops: np.ndarray, split: TrainingSplit,
                   out: Path) -> tuple[float, Gallery, OODGate | None]:
        """The softmax temperature (on the validation photos), the gallery of every training and
        validation photo of a condition, embedded by the trained network, and the out-of-
        distribution gate (fitted on the training photos, its threshold set on the validation ones)."""
        from medface.runtime import read_card

        s = self.settings
        gal_idx = split.gallery
        emb = embed_crops(out, crops[np.concatenate([gal_idx, split.val_keep])], device=s.device)
        n_gal = len(gal_idx)
        temperature = fit_temperature(emb["logits"][n_gal:], split.val_y)
        labels = np.array(ds.labels)
        gal_mask = labels[gal_idx] != CONTROL_LABEL
        model_id = {"name": s.name, "version": s.version, "sha256": read_card(out).sha256}
        kept = gal_idx[gal_mask]
        gallery = Gallery(emb["embedding"][:n_gal][gal_mask], [ds.records[i].image_id for i in kept],
                          [ds.records[i].subject for i in kept], list(labels[kept]), model_id, ds.hashes(kept))
        n_train = len(split.train)
        gate = (fit_gate(emb["features"][:n_train], emb["features"][n_train:n_gal], stage_sizes(s.width))
                if n_train >= MIN_TRAIN and n_gal - n_train >= MIN_VAL else None)
        return temperature, gallery, gate


def _no_gate(split: TrainingSplit) -> dict:
    """The card's record of a package trained on too few photos for an out-of-distribution gate."""
    return {"sha256": None, "reason": f"no gate: {len(split.train)} training and {len(split.val)} validation photos, "
                                      f"fewer than the {MIN_TRAIN} and {MIN_VAL} a gate needs"}


def reference_face(ds, crops: np.ndarray, train_idx: np.ndarray) -> np.ndarray:
    """The attention maps' reference face: the mean aligned crop of the training photos of
    unaffected subjects (of every training photo when there are no controls)."""
    labels = np.array(ds.labels)[train_idx]
    controls = train_idx[labels == CONTROL_LABEL]
    return mean_face(crops[controls if len(controls) else train_idx])


def _split_document(ds, split: TrainingSplit, s: TrainingSettings) -> dict:
    """split.json: which photos trained, validated and tested the package, and of which data set."""
    def ids(idx):
        return [ds.records[i].image_id for i in idx]

    return {"dataset_fingerprint": dataset_fingerprint(ds), "seed": s.seed, "test_fraction": s.test_fraction,
            "val_fraction": s.val_fraction, "frequent": sorted(split.conditions.frequent),
            "rare": sorted(split.conditions.rare), "control": CONTROL_LABEL, "train": ids(split.train),
            "val": ids(split.val), "test": ids(split.test)}


def train_model(data, out, **settings) -> dict:
    """Train a screening package into ``out`` (keywords: :class:`TrainingSettings`); returns the
    summary as a dict (also written to the card)."""
    return ScreeningTrainer(**settings).fit(data, out).to_dict()


def train_command(data, out, *, rare: str = "", min_subjects: int = 10, epochs: int = 30, batch_size: int = 64,
                  lr: float = 2e-3, seed: int = 0, device: str = "auto", name: str = "phenotype-screening",
                  version: str = "0.1.0", context=None) -> Result:
    """CLI entry of `phenotype train`: the package is written into ``out`` as it trains."""
    rare_list = [r.strip() for r in rare.split(",") if r.strip()] or None
    trainer = ScreeningTrainer(rare=rare_list, min_subjects=min_subjects, epochs=epochs, batch_size=batch_size,
                               lr=lr, seed=seed, device=device, name=name, version=version,
                               stage=getattr(context, "stage", None))
    summary = trainer.fit(data, out)
    best = summary.metrics.get("best") or {}
    return Result(command="phenotype.train",
                  summary={"package": str(out), "classes": len(summary.classes), "rare": ", ".join(summary.rare),
                           "gallery_photos": summary.gallery,
                           "val_accuracy": round(float(best.get("accuracy", float("nan"))), 4),
                           "temperature": round(summary.temperature, 3)},
                  metrics=summary.to_dict(),
                  limits=["Validation accuracy is on held-out subjects of the same data set; use "
                          "`medface phenotype evaluate` for the GMDB protocol."])
