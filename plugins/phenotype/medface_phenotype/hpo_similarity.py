"""Ranking syndromes by a patient's recorded HPO terms, and genes by the syndromes they cause.

A clinician records phenotype terms (``HP:0000316,HP:0000343``, a text file of terms, or a GA4GH
phenopacket). :func:`rank_by_terms` scores each disease of a catalogue
(:mod:`.hpo_annotations`) by the semantic similarity of the patient's terms to the disease's
annotated terms, with pyhpo's set similarity (information content from the OMIM annotations,
Lin's "graphic" term similarity of Deng et al. 2015, combined by the best-match average
``funSimAvg``, as PEDIA's phenotype score uses a set similarity; Hsieh et al. 2019).
:func:`suggested_genes` ranks the genes linked to the ranked diseases by the best score of a
disease each one causes. This is the phenotype half of the gestalt + phenotype fusion of
issue 19; the fusion itself (a model trained on simulated patients) is not built yet.

The first call in a process loads pyhpo's full ontology (15-26 s on this machine); the
similarity is pyhpo's, computed by :class:`SetSimilarity` for a whole catalogue at once (equal
to ``HPOSet.similarity``; tens of milliseconds for 1,379 diseases, after a first build).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medface.errors import InputError, ParameterError

from .hpo_annotations import ontology

TERM_ID = re.compile(r"HP:\d{7}")
SIMILARITY = {"kind": "omim", "method": "graphic", "combine": "funSimAvg"}


def parse_terms(text: str) -> list[str]:
    """The HPO ids in ``HP:0000316,HP:0000343`` (commas, spaces or new lines between them), in
    order and without repeats; refuses anything else."""
    parts = [p for p in re.split(r"[\s,;]+", text or "") if p]
    bad = [p for p in parts if not TERM_ID.fullmatch(p)]
    if bad:
        raise ParameterError(f"{', '.join(bad[:3])} {'is' if len(bad) == 1 else 'are'} not HPO term ids "
                             "(HP: and seven digits)", parameter="hpo")
    return list(dict.fromkeys(parts))


def read_terms_file(path) -> list[str]:
    """A patient's observed terms from a phenopacket (JSON: ``phenotypicFeatures[].type.id``;
    features marked ``excluded`` are left out) or a text file (one term per line, a name may
    follow the id, ``#`` starts a comment)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the terms file: {exc}", path=path) from exc
    if text.lstrip().startswith("{"):
        return _phenopacket_terms(text, path)
    ids = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            found = TERM_ID.match(line)
            if not found:
                raise InputError(f"line {line[:40]!r} does not start with an HPO term id", path=path)
            ids.append(found.group(0))
    return list(dict.fromkeys(ids))


def _phenopacket_terms(text: str, path: Path) -> list[str]:
    try:
        packet = json.loads(text)
        features = packet.get("phenotypicFeatures", [])
        ids = [f["type"]["id"] for f in features if not f.get("excluded", False)]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"not a phenopacket with phenotypicFeatures: {exc}", path=path) from exc
    return parse_terms(",".join(ids))


def known_terms(ids: list[str]) -> list[str]:
    """``ids`` as the ontology's current ids (an alternative id becomes its term's); refuses an
    id the ontology of the pinned release does not hold."""
    found = {term_id: _term(term_id) for term_id in ids}
    unknown = [term_id for term_id, term in found.items() if term is None]
    if unknown:
        raise ParameterError(f"{', '.join(unknown)}: not in the HPO release medface uses "
                             "(medface_phenotype.hpo_annotations.annotation_release)", parameter="hpo")
    return list(dict.fromkeys(term.id for term in found.values()))


@dataclass(frozen=True)
class RankedDisease:
    rank: int
    id: str
    name: str
    similarity: float
    genes: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"rank": self.rank, "id": self.id, "name": self.name, "similarity": round(self.similarity, 4),
                "genes": list(self.genes)}


class SetSimilarity:
    """pyhpo's set similarity (:data:`SIMILARITY`), vectorised over a fixed list of diseases.

    The graphic term similarity of two terms is the information content of their common
    ancestors (each term counted among its own) over that of the union of their strict
    ancestors, 1 for a term with itself (pyhpo's ``GraphIC``); with every term's ancestors as a
    sparse row, all patient-by-disease term pairs are two sparse products, and funSimAvg the mean
    of the row and column maxima per disease. Scores equal pyhpo's ``HPOSet.similarity`` (tested);
    a ranking over 1,379 diseases takes milliseconds instead of pyhpo's seconds.
    """

    def __init__(self, diseases):
        self.diseases = [d for d in diseases if self._ids(d.features)]
        self._index: dict[str, int] = {}
        self._columns = [np.array([self._slot(t) for t in self._ids(d.features)]) for d in self.diseases]
        self._strict, self._inclusive = self._ancestors(list(self._index))

    @staticmethod
    def _ids(terms) -> list[str]:
        return list(dict.fromkeys(term.id for term in (_term(t) for t in terms) if term is not None))

    def _slot(self, term_id: str) -> int:
        return self._index.setdefault(term_id, len(self._index))

    @staticmethod
    def _ancestors(term_ids: list[str]):
        """Sparse (terms x all terms) rows of the strict and inclusive ancestors, IC-weighted."""
        from scipy import sparse

        onto = ontology()
        rows, cols, weights = [], [], []
        for i, tid in enumerate(term_ids):
            term = onto.get_hpo_object(tid)
            for parent in term.all_parents:
                rows.append(i)
                cols.append(int(parent))
                weights.append(parent.information_content[SIMILARITY["kind"]])
        size = max([int(t) for t in onto] + [0]) + 1
        strict = sparse.csr_matrix((weights, (rows, cols)), shape=(len(term_ids), size))
        own = sparse.csr_matrix(([onto.get_hpo_object(t).information_content[SIMILARITY["kind"]] for t in term_ids],
                                 (range(len(term_ids)), [int(onto.get_hpo_object(t)) for t in term_ids])),
                                shape=(len(term_ids), size))
        return strict, strict + own

    def term_matrix(self, patient_ids: list[str]) -> np.ndarray:
        """Graphic similarity of each patient term (rows) to each catalogue term (columns)."""
        p_strict, p_incl = self._ancestors(patient_ids)
        common = (p_incl > 0).astype(float) @ self._inclusive.T
        common = np.asarray(common.todense()) if hasattr(common, "todense") else common
        # the IC of a common ancestor counts once: weights come from the catalogue side
        union = (np.asarray(p_strict.sum(axis=1)) + np.asarray(self._strict.sum(axis=1)).T
                 - np.asarray(((p_strict > 0).astype(float) @ self._strict.T).todense()))
        with np.errstate(invalid="ignore", divide="ignore"):
            sim = np.where(union > 0, common / union, 0.0)
        for i, tid in enumerate(patient_ids):
            if tid in self._index:
                sim[i, self._index[tid]] = 1.0
        return sim

    def scores(self, terms: list[str]) -> np.ndarray:
        """funSimAvg of the patient's terms against every disease, in the order of ``diseases``."""
        sim = self.term_matrix(self._ids(terms))
        out = np.empty(len(self.diseases))
        for k, cols in enumerate(self._columns):
            block = sim[:, cols]
            out[k] = 0.5 * (block.max(axis=1).mean() + block.max(axis=0).mean())
        return out


_SETS: dict[tuple, SetSimilarity] = {}


def _set_similarity(diseases) -> SetSimilarity:
    key = tuple((d.id, tuple(d.features)) for d in diseases)
    if key not in _SETS:
        _SETS.clear()  # one catalogue at a time: a process ranks against one
        _SETS[key] = SetSimilarity(diseases)
    return _SETS[key]


def rank_by_terms(terms: list[str], diseases, *, top: int | None = 10) -> list[RankedDisease]:
    """The diseases (``Disease`` objects, e.g. a catalogue's) ranked by the similarity of the
    patient's ``terms`` to each disease's annotated terms, best first (ties by id)."""
    if not terms:
        raise ParameterError("no HPO terms given", parameter="hpo")
    patient = known_terms(terms)
    sets = _set_similarity(list(diseases))
    scored = list(zip(sets.scores(patient), sets.diseases))
    scored.sort(key=lambda pair: (-pair[0], pair[1].id))
    chosen = scored if top is None else scored[:top]
    return [RankedDisease(k + 1, d.id, d.name, float(s), d.genes) for k, (s, d) in enumerate(chosen)]


def suggested_genes(ranked: list[RankedDisease], *, top: int | None = 10) -> list[dict]:
    """Genes of the ranked diseases, each scored by the best similarity of a disease it is linked
    to (and naming that disease), best first."""
    best: dict[str, RankedDisease] = {}
    for disease in ranked:
        for gene in disease.genes:
            if gene not in best or disease.similarity > best[gene].similarity:
                best[gene] = disease
    order = sorted(best.items(), key=lambda item: (-item[1].similarity, item[0]))
    order = order if top is None else order[:top]
    return [{"rank": k + 1, "gene": gene, "similarity": round(d.similarity, 4), "disease": d.id}
            for k, (gene, d) in enumerate(order)]


def _term(term_id: str):
    """The ontology's term of an id (an alternative id gives its term), or None."""
    try:
        return ontology().get_hpo_object(term_id)
    except (RuntimeError, KeyError, ValueError):
        return None
