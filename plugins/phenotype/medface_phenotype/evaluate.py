"""`phenotype evaluate`: a screening package on GMDB's protocol, written as a validation report.

With the data set the package was trained on, the queries are the held-out test subjects
(split.json) and the gallery the training and validation photos, so that no test subject was
ever seen. With any other data set, every usable photo is a query against the package's own
gallery (for example mild cases, or a clinic's photos). Reported: the four GMDB settings
(F/F, R/R, F/F+R, R/F+R; top-1/5/10/30 averaged per condition, with chance), top-k of the
softmax head over the trained conditions, the control AUROC of the syndromic score, the
calibration error, a confusion matrix and CMC curves (protocol.py writes the document).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from medface.data import Result
from medface.errors import InputError

from . import protocol
from .dataset import CONTROL_LABEL, read_dataset
from .gallery import load_gallery
from .model import expected_calibration_error, softmax
from .prepare import prepare_dataset
from .train import SPLIT_FILE, dataset_fingerprint, embed_crops
from .validation_doc import extra_dataset_section, softmax_section, write_validation_markdown


def _screening(card) -> dict:
    extra = (card.extra or {}).get("screening")
    if not extra:
        raise InputError("this model package has no screening settings (card extra.screening): it was not made by "
                         "`medface phenotype train`", path=getattr(card, "path", None))
    return extra


def syndromic_score(probs: np.ndarray, classes: list[str], control: str = CONTROL_LABEL) -> np.ndarray:
    """1 - P(unaffected): the calibrated probability that the face carries a trained condition."""
    if control not in classes:
        raise InputError(f"the model has no '{control}' class, so it gives no syndromic score")
    return 1.0 - probs[:, classes.index(control)]


def evaluate_model(model, data, *, device: str = "auto", ks=(1, 5, 10, 30), title: str | None = None) -> dict:
    from medface.runtime import read_card

    model = Path(model)
    card = read_card(model)
    scr = _screening(card)
    classes = list(card.labels)
    temperature = float(scr["temperature"])
    ds = read_dataset(data)
    prep = prepare_dataset(ds)
    labels = np.array(ds.labels)
    subjects = np.array(ds.subjects)
    ids = [r.image_id for r in ds.records]
    split_path = model / SPLIT_FILE
    split = json.loads(split_path.read_text(encoding="utf-8")) if split_path.is_file() else {}
    same = split.get("dataset_fingerprint") == dataset_fingerprint(ds)
    usable = prep.usable
    out = embed_crops(model, prep.crops[usable], device=device)
    emb = np.zeros((len(ds), out["embedding"].shape[1]), np.float32)
    logits = np.zeros((len(ds), len(classes)), np.float32)
    emb[usable], logits[usable] = out["embedding"], out["logits"]
    probs = softmax(logits, temperature)

    frequent, rare = list(scr["frequent"]), list(scr["rare"])
    if same:
        pos = {image_id: i for i, image_id in enumerate(ids)}
        gallery_idx = np.array([pos[i] for i in split["train"] + split["val"] if usable[pos[i]]], int)
        test_idx = np.array([pos[i] for i in split["test"] if usable[pos[i]]], int)
        all_emb, all_labels, all_subjects = emb, labels, subjects
        mode = "held-out test subjects of the training data set; gallery: its training and validation photos"
    else:
        gal = load_gallery(model)
        test_idx0 = np.flatnonzero(usable)
        all_emb = np.concatenate([gal.embeddings, emb[test_idx0]])
        all_labels = np.concatenate([np.array(gal.labels), labels[test_idx0]])
        all_subjects = np.concatenate([np.array(["gallery:" + s for s in gal.subjects]), subjects[test_idx0]])
        gallery_idx = np.arange(len(gal))
        test_idx = len(gal) + np.arange(len(test_idx0))
        probs = probs[test_idx0]
        logits = logits[test_idx0]
        labels, subjects = labels[test_idx0], subjects[test_idx0]
        mode = "every usable photo of this data set as a query against the package's gallery"
    if len(test_idx) == 0:
        raise InputError("no usable test photos to evaluate", path=ds.root)
    # the gallery must hold every condition of the queries (a new condition would be unrankable)
    present = set(all_labels[test_idx]) - {CONTROL_LABEL}
    fr, ra = [c for c in frequent if c in present or not same], [c for c in rare if c in present or not same]
    report = protocol.evaluate_settings(all_emb, list(all_labels), list(all_subjects), gallery_idx, test_idx,
                                        fr, ra, ks=ks, control=CONTROL_LABEL)

    # softmax head over the trained conditions, on the test photos of trained conditions
    q_probs = probs if not same else probs[test_idx]
    q_labels = labels if not same else labels[test_idx]
    trained = [c for c in classes if c != CONTROL_LABEL]
    sel = np.isin(q_labels, trained)
    cond_probs = q_probs[:, [classes.index(c) for c in trained]]
    ranked = [[trained[j] for j in np.argsort(-row, kind="stable")] for row in cond_probs[sel]]
    soft = {"n_queries": int(sel.sum()), "n_conditions": len(trained)}
    if sel.any():
        table = protocol.topk_table(ranked, list(q_labels[sel]), ks=ks)
        soft["top_k"] = {f"top{k}": float(v) for k, v in table.mean.items()}
        soft["chance"] = {f"top{k}": float(v) for k, v in protocol.chance_topk(len(trained), ks).items()}
        conf = protocol.confusion_matrix(list(q_labels[sel]), [r[0] for r in ranked], trained)
        soft["confusion"] = {"labels": trained, "matrix": conf.tolist()}
    in_classes = np.isin(q_labels, classes)
    if in_classes.any():
        y = np.array([classes.index(c) for c in q_labels[in_classes]])
        soft["ece"] = round(expected_calibration_error(q_probs[in_classes], y), 4)
    report["softmax"] = soft

    is_control = q_labels == CONTROL_LABEL
    if CONTROL_LABEL in classes and is_control.any() and (~is_control).any():
        score = syndromic_score(q_probs, classes)
        report["control"] = {"auroc": round(protocol.control_auroc(score, is_control), 4),
                             "n_affected": int((~is_control).sum()), "n_control": int(is_control.sum()),
                             "score": "1 - calibrated P(unaffected) of the softmax head"}
    else:
        report["control"] = {"auroc": None, "reason": "no control photos among the queries"
                             if not is_control.any() else "no affected photos among the queries"}
    report.update({"title": title or f"Screening validation: {card.name} {card.version}",
                   "data": f"{card.training_data}. Evaluation data: {ds.root.name}; {mode}.",
                   "model": {"name": card.name, "version": card.version, "sha256": card.sha256},
                   "frequent": frequent, "rare": rare, "control_label": CONTROL_LABEL,
                   "n_images": int(len(ds)), "n_train_images": int(len(gallery_idx)),
                   "n_test_images": int(len(test_idx)), "prepared": prep.summary(), "ks": list(ks)})
    return report


def evaluate_command(model, data, out, mild=None, device: str = "auto") -> Result:
    """CLI entry of `phenotype evaluate`: evaluation.json, phenotype.md and figures in ``out``;
    ``mild``: a second data set (mild cases) reported separately against the package's gallery."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = evaluate_model(model, data, device=device)
    if mild is not None:
        report["mild"] = evaluate_model(model, mild, device=device)
    (out / "evaluation.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    doc = write_validation_markdown(report, out / "phenotype.md", out / "figures")
    with open(doc, "a", encoding="utf-8") as fh:
        fh.write("\n" + "\n".join(softmax_section(report)) + "\n")
    if mild is not None:
        intro = (f"Mild cases, reported separately because they overlap the normal range by design "
                 f"(docs/phantom.md): every usable photo of `{Path(mild).name}` is a query against the package's "
                 f"gallery ({report['mild']['n_train_images']} photos). {report['mild']['data']}")
        with open(doc, "a", encoding="utf-8") as fh:
            fh.write("\n" + "\n".join(extra_dataset_section("Mild cases", intro, report["mild"])) + "\n")
    s = report["settings"]

    def top(name, k):
        v = (s.get(name) or {}).get("top_k") or {}
        return None if v.get(f"top{k}") is None else round(float(v[f"top{k}"]), 4)

    summary = {"F/F top-1": top("F/F", 1), "F/F top-5": top("F/F", 5), "R/F+R top-5": top("R/F+R", 5),
               "softmax top-1": (report["softmax"].get("top_k") or {}).get("top1"),
               "control AUROC": report["control"].get("auroc"), "document": str(doc)}
    if mild is not None:
        m = report["mild"]["settings"].get("F/F+R") or {}
        summary["mild F/F+R top-1"] = (m.get("top_k") or {}).get("top1")
        summary["mild control AUROC"] = report["mild"]["control"].get("auroc")
    return Result(command="phenotype.evaluate", summary=summary, metrics=report,
                  limits=["Figures hold for the evaluated data only; a phantom cohort is not a patient population."])
