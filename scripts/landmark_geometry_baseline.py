"""A landmark-geometry baseline beside a trained screening network: the photo's 478 MediaPipe
face-mesh points (found by the screening pipeline's own detector), Procrustes-aligned (2D
similarity to their mean shape), 60 principal components, standardised, multinomial logistic
regression (scikit-learn) fitted on the network's training and validation photos and ranked on
its test photos, as `evaluate`'s F/F and F/F+R settings rank conditions.

run: .venv/bin/python scripts/landmark_geometry_baseline.py RUN_FOLDER
(RUN_FOLDER as scripts/train_syndrome_model.py leaves it: data/ and model/split.json)
"""

from __future__ import annotations

import csv
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

WORKERS = 2
COMPONENTS = 60


def _landmarks(paths):
    from medface.io import read_image
    from medface_phenotype.faces import prepare

    out = []
    for path in paths:
        face = prepare(read_image(path).pixels)
        usable = not face.quality.refused and face.face is not None and face.face.landmarks is not None
        out.append(np.asarray(face.face.landmarks, float)[:, :2] if usable else None)
    return out


def _normalised(points):
    centred = points - points.mean(axis=0)
    return centred / np.linalg.norm(centred)


def shape_features(landmark_sets: list) -> list:
    """Each landmark set rotated onto the mean shape (orthogonal Procrustes), flattened; None stays None."""
    present = [_normalised(p) for p in landmark_sets if p is not None]
    mean = _normalised(np.mean(present, axis=0))
    out = []
    for p in landmark_sets:
        if p is None:
            out.append(None)
            continue
        x = _normalised(p)
        u, _, vt = np.linalg.svd(x.T @ mean)
        out.append((x @ (u @ vt)).ravel())
    return out


def main(run: str) -> dict:
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    root = Path(run)
    rows = list(csv.DictReader(open(root / "data" / "metadata.csv", encoding="utf-8")))
    split = json.loads((root / "model" / "split.json").read_text(encoding="utf-8"))
    paths = [root / "data" / "images" / r["image_id"] for r in rows]
    with ProcessPoolExecutor(WORKERS) as pool:
        parts = list(pool.map(_landmarks, [paths[i::WORKERS] for i in range(WORKERS)]))
    found = [None] * len(paths)
    for i, part in enumerate(parts):
        for j, lm in enumerate(part):
            found[i + WORKERS * j] = lm
    features = dict(zip((r["image_id"] for r in rows), shape_features(found)))
    label = {r["image_id"]: r["label"] for r in rows}
    train = [i for i in split["train"] + split["val"] if features.get(i) is not None]
    test = [i for i in split["test"] if features.get(i) is not None]
    model = make_pipeline(PCA(COMPONENTS), StandardScaler(), LogisticRegression(C=0.5, max_iter=4000))
    model.fit(np.array([features[i] for i in train]), [label[i] for i in train])
    classes = list(model.classes_)
    frequent = set(split["frequent"])
    trained = set(classes) - {"unaffected"}
    queries = [i for i in test if label[i] in frequent]
    probs = model.predict_proba(np.array([features[i] for i in queries]))
    report = {"photos": len(paths), "usable": sum(f is not None for f in found), "train_photos": len(train)}
    for name, allowed in (("F/F", frequent), ("F/F+R", trained)):
        keep = [k for k, c in enumerate(classes) if c in allowed]
        ranks = np.array([[classes[keep[k]] for k in np.argsort(-row[keep])].index(label[i]) + 1
                          for row, i in zip(probs, queries)])
        report[name] = {"classes": len(keep), "queries": len(queries), "top1": round(float(np.mean(ranks <= 1)), 4),
                        "top10": round(float(np.mean(ranks <= 10)), 4)}
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1]), indent=1))
