"""How separable the phantom's syndromes are when the measurements are exact: an upper reference
for any screening network trained on their photos.

Phantom heads of the N frequent syndromes with the most expressible terms (features drawn as
`phantom-data --syndromes` draws them), their exact 3D landmarks scored against the phantom norms
of their sex and age band (medface.phantom.norms), then a multinomial logistic regression
(scikit-learn) over those z-scores, 5-fold stratified cross-validation: top-1 and top-10.

run: .venv/bin/python scripts/syndrome_separability.py [syndromes] [subjects] [age low] [age high]
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np

WORKERS = 2
SEED = 7


def _z_scores(args):
    labels, n, ages, part = args
    from medface.phantom import head as H
    from medface.phantom import norms as N
    from medface_phenotype import syndromes as S

    cat = S.catalogue()
    rows = []
    for li, label in enumerate(labels):
        if li % WORKERS != part:
            continue
        for k in range(n):
            features = S.draw_features(cat.get(label), np.random.default_rng([SEED, li, k, 19]))
            subject = H.sample_subject(np.random.default_rng([SEED, li, k]), features=features, ages=ages)
            rows.append((label, N.z_scores(H.make_head(subject).landmarks, subject.sex, subject.age)))
    return rows


def separability(syndromes: int = 60, subjects: int = 30, ages=(20.0, 75.0)) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    from medface_phenotype.syndromes import choose

    labels = [s.id for s in choose(syndromes)]
    with ProcessPoolExecutor(WORKERS) as pool:
        rows = [r for part in pool.map(_z_scores, [(labels, subjects, ages, p) for p in range(WORKERS)]) for r in part]
    keys = sorted(rows[0][1])
    X = np.array([[z.get(k, 0.0) for k in keys] for _, z in rows])
    y = np.array([label for label, _ in rows])
    ranks = []
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(X, y):
        model = LogisticRegression(C=1.0, max_iter=3000).fit(X[train], y[train])
        order = np.argsort(-model.predict_proba(X[test]), axis=1)
        ranks += [list(model.classes_[order[i]]).index(y[test][i]) + 1 for i in range(len(test))]
    ranks = np.array(ranks)
    return {"syndromes": syndromes, "subjects_per_syndrome": subjects, "ages": list(ages),
            "measurements": len(keys), "top1": round(float(np.mean(ranks <= 1)), 4),
            "top10": round(float(np.mean(ranks <= 10)), 4), "chance_top1": round(1 / syndromes, 4)}


if __name__ == "__main__":
    a = sys.argv[1:]
    print(json.dumps(separability(*(int(x) for x in a[:2]), *([(float(a[2]), float(a[3]))] if len(a) > 3 else [])),
                     indent=1))
