"""Leakage between a gallery and its queries: the same person or the same image on both sides.

An evaluation whose queries are already in the gallery measures memory, not screening: a query
photo found in the gallery sits at cosine distance 0 from itself and is ranked right every time.
Three signs are checked, each on its own, because each misses cases the others catch:

- the **subject id** (GMDB's protocol is subject-disjoint; the same person under another photo
  still leaks, since the network has learned that face);
- the **image content hash** (SHA-256 of the file: the same photo filed under a new subject id);
- an **identical embedding** (cosine distance below :data:`SAME_IMAGE_DISTANCE`: the same image
  re-encoded, renamed or resized, where the file hash differs).

Pure functions on arrays and lists; the commands decide whether to refuse or to drop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medface.errors import InputError

#: cosine distance below which two embeddings come from the same image (re-encoding a photo moves
#: its embedding by about 1e-3 or less; two photos of one phantom subject lie 0.02 or more apart)
SAME_IMAGE_DISTANCE = 1e-4
#: queries x gallery block for the embedding check (float32 elements)
_BLOCK = 1 << 22


@dataclass
class Overlap:
    """Which queries (positions in the query list) overlap the gallery, and how."""

    n_queries: int
    by_subject: list[int] = field(default_factory=list)
    by_hash: list[int] = field(default_factory=list)
    by_embedding: list[int] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    cross_label: int = 0  # identical-embedding matches whose gallery image carries another label

    @property
    def queries(self) -> np.ndarray:
        """Sorted positions of every overlapping query."""
        return np.unique(np.array(self.by_subject + self.by_hash + self.by_embedding, dtype=np.int64))

    def __bool__(self) -> bool:
        return bool(self.by_subject or self.by_hash or self.by_embedding)

    def describe(self) -> str:
        parts = [f"{len(v)} by {what}" for what, v in (("subject id", self.by_subject), ("image hash", self.by_hash),
                                                         ("identical embedding", self.by_embedding)) if v]
        text = (f"{len(self.queries)} of {self.n_queries} queries are already in the gallery ({', '.join(parts)}), "
                f"e.g. {'; '.join(self.examples[:3])}")
        if self.cross_label:
            text += (f"; {self.cross_label} of the identical-embedding matches carry another label than the query: "
                     "distinct faces the model cannot tell apart (a collapsed or undertrained model: retrain it) "
                     "or duplicate images filed under two labels")
        return text

    def to_dict(self) -> dict:
        return {"n_queries": self.n_queries, "overlapping": int(len(self.queries)),
                "by_subject": len(self.by_subject), "by_image_hash": len(self.by_hash),
                "by_identical_embedding": len(self.by_embedding), "identical_across_labels": self.cross_label,
                "examples": self.examples[:5]}


def _identical(query_emb: np.ndarray, gallery_emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query positions, gallery positions of their nearest) where the cosine distance to the
    nearest gallery embedding is below SAME_IMAGE_DISTANCE."""
    q = np.asarray(query_emb, np.float32)
    g = np.asarray(gallery_emb, np.float32)
    if not len(q) or not len(g):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    step = max(1, _BLOCK // max(1, len(g)))
    hits, nearest = [], []
    for start in range(0, len(q), step):
        sim = q[start:start + step] @ g.T
        best = sim.argmax(axis=1)
        close = np.flatnonzero(1.0 - sim[np.arange(len(best)), best] < SAME_IMAGE_DISTANCE)
        hits.append(close + start)
        nearest.append(best[close])
    return np.concatenate(hits), np.concatenate(nearest)


def find_overlap(gallery_subjects, query_subjects, *, gallery_hashes=None, query_hashes=None,
                 gallery_emb=None, query_emb=None, gallery_ids=None, query_ids=None, gallery_labels=None,
                 query_labels=None) -> Overlap:
    """Queries that share a subject id, an image hash or an (almost) identical embedding with the
    gallery. Hashes, embeddings and labels are optional (an empty or None hash is never a match);
    with labels, identical-embedding matches across labels are counted (``cross_label``)."""
    gs, qs = [str(s) for s in gallery_subjects], [str(s) for s in query_subjects]
    q_ids = [str(i) for i in query_ids] if query_ids is not None else [f"query {k}" for k in range(len(qs))]
    g_ids = [str(i) for i in gallery_ids] if gallery_ids is not None else [f"gallery {k}" for k in range(len(gs))]
    found = Overlap(len(qs))
    subjects = set(gs)
    for k, s in enumerate(qs):
        if s in subjects:
            found.by_subject.append(k)
            found.examples.append(f"{q_ids[k]}: subject {s!r} is in the gallery")
    if gallery_hashes is not None and query_hashes is not None:
        where = {h: i for i, h in enumerate(gallery_hashes) if h}
        for k, h in enumerate(query_hashes):
            if h and h in where:
                found.by_hash.append(k)
                found.examples.append(f"{q_ids[k]}: same file as gallery image {g_ids[where[h]]}")
    if gallery_emb is not None and query_emb is not None:
        hits, nearest = _identical(query_emb, gallery_emb)
        known = set(found.by_hash)
        for k, j in zip(hits.tolist(), nearest.tolist()):
            if k not in known:
                found.by_embedding.append(k)
                found.examples.append(f"{q_ids[k]}: same image as gallery image {g_ids[j]} (identical embedding)")
                if gallery_labels is not None and query_labels is not None and \
                        str(gallery_labels[j]) != str(query_labels[k]):
                    found.cross_label += 1
    return found


def refuse_or_drop(overlap: Overlap, *, drop: bool, what: str = "the evaluation") -> np.ndarray:
    """A mask of the queries to keep: all when there is no overlap; without ``drop``, an
    :class:`InputError` naming the overlap; with ``drop``, every overlapping query removed."""
    keep = np.ones(overlap.n_queries, bool)
    if not overlap:
        return keep
    if not drop:
        raise InputError(f"{what} would be leaky: {overlap.describe()}",
                         hint="evaluate on subjects the model has never seen, or pass --drop-overlap to leave the "
                              "overlapping queries out (the report counts them)")
    keep[overlap.queries] = False
    return keep
