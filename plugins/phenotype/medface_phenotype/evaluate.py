"""`phenotype evaluate`: a screening package on GMDB's protocol, written as a validation report.

With the data set the package was trained on, the queries are the held-out test subjects
(split.json) and the gallery the training and validation photos, so that no test subject was
ever seen. With any other data set, every usable photo is a query against the package's own
gallery (for example mild cases, or a clinic's photos). Reported: the four GMDB settings
(F/F, R/R, F/F+R, R/F+R; top-1/5/10/30 averaged per condition, with chance), top-k of the
softmax head over the trained conditions, the control AUROC of the syndromic score, the
calibration error, a confusion matrix and CMC curves; for every top-k the hits pooled over images
with a one-sided binomial p-value against chance (``counts``), and top-1, top-5 and control AUROC
within subgroups of sex, age band, skin tone and image style (``subgroups``). validation_doc.py
writes the document.

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
from .syndromes import genes_of_labels
from .dataset import CONTROL_LABEL, read_dataset
from .gallery import load_gallery
from .leakage import Overlap, find_overlap, refuse_or_drop
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
    overlap: Overlap
    query_records: np.ndarray  # the data set's record index of each query, in query order


def _held_out_queries(split: dict, ds, usable: np.ndarray, emb: np.ndarray, probs: np.ndarray, *,
                      drop: bool) -> _Queries:
    """The training data set: its test subjects against its training and validation photos."""
    labels, subjects = np.array(ds.labels), np.array(ds.subjects)
    pos = {r.image_id: i for i, r in enumerate(ds.records)}
    gallery_idx = np.array([pos[i] for i in split["train"] + split["val"] if usable[pos[i]]], int)
    test_idx = np.array([pos[i] for i in split["test"] if usable[pos[i]]], int)
    hashes = ds.hashes()
    overlap = find_overlap(subjects[gallery_idx], subjects[test_idx],
                           gallery_hashes=[hashes[i] for i in gallery_idx], query_hashes=[hashes[i] for i in test_idx],
                           gallery_emb=emb[gallery_idx], query_emb=emb[test_idx],
                           gallery_ids=[ds.records[i].image_id for i in gallery_idx],
                           query_ids=[ds.records[i].image_id for i in test_idx],
                           gallery_labels=labels[gallery_idx], query_labels=labels[test_idx])
    test_idx = test_idx[refuse_or_drop(overlap, drop=drop, what="evaluating on the package's own test split")]
    return _Queries(emb, labels, subjects, gallery_idx, test_idx, probs[test_idx], labels[test_idx],
                    "held-out test subjects of the training data set; gallery: its training and validation photos",
                    overlap, test_idx)


def _gallery_queries(model: Path, ds, usable: np.ndarray, emb: np.ndarray, probs: np.ndarray, *,
                     drop: bool) -> _Queries:
    """Another data set: every usable photo against the package's gallery (none of them may be a
    gallery subject or image: leakage.py)."""
    gal = load_gallery(model)
    idx = np.flatnonzero(usable)
    overlap = find_overlap(gal.subjects, np.array(ds.subjects)[idx], gallery_hashes=gal.hashes,
                           query_hashes=ds.hashes(idx), gallery_emb=gal.embeddings, query_emb=emb[idx],
                           gallery_ids=gal.image_ids, query_ids=[ds.records[i].image_id for i in idx],
                           gallery_labels=gal.labels, query_labels=np.array(ds.labels)[idx])
    idx = idx[refuse_or_drop(overlap, drop=drop, what="evaluating this data set against the package's gallery")]
    labels, subjects = np.array(ds.labels)[idx], np.array(ds.subjects)[idx]
    return _Queries(np.concatenate([gal.embeddings, emb[idx]]), np.concatenate([np.array(gal.labels), labels]),
                    np.concatenate([np.array(gal.subjects), subjects]),
                    np.arange(len(gal)), len(gal) + np.arange(len(idx)), probs[idx], labels,
                    "every usable photo of this data set as a query against the package's gallery", overlap, idx)


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
        soft["counts"] = protocol.setting_counts(ranked, list(labels[sel]), len(trained), ks)
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


#: the groupings of the subgroup tables: name -> (metadata.csv column, value -> group)
SUBGROUPS = {
    "sex": ("sex", lambda v: str(v or "").strip() or protocol.MISSING_GROUP),
    "age band": ("age", protocol.age_band),
    "skin tone": ("skin_tone", protocol.skin_tone_group),
    "style": ("style", lambda v: str(v or "").strip() or protocol.MISSING_GROUP),
}
SUBGROUP_KS = (1, 5)


def gallery_ranks(emb: np.ndarray, labels, gallery_idx, test_idx, conditions) -> np.ndarray:
    """1-based rank of each query's true condition when the gallery photos of ``conditions``
    (frequent and rare) are ranked for it; ``inf`` where that gallery lacks the condition, NaN
    for controls."""
    labels = np.asarray(labels, dtype=object)
    gallery_idx, test_idx = np.asarray(gallery_idx, int), np.asarray(test_idx, int)
    gallery = gallery_idx[np.isin(labels[gallery_idx].astype(str), list(conditions))]
    affected = labels[test_idx] != CONTROL_LABEL
    ranks = np.where(affected, np.inf, np.nan)
    if gallery.size and affected.any():
        ranking = protocol.rank_by_gallery(emb[test_idx[affected]], emb[gallery], labels[gallery])
        ranks[affected] = protocol.true_label_ranks(ranking, list(labels[test_idx[affected]]))
    return ranks


def _group_of_each(records, column: str, to_group) -> list[str]:
    """The group of each record from its ``column`` value; a bad value names its photo."""
    groups = []
    for r in records:
        try:
            groups.append(to_group(r.extra.get(column)))
        except InputError as exc:
            raise InputError(f"photo {r.image_id!r}: {exc.message}",
                             hint=f"correct the `{column}` column of metadata.csv") from None
    return groups


def subgroup_tables(records, labels, ranks: np.ndarray, score: np.ndarray | None, *,
                    ks=SUBGROUP_KS) -> dict:
    """Subgroup figures (:func:`protocol.subgroup_report`) of the queries ``records`` for every
    grouping in :data:`SUBGROUPS`; a grouping whose column the data set lacks is reported as not
    available."""
    out = {}
    for name, (column, to_group) in SUBGROUPS.items():
        if not any(column in r.extra for r in records):
            out[name] = {"column": column, "available": False,
                         "reason": f"not available: the data set has no `{column}` column"}
            continue
        report = protocol.subgroup_report(_group_of_each(records, column, to_group), list(labels), ranks, score,
                                          control=CONTROL_LABEL, ks=ks)
        out[name] = {"column": column, "available": True, **report}
    return out


def _query_records(ds, q: _Queries) -> list:
    """The data set's record of each query, in query order, checked against the queries' labels."""
    records = [ds.records[i] for i in q.query_records]
    if [r.label for r in records] != [str(v) for v in q.query_labels]:
        raise InputError("internal: the queries do not line up with the data set's records",
                         hint="report this as a bug of medface_phenotype.evaluate")
    return records


def distribution_report(scores: np.ndarray, gate, styles: list[str]) -> dict:
    """How many queries the out-of-distribution gate lets through, overall and by image style."""
    if gate is None:
        return {"gate": None, "reason": "the package has no out-of-distribution gate"}
    inside = scores <= gate.threshold

    def rate(mask):
        n = int(mask.sum())
        return {"n": n, "in_distribution": int(inside[mask].sum()), "rate": round(float(inside[mask].mean()), 4)
                if n else None}

    styles = np.array(styles)
    return {"gate": gate.fitted.get("method"), "threshold": round(float(gate.threshold), 4),
            "quantile": gate.fitted.get("quantile"), **rate(np.ones(len(scores), bool)),
            "by_style": {st: rate(styles == st) for st in sorted(set(styles))},
            "score_quantiles": {f"q{q}": round(float(np.quantile(scores, q / 100)), 4) for q in (50, 90, 99)}
            if len(scores) else {}}


class ScreeningEvaluation:
    """A screening package evaluated on GMDB's protocol: ``evaluate(data)`` returns the report
    (a JSON-ready dict: ``settings`` with their ``counts``, ``softmax``, ``control``, ``subgroups``,
    counts of photos) without writing files."""

    def __init__(self, model, *, device: str = "auto", ks=DEFAULT_KS):
        from medface.runtime import read_card

        self.model = Path(model)
        self.card = read_card(self.model)
        self.settings = screening_settings(self.card, self.model)
        self.device, self.ks = device, tuple(ks)

    def evaluate(self, data, *, title: str | None = None, drop_overlap: bool = False) -> dict:
        """The report on ``data``; queries already in the gallery (same subject, same image file or
        an identical embedding) are refused, or with ``drop_overlap`` left out and counted."""
        card, scr, classes = self.card, self.settings, list(self.card.labels)
        ds = read_dataset(data)
        prep = prepare_dataset(ds)
        emb, probs, ood_scores = self._embed(ds, prep.usable, prep.crops)
        split_path = self.model / SPLIT_FILE
        split = json.loads(split_path.read_text(encoding="utf-8")) if split_path.is_file() else {}
        same = split.get("dataset_fingerprint") == dataset_fingerprint(ds)
        q = (_held_out_queries(split, ds, prep.usable, emb, probs, drop=drop_overlap) if same
             else _gallery_queries(self.model, ds, prep.usable, emb, probs, drop=drop_overlap))
        if len(q.test_idx) == 0:
            raise InputError("no usable test photos to evaluate" + (" once the overlapping ones are left out"
                                                                      if q.overlap else ""), path=ds.root)
        frequent, rare = list(scr["frequent"]), list(scr["rare"])
        # the gallery must hold every condition of the queries (a new condition would be unrankable)
        present = set(q.labels[q.test_idx]) - {CONTROL_LABEL}
        fr, ra = [c for c in frequent if c in present or not same], [c for c in rare if c in present or not same]
        report = protocol.evaluate_settings(q.emb, list(q.labels), list(q.subjects), q.gallery_idx, q.test_idx,
                                            fr, ra, ks=self.ks, control=CONTROL_LABEL,
                                            genes=genes_of_labels(q.labels))
        report["softmax"] = softmax_report(q.probs, q.query_labels, classes, self.ks)
        report["control"] = control_report(q.probs, q.query_labels, classes)
        score = syndromic_score(q.probs, classes) if CONTROL_LABEL in classes else None
        ranks = gallery_ranks(q.emb, q.labels, q.gallery_idx, q.test_idx, fr + ra)
        report["subgroups"] = subgroup_tables(_query_records(ds, q), q.query_labels, ranks, score)
        report["distribution"] = distribution_report(ood_scores[q.query_records], self.gate,
                                                     [ds.records[i].extra.get("style", "photo") for i in q.query_records])
        report.update({"title": title or f"Screening validation: {card.name} {card.version}",
                       "data": f"{card.training_data}. Evaluation data: {ds.root.name}; {q.mode}.",
                       "model": {"name": card.name, "version": card.version, "sha256": card.sha256},
                       "frequent": frequent, "rare": rare, "control_label": CONTROL_LABEL,
                       "n_images": int(len(ds)), "n_train_images": int(len(q.gallery_idx)),
                       "n_test_images": int(len(q.test_idx)), "prepared": prep.summary(), "ks": list(self.ks),
                       "leakage": {**q.overlap.to_dict(), "dropped": int(len(q.overlap.queries))}})
        return report

    def _embed(self, ds, usable: np.ndarray, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Embeddings, calibrated probabilities and out-of-distribution gate scores of every photo
        (zeros where unusable; scores NaN where unusable or without a gate)."""
        from .ood import load_gate

        out = embed_crops(self.model, crops[usable], device=self.device)
        emb = np.zeros((len(ds), out["embedding"].shape[1]), np.float32)
        logits = np.zeros((len(ds), len(self.card.labels)), np.float32)
        emb[usable], logits[usable] = out["embedding"], out["logits"]
        scores = np.full(len(ds), np.nan)
        self.gate = load_gate(self.model, (self.settings.get("ood") or {}).get("sha256"))
        if self.gate is not None and "features" in out:
            scores[usable] = self.gate.score(out["features"])
        return emb, softmax(logits, float(self.settings["temperature"])), scores


def evaluate_model(model, data, *, device: str = "auto", ks=DEFAULT_KS, title: str | None = None,
                   drop_overlap: bool = False) -> dict:
    """The GMDB report of ``model`` on ``data`` (see :class:`ScreeningEvaluation`)."""
    return ScreeningEvaluation(model, device=device, ks=ks).evaluate(data, title=title, drop_overlap=drop_overlap)


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


def unlabelled_report(model, folder, *, device: str = "auto", description: str = "") -> dict:
    """Photos without labels (e.g. real portraits) screened with the package: how many pass the
    quality gate, how many the out-of-distribution gate lets through and how many are given
    probabilities. Counts and score quantiles only; no file names."""
    from .screening import Screener

    folder = Path(folder)
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not paths:
        raise InputError("no PNG or JPEG photos in the folder", path=folder)
    found = Screener(model, device=device, attention=False).screen_batch(paths)
    screened = [f for f in found if f.screened]
    inside = [f for f in screened if f.in_distribution is not False]
    scores = [f.ood_score for f in screened if f.ood_score is not None]
    return {"description": description or f"unlabelled photos of `{folder.name}`", "n": len(screened),
            "photos": len(paths), "screened": len(screened), "in_distribution": len(inside),
            "rate": round(len(inside) / len(screened), 4) if screened else None,
            "with_probabilities": sum(f.syndromic_score is not None or any(c.probability is not None
                                                                          for c in f.conditions) for f in screened),
            "score_range": [round(min(scores), 3), round(max(scores), 3)] if scores else None}


def evaluate_command(model, data, out, mild=None, device: str = "auto", drop_overlap: bool = False,
                     unlabelled=None, context=None) -> Result:
    """CLI entry of `phenotype evaluate`: evaluation.json, phenotype.md and figures in ``out``;
    ``mild``: a second data set (mild cases) reported separately against the package's gallery."""
    stage = getattr(context, "stage", lambda text: None)
    evaluation = ScreeningEvaluation(model, device=device)
    stage("evaluating the held-out photos on the GMDB protocol")
    report = evaluation.evaluate(data, drop_overlap=drop_overlap)
    if mild is not None:
        stage("evaluating the mild cases against the package's gallery")
        report["mild"] = evaluation.evaluate(mild, drop_overlap=drop_overlap)
    if unlabelled is not None:
        stage("screening the unlabelled photos through the out-of-distribution gate")
        report["unlabelled"] = unlabelled_report(model, unlabelled, device=device)
    stage("writing the validation document and its figures")
    document = write_evaluation(report, out, mild_name=None if mild is None else Path(mild).name)
    result = Result(command="phenotype.evaluate", summary=evaluation_summary(report, document), metrics=report,
                    limits=["Figures hold for the evaluated data only; a phantom cohort is not a patient population."])
    for name, part in (("data", report), ("mild", report.get("mild") or {})):
        dropped = (part.get("leakage") or {}).get("dropped")
        if dropped:
            result.warnings.append(f"{dropped} queries of --{name} were already in the gallery (same subject, image "
                                   "file or identical embedding) and were left out (--drop-overlap)")
    return result
