"""`phenotype gallery-add`: new labelled cases in a model's gallery, without retraining.

The logic, :func:`grow_gallery`, embeds the cases and returns the grown gallery without writing
anything; the command saves it into the package (atomically) and reports what changed. With
``patients``, the usable photos of one subject (a patient's views, ages) become one gallery entry,
their renormalised mean unit embedding (as ``screen-patient`` combines a query patient), its id
``patient:<subject>`` and its hash that of the sorted photo hashes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from medface.data import Result
from medface.errors import InputError

from .dataset import read_dataset
from .gallery import Gallery, load_gallery, save_gallery
from .prepare import prepare_dataset


@dataclass
class GalleryGrowth:
    """A gallery grown by the usable photos of a data set: the new gallery, the photo counts per
    condition before, how many were added and which photos the quality gate refused (and why)."""

    gallery: Gallery
    before: dict[str, int]
    added: int
    refused: list[dict] = field(default_factory=list)

    @property
    def new_conditions(self) -> list[str]:
        return sorted(set(self.gallery.counts()) - set(self.before))

    def table(self) -> list[dict]:
        """Photos per condition after the addition, and how many of them are new."""
        return [{"condition": c, "photos": n, "added": n - self.before.get(c, 0)}
                for c, n in self.gallery.counts().items()]


def grow_gallery(model, data, *, device: str = "auto", patients: bool = False) -> GalleryGrowth:
    """Embed the usable photos of ``data`` with the package's network and append them to its
    gallery (in memory; :func:`gallery.save_gallery` writes it); with ``patients`` one entry per
    subject."""
    from medface.runtime import read_card

    model = Path(model)
    card = read_card(model)
    gallery = load_gallery(model)
    gallery.check_model({"name": card.name, "version": card.version, "sha256": card.sha256})
    emb, records, hashes, refused = embed_usable_photos(model, data, device=device)
    if patients:
        emb, ids, subjects, labels, hashes = patient_entries(emb, records, hashes)
    else:
        ids, subjects, labels = [r.image_id for r in records], [r.subject for r in records], [r.label for r in records]
    grown = gallery.add(emb, ids, subjects, labels, hashes)
    return GalleryGrowth(grown, gallery.counts(), len(ids), refused)


def embed_usable_photos(model, data, *, device: str = "auto"):
    """The embeddings (one row per usable photo), records and content hashes of a data set's photos
    that pass the quality gate, and the refused ones (image id and reason)."""
    from .train import embed_crops

    ds = read_dataset(data)
    prep = prepare_dataset(ds, cache=False)
    idx = [i for i in range(len(ds)) if prep.usable[i]]
    refused = [{"image_id": ds.records[i].image_id, "reason": prep.reasons[i]} for i in range(len(ds))
               if not prep.usable[i]]
    if not idx:
        raise InputError(f"none of the {len(ds)} photos passed the quality gate", path=ds.root)
    emb = embed_crops(Path(model), prep.crops[idx], device=device)["embedding"]
    return emb, [ds.records[i] for i in idx], ds.hashes(idx), refused


PATIENT_PREFIX = "patient:"


def patient_entries(embeddings, records, hashes):
    """One gallery entry per subject: (embeddings, ids, subjects, labels, hashes), subjects in order
    of first appearance. A subject under two labels is refused (one patient, one diagnosis)."""
    import hashlib

    import numpy as np

    from .patient import mean_embedding

    rows: dict[str, list[int]] = {}
    for k, r in enumerate(records):
        rows.setdefault(r.subject, []).append(k)
    labels = []
    for subject, ks in rows.items():
        names = sorted({records[k].label for k in ks})
        if len(names) > 1:
            raise InputError(f"subject {subject!r} has photos under {len(names)} labels ({', '.join(names)}): "
                             "a patient entry needs one", hint="fix the label column of metadata.csv")
        labels.append(names[0])
    joined = ["".join(sorted(hashes[k] for k in ks)).encode("ascii") for ks in rows.values()]
    return (np.stack([mean_embedding([embeddings[k] for k in ks]) for ks in rows.values()]),
            [PATIENT_PREFIX + s for s in rows], list(rows), labels, [hashlib.sha256(j).hexdigest() for j in joined])


def gallery_add(model, data, device: str = "auto", patients: bool = False) -> Result:
    """CLI entry of `phenotype gallery-add`: the grown gallery replaces the package's."""
    growth = grow_gallery(model, data, device=device, patients=patients)
    save_gallery(growth.gallery, model)
    result = Result(command="phenotype.gallery-add",
                    summary={"added": growth.added, "entries": "patients" if patients else "photos",
                             "refused": len(growth.refused),
                             "gallery_photos": len(growth.gallery),
                             "new_conditions": ", ".join(growth.new_conditions) or "none"},
                    tables={"gallery": growth.table()})
    if growth.refused:
        result.tables["refused photos"] = growth.refused
        result.warnings.append(f"{len(growth.refused)} photo(s) were refused by the quality gate and not added")
    return result
