"""`phenotype evaluate`: a screening package on GMDB's protocol, written as a validation report.

With the data set the package was trained on, the queries are the held-out test subjects
(split.json) and the gallery the training and validation photos, so that no test subject was
ever seen. With any other data set, every usable photo is a query against the package's own
gallery (for example mild cases, or a clinic's photos). Reported: the four GMDB settings
(F/F, R/R, F/F+R, R/F+R; top-1/5/10/30 averaged per condition, with chance), top-k of the
softmax head over the trained conditions, the control AUROC of the syndromic score, the
calibration error, a confusion matrix and CMC curves (validation_doc.py writes the document).

The logic is :class:`ScreeningEvaluation` (a report dict, no files); the command is an adapter
that calls it and then the one writer, :func:`validation_doc.write_evaluation`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medface.data import Result
from medface.errors import InputError

from . import protocol
from .dataset import CONTROL_LABEL, read_dataset
from .gallery import load_gallery
from .model import expected_calibration_error, softmax
from .prepare import prepare_dataset
from .screening import screening_settings
from .train import SPLIT_FILE, dataset_fingerprint, embed_crops
from .validation_doc import write_evaluation

DEFAULT_KS = (1, 5, 10, 30)


def syndromic_score(probs: np.ndarray, classes: list[str], control: str = CONTROL_LABEL) -> np.ndarray:
    """1 - P(unaffected): the calibrated probability that the face carries a trained condition."""
    if control not in classes:
        raise InputError(f"the model has no '{control}' class, so it gives no syndromic score")
    return 1.0 - probs[:, classes.index(control)]


@dataclass
class _Queries:
    """Embeddings, labels and subjects of gallery and query photos together (indexed by
    ``gallery_idx`` and ``test_idx``), and the queries' calibrated probabilities and labels."""

    emb: np.ndarray
    labels: np.ndarray
    subjects: np.ndarray
    gallery_idx: np.ndarray
    test_idx: np.ndarray
    probs: np.ndarray
    query_labels: np.ndarray
    mode: str


def _held_out_queries(split: dict, ds, usable: np.ndarray, emb: np.ndarray, probs: np.ndarray) -> _Queries:
    """The training data set: its test subjects against its training and validation photos."""
    labels, subjects = np.array(ds.labels), np.array(ds.subjects)
    pos = {r.image_id: i for i, r in enumerate(ds.records)}
    gallery_idx = np.array([pos[i] for i in split["train"] + split["val"] if usable[pos[i]]], int)
    test_idx = np.array([pos[i] for i in split["test"] if usable[pos[i]]], int)
    return _Queries(emb, labels, subjects, gallery_idx, test_idx, probs[test_idx], labels[test_idx],
                    "held-out test subjects of the training data set; gallery: its training and validation photos")


def _gallery_queries(model: Path, ds, usable: np.ndarray, emb: np.ndarray, probs: np.ndarray) -> _Queries:
    """Another data set: every usable photo against the package's gallery."""
    gal = load_gallery(model)
    idx = np.flatnonzero(usable)
    labels, subjects = np.array(ds.labels)[idx], np.array(ds.subjects)[idx]
    return _Queries(np.concatenate([gal.embeddings, emb[idx]]), np.concatenate([np.array(gal.labels), labels]),
                    np.concatenate([np.array(["gallery:" + s for s in gal.subjects]), subjects]),
                    np.arange(len(gal)), len(gal) + np.arange(len(idx)), probs[idx], labels,
                    "every usable photo of this data set as a query against the package's gallery")


def softmax_report(probs: np.ndarray, labels: np.ndarray, classes: list[str], ks) -> dict:
    """Top-k, chance, confusion and calibration of the softmax head over the trained conditions."""
    trained = [c for c in classes if c != CONTROL_LABEL]
    sel = np.isin(labels, trained)
    cond_probs = probs[:, [classes.index(c) for c in trained]]
    ranked = [[trained[j] for j in np.argsort(-row, kind="stable")] for row in cond_probs[sel]]
    soft = {"n_queries": int(sel.sum()), "n_conditions": len(trained)}
    if sel.any():
        table = protocol.topk_table(ranked, list(labels[sel]), ks=ks)
        soft["top_k"] = {f"top{k}": float(v) for k, v in table.mean.items()}
        soft["chance"] = {f"top{k}": float(v) for k, v in protocol.chance_topk(len(trained), ks).items()}
        conf = protocol.confusion_matrix(list(labels[sel]), [r[0] for r in ranked], trained)
        soft["confusion"] = {"labels": trained, "matrix": conf.tolist()}
    in_classes = np.isin(labels, classes)
    if in_classes.any():
        y = np.array([classes.index(c) for c in labels[in_classes]])
        soft["ece"] = round(expected_calibration_error(probs[in_classes], y), 4)
    return soft


def control_report(probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    """Control AUROC of the syndromic score (1 - calibrated P(unaffected)), or why there is none."""
    is_control = labels == CONTROL_LABEL
    if CONTROL_LABEL in classes and is_control.any() and (~is_control).any():
        score = syndromic_score(probs, classes)
        return {"auroc": round(protocol.control_auroc(score, is_control), 4),
                "n_affected": int((~is_control).sum()), "n_control": int(is_control.sum()),
                "score": "1 - calibrated P(unaffected) of the softmax head"}
    return {"auroc": None, "reason": "no control photos among the queries"
            if not is_control.any() else "no affected photos among the queries"}


class ScreeningEvaluation:
    """A screening package evaluated on GMDB's protocol: ``evaluate(data)`` returns the report
    (a JSON-ready dict: ``settings``, ``softmax``, ``control``, counts) without writing files."""

    def __init__(self, model, *, device: str = "auto", ks=DEFAULT_KS):
        from medface.runtime import read_card

        self.model = Path(model)
        self.card = read_card(self.model)
        self.settings = screening_settings(self.card, self.model)
        self.device, self.ks = device, tuple(ks)

    def evaluate(self, data, *, title: str | None = None) -> dict:
        card, scr, classes = self.card, self.settings, list(self.card.labels)
        ds = read_dataset(data)
        prep = prepare_dataset(ds)
        emb, probs = self._embed(ds, prep.usable, prep.crops)
        split_path = self.model / SPLIT_FILE
        split = json.loads(split_path.read_text(encoding="utf-8")) if split_path.is_file() else {}
        same = split.get("dataset_fingerprint") == dataset_fingerprint(ds)
        q = (_held_out_queries(split, ds, prep.usable, emb, probs) if same
             else _gallery_queries(self.model, ds, prep.usable, emb, probs))
        if len(q.test_idx) == 0:
            raise InputError("no usable test photos to evaluate", path=ds.root)
        frequent, rare = list(scr["frequent"]), list(scr["rare"])
        # the gallery must hold every condition of the queries (a new condition would be unrankable)
        present = set(q.labels[q.test_idx]) - {CONTROL_LABEL}
        fr, ra = [c for c in frequent if c in present or not same], [c for c in rare if c in present or not same]
        report = protocol.evaluate_settings(q.emb, list(q.labels), list(q.subjects), q.gallery_idx, q.test_idx,
                                            fr, ra, ks=self.ks, control=CONTROL_LABEL)
        report["softmax"] = softmax_report(q.probs, q.query_labels, classes, self.ks)
        report["control"] = control_report(q.probs, q.query_labels, classes)
        report.update({"title": title or f"Screening validation: {card.name} {card.version}",
                       "data": f"{card.training_data}. Evaluation data: {ds.root.name}; {q.mode}.",
                       "model": {"name": card.name, "version": card.version, "sha256": card.sha256},
                       "frequent": frequent, "rare": rare, "control_label": CONTROL_LABEL,
                       "n_images": int(len(ds)), "n_train_images": int(len(q.gallery_idx)),
                       "n_test_images": int(len(q.test_idx)), "prepared": prep.summary(), "ks": list(self.ks)})
        return report

    def _embed(self, ds, usable: np.ndarray, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and calibrated probabilities of every photo (zeros where unusable)."""
        out = embed_crops(self.model, crops[usable], device=self.device)
        emb = np.zeros((len(ds), out["embedding"].shape[1]), np.float32)
        logits = np.zeros((len(ds), len(self.card.labels)), np.float32)
        emb[usable], logits[usable] = out["embedding"], out["logits"]
        return emb, softmax(logits, float(self.settings["temperature"]))


def evaluate_model(model, data, *, device: str = "auto", ks=DEFAULT_KS, title: str | None = None) -> dict:
    """The GMDB report of ``model`` on ``data`` (see :class:`ScreeningEvaluation`)."""
    return ScreeningEvaluation(model, device=device, ks=ks).evaluate(data, title=title)


def _top(report: dict, setting: str, k: int) -> float | None:
    v = (report["settings"].get(setting) or {}).get("top_k") or {}
    return None if v.get(f"top{k}") is None else round(float(v[f"top{k}"]), 4)


def evaluation_summary(report: dict, document) -> dict:
    """The headline figures of a report and its document (and of its mild cases, when it has them)."""
    summary = {"F/F top-1": _top(report, "F/F", 1), "F/F top-5": _top(report, "F/F", 5),
               "R/F+R top-5": _top(report, "R/F+R", 5),
               "softmax top-1": (report["softmax"].get("top_k") or {}).get("top1"),
               "control AUROC": report["control"].get("auroc"), "document": str(document)}
    if "mild" in report:
        m = report["mild"]["settings"].get("F/F+R") or {}
        summary["mild F/F+R top-1"] = (m.get("top_k") or {}).get("top1")
        summary["mild control AUROC"] = report["mild"]["control"].get("auroc")
    return summary


def evaluate_command(model, data, out, mild=None, device: str = "auto", context=None) -> Result:
    """CLI entry of `phenotype evaluate`: evaluation.json, phenotype.md and figures in ``out``;
    ``mild``: a second data set (mild cases) reported separately against the package's gallery."""
    stage = getattr(context, "stage", lambda text: None)
    evaluation = ScreeningEvaluation(model, device=device)
    stage("evaluating the held-out photos on the GMDB protocol")
    report = evaluation.evaluate(data)
    if mild is not None:
        stage("evaluating the mild cases against the package's gallery")
        report["mild"] = evaluation.evaluate(mild)
    stage("writing the validation document and its figures")
    document = write_evaluation(report, out, mild_name=None if mild is None else Path(mild).name)
    return Result(command="phenotype.evaluate", summary=evaluation_summary(report, document), metrics=report,
                  limits=["Figures hold for the evaluated data only; a phantom cohort is not a patient population."])
