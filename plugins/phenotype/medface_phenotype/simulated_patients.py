"""Simulated patients' recorded HPO terms, and how well the terms alone find the syndrome.

PEDIA (Hsieh et al. 2019) and the phenotype-simulation literature before it draw a patient's
recorded terms from the disease's annotations and then spoil them as clinicians do. Here a
simulated patient of disease D gets:

- each of D's annotated terms (all of them: a clinician records seizures as well as the face)
  with its annotated frequency (:data:`.hpo_annotations.UNKNOWN_FREQUENCY` where none was
  recorded, an assumption), at most :data:`MAX_TERMS` of them (the most frequent first);
- *imprecision*: each kept term replaced by one of its parents with probability
  :data:`IMPRECISION` ("Abnormality of the philtrum" recorded for "Long philtrum");
- *noise*: a Poisson number (mean :data:`NOISE_MEAN`) of unrelated terms, drawn from the terms
  annotated anywhere in the catalogue in proportion to how often they are.

All three numbers are assumptions, chosen for a plausible clinic note and not fitted to data.
:func:`evaluate_terms_only` ranks each simulated patient's terms against a catalogue with
:func:`.hpo_similarity.rank_by_terms` and reports top-1 and top-10 for syndromes and genes:
the "HPO-only" line of issue 19's evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import hpo_annotations as HA

MAX_TERMS = 8
IMPRECISION = 0.3
NOISE_MEAN = 1.0


@dataclass(frozen=True)
class SimulatedPatient:
    disease_id: str
    terms: tuple[str, ...]
    imprecise: int  # how many terms were replaced by a parent
    noise: int  # how many unrelated terms were added


def _parents_from_ontology(term_id: str) -> list[str]:
    try:
        term = HA.ontology().get_hpo_object(term_id)
    except (RuntimeError, KeyError, ValueError):  # an id the release no longer holds
        return []
    return sorted(p.id for p in term.parents)


def noise_pool(diseases) -> tuple[list[str], np.ndarray]:
    """Every term annotated in ``diseases`` and its share of all annotations."""
    counts: dict[str, int] = {}
    for d in diseases:
        for t in d.features:
            counts[t] = counts.get(t, 0) + 1
    terms = sorted(counts)
    weights = np.array([counts[t] for t in terms], float)
    return terms, weights / weights.sum()


def simulate_patient(disease: HA.Disease, rng: np.random.Generator, pool: tuple[list[str], np.ndarray], *,
                     parents=_parents_from_ontology, max_terms: int = MAX_TERMS, imprecision: float = IMPRECISION,
                     noise_mean: float = NOISE_MEAN) -> SimulatedPatient:
    """One patient's recorded terms for ``disease`` (see the module docstring); at least one
    annotated term is kept."""
    ids = sorted(disease.features)
    freq = np.array([HA.UNKNOWN_FREQUENCY if disease.features[t] is None else disease.features[t] for t in ids])
    drawn = [ids[i] for i in np.argsort(-freq, kind="stable") if rng.random() < freq[i]]
    if not drawn and ids:
        drawn = [ids[int(np.argmax(freq))]]
    drawn = drawn[:max_terms]
    recorded, imprecise = [], 0
    for term in drawn:
        up = parents(term) if rng.random() < imprecision else []
        if up:
            recorded.append(up[int(rng.integers(len(up)))])
            imprecise += 1
        else:
            recorded.append(term)
    terms, weights = pool
    own = set(disease.features)
    noise = [str(t) for t in rng.choice(terms, size=int(rng.poisson(noise_mean)), p=weights) if t not in own]
    return SimulatedPatient(disease.id, tuple(dict.fromkeys(recorded + noise)), imprecise, len(noise))


def rate(hits: int, n: int) -> dict:
    """A hit rate with its 95 % Wilson interval."""
    from scipy import stats

    if n == 0:
        return {"rate": None, "low": None, "high": None, "n": 0}
    ci = stats.binomtest(int(hits), int(n)).proportion_ci(0.95, method="wilson")
    return {"rate": round(hits / n, 4), "low": round(float(ci.low), 4), "high": round(float(ci.high), 4), "n": int(n)}


@dataclass(frozen=True)
class TermsOnlyResult:
    syndromes: int  # the catalogue ranked against
    ranks: tuple[int, ...]  # rank of the true syndrome per patient (len(catalogue) + 1: not ranked)
    gene_ranks: tuple[int, ...]  # best rank of a true gene, per patient whose syndrome has genes

    def to_dict(self) -> dict:
        r, g = np.array(self.ranks), np.array(self.gene_ranks)
        return {"patients": len(r), "syndromes": self.syndromes,
                "top1": rate(int(np.sum(r <= 1)), len(r)), "top10": rate(int(np.sum(r <= 10)), len(r)),
                "gene_top1": rate(int(np.sum(g <= 1)), len(g)), "gene_top10": rate(int(np.sum(g <= 10)), len(g))}


def evaluate_terms_only(patients: list[SimulatedPatient], diseases) -> TermsOnlyResult:
    """Rank each patient's terms against ``diseases``; the rank of its syndrome and of the best of
    its syndrome's genes (patients whose syndrome has no gene count for the syndrome only)."""
    from .hpo_similarity import rank_by_terms, suggested_genes

    by_id = {d.id: d for d in diseases}
    ranks, gene_ranks = [], []
    for patient in patients:
        ranked = rank_by_terms(list(patient.terms), diseases, top=None)
        order = [r.id for r in ranked]
        ranks.append(order.index(patient.disease_id) + 1 if patient.disease_id in order else len(order) + 1)
        true_genes = set(by_id[patient.disease_id].genes)
        if true_genes:
            genes = [g["gene"] for g in suggested_genes(ranked, top=None)]
            hit = [k + 1 for k, g in enumerate(genes) if g in true_genes]
            gene_ranks.append(hit[0] if hit else len(genes) + 1)
    return TermsOnlyResult(len(diseases), tuple(ranks), tuple(gene_ranks))
