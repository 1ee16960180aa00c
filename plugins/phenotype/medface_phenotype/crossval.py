"""`phenotype crossval`: repeated subject-disjoint splits, so that a figure comes with the spread
a reviewer asks for instead of the luck of one split.

For split ``s`` (seed ``seed + s``) every rare condition keeps at most six subjects (GMDB's rare
disorders have six or fewer; Hsieh et al., Nature Genetics 2022), the data set is split by
subject and stratified by label exactly as `phenotype train` splits it (train, validation, test;
:func:`train.split_photos`), each method is fitted on the training and validation photos and
evaluated on the test photos: the four GMDB settings (:func:`protocol.evaluate_settings`), the
softmax head and the control AUROC (:mod:`evaluate`'s reports) and the subgroup tables. Every
top-k of every setting, the softmax top-k and the control AUROC are then summarised over the
splits as a mean with a Student-t 95 % interval (:func:`protocol.mean_interval`).

The frequent/rare division is made once, on the whole data set (``rare`` or ``min_subjects``), so
that every split trains the same head classes.

A method is anything with the :class:`EmbeddingMethod` protocol; :data:`METHODS` maps the
command's method names to factories that take the :class:`train.TrainingSettings` fields as
keywords (a factory ignores those it does not use).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from medface.data import Result
from medface.errors import InputError, ParameterError

from . import identity, protocol
from .syndromes import genes_of_labels
from .dataset import CONTROL_LABEL, read_dataset
from .evaluate import DEFAULT_KS, control_report, gallery_ranks, softmax_report, subgroup_tables, syndromic_score
from .model import fit_temperature, softmax
from .prepare import prepare_dataset
from .train import ScreeningTrainer, TrainingSettings, TrainingSplit, embed_crops, head_subset, split_photos
from .validation_doc import interval_text, write_crossval


class EmbeddingMethod(Protocol):
    name: str                      # e.g. "gestaltnet (from scratch)"
    def fit(self, ds, prepared, train_idx, val_idx, classes: list[str], seed: int) -> None: ...
    def embed(self, ds, prepared, idx) -> np.ndarray: ...          # (len(idx), D), L2-normalised
    def probabilities(self, ds, prepared, idx) -> np.ndarray | None: ...  # (len(idx), len(classes)) calibrated, or None


class GestaltNetMethod:
    """The screening network trained from scratch on each split (`phenotype train`'s training:
    cosine-margin loss, early stopping on the validation photos, temperature fitted on them),
    in a temporary package folder that lives as long as the method's last fit."""

    name = "gestaltnet (from scratch)"

    def __init__(self, epochs: int = 30, **settings):
        self.settings = _training_settings({**settings, "epochs": epochs})
        self._folder: tempfile.TemporaryDirectory | None = None
        self._temperature = 1.0
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def fit(self, ds, prepared, train_idx, val_idx, classes: list[str], seed: int) -> None:
        train_idx, val_idx = np.asarray(train_idx, int), np.asarray(val_idx, int)
        split = _head_split(ds, train_idx, val_idx, classes)
        if split.val_keep.size == 0:
            raise InputError("no validation photos of the head's classes: early stopping and the temperature "
                             "need some", path=ds.root, hint="use a data set with more subjects per condition")
        self._folder = tempfile.TemporaryDirectory(prefix="medface-crossval-")
        self._cache = {}
        trainer = ScreeningTrainer(replace(self.settings, seed=int(seed)))
        trainer.train_network(prepared.crops, split, f"cross-validation fit on {train_idx.size} photos of data set "
                                                     f"'{ds.root.name}'", self.package)
        val_logits = self._outputs(prepared, split.val_keep)[1]
        self._temperature = fit_temperature(val_logits, split.val_y)

    @property
    def package(self) -> Path:
        if self._folder is None:
            raise ParameterError("the method has not been fitted yet", hint="call fit(...) first")
        return Path(self._folder.name)

    def embed(self, ds, prepared, idx) -> np.ndarray:
        return self._outputs(prepared, np.asarray(idx, int))[0]

    def probabilities(self, ds, prepared, idx) -> np.ndarray | None:
        return softmax(self._outputs(prepared, np.asarray(idx, int))[1], self._temperature)

    def _outputs(self, prepared, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and logits of the photos ``idx``, each photo run through the network once per fit."""
        missing = np.array([i for i in dict.fromkeys(idx.tolist()) if i not in self._cache], int)
        if missing.size:
            out = embed_crops(self.package, prepared.crops[missing], device=self.settings.device)
            for i, e, z in zip(missing, out["embedding"], out["logits"]):
                self._cache[int(i)] = (e, z)
        if idx.size == 0:
            return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
        emb = np.stack([self._cache[int(i)][0] for i in idx])
        return emb / np.linalg.norm(emb, axis=1, keepdims=True), np.stack([self._cache[int(i)][1] for i in idx])


#: method names of the command -> factories taking the TrainingSettings fields as keywords
METHODS: dict[str, Callable[..., EmbeddingMethod]] = {"gestaltnet": GestaltNetMethod}
METHODS["dlib"] = identity.dlib_method            # dlib's pretrained descriptor (optional extra `identity`)
METHODS["dlib+head"] = identity.dlib_head_method  # the descriptor with a head trained on each split


def _head_split(ds, train_idx: np.ndarray, val_idx: np.ndarray, classes: list[str]) -> TrainingSplit:
    """The TrainingSplit a method's fit trains on: the head photos of the given train and validation photos."""
    labels = ds.labels
    fr = protocol.FrequentRare(tuple(c for c in classes if c != CONTROL_LABEL), ())
    return TrainingSplit(train_idx, val_idx, np.zeros(0, int), fr, list(classes),
                         *head_subset(labels, train_idx, classes), *head_subset(labels, val_idx, classes))


def method_from_name(name: str, settings: TrainingSettings) -> EmbeddingMethod:
    """The registered method ``name`` (see :data:`METHODS`), built from the training settings."""
    factory = METHODS.get(name.strip())
    if factory is None:
        raise ParameterError(f"unknown method {name!r}; known: {', '.join(sorted(METHODS))}", parameter="methods")
    return factory(**asdict(settings))


def _training_settings(settings: dict) -> TrainingSettings:
    known = {f.name for f in fields(TrainingSettings)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ParameterError(f"unknown training setting(s) {unknown}; known: {sorted(known)}")
    return TrainingSettings(**settings)


def _methods(methods, settings: TrainingSettings) -> list[EmbeddingMethod]:
    chosen = [method_from_name(m, settings) if isinstance(m, str) else m for m in methods]
    if not chosen:
        raise ParameterError("no methods to cross-validate", parameter="methods", hint="e.g. gestaltnet")
    names = [m.name for m in chosen]
    if len(set(names)) != len(names):
        raise ParameterError(f"methods must have distinct names, got {names}", parameter="methods")
    return chosen


# --------------------------------------------------------------------------------------------
# one split, one method
# --------------------------------------------------------------------------------------------

def _checked_embeddings(method: EmbeddingMethod, emb, n: int) -> np.ndarray:
    arr = np.asarray(emb, np.float64)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise InputError(f"method {method.name!r} gave embeddings of shape {arr.shape}, expected ({n}, D)")
    return arr


def _checked_probabilities(method: EmbeddingMethod, probs, n: int, n_classes: int) -> np.ndarray | None:
    if probs is None:
        return None
    arr = np.asarray(probs, np.float64)
    if arr.shape != (n, n_classes):
        raise InputError(f"method {method.name!r} gave probabilities of shape {arr.shape}, "
                         f"expected ({n}, {n_classes})")
    return arr


def _gallery_syndromic_score(emb: np.ndarray, labels: np.ndarray, gallery: np.ndarray, test: np.ndarray,
                             affected: set[str]) -> np.ndarray | None:
    """The gallery-based syndromic score of the test photos (for methods without probabilities)."""
    g = gallery[(labels[gallery] == CONTROL_LABEL) | np.isin(labels[gallery].astype(str), list(affected))]
    is_control = labels[g] == CONTROL_LABEL
    if not (is_control.any() and (~is_control).any()):
        return None
    return protocol.nearest_control_score(emb[test], emb[g], is_control)


def evaluate_split(method: EmbeddingMethod, ds, prepared, split: TrainingSplit, seed: int, ks) -> dict:
    """Fit ``method`` on the split's training and validation photos and evaluate it on its test photos."""
    method.fit(ds, prepared, split.train, split.val, list(split.classes), seed)
    fit_idx = split.gallery
    idx = np.concatenate([fit_idx, split.test])
    emb = _checked_embeddings(method, method.embed(ds, prepared, idx), idx.size)
    labels = np.asarray(ds.labels, dtype=object)[idx]
    subjects = [ds.records[i].subject for i in idx]
    gallery, test = np.arange(fit_idx.size), fit_idx.size + np.arange(split.test.size)
    frequent, rare = list(split.conditions.frequent), list(split.conditions.rare)
    report = protocol.evaluate_settings(emb, list(labels), subjects, gallery, test, frequent, rare, ks=ks,
                                        control=CONTROL_LABEL, include_confusion=False,
                                        genes=genes_of_labels(labels))
    probs = _checked_probabilities(method, method.probabilities(ds, prepared, split.test), split.test.size,
                                   len(split.classes))
    test_labels = labels[test]
    if probs is not None:
        softmax_block = softmax_report(probs, test_labels, list(split.classes), ks)
        control = control_report(probs, test_labels, list(split.classes))
        score = syndromic_score(probs, list(split.classes)) if CONTROL_LABEL in split.classes else None
    else:
        softmax_block, control = None, report["control"]
        score = _gallery_syndromic_score(emb, labels, gallery, test, set(frequent) | set(rare))
    ranks = gallery_ranks(emb, labels, gallery, test, frequent + rare)
    return {"seed": int(seed), "settings": report["settings"], "softmax": softmax_block, "control": control,
            "subgroups": subgroup_tables([ds.records[i] for i in split.test], test_labels, ranks, score),
            "n_gallery_images": int(fit_idx.size), "n_test_images": int(split.test.size)}


# --------------------------------------------------------------------------------------------
# summaries over splits
# --------------------------------------------------------------------------------------------

def _interval(values: Iterable) -> dict | None:
    """:func:`protocol.mean_interval` of the values that exist (a split may lack a figure), clipped
    to [0, 1] (every figure here is a rate, an AUROC or a difference of rates); None if none exist."""
    present = [float(v) for v in values if v is not None]
    return protocol.mean_interval(present, bounds=(0.0, 1.0)) if present else None


def _topk_intervals(blocks: Sequence[dict | None], key: str, ks) -> dict:
    return {f"top{k}": _interval(((b or {}).get(key) or {}).get(f"top{k}") for b in blocks) for k in ks}


def _subgroup_summary(per_split: Sequence[dict]) -> dict:
    """Each grouping's groups: every figure as a mean interval over splits, queries summed over
    splits; the largest gap as a mean interval over the splits where it exists."""
    out = {}
    for name in per_split[0]["subgroups"]:
        tables = [s["subgroups"][name] for s in per_split]
        if not tables[0].get("available"):
            out[name] = {k: tables[0][k] for k in ("column", "available", "reason")}
            continue
        figures = [f"top{k}" for k in tables[0]["ks"]] + ["control_auroc"]
        groups: dict[str, list[dict]] = {}
        for t in tables:
            for row in t["groups"]:
                groups.setdefault(row["group"], []).append(row)
        rows = [{"group": g, "n_queries": sum(r["n_queries"] for r in rs), "n_ranked": sum(r["n_ranked"] for r in rs),
                 "n_splits": len(rs), **{f: _interval(r[f] for r in rs) for f in figures}}
                for g, rs in groups.items()]
        gaps = {f: _interval((t["gaps"].get(f) or {}).get("gap") for t in tables) for f in figures}
        out[name] = {"column": tables[0]["column"], "available": True, "ks": tables[0]["ks"],
                     "min_group": tables[0]["min_group"], "groups": rows, "gaps": gaps, "note": tables[0]["note"]}
    return out


def summarise_method(per_split: Sequence[dict], ks) -> dict:
    """Mean and 95 % interval over the splits of every top-k of every setting, of the softmax
    top-k and of the control AUROC, and the subgroup figures."""
    settings = {name: _topk_intervals([s["settings"][name] for s in per_split], "top_k", ks)
                for name in protocol.SETTINGS}
    for name in protocol.SETTINGS:
        settings[name]["n_splits"] = sum(1 for s in per_split if s["settings"][name].get("top_k"))
    return {"settings": settings, "softmax": _topk_intervals([s["softmax"] for s in per_split], "top_k", ks),
            "control_auroc": _interval(s["control"].get("auroc") for s in per_split),
            "control_score": next((s["control"].get("score") for s in per_split if s["control"].get("score")), None),
            "subgroups": _subgroup_summary(per_split)}


def _rare_cap(ds, usable: np.ndarray, rare: Sequence[str]) -> dict:
    counts = {c: len({r.subject for r, ok in zip(ds.records, usable) if ok and r.label == c}) for c in rare}
    capped = {c: n for c, n in sorted(counts.items()) if n > protocol.GMDB_RARE_MAX_SUBJECTS}
    m = protocol.GMDB_RARE_MAX_SUBJECTS
    note = (f"rare conditions keep at most {m} subjects, as GMDB's rare disorders have (Hsieh et al. 2022); "
            + ("the data set has more for " + ", ".join(f"{c} ({n})" for c, n in capped.items())
               + f": {m} of them, drawn anew for each split, are used and the others left out"
               if capped else "no rare condition has more"))
    return {"max_subjects": m, "subjects": counts, "capped": capped, "note": note}


def _split_images(ds, split: TrainingSplit, seed: int) -> dict:
    def ids(idx):
        return [ds.records[i].image_id for i in idx]

    return {"seed": int(seed), "train": ids(split.train), "val": ids(split.val), "test": ids(split.test)}


def cross_validate(data, methods, *, splits: int = 5, seed: int = 0, ks=DEFAULT_KS, stage=None,
                   **settings) -> dict:
    """Fit and evaluate ``methods`` (:class:`EmbeddingMethod` objects or names in :data:`METHODS`)
    on ``splits`` subject-disjoint splits of the data set ``data``; ``settings`` are
    :class:`train.TrainingSettings` fields (fractions, rare conditions, epochs, device, ...).

    Returns a JSON-ready dict: the protocol, the frequent and rare conditions, the photos of each
    split (``split_images``), and per method its per-split reports and their ``summary``.
    """
    if isinstance(splits, bool) or int(splits) != splits or splits < 1:
        raise ParameterError(f"splits must be a positive integer, got {splits}", parameter="splits")
    stage = stage or (lambda text: None)
    base = _training_settings(settings)
    chosen = _methods(methods, base)
    ks = tuple(ks)
    ds = read_dataset(data)
    stage("preparing the photos: detection, quality gate, alignment")
    prepared = prepare_dataset(ds, workers=base.workers)
    usable = prepared.usable
    if usable.sum() < 10:
        raise InputError(f"only {int(usable.sum())} of {len(ds)} photos passed the quality gate; too few to "
                         "cross-validate", path=ds.root)
    labels, subjects = np.array(ds.labels)[usable], np.array(ds.subjects)[usable]
    fr = protocol.split_frequent_rare(list(labels), list(subjects), rare=base.rare, min_subjects=base.min_subjects)
    split_settings = replace(base, rare=list(fr.rare))
    per_method: dict[str, list[dict]] = {m.name: [] for m in chosen}
    split_docs = []
    for s in range(int(splits)):
        split_seed = int(seed) + s
        keep = usable.copy()
        keep[usable] = protocol.cap_subjects(list(subjects), list(labels), fr.rare, seed=split_seed)
        split = split_photos(ds, keep, replace(split_settings, seed=split_seed))
        split_docs.append(_split_images(ds, split, split_seed))
        for m in chosen:
            stage(f"split {s + 1} of {splits}: fitting and evaluating {m.name}")
            per_method[m.name].append(evaluate_split(m, ds, prepared, split, split_seed, ks))
    return {
        "protocol": ("repeated subject-disjoint splits (stratified by label; train, validation and test fractions "
                     "as `phenotype train`); per split: GMDB settings, softmax head, control AUROC, subgroups; "
                     "summary: mean and Student-t 95 % interval over splits"),
        "data": ds.root.name, "n_images": int(len(ds)), "prepared": prepared.summary(),
        "splits": int(splits), "seed": int(seed), "ks": list(ks),
        "test_fraction": base.test_fraction, "val_fraction": base.val_fraction,
        "frequent": list(fr.frequent), "rare": list(fr.rare), "control_label": CONTROL_LABEL,
        "rare_cap": _rare_cap(ds, usable, fr.rare), "split_images": split_docs,
        "methods": {name: {"per_split": runs, "summary": summarise_method(runs, ks)}
                    for name, runs in per_method.items()},
    }


def _headline(summary: dict) -> dict:
    return {"F/F top-1 %": interval_text(summary["settings"]["F/F"].get("top1"), percent=True),
            "R/F+R top-5 %": interval_text(summary["settings"]["R/F+R"].get("top5"), percent=True),
            "control AUROC": interval_text(summary["control_auroc"], percent=False)}


def crossval_command(data, out, splits: int = 5, epochs: int = 30, methods: str = "gestaltnet", rare: str = "", *,
                     seed: int = 0, device: str = "auto", context=None) -> Result:
    """CLI entry of `phenotype crossval`: crossval.json and crossval.md in ``out``."""
    names = [m.strip() for m in methods.split(",") if m.strip()]
    rare_list = [r.strip() for r in rare.split(",") if r.strip()] or None
    report = cross_validate(data, names, splits=splits, seed=seed, epochs=epochs, rare=rare_list, device=device,
                            stage=getattr(context, "stage", None))
    document = write_crossval(report, out)
    summary = {"document": str(document), "splits": report["splits"]}
    for name, block in report["methods"].items():
        summary.update({f"{name}: {k}": v for k, v in _headline(block["summary"]).items()})
    return Result(command="phenotype.crossval", summary=summary, metrics=report,
                  limits=["Intervals describe the spread over splits of one data set (the splits share most "
                          "subjects); a phantom cohort is not a patient population."])
