"""Syndromes and genes suggested by the face, as GestaltMatcher-Arc gives them.

When a model's gallery is labelled by disease ids (``OMIM:100800``, ``ORPHA:15``: a model
trained or a gallery filled from ``phantom-data --syndromes``), the screening's ranked
conditions *are* syndromes: each gets its name from the pinned annotation file, its cosine
distance and the gallery image behind the match, and the genes linked to the ranked syndromes
are ranked by the best similarity of a syndrome they are linked to (the same rule as the
clinician's-terms ranking, :func:`.hpo_similarity.suggested_genes`). A gallery of condition
presets gives none.
"""

from __future__ import annotations

from . import hpo_annotations as HA
from .hpo_similarity import RankedDisease, suggested_genes
from .syndromes import DISEASE_ID

NOT_IN_RELEASE = "(not in the pinned annotations)"


def face_suggestions(conditions, top: int = 10) -> dict | None:
    """``suggested_syndromes`` and ``suggested_genes`` from a screening's ranked conditions
    (:class:`.screening.RankedCondition`), or None when none of them is a disease id."""
    diseases = [c for c in conditions if DISEASE_ID.fullmatch(str(c.condition))]
    if not diseases:
        return None
    known = HA.release_diseases()
    ranked, rows = [], []
    for k, c in enumerate(diseases[:top], start=1):
        entry = known.get(c.condition)
        name = entry.name if entry is not None else NOT_IN_RELEASE
        genes = entry.genes if entry is not None else ()
        ranked.append(RankedDisease(k, c.condition, name, float(c.similarity), tuple(genes)))
        rows.append({"rank": k, "id": c.condition, "name": name, "similarity": round(float(c.similarity), 4),
                     "distance": round(1.0 - float(c.similarity), 4), "genes": list(genes),
                     "gallery_subject": c.nearest_gallery_subject, "gallery_image": c.nearest_gallery_image})
    return {"suggested_syndromes": rows, "suggested_genes": suggested_genes(ranked, top=top)}
