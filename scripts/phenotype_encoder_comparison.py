"""Compare face encoders for screening on repeated subject-disjoint splits (issue 15).

Methods (crossval.METHODS): ``gestaltnet`` (the screening network trained from scratch on each
split), ``dlib`` (dlib's pretrained identity descriptor, gallery matching only) and ``dlib+head``
(the descriptor with a cosine-margin head trained on each split). Writes ``comparison.json`` (the
whole cross-validation report, plus the real portraits' block) and ``comparison.md`` (mean and
Student-t 95 % interval over the splits of F/F and R/F+R top-1/top-5, softmax top-1 and control
AUROC per method) into ``--out``.

With ``--real FOLDER`` every portrait in the folder (PNG/JPEG) is also run through each method as
fitted on the last split: nearest gallery photo and its cosine similarity, nearest condition, the
syndromic score and the top probability where the method has probabilities.

``--check-alignment PHOTO_OR_FOLDER ...`` instead measures how the two ways of aligning faces for
dlib (identity.ALIGNMENTS) agree with dlib's own pipeline (its HOG detector and 5-point
predictor), and how much each descriptor moves under a 6 % rescale and a small shift.

    .venv/bin/python scripts/phenotype_encoder_comparison.py DATA --out OUT [--splits 5] [--epochs 30] \\
        [--rare a,b] [--min-subjects 10] [--real ../shared/data/faces]
    .venv/bin/python scripts/phenotype_encoder_comparison.py --check-alignment ../shared/data/faces phantom/images
    .venv/bin/python scripts/phenotype_encoder_comparison.py --merge A/comparison.json B/comparison.json --out OUT

Needs the optional extra `identity` (dlib-bin, face-recognition-models) for the dlib methods.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from medface.errors import InputError, MedfaceError
from medface_phenotype import protocol
from medface_phenotype.crossval import cross_validate, method_from_name
from medface_phenotype.dataset import CONTROL_LABEL, FaceDataset, Record, read_dataset
from medface_phenotype.prepare import PreparedSet, prepare_dataset
from medface_phenotype.train import TrainingSettings
from medface_phenotype.validation_doc import interval_text

DEFAULT_METHODS = ("gestaltnet", "dlib", "dlib+head")
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg")
#: the table's columns: (heading, where in a method's summary, percent?)
COLUMNS = (("F/F top-1", ("settings", "F/F", "top1"), True), ("F/F top-5", ("settings", "F/F", "top5"), True),
           ("R/F+R top-1", ("settings", "R/F+R", "top1"), True), ("R/F+R top-5", ("settings", "R/F+R", "top5"), True),
           ("softmax top-1", ("softmax", "top1"), True), ("control AUROC", ("control_auroc",), False))


# --------------------------------------------------------------------------------------------
# the comparison table
# --------------------------------------------------------------------------------------------

def _dig(block: dict, path: tuple) -> dict | None:
    for key in path:
        block = (block or {}).get(key)
    return block


def comparison_table(report: dict) -> str:
    """Markdown: one row per method, mean [95 % interval] over splits of each column."""
    head = "| method | " + " | ".join(c[0] for c in COLUMNS) + " |"
    rows = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for name, block in report["methods"].items():
        cells = [interval_text(_dig(block["summary"], path), percent=pct) for _, path, pct in COLUMNS]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _score_notes(report: dict) -> list[str]:
    return [f"- {name}: control AUROC from {block['summary'].get('control_score') or 'n/a'}"
            for name, block in report["methods"].items()]


def comparison_markdown(report: dict) -> str:
    n = report["splits"]
    lines = [f"# Encoder comparison on '{report['data']}'", "",
             f"{n} subject-disjoint splits (seed {report['seed']}), {report['n_images']} photos, "
             f"{report['prepared']['usable']} usable; frequent: {', '.join(report['frequent']) or 'none'}; "
             f"rare: {', '.join(report['rare']) or 'none'}. Mean [Student-t 95 % interval] over splits; "
             "top-k averaged per condition (GMDB). The splits share most subjects, so the intervals describe "
             "the spread over splits of this data set only.", "", comparison_table(report), "",
             *_score_notes(report), ""]
    real = report.get("real")
    if real:
        lines += [real_markdown(real), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# real portraits through each fitted method
# --------------------------------------------------------------------------------------------

def _portraits(folder: Path) -> list[Path]:
    found = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    if not found:
        raise InputError("no PNG or JPEG portraits in the folder", path=folder)
    return found


def with_portraits(ds: FaceDataset, prepared: PreparedSet, portraits: list[Path]) -> tuple[FaceDataset, PreparedSet,
                                                                                          np.ndarray]:
    """The data set and its prepared crops with the portraits appended (label "real"), and the
    portraits' indices: methods cache their outputs per index, so the portraits get new ones."""
    extra = FaceDataset(portraits[0].parent, [Record(p.name, f"real:{p.name}", "real", p) for p in portraits])
    prep = prepare_dataset(extra, cache=False)
    both = FaceDataset(ds.root, ds.records + extra.records)
    merged = PreparedSet(np.concatenate([prepared.crops, prep.crops]), np.concatenate([prepared.usable, prep.usable]),
                         prepared.reasons + prep.reasons)
    return both, merged, len(ds) + np.arange(len(portraits))


def _gallery_index(ds: FaceDataset, split_images: dict) -> np.ndarray:
    pos = {r.image_id: i for i, r in enumerate(ds.records)}
    return np.array([pos[i] for i in split_images["train"] + split_images["val"]], int)


def portrait_rows(method, ds: FaceDataset, prepared: PreparedSet, idx: np.ndarray, gallery: np.ndarray,
                  classes: list[str]) -> list[dict]:
    """Each portrait as ``method`` (fitted) sees it against the gallery photos ``gallery``."""
    ok = idx[prepared.usable[idx]]
    rows = {int(i): {"photo": ds.records[i].image_id, "verdict": prepared.reasons[i] or "acceptable"} for i in idx}
    if not ok.size:
        return list(rows.values())
    emb = method.embed(ds, prepared, np.concatenate([gallery, ok]))
    g, q = emb[:gallery.size], emb[gallery.size:]
    labels = np.asarray(ds.labels, dtype=object)[gallery]
    sims = q @ g.T
    cond = labels != CONTROL_LABEL
    probs = method.probabilities(ds, prepared, ok)
    for k, i in enumerate(ok):
        row = rows[int(i)]
        j = int(np.argmax(sims[k]))
        row.update(nearest_photo=ds.records[gallery[j]].image_id, nearest_label=str(labels[j]),
                   nearest_similarity=round(float(sims[k, j]), 4))
        if cond.any():
            jc = int(np.flatnonzero(cond)[np.argmax(sims[k, cond])])
            row.update(nearest_condition=str(labels[jc]), condition_similarity=round(float(sims[k, jc]), 4))
        row.update(_scores(probs[k] if probs is not None else None, q[k:k + 1], g, labels, classes))
    return list(rows.values())


def _scores(p: np.ndarray | None, q: np.ndarray, g: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict:
    """The syndromic score: 1 - P(unaffected) with probabilities, else the gallery's
    nearest-control minus nearest-affected distance; and the top class with probabilities."""
    if p is not None:
        out = {"top_class": classes[int(np.argmax(p))], "top_probability": round(float(p.max()), 4)}
        if CONTROL_LABEL in classes:
            out["syndromic_score"] = round(1.0 - float(p[classes.index(CONTROL_LABEL)]), 4)
            out["score"] = "1 - P(unaffected)"
        return out
    is_control = labels == CONTROL_LABEL
    if not (is_control.any() and (~is_control).any()):
        return {}
    score = protocol.nearest_control_score(q, g, is_control)[0]
    return {"syndromic_score": round(float(score), 4), "score": "nearest-control minus nearest-affected distance"}


def real_block(methods, data, report: dict, folder: Path) -> dict:
    """Every method (as fitted on the last split) on the portraits in ``folder``."""
    ds = read_dataset(data)
    prepared = prepare_dataset(ds)
    both, merged, idx = with_portraits(ds, prepared, _portraits(folder))
    gallery = _gallery_index(ds, report["split_images"][-1])
    gallery = gallery[merged.usable[gallery]]
    classes = sorted(report["frequent"]) + ([CONTROL_LABEL] if CONTROL_LABEL in set(ds.labels) else [])
    return {"folder": Path(folder).name, "gallery": f"training and validation photos of split {report['splits']}",
            "methods": {m.name: portrait_rows(m, both, merged, idx, gallery, classes) for m in methods}}


def real_markdown(real: dict) -> str:
    lines = [f"## Real portraits ('{real['folder']}'; gallery: {real['gallery']})", "",
             "| method | photo | nearest label (similarity) | nearest condition (similarity) | syndromic score | "
             "top class (p) |", "|---|---|---|---|---|---|"]
    for name, rows in real["methods"].items():
        for r in rows:
            if "nearest_label" not in r:
                lines.append(f"| {name} | {r['photo']} | not screened: {r['verdict']} | | | |")
                continue
            top = f"{r['top_class']} ({r['top_probability']:.3f})" if "top_class" in r else "–"
            cond = f"{r['nearest_condition']} ({r['condition_similarity']:.3f})" if "nearest_condition" in r else "–"
            score = f"{r['syndromic_score']:.3f}" if "syndromic_score" in r else "–"
            lines.append(f"| {name} | {r['photo']} | {r['nearest_label']} ({r['nearest_similarity']:.3f}) | {cond} | "
                         f"{score} | {top} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# alignment check (identity.py's choice of alignment)
# --------------------------------------------------------------------------------------------

def _rescaled(pixels: np.ndarray, scale: float = 1.06, dx: float = 7.0, dy: float = -5.0) -> np.ndarray:
    import cv2

    h, w = pixels.shape[:2]
    m = np.array([[scale, 0, (1 - scale) * w / 2 + dx], [0, scale, (1 - scale) * h / 2 + dy]])
    return cv2.warpAffine(pixels, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def _photo_files(items: list[str]) -> list[Path]:
    out = []
    for item in map(Path, items):
        out += _portraits(item) if item.is_dir() else [item]
    return out


def _points(shape) -> np.ndarray:
    return np.array([(p.x, p.y) for p in shape.parts()], float)


def _box_ratios(points5: np.ndarray, rect) -> tuple[float, float]:
    """dlib's detector box as (side / (eye distance + eye-mouth height), centre below the eyes /
    eye-mouth height), the two numbers identity.BOX_SIDE and BOX_DOWN were fitted to."""
    eyes, mouth = (points5[0] + points5[1]) / 2, (points5[3] + points5[4]) / 2
    across = points5[1] - points5[0]
    ed = float(np.linalg.norm(across))
    down = np.array([-across[1], across[0]]) / ed
    height = float(np.dot(mouth - eyes, down))
    centre = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
    return rect.width() / (ed + height), float(np.dot(centre - eyes, down)) / height


def check_alignment(paths: list[Path]) -> dict:
    """Per alignment: mean point error (fraction of the eye distance) and descriptor distance to
    dlib's own detector + 5-point predictor, and descriptor movement under a rescale; plus the
    detector box in the units of BOX_SIDE / BOX_DOWN."""
    import dlib

    from medface.io import read_image
    from medface_phenotype.identity import ALIGNMENTS, DlibEncoder, upright_face

    encoders = {a: DlibEncoder(alignment=a) for a in ALIGNMENTS}
    reference = encoders["predictor"]
    hog = dlib.get_frontal_face_detector()
    stats = {a: {"point_error": [], "to_dlib": [], "rescale": []} for a in ALIGNMENTS}
    boxes = []
    for path in paths:
        pixels, face = upright_face(read_image(path).pixels)
        moved, face_moved = upright_face(_rescaled(pixels))
        rects = hog(pixels, 1)
        if face is None or face_moved is None or face.landmarks is None or not rects:
            continue
        rect = max(rects, key=lambda r: r.width())
        own = reference._predictor(pixels, rect)
        own_desc = reference.describe_chips([dlib.get_face_chip(pixels, own)])[0]
        boxes.append(_box_ratios(face.points5, rect))
        for a, enc in encoders.items():
            err = np.linalg.norm(_points(enc.shape(pixels, face)) - _points(own), axis=1) / face.eye_distance
            d = enc.describe(pixels, face)
            stats[a]["point_error"].append(float(err.mean()))
            stats[a]["to_dlib"].append(float(np.linalg.norm(d - own_desc)))
            stats[a]["rescale"].append(float(np.linalg.norm(d - enc.describe(moved, face_moved))))
    if not boxes:
        raise InputError("dlib's detector and ours found no face in common in these photos")
    b = np.array(boxes)
    return {"photos": len(boxes),
            "alignments": {a: {k: {"mean": round(float(np.mean(v)), 4), "max": round(float(np.max(v)), 4)}
                               for k, v in s.items()} for a, s in stats.items()},
            "dlib_box": {"side": [round(float(b[:, 0].mean()), 3), round(float(b[:, 0].std()), 3)],
                         "down": [round(float(b[:, 1].mean()), 3), round(float(b[:, 1].std()), 3)]}}


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------

def _settings(args) -> TrainingSettings:
    rare = [r.strip() for r in args.rare.split(",") if r.strip()] or None
    return TrainingSettings(rare=rare, min_subjects=args.min_subjects, epochs=args.epochs, device=args.device,
                            seed=args.seed)


#: what two comparison reports must share to be merged into one table: the same photos, the same splits
_SAME_SPLITS = ("data", "n_images", "seed", "splits", "frequent", "rare", "split_images")


def merge_reports(reports: list[dict]) -> dict:
    """One report from runs of different methods on the same splits (e.g. a slow method run
    apart); an InputError when the runs did not split the same photos the same way."""
    if not reports:
        raise InputError("nothing to merge")
    first = reports[0]
    merged = {**first, "methods": {}, "real": None}
    real_methods = {}
    for r in reports:
        differs = [k for k in _SAME_SPLITS if r.get(k) != first.get(k)]
        if differs:
            raise InputError(f"these comparisons were not made on the same splits ({', '.join(differs)} differ)",
                             hint="run the methods with the same data set, --seed and --splits")
        clash = set(merged["methods"]) & set(r["methods"])
        if clash:
            raise InputError(f"method(s) {', '.join(sorted(clash))} appear in two comparisons")
        merged["methods"].update(r["methods"])
        if r.get("real"):
            merged["real"] = {**r["real"], "methods": real_methods}
            real_methods.update(r["real"]["methods"])
    return merged


def write_report(report: dict, out) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (out / "comparison.md").write_text(comparison_markdown(report), encoding="utf-8")


def run(args) -> dict:
    settings = _settings(args)
    methods = [method_from_name(m, settings) for m in args.methods.split(",") if m.strip()]
    report = cross_validate(args.data, methods, splits=args.splits, seed=args.seed, rare=settings.rare,
                            min_subjects=settings.min_subjects, epochs=settings.epochs, device=settings.device,
                            stage=lambda text: print(text, file=sys.stderr, flush=True))
    if args.real:
        report["real"] = real_block(methods, args.data, report, Path(args.real))
    write_report(report, args.out)
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", nargs="?", help="a GMDB-layout data set folder")
    p.add_argument("--out", default="encoder_comparison")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    p.add_argument("--splits", type=int, default=5)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rare", default="", help="comma-separated rare conditions (default: by --min-subjects)")
    p.add_argument("--min-subjects", type=int, default=10)
    p.add_argument("--device", default="auto")
    p.add_argument("--real", help="a folder of real portraits to run each fitted method on")
    p.add_argument("--check-alignment", nargs="+", metavar="PHOTO_OR_FOLDER",
                   help="only measure the dlib alignments against dlib's own pipeline")
    p.add_argument("--merge", nargs="+", metavar="COMPARISON_JSON",
                   help="only merge comparison.json files of runs on the same splits into --out")
    args = p.parse_args(argv)
    try:
        if args.merge:
            report = merge_reports([json.loads(Path(f).read_text(encoding="utf-8")) for f in args.merge])
            write_report(report, args.out)
            print(comparison_table(report))
            return 0
        if args.check_alignment:
            print(json.dumps(check_alignment(_photo_files(args.check_alignment)), indent=1))
            return 0
        if not args.data:
            p.error("give a data set (or --check-alignment)")
        report = run(args)
    except MedfaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(comparison_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
