"""The face and the clinician's terms fused into one syndrome ranking, as PEDIA fuses them.

PEDIA (Hsieh et al. 2019, Genet Med 21:2807) trains a classifier on (patient, candidate) pairs
whose features are the candidate's gestalt score and its phenotype-similarity scores, and ranks
the candidates by the classifier's score. Here the candidates are syndromes and the classifier
is a logistic regression (scikit-learn) on three features per candidate:

- ``gestalt_z``: the similarity of the face to the candidate's nearest gallery entry (1 - cosine
  distance), as a z-score across the patient's candidates (candidates without a gallery entry get
  the patient's lowest similarity);
- ``terms_z``: the HPO set similarity of the recorded terms to the candidate's annotations
  (:mod:`.hpo_similarity`), as a z-score across the candidates;
- ``no_gallery``: 1 when the candidate has no gallery entry (the face cannot speak for it).

The z-scores make the features comparable between patients (one with many specific terms has
high similarities everywhere). Training needs no real patient: :mod:`.train_fusion` fits it on
simulated patients (phantom photos of syndrome subjects, terms simulated from the same
syndrome's annotations) and measures it on held-out ones. This module is the logic only: no
files, no network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medface.errors import InputError

FEATURES = ("gestalt_z", "terms_z", "no_gallery")
FILE_NAME = "fusion.json"
FORMAT = "medface-phenotype-fusion/1"


@dataclass(frozen=True)
class FusionCase:
    """One patient: its syndrome (None when unknown: a query) and, per disease id, the face's
    similarity to the disease's nearest gallery entry and the terms' similarity to the disease."""

    disease_id: str | None
    gestalt: dict
    terms: dict


def _z(values: np.ndarray) -> np.ndarray:
    sd = float(values.std())
    return (values - values.mean()) / sd if sd > 1e-9 else np.zeros_like(values)


def candidate_features(case: FusionCase, candidates: list[str]) -> np.ndarray:
    """(candidates, 3) features of one patient (see the module docstring)."""
    present = [case.gestalt[c] for c in candidates if c in case.gestalt]
    floor = min(present) if present else 0.0
    gestalt = np.array([case.gestalt.get(c, floor) for c in candidates], float)
    terms = np.array([case.terms.get(c, 0.0) for c in candidates], float)
    absent = np.array([c not in case.gestalt for c in candidates], float)
    return np.column_stack([_z(gestalt), _z(terms), absent])


@dataclass
class FusionModel:
    """Weights of the fused score (one per :data:`FEATURES`) and what it was trained on."""

    coef: tuple
    intercept: float
    info: dict = field(default_factory=dict)

    def scores(self, case: FusionCase, candidates: list[str]) -> np.ndarray:
        return candidate_features(case, candidates) @ np.asarray(self.coef, float) + self.intercept

    def rank(self, case: FusionCase, candidates: list[str]) -> list[tuple[str, float]]:
        """(disease id, fused score) of every candidate, best first (ties by id)."""
        scored = zip(candidates, self.scores(case, candidates))
        return sorted(((c, float(s)) for c, s in scored), key=lambda cs: (-cs[1], cs[0]))

    def to_dict(self) -> dict:
        return {"format": FORMAT, "features": list(FEATURES), "coef": [round(float(c), 6) for c in self.coef],
                "intercept": round(float(self.intercept), 6), "info": self.info}

    @classmethod
    def from_dict(cls, doc: dict) -> "FusionModel":
        if doc.get("format") != FORMAT or list(doc.get("features", [])) != list(FEATURES):
            raise InputError(f"not a fusion model of this medface (format {doc.get('format')!r}, expected {FORMAT})",
                             hint="retrain it with medface phenotype train-fusion")
        return cls(tuple(float(c) for c in doc["coef"]), float(doc["intercept"]), dict(doc.get("info", {})))


def fit(cases: list[FusionCase], candidates: list[str], *, regularisation: float = 1.0) -> FusionModel:
    """Logistic regression on every (case, candidate) pair, the case's own syndrome the positive;
    classes balanced (one positive per case among hundreds of candidates)."""
    from sklearn.linear_model import LogisticRegression

    known = [c for c in cases if c.disease_id in candidates]
    if not known:
        raise InputError("no training case's syndrome is among the candidates")
    X = np.concatenate([candidate_features(c, candidates) for c in known])
    y = np.concatenate([[cand == c.disease_id for cand in candidates] for c in known]).astype(int)
    model = LogisticRegression(C=regularisation, class_weight="balanced", max_iter=2000).fit(X, y)
    return FusionModel(tuple(float(v) for v in model.coef_[0]), float(model.intercept_[0]),
                       {"cases": len(known), "candidates": len(candidates), "regularisation": regularisation})


def gestalt_order(case: FusionCase, candidates: list[str]) -> list[str]:
    """Candidates by the face alone: gallery diseases by similarity, then the others (by id)."""
    inside = sorted((c for c in candidates if c in case.gestalt), key=lambda c: (-case.gestalt[c], c))
    return inside + sorted(c for c in candidates if c not in case.gestalt)


def terms_order(case: FusionCase, candidates: list[str]) -> list[str]:
    return sorted(candidates, key=lambda c: (-case.terms.get(c, 0.0), c))


def terms_in_gallery_order(case: FusionCase, candidates: list[str]) -> list[str]:
    """The terms' ranking with the gallery's syndromes first: what knowing "it is one of the
    gallery's" is worth without looking at the face (the baseline that separates the face's
    contribution to the fusion from the gallery's)."""
    return sorted(candidates, key=lambda c: (c not in case.gestalt, -case.terms.get(c, 0.0), c))


def rank_of(order: list[str], truth: str) -> int:
    """1-based rank of ``truth`` in ``order`` (len + 1 when absent)."""
    return order.index(truth) + 1 if truth in order else len(order) + 1


def gene_rank(order: list[str], genes_of: dict, truth: str) -> float | None:
    """Rank of the first of the true syndrome's genes among the genes of the ranked syndromes in
    order of first appearance (:func:`.protocol.gene_ranks`, the evaluation's rule; inf when it
    never appears); None when the syndrome has no gene."""
    from .protocol import gene_ranks

    rank = float(gene_ranks([order], [truth], genes_of)[0])
    return None if rank == 0 else rank


def split_by_syndrome(cases: list[FusionCase], rng: np.random.Generator, share: float = 0.5) -> tuple[list, list]:
    """Cases split within each syndrome (about ``share`` of each to training; a syndrome with one
    case goes to either side at random)."""
    by: dict[str, list[int]] = {}
    for i, c in enumerate(cases):
        by.setdefault(c.disease_id, []).append(i)
    train, test = [], []
    for idx in by.values():
        idx = list(rng.permutation(idx))
        cut = int(round(share * len(idx))) if len(idx) > 1 else int(rng.random() < share)
        train += idx[:cut]
        test += idx[cut:]
    return [cases[i] for i in sorted(train)], [cases[i] for i in sorted(test)]


RANKINGS = ("gestalt", "terms", "terms_in_gallery", "fused")


def held_out_ranks(train: list[FusionCase], test: list[FusionCase], candidates: list[str], genes_of: dict,
                   model: FusionModel | None = None) -> dict:
    """Per ranking (:data:`RANKINGS`), the rank of each test case's syndrome and of its genes; the
    fused ranking is the one fitted on ``train`` (or ``model``)."""
    model = model or fit(train, candidates)
    out = {name: {"syndrome": [], "gene": []} for name in RANKINGS}
    for case in test:
        orders = {"gestalt": gestalt_order(case, candidates), "terms": terms_order(case, candidates),
                  "terms_in_gallery": terms_in_gallery_order(case, candidates),
                  "fused": [c for c, _ in model.rank(case, candidates)]}
        for name, order in orders.items():
            out[name]["syndrome"].append(rank_of(order, case.disease_id))
            g = gene_rank(order, genes_of, case.disease_id)
            if g is not None:
                out[name]["gene"].append(g)
    return out


def repeated_evaluation(cases: list[FusionCase], candidates: list[str], genes_of: dict, *, repeats: int = 5,
                        seed: int = 0) -> dict:
    """Top-1 / top-10 of the rankings for syndromes and genes over ``repeats`` random
    within-syndrome halvings (counts pooled over the repeats, 95 % Wilson intervals; the spread
    of the per-repeat rates alongside), and the fused model's weights per repeat."""
    from .simulated_patients import rate

    rng = np.random.default_rng(seed)
    pooled = {name: {"syndrome": [], "gene": []} for name in RANKINGS}
    per_repeat, weights = {name: [] for name in RANKINGS}, []
    for _ in range(repeats):
        train, test = split_by_syndrome(cases, rng)
        model = fit(train, candidates)
        weights.append(list(model.coef))
        found = held_out_ranks(train, test, candidates, genes_of, model)
        for name in RANKINGS:
            for kind in ("syndrome", "gene"):
                pooled[name][kind] += found[name][kind]
            r = np.array(found[name]["syndrome"])
            per_repeat[name].append(float(np.mean(r <= 1)) if len(r) else None)
    report = {"repeats": repeats, "cases": len(cases), "candidates": len(candidates), "weights_per_repeat": weights,
              "rankings": {}}
    for name in RANKINGS:
        s, g = np.array(pooled[name]["syndrome"]), np.array(pooled[name]["gene"])
        top1 = [v for v in per_repeat[name] if v is not None]
        report["rankings"][name] = {
            "top1": rate(int(np.sum(s <= 1)), len(s)), "top10": rate(int(np.sum(s <= 10)), len(s)),
            "gene_top1": rate(int(np.sum(g <= 1)), len(g)), "gene_top10": rate(int(np.sum(g <= 10)), len(g)),
            "top1_per_repeat": [round(v, 4) for v in top1]}
    return report
