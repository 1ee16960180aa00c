"""Syndromes the phantom can show: annotated diseases whose facial terms it can express.

A disease of the pinned HPO annotations (:mod:`.hpo_annotations`) is *expressible* through a
term of the phantom's facial-feature vocabulary (:mod:`medface.phantom.features`) when it is
annotated with that term or with a more specific one under it (an annotation "Mild
hypertelorism" counts for Hypertelorism); a more general term ("Abnormality of the eye") does
not, since the phantom cannot tell which change it means. The catalogue keeps the OMIM
diseases with at least ``minimum_terms`` expressible terms, and splits them GMDB-style into
*frequent* syndromes (trained on) and *rare* ones (gallery-only, a few subjects each), by a
hash of the disease id, so the split does not depend on the order of the file.

A phantom subject with syndrome S draws each of S's expressible terms with its annotated
frequency (:data:`.hpo_annotations.UNKNOWN_FREQUENCY` where none was recorded, an
assumption), at a per-subject severity; of two terms that move one measurement in opposite
directions (hyper- and hypotelorism, both annotated for some diseases) it keeps the more
frequent. Everything made from this is synthetic and labelled so.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from medface.errors import ParameterError
from medface.phantom import features as FT

from . import hpo_annotations as HA

MINIMUM_TERMS = 3
DISEASE_ID = re.compile(r"(OMIM|ORPHA):\d+")
RARE_SHARE = 0.3  # assumption: GMDB's rare set is about a third of its syndromes; a round share here
RARE_SUBJECTS_MAX = 6  # GMDB-style: a rare syndrome has at most this many subjects
#: per-subject severity of a syndrome's features, in SD (assumption: around the 2 SD threshold of
#: Elements of Morphology, most beyond it, as in clinical photographs of affected children)
SEVERITY_RANGE = (1.8, 3.4)
TERM_JITTER_SD = 0.35  # assumption: each drawn term's strength varies this much around the subject's severity


@dataclass(frozen=True)
class Syndrome:
    """A disease with its expressible features: feature id -> annotated frequency."""

    id: str
    name: str
    features: dict
    genes: tuple[str, ...]
    rare: bool

    @property
    def terms(self) -> list[str]:
        return [FT.feature(f).hpo for f in self.features]


@dataclass(frozen=True)
class SyndromeCatalogue:
    syndromes: tuple[Syndrome, ...]
    release: dict
    minimum_terms: int
    unknown_share: float  # share of the expressible annotations with no recorded frequency

    def frequent(self) -> list[Syndrome]:
        return [s for s in self.syndromes if not s.rare]

    def rare(self) -> list[Syndrome]:
        return [s for s in self.syndromes if s.rare]

    def get(self, syndrome_id: str) -> Syndrome:
        for s in self.syndromes:
            if s.id == syndrome_id:
                return s
        raise ParameterError(f"no syndrome {syndrome_id!r} in the catalogue", parameter="syndrome")


def term_to_feature(ontology_descendants=None) -> dict[str, str]:
    """Every HPO id that names a vocabulary feature or lies under one -> that feature's id.

    A term under two features (rare) goes to the one whose subtree is smaller: the more
    specific."""
    descendants = ontology_descendants or HA.face_terms  # every term under a term, itself included
    subtrees = {f.id: set(descendants(f.hpo)) for f in FT.FEATURES}
    out: dict[str, str] = {}
    for fid in sorted(subtrees, key=lambda k: len(subtrees[k]), reverse=True):
        for term in subtrees[fid]:
            out[term] = fid
    return out


def is_rare(disease_id: str, share: float = RARE_SHARE) -> bool:
    digest = hashlib.sha256(disease_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little") / 2 ** 32 < share


def expressible_features(disease: HA.Disease, term_map: dict[str, str]) -> dict[str, float | None]:
    """The disease's annotations mapped onto vocabulary features (feature id -> frequency; the
    highest where several annotations map to one feature, None where none was recorded)."""
    out: dict[str, float | None] = {}
    for term, freq in disease.features.items():
        fid = term_map.get(term)
        if fid is None or freq == 0:  # a frequency of 0 (0/n patients) says the feature was not seen
            continue
        if fid not in out or (freq is not None and (out[fid] is None or freq > out[fid])):
            out[fid] = freq
    return out


def build_catalogue(diseases: dict, term_map: dict[str, str], *, minimum_terms: int = MINIMUM_TERMS,
                    databases: tuple[str, ...] = ("OMIM",), release: dict | None = None) -> SyndromeCatalogue:
    chosen, unknown, total = [], 0, 0
    for disease in sorted(diseases.values(), key=lambda d: d.id):
        if disease.database not in databases:
            continue
        found = expressible_features(disease, term_map)
        if len(found) < minimum_terms:
            continue
        unknown += sum(f is None for f in found.values())
        total += len(found)
        feats = {fid: HA.UNKNOWN_FREQUENCY if f is None else float(f) for fid, f in sorted(found.items())}
        chosen.append(Syndrome(disease.id, disease.name, feats, tuple(disease.genes), is_rare(disease.id)))
    return SyndromeCatalogue(tuple(chosen), dict(release or {}), minimum_terms, unknown / total if total else 0.0)


def is_syndrome_label(label: str) -> bool:
    """Is a data set label a catalogue syndrome (``OMIM:100800``) rather than a condition preset?"""
    return label.startswith("OMIM:")


def choose(count: int, *, rare: bool = False, cat: SyndromeCatalogue | None = None) -> list[Syndrome]:
    """The ``count`` frequent (or rare) syndromes with the most expressible terms (ties by id):
    the ones a phantom photo shows best."""
    cat = cat or catalogue()
    pool = cat.rare() if rare else cat.frequent()
    if count > len(pool):
        raise ParameterError(f"the catalogue has {len(pool)} {'rare' if rare else 'frequent'} syndromes, "
                             f"{count} were asked for", parameter="rare_syndromes" if rare else "syndromes")
    return sorted(pool, key=lambda s: (-len(s.features), s.id))[:count]


def genes_of_labels(labels) -> dict | None:
    """Label -> genes (from the pinned ``genes_to_phenotype.txt``) when a data set's conditions are
    disease ids (``OMIM:100800``, ``ORPHA:15``; in the catalogue or not), for gene rankings in
    evaluation; None when none is (condition presets)."""
    names = {str(label) for label in labels}
    diseases = {n for n in names if DISEASE_ID.fullmatch(n)}
    if not diseases:
        return None
    known = HA.read_disease_genes()
    return {n: tuple(known.get(n, ())) for n in diseases}


@lru_cache(maxsize=2)
def catalogue(minimum_terms: int = MINIMUM_TERMS) -> SyndromeCatalogue:
    """The catalogue of the pinned release (loads the annotations and the ontology once)."""
    return build_catalogue(HA.release_diseases(), term_to_feature(), minimum_terms=minimum_terms,
                           release=HA.annotation_release())


TYPICAL_FREQUENCY = 0.3  # a term this frequent or more appears on a syndrome's picture (assumption)


def typical_features(syndrome: Syndrome, strength: float = 3.0) -> dict:
    """The face a picture sheet shows for a syndrome: every expressible term with a frequency of
    at least :data:`TYPICAL_FREQUENCY` (the most frequent one at least) at ``strength`` SD,
    opposite terms of one measurement resolved to the more frequent."""
    order = sorted(syndrome.features, key=lambda f: (-syndrome.features[f], f))
    kept = [f for f in order if syndrome.features[f] >= TYPICAL_FREQUENCY] or order[:1]
    out, measures = {}, set()
    for fid in kept:
        measure = FT.feature(fid).measure
        if measure not in measures:
            measures.add(measure)
            out[fid] = float(strength)
    return out


def draw_features(syndrome: Syndrome, rng: np.random.Generator, *, severity: float | None = None) -> dict:
    """One subject's features (feature id -> strength in SD): each expressible term drawn with its
    annotated frequency, at the subject's severity; opposite terms of one measurement resolved to
    the more frequent. At least one term is kept (a subject with none would not show S)."""
    severity = float(rng.uniform(*SEVERITY_RANGE)) if severity is None else float(severity)
    ids = list(syndrome.features)
    freq = np.array([syndrome.features[f] for f in ids])
    drawn = rng.random(len(ids)) < freq
    if not drawn.any():
        drawn[int(np.argmax(freq + 1e-6 * rng.random(len(ids))))] = True
    strengths = np.clip(severity + TERM_JITTER_SD * rng.standard_normal(len(ids)), 1.0, 5.0)
    out: dict[str, float] = {}
    by_measure: dict[str, str] = {}
    for i in np.argsort(-freq, kind="stable"):
        if not drawn[i]:
            continue
        fid = ids[i]
        measure = FT.feature(fid).measure
        if measure in by_measure:
            continue  # the more frequent term of this measurement was kept
        by_measure[measure] = fid
        out[fid] = round(float(strengths[i]), 3)
    return out
